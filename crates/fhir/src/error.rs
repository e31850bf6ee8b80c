use thiserror::Error;

/// FHIR `IssueType` codes used in phivault's `OperationOutcome`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    NotFound,
    NotSupported,
    Conflict,
    Duplicate,
    MultipleMatches,
    TooCostly,
    Processing,
    Exception,
    Security,
    Login,
    Forbidden,
    Throttled,
    Deleted,
    /// A rule of the organization's written policy refuses it (e.g. retention).
    BusinessRule,
    /// A temporary condition (emergency read-only mode): try again later.
    Transient,
}

impl IssueType {
    /// The code as written in an OperationOutcome.
    pub fn code(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::NotFound => "not-found",
            IssueType::NotSupported => "not-supported",
            IssueType::Conflict => "conflict",
            IssueType::Duplicate => "duplicate",
            IssueType::MultipleMatches => "multiple-matches",
            IssueType::TooCostly => "too-costly",
            IssueType::Processing => "processing",
            IssueType::Exception => "exception",
            IssueType::Security => "security",
            IssueType::Login => "login",
            IssueType::Forbidden => "forbidden",
            IssueType::Throttled => "throttled",
            IssueType::Deleted => "deleted",
            IssueType::BusinessRule => "business-rule",
            IssueType::Transient => "transient",
        }
    }
}

/// A FHIR-level problem with a request or a resource.
///
/// `message` is fixed text naming element paths and parameter names, never element
/// values: it goes back to the client and may be logged.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct FhirError {
    pub issue: IssueType,
    pub message: String,
}

impl FhirError {
    /// A new error of kind `issue`. Pass only paths and names, never values.
    pub fn new(issue: IssueType, message: impl Into<String>) -> Self {
        Self { issue, message: message.into() }
    }

    /// Shorthand for an `invalid` issue.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(IssueType::Invalid, message)
    }
}
