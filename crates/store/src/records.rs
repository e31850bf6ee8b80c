//! The [`RecordStore`] implementation shared by both engines.

use async_trait::async_trait;
use phivault_crypto::WrappedDataKey;
use phivault_service::{
    DataKeyRewrap, Filter, PendingEntry, RecordStore, ScannedVersion, StoreError, StoreQuery, StoredDataKey,
    StoredVersion, VersionKey, VersionWrite,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::sql::{Arg, Sql, VERSION_COLUMNS, push_filter_list, push_filters, push_order};
use crate::{Engine, SqlStore, unavailable};

fn data_key_from_row(row: &AnyRow) -> Result<StoredDataKey, StoreError> {
    let get_err = |_| StoreError::Corrupt("data key row");
    let kek_id: Option<String> = row.try_get("kek_id").map_err(get_err)?;
    let wrapped: Option<Vec<u8>> = row.try_get("wrapped").map_err(get_err)?;
    Ok(StoredDataKey {
        key_id: row.try_get("key_id").map_err(get_err)?,
        scope: row.try_get("scope").map_err(get_err)?,
        wrapped: match (kek_id, wrapped) {
            (Some(kek_id), Some(wrapped)) => Some(WrappedDataKey { kek_id, wrapped }),
            _ => None,
        },
        created_ms: row.try_get("created_ms").map_err(get_err)?,
    })
}

fn version_from_row(row: &AnyRow) -> Result<StoredVersion, StoreError> {
    let get_err = |_| StoreError::Corrupt("resource row");
    Ok(StoredVersion {
        resource_type: row.try_get("resource_type").map_err(get_err)?,
        id: row.try_get("id").map_err(get_err)?,
        version: row.try_get("version").map_err(get_err)?,
        last_updated_ms: row.try_get("last_updated_ms").map_err(get_err)?,
        ciphertext: row.try_get("body").map_err(get_err)?,
        key: data_key_from_row(row)?,
    })
}

fn from_resources(engine: crate::Engine) -> Sql {
    let mut sql = Sql::new(engine);
    sql.push(&format!(
        "SELECT {VERSION_COLUMNS} FROM resources r JOIN data_keys k ON k.key_id = r.key_id WHERE r.resource_type = "
    ));
    sql
}

async fn count(conn: &mut AnyConnection, sql: &Sql) -> Result<u64, StoreError> {
    let row = sql.query().fetch_one(conn).await.map_err(unavailable)?;
    let n: i64 = row.try_get(0).map_err(|_| StoreError::Corrupt("count"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Searches and type histories leave out resources whose data key was destroyed
/// (crypto-shredded): they can no longer be shown, and must not break or pad a listing.
const LIVE_KEY: &str = " AND EXISTS (SELECT 1 FROM data_keys lk WHERE lk.key_id = r.key_id AND lk.wrapped IS NOT NULL)";

/// The "current version" condition. With filters it is written `+r.is_current`, which stops
/// the planner from proving the partial index `resources_current` usable: otherwise SQLite
/// 3.51 counts a filtered search by scanning that index over every row of the type (5 ms at
/// 100k patients) instead of probing the primary key with the few ids the filter yields.
fn current_condition(query: &StoreQuery) -> &'static str {
    if query.filters.is_empty() { " AND r.is_current = 1" } else { " AND +r.is_current = 1" }
}

fn limit_offset(sql: &mut Sql, limit: u64, offset: u64) {
    sql.push(" LIMIT ").arg(Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    sql.push(" OFFSET ").arg(Arg::Int(i64::try_from(offset).unwrap_or(i64::MAX)));
}

/// Stores an audit entry in the outbox within `tx`, the transaction of the act it records
/// (the trail chains it afterwards; see `phivault_audit::AuditStore::append_audit`).
pub(crate) async fn outbox(tx: &mut sqlx::AnyConnection, entry: &PendingEntry) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_pending (time_ms, entry) VALUES ($1, $2)")
        .bind(entry.time_ms)
        .bind(entry.canonical.clone())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || db.code().is_some_and(|c| c == "23505" || c == "1555" || c == "2067")
        }
        _ => false,
    }
}

#[async_trait]
impl RecordStore for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(unavailable)?;
        Ok(())
    }

    async fn emergency_mode(&self) -> Result<Option<phivault_service::EmergencyMode>, StoreError> {
        self.cached_emergency_mode().await
    }

    async fn set_emergency_mode(&self, mode: Option<phivault_service::EmergencyMode>) -> Result<(), StoreError> {
        self.store_emergency_mode(mode).await
    }

    async fn data_key(&self, scope: &str) -> Result<Option<StoredDataKey>, StoreError> {
        let row = sqlx::query("SELECT key_id, scope, kek_id, wrapped, created_ms FROM data_keys WHERE scope = $1")
            .bind(scope.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(data_key_from_row).transpose()
    }

    async fn read(
        &self,
        resource_type: &str,
        id: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let mut sql = from_resources(self.engine);
        sql.arg(Arg::Text(resource_type.to_owned())).push(" AND r.id = ").arg(Arg::Text(id.to_owned()));
        match version {
            Some(v) => sql.push(" AND r.version = ").arg(Arg::Int(v)),
            // `+` keeps planners on the primary key (resource_type, id): PostgreSQL's generic
            // plan otherwise walked the partial index of current rows (3 ms at 100k patients).
            None => sql.push(" AND +r.is_current = 1"),
        };
        let row = sql.query().fetch_optional(&self.pool).await.map_err(unavailable)?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn history(
        &self,
        resource_type: &str,
        id: Option<&str>,
        filters: &[Filter],
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<StoredVersion>, u64), StoreError> {
        if filters
            .iter()
            .any(|f| !matches!(f, Filter::Scope { .. } | Filter::WrittenSince(_) | Filter::CurrentDuring { .. }))
        {
            return Err(StoreError::Corrupt("history takes scope and time-window filters only"));
        }
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        let where_sql = || {
            let mut sql = Sql::new(self.engine);
            sql.arg(Arg::Text(resource_type.to_owned()));
            match id {
                Some(id) => {
                    sql.push(" AND r.id = ").arg(Arg::Text(id.to_owned()));
                }
                // A type's history skips crypto-shredded versions; one resource's history
                // still answers, so the caller learns it was destroyed.
                None => {
                    sql.push(LIVE_KEY);
                }
            }
            push_filter_list(&mut sql, resource_type, filters, false);
            sql
        };
        let mut total_sql = Sql::new(self.engine);
        total_sql.push("SELECT COUNT(*) FROM resources r WHERE r.resource_type = ").append(where_sql());
        let total = count(&mut conn, &total_sql).await?;
        let mut sql = from_resources(self.engine);
        sql.append(where_sql());
        sql.push(" ORDER BY r.last_updated_ms DESC, r.id DESC, r.version DESC");
        limit_offset(&mut sql, limit, offset);
        let rows = sql.query().fetch_all(&mut *conn).await.map_err(unavailable)?;
        Ok((rows.iter().map(version_from_row).collect::<Result<_, _>>()?, total))
    }

    async fn search(&self, query: &StoreQuery) -> Result<(Vec<StoredVersion>, u64), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        let total = if query.count_total {
            let mut total_sql = Sql::new(self.engine);
            total_sql
                .push("SELECT COUNT(*) FROM resources r WHERE r.resource_type = ")
                .arg(Arg::Text(query.resource_type.clone()));
            total_sql.push(current_condition(query)).push(LIVE_KEY);
            push_filters(&mut total_sql, query);
            let total = count(&mut conn, &total_sql).await?;
            if query.limit == 0 || total <= query.offset {
                return Ok((Vec::new(), total));
            }
            Some(total)
        } else {
            None
        };
        let mut sql = from_resources(self.engine);
        sql.arg(Arg::Text(query.resource_type.clone())).push(current_condition(query)).push(LIVE_KEY);
        push_filters(&mut sql, query);
        push_order(&mut sql, query.sort, !query.filters.is_empty());
        limit_offset(&mut sql, query.limit, query.offset);
        let rows = sql.query().fetch_all(&mut *conn).await.map_err(unavailable)?;
        let total = total.unwrap_or(rows.len() as u64);
        Ok((rows.iter().map(version_from_row).collect::<Result<_, _>>()?, total))
    }

    async fn compartments(&self, query: &StoreQuery) -> Result<Vec<String>, StoreError> {
        let mut sql = Sql::new(self.engine);
        sql.push("SELECT DISTINCT r.compartment FROM resources r WHERE r.resource_type = ")
            .arg(Arg::Text(query.resource_type.clone()))
            .push(current_condition(query))
            .push(LIVE_KEY)
            .push(" AND r.compartment IS NOT NULL");
        push_filters(&mut sql, query);
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        let rows = sql.query().fetch_all(&mut *conn).await.map_err(unavailable)?;
        rows.iter().map(|row| row.try_get(0).map_err(|_| StoreError::Corrupt("compartment row"))).collect()
    }

    async fn compartment_activity(&self, patient_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT resource_type, MAX(last_updated_ms) FROM resources WHERE compartment = $1 AND is_current = 1 \
             GROUP BY resource_type ORDER BY resource_type",
        )
        .bind(patient_id.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let c = |_| StoreError::Corrupt("compartment activity row");
                Ok((row.try_get(0).map_err(c)?, row.try_get(1).map_err(c)?))
            })
            .collect()
    }

    async fn ids_by_terms(
        &self,
        resource_type: &str,
        param: &str,
        terms: &[phivault_crypto::BlindTerm],
    ) -> Result<Vec<(phivault_crypto::BlindTerm, String)>, StoreError> {
        let mut out = Vec::new();
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        for chunk in terms.chunks(500) {
            let mut sql = Sql::new(self.engine);
            sql.push("SELECT t.term, t.id FROM search_terms t WHERE t.resource_type = ")
                .arg(Arg::Text(resource_type.to_owned()))
                .push(" AND t.param = ")
                .arg(Arg::Text(param.to_owned()))
                .push(" AND t.term IN ")
                .list(chunk.iter().map(|t| Arg::Blob(t.to_vec())));
            for row in sql.query().fetch_all(&mut *conn).await.map_err(unavailable)? {
                let term: Vec<u8> = row.try_get(0).map_err(|_| StoreError::Corrupt("search term"))?;
                let id: String = row.try_get(1).map_err(|_| StoreError::Corrupt("search term id"))?;
                let term = term.try_into().map_err(|_| StoreError::Corrupt("search term length"))?;
                out.push((term, id));
            }
        }
        Ok(out)
    }

    async fn commit(
        &self,
        new_keys: &[StoredDataKey],
        writes: &[VersionWrite],
        entry: Option<&PendingEntry>,
    ) -> Result<(), StoreError> {
        if writes.is_empty() && new_keys.is_empty() && entry.is_none() {
            return Ok(());
        }
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        crate::write::insert_new_keys(&mut tx, new_keys).await?;
        crate::write::apply(&mut tx, self.engine, writes).await?;
        if let Some(entry) = entry {
            outbox(&mut tx, entry).await?;
        }
        // Checked last, once the transaction holds the write lock: a read first would make
        // SQLite's deferred transaction fail to upgrade when another node wrote meanwhile.
        // Refused, the transaction rolls back and nothing of the write remains. An entry
        // alone (a transaction whose conditional creates all matched) changes no record.
        if !writes.is_empty() || !new_keys.is_empty() {
            crate::emergency::refuse_writes(self, &mut tx).await?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn data_keys_not_under(&self, current_kek: &str, limit: u64) -> Result<Vec<StoredDataKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, scope, kek_id, wrapped, created_ms FROM data_keys \
             WHERE wrapped IS NOT NULL AND kek_id <> $1 ORDER BY key_id LIMIT $2",
        )
        .bind(current_kek.to_owned())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(data_key_from_row).collect()
    }

    async fn rewrap_data_keys(&self, rewraps: &[DataKeyRewrap]) -> Result<u64, StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let mut changed = 0;
        for r in rewraps {
            // Compare-and-swap: only replace the exact wrapped value that was read.
            let done = sqlx::query(
                "UPDATE data_keys SET kek_id = $1, wrapped = $2 WHERE key_id = $3 AND kek_id = $4 AND wrapped = $5",
            )
            .bind(r.new.kek_id.clone())
            .bind(r.new.wrapped.clone())
            .bind(r.key_id.clone())
            .bind(r.old.kek_id.clone())
            .bind(r.old.wrapped.clone())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            changed += done.rows_affected();
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(changed)
    }

    async fn data_keys_per_kek(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kek_id, COUNT(*) AS n FROM data_keys WHERE wrapped IS NOT NULL GROUP BY kek_id ORDER BY kek_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let kek: String = row.try_get("kek_id").map_err(|_| StoreError::Corrupt("kek id"))?;
                let n: i64 = row.try_get("n").map_err(|_| StoreError::Corrupt("count"))?;
                Ok((kek, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    async fn scan_versions(&self, after: Option<&VersionKey>, limit: u64) -> Result<Vec<ScannedVersion>, StoreError> {
        let mut sql = Sql::new(self.engine);
        // SQLite lets a column hold any type: a body overwritten with text (which need not be
        // UTF-8) would fail the whole page's decoding, so the scan reads it back as bytes and
        // lets authentication name the row.
        let body = if self.engine == Engine::Sqlite { "CAST(r.body AS BLOB) AS body" } else { "r.body" };
        sql.push(&format!(
            "SELECT r.resource_type, r.id, r.version, r.last_updated_ms, {body}, k.key_id, k.scope, k.kek_id, \
             k.wrapped, k.created_ms, r.is_current, r.compartment FROM resources r JOIN data_keys k ON k.key_id = r.key_id"
        ));
        if let Some(after) = after {
            // Keyset paging on the primary key: each page is one index range, however far in.
            sql.push(" WHERE (r.resource_type, r.id, r.version) > (")
                .arg(Arg::Text(after.resource_type.clone()))
                .push(", ")
                .arg(Arg::Text(after.id.clone()))
                .push(", ")
                .arg(Arg::Int(after.version))
                .push(")");
        }
        sql.push(" ORDER BY r.resource_type, r.id, r.version LIMIT ")
            .arg(Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        let rows = sql.query().fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let is_current: i64 = row.try_get("is_current").map_err(|_| StoreError::Corrupt("resource row"))?;
                Ok(ScannedVersion {
                    stored: version_from_row(row)?,
                    is_current: is_current != 0,
                    compartment: row.try_get("compartment").map_err(|_| StoreError::Corrupt("resource row"))?,
                })
            })
            .collect()
    }

    async fn version_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM resources").fetch_one(&self.pool).await.map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn destroy_data_key(
        &self,
        scope: &str,
        compartment: Option<&str>,
        now_ms: i64,
        entry: Option<&PendingEntry>,
    ) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // The entry first, in the same transaction: the key is never destroyed unrecorded.
        if let Some(entry) = entry {
            outbox(&mut tx, entry).await?;
        }
        let done = sqlx::query("UPDATE data_keys SET wrapped = NULL, kek_id = NULL, destroyed_ms = $1 WHERE scope = $2 AND wrapped IS NOT NULL")
            .bind(now_ms)
            .bind(scope.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if let Some(patient) = compartment {
            for table in ["search_terms", "search_dates"] {
                let sql = format!(
                    "DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM resources r WHERE r.resource_type = {table}.resource_type \
                     AND r.id = {table}.id AND r.compartment = $1)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(patient.to_owned())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
        }
        // Shredding changes records for good: not while a restore may be pending.
        crate::emergency::refuse_writes(self, &mut tx).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }
}

impl SqlStore {
    /// Serialises writers in this process on SQLite (one writer at a time anyway); a no-op
    /// guard on PostgreSQL, which handles concurrent writers itself.
    pub(crate) async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.engine {
            Engine::Sqlite => Some(self.write_lock.lock().await),
            Engine::Postgres => None,
        }
    }
}
