//! `backup create`: one consistent snapshot of the database and the data dir's files.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use phivault_audit::merkle::Accumulator;
use phivault_backup::{
    AuditMark, BackupError, BackupKey, BackupWriter, DirRepository, Repository, SignedManifest, Source, TableSchema,
    TableSink, Value,
};
use phivault_store::{Engine, SqlStore};

use super::{files, state};
use crate::config::Config;

/// What a backup did.
#[derive(Debug)]
pub struct Created {
    /// Tables left out: not phivault's (made by hand in its database).
    pub skipped: Vec<String>,
    pub signed: SignedManifest,
    pub new_chunks: u64,
    pub new_bytes: u64,
    pub elapsed: Duration,
    /// The backup key was made by this run (the operator must escrow it).
    pub key_created: bool,
}

/// Streams rows to the writer, and reads the audit trail's leaves and checkpoint sizes on
/// the way, for the manifest's audit mark (from the same snapshot as the rows).
struct Observed<'w, 'a> {
    writer: &'w mut BackupWriter<'a>,
    watching: Watching,
    leaves: Accumulator,
    checkpoint_sizes: Vec<u64>,
    bar: ProgressBar,
}

enum Watching {
    Nothing,
    Leaves(usize),
    CheckpointSizes(usize),
}

impl TableSink for Observed<'_, '_> {
    fn expect_rows(&mut self, total: u64) {
        self.bar.set_length(total);
    }

    fn begin_table(&mut self, schema: TableSchema) -> Result<(), BackupError> {
        let column = |name: &str| schema.columns.iter().position(|c| c.name == name);
        self.watching = match (schema.name.as_str(), column("leaf"), column("tree_size")) {
            ("audit_log", Some(i), _) => Watching::Leaves(i),
            ("audit_checkpoints", _, Some(i)) => Watching::CheckpointSizes(i),
            _ => Watching::Nothing,
        };
        self.writer.begin_table(schema)
    }

    fn row(&mut self, row: &[Value]) -> Result<(), BackupError> {
        let bad = |why: &str| BackupError::Table { table: "audit_log".into(), why: why.into() };
        match self.watching {
            Watching::Leaves(i) => match row.get(i) {
                Some(Value::Bytes(leaf)) => {
                    self.leaves.push(leaf.as_slice().try_into().map_err(|_| bad("a leaf hash is not 32 bytes"))?)
                }
                _ => return Err(bad("an entry has no leaf hash")),
            },
            Watching::CheckpointSizes(i) => {
                if let Some(Value::Integer(size)) = row.get(i) {
                    self.checkpoint_sizes.push((*size).max(0) as u64);
                }
            }
            Watching::Nothing => {}
        }
        self.bar.inc(1);
        self.writer.row(row)
    }

    fn end_table(&mut self) -> Result<(), BackupError> {
        self.watching = Watching::Nothing;
        self.writer.end_table()
    }
}

/// Loads the backup key, or makes one on first use: never for a repository that already
/// holds backups (a restored data dir has no backup key until it is copied back, and a
/// silent new key would start a second, unrelated series).
fn key(config: &Config, repo: &DirRepository) -> Result<(BackupKey, bool)> {
    let path = &config.backup.key_file;
    if path.exists() {
        return Ok((BackupKey::load(path)?, false));
    }
    if !repo.list_manifests()?.is_empty() {
        bail!(
            "{} holds backups but this data dir has no backup key at {}: copy the key those backups were made with \
             there (a restored installation needs it back from escrow), or back up into a new repository",
            repo.describe(),
            path.display()
        );
    }
    Ok((BackupKey::write_new(path).with_context(|| format!("cannot create the backup key {}", path.display()))?, true))
}

/// The witness file as of the snapshot: the checkpoints covering no more entries than the
/// snapshot holds (the server may sign a newer one while the backup runs; a restore would
/// then find a checkpoint beyond its trail). A torn last line, being written, is left out.
fn witness_as_of(path: &Path, size: u64) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = String::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match phivault_audit::checkpoint::parse_witness(line) {
            Ok(cps) if cps.iter().all(|c| c.tree_size <= size) => out.push_str(line),
            Ok(_) => {}
            Err(_) if i + 1 == lines.len() && !line.ends_with('\n') => {}
            Err(_) => bail!("{} line {} is not a checkpoint", path.display(), i + 1),
        }
    }
    Ok(out.into_bytes())
}

