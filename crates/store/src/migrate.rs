//! Embedded, ordered migrations per engine, applied once each and recorded.

use sqlx::Acquire;

use crate::{Engine, SqlStore, unavailable};
use phivault_service::StoreError;

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_records.sql")),
    (2, include_str!("../migrations/sqlite/0002_identity.sql")),
    (3, include_str!("../migrations/sqlite/0003_audit.sql")),
    (4, include_str!("../migrations/sqlite/0004_access.sql")),
    (5, include_str!("../migrations/sqlite/0005_alerts.sql")),
    (6, include_str!("../migrations/sqlite/0006_export.sql")),
    (7, include_str!("../migrations/sqlite/0007_audit_pending.sql")),
    (8, include_str!("../migrations/sqlite/0008_audit_patients.sql")),
    (9, include_str!("../migrations/sqlite/0009_credential_requests.sql")),
    (10, include_str!("../migrations/sqlite/0010_emergency_mode.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_records.sql")),
    (2, include_str!("../migrations/postgres/0002_identity.sql")),
    (3, include_str!("../migrations/postgres/0003_audit.sql")),
    (4, include_str!("../migrations/postgres/0004_access.sql")),
    (5, include_str!("../migrations/postgres/0005_alerts.sql")),
    (6, include_str!("../migrations/postgres/0006_export.sql")),
    (7, include_str!("../migrations/postgres/0007_audit_pending.sql")),
    (8, include_str!("../migrations/postgres/0008_audit_patients.sql")),
    (9, include_str!("../migrations/postgres/0009_credential_requests.sql")),
    (10, include_str!("../migrations/postgres/0010_emergency_mode.sql")),
];

/// Arbitrary constant naming phivault's migration lock among PostgreSQL advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x7068_6976_6175_6c74;

/// The tables phivault's own migrations up to `version` create (the SQLite texts; both
/// engines create the same tables), for telling them from a table someone added by hand.
pub(crate) fn table_names(version: i64) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for (_, sql) in SQLITE.iter().filter(|(v, _)| *v <= version) {
        let upper = sql.to_ascii_uppercase();
        let mut from = 0;
        while let Some(at) = upper[from..].find("CREATE TABLE ") {
            let start = from + at + "CREATE TABLE ".len();
            let rest = sql[start..].trim_start();
            let rest =
                if rest.to_ascii_uppercase().starts_with("IF NOT EXISTS ") { rest[14..].trim_start() } else { rest };
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                names.insert(name.to_ascii_lowercase());
            }
            from = start;
        }
    }
    names
}

/// The newest schema version this build knows.
pub(crate) fn latest() -> i64 {
    SQLITE.iter().chain(POSTGRES).map(|(v, _)| *v).max().unwrap_or(0)
}

/// Applies pending migrations, up to `up_to` when given (a restore builds the schema its
/// backup was taken at, loads it, then migrates forward).
pub(crate) async fn run(store: &SqlStore, up_to: Option<i64>) -> Result<(), StoreError> {
    let migrations = match store.engine {
        Engine::Sqlite => SQLITE,
        Engine::Postgres => POSTGRES,
    };
    let mut conn = store.pool.acquire().await.map_err(unavailable)?;
    if store.engine == Engine::Postgres {
        // Several nodes may start at once: one migrates, the others wait.
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    let result = async {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
        for (version, sql) in migrations.iter().filter(|(v, _)| up_to.is_none_or(|max| *v <= max)) {
            let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *conn)
                .await
                .map_err(unavailable)?;
            if applied.is_some() {
                continue;
            }
            let mut tx = conn.begin().await.map_err(unavailable)?;
            sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(unavailable)?;
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            sqlx::query("INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)")
                .bind(*version)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            tracing::info!(version, "applied database migration");
        }
        Ok(())
    }
    .await;
    if store.engine == Engine::Postgres {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await;
    }
    result
}
