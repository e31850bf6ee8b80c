//! Writing a backup: tables and files are streamed in, cut into chunks, stored once each,
//! and listed in a manifest that is signed and stored last.

use aws_lc_rs::digest;

use crate::chunks::{self, Chunker};
use crate::{
    AuditMark, BackupError, BackupKey, BackupPublicKey, ChunkRef, ContentDigest, FileEntry, MANIFEST_FORMAT, Manifest,
    Repository, SignedManifest, TableEntry, TableSchema, Value, encode_row,
};

/// Where a store streams its tables: one `begin_table`, its rows, one `end_table`, per table.
pub trait TableSink: Send {
    /// How many rows all tables hold together (for a progress bar).
    fn expect_rows(&mut self, _total: u64) {}
    fn begin_table(&mut self, schema: TableSchema) -> Result<(), BackupError>;
    fn row(&mut self, row: &[Value]) -> Result<(), BackupError>;
    fn end_table(&mut self) -> Result<(), BackupError>;
}

struct OpenStream {
    rows: u64,
    bytes: u64,
    hash: digest::Context,
    content: ContentDigest,
    chunks: Vec<ChunkRef>,
}

/// Builds one backup in a repository. Hold the repository's lock while it lives.
pub struct BackupWriter<'a> {
    repo: &'a dyn Repository,
    key: &'a BackupKey,
    chunker: Chunker,
    table: Option<(TableSchema, OpenStream)>,
    tables: Vec<TableEntry>,
    files: Vec<FileEntry>,
    /// Chunks this backup stored (the rest were already there).
    pub new_chunks: u64,
    pub new_bytes: u64,
    /// Backup keys this one replaced: a newest backup made under one of them still counts.
    known_keys: Vec<BackupPublicKey>,
    /// Chunks the newest backup names, with the sizes it recorded: a stored chunk of
    /// another size (truncated, damaged, or left by an interrupted backup) is written again
    /// rather than trusted.
    known_chunks: std::collections::HashMap<crate::ChunkId, u64>,
}

impl std::fmt::Debug for BackupWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupWriter").field("repo", &self.repo).field("tables", &self.tables.len()).finish()
    }
}

/// What the caller knows about the source, for the manifest.
#[derive(Debug, Clone)]
pub struct Source {
    pub engine: String,
    pub schema_version: i64,
    pub audit: AuditMark,
    pub phivault_version: String,
    /// When the snapshot was taken (the data's age is measured from here, not from when
    /// the backup finished writing).
    pub taken_ms: i64,
}

impl<'a> BackupWriter<'a> {
    pub fn new(repo: &'a dyn Repository, key: &'a BackupKey) -> Self {
        Self {
            repo,
            key,
            chunker: Chunker::new(key.chunk_seed()),
            table: None,
            tables: Vec::new(),
            files: Vec::new(),
            new_chunks: 0,
            new_bytes: 0,
            known_keys: Vec::new(),
            known_chunks: std::collections::HashMap::new(),
        }
    }

    /// Reads the repository's newest backup (checked under `key` or `retired`), whose chunks
    /// this backup may reuse. Refuses a repository whose newest manifest does not verify.
    pub fn after_newest(mut self, retired: Vec<BackupPublicKey>) -> Result<Self, BackupError> {
        self.known_keys = retired;
        let mut keys = self.known_keys.clone();
        keys.push(self.key.public().clone());
        if let Some(signed) = newest(self.repo, &keys)? {
            self.known_chunks = signed.manifest.chunk_refs().map(|c| (c.id.clone(), c.stored)).collect();
        }
        Ok(self)
    }

    fn store_chunk(&mut self, plaintext: &[u8]) -> Result<ChunkRef, BackupError> {
        let id = chunks::name(self.key, plaintext);
        if let Some(stored) = self.repo.chunk_size(&id)?
            && self.known_chunks.get(&id) == Some(&stored)
        {
            return Ok(ChunkRef { id, stored });
        }
        let sealed = chunks::seal(self.key, &id, plaintext)?;
        self.repo.put_chunk(&id, &sealed)?;
        self.new_chunks += 1;
        self.new_bytes += sealed.len() as u64;
        Ok(ChunkRef { id, stored: sealed.len() as u64 })
    }

    /// Cuts what is buffered (all of it when `finish`) and stores the chunks.
    fn flush(&mut self, finish: bool) -> Result<Vec<ChunkRef>, BackupError> {
        // Called after every row: nothing to cut most of the time, and taking the chunker
        // out (to store chunks while it drains) must not allocate a new 8 MiB buffer.
        if !self.chunker.is_ready(finish) {
            return Ok(Vec::new());
        }
        let mut pieces = Vec::new();
        let mut chunker = std::mem::replace(&mut self.chunker, Chunker::empty(self.key.chunk_seed()));
        let result = chunker.drain(finish, |piece| {
            pieces.push(self.store_chunk(piece)?);
            Ok(())
        });
        self.chunker = chunker;
        result.map(|()| pieces)
    }

