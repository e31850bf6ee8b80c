//! Backups, on the database side: every table streamed out of one consistent read snapshot
//! (online: writers are not blocked), and loaded into a fresh database of either engine.
//!
//! Tables and columns are discovered from the database itself, so a table a later migration
//! adds is backed up without anyone remembering to list it. Identifiers read from a backup
//! are checked against the target's own schema before any SQL names them.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use phivault_backup::{BackupError, ColumnKind, ColumnSpec, TableSchema, TableSink, Value};
use phivault_service::StoreError;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use crate::{Engine, SqlStore, unavailable};

/// A backup or restore failed in the database or in the backup.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("{0}")]
    Refused(String),
}

fn db(e: sqlx::Error) -> SnapshotError {
    SnapshotError::Store(unavailable(e))
}

/// What a snapshot read.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub schema_version: i64,
    pub tables: usize,
    pub rows: u64,
    /// Tables in the database that phivault's schema does not have (made by hand): left
    /// out, since no restore could load them, and named so the operator knows.
    pub skipped: Vec<String>,
}

fn is_identifier(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn kind_of(declared: &str) -> ColumnKind {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        ColumnKind::Integer
    } else if t.contains("BLOB") || t.contains("BYTEA") {
        ColumnKind::Bytes
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") || t.contains("NUMERIC") {
        ColumnKind::Real
    } else {
        ColumnKind::Text
    }
}

/// A table as the database describes it, with its key columns (for a stable row order).
#[derive(Debug, Clone)]
struct Table {
    schema: TableSchema,
    key: Vec<String>,
}

async fn tables(engine: Engine, conn: &mut AnyConnection) -> Result<Vec<Table>, SnapshotError> {
    let names: Vec<String> = match engine {
        // Creation order, so that a table is loaded after the tables it references.
        Engine::Sqlite => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             AND name <> 'schema_migrations' ORDER BY rowid",
        ),
        Engine::Postgres => sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname <> 'schema_migrations' \
             ORDER BY c.oid",
        ),
    }
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut out = Vec::new();
    for name in names {
        if !is_identifier(&name) {
            return Err(SnapshotError::Refused(format!(
                "the database holds a table with an unexpected name: {name:?}"
            )));
        }
        let (columns, key): (Vec<(String, String)>, Vec<String>) = match engine {
            Engine::Sqlite => {
                let rows = sqlx::query("SELECT name, type, pk FROM pragma_table_info($1) ORDER BY cid")
                    .bind(&name)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db)?;
                let mut key: Vec<(i64, String)> = Vec::new();
                let mut columns = Vec::new();
                for row in rows {
                    let column: String = row.try_get(0).map_err(db)?;
                    let declared: String = row.try_get(1).map_err(db)?;
                    let pk: i64 = row.try_get(2).map_err(db)?;
                    if pk > 0 {
                        key.push((pk, column.clone()));
                    }
                    columns.push((column, declared));
                }
                key.sort();
                (columns, key.into_iter().map(|(_, c)| c).collect())
            }
            Engine::Postgres => {
                let columns = sqlx::query(
                    "SELECT column_name::text, data_type::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                )
                .bind(&name)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?
                .into_iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<Vec<(String, String)>, sqlx::Error>>()
                .map_err(db)?;
                let key: Vec<String> = sqlx::query_scalar(
                    "SELECT a.attname::text FROM pg_index i \
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                     WHERE i.indrelid = $1::regclass AND i.indisprimary \
                     ORDER BY array_position(i.indkey::int2[], a.attnum)",
                )
                .bind(&name)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                (columns, key)
            }
        };
        let mut specs = Vec::new();
        for (column, declared) in columns {
            if !is_identifier(&column) {
                return Err(SnapshotError::Refused(format!("table {name} has a column with an unexpected name")));
            }
            specs.push(ColumnSpec { name: column, kind: kind_of(&declared) });
        }
        out.push(Table { schema: TableSchema { name, columns: specs }, key });
    }
    Ok(out)
}

/// One value, read as the column's kind (identifiers were checked, values are bound).
/// SQLite may hand back another storage class than declared; a value that cannot be read
/// as its column's kind is corruption, named by table and column.
fn value(row: &AnyRow, i: usize, table: &str, column: &ColumnSpec) -> Result<Value, SnapshotError> {
    let wrong =
        || SnapshotError::Refused(format!("table {table}, column {}: a value of an unexpected type", column.name));
    let value = match column.kind {
        ColumnKind::Integer => row.try_get::<Option<i64>, _>(i).map(|v| v.map(Value::Integer)),
        ColumnKind::Real => row.try_get::<Option<f64>, _>(i).map(|v| v.map(Value::Real)),
        ColumnKind::Text => row.try_get::<Option<String>, _>(i).map(|v| v.map(Value::Text)),
        ColumnKind::Bytes => row
            .try_get::<Option<Vec<u8>>, _>(i)
            .or_else(|_| row.try_get::<Option<String>, _>(i).map(|v| v.map(String::into_bytes)))
            .map(|v| v.map(Value::Bytes)),
    };
    value.map(|v| v.unwrap_or(Value::Null)).map_err(|_| wrong())
}

