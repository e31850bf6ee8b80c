//! `backup create`: one consistent snapshot of the database and the data dir's files.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
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

/// Loads the backup key, or makes one on first use.
fn key(config: &Config) -> Result<(BackupKey, bool)> {
    let path = &config.backup.key_file;
    if path.exists() {
        return Ok((BackupKey::load(path)?, false));
    }
    Ok((BackupKey::write_new(path).with_context(|| format!("cannot create the backup key {}", path.display()))?, true))
}

pub async fn create(data_dir: &Path, config: &Config, store: &SqlStore, repo_path: &Path) -> Result<Created> {
    let started = Instant::now();
    let (key, key_created) = key(config)?;
    let repo = DirRepository::open(repo_path, true)?;
    let _lock = repo.lock(&state::lock_holder("backup create"))?;
    let data_files = files::collect(data_dir, config)?;

    let mut writer = BackupWriter::new(&repo, &key);
    let mut observed = Observed {
        writer: &mut writer,
        watching: Watching::Nothing,
        leaves: Accumulator::default(),
        checkpoint_sizes: Vec::new(),
        bar: crate::progress::bar(0, "backing up"),
    };
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
        let bytes = std::fs::read(&file.path).with_context(|| format!("cannot read {}", file.path.display()))?;
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
    };
    let signed = writer.finish(source)?;
    state::record(&config.backup.state_file, repo_path, &signed)?;
    Ok(Created { signed, new_chunks, new_bytes, elapsed: started.elapsed(), key_created })
}
