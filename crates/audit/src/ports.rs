//! The audit storage port, implemented by `phivault-store`.

use async_trait::async_trait;
use phivault_ports::StoreError;

use crate::{Checkpoint, StoredEntry};

#[async_trait]
pub trait AuditStore: Send + Sync + std::fmt::Debug {
    /// Appends canonical entries after the current tail, computing their leaf hashes and
    /// chain values, in one durable transaction; serialized across processes. With
    /// `settle`, first moves every entry waiting in the store's outbox (entries committed
    /// with the records they describe, by any process) into the trail, in the same
    /// transaction, so each is chained exactly once. Returns the sequence number given to
    /// the first of `entries`.
    async fn append_audit(&self, entries: &[(i64, Vec<u8>)], settle: bool) -> Result<u64, StoreError>;
    /// Up to `limit` entries from `from_seq` on, in order.
    async fn audit_entries(&self, from_seq: u64, limit: u64) -> Result<Vec<StoredEntry>, StoreError>;
    /// Up to `limit` entries from `from_seq` on that name `patient_id`, in order, read
    /// through an index by patient; `None` when the store keeps no such index (readers
    /// then walk the whole trail).
    async fn patient_entries(
        &self,
        patient_id: &str,
        from_seq: u64,
        limit: u64,
    ) -> Result<Option<Vec<StoredEntry>>, StoreError> {
        let _ = (patient_id, from_seq, limit);
        Ok(None)
    }
    /// The number of entries and the chain value after the last one.
    async fn audit_head(&self) -> Result<(u64, crate::merkle::Hash), StoreError>;
    async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;
    /// Removes the content of entries before `end_seq` (written to an archive file first),
    /// keeping their leaf and chain hashes so the tree stays verifiable; returns how many
    /// entries were emptied.
    ///
    /// Stores that keep no archive (test doubles, benchmarks' discarding stores) refuse.
    async fn archive_prefix(&self, end_seq: u64) -> Result<u64, StoreError> {
        let _ = end_seq;
        Err(StoreError::Unavailable("this audit store cannot archive".into()))
    }
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;
    /// The `limit` largest checkpoints naming `key_id`, largest first: what the signer needs
    /// each tick, without reading a table that grows by a row a minute.
    async fn newest_checkpoints(&self, key_id: &str, limit: usize) -> Result<Vec<Checkpoint>, StoreError> {
        let mut all: Vec<Checkpoint> = self.checkpoints().await?.into_iter().filter(|c| c.key_id == key_id).collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.tree_size));
        all.truncate(limit);
        Ok(all)
    }
}
