use phivault_fhir::FhirError;
use thiserror::Error;

use crate::StoreError;

/// What can go wrong with a record operation. The `Display` text is safe to show a client:
/// it names resource types, ids and versions at most, never PHI.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The request or resource breaks a FHIR rule.
    #[error(transparent)]
    Invalid(#[from] FhirError),
    /// No such resource (or version).
    #[error("{resource_type}/{id} was not found")]
    NotFound { resource_type: String, id: String },
    /// The resource's data key was destroyed: its content is unrecoverable by design.
    #[error("{resource_type}/{id} was destroyed and cannot be recovered")]
    Shredded { resource_type: String, id: String },
    /// The access policy refused the request. `policy_ids` name the determining policies
    /// for the audit trail; they are never shown to the caller, since a refusal by a
    /// sensitive-category policy would reveal that the record carries that label.
    #[error("access denied by policy")]
    Forbidden { policy_ids: Vec<String> },
    /// The access policy refused a direct read, vread or history of one resource. Shown as
    /// "not found" (`{resource_type}/{id} was not found`), so that what lies outside the
    /// caller's reach is indistinguishable from what does not exist; except that with
    /// `break_glass` (the caller may request emergency access to this patient) it is shown
    /// as a refusal that says so. `policy_ids` and `patient` are for the audit entry only.
    #[error("{resource_type}/{id} was not found")]
    Refused { policy_ids: Vec<String>, patient: Option<String>, resource_type: String, id: String, break_glass: bool },
    /// An If-Match precondition did not hold.
    #[error("version conflict: the resource is at another version than If-Match names")]
    VersionMismatch,
    /// A concurrent write won; the client may retry.
    #[error("write conflict: the resource changed concurrently; read it again and retry")]
    Conflict,
    /// A conditional operation matched more than one resource.
    #[error("the condition matched more than one resource")]
    MultipleMatches,
    /// A stored record failed authentication: it was altered, moved or damaged.
    #[error("integrity check failed for a stored record of {resource_type}/{id}; the incident is logged")]
    Integrity { resource_type: String, id: String, version: i64 },
    /// Keys could not be used (unknown KEK, primitive failure).
    #[error("the key ring cannot open this record")]
    Keys(#[source] phivault_crypto::CryptoError),
    /// Emergency read-only mode is on: the write was not made.
    #[error("phivault is in emergency read-only mode: records can be read but not changed; try again later")]
    ReadOnly,
    /// Storage failed.
    #[error("storage is unavailable")]
    Store(#[source] StoreError),
    /// The audit trail could not record what the operation would reveal, so it is not
    /// revealed (fail closed).
    #[error("the audit trail is unavailable, so the request was not completed")]
    AuditUnavailable,
}

impl From<StoreError> for RecordError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => RecordError::Conflict,
            StoreError::ReadOnly => RecordError::ReadOnly,
            other => RecordError::Store(other),
        }
    }
}
