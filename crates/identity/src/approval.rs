//! Separation of duties for credentials (45 CFR 164.308(a)(3)(ii)(A)-(B), (a)(4)(ii)(B)-(C)).
//!
//! An administrator who makes an account, or resets its password or second factor, never
//! sees a credential for it: the change waits as a [`CredentialRequest`] until a second
//! person, in a role the policies let approve credentials (by default the privacy officer),
//! approves it. Only then is a one-time temporary password drawn, shown once to the
//! approver for an in-person hand-over, and it must be replaced at first sign-in (and the
//! second factor enrolled). Requester, approver and account holder are three different
//! accounts; becoming someone else therefore takes two people acting together, and every
//! step is in the audit trail.

use std::fmt;

/// What a request would change on the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialChange {
    /// A new account's first password (it has none anyone knows until approval).
    Activate,
    /// A new temporary password; every session of the account ends.
    ResetPassword,
    /// The second factor and recovery codes removed: the holder enrols again.
    ResetMfa,
}

impl CredentialChange {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialChange::Activate => "activate",
            CredentialChange::ResetPassword => "reset_password",
            CredentialChange::ResetMfa => "reset_mfa",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [CredentialChange::Activate, CredentialChange::ResetPassword, CredentialChange::ResetMfa]
            .into_iter()
            .find(|c| c.as_str() == s)
    }

    /// Whether approval draws a temporary password to hand over.
    pub fn issues_password(self) -> bool {
        matches!(self, CredentialChange::Activate | CredentialChange::ResetPassword)
    }
}

impl fmt::Display for CredentialChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request stands. Only `Pending` moves, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    Pending,
    Approved,
    Refused,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [RequestState::Pending, RequestState::Approved, RequestState::Refused].into_iter().find(|c| c.as_str() == s)
    }
}

/// One change to an account's credentials awaiting, or having had, a second person's word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRequest {
    pub id: String,
    /// The account the change is for.
    pub user_id: String,
    pub change: CredentialChange,
    /// The administrator who asked.
    pub requested_by: String,
    pub requested_ms: i64,
    /// A pending request past this time can no longer be approved.
    pub expires_ms: i64,
    pub state: RequestState,
    pub decided_by: Option<String>,
    pub decided_ms: Option<i64>,
}

impl CredentialRequest {
    /// Pending and not yet expired.
    pub fn open_at(&self, now_ms: i64) -> bool {
        self.state == RequestState::Pending && now_ms < self.expires_ms
    }

