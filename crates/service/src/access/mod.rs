//! Access control over records: every read, search, history and write a user or app asks
//! for is decided by the policies ([`phivault_policy::Policies`]) on the record's own facts,
//! masked to the view the decision grants, and answered with the ids of the policies that
//! decided it, for the audit trail.
//!
//! [`GuardedRecords`] is the only record service the HTTP adapter holds; the unguarded
//! [`crate::Records`] stays with the operator's console commands (import, demo, keys).
//!
//! Safeguards: 45 CFR 164.312(a)(1) access control; 164.308(a)(4) information access
//! management; 164.502(b), 164.514(d) minimum necessary; 164.524 right of access.

mod asking;
mod break_glass;
mod chart;
mod erase;
mod export;
mod guarded;
mod include;
mod live;
mod membership;
mod store;
mod trail;

pub use break_glass::{BREAK_GLASS_REASONS, BreakGlassRequest, GrantView, Notifier};
pub use chart::{
    CHART_MAX_PER_TYPE, ChartQuery, ChartSection, EVERYTHING_MAX_PER_TYPE, EverythingFilter, PatientChart,
};
pub use export::{EXPORT_PAGE, ExportCursor, ExportItem, ExportLevel, ExportPage, ExportWindow};
pub use guarded::{
    DEFAULT_BREAK_GLASS_MINUTES, DEFAULT_DEPARTMENT_WINDOW_DAYS, GuardedHistory, GuardedPage, GuardedRecords,
};
pub use live::LivePolicies;
pub use membership::{CareTeamChange, NO_SELF_ASSIGNMENT};
pub use store::{
    AccessStore, Assignment, AssignmentKind, BreakGlassGrant, CLEARANCE_CATEGORIES, PatientLinks, Relationships,
    Standing,
};
pub use trail::{Origin, Trail};

use phivault_policy::RequestFacts;

/// Who is asking, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// A signed-in user, directly or through an app holding their access token.
    User {
        user_id: String,
        /// Role names (`physician`, `front_desk`, ...).
        roles: Vec<String>,
        /// A patient account's own Patient id.
        own_patient: Option<String>,
        mfa: bool,
        authenticated_ms: i64,
        via_app: bool,
    },
    /// A backend service with system scopes.
    Client { client_id: String },
}

/// One request for records: who asks, the request's facts (zone, time, purpose), and an
/// app's launch patient when its scopes are patient-level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accessor {
    pub requester: Requester,
    pub request: RequestFacts,
    /// With patient-level SMART scopes: only this patient's records are reachable.
    pub launch_patient: Option<String>,
    /// With SMART scopes that name types: only these types may be read, however they are
    /// reached (an `_include`, say); `None`: every type the policies allow.
    pub readable_types: Option<Vec<String>>,
    /// Likewise for searching (a `_revinclude` is a search of its type).
    pub searchable_types: Option<Vec<String>>,
    /// Where the request's audit entries come from, and whether one was written.
    pub trail: Trail,
}

/// A result the policies allowed, with the policies that allowed it.
#[derive(Debug, Clone)]
pub struct Granted<T> {
    pub value: T,
    /// Determining policy ids, for the audit entry.
    pub policy_ids: Vec<String>,
}
