//! `phivault backup`: create, list, verify, restore, prune, drill (45 CFR 164.308(a)(7)(ii)(A)
//! data backup plan, (B) disaster recovery plan, (D) testing and revision).
//!
//! A backup needs the backup key only, not the key file's passphrase: records stay sealed
//! under their data keys inside it, so a nightly job holds no key that reads PHI.

mod create;
mod files;
mod restore;
mod schedule;
mod state;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use phivault_backup::{BackupKey, BackupPublicKey, DirRepository, Repository, Retention, SignedManifest};

pub use create::create;
pub use restore::{drill, restore};
pub use schedule::spawn as spawn_schedule;

#[derive(Debug, Subcommand)]
pub enum BackupAction {
    /// Back up everything a restore needs into a repository (a directory: an external disk,
    /// a NAS mount), while the server runs. Creates the repository, and the backup key on
    /// first use.
    Create {
        /// The repository directory.
        #[arg(long)]
        to: PathBuf,
    },
    /// List a repository's backups, checking each manifest's signature.
    List {
        #[arg(long)]
        repo: PathBuf,
        /// Backup key or public key files (default: this data dir's backup key).
        #[arg(long = "key")]
        keys: Vec<PathBuf>,
    },
    /// Check a repository without restoring: signatures, sequence, every chunk present
    /// with its size; with --read-data, every chunk decrypted and checked against its name.
    Verify {
        #[arg(long)]
        repo: PathBuf,
        #[arg(long)]
        read_data: bool,
        /// Backup key files (a public key is enough without --read-data).
        #[arg(long = "key")]
        keys: Vec<PathBuf>,
    },
    /// Restore a backup into a new data dir (--data-dir) and a new, empty database, then
    /// check every table and the audit trail against the manifest.
    Restore {
        /// The repository directory.
        #[arg(long)]
        from: PathBuf,
        /// The backup (its id or file name; default: the newest).
        #[arg(long)]
        backup: Option<String>,
        /// The backup key (the data dir that held it may be gone).
        #[arg(long)]
        key: PathBuf,
        /// The database to restore into (default: a SQLite file in the new data dir, or the
        /// backup's PostgreSQL database). Must be empty.
        #[arg(long)]
        database: Option<String>,
    },
    /// Remove the backups a grandfather-father-son schedule no longer keeps, then the
    /// chunks no remaining backup needs.
    Prune {
        #[arg(long)]
        repo: PathBuf,
        #[arg(long, default_value_t = 7)]
        keep_daily: usize,
        #[arg(long, default_value_t = 5)]
        keep_weekly: usize,
        #[arg(long, default_value_t = 12)]
        keep_monthly: usize,
        #[arg(long, default_value_t = 6)]
        keep_yearly: usize,
        /// Say what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Replace the backup key: the old one is kept beside it, retired, for the backups made
    /// under it; the next backup is a full one under the new key. Escrow the new key.
    RotateKey,
    /// Restore the newest backup into a scratch directory, check it against the live system,
    /// time it, and record the drill (RTO, RPO) in the audit trail.
    Drill {
        #[arg(long)]
        repo: PathBuf,
    },
}

impl BackupAction {
    /// The audit action and target.
    pub fn audit_name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "cli.backup.create",
            Self::List { .. } => "cli.backup.list",
            Self::Verify { .. } => "cli.backup.verify",
            Self::Restore { .. } => "cli.backup.restore",
            Self::Prune { .. } => "cli.backup.prune",
            Self::Drill { .. } => "cli.backup.drill",
            Self::RotateKey => "cli.backup.rotate_key",
        }
    }
}

/// The key files to use: those given, else the data dir's backup key and the keys it
/// replaced (`backup rotate-key` keeps them beside it, for the backups made under them).
pub(super) fn key_files(given: &[PathBuf], default_key: Option<&Path>) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let current = default_key.context("give the backup key with --key")?;
    let mut out = vec![current.to_owned()];
    out.extend(retired_keys(current)?);
    Ok(out)
}

