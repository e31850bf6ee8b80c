//! Reading and checking backups: a repository's manifests and chunks (`verify`), and one
//! backup's tables and files (`restore`), each refusing what does not match its manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use aws_lc_rs::digest;

use crate::{
    BackupError, BackupKey, BackupPublicKey, ChunkId, ChunkRef, FileEntry, Repository, SignedManifest, TableEntry,
    Value, chunks, decode_row,
};

/// One backup, open for reading with its secret key.
#[derive(Debug)]
pub struct BackupReader<'a> {
    repo: &'a dyn Repository,
    key: &'a BackupKey,
    pub signed: SignedManifest,
}

impl<'a> BackupReader<'a> {
    /// Opens the manifest `name` (or the newest when `None`), checking its signature.
    pub fn open(repo: &'a dyn Repository, key: &'a BackupKey, name: Option<&str>) -> Result<Self, BackupError> {
        let names = repo.list_manifests()?;
        let name = match name {
            Some(wanted) => names
                .iter()
                .find(|n| n.as_str() == wanted || n.ends_with(&format!("-{wanted}")))
                .cloned()
                .ok_or_else(|| BackupError::Repository(format!("{} holds no backup {wanted}", repo.describe())))?,
            None => names
                .last()
                .cloned()
                .ok_or_else(|| BackupError::Repository(format!("{} holds no backup", repo.describe())))?,
        };
        let bytes = repo.get_manifest(&name)?;
        let signed = SignedManifest::open(&name, &bytes, std::slice::from_ref(key.public()))?;
        Ok(Self { repo, key, signed })
    }

