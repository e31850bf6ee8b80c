//! Kicking off, running, reading and cancelling export jobs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use phivault_crypto::{AssociatedData, DataKey, WrappedDataKey, open, seal};
use phivault_deid::fhir::{Deidentifier, KAnonymity, Profile, QuasiIdentifiers};
use phivault_fhir::{FhirError, IssueType};

use super::store::{ExportFile, ExportJob, ExportStore, JobStatus};
use crate::access::{Accessor, ExportCursor, ExportLevel, ExportWindow, Granted, GuardedRecords};
use crate::{Clock, KeySource, RecordError};

/// De-identification profiles an export may ask for.
pub const KNOWN_PROFILES: [&str; 2] = ["safe-harbor", "limited-data-set"];

/// A running job with no sign of life for this long counts as abandoned (its process died).
const ABANDONED_MS: i64 = 10 * 60_000;

/// Which level of export a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportTarget {
    /// `/$export`
    System,
    /// `/Patient/$export`
    AllPatients,
    /// `/Group/{id}/$export`
    Group(String),
}

/// What a client asked to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub target: ExportTarget,
    /// Resource types; empty means every type.
    pub types: Vec<String>,
    pub since_ms: Option<i64>,
    /// A profile from [`KNOWN_PROFILES`].
    pub deidentify: Option<String>,
    /// The manifest's `request`: rebuilt from the parsed values.
    pub request: String,
}

/// What a finished job exported, for the audit trail: counts per type and the patients
/// whose records went out (ids as stored, before any pseudonymisation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOutcome {
    pub counts: BTreeMap<String, u64>,
    pub patients: BTreeSet<String>,
    pub policy_ids: Vec<String>,
    pub deidentified: bool,
    /// Why it failed, when it did (PHI-free).
    pub error: Option<String>,
    /// The smallest group of exported Patients sharing birth year, gender, ZIP-3 and state,
    /// for a de-identified export.
    pub smallest_class: Option<u64>,
}

/// Export jobs over the guarded records. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Exporter {
    records: GuardedRecords,
    store: Arc<dyn ExportStore>,
    keys: Arc<dyn KeySource>,
    clock: Arc<dyn Clock>,
    /// How long a finished export stays downloadable.
    ttl_ms: i64,
    /// The smallest k-anonymity class a de-identified export may release (0: no check).
    min_k: usize,
}

/// Binds a chunk to its job, file and place, so chunks cannot be swapped or reordered.
fn chunk_ad<'a>(job: &'a str, file: &'a str, chunk: u32) -> AssociatedData<'a> {
    AssociatedData { resource_type: job, id: file, version: i64::from(chunk) }
}

impl Exporter {
    pub fn new(
        records: GuardedRecords,
        store: Arc<dyn ExportStore>,
        keys: Arc<dyn KeySource>,
        clock: Arc<dyn Clock>,
        ttl_ms: i64,
        min_k: usize,
    ) -> Self {
        Self { records, store, keys, clock, ttl_ms, min_k }
    }