fn select_sql(engine: Engine, table: &Table) -> String {
    let columns: Vec<&str> = table.schema.columns.iter().map(|c| c.name.as_str()).collect();
    let mut sql = format!("SELECT {} FROM {}", columns.join(", "), table.schema.name);
    if !table.key.is_empty() {
        sql.push_str(" ORDER BY ");
        sql.push_str(&table.key.join(", "));
    } else if engine == Engine::Sqlite {
        sql.push_str(" ORDER BY rowid");
    }
    sql
}

/// Streams every table through `conn` (inside the caller's transaction).
async fn stream_tables(
    engine: Engine,
    conn: &mut AnyConnection,
    sink: &mut dyn TableSink,
) -> Result<SnapshotInfo, SnapshotError> {
    // SQLite's snapshot begins at the first read in the transaction: this one.
    let schema_version: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let known = crate::migrate::table_names(schema_version);
    let (tables, foreign): (Vec<Table>, Vec<Table>) =
        tables(engine, conn).await?.into_iter().partition(|t| known.contains(&t.schema.name));
    let skipped: Vec<String> = foreign.into_iter().map(|t| t.schema.name).collect();
    let mut total = 0u64;
    for table in &tables {
        let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", table.schema.name)))
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        total += count.max(0) as u64;
    }
    sink.expect_rows(total);
    let mut rows = 0u64;
    for table in &tables {
        sink.begin_table(table.schema.clone())?;
        let sql = select_sql(engine, table);
        let mut stream = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *conn);
        let mut values = Vec::with_capacity(table.schema.columns.len());
        while let Some(row) = stream.try_next().await.map_err(db)? {
            values.clear();
            for (i, column) in table.schema.columns.iter().enumerate() {
                values.push(value(&row, i, &table.schema.name, column)?);
            }
            sink.row(&values)?;
            rows += 1;
        }
        drop(stream);
        sink.end_table()?;
    }
    Ok(SnapshotInfo { schema_version, tables: tables.len(), rows, skipped })
}

impl SqlStore {
    /// The highest migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)
    }

    /// Streams every table into `sink` from one read snapshot: what it sees is the
    /// database at one moment, while the server goes on writing.
    pub async fn snapshot(&self, sink: &mut dyn TableSink) -> Result<SnapshotInfo, SnapshotError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        if self.engine == Engine::Postgres {
            sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let info = stream_tables(self.engine, &mut tx, sink).await?;
        tx.rollback().await.map_err(db)?;
        Ok(info)
    }

    /// Opens a database to restore into: migrated only to `schema_version` (the backup's),
    /// and refused unless every table is empty.
    pub async fn connect_for_restore(url: &str, schema_version: i64) -> Result<Self, SnapshotError> {
        let known = crate::migrate::latest();
        if schema_version > known {
            return Err(SnapshotError::Refused(format!(
                "the backup was made by a newer phivault (database schema {schema_version}; this one knows up to {known}): \
                 restore it with that version or later"
            )));
        }
        let store = Self::connect_to(url, Some(schema_version)).await?;
        let mut conn = store.pool.acquire().await.map_err(db)?;
        for table in tables(store.engine, &mut conn).await? {
            let any: Option<i64> =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT 1 FROM {} LIMIT 1", table.schema.name)))
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
            if any.is_some() {
                return Err(SnapshotError::Refused(format!(
                    "the target database is not empty (table {} holds rows): restore into a new database",
                    table.schema.name
                )));
            }
        }
        Ok(store)
    }

    /// Applies the migrations a restored database still lacks.
    pub async fn migrate_forward(&self) -> Result<(), StoreError> {
        crate::migrate::run(self, None).await
    }

    /// Starts loading a backup, in one transaction: all tables or none.
    pub async fn begin_restore(&self) -> Result<Restore, SnapshotError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let tables =
            tables(self.engine, &mut tx).await?.into_iter().map(|t| (t.schema.name.clone(), t.schema)).collect();
        Ok(Restore { tx, engine: self.engine, tables, loaded: Vec::new() })
    }
}

/// A restore in progress.
#[derive(Debug)]
pub struct Restore {
    tx: sqlx::Transaction<'static, Any>,
    engine: Engine,
    tables: HashMap<String, TableSchema>,
    loaded: Vec<String>,
}

/// Bound parameters per INSERT: well under both engines' limits. SQLite's binding looks
/// each `$n` up by name, which made 8,000-parameter statements cost 70 % of a restore.
fn parameters_per_insert(engine: Engine) -> usize {
    match engine {
        Engine::Sqlite => 120,
        Engine::Postgres => 8_000,
    }
}