    /// Every chunk the backup needs that is missing or of the wrong size, by what needs it.
    pub fn missing_chunks(&self) -> Result<Vec<String>, BackupError> {
        let mut out = Vec::new();
        let manifest = &self.signed.manifest;
        let owners = manifest
            .tables
            .iter()
            .map(|t| (format!("table {}", t.schema.name), &t.chunks))
            .chain(manifest.files.iter().map(|f| (format!("{} file {}", f.role, f.name), &f.chunks)));
        for (owner, refs) in owners {
            for chunk in refs {
                match self.repo.chunk_size(&chunk.id)? {
                    None => out.push(format!("chunk {} of {owner} is missing", chunk.id)),
                    Some(size) if size != chunk.stored => {
                        out.push(format!("chunk {} of {owner} has {size} bytes, not {}", chunk.id, chunk.stored))
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(out)
    }

    /// A table's rows, checked against the manifest as they are read.
    pub fn rows(&self, table: &'a TableEntry) -> TableRows<'a> {
        TableRows {
            key: self.key,
            stream: ChunkStream::new(self.repo, self.key, &table.chunks),
            table,
            rows: 0,
            done: false,
        }
    }

    /// A file's content, checked against its digest.
    pub fn file(&self, file: &FileEntry) -> Result<Vec<u8>, BackupError> {
        let mut stream = ChunkStream::new(self.repo, self.key, &file.chunks);
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).map_err(|e| unwrap_io(e, &format!("{} file {}", file.role, file.name)))?;
        if bytes.len() as u64 != file.bytes || self.key.keyed_digest(&phivault_crypto::sha256(&bytes)) != file.digest {
            return Err(BackupError::Io(format!("{} file {} does not match its manifest", file.role, file.name)));
        }
        Ok(bytes)
    }
}

/// The chunk errors a reader raised travel through `io::Error`; take them back out.
fn unwrap_io(e: std::io::Error, what: &str) -> BackupError {
    match e.into_inner().map(|inner| inner.downcast::<BackupError>()) {
        Some(Ok(backup)) => *backup,
        Some(Err(other)) => BackupError::Io(format!("{what} cannot be read: {other}")),
        None => BackupError::Io(format!("{what} cannot be read")),
    }
}

/// The plaintext of a list of chunks, fetched and opened one at a time.
struct ChunkStream<'a> {
    repo: &'a dyn Repository,
    key: &'a BackupKey,
    refs: std::slice::Iter<'a, ChunkRef>,
    current: Vec<u8>,
    pos: usize,
    bytes: u64,
    hash: digest::Context,
}

impl<'a> ChunkStream<'a> {
    fn new(repo: &'a dyn Repository, key: &'a BackupKey, refs: &'a [ChunkRef]) -> Self {
        Self {
            repo,
            key,
            refs: refs.iter(),
            current: Vec::new(),
            pos: 0,
            bytes: 0,
            hash: digest::Context::new(&digest::SHA256),
        }
    }

    fn next_chunk(&mut self) -> Result<bool, BackupError> {
        let Some(chunk) = self.refs.next() else {
            return Ok(false);
        };
        let sealed = self
            .repo
            .get_chunk(&chunk.id)?
            .ok_or_else(|| BackupError::Chunk { id: chunk.id.to_string(), why: "is missing".into() })?;
        self.current = chunks::open(self.key, &chunk.id, &sealed)?;
        self.pos = 0;
        self.bytes += self.current.len() as u64;
        self.hash.update(&self.current);
        Ok(true)
    }
}

impl Read for ChunkStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.current.len() {
            if !self.next_chunk().map_err(std::io::Error::other)? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Rows of one table; the last item is an error if the rows, their count or their digest
/// are not what the manifest says.
pub struct TableRows<'a> {
    key: &'a BackupKey,
    stream: ChunkStream<'a>,
    table: &'a TableEntry,
    rows: u64,
    done: bool,
}

impl std::fmt::Debug for TableRows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableRows").field("table", &self.table.schema.name).field("rows", &self.rows).finish()
    }
}

impl Iterator for TableRows<'_> {
    type Item = Result<Vec<Value>, BackupError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let name = &self.table.schema.name;
        let bad = |why: String| BackupError::Table { table: name.clone(), why };
        match decode_row(&mut self.stream, &self.table.schema) {
            Ok(Some(row)) => {
                self.rows += 1;
                Some(Ok(row))
            }
            Ok(None) => {
                self.done = true;
                let hash = std::mem::replace(&mut self.stream.hash, digest::Context::new(&digest::SHA256)).finish();
                let digest = self.key.keyed_digest(hash.as_ref());
                if self.rows != self.table.rows {
                    Some(Err(bad(format!("holds {} rows, its manifest says {}", self.rows, self.table.rows))))
                } else if self.stream.bytes != self.table.bytes || digest != self.table.digest {
                    Some(Err(bad("does not match its manifest's digest".into())))
                } else {
                    None
                }
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The repository cannot be trusted to restore what it claims.
    Problem,
    /// Worth knowing; restores are unaffected.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub what: String,
}

impl Finding {
    fn problem(what: impl Into<String>) -> Self {
        Self { severity: Severity::Problem, what: what.into() }
    }
    fn warning(what: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, what: what.into() }
    }
    pub fn is_problem(&self) -> bool {
        self.severity == Severity::Problem
    }
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Manifests whose signature verified, oldest first.
    pub manifests: Vec<SignedManifest>,
    pub chunks_present: u64,
    /// Chunks decrypted and checked against their names (`read_data`).
    pub chunks_read: u64,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        !self.findings.iter().any(Finding::is_problem)
    }
}

