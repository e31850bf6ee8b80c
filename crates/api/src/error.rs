//! The one table from errors to HTTP status and FHIR `OperationOutcome`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phivault_fhir::{FhirError, IssueType, operation_outcome};
use phivault_service::RecordError;

use crate::fhir::FHIR_JSON;

/// An error on its way to the client: status, issue code and PHI-free text.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The policies behind a refusal, for the audit entry only (never in the body).
    pub policy_ids: Vec<String>,
}

/// The policies that decided a `/fhir` request, carried in the response's extensions to
/// the audit entry.
#[derive(Debug, Clone, Default)]
pub struct PolicyTrace(pub Vec<String>);

impl ApiError {
    pub fn new(status: StatusCode, issue: IssueType, message: impl Into<String>) -> Self {
        Self { status, code: issue.code(), message: message.into(), policy_ids: Vec::new() }
    }
}

impl From<FhirError> for ApiError {
    fn from(e: FhirError) -> Self {
        // A well-formed request that a written rule refuses is a conflict, not bad input.
        let status = if e.issue == IssueType::BusinessRule { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
        Self::new(status, e.issue, e.message)
    }
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        use StatusCode as S;
        let (status, issue) = match &e {
            RecordError::Invalid(f) => return f.clone().into(),
            RecordError::Forbidden { policy_ids } => {
                let mut error = Self::new(S::FORBIDDEN, IssueType::Forbidden, e.to_string());
                error.policy_ids = policy_ids.clone();
                return error;
            }
            // Recorded, with its patient, by the operation that refused it.
            RecordError::Refused { policy_ids, break_glass, .. } => {
                let mut error = if *break_glass {
                    Self::new(
                        S::FORBIDDEN,
                        IssueType::Forbidden,
                        "access denied by policy; emergency access (break-glass) can be requested for this patient",
                    )
                } else {
                    // The same answer, word for word, as for an id that does not exist.
                    Self::new(S::NOT_FOUND, IssueType::NotFound, e.to_string())
                };
                error.policy_ids = policy_ids.clone();
                return error;
            }
            // Expected while the mode is on: not an error of the server's to log.
            RecordError::ReadOnly => {
                return Self::new(S::SERVICE_UNAVAILABLE, IssueType::Transient, e.to_string());
            }
            RecordError::NotFound { .. } => (S::NOT_FOUND, IssueType::NotFound),
            RecordError::Shredded { .. } => (S::GONE, IssueType::Deleted),
            RecordError::VersionMismatch => (S::PRECONDITION_FAILED, IssueType::Conflict),
            RecordError::Conflict => (S::CONFLICT, IssueType::Conflict),
            RecordError::MultipleMatches => (S::PRECONDITION_FAILED, IssueType::MultipleMatches),
            RecordError::Integrity { .. } => (S::INTERNAL_SERVER_ERROR, IssueType::Exception),
            RecordError::Keys(_) => (S::INTERNAL_SERVER_ERROR, IssueType::Exception),
            RecordError::Store(_) => (S::SERVICE_UNAVAILABLE, IssueType::Exception),
            RecordError::AuditUnavailable => (S::SERVICE_UNAVAILABLE, IssueType::Exception),
        };
        if status.is_server_error() {
            // Ids only: the service's errors never carry PHI, and causes stay in the log.
            tracing::error!(error = %e, cause = ?std::error::Error::source(&e).map(ToString::to_string), "request failed");
        }
        Self::new(status, issue, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let severity = if self.status.is_server_error() { "fatal" } else { "error" };
        let body = operation_outcome(severity, self.code, &self.message);
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        if !self.policy_ids.is_empty() {
            response.extensions_mut().insert(PolicyTrace(self.policy_ids));
        }
        response
    }
}

/// Unknown paths: a FHIR-shaped 404.
pub async fn not_found_fallback() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, IssueType::NotFound, "no such endpoint")
}

/// Methods the capability statement does not list: a FHIR-shaped 405.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        IssueType::NotSupported,
        "this method is not supported here; records are never deleted through the API",
    )
}
