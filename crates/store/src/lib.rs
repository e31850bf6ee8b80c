//! SQLite (embedded, default) and PostgreSQL adapters for the service's [`RecordStore`]
//! port, with their migrations.
//!
//! One implementation serves both engines through sqlx's `Any` driver: the SQL is written
//! once in the subset both speak (`$n` placeholders, `ON CONFLICT`, partial indexes), and
//! only the migrations and connection setup differ. Several server processes may share one
//! PostgreSQL database: nothing that must be global lives in process memory.

mod access;
mod alerts;
mod audit;
mod emergency;
mod export;
mod identity;
mod migrate;
mod records;
mod snapshot;
mod sql;
mod stamp;
mod write;

use std::time::Duration;

use phivault_service::StoreError;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

pub use phivault_audit::AuditStore;
pub use phivault_identity::IdentityStore;
pub use phivault_service::RecordStore;
pub use snapshot::{Restore, SnapshotError, SnapshotInfo};

/// Which database engine a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A record store on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    engine: Engine,
    /// SQLite has one writer: queue writers in-process instead of spinning on SQLITE_BUSY.
    write_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// SQLite file databases: the same-host revocation signal (see `stamp.rs`).
    stamp: Option<stamp::RevocationStamp>,
    /// The audit chain head as this process last wrote it: `(next seq, chain)`. A stale
    /// value is harmless: another writer's entry then holds that seq and the insert fails.
    audit_head: std::sync::Arc<std::sync::Mutex<Option<AuditHead>>>,
    /// Users' standing facts (clearances, departments) as last read, with the revocation
    /// stamp they were read under: valid until the stamp changes, which every change of a
    /// clearance or department makes (SQLite file databases only; see `access.rs`).
    standing_cache: std::sync::Arc<std::sync::Mutex<StandingCache>>,
    /// Emergency read-only mode: forced for this process (`serve --emergency-read-only`),
    /// and the database's switch as last read (see `emergency.rs`).
    emergency: std::sync::Arc<emergency::ModeCache>,
}

/// user id → (stamp, when read, standing).
type StandingCache =
    std::collections::HashMap<String, (Vec<u8>, std::time::Instant, phivault_service::access::Standing)>;

/// `(next sequence number, chain value after the last entry)`.
type AuditHead = (i64, [u8; 32]);

pub(crate) fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

impl SqlStore {
    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://...`) and applies any
    /// pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_to(url, None).await
    }

    /// Connects, migrating up to `schema_version` only when given.
    pub(crate) async fn connect_to(url: &str, schema_version: Option<i64>) -> Result<Self, StoreError> {
        install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(StoreError::Corrupt("database URL must start with sqlite: or postgres:"));
        };
        let url = match engine {
            Engine::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        // One direct attempt first: a wrong or unreachable database fails at once with its
        // own error, instead of after the pool's acquire timeout of retries.
        {
            use sqlx::Connection;
            let probe = sqlx::AnyConnection::connect(&url).await.map_err(unavailable)?;
            let _ = probe.close().await;
        }
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let options = match engine {
            Engine::Sqlite => options.max_connections(4).after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL for concurrent readers; FULL so an acknowledged write survives power
                    // loss; temp files in memory so no plaintext-adjacent scratch hits disk.
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = FULL",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA temp_store = MEMORY",
                        "PRAGMA secure_delete = ON",
                        // 64 MiB page cache: index inserts at 100k+ patients stay in memory.
                        "PRAGMA cache_size = -65536",
                        // Checkpoint every 64 MiB of WAL rather than 4 MiB: bulk imports write
                        // each page once to the WAL instead of again at every small checkpoint.
                        "PRAGMA wal_autocheckpoint = 16384",
                    ] {
                        conn.execute(pragma).await?;
                    }
                    Ok(())
                })
            }),
            Engine::Postgres => options.max_connections(16),
        };
        let pool = options.connect(&url).await.map_err(unavailable)?;
        let stamp = match engine {
            Engine::Sqlite => url
                .strip_prefix("sqlite://")
                .map(|rest| rest.split('?').next().unwrap_or(rest))
                .filter(|file| !file.is_empty() && !file.contains(":memory:"))
                .map(|file| stamp::RevocationStamp::beside(std::path::Path::new(file))),
            Engine::Postgres => None,
        };
        let store = Self {
            pool,
            engine,
            write_lock: Default::default(),
            stamp,
            audit_head: Default::default(),
            standing_cache: Default::default(),
            emergency: Default::default(),
        };
        migrate::run(&store, schema_version).await?;
        Ok(store)
    }

    /// The engine behind this store.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Refreshes the planner's statistics after a bulk load: PostgreSQL plans on the
    /// statistics of empty tables until autovacuum catches up, which turned a scoped search
    /// at a 1,000-patient team into a walk over every row (docs/BENCHMARKS.md); SQLite's
    /// `PRAGMA optimize` analyses what its query history says needs it.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        let sql = match self.engine {
            Engine::Sqlite => "PRAGMA optimize",
            Engine::Postgres => "ANALYZE",
        };
        sqlx::raw_sql(sql).execute(&self.pool).await.map_err(unavailable)?;
        Ok(())
    }

    /// Closes the pool (flushes SQLite's WAL on the last connection).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
