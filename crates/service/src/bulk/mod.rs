//! FHIR Bulk Data export jobs (`$export`): a job is kicked off, runs in the background over
//! what the policies let its owner export, writes NDJSON files sealed under the job's own
//! data key, and is deleted when it expires or is cancelled.
//!
//! Files live in the database as sealed chunks, so any server process on the same database
//! answers status and download requests, and nothing is written to disk in the clear.
//!
//! Safeguards: 45 CFR 164.312(a)(2)(iv) encryption at rest; 164.312(a)(1) access control;
//! 164.514(b) de-identification before release; 164.528 (the patients exported are named in
//! the audit trail by the adapter that runs the job).

mod job;
mod store;

pub use job::{ExportOutcome, ExportRequest, ExportTarget, Exporter, KNOWN_PROFILES};
pub use store::{ExportFile, ExportJob, ExportStore, JobStatus};

/// Largest plaintext of one sealed chunk of an export file.
pub const CHUNK_BYTES: usize = 1 << 20;