    /// Validates and authorizes a request and stores the new job; the caller then runs
    /// it ([`Exporter::run`]) in the background with the returned level.
    pub async fn kick_off(
        &self,
        accessor: &Accessor,
        owner: &str,
        request: ExportRequest,
    ) -> Result<Granted<(ExportJob, ExportLevel)>, RecordError> {
        if let Some(profile) = &request.deidentify
            && !KNOWN_PROFILES.contains(&profile.as_str())
        {
            return Err(FhirError::new(IssueType::NotSupported, "unknown de-identification profile").into());
        }
        let mut types = request.types.clone();
        if types.is_empty() {
            types = phivault_fhir::RESOURCE_TYPES.iter().map(|t| (*t).to_owned()).collect();
        }
        if types.iter().any(|t| !phivault_fhir::is_resource_type(t)) {
            return Err(FhirError::new(IssueType::NotSupported, "_type names an unknown resource type").into());
        }
        let (level, mut policy_ids) = match &request.target {
            ExportTarget::System => (ExportLevel::System, Vec::new()),
            ExportTarget::AllPatients => (ExportLevel::AllPatients, Vec::new()),
            ExportTarget::Group(group_id) => {
                // The members come from the Group itself, read under the caller's rights.
                let members = self.records.group_patients(accessor, group_id).await?;
                (ExportLevel::Patients(members.value), members.policy_ids)
            }
        };
        let exportable = self.records.exportable_types(accessor, &types).await?;
        policy_ids.extend(exportable.policy_ids);
        let allowed = exportable.value;
        let now = self.clock.now_ms();
        let id = format!("export-{}", uuid::Uuid::new_v4().simple());
        let key = DataKey::generate(format!("dk-{id}")).map_err(RecordError::Keys)?;
        let wrapped = self.keys.ring().wrap(&key, &format!("export/{id}")).map_err(RecordError::Keys)?;
        let job = ExportJob {
            id,
            owner: owner.to_owned(),
            status: JobStatus::Running,
            request: request.request,
            types: allowed,
            since_ms: request.since_ms,
            deidentify: request.deidentify,
            transaction_ms: now,
            updated_ms: now,
            expires_ms: now + ABANDONED_MS,
            files: Vec::new(),
            written: 0,
            error: None,
            smallest_class: None,
            key_id: key.id.clone(),
            key_kek: wrapped.kek_id,
            key_wrapped: wrapped.wrapped,
        };
        self.store.insert_export_job(&job).await?;
        policy_ids.sort();
        policy_ids.dedup();
        Ok(Granted { value: (job, level), policy_ids })
    }

    fn job_key(&self, job: &ExportJob) -> Result<DataKey, RecordError> {
        let wrapped = WrappedDataKey { kek_id: job.key_kek.clone(), wrapped: job.key_wrapped.clone() };
        self.keys
            .ring()
            .unwrap(&job.key_id, &format!("export/{}", job.id), &wrapped)
            .map_err(|_| RecordError::Integrity { resource_type: "export".into(), id: job.id.clone(), version: 0 })
    }

    /// Runs a kicked-off job: writes its files. Returns what was exported and, when every
    /// file is written, the job ready to [`publish`](Exporter::publish) (its files are not
    /// downloadable before: the adapter first records the export in the audit trail). A
    /// failed job is recorded failed with a PHI-free reason and its files deleted; a job
    /// cancelled meanwhile stops at the next page.
    pub async fn run(
        &self,
        mut job: ExportJob,
        accessor: Accessor,
        level: ExportLevel,
    ) -> (ExportOutcome, Option<ExportJob>) {
        let mut outcome = ExportOutcome::default();
        match self.write_files(&mut job, &accessor, &level, &mut outcome).await {
            Ok(true) => (outcome, Some(job)),
            Ok(false) => {
                // Cancelled meanwhile: the row says so already; drop what was written.
                let _ = self.store.delete_export_data(&job.id, true).await;
                outcome.error = Some("cancelled".into());
                (outcome, None)
            }
            Err(reason) => {
                outcome.error = Some(reason.clone());
                self.fail(job, &reason).await;
                (outcome, None)
            }
        }
    }

    /// Makes a written job's files downloadable until it expires.
    pub async fn publish(&self, mut job: ExportJob) -> Result<bool, RecordError> {
        job.status = JobStatus::Complete;
        job.updated_ms = self.clock.now_ms();
        job.expires_ms = job.updated_ms + self.ttl_ms;
        let published = self.store.update_export_job(&job).await?;
        if !published {
            // Cancelled while its last chunk was written: nothing of it stays.
            self.store.delete_export_data(&job.id, true).await?;
        }
        Ok(published)
    }

    /// Records a job as failed (`reason` is PHI-free) and deletes its files.
    pub async fn fail(&self, mut job: ExportJob, reason: &str) {
        let _ = self.store.delete_export_data(&job.id, true).await;
        job.status = JobStatus::Failed;
        job.error = Some(reason.to_owned());
        job.files.clear();
        job.updated_ms = self.clock.now_ms();
        job.expires_ms = job.updated_ms + self.ttl_ms;
        if let Err(e) = self.store.update_export_job(&job).await {
            tracing::error!(job = %job.id, error = %e, "cannot record the failure of an export job");
        }
    }