    /// What the admin API and pages show (no secret is ever part of a request).
    pub fn summary(&self, now_ms: i64) -> RequestSummary {
        let state = match self.state {
            RequestState::Pending if now_ms >= self.expires_ms => "expired",
            s => s.as_str(),
        };
        RequestSummary {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            change: self.change.as_str(),
            requested_by: self.requested_by.clone(),
            requested_ms: self.requested_ms,
            expires_ms: self.expires_ms,
            state,
            decided_by: self.decided_by.clone(),
            decided_ms: self.decided_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestSummary {
    pub id: String,
    pub user_id: String,
    pub change: &'static str,
    pub requested_by: String,
    pub requested_ms: i64,
    pub expires_ms: i64,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_ms: Option<i64>,
}

/// What approving gives the approver: the temporary password to hand over in person, when
/// the change issues one (shown once; only its hash is stored).
#[derive(Debug)]
pub struct Approved {
    pub request: CredentialRequest,
    pub temporary_password: Option<String>,
}

mod service {
    use phivault_crypto::random_token;

    use super::{Approved, CredentialChange, CredentialRequest, RequestState};
    use crate::service::temporary_password;
    use crate::{Identity, IdentityError, NewAccount, UserStatus, UserSummary};

    /// Requests shown in a listing (newest first).
    const LISTED: usize = 500;

    impl Identity {
        /// An administrator's new account, with no password anyone knows, and the request
        /// that a second person approve its activation.
        pub async fn create_user_for_approval(
            &self,
            mut new: NewAccount,
            requested_by: &str,
        ) -> Result<(UserSummary, CredentialRequest), IdentityError> {
            // A random password that is dropped here: the account cannot be signed in to
            // until the approver draws the first real one.
            new.password = Some(temporary_password(&self.policy().password, &new.username.trim().to_lowercase())?);
            let (user, _) = self.create_user(new).await?;
            let request = self.open_request(&user.id, CredentialChange::Activate, requested_by).await?;
            Ok((user, request))
        }

        /// Asks for a password or second-factor reset of an account; nothing changes until
        /// a second person approves.
        pub async fn request_credential_change(
            &self,
            id_or_username: &str,
            change: CredentialChange,
            requested_by: &str,
        ) -> Result<CredentialRequest, IdentityError> {
            let user = self.find_user(id_or_username).await?;
            if user.status == UserStatus::Deactivated {
                return Err(IdentityError::Invalid("the account is deactivated".into()));
            }
            let now = self.now_ms();
            let waiting = self.store().credential_requests(Some(&user.id), LISTED).await?;
            if waiting.iter().any(|r| r.change == change && r.open_at(now)) {
                return Err(IdentityError::Conflict("the same change for this account already awaits approval"));
            }
            self.open_request(&user.id, change, requested_by).await
        }

        async fn open_request(
            &self,
            user_id: &str,
            change: CredentialChange,
            requested_by: &str,
        ) -> Result<CredentialRequest, IdentityError> {
            let now = self.now_ms();
            let request = CredentialRequest {
                id: format!("req-{}", random_token(12)?),
                user_id: user_id.to_owned(),
                change,
                requested_by: requested_by.to_owned(),
                requested_ms: now,
                expires_ms: now + self.policy().credential_request_ms,
                state: RequestState::Pending,
                decided_by: None,
                decided_ms: None,
            };
            self.store().insert_credential_request(&request).await?;
            Ok(request)
        }

        /// Credential requests, newest first: every account's, or one account's.
        pub async fn credential_requests(
            &self,
            id_or_username: Option<&str>,
        ) -> Result<Vec<CredentialRequest>, IdentityError> {
            let user_id = match id_or_username {
                Some(u) => Some(self.find_user(u).await?.id),
                None => None,
            };
            Ok(self.store().credential_requests(user_id.as_deref(), LISTED).await?)
        }

        /// A second person's approval: the change takes effect, and a password it issues is
        /// returned for the approver to hand over (shown once; only its hash is kept).
        /// Refused to the requester and to the account holder, whatever their roles.
        pub async fn approve_credential_change(
            &self,
            request_id: &str,
            approver: &str,
        ) -> Result<Approved, IdentityError> {
            let request = self.decide(request_id, approver, RequestState::Approved).await?;
            let temporary_password = match request.change {
                CredentialChange::Activate | CredentialChange::ResetPassword => {
                    Some(self.reset_password(&request.user_id).await?)
                }
                CredentialChange::ResetMfa => {
                    self.reset_mfa(&request.user_id).await?;
                    None
                }
            };
            Ok(Approved { request, temporary_password })
        }

        /// A second person's refusal: the request ends and nothing changes.
        pub async fn refuse_credential_change(
            &self,
            request_id: &str,
            approver: &str,
        ) -> Result<CredentialRequest, IdentityError> {
            self.decide(request_id, approver, RequestState::Refused).await
        }

        async fn decide(
            &self,
            request_id: &str,
            approver: &str,
            state: RequestState,
        ) -> Result<CredentialRequest, IdentityError> {
            let store = self.store();
            let request = store
                .credential_request(request_id)
                .await?
                .ok_or(IdentityError::Invalid("no such credential request".into()))?;
            if approver == request.requested_by {
                return Err(IdentityError::SeparationOfDuties(
                    "a change cannot be approved by the person who asked for it",
                ));
            }
            if approver == request.user_id {
                return Err(IdentityError::SeparationOfDuties(
                    "a change to an account cannot be approved by its holder",
                ));
            }
            let now = self.now_ms();
            if !request.open_at(now) {
                return Err(IdentityError::Invalid(format!(
                    "the request is {}; ask for the change again",
                    request.summary(now).state
                )));
            }
            // The account must still be one a credential can be issued for.
            let user = self.find_user(&request.user_id).await?;
            if user.status == UserStatus::Deactivated && state == RequestState::Approved {
                return Err(IdentityError::Invalid("the account is deactivated".into()));
            }
            // One atomic claim: of two approvers at once, one wins and the other is told.
            if !store.decide_credential_request(request_id, state, approver, now).await? {
                return Err(IdentityError::Conflict("someone else decided this request first"));
            }
            Ok(CredentialRequest { state, decided_by: Some(approver.to_owned()), decided_ms: Some(now), ..request })
        }
    }
}
