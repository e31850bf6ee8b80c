//! The identity storage port. Implemented by `phivault-store` for SQLite and PostgreSQL;
//! every counter that enforces a limit (failed logins, per-address throttling, TOTP replay,
//! single-use codes) is updated atomically in the database, so that all server processes
//! share it.

use async_trait::async_trait;
use phivault_ports::StoreError;

use crate::{CredentialRequest, RequestState, TokenKind, TokenRecord, UserRecord};

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub id: String,
    pub name: String,
    /// `public` (browser or native app: PKCE, no secret) or `backend` (SMART Backend
    /// Services: client_credentials with a signed JWT assertion).
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    /// Backend clients: their public keys as a JWK Set (JSON).
    pub jwks: Option<String>,
    /// The most a client may ever be granted (space-separated scopes).
    pub allowed_scopes: String,
    pub active: bool,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Public,
    Backend,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Public => "public",
            ClientKind::Backend => "backend",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(ClientKind::Public),
            "backend" => Some(ClientKind::Backend),
            _ => None,
        }
    }
}

/// The outcome of spending a single-use token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spent {
    /// It was unspent; now it is spent.
    Fresh(TokenRecord),
    /// It had been spent before: a replay.
    Replayed(TokenRecord),
    Missing,
}

#[async_trait]
pub trait IdentityStore: Send + Sync + std::fmt::Debug {
    /// A value that changes after every write that can take access away (logout, lock,
    /// deactivation, role or password change, revoked grant, disabled client), readable
    /// without a database round trip; `None` when the store cannot offer one (then every
    /// request is checked against the database). Must be read before the lookup it guards.
    fn revocation_stamp(&self) -> Option<Vec<u8>> {
        None
    }

    async fn count_users(&self) -> Result<u64, StoreError>;
    /// [`StoreError::Conflict`] when the username or id is taken.
    async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Writes the account's profile, status, password and MFA fields if its version is
    /// still `user.version` (then bumps it), and in the same transaction deletes all of the
    /// user's tokens when `revoke_tokens`. Failed-login counters are left alone.
    async fn update_user(&self, user: &UserRecord, revoke_tokens: bool) -> Result<(), StoreError>;
    /// Counts a failed login; at `max_failures` starts a lockout until `now + lockout_ms`
    /// and resets the count.
    async fn note_login_failure(
        &self,
        user_id: &str,
        now_ms: i64,
        max_failures: i64,
        lockout_ms: i64,
    ) -> Result<(), StoreError>;
    /// Clears the failure count and any automatic lockout; records the login time if given.
    async fn clear_login_failures(&self, user_id: &str, login_ms: Option<i64>) -> Result<(), StoreError>;
    /// Counts a failed login from `source` (a client address) and returns the failures in
    /// the current window of `window_ms`.
    async fn note_source_failure(&self, source: &str, now_ms: i64, window_ms: i64) -> Result<i64, StoreError>;
    /// Failures from `source` in the current window.
    async fn source_failures(&self, source: &str, now_ms: i64, window_ms: i64) -> Result<i64, StoreError>;
    /// Accepts TOTP time step `step` for the user only if it is later than every step
    /// accepted before (each code works once).
    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;
    /// Replaces the user's recovery codes.
    async fn set_recovery_codes(&self, user_id: &str, digests: &[[u8; 32]]) -> Result<(), StoreError>;
    /// Spends one recovery code; false if it is not (or no longer) valid.
    async fn use_recovery_code(&self, user_id: &str, digest: &[u8; 32]) -> Result<bool, StoreError>;
    async fn remaining_recovery_codes(&self, user_id: &str) -> Result<u64, StoreError>;
    /// The user's most recent previous password hashes, newest first.
    async fn password_history(&self, user_id: &str, limit: usize) -> Result<Vec<String>, StoreError>;
    async fn add_password_history(&self, user_id: &str, hash: &str, now_ms: i64) -> Result<(), StoreError>;

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// A successful password check: stores the new session and, only when it completes the
    /// sign-in (`session.stage` is `Complete`: no second factor is due), clears failures and
    /// lockout and records the login time, in one transaction (one durable commit per login).
    async fn record_login(&self, user_id: &str, login_ms: i64, session: &TokenRecord) -> Result<(), StoreError>;
    /// A token and the account it belongs to (one query: this runs on every request).
    async fn token(&self, digest: &[u8; 32]) -> Result<Option<(TokenRecord, Option<UserRecord>)>, StoreError>;
    /// Records activity (for the idle timeout).
    async fn touch_token(&self, digest: &[u8; 32], now_ms: i64) -> Result<(), StoreError>;
    /// Marks a single-use token of `kind` spent, atomically.
    async fn spend_token(&self, digest: &[u8; 32], kind: TokenKind) -> Result<Spent, StoreError>;
    async fn delete_token(&self, digest: &[u8; 32]) -> Result<(), StoreError>;
    /// Deletes every token issued under a grant (logout everywhere in that login, or
    /// revocation after a replayed code or refresh token).
    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError>;
    async fn delete_user_tokens(&self, user_id: &str) -> Result<(), StoreError>;
    /// Every stored token of a user (sessions, OAuth codes and tokens), for listing the
    /// account's sessions.
    async fn user_tokens(&self, user_id: &str) -> Result<Vec<TokenRecord>, StoreError>;
    /// Deletes tokens expired before `before_ms`.
    async fn purge_expired_tokens(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// [`StoreError::Conflict`] when the id is taken.
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError>;
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Disables or enables a client; disabling revokes its tokens.
    async fn set_client_active(&self, id: &str, active: bool) -> Result<bool, StoreError>;

    /// The id_token signing key, sealed: `(kid, sealed PKCS#8)`, oldest first.
    async fn signing_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// Stores a signing key unless one exists already (several processes may race).
    async fn insert_signing_key(&self, kid: &str, sealed: &[u8], now_ms: i64) -> Result<(), StoreError>;
    /// Records a client assertion id; false if the client used it before (a replay).
    /// Forgets ids whose assertions have expired.
    async fn note_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// [`StoreError::Conflict`] when the id is taken.
    async fn insert_credential_request(&self, request: &CredentialRequest) -> Result<(), StoreError>;
    async fn credential_request(&self, id: &str) -> Result<Option<CredentialRequest>, StoreError>;
    /// The newest requests first (at most `limit`), of one account or of all.
    async fn credential_requests(
        &self,
        user_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CredentialRequest>, StoreError>;
    /// Moves a pending request to `state` (approved or refused) by `by` at `at_ms`, in one
    /// atomic statement; false if it was no longer pending (decided by someone else first).
    async fn decide_credential_request(
        &self,
        id: &str,
        state: RequestState,
        by: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError>;
}
