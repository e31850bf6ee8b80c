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
}

impl ApiError {
    pub fn new(status: StatusCode, issue: IssueType, message: impl Into<String>) -> Self {
        Self { status, code: issue.code(), message: message.into() }
    }
}

impl From<FhirError> for ApiError {
    fn from(e: FhirError) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code: e.issue.code(), message: e.message }
    }
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        use StatusCode as S;
        let (status, issue) = match &e {
            RecordError::Invalid(f) => return f.clone().into(),
            RecordError::NotFound { .. } => (S::NOT_FOUND, IssueType::NotFound),
            RecordError::Shredded { .. } => (S::GONE, IssueType::Deleted),
            RecordError::VersionMismatch => (S::PRECONDITION_FAILED, IssueType::Conflict),
            RecordError::Conflict => (S::CONFLICT, IssueType::Conflict),
            RecordError::MultipleMatches => (S::PRECONDITION_FAILED, IssueType::MultipleMatches),
            RecordError::Integrity { .. } => (S::INTERNAL_SERVER_ERROR, IssueType::Exception),
            RecordError::Keys(_) => (S::INTERNAL_SERVER_ERROR, IssueType::Exception),
            RecordError::Store(_) => (S::SERVICE_UNAVAILABLE, IssueType::Exception),
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
