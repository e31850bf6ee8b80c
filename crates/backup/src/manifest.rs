//! The manifest: what one backup holds (tables, files, their chunks and digests, the audit
//! trail's size and root at that moment), signed with the backup key's Ed25519 key.
//!
//! File layout: a first line `phivault-backup-manifest/1 <key id> <signature, base64url>`,
//! then the JSON body. The signature covers `phivault-backup-manifest/1\n` and the body's
//! exact bytes, so nothing is re-serialized before checking. Manifests hold no PHI: table
//! and column names, row counts and sizes, keyed chunk names and keyed digests, the audit
//! trail's size and Merkle root.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::{BackupError, BackupKey, BackupPublicKey, ChunkId, TableSchema};

pub const MANIFEST_FORMAT: &str = "phivault-backup-manifest/1";

/// A chunk of a table or file, with its stored (sealed) size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    pub id: ChunkId,
    pub stored: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    #[serde(flatten)]
    pub schema: TableSchema,
    pub rows: u64,
    /// Length of the canonical row stream.
    pub bytes: u64,
    /// SHA-256 of the canonical row stream, keyed ([`crate::BackupKey::keyed_digest`]).
    pub digest: String,
    /// The rows' order-independent content digest ([`crate::ContentDigest`]), keyed: what
    /// a restored database, on either engine, must give.
    pub content: String,
    pub chunks: Vec<ChunkRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// What the file is for (`config`, `key_file`, `policy`, …), which decides where a
    /// restore puts it.
    pub role: String,
    /// Its name within its role (a policy file's name; otherwise the file name).
    pub name: String,
    pub bytes: u64,
    /// SHA-256 of the file, keyed ([`crate::BackupKey::keyed_digest`]).
    pub digest: String,
    pub chunks: Vec<ChunkRef>,
}

/// The audit trail at the moment of the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditMark {
    pub size: u64,
    /// RFC 6962 Merkle root over the entries' leaf hashes, hex.
    pub root: String,
    /// The largest tree size a signed checkpoint in the backup covers (0: none).
    pub newest_checkpoint: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// Unique per backup.
    pub id: String,
    /// 1 for a repository's first backup, then one more than the newest present.
    pub seq: u64,
    /// SHA-256 (hex) of the manifest file this one follows in the repository.
    pub previous: Option<String>,
    pub created_ms: i64,
    pub key_id: String,
    pub phivault_version: String,
    /// `sqlite` or `postgres`: where the rows came from (a restore may go to either).
    pub engine: String,
    /// The database's migration version: a restore builds that schema, loads the rows,
    /// then migrates forward.
    pub schema_version: i64,
    pub audit: AuditMark,
    pub tables: Vec<TableEntry>,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Every chunk the backup needs, in restore order (duplicates included).
    pub fn chunk_refs(&self) -> impl Iterator<Item = &ChunkRef> {
        self.tables.iter().flat_map(|t| &t.chunks).chain(self.files.iter().flat_map(|f| &f.chunks))
    }

    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn plain_bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes).sum::<u64>() + self.files.iter().map(|f| f.bytes).sum::<u64>()
    }

    /// The file name it is stored under: sorts by sequence number.
    pub fn file_name(&self) -> String {
        format!("{:010}-{}", self.seq, self.id)
    }

    pub fn table(&self, name: &str) -> Option<&TableEntry> {
        self.tables.iter().find(|t| t.schema.name == name)
    }
}

/// A manifest as stored, with what its signature says about it.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    pub name: String,
    pub manifest: Manifest,
    /// SHA-256 of the whole file, hex: what the next manifest's `previous` names.
    pub digest: String,
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    [MANIFEST_FORMAT.as_bytes(), b"\n", body].concat()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The backup key id a stored manifest's header names (unchecked: for choosing the key to
/// check it with).
pub fn manifest_key_id(bytes: &[u8]) -> Option<String> {
    let header = bytes.split(|&b| b == b'\n').next()?;
    let mut parts = std::str::from_utf8(header).ok()?.split(' ');
    (parts.next()? == MANIFEST_FORMAT).then_some(())?;
    parts.next().map(str::to_owned)
}

/// SHA-256 of `bytes` in hex: how a manifest file's digest is written.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&phivault_crypto::sha256(bytes))
}

impl SignedManifest {
    /// Serializes and signs.
    pub(crate) fn sign(manifest: Manifest, key: &BackupKey) -> Result<(Self, Vec<u8>), BackupError> {
        let body = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| BackupError::Manifest { name: manifest.file_name(), why: e.to_string() })?;
        let signature = key.sign(&signed_message(&body));
        let mut bytes = format!("{MANIFEST_FORMAT} {} {}\n", key.id(), URL_SAFE_NO_PAD.encode(signature)).into_bytes();
        bytes.extend_from_slice(&body);
        let digest = hex(&phivault_crypto::sha256(&bytes));
        Ok((Self { name: manifest.file_name(), manifest, digest }, bytes))
    }

    /// Parses a stored manifest and checks its signature under one of `keys`; names what is
    /// wrong otherwise. The name it is stored under must be the one its content gives.
    pub fn open(name: &str, bytes: &[u8], keys: &[BackupPublicKey]) -> Result<Self, BackupError> {
        let bad = |why: String| BackupError::Manifest { name: name.to_owned(), why };
        let newline =
            bytes.iter().position(|&b| b == b'\n').ok_or_else(|| bad("is not a manifest (no header line)".into()))?;
        let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| bad("has a malformed header line".into()))?;
        let body = &bytes[newline + 1..];
        let mut parts = header.split(' ');
        let (Some(MANIFEST_FORMAT), Some(key_id), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(format!("has a malformed header line (expected {MANIFEST_FORMAT} <key id> <signature>)")));
        };
        let key = keys.iter().find(|k| k.id() == key_id).ok_or_else(|| {
            bad(format!("is signed by backup key {key_id}, which is not among the keys given (pass it with --key)"))
        })?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| bad("has a malformed signature".into()))?;
        if !key.verify(&signed_message(body), &signature) {
            return Err(bad(format!("has an invalid signature under backup key {key_id}: it was altered or replaced")));
        }
        let manifest: Manifest =
            serde_json::from_slice(body).map_err(|e| bad(format!("is signed but cannot be read: {e}")))?;
        if manifest.key_id != key_id {
            return Err(bad("names a key other than the one that signed it".into()));
        }
        if manifest.seq == 0 || manifest.seq >= 10_000_000_000 {
            return Err(bad("has a sequence number outside 1..9999999999".into()));
        }
        if manifest.file_name() != name {
            return Err(bad(format!(
                "is stored under another backup's name (its content says {})",
                manifest.file_name()
            )));
        }
        Ok(Self { name: name.to_owned(), manifest, digest: hex(&phivault_crypto::sha256(bytes)) })
    }
}