    /// Writes every file; `Ok(false)` when the job was cancelled meanwhile.
    async fn write_files(
        &self,
        job: &mut ExportJob,
        accessor: &Accessor,
        level: &ExportLevel,
        outcome: &mut ExportOutcome,
    ) -> Result<bool, String> {
        let key = self.job_key(job).map_err(|_| "the export key cannot be opened".to_owned())?;
        // One random project key per job: pseudonyms are consistent within the export and
        // unlinkable to any other export.
        let project_key = phivault_crypto::random_bytes::<32>().map_err(|_| "no randomness".to_owned())?;
        let mut deidentifiers: BTreeMap<String, Deidentifier> = BTreeMap::new();
        let mut quasi: Vec<QuasiIdentifiers> = Vec::new();
        let mut patients = PatientCache::default();
        let mut policy_ids = BTreeSet::new();
        for resource_type in job.types.clone() {
            let file_no = job.files.len() as u32;
            let mut file = ExportFile { resource_type: resource_type.clone(), count: 0, chunks: 0 };
            let mut buffer: Vec<u8> = Vec::with_capacity(super::CHUNK_BYTES + 64 * 1024);
            let window = ExportWindow { since_ms: job.since_ms, until_ms: job.transaction_ms };
            let mut after: Option<ExportCursor> = None;
            loop {
                let page = self
                    .records
                    .export_page(accessor, &resource_type, level, window, after.as_ref())
                    .await
                    .map_err(|e| format!("reading {resource_type} failed: {}", error_code(&e)))?;
                policy_ids.extend(page.policy_ids);
                let count = page.value.items.len() as u64;
                for item in page.value.items {
                    // A policy's demand wins over the request's choice.
                    let profile = item.deidentify.clone().or_else(|| job.deidentify.clone());
                    let body = match &profile {
                        Some(name) => {
                            if !deidentifiers.contains_key(name) {
                                let profile = Profile::named(name)
                                    .map_err(|_| "a policy names an unknown de-identification profile".to_owned())?;
                                deidentifiers.insert(name.clone(), Deidentifier::new(profile, &project_key));
                            }
                            let deid = &deidentifiers[name];
                            // A record de-identified on its own learns its patient's names
                            // and numbers from the Patient record, to scrub them from text.
                            let context = match &item.patient {
                                Some(p) if resource_type != "Patient" => patients.get(&self.records, p).await?,
                                _ => None,
                            };
                            let context: Vec<&serde_json::Value> = context.iter().collect();
                            let clean = deid.deidentify_knowing(&item.resource.body, &context).map_err(|_| {
                                format!("a {resource_type} record could not be de-identified; nothing was released")
                            })?;
                            if resource_type == "Patient" {
                                quasi.push(QuasiIdentifiers::from_patient(&clean));
                            }
                            outcome.deidentified = true;
                            clean
                        }
                        None => item.resource.body,
                    };
                    if let Some(patient) = item.patient {
                        outcome.patients.insert(patient);
                    }
                    serde_json::to_writer(&mut buffer, &body).map_err(|_| "serialization failed".to_owned())?;
                    buffer.push(b'\n');
                    file.count += 1;
                    if buffer.len() >= super::CHUNK_BYTES {
                        self.put_chunk(job, &key, file_no, &mut file, &mut buffer).await?;
                    }
                }
                job.written += count;
                match page.value.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
                // A sign of life, and the moment to notice a cancellation.
                job.updated_ms = self.clock.now_ms();
                job.expires_ms = job.updated_ms + ABANDONED_MS;
                if !self.store.update_export_job(job).await.map_err(|_| "storage failed".to_owned())? {
                    return Ok(false);
                }
            }
            if !buffer.is_empty() {
                self.put_chunk(job, &key, file_no, &mut file, &mut buffer).await?;
            }
            if file.count > 0 {
                outcome.counts.insert(resource_type.clone(), file.count);
                job.files.push(file);
            }
        }
        outcome.policy_ids = policy_ids.into_iter().collect();
        if outcome.deidentified && !quasi.is_empty() {
            // Measured on every de-identified export (reported in the manifest and the
            // trail); enforced when a floor is configured.
            let report = match KAnonymity::check(&quasi, self.min_k.max(1)) {
                Ok(report) => report,
                Err(phivault_deid::DeidError::BelowK(report)) => *report,
                Err(_) => return Err("the k-anonymity check failed".into()),
            };
            job.smallest_class = Some(report.smallest_class as u64);
            outcome.smallest_class = Some(report.smallest_class as u64);
            if self.min_k > 0 && report.classes_below_k > 0 {
                return Err(format!(
                    "k-anonymity below {}: the smallest class holds {} patients ({} patients in classes below k); \
                     nothing was released",
                    self.min_k, report.smallest_class, report.records_below_k
                ));
            }
        }
        Ok(true)
    }