/// Backs up into `repo_path`. The backup is recorded in the trail (`action`, by `actor`)
/// before its manifest is stored, so that no copy of the records and the trail exists
/// unrecorded: if the entry cannot be written, the backup never appears.
pub async fn create(
    data_dir: &Path,
    config: &Config,
    store: &SqlStore,
    repo_path: &Path,
    actor: &str,
    action: &str,
) -> Result<Created> {
    let started = Instant::now();
    // A repository this installation has backed up into before must still hold its newest
    // backup: otherwise it was rolled back, or the disk is not mounted and the path is an
    // empty folder (made into a new repository, it would hide both).
    let expected = state::newest(&config.backup.state_file, repo_path)?;
    let repo = DirRepository::open(repo_path, expected.is_none()).map_err(|e| match &expected {
        Some((seq, _)) => anyhow::anyhow!(
            "{e}: this installation's newest backup there is #{seq}; is the backup disk mounted? (refusing to start \
             a new repository where one was)"
        ),
        None => e.into(),
    })?;
    let _lock = repo.lock(&state::lock_holder("backup create"))?;
    if let Some((seq, digest)) = &expected {
        let present = repo.list_manifests()?.into_iter().any(|name| {
            name.starts_with(&format!("{seq:010}-"))
                && repo.get_manifest(&name).is_ok_and(|b| phivault_backup::sha256_hex(&b) == *digest)
        });
        if !present {
            bail!(
                "{} no longer holds backup #{seq}, the newest this installation made there: it was rolled back or \
                 replaced; run `phivault backup verify`, and back up into a new repository meanwhile",
                repo_path.display()
            );
        }
    }
    let (key, key_created) = key(config, &repo)?;
    let retired: Vec<phivault_backup::BackupPublicKey> = super::key_files(&[], Some(&config.backup.key_file))?
        .iter()
        .skip(1)
        .filter_map(|p| phivault_backup::BackupPublicKey::load(p).ok())
        .collect();
    let data_files = files::collect(data_dir, config)?;

    let mut writer = BackupWriter::new(&repo, &key).after_newest(retired)?;
    let mut observed = Observed {
        writer: &mut writer,
        watching: Watching::Nothing,
        leaves: Accumulator::default(),
        checkpoint_sizes: Vec::new(),
        bar: crate::progress::bar(0, "backing up"),
    };
    let taken_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let info = store.snapshot(&mut observed).await.context("the backup failed reading the database")?;
    observed.bar.finish_and_clear();
    let audit = AuditMark {
        size: observed.leaves.size(),
        root: phivault_audit::checkpoint::hex(&observed.leaves.root()),
        newest_checkpoint: observed
            .checkpoint_sizes
            .iter()
            .copied()
            .filter(|&s| s <= observed.leaves.size())
            .max()
            .unwrap_or(0),
    };
    for file in &data_files {
        let bytes = if file.role == "audit_witness" {
            witness_as_of(&file.path, audit.size)?
        } else {
            std::fs::read(&file.path).with_context(|| format!("cannot read {}", file.path.display()))?
        };
        writer.add_file(file.role, &file.name, &bytes)?;
    }
    let (new_chunks, new_bytes) = (writer.new_chunks, writer.new_bytes);
    let source = Source {
        engine: match store.engine() {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
        .to_owned(),
        schema_version: info.schema_version,
        audit,
        phivault_version: env!("CARGO_PKG_VERSION").to_owned(),
        taken_ms,
    };
    let (signed, bytes) = writer.seal(source)?;
    let created =
        Created { skipped: info.skipped, signed, new_chunks, new_bytes, elapsed: started.elapsed(), key_created };
    let reason = super::summary(&created, repo_path);
    super::audit_as(store, actor, action, Some(format!("backup:{}", created.signed.manifest.id)), reason)
        .await
        .context("the backup was not stored: its audit entry could not be written")?;
    repo.put_manifest(&created.signed.name, &bytes)?;
    state::record(&config.backup.state_file, repo_path, &created.signed)?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_witness_is_cut_to_the_snapshot_and_a_torn_last_line_is_left_out() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("witness.jsonl");
        let line = |size: u64| {
            format!(
                "{{\"tree_size\":{size},\"root\":\"{}\",\"chain\":\"{}\",\"time_ms\":1,\"key_id\":\"k\",\"signature\":\"s\"}}\n",
                "0".repeat(64),
                "0".repeat(64)
            )
        };
        let text = format!("{}{}{}{{\"tree_size\":9,\"ro", line(1), line(2), line(5));
        std::fs::write(&path, &text).expect("write");
        let kept = String::from_utf8(witness_as_of(&path, 2).expect("cut")).expect("utf-8");
        assert_eq!(kept, format!("{}{}", line(1), line(2)));
        // A bad line that is not the last is damage, not a write in progress.
        std::fs::write(&path, format!("not json\n{}", line(1))).expect("write");
        assert!(witness_as_of(&path, 5).is_err());
    }
}
