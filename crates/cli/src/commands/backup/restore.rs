//! `backup restore` and `backup drill`.
//!
//! A restore checks before it writes and checks what it wrote: the manifest's signature,
//! every chunk present; then, inside one transaction, every table loaded and read back to
//! the manifest's row counts and content digests, and the audit trail's Merkle root; only
//! then is it committed, migrated forward, and the files put in place. Last, the restored
//! audit trail is verified against its signed checkpoints, as `audit verify` would.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use phivault_audit::merkle::Accumulator;
use phivault_backup::{BackupKey, BackupReader, DigestSink, DirRepository, Manifest, Value};
use phivault_store::SqlStore;

use super::files;
use crate::config::{CONFIG_FILE, Config};

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    pub elapsed: Duration,
    pub database: String,
    pub trail: phivault_audit::Report,
}

/// Empties the target again if the restore into it fails: removes it if the restore made
/// it, else what the restore put in it (it was empty).
struct Scratch {
    dir: PathBuf,
    created: bool,
    armed: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.created {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            }
        }
    }
}

pub async fn restore(
    target: &Path,
    from: &Path,
    backup: Option<&str>,
    key: &Path,
    database: Option<&str>,
) -> Result<Restored> {
    let started = Instant::now();
    let key = BackupKey::load(key)?;
    let repo = DirRepository::open(from, false)?;
    let reader = BackupReader::open(&repo, &key, backup)?;
    let manifest = &reader.signed.manifest;
    let missing = reader.missing_chunks()?;
    if !missing.is_empty() {
        bail!(
            "backup {} is incomplete: {} chunk(s) missing or damaged, for example: {}",
            reader.signed.name,
            missing.len(),
            missing.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        );
    }

    if target.join(CONFIG_FILE).exists() {
        bail!("{} already holds a phivault configuration; restore into a new data dir", target.display());
    }
    let created_dir = !target.exists();
    if !created_dir
        && std::fs::read_dir(target).with_context(|| format!("cannot read {}", target.display()))?.next().is_some()
    {
        bail!("{} is not empty; restore into a new data dir", target.display());
    }
    std::fs::create_dir_all(target).with_context(|| format!("cannot create {}", target.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(target, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let mut scratch = Scratch { dir: target.to_owned(), created: created_dir, armed: true };

    // Every file read and checked before anything is written.
    let mut restored_files = Vec::new();
    for file in &manifest.files {
        restored_files.push((file, reader.file(file)?));
    }
    let config_text = restored_files
        .iter()
        .find(|(f, _)| f.role == "config")
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .context("the backup holds no configuration")?;
    let on_disk: Config = toml::from_str(&config_text).context("the backup's configuration cannot be read")?;
    let (on_disk, changed) = files::relocate(on_disk, database);
    let config = on_disk.clone().resolved_without_env(target)?;

    let store = SqlStore::connect_for_restore(&config.database, manifest.schema_version)
        .await
        .context("cannot prepare the database to restore into")?;
    let outcome = load(&reader, &key, &store).await;
    if let Err(e) = outcome {
        store.close().await;
        return Err(e);
    }
    store.migrate_forward().await.context("cannot migrate the restored database forward")?;

    for (file, bytes) in &restored_files {
        if file.role == "config" {
            continue;
        }
        let path = files::target(target, &config, &file.role, &file.name)?;
        files::ensure_inside(target, &path)?;
        crate::private_file::write_new(&path, bytes)?;
    }
    let config_bytes = if changed {
        let text = toml::to_string_pretty(&on_disk).context("cannot write the configuration")?;
        format!(
            "# phivault configuration, restored from backup {} (paths outside the original data dir moved inside).\n{text}",
            manifest.id
        )
        .into_bytes()
    } else {
        config_text.into_bytes()
    };
    crate::private_file::write_new(&target.join(CONFIG_FILE), &config_bytes)?;

    let trail = super::super::audit::check_trail(&store, &config.audit).await;
    store.close().await;
    let trail = trail?;
    scratch.armed = false;
    if let Some((seq, why)) = &trail.first_problem {
        bail!(
            "restored into {}, but the restored audit trail is NOT intact: {why} (entry #{seq}); keep the backup as evidence",
            target.display()
        );
    }
    if trail.entries != manifest.audit.size || trail.root != manifest.audit.root {
        bail!("restored into {}, but its audit trail is not the one the manifest records", target.display());
    }
    if manifest.audit.newest_checkpoint > 0 && trail.verified_size < manifest.audit.newest_checkpoint {
        bail!(
            "restored into {}, but no signed checkpoint verifies the audit trail up to the {} entries the backup's \
             checkpoints covered",
            target.display(),
            manifest.audit.newest_checkpoint
        );
    }
    Ok(Restored { manifest: manifest.clone(), elapsed: started.elapsed(), database: config.database.clone(), trail })
}

/// Loads every table in one transaction, reads it back, compares, commits.
async fn load(reader: &BackupReader<'_>, key: &BackupKey, store: &SqlStore) -> Result<()> {
    let manifest = &reader.signed.manifest;
    let bar = crate::progress::bar(manifest.rows(), "restoring");
    let mut restore = store.begin_restore().await?;
    let mut leaves = Accumulator::default();
    for table in &manifest.tables {
        let is_trail = table.schema.name == "audit_log";
        let leaf = table.schema.columns.iter().position(|c| c.name == "leaf");
        let rows = reader.rows(table).inspect(|row| {
            bar.inc(1);
            if is_trail
                && let (Ok(row), Some(i)) = (row, leaf)
                && let Some(Value::Bytes(bytes)) = row.get(i)
                && let Ok(hash) = <[u8; 32]>::try_from(bytes.as_slice())
            {
                leaves.push(hash);
            }
        });
        restore
            .load(&table.schema, rows)
            .await
            .with_context(|| format!("cannot restore table {}", table.schema.name))?;
    }
    bar.finish_and_clear();
    if leaves.size() != manifest.audit.size || phivault_audit::checkpoint::hex(&leaves.root()) != manifest.audit.root {
        bail!("the backup's audit trail does not have the size and root its manifest records");
    }
    let mut digests = DigestSink::default();
    restore.read_back(&mut digests).await?;
    for table in &manifest.tables {
        let Some((_, digest)) = digests.tables.iter().find(|(s, _)| s.name == table.schema.name) else {
            bail!("table {} is missing from the restored database", table.schema.name);
        };
        if digest.rows() != table.rows || key.content_digest(digest) != table.content {
            bail!(
                "table {} was not restored exactly ({} rows read back, {} backed up)",
                table.schema.name,
                digest.rows(),
                table.rows
            );
        }
    }
    if let Some((schema, _)) = digests.tables.iter().find(|(s, d)| d.rows() > 0 && manifest.table(&s.name).is_none()) {
        bail!("table {} holds rows the backup does not", schema.name);
    }
    restore.finish().await?;
    Ok(())
}

/// The key id the repository's newest manifest names (its header), if any.
fn newest_key_id(repo: &Path) -> Result<Option<String>> {
    use phivault_backup::Repository;
    let repo = DirRepository::open(repo, false)?;
    let Some(name) = repo.list_manifests()?.pop() else { return Ok(None) };
    Ok(phivault_backup::manifest_key_id(&repo.get_manifest(&name)?))
}

/// What a drill found.
#[derive(Debug)]
pub struct Drilled {
    pub restored: Restored,
    /// Restore duration: the recovery time measured.
    pub rto: Duration,
    /// Age of the backup's data when the drill ran: the recovery point measured.
    pub rpo: Duration,
    /// Tables whose content is identical in the live system.
    pub identical: usize,
    /// Tables that changed since the backup (a live system writes).
    pub changed: Vec<String>,
}

/// Restores the newest backup into a scratch data dir (SQLite, whatever the live engine)
/// inside the data dir, compares it with the live database, and removes the scratch copy.
pub async fn drill(config: &Config, live: &SqlStore, repo: &Path) -> Result<Drilled> {
    // Beside the backup key in the data dir, not in a shared temporary directory: the
    // scratch copy holds the database and the TLS key while the drill runs, and what a
    // killed drill leaves is removed by the next one.
    let scratch_parent = config.backup.state_file.parent().map_or_else(|| PathBuf::from("."), Path::to_owned);
    std::fs::create_dir_all(&scratch_parent)?;
    for leftover in std::fs::read_dir(&scratch_parent)?.flatten() {
        if leftover.file_name().to_string_lossy().starts_with("drill-scratch-") {
            let _ = std::fs::remove_dir_all(leftover.path());
        }
    }
    let scratch =
        scratch_parent.join(format!("drill-scratch-{}", phivault_crypto::random_token(6)?.replace(['-', '_'], "x")));
    let database = format!("sqlite://{}", scratch.join("phivault.db").display());
    // The newest backup may be under the current key or, just after a rotation, a retired one.
    let key_files = super::key_files(&[], Some(&config.backup.key_file))?;
    let newest_key = newest_key_id(repo)?;
    let key_path = key_files
        .iter()
        .find(|p| BackupKey::load(p).is_ok_and(|k| Some(k.id()) == newest_key.as_deref()))
        .cloned()
        .unwrap_or_else(|| config.backup.key_file.clone());
    let key = BackupKey::load(&key_path)?;
    let result = restore(&scratch, repo, None, &key_path, Some(&database)).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let restored = result.context("the drill's restore failed")?;
    let rpo_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64
        - restored.manifest.created_ms;
    let mut live_digests = DigestSink::default();
    live.snapshot(&mut live_digests).await.context("cannot read the live database to compare")?;
    let mut identical = 0;
    let mut changed = Vec::new();
    for table in &restored.manifest.tables {
        match live_digests.tables.iter().find(|(s, _)| s.name == table.schema.name) {
            Some((_, d)) if d.rows() == table.rows && key.content_digest(d) == table.content => identical += 1,
            _ => changed.push(table.schema.name.clone()),
        }
    }
    Ok(Drilled {
        rto: restored.elapsed,
        rpo: Duration::from_millis(rpo_ms.max(0) as u64),
        restored,
        identical,
        changed,
    })
}
