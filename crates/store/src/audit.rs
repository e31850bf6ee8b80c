//! The [`AuditStore`] implementation. Appends are serialized across processes (SQLite: the
//! single writer; PostgreSQL: a transaction-scoped advisory lock), so one global sequence
//! and one hash chain cover every node's entries.

use async_trait::async_trait;
use phivault_audit::merkle::{CHAIN_START, Hash, chain_hash, leaf_hash};
use phivault_audit::{AuditEvent, AuditStore, Checkpoint, StoredEntry};
use phivault_service::StoreError;
use sqlx::Row;

use crate::{Engine, SqlStore, unavailable};

/// Names phivault's audit-append lock among PostgreSQL advisory locks.
const PG_AUDIT_LOCK: i64 = 0x7076_6175_6469_7431;

fn hash_of(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt("audit row: hash length"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A row of `seq, entry, leaf, chain`.
fn stored_entry(r: &sqlx::any::AnyRow) -> Result<StoredEntry, StoreError> {
    let c = |_| StoreError::Corrupt("audit row");
    Ok(StoredEntry {
        seq: u64::try_from(r.try_get::<i64, _>(0).map_err(c)?).unwrap_or(u64::MAX),
        bytes: r.try_get(1).map_err(c)?,
        leaf: hash_of(r.try_get(2).map_err(c)?)?,
        chain: hash_of(r.try_get(3).map_err(c)?)?,
    })
}

/// The patients an entry names, for the index by patient.
fn patients_named(bytes: &[u8]) -> Vec<String> {
    let mut patients = AuditEvent::from_canonical(bytes).map(|e| e.patient_ids).unwrap_or_default();
    patients.sort();
    patients.dedup();
    patients
}

/// Entries waiting in the outbox, oldest first: `(id, time_ms, canonical bytes)`.
type Outboxed = Vec<(i64, i64, Vec<u8>)>;

fn outboxed(rows: &[sqlx::any::AnyRow]) -> Result<Outboxed, StoreError> {
    let c = |_| StoreError::Corrupt("audit outbox row");
    let mut rows: Outboxed = rows
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(c)?, r.try_get(1).map_err(c)?, r.try_get(2).map_err(c)?)))
        .collect::<Result<_, StoreError>>()?;
    rows.sort_by_key(|(id, _, _)| *id);
    Ok(rows)
}

