//! The storage port for access relationships: care-team assignments and clearances for
//! sensitive categories, made by an administrator; and live emergency (break-glass) grants.

use async_trait::async_trait;

use crate::StoreError;

/// What an assignment gives a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentKind {
    /// Membership of a patient's care team (value: the Patient id).
    CareTeam,
    /// Clearance for a sensitive category (value: `behavioral_health`, ...).
    Clearance,
    /// Membership of a department (value: the department's Organization id): patients with
    /// a recent Encounter there (`Encounter.serviceProvider`) are the member's patients.
    Department,
}

impl AssignmentKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentKind::CareTeam => "care_team",
            AssignmentKind::Clearance => "clearance",
            AssignmentKind::Department => "department",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "care_team" => Some(AssignmentKind::CareTeam),
            "clearance" => Some(AssignmentKind::Clearance),
            "department" => Some(AssignmentKind::Department),
            _ => None,
        }
    }
}

/// The sensitive categories a clearance can name (the default policies' words).
pub const CLEARANCE_CATEGORIES: [&str; 5] =
    ["behavioral_health", "substance_use", "hiv", "reproductive_health", "psychotherapy_notes"];

/// One assignment row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub kind: AssignmentKind,
    pub user_id: String,
    pub value: String,
    pub assigned_by: String,
    pub assigned_ms: i64,
}

/// A user's relationships, as access decisions need them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relationships {
    pub care_team: Vec<String>,
    pub clearances: Vec<String>,
    /// Department (Organization) ids.
    pub departments: Vec<String>,
    /// Patients with a live break-glass grant.
    pub emergency_access: Vec<String>,
}

/// What a user holds whatever the patient: clearances and departments (a handful each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    pub clearances: Vec<String>,
    /// Department (Organization) ids.
    pub departments: Vec<String>,
}

/// How a user is related to some patients, as stored: of the patients asked about, those
/// whose care team the user is on and those it holds a live grant for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientLinks {
    pub care_team: Vec<String>,
    pub emergency_access: Vec<String>,
}

/// A break-glass grant: emergency access by one user to one patient until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassGrant {
    pub id: String,
    pub user_id: String,
    pub patient_id: String,
    /// One of the fixed reasons (`emergency-treatment`, ...).
    pub reason_code: String,
    /// The free-text reason, sealed (it may hold clinical details).
    pub reason_sealed: Vec<u8>,
    pub started_ms: i64,
    pub expires_ms: i64,
    /// The privacy officer's finding: `justified` or `unjustified`; `None` while pending.
    pub review: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_ms: Option<i64>,
}

/// Persistent access relationships. Safe to share between server processes.
#[async_trait]
pub trait AccessStore: Send + Sync + std::fmt::Debug {
    /// Everything that relates `user_id` to patients and categories at `now_ms`.
    async fn relationships(&self, user_id: &str, now_ms: i64) -> Result<Relationships, StoreError>;
    /// `user_id`'s clearances and departments.
    async fn standing(&self, user_id: &str) -> Result<Standing, StoreError>;
    /// How `user_id` is related to each of `patients` at `now_ms`: looked up by index for
    /// those patients only, so the cost follows the request, not the size of a panel.
    async fn links_to(&self, user_id: &str, patients: &[String], now_ms: i64) -> Result<PatientLinks, StoreError>;
    /// Adds an assignment; `false` when it already existed.
    async fn assign(&self, assignment: &Assignment) -> Result<bool, StoreError>;
    /// Removes an assignment; `false` when there was none.
    async fn unassign(&self, kind: AssignmentKind, user_id: &str, value: &str) -> Result<bool, StoreError>;
    /// Adds (`add`) or removes the care-team membership `assignment` names, and stores
    /// `entry`, the audit entry that records it, in the same transaction: no membership
    /// changes unrecorded. Whether anything changed.
    async fn change_care_team_recorded(
        &self,
        assignment: &Assignment,
        add: bool,
        entry: &crate::PendingEntry,
    ) -> Result<bool, StoreError>;
    /// Assignments of one kind, for one user or (with `value`) for one patient or category.
    async fn assignments(
        &self,
        kind: AssignmentKind,
        user_id: Option<&str>,
        value: Option<&str>,
    ) -> Result<Vec<Assignment>, StoreError>;
    /// Records a break-glass grant.
    /// Stores a grant and `entry`, the audit entry that records it, in one transaction: no
    /// grant exists unrecorded.
    async fn insert_break_glass(&self, grant: &BreakGlassGrant, entry: &crate::PendingEntry) -> Result<(), StoreError>;
    /// Grants, newest first: all, or only those not yet reviewed.
    async fn break_glass_grants(&self, pending_only: bool, limit: u64) -> Result<Vec<BreakGlassGrant>, StoreError>;
    /// When `user_id`'s live break-glass access to `patient_id` ends, if it holds any at
    /// `now_ms` (the latest end of its live grants).
    async fn emergency_access_until(
        &self,
        user_id: &str,
        patient_id: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Records the review of a grant not yet reviewed; `false` if none such.
    async fn review_break_glass(
        &self,
        id: &str,
        review: &str,
        reviewed_by: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}
