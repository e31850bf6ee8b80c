//! Export jobs as stored, and the storage port that holds them and their sealed chunks.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Complete,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn code(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [Self::Running, Self::Complete, Self::Failed, Self::Cancelled].into_iter().find(|s| s.code() == code)
    }
}

/// One output file: the records of one type, in `chunks` sealed pieces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFile {
    pub resource_type: String,
    pub count: u64,
    pub chunks: u32,
}

/// An export job. Holds ids, types, counts and times: no PHI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportJob {
    pub id: String,
    /// The account (`user-…`) or backend client (`client:…`) that asked; only it may see
    /// the status and download.
    pub owner: String,
    pub status: JobStatus,
    /// The kick-off request as the manifest repeats it: path and the parameters phivault
    /// understood, rebuilt from parsed values (never the client's raw text).
    pub request: String,
    pub types: Vec<String>,
    pub since_ms: Option<i64>,
    /// The de-identification profile asked for, if any (policies may demand one anyway).
    pub deidentify: Option<String>,
    /// When the export's view of the data starts (the manifest's `transactionTime`).
    pub transaction_ms: i64,
    /// Last sign of life of the process running it.
    pub updated_ms: i64,
    /// When the job and its files are deleted (set at completion; for a running job, the
    /// time after which it counts as abandoned).
    pub expires_ms: i64,
    pub files: Vec<ExportFile>,
    /// Records written so far, for progress.
    pub written: u64,
    /// A PHI-free reason when failed.
    pub error: Option<String>,
    /// For a de-identified export: its smallest k-anonymity class of Patients.
    #[serde(default)]
    pub smallest_class: Option<u64>,
    /// The job's data key, wrapped under the current KEK (scope `export/<id>`).
    pub key_id: String,
    pub key_kek: String,
    pub key_wrapped: Vec<u8>,
}

impl ExportJob {
    /// The job as the store keeps it (JSON text), so that the store needs no serializer.
    pub fn encode(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|_| StoreError::Corrupt("export job cannot be serialized"))
    }

    pub fn decode(text: &str) -> Result<Self, StoreError> {
        serde_json::from_str(text).map_err(|_| StoreError::Corrupt("export job row"))
    }
}

/// Storage of export jobs and their sealed file chunks. Safe across processes.
#[async_trait]
pub trait ExportStore: Send + Sync + std::fmt::Debug {
    async fn insert_export_job(&self, job: &ExportJob) -> Result<(), StoreError>;
    async fn export_job(&self, id: &str) -> Result<Option<ExportJob>, StoreError>;
    /// Saves a running job's new state; false (and nothing saved) if it is no longer
    /// running (cancelled meanwhile).
    async fn update_export_job(&self, job: &ExportJob) -> Result<bool, StoreError>;
    /// Marks a job cancelled whatever its state; false if unknown.
    async fn cancel_export_job(&self, id: &str) -> Result<bool, StoreError>;
    async fn put_export_chunk(&self, job_id: &str, file: u32, chunk: u32, sealed: &[u8]) -> Result<(), StoreError>;
    async fn export_chunk(&self, job_id: &str, file: u32, chunk: u32) -> Result<Option<Vec<u8>>, StoreError>;
    /// Deletes a job's chunks, and the job row unless `keep_job` (a cancelled or failed
    /// job keeps its row until it expires so its owner learns what happened).
    async fn delete_export_data(&self, job_id: &str, keep_job: bool) -> Result<(), StoreError>;
    /// Ids of jobs whose `expires_ms` has passed.
    async fn expired_export_jobs(&self, now_ms: i64) -> Result<Vec<String>, StoreError>;
}
