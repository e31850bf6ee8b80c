//! The write path of a commit: new data keys, then versions, in few multi-row statements.
//!
//! Statement counts matter more than rows here (each statement is a round trip to the
//! database thread or server), so rows go in fixed-size chunks whose SQL text repeats and
//! stays in the prepared-statement cache.

use phivault_service::{StoreError, StoredDataKey, VersionWrite};
use sqlx::AnyConnection;

use crate::records::is_unique_violation;
use crate::sql::{Arg, Sql};
use crate::{Engine, unavailable};

const RESOURCE_ROWS: usize = 50;
const TERM_ROWS: usize = 200;
const DATE_ROWS: usize = 200;

/// Inserts data keys created for this commit. If another process created a different key
/// for a scope first, the commit is a conflict: the caller's ciphertext used the wrong key.
pub(crate) async fn insert_new_keys(conn: &mut AnyConnection, keys: &[StoredDataKey]) -> Result<(), StoreError> {
    for key in keys {
        let wrapped = key.wrapped.as_ref().ok_or(StoreError::Corrupt("a new data key must be wrapped"))?;
        sqlx::query(
            "INSERT INTO data_keys (key_id, scope, kek_id, wrapped, created_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (scope) DO NOTHING",
        )
        .bind(key.key_id.clone())
        .bind(key.scope.clone())
        .bind(wrapped.kek_id.clone())
        .bind(wrapped.wrapped.clone())
        .bind(key.created_ms)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
        let owner: Option<String> = sqlx::query_scalar("SELECT key_id FROM data_keys WHERE scope = $1")
            .bind(key.scope.clone())
            .fetch_optional(&mut *conn)
            .await
            .map_err(unavailable)?;
        if owner.as_deref() != Some(key.key_id.as_str()) {
            return Err(StoreError::Conflict);
        }
    }
    Ok(())
}

/// Applies versions: retires the versions they replace (checking optimistic locks), then
/// inserts rows, index terms and dates in multi-row statements.
pub(crate) async fn apply(conn: &mut AnyConnection, engine: Engine, writes: &[VersionWrite]) -> Result<(), StoreError> {
    for w in writes {
        let Some(previous) = w.replaces else { continue };
        let done = sqlx::query(
            "UPDATE resources SET is_current = 0 WHERE resource_type = $1 AND id = $2 AND version = $3 AND is_current = 1",
        )
        .bind(w.resource_type.clone())
        .bind(w.id.clone())
        .bind(previous)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict);
        }
        for table in ["search_terms", "search_dates"] {
            let sql = format!("DELETE FROM {table} WHERE resource_type = $1 AND id = $2");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(w.resource_type.clone())
                .bind(w.id.clone())
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
        }
    }
    // A new version whose (type, id, version) exists violates the primary key: a conflict
    // (a concurrent create or update won).
    let rows: Vec<[Arg; 7]> = writes
        .iter()
        .map(|w| {
            [
                Arg::Text(w.resource_type.clone()),
                Arg::Text(w.id.clone()),
                Arg::Int(w.version),
                Arg::Int(w.last_updated_ms),
                w.compartment.clone().map_or(Arg::Null, Arg::Text),
                Arg::Text(w.key_id.clone()),
                Arg::Blob(w.ciphertext.clone()),
            ]
        })
        .collect();
    insert_rows(
        conn,
        engine,
        "INSERT INTO resources (resource_type, id, version, last_updated_ms, compartment, key_id, body, is_current) VALUES ",
        ", 1)",
        rows,
        RESOURCE_ROWS,
    )
    .await?;
    let terms: Vec<[Arg; 4]> = writes
        .iter()
        .flat_map(|w| {
            w.terms.iter().map(|(param, term)| {
                [
                    Arg::Text(w.resource_type.clone()),
                    Arg::Text(w.id.clone()),
                    Arg::Text((*param).to_owned()),
                    Arg::Blob(term.to_vec()),
                ]
            })
        })
        .collect();
    insert_rows(
        conn,
        engine,
        "INSERT INTO search_terms (resource_type, id, param, term) VALUES ",
        ")",
        terms,
        TERM_ROWS,
    )
    .await?;
    let dates: Vec<[Arg; 5]> = writes
        .iter()
        .flat_map(|w| {
            w.dates.iter().map(|(param, lo, hi)| {
                [
                    Arg::Text(w.resource_type.clone()),
                    Arg::Text(w.id.clone()),
                    Arg::Text((*param).to_owned()),
                    Arg::Int(*lo),
                    Arg::Int(*hi),
                ]
            })
        })
        .collect();
    insert_rows(
        conn,
        engine,
        "INSERT INTO search_dates (resource_type, id, param, lo, hi) VALUES ",
        ")",
        dates,
        DATE_ROWS,
    )
    .await
}

/// `INSERT ... VALUES (..), (..)` in chunks of `per_statement` rows. `row_end` closes each
/// row's parenthesis (and may append constants).
async fn insert_rows<const N: usize>(
    conn: &mut AnyConnection,
    engine: Engine,
    head: &str,
    row_end: &str,
    rows: Vec<[Arg; N]>,
    per_statement: usize,
) -> Result<(), StoreError> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = Sql::new(engine);
        sql.push(head);
        for (i, row) in rows.by_ref().take(per_statement).enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            for (j, arg) in row.into_iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                sql.arg(arg);
            }
            sql.push(row_end);
        }
        sql.into_query()
            .execute(&mut *conn)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict } else { unavailable(e) })?;
    }
    Ok(())
}
