//! The organization's identity settings, with defaults that follow NIST SP 800-63B and the
//! HIPAA Security Rule's implementation specifications.

use std::collections::BTreeMap;

use crate::{PasswordPolicy, Role};

const MINUTE_MS: i64 = 60_000;

#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    pub password: PasswordPolicy,
    /// Consecutive failures that lock an account (164.308(a)(5)(ii)(C) log-in monitoring).
    pub max_failed_logins: i64,
    pub lockout_ms: i64,
    /// Failed logins from one client address per window before it is refused for the rest
    /// of the window (guessing across many accounts).
    pub max_failures_per_source: i64,
    pub source_window_ms: i64,
    /// Roles that may not use the system without a second factor.
    pub mfa_required_roles: Vec<Role>,
    /// Automatic logoff after inactivity, per role (164.312(a)(2)(iii)); a user with several
    /// roles gets the shortest.
    pub idle_timeout_ms: BTreeMap<Role, i64>,
    /// Longest a session lives however active it is.
    pub session_lifetime_ms: i64,
    /// How long a half-finished login (password given, second factor due) stays open.
    pub pending_login_ms: i64,
    pub access_token_ms: i64,
    pub refresh_token_ms: i64,
    pub auth_code_ms: i64,
    /// Issuer name shown in authenticator apps.
    pub totp_issuer: String,
    /// Separation of duties: an administrator's new account, password reset or second-factor
    /// reset waits for a second person's approval, and only that person sees the temporary
    /// password (for an in-person hand-over). Off: the administrator gets it, as a console
    /// operator does.
    pub second_person_approval: bool,
    /// How long a credential request may wait for approval.
    pub credential_request_ms: i64,
    /// How long a temporary password (one someone else chose or saw) works before it is
    /// replaced; after that the sign-in is refused like a wrong password.
    pub temporary_password_ms: i64,
}

impl Default for IdentityPolicy {
    fn default() -> Self {
        Self {
            password: PasswordPolicy::default(),
            max_failed_logins: 5,
            lockout_ms: 15 * MINUTE_MS,
            max_failures_per_source: 50,
            source_window_ms: 15 * MINUTE_MS,
            // Every role that can see PHI, and admin. Researchers see de-identified data only.
            mfa_required_roles: Role::ALL.into_iter().filter(|r| *r != Role::Researcher).collect(),
            idle_timeout_ms: Role::ALL.into_iter().map(|r| (r, 15 * MINUTE_MS)).collect(),
            session_lifetime_ms: 12 * 60 * MINUTE_MS,
            pending_login_ms: 10 * MINUTE_MS,
            access_token_ms: 10 * MINUTE_MS,
            refresh_token_ms: 12 * 60 * MINUTE_MS,
            auth_code_ms: MINUTE_MS,
            totp_issuer: "phivault".into(),
            second_person_approval: true,
            credential_request_ms: 72 * 60 * MINUTE_MS,
            temporary_password_ms: 72 * 60 * MINUTE_MS,
        }
    }
}

impl IdentityPolicy {
    pub fn mfa_required(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.mfa_required_roles.contains(r))
    }

    /// The idle timeout for a user with `roles` (the shortest of theirs).
    pub fn idle_timeout_for(&self, roles: &[Role]) -> i64 {
        roles.iter().filter_map(|r| self.idle_timeout_ms.get(r).copied()).min().unwrap_or(15 * MINUTE_MS)
    }
}
