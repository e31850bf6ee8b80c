//! phivault's backup format (45 CFR 164.308(a)(7)(ii)(A) data backup plan,
//! 164.310(d)(2)(iv) data backup and storage).
//!
//! ```text
//! backup key (file, kept off the host too) ──HKDF──▶ chunk-id key  (HMAC-SHA-256: content address)
//!                                            ├──▶ chunk key      (AES-256-GCM over zstd(plaintext))
//!                                            ├──▶ manifest key   (Ed25519: signs manifests)
//!                                            └──▶ chunking seed  (content-defined cut points)
//! database rows (canonical encoding, per table) ─┐
//! data-dir files (config, key file, policies…) ──┴─▶ FastCDC chunks ─▶ repository/chunks/…
//! manifest (tables, files, chunk lists, audit size and root) ─sign─▶ repository/manifests/…
//! ```
//!
//! Chunks are named by a keyed hash of their plaintext, so identical content is stored once
//! across backups (every backup is incremental by construction) while a storage provider
//! cannot confirm a guessed content. Records stay sealed under their own data keys inside;
//! the backup key adds a second layer and covers what the database holds in the clear
//! (account hashes, the audit trail). The crate knows no SQL: the store streams rows in
//! and reads them out through [`TableSink`] and [`BackupReader`].

mod chunks;
mod content;
mod error;
mod key;
mod manifest;
mod prune;
mod reader;
mod repo;
mod rows;
mod writer;

pub use chunks::ChunkId;
pub use content::{ContentDigest, DigestSink};
pub use error::BackupError;
pub use key::{BackupKey, BackupPublicKey, public_path};
pub use manifest::{
    AuditMark, ChunkRef, FileEntry, MANIFEST_FORMAT, Manifest, SignedManifest, TableEntry, manifest_key_id, sha256_hex,
};
pub use prune::{Retention, select_kept};
pub use reader::{BackupReader, Finding, Severity, TableRows, VerifyReport, verify_repository};
pub use repo::{DirRepository, RepoLock, Repository};
pub use rows::{ColumnKind, ColumnSpec, TableSchema, Value, decode_row, encode_row};
pub use writer::{BackupWriter, Source, TableSink};
