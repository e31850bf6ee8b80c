//! The [`AlertStore`] implementation: alerts, their review, the monitor's cursor and the
//! flagged patients. Lists of ids are stored as space-separated text (ids hold no spaces).

use async_trait::async_trait;
use phivault_audit::alerts::{Alert, AlertStatus, AlertStore};
use phivault_audit::detect::AlertKind;
use phivault_service::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{SqlStore, unavailable};

const COLUMNS: &str =
    "id, kind, time_ms, raised_ms, user_id, source_ip, patient_ids, seqs, detail, status, reviewed_by, reviewed_ms";
const CURSOR: &str = "activity-review";

fn alert_from_row(row: &AnyRow) -> Result<Alert, StoreError> {
    let c = |_| StoreError::Corrupt("alert row");
    let kind: String = row.try_get(1).map_err(c)?;
    let patients: String = row.try_get(6).map_err(c)?;
    let seqs: String = row.try_get(7).map_err(c)?;
    let status: String = row.try_get(9).map_err(c)?;
    Ok(Alert {
        id: row.try_get(0).map_err(c)?,
        kind: AlertKind::parse(&kind).ok_or(StoreError::Corrupt("alert row: unknown kind"))?,
        time_ms: row.try_get(2).map_err(c)?,
        raised_ms: row.try_get(3).map_err(c)?,
        user_id: row.try_get(4).map_err(c)?,
        source_ip: row.try_get(5).map_err(c)?,
        patient_ids: patients.split_whitespace().map(str::to_owned).collect(),
        seqs: seqs
            .split_whitespace()
            .map(|s| s.parse().map_err(|_| StoreError::Corrupt("alert row: seqs")))
            .collect::<Result<_, _>>()?,
        detail: row.try_get(8).map_err(c)?,
        status: AlertStatus::parse(&status).ok_or(StoreError::Corrupt("alert row: unknown status"))?,
        reviewed_by: row.try_get(10).map_err(c)?,
        reviewed_ms: row.try_get(11).map_err(c)?,
    })
}

async fn insert<'c, E>(executor: E, alert: &Alert) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let seqs: Vec<String> = alert.seqs.iter().map(u64::to_string).collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_alerts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)"
    )))
    .bind(alert.id.clone())
    .bind(alert.kind.code())
    .bind(alert.time_ms)
    .bind(alert.raised_ms)
    .bind(alert.user_id.clone())
    .bind(alert.source_ip.clone())
    .bind(alert.patient_ids.join(" "))
    .bind(seqs.join(" "))
    .bind(alert.detail.clone())
    .bind(alert.status.code())
    .execute(executor)
    .await
    .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl AlertStore for SqlStore {
    async fn alert_cursor(&self) -> Result<u64, StoreError> {
        let next: Option<i64> = sqlx::query_scalar("SELECT next_seq FROM audit_alert_cursor WHERE name = $1")
            .bind(CURSOR)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(next.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    async fn commit_alerts(&self, from: u64, to: u64, alerts: &[Alert]) -> Result<(), StoreError> {
        let (from, to) = (i64::try_from(from).unwrap_or(i64::MAX), i64::try_from(to).unwrap_or(i64::MAX));
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let moved = if from == 0 {
            // The first run creates the row; a concurrent first run hits the primary key.
            let inserted = sqlx::query("INSERT INTO audit_alert_cursor (name, next_seq) VALUES ($1, $2)")
                .bind(CURSOR)
                .bind(to)
                .execute(&mut *tx)
                .await;
            match inserted {
                Ok(done) => done.rows_affected(),
                Err(e) if crate::records::is_unique_violation(&e) => {
                    sqlx::query("UPDATE audit_alert_cursor SET next_seq = $1 WHERE name = $2 AND next_seq = 0")
                        .bind(to)
                        .bind(CURSOR)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?
                        .rows_affected()
                }
                Err(e) => return Err(unavailable(e)),
            }
        } else {
            sqlx::query("UPDATE audit_alert_cursor SET next_seq = $1 WHERE name = $2 AND next_seq = $3")
                .bind(to)
                .bind(CURSOR)
                .bind(from)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected()
        };
        if moved != 1 {
            return Err(StoreError::Conflict);
        }
        for alert in alerts {
            insert(&mut *tx, alert).await?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn insert_alert(&self, alert: &Alert) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        insert(&self.pool, alert).await
    }

    async fn alerts(&self, status: Option<AlertStatus>, limit: u64) -> Result<Vec<Alert>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match status {
            Some(status) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM audit_alerts WHERE status = $1 ORDER BY raised_ms DESC, time_ms DESC LIMIT $2"
            )))
            .bind(status.code())
            .bind(limit)
            .fetch_all(&self.pool)
            .await,
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM audit_alerts ORDER BY raised_ms DESC, time_ms DESC LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(unavailable)?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn alert(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM audit_alerts WHERE id = $1")))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(alert_from_row).transpose()
    }

    async fn review_alert(
        &self,
        id: &str,
        finding: AlertStatus,
        reviewer: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if finding == AlertStatus::Open {
            return Ok(false);
        }
        let _guard = self.write_guard().await;
        let done = sqlx::query(
            "UPDATE audit_alerts SET status = $1, reviewed_by = $2, reviewed_ms = $3 WHERE id = $4 AND status = 'open'",
        )
        .bind(finding.code())
        .bind(reviewer.to_owned())
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn flagged_patients(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query("SELECT patient_id FROM flagged_patients ORDER BY patient_id")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?
            .iter()
            .map(|row| row.try_get(0).map_err(|_| StoreError::Corrupt("flagged patient row")))
            .collect()
    }

    async fn set_flagged(&self, patient_id: &str, flagged: bool, by: &str, now_ms: i64) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let done = if flagged {
            sqlx::query(
                "INSERT INTO flagged_patients (patient_id, flagged_by, flagged_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (patient_id) DO NOTHING",
            )
            .bind(patient_id.to_owned())
            .bind(by.to_owned())
            .bind(now_ms)
            .execute(&self.pool)
            .await
        } else {
            sqlx::query("DELETE FROM flagged_patients WHERE patient_id = $1")
                .bind(patient_id.to_owned())
                .execute(&self.pool)
                .await
        }
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }
}