/// `backup.key.<id>.retired` files beside `current`.
fn retired_keys(current: &Path) -> Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (current.parent(), current.file_name()) else { return Ok(Vec::new()) };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&prefix) && file.ends_with(".retired") {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn public_keys(given: &[PathBuf], default_key: Option<&Path>) -> Result<Vec<BackupPublicKey>> {
    key_files(given, default_key)?.iter().map(|p| BackupPublicKey::load(p).map_err(anyhow::Error::from)).collect()
}

fn secret_keys(given: &[PathBuf], default_key: Option<&Path>) -> Result<Vec<BackupKey>> {
    key_files(given, default_key)?.iter().map(|p| BackupKey::load(p).map_err(anyhow::Error::from)).collect()
}

/// `backup rotate-key`: the current key is kept as `<key>.<id>.retired` (backups made
/// under it stay readable with it); a new key signs and seals every backup from now on.
pub fn rotate_key(config: &crate::config::Config) -> Result<String> {
    let current = &config.backup.key_file;
    let old = BackupKey::load(current).context("there is no backup key to rotate yet (the first backup makes one)")?;
    let retired = PathBuf::from(format!("{}.{}.retired", current.display(), old.id()));
    std::fs::rename(current, &retired).with_context(|| format!("cannot retire {}", current.display()))?;
    let public = phivault_backup::public_path(current);
    let _ = std::fs::rename(&public, PathBuf::from(format!("{}.{}.retired.pub", current.display(), old.id())));
    let new = match BackupKey::write_new(current) {
        Ok(key) => key,
        Err(e) => {
            // Put the old key back rather than leave none.
            let _ = std::fs::rename(&retired, current);
            return Err(e.into());
        }
    };
    Ok(format!("retired backup key {} (kept as {}); new backup key {}", old.id(), retired.display(), new.id()))
}

pub use crate::clock::format_ms;

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// `backup list`.
pub fn list(repo: &Path, keys: &[PathBuf], default_key: Option<&Path>) -> Result<()> {
    let repo = DirRepository::open(repo, false)?;
    let keys = public_keys(keys, default_key)?;
    let names = repo.list_manifests()?;
    if names.is_empty() {
        println!("{} holds no backup", repo.describe());
    }
    for name in names {
        let bytes = repo.get_manifest(&name)?;
        match SignedManifest::open(&name, &bytes, &keys) {
            Ok(signed) => {
                let m = &signed.manifest;
                println!(
                    "#{:<5} {}  {}  {}  {} rows  {}  audit trail {} entries",
                    m.seq,
                    m.id,
                    format_ms(m.created_ms),
                    m.engine,
                    m.rows(),
                    megabytes(m.plain_bytes()),
                    m.audit.size
                );
            }
            Err(e) => println!("NOT VERIFIED {name}: {e}"),
        }
    }
    Ok(())
}

/// `backup verify`: fails (non-zero) on any problem, prints warnings.
pub fn verify(
    config_state: Option<&Path>,
    repo_path: &Path,
    keys: &[PathBuf],
    default_key: Option<&Path>,
    read_data: bool,
) -> Result<()> {
    let repo = DirRepository::open(repo_path, false)?;
    let publics = public_keys(keys, default_key)?;
    let secrets = if read_data { secret_keys(keys, default_key)? } else { Vec::new() };
    let expected = config_state.map(|s| state::newest(s, repo_path)).transpose()?.flatten();
    let bar = crate::progress::bar(0, "verifying");
    let report = phivault_backup::verify_repository(
        &repo,
        &publics,
        &secrets,
        expected.as_ref().map(|(s, d)| (*s, d.as_str())),
    )?;
    bar.finish_and_clear();
    println!("backups: {} with a valid signature", report.manifests.len());
    println!("chunks stored: {}", report.chunks_present);
    if read_data {
        println!("chunks decrypted and checked against their names: {}", report.chunks_read);
    } else {
        println!("chunk content not read (pass --read-data to decrypt and check every chunk)");
    }
    if expected.is_none() {
        println!(
            "note: this data dir has no record of backups into {}: a repository rolled back to an older backup \
             cannot be told from here",
            repo_path.display()
        );
    }
    for finding in &report.findings {
        if finding.is_problem() {
            println!("PROBLEM: {}", finding.what);
        } else {
            println!("warning: {}", finding.what);
        }
    }
    if !report.is_intact() {
        bail!(
            "the backup repository is NOT intact: {} problem(s)",
            report.findings.iter().filter(|f| f.is_problem()).count()
        );
    }
    println!("the backup repository is intact");
    Ok(())
}

/// `backup prune`.
pub fn prune(repo_path: &Path, key: Option<&Path>, retention: Retention, dry_run: bool) -> Result<String> {
    let repo = DirRepository::open(repo_path, false)?;
    let publics = public_keys(&[], key)?;
    let _lock = if dry_run { None } else { Some(repo.lock(&state::lock_holder("prune"))?) };
    let report = phivault_backup::verify_repository(&repo, &publics, &[], None)?;
    // Prune only what verifies: an unverifiable manifest is evidence, not garbage.
    let names = repo.list_manifests()?;
    if report.manifests.len() != names.len() {
        bail!(
            "refusing to prune: some manifests do not verify under this data dir's backup key (run `phivault backup verify`)"
        );
    }
    let created: Vec<i64> = report.manifests.iter().map(|m| m.manifest.created_ms).collect();
    let kept = phivault_backup::select_kept(&created, retention);
    let mut removed = Vec::new();
    for (i, signed) in report.manifests.iter().enumerate() {
        if !kept.contains(&i) {
            removed.push(signed.name.clone());
        }
    }
    let needed: std::collections::BTreeSet<_> = report
        .manifests
        .iter()
        .enumerate()
        .filter(|(i, _)| kept.contains(i))
        .flat_map(|(_, m)| m.manifest.chunk_refs().map(|c| c.id.clone()))
        .collect();
    let garbage: Vec<_> = repo.list_chunks()?.into_iter().filter(|(id, _)| !needed.contains(id)).collect();
    let freed: u64 = garbage.iter().map(|(_, size)| size).sum();
    for name in &removed {
        println!("{} {name}", if dry_run { "would remove" } else { "removing" });
    }
    if !dry_run {
        // Manifests first: a chunk is removed only once nothing names it.
        for name in &removed {
            repo.remove_manifest(name)?;
        }
        for (id, _) in &garbage {
            repo.remove_chunk(id)?;
        }
    }
    let summary = format!(
        "{} {} backups and {} chunks ({}); kept {}",
        if dry_run { "would remove" } else { "removed" },
        removed.len(),
        garbage.len(),
        megabytes(freed),
        kept.len()
    );
    println!("{summary}");
    Ok(summary)
}

/// The data dir's configuration, when there is one (list, verify and restore also run
/// where there is none: on an auditor's machine, or after the server is gone).
fn local_config(data_dir: &Path) -> Option<crate::config::Config> {
    data_dir.join(crate::config::CONFIG_FILE).exists().then(|| crate::config::Config::load(data_dir).ok()).flatten()
}

async fn record(
    store: &phivault_store::SqlStore,
    action: &str,
    target: Option<String>,
    result: &Result<String>,
) -> Result<()> {
    record_by(store, &crate::actor::os_actor(), action, target, result).await
}

async fn record_by(
    store: &phivault_store::SqlStore,
    actor: &str,
    action: &str,
    target: Option<String>,
    result: &Result<String>,
) -> Result<()> {
    let (reason, outcome) = match result {
        Ok(summary) => (summary.clone(), phivault_audit::Outcome::Success),
        // Messages name backups, chunks and tables, never record content.
        Err(e) => (format!("{e:#}"), phivault_audit::Outcome::Failure),
    };
    super::audit::record_as(store, actor, action, target, phivault_audit::clip(&reason, 1000), outcome).await
}

/// How a backup is described on the console and in its audit entry.
fn summary(c: &create::Created, to: &Path) -> String {
    let m = &c.signed.manifest;
    let mut text = format!(
        "backup #{} {} into {}: {} tables, {} rows, {} files, audit trail {} entries (root {}); {} new chunks ({}); \
         manifest sha256 {}",
        m.seq,
        m.id,
        to.display(),
        m.tables.len(),
        m.rows(),
        m.files.len(),
        m.audit.size,
        m.audit.root,
        c.new_chunks,
        megabytes(c.new_bytes),
        c.signed.digest
    );
    if !c.skipped.is_empty() {
        text.push_str(&format!("; left out tables that are not phivault's: {}", c.skipped.join(", ")));
    }
    text
}

/// `backup create`: its success is recorded before the backup appears (in `create`); a
/// failure, before or after that, is recorded here.
pub(crate) async fn create_recorded(
    data_dir: &Path,
    config: &crate::config::Config,
    store: &phivault_store::SqlStore,
    to: &Path,
    actor: &str,
    action: &str,
) -> Result<(create::Created, String)> {
    match create(data_dir, config, store, to, actor, action).await {
        Ok(created) => {
            let summary = summary(&created, to);
            Ok((created, summary))
        }
        Err(e) => {
            let failed = Err(anyhow::anyhow!("{e:#}"));
            match record_by(store, actor, action, None, &failed).await {
                Ok(()) => Err(e),
                // The original error first: it says what happened to the backup.
                Err(r) => Err(e.context(format!("(and the failure could not be recorded: {r:#})"))),
            }
        }
    }
}

/// A successful act's entry, by `actor`.
async fn audit_as(
    store: &phivault_store::SqlStore,
    actor: &str,
    action: &str,
    target: Option<String>,
    reason: String,
) -> Result<()> {
    record_by(store, actor, action, target, &Ok(reason)).await
}

/// `backup drill`, its entry (failures too) and its place in the state file.
pub(crate) async fn drill_recorded(
    config: &crate::config::Config,
    store: &phivault_store::SqlStore,
    repo: &Path,
    actor: &str,
    action: &str,
) -> Result<String> {
    let drilled = drill(config, store, repo).await;
    let summary = drilled.as_ref().map(|d| {
        let m = &d.restored.manifest;
        format!(
            "drill passed: backup #{} {} restored and checked ({} tables, {} rows, audit trail {} entries, root {}); \
             RTO {:.1} s; RPO {:.0} s; live system: {} tables unchanged since the backup, {} changed{}",
            m.seq,
            m.id,
            m.tables.len(),
            m.rows(),
            m.audit.size,
            m.audit.root,
            d.rto.as_secs_f64(),
            d.rpo.as_secs_f64(),
            d.identical,
            d.changed.len(),
            if d.changed.is_empty() { String::new() } else { format!(" ({})", d.changed.join(", ")) }
        )
    });
    let summary = summary.map_err(|e| anyhow::anyhow!("{e:#}"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let noted =
        state::record_drill(&config.backup.state_file, repo, state::Drill { time_ms: now, passed: summary.is_ok() });
    let recorded = record_by(store, actor, action, None, &summary).await;
    recorded?;
    noted?;
    summary
}

/// Runs one `backup` action; every action that touches an installation is recorded in its
/// audit trail, failures too.
pub async fn run(data_dir: &Path, action: BackupAction) -> Result<()> {
    let name = action.audit_name();
    let local = local_config(data_dir);
    let default_key = local.as_ref().map(|c| c.backup.key_file.clone());
    match action {
        BackupAction::Create { to } => {
            let config = crate::config::Config::load(data_dir)?;
            let store =
                phivault_store::SqlStore::connect(&config.database).await.context("cannot open the database")?;
            let result = create_recorded(data_dir, &config, &store, &to, &crate::actor::os_actor(), name).await;
            store.close().await;
            let (created, summary) = result?;
            if created.key_created {
                eprintln!(
                    "created the backup key {} (public half beside it). Copy it OFF this host now (a password manager, \
                     a sealed envelope in a safe): without it no backup can be restored. Never store it with the backups.",
                    config.backup.key_file.display()
                );
            }
            println!("{summary}");
            println!("in {:.1} s", created.elapsed.as_secs_f64());
            Ok(())
        }
        BackupAction::List { repo, keys } => {
            let result = list(&repo, &keys, default_key.as_deref());
            // Reading the list opens the manifests (who backed up what, and when): on an
            // installation, that look is recorded too, failures included.
            if let Some(config) = &local {
                let store =
                    phivault_store::SqlStore::connect(&config.database).await.context("cannot open the database")?;
                let summary = result
                    .as_ref()
                    .map(|()| format!("{} listed", repo.display()))
                    .map_err(|e| anyhow::anyhow!("{e:#}"));
                let recorded = record(&store, name, None, &summary).await;
                store.close().await;
                recorded?;
            }
            result
        }
        BackupAction::Verify { repo, read_data, keys } => {
            let state = local.as_ref().map(|c| c.backup.state_file.clone());
            let result = verify(state.as_deref(), &repo, &keys, default_key.as_deref(), read_data);
            if let Some(config) = &local {
                let store =
                    phivault_store::SqlStore::connect(&config.database).await.context("cannot open the database")?;
                let summary = result
                    .as_ref()
                    .map(|()| {
                        format!("{} verified{}", repo.display(), if read_data { " with --read-data" } else { "" })
                    })
                    .map_err(|e| anyhow::anyhow!("{e:#}"));
                let recorded = record(&store, name, None, &summary).await;
                store.close().await;
                recorded?;
            }
            result
        }
        BackupAction::Restore { from, backup, key, database } => {
            let restored = restore(data_dir, &from, backup.as_deref(), &key, database.as_deref()).await?;
            let m = &restored.manifest;
            let summary = format!(
                "restored backup #{} {} (made {} on {}) into {}: {} tables, {} rows, audit trail {} entries verified \
                 up to {} by signed checkpoints, in {:.1} s",
                m.seq,
                m.id,
                format_ms(m.created_ms),
                m.engine,
                data_dir.display(),
                m.tables.len(),
                m.rows(),
                restored.trail.entries,
                restored.trail.verified_size,
                restored.elapsed.as_secs_f64()
            );
            // The restored installation's own trail says where it came from.
            let store = phivault_store::SqlStore::connect(&restored.database)
                .await
                .context("cannot open the restored database")?;
            let recorded = record(&store, name, Some(format!("backup:{}", m.id)), &Ok(summary.clone())).await;
            store.close().await;
            recorded?;
            println!("{summary}");
            println!("start it with: phivault serve --data-dir {}", data_dir.display());
            Ok(())
        }
        BackupAction::Prune { repo, keep_daily, keep_weekly, keep_monthly, keep_yearly, dry_run } => {
            let config = crate::config::Config::load(data_dir)?;
            let retention =
                Retention { daily: keep_daily, weekly: keep_weekly, monthly: keep_monthly, yearly: keep_yearly };
            let result = prune(&repo, Some(&config.backup.key_file), retention, dry_run);
            if dry_run {
                return result.map(|_| ());
            }
            let store =
                phivault_store::SqlStore::connect(&config.database).await.context("cannot open the database")?;
            let summary =
                result.as_ref().map(|s| format!("{}: {s}", repo.display())).map_err(|e| anyhow::anyhow!("{e:#}"));
            let recorded = record(&store, name, None, &summary).await;
            store.close().await;
            recorded?;
            result.map(|_| ())
        }
        BackupAction::RotateKey => {
            let config = crate::config::Config::load(data_dir)?;
            let result = rotate_key(&config);
            let store =
                phivault_store::SqlStore::connect(&config.database).await.context("cannot open the database")?;
            let summary = result.as_ref().map(String::clone).map_err(|e| anyhow::anyhow!("{e:#}"));
            let recorded = record(&store, name, None, &summary).await;
            store.close().await;
            recorded?;
            println!("{}", result?);
            eprintln!(
                "copy the new key {} OFF this host now, as you did the old one; keep the retired key as long as \
                 backups made under it are kept",
                config.backup.key_file.display()
            );
            Ok(())
        }
        BackupAction::Drill { repo } => {
            let config = crate::config::Config::load(data_dir)?;
            let store =
                phivault_store::SqlStore::connect(&config.database).await.context("cannot open the database")?;
            let result = drill_recorded(&config, &store, &repo, &crate::actor::os_actor(), name).await;
            store.close().await;
            println!("{}", result?);
            Ok(())
        }
    }
}
