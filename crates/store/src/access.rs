//! The [`AccessStore`] implementation shared by both engines: care-team assignments,
//! clearances and break-glass grants.

use async_trait::async_trait;
use phivault_service::access::{
    AccessStore, Assignment, AssignmentKind, BreakGlassGrant, PatientLinks, Relationships, Standing,
};
use phivault_service::{PendingEntry, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::records::is_unique_violation;
use crate::sql::{Arg, Sql};
use crate::{SqlStore, unavailable};

const GRANT_COLUMNS: &str = "id, user_id, patient_id, reason_code, reason_sealed, started_ms, expires_ms, review, \
    reviewed_by, reviewed_ms";

fn assignment_from_row(row: &AnyRow) -> Result<Assignment, StoreError> {
    let c = |_| StoreError::Corrupt("access assignment row");
    let kind: String = row.try_get(0).map_err(c)?;
    Ok(Assignment {
        kind: AssignmentKind::parse(&kind).ok_or(StoreError::Corrupt("access assignment row: unknown kind"))?,
        user_id: row.try_get(1).map_err(c)?,
        value: row.try_get(2).map_err(c)?,
        assigned_by: row.try_get(3).map_err(c)?,
        assigned_ms: row.try_get(4).map_err(c)?,
    })
}

fn grant_from_row(row: &AnyRow) -> Result<BreakGlassGrant, StoreError> {
    let c = |_| StoreError::Corrupt("break-glass grant row");
    Ok(BreakGlassGrant {
        id: row.try_get(0).map_err(c)?,
        user_id: row.try_get(1).map_err(c)?,
        patient_id: row.try_get(2).map_err(c)?,
        reason_code: row.try_get(3).map_err(c)?,
        reason_sealed: row.try_get(4).map_err(c)?,
        started_ms: row.try_get(5).map_err(c)?,
        expires_ms: row.try_get(6).map_err(c)?,
        review: row.try_get(7).map_err(c)?,
        reviewed_by: row.try_get(8).map_err(c)?,
        reviewed_ms: row.try_get(9).map_err(c)?,
    })
}

/// A `(kind, value)` relationship row.
fn kind_and_value(row: &AnyRow) -> Result<(String, String), StoreError> {
    let c = |_| StoreError::Corrupt("relationship row");
    Ok((row.try_get(0).map_err(c)?, row.try_get(1).map_err(c)?))
}

/// Re-read standing facts at least this often, stamp or not.
const STANDING_REVALIDATE: std::time::Duration = std::time::Duration::from_secs(15);
/// Most users' standing kept in memory.
const STANDING_CAPACITY: usize = 10_000;

impl SqlStore {
    async fn read_standing(&self, user_id: &str) -> Result<Standing, StoreError> {
        // Two probes of the primary key (kind, user_id, ...): never a walk over the user's
        // care-team rows, which can number thousands.
        let rows = sqlx::query(
            "SELECT kind, value FROM access_assignments WHERE kind = 'clearance' AND user_id = $1 \
             UNION ALL SELECT kind, value FROM access_assignments WHERE kind = 'department' AND user_id = $2",
        )
        .bind(user_id.to_owned())
        .bind(user_id.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut out = Standing::default();
        for row in &rows {
            let (kind, value) = kind_and_value(row)?;
            match kind.as_str() {
                "clearance" => out.clearances.push(value),
                _ => out.departments.push(value),
            }
        }
        out.clearances.sort();
        out.departments.sort();
        Ok(out)
    }

    async fn read_links(&self, user_id: &str, patients: &[String], now_ms: i64) -> Result<PatientLinks, StoreError> {
        let mut out = PatientLinks::default();
        // A page of results names at most a few hundred patients; chunks keep every
        // statement well under both engines' parameter limits.
        for chunk in patients.chunks(400) {
            let mut sql = Sql::new(self.engine);
            sql.push("SELECT 'care_team', value FROM access_assignments WHERE kind = 'care_team' AND user_id = ")
                .arg(Arg::Text(user_id.to_owned()))
                .push(" AND value IN ")
                .list(chunk.iter().map(|p| Arg::Text(p.clone())))
                .push(" UNION ALL SELECT 'emergency', patient_id FROM break_glass_grants WHERE user_id = ")
                .arg(Arg::Text(user_id.to_owned()))
                .push(" AND expires_ms > ")
                .arg(Arg::Int(now_ms))
                .push(" AND patient_id IN ")
                .list(chunk.iter().map(|p| Arg::Text(p.clone())));
            let rows = sql.into_query().fetch_all(&self.pool).await.map_err(unavailable)?;
            for row in &rows {
                let (kind, value) = kind_and_value(row)?;
                match kind.as_str() {
                    "care_team" => out.care_team.push(value),
                    _ => out.emergency_access.push(value),
                }
            }
        }
        out.care_team.sort();
        out.care_team.dedup();
        out.emergency_access.sort();
        out.emergency_access.dedup();
        Ok(out)
    }
}

#[async_trait]
impl AccessStore for SqlStore {
    async fn relationships(&self, user_id: &str, now_ms: i64) -> Result<Relationships, StoreError> {
        // One round trip: assignments and live grants together.
        let rows = sqlx::query(
            "SELECT kind, value FROM access_assignments WHERE user_id = $1 \
             UNION ALL SELECT 'emergency', patient_id FROM break_glass_grants WHERE user_id = $2 AND expires_ms > $3",
        )
        .bind(user_id.to_owned())
        .bind(user_id.to_owned())
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut out = Relationships::default();
        for row in &rows {
            let (kind, value) = kind_and_value(row)?;
            match kind.as_str() {
                "care_team" => out.care_team.push(value),
                "clearance" => out.clearances.push(value),
                "department" => out.departments.push(value),
                "emergency" => out.emergency_access.push(value),
                _ => return Err(StoreError::Corrupt("access assignment row: unknown kind")),
            }
        }
        for list in [&mut out.care_team, &mut out.clearances, &mut out.departments, &mut out.emergency_access] {
            list.sort();
            list.dedup();
        }
        Ok(out)
    }

    async fn standing(&self, user_id: &str) -> Result<Standing, StoreError> {
        // Answered from memory while the revocation stamp is unchanged (every change of a
        // clearance or department changes it), re-read at least every 15 s regardless.
        let stamp = self.stamp.as_ref().map(crate::stamp::RevocationStamp::read);
        if let Some(stamp) = &stamp {
            let cache = self.standing_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((seen, at, standing)) = cache.get(user_id)
                && seen == stamp
                && at.elapsed() < STANDING_REVALIDATE
            {
                return Ok(standing.clone());
            }
        }
        let standing = self.read_standing(user_id).await?;
        if let Some(stamp) = stamp {
            let mut cache = self.standing_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.len() >= STANDING_CAPACITY {
                cache.clear();
            }
            cache.insert(user_id.to_owned(), (stamp, std::time::Instant::now(), standing.clone()));
        }
        Ok(standing)
    }

    async fn links_to(&self, user_id: &str, patients: &[String], now_ms: i64) -> Result<PatientLinks, StoreError> {
        self.read_links(user_id, patients, now_ms).await
    }

    async fn assign(&self, a: &Assignment) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let done = sqlx::query(
            "INSERT INTO access_assignments (kind, user_id, value, assigned_by, assigned_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, user_id, value) DO NOTHING",
        )
        .bind(a.kind.as_str().to_owned())
        .bind(a.user_id.clone())
        .bind(a.value.clone())
        .bind(a.assigned_by.clone())
        .bind(a.assigned_ms)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        if a.kind != AssignmentKind::CareTeam {
            // Standing facts are cached under the stamp: a new one makes every process re-read.
            self.revoked()?;
        }
        Ok(done.rows_affected() == 1)
    }

    async fn unassign(&self, kind: AssignmentKind, user_id: &str, value: &str) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let done = sqlx::query("DELETE FROM access_assignments WHERE kind = $1 AND user_id = $2 AND value = $3")
            .bind(kind.as_str().to_owned())
            .bind(user_id.to_owned())
            .bind(value.to_owned())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        if kind != AssignmentKind::CareTeam {
            self.revoked()?;
        }
        Ok(done.rows_affected() == 1)
    }

    async fn change_care_team_recorded(
        &self,
        assignment: &Assignment,
        add: bool,
        entry: &PendingEntry,
    ) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        crate::records::outbox(&mut tx, entry).await?;
        let done = if add {
            sqlx::query(
                "INSERT INTO access_assignments (kind, user_id, value, assigned_by, assigned_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (kind, user_id, value) DO NOTHING",
            )
            .bind(AssignmentKind::CareTeam.as_str().to_owned())
            .bind(assignment.user_id.clone())
            .bind(assignment.value.clone())
            .bind(assignment.assigned_by.clone())
            .bind(assignment.assigned_ms)
            .execute(&mut *tx)
            .await
        } else {
            sqlx::query("DELETE FROM access_assignments WHERE kind = $1 AND user_id = $2 AND value = $3")
                .bind(AssignmentKind::CareTeam.as_str().to_owned())
                .bind(assignment.user_id.clone())
                .bind(assignment.value.clone())
                .execute(&mut *tx)
                .await
        }
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn assignments(
        &self,
        kind: AssignmentKind,
        user_id: Option<&str>,
        value: Option<&str>,
    ) -> Result<Vec<Assignment>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, user_id, value, assigned_by, assigned_ms FROM access_assignments \
             WHERE kind = $1 AND ($2 = '' OR user_id = $3) AND ($4 = '' OR value = $5) ORDER BY user_id, value",
        )
        .bind(kind.as_str().to_owned())
        .bind(user_id.unwrap_or_default().to_owned())
        .bind(user_id.unwrap_or_default().to_owned())
        .bind(value.unwrap_or_default().to_owned())
        .bind(value.unwrap_or_default().to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(assignment_from_row).collect()
    }

    async fn insert_break_glass(&self, g: &BreakGlassGrant, entry: &PendingEntry) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        crate::records::outbox(&mut tx, entry).await?;
        let sql = format!(
            "INSERT INTO break_glass_grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(g.id.clone())
            .bind(g.user_id.clone())
            .bind(g.patient_id.clone())
            .bind(g.reason_code.clone())
            .bind(g.reason_sealed.clone())
            .bind(g.started_ms)
            .bind(g.expires_ms)
            .bind(g.review.clone())
            .bind(g.reviewed_by.clone())
            .bind(g.reviewed_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict } else { unavailable(e) })?;
        tx.commit().await.map_err(unavailable)
    }

    async fn break_glass_grants(&self, pending_only: bool, limit: u64) -> Result<Vec<BreakGlassGrant>, StoreError> {
        let filter = if pending_only { " WHERE review IS NULL" } else { "" };
        let sql =
            format!("SELECT {GRANT_COLUMNS} FROM break_glass_grants{filter} ORDER BY started_ms DESC, id LIMIT $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(grant_from_row).collect()
    }

    async fn emergency_access_until(
        &self,
        user_id: &str,
        patient_id: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(expires_ms) FROM break_glass_grants WHERE user_id = $1 AND patient_id = $2 AND expires_ms > $3",
        )
        .bind(user_id.to_owned())
        .bind(patient_id.to_owned())
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        row.try_get::<Option<i64>, _>(0).map_err(unavailable)
    }

    async fn review_break_glass(
        &self,
        id: &str,
        review: &str,
        reviewed_by: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let done = sqlx::query(
            "UPDATE break_glass_grants SET review = $1, reviewed_by = $2, reviewed_ms = $3 WHERE id = $4 AND review IS NULL",
        )
        .bind(review.to_owned())
        .bind(reviewed_by.to_owned())
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }
}