/// Checks a repository: every manifest's signature and place in the sequence, that every
/// chunk a manifest names is present with its size, and with `read_data` (the secret keys
/// given; each manifest's chunks are read with the key that signed it) that every chunk
/// decrypts to the content its name says. `expected_newest` is the
/// newest backup the installation itself recorded `(seq, digest)`: a repository without it
/// was rolled back.
pub fn verify_repository(
    repo: &dyn Repository,
    keys: &[BackupPublicKey],
    read_data: &[BackupKey],
    expected_newest: Option<(u64, &str)>,
) -> Result<VerifyReport, BackupError> {
    let mut report = VerifyReport::default();
    let names = repo.list_manifests()?;
    if names.is_empty() {
        report.findings.push(Finding::problem(format!("{} holds no backup", repo.describe())));
    }
    let mut previous: Option<(u64, String)> = None;
    for name in &names {
        let bytes = repo.get_manifest(name)?;
        match SignedManifest::open(name, &bytes, keys) {
            Ok(signed) => {
                let m = &signed.manifest;
                match &previous {
                    // Gaps are backups pruned away; a manifest that names another
                    // predecessor than the one before it was put in from elsewhere.
                    Some((seq, digest)) if m.seq == seq + 1 && m.previous.as_deref() != Some(digest.as_str()) => {
                        report.findings.push(Finding::problem(format!(
                            "backup {name} does not follow backup #{seq} in this repository (it names another predecessor): \
                             it was copied in from another repository or the one before it was replaced"
                        )));
                    }
                    Some((seq, _)) if m.seq <= *seq => {
                        report
                            .findings
                            .push(Finding::problem(format!("backup {name} repeats sequence number {}", m.seq)));
                    }
                    _ => {}
                }
                previous = Some((m.seq, signed.digest.clone()));
                report.manifests.push(signed);
            }
            Err(e) => {
                report.findings.push(Finding::problem(e.to_string()));
                previous = None;
            }
        }
    }
    if let Some((seq, digest)) = expected_newest {
        match report.manifests.iter().find(|m| m.manifest.seq == seq) {
            Some(m) if m.digest == digest => {}
            Some(m) => report.findings.push(Finding::problem(format!(
                "backup #{seq} ({}) is not the one this installation made: it was replaced",
                m.name
            ))),
            None if report.manifests.iter().any(|m| m.manifest.seq > seq) => {}
            None => report.findings.push(Finding::problem(format!(
                "the newest backup this installation made, #{seq}, is not in the repository: it was rolled back or deleted"
            ))),
        }
    }

    let stored: BTreeMap<ChunkId, u64> = repo.list_chunks()?.into_iter().collect();
    report.chunks_present = stored.len() as u64;
    let mut referenced = BTreeSet::new();
    for signed in &report.manifests {
        for chunk in signed.manifest.chunk_refs() {
            if !referenced.insert(chunk.id.clone()) {
                continue;
            }
            match stored.get(&chunk.id) {
                None => report
                    .findings
                    .push(Finding::problem(format!("chunk {} of backup {} is missing", chunk.id, signed.name))),
                Some(&size) if size != chunk.stored => report.findings.push(Finding::problem(format!(
                    "chunk {} of backup {} has {size} bytes, not the {} its manifest says",
                    chunk.id, signed.name, chunk.stored
                ))),
                Some(_) if !read_data.is_empty() => {
                    let Some(key) = read_data.iter().find(|k| k.id() == signed.manifest.key_id) else {
                        report.findings.push(Finding::problem(format!(
                            "backup {} is under backup key {}, which was not given: its chunks were not read",
                            signed.name, signed.manifest.key_id
                        )));
                        continue;
                    };
                    {
                        let sealed = match repo.get_chunk(&chunk.id) {
                            Ok(Some(sealed)) => sealed,
                            Ok(None) => {
                                report.findings.push(Finding::problem(format!(
                                    "chunk {} of backup {} vanished while it was verified",
                                    chunk.id, signed.name
                                )));
                                continue;
                            }
                            Err(e) => {
                                report.findings.push(Finding::problem(format!("{e} (backup {})", signed.name)));
                                continue;
                            }
                        };
                        match chunks::open(key, &chunk.id, &sealed) {
                            Ok(_) => report.chunks_read += 1,
                            Err(e) => report.findings.push(Finding::problem(format!("{e} (backup {})", signed.name))),
                        }
                    }
                }
                Some(_) => {}
            }
        }
    }
    let unreferenced: Vec<&ChunkId> = stored.keys().filter(|id| !referenced.contains(*id)).collect();
    if !unreferenced.is_empty() {
        report.findings.push(Finding::warning(format!(
            "{} chunks no backup names (left by an interrupted backup, or put there; `phivault backup prune` removes them), \
             the first {}",
            unreferenced.len(),
            unreferenced[0]
        )));
    }
    Ok(report)
}