impl Restore {
    /// Loads one table's rows; the backup's columns must be the target's.
    pub async fn load(
        &mut self,
        schema: &TableSchema,
        rows: impl Iterator<Item = Result<Vec<Value>, BackupError>> + Send,
    ) -> Result<u64, SnapshotError> {
        let target = self.tables.get(&schema.name).ok_or_else(|| {
            SnapshotError::Refused(format!("the backup holds a table this database does not have: {}", schema.name))
        })?;
        let sorted = |columns: &[ColumnSpec]| {
            let mut columns = columns.to_vec();
            columns.sort_by(|a, b| a.name.cmp(&b.name));
            columns
        };
        // By name: the two engines' migrations may list a table's columns in another order.
        if sorted(&target.columns) != sorted(&schema.columns) {
            return Err(SnapshotError::Refused(format!(
                "table {}: the backup's columns differ from this database's at the same schema version",
                schema.name
            )));
        }
        let columns: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        let per_batch = (parameters_per_insert(self.engine) / columns.len().max(1)).max(1);
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(per_batch);
        let mut loaded = 0u64;
        let mut rows = rows.peekable();
        while let Some(row) = rows.next() {
            batch.push(row?);
            if batch.len() == per_batch || rows.peek().is_none() {
                self.insert(schema, &columns, &batch).await?;
                loaded += batch.len() as u64;
                batch.clear();
            }
        }
        self.loaded.push(schema.name.clone());
        Ok(loaded)
    }

    async fn insert(
        &mut self,
        schema: &TableSchema,
        columns: &[&str],
        batch: &[Vec<Value>],
    ) -> Result<(), SnapshotError> {
        let width = columns.len();
        let mut sql = format!("INSERT INTO {} ({}) VALUES ", schema.name, columns.join(", "));
        for r in 0..batch.len() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..width {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", r * width + c + 1));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in batch {
            if row.len() != width {
                return Err(SnapshotError::Refused(format!(
                    "table {}: a row has the wrong number of values",
                    schema.name
                )));
            }
            for (value, column) in row.iter().zip(&schema.columns) {
                query = match (value, column.kind) {
                    (Value::Null, ColumnKind::Integer) => query.bind(None::<i64>),
                    (Value::Null, ColumnKind::Real) => query.bind(None::<f64>),
                    (Value::Null, ColumnKind::Text) => query.bind(None::<String>),
                    (Value::Null, ColumnKind::Bytes) => query.bind(None::<Vec<u8>>),
                    (Value::Integer(v), ColumnKind::Integer) => query.bind(*v),
                    (Value::Real(v), ColumnKind::Real) => query.bind(*v),
                    (Value::Text(v), ColumnKind::Text) => query.bind(v.clone()),
                    (Value::Bytes(v), ColumnKind::Bytes) => query.bind(v.clone()),
                    _ => {
                        return Err(SnapshotError::Refused(format!(
                            "table {}, column {}: the backup holds a value of another type",
                            schema.name, column.name
                        )));
                    }
                };
            }
        }
        query.execute(&mut *self.tx).await.map_err(db)?;
        Ok(())
    }

    /// Reads back what this restore has loaded (before it commits), for comparing with
    /// the backup's digests.
    pub async fn read_back(&mut self, sink: &mut dyn TableSink) -> Result<SnapshotInfo, SnapshotError> {
        stream_tables(self.engine, &mut self.tx, sink).await
    }

    /// Commits. On PostgreSQL, identity sequences move past the restored ids.
    pub async fn finish(mut self) -> Result<Vec<String>, SnapshotError> {
        if self.engine == Engine::Postgres {
            let serials: Vec<(String, String)> = sqlx::query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'",
            )
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db)?
            .into_iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db)?;
            for (table, column) in serials {
                if !is_identifier(&table) || !is_identifier(&column) {
                    continue;
                }
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                     COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
                )))
                .execute(&mut *self.tx)
                .await
                .map_err(db)?;
            }
        }
        self.tx.commit().await.map_err(db)?;
        Ok(self.loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_every_table_its_migrations_create() {
        let names = crate::migrate::table_names(crate::migrate::latest());
        for table in ["resources", "data_keys", "audit_log", "users", "emergency_mode", "credential_requests"] {
            assert!(names.contains(table), "{table}: {names:?}");
        }
        assert!(!crate::migrate::table_names(9).contains("emergency_mode"));
    }

    #[test]
    fn only_plain_lower_case_identifiers_are_named_in_sql() {
        assert!(is_identifier("audit_log"));
        assert!(is_identifier("_x1"));
        for bad in ["", "1x", "Users", "a;b", "a b", "a\"", "résumé"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn declared_types_map_to_kinds_on_both_engines() {
        assert_eq!(kind_of("BIGINT"), ColumnKind::Integer);
        assert_eq!(kind_of("integer"), ColumnKind::Integer);
        assert_eq!(kind_of("bytea"), ColumnKind::Bytes);
        assert_eq!(kind_of("BLOB"), ColumnKind::Bytes);
        assert_eq!(kind_of("text"), ColumnKind::Text);
        assert_eq!(kind_of("double precision"), ColumnKind::Real);
    }
}