    async fn put_chunk(
        &self,
        job: &ExportJob,
        key: &DataKey,
        file_no: u32,
        file: &mut ExportFile,
        buffer: &mut Vec<u8>,
    ) -> Result<(), String> {
        let name = file_no.to_string();
        let sealed =
            seal(key, chunk_ad(&job.id, &name, file.chunks), buffer).map_err(|_| "sealing failed".to_owned())?;
        self.store
            .put_export_chunk(&job.id, file_no, file.chunks, &sealed)
            .await
            .map_err(|_| "storage failed".to_owned())?;
        file.chunks += 1;
        buffer.clear();
        Ok(())
    }

    /// A job as its owner may see it: `None` for an unknown job, another owner's job, or
    /// one that expired (deleted here). A running job whose process died is reported failed.
    pub async fn job(&self, owner: &str, id: &str) -> Result<Option<ExportJob>, RecordError> {
        let Some(mut job) = self.store.export_job(id).await? else { return Ok(None) };
        if job.owner != owner {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        if job.expires_ms <= now {
            if job.status == JobStatus::Running {
                job.status = JobStatus::Failed;
                job.error = Some("the export was interrupted (its server process stopped)".into());
                job.expires_ms = now + self.ttl_ms;
                let _ = self.store.delete_export_data(&job.id, true).await;
                let _ = self.store.update_export_job(&job).await;
                return Ok(Some(job));
            }
            self.store.delete_export_data(id, false).await?;
            return Ok(None);
        }
        Ok(Some(job))
    }

    /// The plaintext of one chunk of a complete job's file (`None` past the last chunk).
    pub async fn chunk(&self, job: &ExportJob, file_no: u32, chunk: u32) -> Result<Option<Vec<u8>>, RecordError> {
        let Some(sealed) = self.store.export_chunk(&job.id, file_no, chunk).await? else { return Ok(None) };
        let key = self.job_key(job)?;
        let name = file_no.to_string();
        open(&key, chunk_ad(&job.id, &name, chunk), &sealed).map(Some).map_err(|_| {
            tracing::error!(job = %job.id, file = file_no, chunk, "an export chunk failed authentication");
            RecordError::Integrity { resource_type: "export".into(), id: job.id.clone(), version: i64::from(chunk) }
        })
    }

    /// Cancels a job and deletes its files; the row stays until it expires.
    pub async fn cancel(&self, owner: &str, id: &str) -> Result<bool, RecordError> {
        if self.job(owner, id).await?.is_none() {
            return Ok(false);
        }
        self.store.cancel_export_job(id).await?;
        self.store.delete_export_data(id, true).await?;
        Ok(true)
    }

    /// Deletes every expired job and its files; returns how many.
    pub async fn sweep(&self) -> Result<usize, RecordError> {
        let expired = self.store.expired_export_jobs(self.clock.now_ms()).await?;
        for id in &expired {
            self.store.delete_export_data(id, false).await?;
        }
        Ok(expired.len())
    }
}

/// A short, PHI-free name for a failure.
fn error_code(e: &RecordError) -> &'static str {
    match e {
        RecordError::Forbidden { .. } => "refused",
        RecordError::Store(_) => "storage",
        RecordError::Integrity { .. } => "integrity",
        _ => "error",
    }
}

/// The Patient records an export has needed as de-identification context, kept for the
/// job's length up to a bound (cleared when full, so memory stays flat on any size).
#[derive(Default)]
struct PatientCache(std::collections::HashMap<String, Option<serde_json::Value>>);

impl PatientCache {
    const MAX: usize = 5_000;

    async fn get(&mut self, records: &GuardedRecords, patient: &str) -> Result<Option<serde_json::Value>, String> {
        if let Some(found) = self.0.get(patient) {
            return Ok(found.clone());
        }
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        let found = records
            .patient_for_redaction(patient)
            .await
            .map_err(|e| format!("reading a Patient for de-identification failed: {}", error_code(&e)))?;
        self.0.insert(patient.to_owned(), found.clone());
        Ok(found)
    }
}
