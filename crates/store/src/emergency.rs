//! Emergency read-only mode on the database side: a one-row table every record commit
//! checks inside its own transaction (so a switch made on one node holds for the next
//! commit on every node), a per-process switch for `serve --emergency-read-only`, and a
//! cached view (a second old at most) for banners and response headers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use phivault_service::{EmergencyMode, StoreError};
use sqlx::{AnyConnection, Row};

use crate::{SqlStore, unavailable};

/// How long the cached view is trusted.
const CACHE_FOR: Duration = Duration::from_secs(1);
/// How long a response waits for the database to say whether the mode is on.
const READ_WITHIN: Duration = Duration::from_millis(250);

/// Who forces the mode when `serve --emergency-read-only` does.
pub const FORCED_BY: &str = "serve --emergency-read-only";

#[derive(Debug, Default)]
pub(crate) struct ModeCache {
    forced: AtomicBool,
    forced_since_ms: std::sync::atomic::AtomicI64,
    read: Mutex<Option<(Instant, Option<EmergencyMode>)>>,
}

async fn read_row(conn: &mut AnyConnection) -> Result<Option<EmergencyMode>, StoreError> {
    let row = sqlx::query("SELECT since_ms, set_by, reason FROM emergency_mode WHERE id = 1")
        .fetch_optional(conn)
        .await
        .map_err(unavailable)?;
    row.map(|r| {
        Ok(EmergencyMode {
            since_ms: r.try_get(0).map_err(unavailable)?,
            set_by: r.try_get(1).map_err(unavailable)?,
            reason: r.try_get(2).map_err(unavailable)?,
        })
    })
    .transpose()
}

/// Refuses a record write while the mode is on (called inside the write's transaction).
pub(crate) async fn refuse_writes(store: &SqlStore, conn: &mut AnyConnection) -> Result<(), StoreError> {
    if store.emergency.forced.load(Ordering::Relaxed) {
        return Err(StoreError::ReadOnly);
    }
    let on = sqlx::query_scalar::<_, i64>("SELECT 1 FROM emergency_mode WHERE id = 1")
        .fetch_optional(conn)
        .await
        .map_err(unavailable)?;
    if on.is_some() { Err(StoreError::ReadOnly) } else { Ok(()) }
}

impl SqlStore {
    /// Makes this process refuse every record write, whatever the database's switch says
    /// (`serve --emergency-read-only`: a restore in progress, a degraded database).
    pub fn force_emergency_read_only(&self, now_ms: i64) {
        self.emergency.forced_since_ms.store(now_ms, Ordering::Relaxed);
        self.emergency.forced.store(true, Ordering::Relaxed);
    }

    pub(crate) async fn cached_emergency_mode(&self) -> Result<Option<EmergencyMode>, StoreError> {
        if self.emergency.forced.load(Ordering::Relaxed) {
            return Ok(Some(EmergencyMode {
                since_ms: self.emergency.forced_since_ms.load(Ordering::Relaxed),
                set_by: FORCED_BY.to_owned(),
                reason: "started in emergency read-only mode".to_owned(),
            }));
        }
        if let Ok(cache) = self.emergency.read.lock()
            && let Some((when, mode)) = cache.as_ref()
            && when.elapsed() < CACHE_FOR
        {
            return Ok(mode.clone());
        }
        // A database that does not answer must not hold every response (health checks, the
        // sign-in page) for the pool's acquire timeout: give up quickly and, for a second,
        // answer "not known to be on" (writes are still refused by the commit's own check).
        let read = tokio::time::timeout(READ_WITHIN, async {
            let mut conn = self.pool.acquire().await.map_err(unavailable)?;
            read_row(&mut conn).await
        })
        .await
        .unwrap_or(Err(StoreError::Corrupt("the emergency mode could not be read in time")));
        let mode = match read {
            Ok(mode) => mode,
            Err(e) => {
                if let Ok(mut cache) = self.emergency.read.lock() {
                    *cache = Some((Instant::now(), None));
                }
                return Err(e);
            }
        };
        if let Ok(mut cache) = self.emergency.read.lock() {
            *cache = Some((Instant::now(), mode.clone()));
        }
        Ok(mode)
    }

    pub(crate) async fn store_emergency_mode(&self, mode: Option<EmergencyMode>) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("DELETE FROM emergency_mode").execute(&mut *tx).await.map_err(unavailable)?;
        if let Some(mode) = &mode {
            sqlx::query("INSERT INTO emergency_mode (id, since_ms, set_by, reason) VALUES (1, $1, $2, $3)")
                .bind(mode.since_ms)
                .bind(mode.set_by.clone())
                .bind(mode.reason.clone())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        if let Ok(mut cache) = self.emergency.read.lock() {
            *cache = Some((Instant::now(), mode));
        }
        Ok(())
    }
}