impl SqlStore {
    /// SQLite: the whole append as one round trip — `BEGIN IMMEDIATE; INSERT ...; DELETE
    /// the outboxed ones; COMMIT` — from the cached chain head. Only integers and hex blob
    /// literals are spliced into the statement. If another process appended meanwhile (it
    /// may have chained the same outboxed entries), the insert hits an existing seq, the
    /// transaction is rolled back, and the caller retries from the stored head.
    async fn append_sqlite(
        &self,
        outbox: &Outboxed,
        entries: &[(i64, Vec<u8>)],
        head: (i64, Hash),
    ) -> Result<(u64, (i64, Hash)), StoreError> {
        let (mut seq, mut chain) = head;
        let mut values = Vec::with_capacity(outbox.len() + entries.len());
        let mut named = Vec::new();
        let all = outbox.iter().map(|(_, t, b)| (*t, b)).chain(entries.iter().map(|(t, b)| (*t, b)));
        for (time_ms, bytes) in all {
            let leaf = leaf_hash(bytes);
            chain = chain_hash(&chain, &leaf);
            values.push(format!("({seq}, {time_ms}, X'{}', X'{}', X'{}')", hex(bytes), hex(&leaf), hex(&chain)));
            // Patient ids as hex literals: client-influenced text is never spliced.
            named.extend(
                patients_named(bytes).iter().map(|p| format!("(CAST(X'{}' AS TEXT), {seq})", hex(p.as_bytes()))),
            );
            seq += 1;
        }
        let first = head.0 + outbox.len() as i64;
        let mut sql = format!(
            "BEGIN IMMEDIATE; INSERT INTO audit_log (seq, time_ms, entry, leaf, chain) VALUES {};",
            values.join(", ")
        );
        if !named.is_empty() {
            sql.push_str(&format!(
                " INSERT OR IGNORE INTO audit_patients (patient_id, seq) VALUES {};",
                named.join(", ")
            ));
        }
        if !outbox.is_empty() {
            let ids: Vec<String> = outbox.iter().map(|(id, _, _)| id.to_string()).collect();
            sql.push_str(&format!(" DELETE FROM audit_pending WHERE id IN ({});", ids.join(", ")));
        }
        sql.push_str(" COMMIT;");
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            return Err(if crate::records::is_unique_violation(&e) { StoreError::Conflict } else { unavailable(e) });
        }
        Ok((first as u64, (seq, chain)))
    }

    async fn stored_head(&self) -> Result<(i64, Hash), StoreError> {
        let (size, chain) = self.audit_head().await?;
        Ok((size as i64, chain))
    }

    async fn sqlite_outbox(&self, settle: bool) -> Result<Outboxed, StoreError> {
        if !settle {
            return Ok(Vec::new());
        }
        let rows = sqlx::query("SELECT id, time_ms, entry FROM audit_pending ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        outboxed(&rows)
    }
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, entries: &[(i64, Vec<u8>)], settle: bool) -> Result<u64, StoreError> {
        let _guard = self.write_guard().await;
        if self.engine == Engine::Sqlite {
            let cached = *self.audit_head.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let head = match cached {
                Some(h) => h,
                None => self.stored_head().await?,
            };
            let mut outbox = self.sqlite_outbox(settle).await?;
            if entries.is_empty() && outbox.is_empty() {
                return Ok(head.0 as u64);
            }
            let mut result = self.append_sqlite(&outbox, entries, head).await;
            for _ in 0..8 {
                if !matches!(result, Err(StoreError::Conflict)) {
                    break;
                }
                // Another process appended: start again from the stored head, and from the
                // outbox as it is now (it may have chained some of those entries).
                let head = self.stored_head().await?;
                outbox = self.sqlite_outbox(settle).await?;
                result = self.append_sqlite(&outbox, entries, head).await;
            }
            let mut cache = self.audit_head.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            return match result {
                Ok((first, head)) => {
                    *cache = Some(head);
                    Ok(first)
                }
                Err(e) => {
                    *cache = None;
                    Err(e)
                }
            };
        }
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_AUDIT_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        // Under the append lock: whatever this transaction deletes from the outbox, no other
        // appender can chain as well.
        let outbox = if settle {
            let rows = sqlx::query("DELETE FROM audit_pending RETURNING id, time_ms, entry")
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
            outboxed(&rows)?
        } else {
            Vec::new()
        };
        let last = sqlx::query("SELECT seq, chain FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        let (mut seq, mut chain) = match last {
            Some(row) => {
                let seq: i64 = row.try_get(0).map_err(|_| StoreError::Corrupt("audit row"))?;
                (seq + 1, hash_of(row.try_get(1).map_err(|_| StoreError::Corrupt("audit row"))?)?)
            }
            None => (0, CHAIN_START),
        };
        let first = (seq + outbox.len() as i64) as u64;
        let all = outbox.iter().map(|(_, t, b)| (*t, b)).chain(entries.iter().map(|(t, b)| (*t, b)));
        for (time_ms, bytes) in all {
            let leaf = leaf_hash(bytes);
            chain = chain_hash(&chain, &leaf);
            sqlx::query("INSERT INTO audit_log (seq, time_ms, entry, leaf, chain) VALUES ($1, $2, $3, $4, $5)")
                .bind(seq)
                .bind(time_ms)
                .bind(bytes.clone())
                .bind(leaf.to_vec())
                .bind(chain.to_vec())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            for patient in patients_named(bytes) {
                sqlx::query("INSERT INTO audit_patients (patient_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(patient)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
            seq += 1;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(first)
    }

    async fn patient_entries(
        &self,
        patient_id: &str,
        from_seq: u64,
        limit: u64,
    ) -> Result<Option<Vec<StoredEntry>>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.seq, a.entry, a.leaf, a.chain FROM audit_patients p JOIN audit_log a ON a.seq = p.seq \
             WHERE p.patient_id = $1 AND p.seq >= $2 ORDER BY p.seq LIMIT $3",
        )
        .bind(patient_id.to_owned())
        .bind(i64::try_from(from_seq).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(stored_entry).collect::<Result<_, _>>().map(Some)
    }

    async fn audit_entries(&self, from_seq: u64, limit: u64) -> Result<Vec<StoredEntry>, StoreError> {
        let rows = sqlx::query("SELECT seq, entry, leaf, chain FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2")
            .bind(i64::try_from(from_seq).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(stored_entry).collect()
    }

    async fn archive_prefix(&self, end_seq: u64) -> Result<u64, StoreError> {
        let sql = match self.engine {
            Engine::Sqlite => "UPDATE audit_log SET entry = $1 WHERE seq < $2 AND length(entry) > 0",
            Engine::Postgres => "UPDATE audit_log SET entry = $1 WHERE seq < $2 AND octet_length(entry) > 0",
        };
        let _guard = self.write_guard().await;
        let done = sqlx::query(sql)
            .bind(Vec::<u8>::new())
            .bind(i64::try_from(end_seq).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected())
    }

    async fn audit_head(&self) -> Result<(u64, Hash), StoreError> {
        let row = sqlx::query("SELECT seq, chain FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        match row {
            Some(r) => {
                let seq: i64 = r.try_get(0).map_err(|_| StoreError::Corrupt("audit row"))?;
                Ok((seq as u64 + 1, hash_of(r.try_get(1).map_err(|_| StoreError::Corrupt("audit row"))?)?))
            }
            None => Ok((0, CHAIN_START)),
        }
    }

    async fn insert_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root, chain, time_ms, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(i64::try_from(cp.tree_size).unwrap_or(i64::MAX))
        .bind(cp.root.clone())
        .bind(cp.chain.clone())
        .bind(cp.time_ms)
        .bind(cp.key_id.clone())
        .bind(cp.signature.clone())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT tree_size, root, chain, time_ms, key_id, signature FROM audit_checkpoints ORDER BY tree_size",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        checkpoint_rows(&rows)
    }

    async fn newest_checkpoints(&self, key_id: &str, limit: usize) -> Result<Vec<Checkpoint>, StoreError> {
        // Through the primary key, backwards: a few rows, however long the table.
        let rows = sqlx::query(
            "SELECT tree_size, root, chain, time_ms, key_id, signature FROM audit_checkpoints \
             WHERE key_id = $1 ORDER BY tree_size DESC LIMIT $2",
        )
        .bind(key_id.to_owned())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        checkpoint_rows(&rows)
    }
}

fn checkpoint_rows(rows: &[sqlx::any::AnyRow]) -> Result<Vec<Checkpoint>, StoreError> {
    rows.iter()
        .map(|r| {
            let c = |_| StoreError::Corrupt("checkpoint row");
            Ok(Checkpoint {
                tree_size: u64::try_from(r.try_get::<i64, _>(0).map_err(c)?).unwrap_or(0),
                root: r.try_get(1).map_err(c)?,
                chain: r.try_get(2).map_err(c)?,
                time_ms: r.try_get(3).map_err(c)?,
                key_id: r.try_get(4).map_err(c)?,
                signature: r.try_get(5).map_err(c)?,
            })
        })
        .collect()
}
