//! phivault's access policy: every access to a record is decided by Cedar policies that an
//! auditor can read, each citing the HIPAA section it implements.
//!
//! * [`Policies`]: a validated policy set and its views; [`Policies::decide`] answers one
//!   request and names the policies that determined the answer.
//! * [`SearchScope`]: what a search may return, derived from the same policies, so a
//!   search never counts or hints at a record that a direct read would refuse.
//! * [`FieldMask`]: minimum-necessary views applied before a resource leaves the server.
//! * [`cases`]: the decision table `phivault policy test` runs.
//!
//! Safeguards: 45 CFR 164.312(a)(1) access control, (a)(2)(ii) emergency access;
//! 164.308(a)(4) information access management; 164.502(b), 164.514(d) minimum necessary;
//! 164.524 right of access.

pub mod cases;
pub mod defaults;
mod engine;
mod facts;
mod retention;
mod scope;
mod view;
mod zones;

pub use engine::{Decision, Policies, PolicySource, PreparedSubject};
pub use facts::{Action, RecordFacts, RequestFacts, Subject, Target, TargetKind, UserFacts, category, security_labels};
pub use retention::Retention;
pub use scope::{PROBED_LABELS, PatientScope, Relations, SearchScope};
pub use view::{FieldMask, REDACTED_CODE, REDACTED_SYSTEM, Removal, Views};
pub use zones::{ANY_ZONE, Cidr, OUTSIDE_ZONE, Zones};

/// Why a policy set or its configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Policies that do not parse or do not validate against the schema; one line each.
    #[error("the policies are invalid:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
    /// A configuration value (a view, a zone, a case table) is malformed.
    #[error("{0}")]
    Config(String),
}
