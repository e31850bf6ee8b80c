//! User accounts as stored. Ids are immutable and never reused; usernames are unique.

use std::fmt;

use crate::Role;

/// Whether an account may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    /// Locked by an administrator until unlocked (automatic lockout after failed logins is
    /// separate and expires by itself: see [`UserRecord::locked_until_ms`]).
    Locked,
    /// Ended (164.308(a)(3)(ii)(C) termination). Kept for the audit trail; never reactivated
    /// under the same id by the API.
    Deactivated,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Locked => "locked",
            UserStatus::Deactivated => "deactivated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(UserStatus::Active),
            "locked" => Some(UserStatus::Locked),
            "deactivated" => Some(UserStatus::Deactivated),
            _ => None,
        }
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One account row. `version` guards every read-modify-write (several server processes).
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    /// For patient accounts: the id of their Patient resource.
    pub patient_id: Option<String>,
    pub status: UserStatus,
    pub password_hash: String,
    pub must_change_password: bool,
    pub password_changed_ms: i64,
    /// The TOTP secret, sealed under the server token key; `None` when not enrolled.
    pub totp_secret_sealed: Option<Vec<u8>>,
    /// Whether enrolment was confirmed with a code (only then is MFA in force).
    pub totp_confirmed: bool,
    /// Consecutive failed logins since the last success or lockout.
    pub failed_logins: i64,
    /// Automatic lockout in force until this time (ms); 0 when none.
    pub locked_until_ms: i64,
    pub last_login_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub version: i64,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("status", &self.status)
            .field("totp_confirmed", &self.totp_confirmed)
            .finish_non_exhaustive()
    }
}

impl UserRecord {
    pub fn mfa_enrolled(&self) -> bool {
        self.totp_confirmed && self.totp_secret_sealed.is_some()
    }
}

/// What administrators and the account holder may see of an account (no hashes, no secrets).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserSummary {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    pub status: String,
    pub mfa_enrolled: bool,
    pub must_change_password: bool,
    /// Set while an automatic lockout is in force (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login_ms: Option<i64>,
    pub created_ms: i64,
}

impl UserRecord {
    pub fn summary(&self, now_ms: i64) -> UserSummary {
        UserSummary {
            id: self.id.clone(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            roles: self.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            patient_id: self.patient_id.clone(),
            status: self.status.as_str().to_owned(),
            mfa_enrolled: self.mfa_enrolled(),
            must_change_password: self.must_change_password,
            locked_until_ms: (self.locked_until_ms > now_ms).then_some(self.locked_until_ms),
            last_login_ms: self.last_login_ms,
            created_ms: self.created_ms,
        }
    }
}
