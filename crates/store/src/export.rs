//! The [`ExportStore`] implementation: export jobs (indexed columns plus the job as JSON)
//! and their sealed file chunks.

use async_trait::async_trait;
use phivault_service::StoreError;
use phivault_service::bulk::{ExportJob, ExportStore, JobStatus};

use crate::{SqlStore, unavailable};

#[async_trait]
impl ExportStore for SqlStore {
    async fn insert_export_job(&self, job: &ExportJob) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        sqlx::query("INSERT INTO export_jobs (id, owner, status, expires_ms, job) VALUES ($1, $2, $3, $4, $5)")
            .bind(job.id.clone())
            .bind(job.owner.clone())
            .bind(job.status.code())
            .bind(job.expires_ms)
            .bind(job.encode()?)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn export_job(&self, id: &str) -> Result<Option<ExportJob>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as("SELECT status, job FROM export_jobs WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        let Some((status, text)) = row else { return Ok(None) };
        let mut job = ExportJob::decode(&text)?;
        // The status column is the authority: a cancellation only writes the column.
        job.status = JobStatus::parse(&status).ok_or(StoreError::Corrupt("export job status"))?;
        Ok(Some(job))
    }

    async fn update_export_job(&self, job: &ExportJob) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let done = sqlx::query(
            "UPDATE export_jobs SET status = $1, expires_ms = $2, job = $3 WHERE id = $4 AND status = 'running'",
        )
        .bind(job.status.code())
        .bind(job.expires_ms)
        .bind(job.encode()?)
        .bind(job.id.clone())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn cancel_export_job(&self, id: &str) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let done = sqlx::query("UPDATE export_jobs SET status = 'cancelled' WHERE id = $1")
            .bind(id.to_owned())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_export_chunk(&self, job_id: &str, file: u32, chunk: u32, sealed: &[u8]) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        sqlx::query("INSERT INTO export_chunks (job_id, file_no, chunk, body) VALUES ($1, $2, $3, $4)")
            .bind(job_id.to_owned())
            .bind(i64::from(file))
            .bind(i64::from(chunk))
            .bind(sealed.to_vec())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn export_chunk(&self, job_id: &str, file: u32, chunk: u32) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT body FROM export_chunks WHERE job_id = $1 AND file_no = $2 AND chunk = $3")
            .bind(job_id.to_owned())
            .bind(i64::from(file))
            .bind(i64::from(chunk))
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn delete_export_data(&self, job_id: &str, keep_job: bool) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("DELETE FROM export_chunks WHERE job_id = $1")
            .bind(job_id.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if !keep_job {
            sqlx::query("DELETE FROM export_jobs WHERE id = $1")
                .bind(job_id.to_owned())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn expired_export_jobs(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT id FROM export_jobs WHERE expires_ms <= $1 ORDER BY id")
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }
}