    /// Adds a whole file (configuration, key file, policies, witness).
    pub fn add_file(&mut self, role: &str, name: &str, bytes: &[u8]) -> Result<(), BackupError> {
        if self.table.is_some() {
            return Err(BackupError::Io("a file was added while a table was open".into()));
        }
        self.chunker.buffer().extend_from_slice(bytes);
        let chunks = self.flush(true)?;
        self.files.push(FileEntry {
            role: role.to_owned(),
            name: name.to_owned(),
            bytes: bytes.len() as u64,
            digest: self.key.keyed_digest(&phivault_crypto::sha256(bytes)),
            chunks,
        });
        Ok(())
    }

    /// Signs the manifest, once every chunk it names is stored. The backup exists from the
    /// moment the caller stores the returned bytes ([`Repository::put_manifest`]), and not
    /// before: the caller records it first.
    pub fn seal(mut self, source: Source) -> Result<(SignedManifest, Vec<u8>), BackupError> {
        if self.table.is_some() {
            return Err(BackupError::Io("the backup ended inside a table".into()));
        }
        let mut keys = self.known_keys.clone();
        keys.push(self.key.public().clone());
        let (seq, previous) = match newest(self.repo, &keys)? {
            Some(signed) => (signed.manifest.seq, Some(signed.digest)),
            None => (0, None),
        };
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            id: phivault_crypto::random_token(12).map_err(|_| BackupError::Crypto)?.replace(['-', '_'], "x"),
            seq: seq + 1,
            previous,
            created_ms: source.taken_ms,
            key_id: self.key.id().to_owned(),
            phivault_version: source.phivault_version,
            engine: source.engine,
            schema_version: source.schema_version,
            audit: source.audit,
            tables: std::mem::take(&mut self.tables),
            files: std::mem::take(&mut self.files),
        };
        // Every chunk must be there before the manifest that names it.
        for chunk in manifest.chunk_refs() {
            if self.repo.chunk_size(&chunk.id)? != Some(chunk.stored) {
                return Err(BackupError::Chunk {
                    id: chunk.id.to_string(),
                    why: "vanished while the backup was written".into(),
                });
            }
        }
        SignedManifest::sign(manifest, self.key)
    }
}

/// The repository's newest backup, checked: it must verify under one of `keys` (the
/// current and retired backup keys), so that a backup never chains onto, or numbers itself
/// after, a manifest someone put there.
fn newest(repo: &dyn Repository, keys: &[BackupPublicKey]) -> Result<Option<SignedManifest>, BackupError> {
    let Some(name) = repo.list_manifests()?.pop() else {
        return Ok(None);
    };
    let bytes = repo.get_manifest(&name)?;
    SignedManifest::open(&name, &bytes, keys).map(Some).map_err(|e| {
        BackupError::Repository(format!(
            "refusing to add a backup after one that does not verify: {e}; run `phivault backup verify`"
        ))
    })
}

impl TableSink for BackupWriter<'_> {
    fn expect_rows(&mut self, _total: u64) {}

    fn begin_table(&mut self, schema: TableSchema) -> Result<(), BackupError> {
        if self.table.is_some() {
            return Err(BackupError::Table { table: schema.name, why: "began inside another table".into() });
        }
        let stream = OpenStream {
            rows: 0,
            bytes: 0,
            hash: digest::Context::new(&digest::SHA256),
            content: ContentDigest::default(),
            chunks: Vec::new(),
        };
        self.table = Some((schema, stream));
        Ok(())
    }

    fn row(&mut self, row: &[Value]) -> Result<(), BackupError> {
        let Some((schema, stream)) = self.table.as_mut() else {
            return Err(BackupError::Io("a row came outside any table".into()));
        };
        if row.len() != schema.columns.len() {
            return Err(BackupError::Table {
                table: schema.name.clone(),
                why: "a row has the wrong number of values".into(),
            });
        }
        let buffer = self.chunker.buffer();
        let start = buffer.len();
        encode_row(row, buffer);
        stream.hash.update(&buffer[start..]);
        stream.content.add_encoded(&buffer[start..]);
        stream.bytes += (buffer.len() - start) as u64;
        stream.rows += 1;
        let stored = self.flush(false)?;
        if let Some((_, stream)) = self.table.as_mut() {
            stream.chunks.extend(stored);
        }
        Ok(())
    }

    fn end_table(&mut self) -> Result<(), BackupError> {
        let stored = self.flush(true)?;
        let Some((schema, mut stream)) = self.table.take() else {
            return Err(BackupError::Io("a table ended that was not begun".into()));
        };
        stream.chunks.extend(stored);
        self.tables.push(TableEntry {
            schema,
            rows: stream.rows,
            bytes: stream.bytes,
            digest: self.key.keyed_digest(stream.hash.finish().as_ref()),
            content: self.key.content_digest(&stream.content),
            chunks: stream.chunks,
        });
        Ok(())
    }
}
