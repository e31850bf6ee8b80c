//! The identity use cases: sign-in with a password and a second factor, sessions with
//! automatic logoff, password changes, and account administration.
//!
//! Safeguards: 45 CFR 164.312(a)(2)(i) unique user identification, (a)(2)(iii) automatic
//! logoff, (d) person or entity authentication; 164.308(a)(3)(ii)(C) termination,
//! (a)(5)(ii)(C) log-in monitoring, (a)(5)(ii)(D) password management.

use std::sync::Arc;

use phivault_crypto::{PasswordHasher, random_token};
use phivault_ports::{Clock, KeySource, StoreError};
use tokio::sync::Semaphore;

use crate::totp::{TotpSecret, generate_recovery_codes, recovery_code_digest};
use crate::{
    BearerSecret, IdentityError, IdentityPolicy, IdentityStore, LoginStage, PasswordPolicy, Role, TokenKind,
    TokenRecord, UserRecord, UserStatus, UserSummary,
};

/// Touching a token's last-seen time on every request would make every read a write; once
/// per this interval is enough, and errs towards logging off early, never late.
const TOUCH_INTERVAL_MS: i64 = 15_000;

/// A principal validated against the database is reused for at most this long, and only
/// while the store's revocation stamp is unchanged (see [`IdentityStore::revocation_stamp`]).
/// The bound covers changes made behind phivault's back (someone editing the database).
const CACHE_REVALIDATE_MS: i64 = 15_000;
const CACHE_CAPACITY: usize = 10_000;

/// One validated token, as this process last saw it.
#[derive(Debug, Clone)]
struct CachedAuth {
    principal: Principal,
    token: TokenRecord,
    /// The revocation stamp read before the database lookup that produced this entry.
    stamp: Vec<u8>,
    validated_ms: i64,
}

/// The identity service. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn IdentityStore>,
    keys: Arc<dyn KeySource>,
    hasher: PasswordHasher,
    policy: IdentityPolicy,
    clock: Arc<dyn Clock>,
    /// Argon2 is deliberately expensive: at most one hash per core at a time, so a burst of
    /// logins queues instead of starving API traffic.
    hashing: Semaphore,
    /// Verified against when the username is unknown, so that the answer takes as long.
    dummy_hash: String,
    signer: tokio::sync::OnceCell<Arc<phivault_crypto::IdTokenSigner>>,
    /// Principals validated recently, by token digest (only when the store has a stamp).
    auth_cache: std::sync::Mutex<std::collections::HashMap<[u8; 32], CachedAuth>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("store", &self.inner.store).finish_non_exhaustive()
    }
}

/// One live sign-in or app grant of an account, as an administrator lists it: which grant
/// (its id ends it), what kind, which app, and when. No token, no address.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionSummary {
    pub grant: String,
    /// `sign-in` (a browser session) or `app` (an OAuth grant).
    pub kind: &'static str,
    pub client_id: Option<String>,
    pub started_ms: i64,
    pub last_seen_ms: i64,
    pub expires_ms: i64,
    pub mfa: bool,
}

/// A signed-in (or half signed-in) browser session, as handed to the client.
#[derive(Debug, Clone)]
pub struct SessionGrant {
    pub secret: BearerSecret,
    pub stage: LoginStage,
    pub user_id: String,
}

/// A TOTP enrolment in progress: what the authenticator app needs.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
}

/// The account a session belongs to, at any login stage.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub token: TokenRecord,
    pub user: UserRecord,
}

/// Who is calling, once fully authenticated. Built fresh from the database on every
/// request, so a lock, deactivation or role change applies at once on every process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub roles: Vec<Role>,
    /// For patient accounts: their own Patient id.
    pub patient_id: Option<String>,
    /// The OAuth client acting, if any.
    pub client_id: Option<String>,
    /// Granted OAuth scopes; `None` for a browser session (the role's rights, unnarrowed).
    pub scopes: Option<String>,
    /// A SMART launch context patient, if the grant has one.
    pub launch_patient: Option<String>,
    pub mfa: bool,
    pub authenticated_ms: i64,
    pub grant_id: String,
    pub kind: TokenKind,
}

/// The existing account a sign-in attempt named, for the audit trail only: the client
/// gets the same answer whatever is here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSubject {
    pub user_id: String,
    /// Why the account itself refuses sign-in (`deactivated_account`, `locked_account`,
    /// `locked_out`), whatever the password was.
    pub account_refusal: Option<&'static str>,
}

/// A new account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub patient_id: Option<String>,
    /// `None`: a random temporary password is generated and must be changed at first login.
    pub password: Option<String>,
}

fn valid_username(name: &str) -> bool {
    (3..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

impl Identity {
    pub fn new(
        store: Arc<dyn IdentityStore>,
        keys: Arc<dyn KeySource>,
        hasher: PasswordHasher,
        policy: IdentityPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, IdentityError> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let dummy_hash = hasher.hash(&random_token(16)?)?;
        let store: Arc<dyn IdentityStore> =
            Arc::new(crate::sealed_store::SealingStore { inner: store, keys: keys.clone() });
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                keys,
                hasher,
                policy,
                clock,
                hashing: Semaphore::new(cores),
                dummy_hash,
                signer: tokio::sync::OnceCell::new(),
                auth_cache: Default::default(),
            }),
        })
    }

    pub fn policy(&self) -> &IdentityPolicy {
        &self.inner.policy
    }

    pub fn store(&self) -> &Arc<dyn IdentityStore> {
        &self.inner.store
    }

    pub(crate) fn signer_cell(&self) -> &tokio::sync::OnceCell<Arc<phivault_crypto::IdTokenSigner>> {
        &self.inner.signer
    }

    pub(crate) fn key_ring(&self) -> Arc<phivault_crypto::KeyRing> {
        self.inner.keys.ring()
    }

    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    async fn verify_password(&self, password: &str, phc: &str) -> Result<bool, IdentityError> {
        let _permit = self.inner.hashing.acquire().await.map_err(|_| IdentityError::Conflict("shutting down"))?;
        let (hasher, password, phc) = (self.inner.hasher.clone(), password.to_owned(), phc.to_owned());
        tokio::task::spawn_blocking(move || hasher.verify(&password, &phc))
            .await
            .map_err(|_| IdentityError::Conflict("password check was interrupted"))
    }

    async fn hash_password(&self, password: &str) -> Result<String, IdentityError> {
        let _permit = self.inner.hashing.acquire().await.map_err(|_| IdentityError::Conflict("shutting down"))?;
        let (hasher, password) = (self.inner.hasher.clone(), password.to_owned());
        tokio::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .map_err(|_| IdentityError::Conflict("password hashing was interrupted"))?
            .map_err(IdentityError::from)
    }

    // ---- sign-in -----------------------------------------------------------------------

    /// Checks a username and password from client address `source`. Unknown users, wrong
    /// passwords, locked and deactivated accounts all get [`IdentityError::BadCredentials`]
    /// after the same Argon2 work.
    pub async fn login(&self, username: &str, password: &str, source: &str) -> Result<SessionGrant, IdentityError> {
        self.login_with_subject(username, password, source).await.0
    }

    /// [`Identity::login`], also naming the existing account a failed attempt was against
    /// (for the audit trail and log-in monitoring; never shown to the client).
    pub async fn login_with_subject(
        &self,
        username: &str,
        password: &str,
        source: &str,
    ) -> (Result<SessionGrant, IdentityError>, Option<LoginSubject>) {
        let mut subject = None;
        let result = self.login_inner(username, password, source, &mut subject).await;
        (result, subject)
    }

    async fn login_inner(
        &self,
        username: &str,
        password: &str,
        source: &str,
        subject: &mut Option<LoginSubject>,
    ) -> Result<SessionGrant, IdentityError> {
        let policy = &self.inner.policy;
        let store = &self.inner.store;
        let now = self.now_ms();
        let failures = store.source_failures(source, now, policy.source_window_ms).await?;
        if failures >= policy.max_failures_per_source {
            let window_end = (now / policy.source_window_ms + 1) * policy.source_window_ms;
            return Err(IdentityError::Throttled { retry_after_s: ((window_end - now) / 1000).max(1) });
        }
        let user = store.user_by_username(&username.trim().to_lowercase()).await?;
        let phc = user.as_ref().map_or(self.inner.dummy_hash.as_str(), |u| u.password_hash.as_str());
        let password_ok = self.verify_password(password, phc).await?;
        let Some(user) = user else {
            store.note_source_failure(source, now, policy.source_window_ms).await?;
            return Err(IdentityError::BadCredentials);
        };
        let account_refusal = match user.status {
            UserStatus::Deactivated => Some("deactivated_account"),
            UserStatus::Locked => Some("locked_account"),
            _ if user.locked_until_ms > now => Some("locked_out"),
            // A handed-over password is a one-time credential: it stops working if it is not
            // replaced in time (the person asks for a new one).
            _ if user.must_change_password && now - user.password_changed_ms > policy.temporary_password_ms => {
                Some("temporary_password_expired")
            }
            _ => None,
        };
        *subject = Some(LoginSubject { user_id: user.id.clone(), account_refusal });
        let usable = user.status == UserStatus::Active && user.locked_until_ms <= now && account_refusal.is_none();
        if !password_ok || !usable {
            store.note_source_failure(source, now, policy.source_window_ms).await?;
            if usable {
                store.note_login_failure(&user.id, now, policy.max_failed_logins, policy.lockout_ms).await?;
            }
            tracing::info!(user_id = %user.id, status = %user.status, "login refused");
            return Err(IdentityError::BadCredentials);
        }
        let user = self.rehash_if_needed(user, password).await?;
        let stage = self.next_stage(&user, false);
        let (token, secret) = self.new_session(&user, stage, false, now, &random_token(16)?)?;
        store.record_login(&user.id, now, &token).await?;
        Ok(SessionGrant { secret, stage, user_id: user.id })
    }

    /// Stores a hash with the current Argon2 parameters after a successful login, if the
    /// stored one is weaker.
    async fn rehash_if_needed(&self, mut user: UserRecord, password: &str) -> Result<UserRecord, IdentityError> {
        if !self.inner.hasher.needs_rehash(&user.password_hash) {
            return Ok(user);
        }
        user.password_hash = self.hash_password(password).await?;
        user.updated_ms = self.now_ms();
        match self.inner.store.update_user(&user, false).await {
            Ok(()) => {
                user.version += 1;
                Ok(user)
            }
            // Someone changed the account meanwhile; the old hash still verifies.
            Err(StoreError::Conflict) => Ok(user),
            Err(e) => Err(e.into()),
        }
    }

    fn next_stage(&self, user: &UserRecord, mfa_done: bool) -> LoginStage {
        if user.mfa_enrolled() && !mfa_done {
            LoginStage::NeedsMfa
        } else if user.must_change_password {
            LoginStage::NeedsPasswordChange
        } else if self.inner.policy.mfa_required(&user.roles) && !user.mfa_enrolled() {
            LoginStage::NeedsEnrolment
        } else {
            LoginStage::Complete
        }
    }

    /// A session token record (not yet stored) and its secret.
    fn new_session(
        &self,
        user: &UserRecord,
        stage: LoginStage,
        mfa: bool,
        authenticated_ms: i64,
        grant_id: &str,
    ) -> Result<(TokenRecord, BearerSecret), IdentityError> {
        let policy = &self.inner.policy;
        let now = self.now_ms();
        let secret = BearerSecret::generate()?;
        let (idle_ms, expires_ms) = if stage == LoginStage::Complete {
            (policy.idle_timeout_for(&user.roles), authenticated_ms + policy.session_lifetime_ms)
        } else {
            (0, (now + policy.pending_login_ms).min(authenticated_ms + policy.session_lifetime_ms))
        };
        let token = TokenRecord {
            digest: secret.digest(),
            kind: TokenKind::Session,
            grant_id: grant_id.to_owned(),
            user_id: Some(user.id.clone()),
            client_id: None,
            scopes: String::new(),
            stage,
            mfa,
            authenticated_ms,
            created_ms: now,
            last_seen_ms: now,
            idle_ms,
            expires_ms,
            data: None,
            consumed: false,
        };
        Ok((token, secret))
    }

    async fn issue_session(
        &self,
        user: &UserRecord,
        stage: LoginStage,
        mfa: bool,
        authenticated_ms: i64,
        grant_id: &str,
    ) -> Result<SessionGrant, IdentityError> {
        let (token, secret) = self.new_session(user, stage, mfa, authenticated_ms, grant_id)?;
        self.inner.store.insert_token(&token).await?;
        if stage == LoginStage::Complete {
            // Only a finished sign-in (password and second factor) forgives earlier failures.
            self.inner.store.clear_login_failures(&user.id, Some(self.now_ms())).await?;
            let _ = self.inner.store.purge_expired_tokens(self.now_ms() - 86_400_000).await;
        }
        Ok(SessionGrant { secret, stage, user_id: user.id.clone() })
    }

    /// Ends `old` and issues a fresh session token at the next stage (a new id at every
    /// privilege change, so a token seen before the change is worthless after it).
    async fn advance(&self, old: &SessionView, mfa: bool) -> Result<SessionGrant, IdentityError> {
        self.inner.store.delete_token(&old.token.digest).await?;
        let user = self.inner.store.user_by_id(&old.user.id).await?.ok_or(IdentityError::Unauthenticated)?;
        let stage = self.next_stage(&user, mfa);
        self.issue_session(&user, stage, mfa, old.token.authenticated_ms, &old.token.grant_id).await
    }

    /// The session behind `secret` at any stage, if it is live and its account active.
    pub async fn session(&self, secret: &BearerSecret) -> Result<SessionView, IdentityError> {
        let now = self.now_ms();
        let (token, user) = self.inner.store.token(&secret.digest()).await?.ok_or(IdentityError::Unauthenticated)?;
        let user = user.ok_or(IdentityError::Unauthenticated)?;
        // A lockout ends every session of the account at every stage, so that codes cannot
        // be tried through another half-finished sign-in while it lasts.
        if token.kind != TokenKind::Session
            || !token.live_at(now)
            || user.status != UserStatus::Active
            || user.locked_until_ms > now
        {
            return Err(IdentityError::Unauthenticated);
        }
        Ok(SessionView { token, user })
    }

    /// Second factor from client address `source`: a TOTP code, or one of the recovery codes.
    ///
    /// A wrong code counts like a wrong password, per account and per address (both in the
    /// database, so every node sees them): guessing six digits must not be free once the
    /// password is known. The attempt that reaches the limit locks the account and ends
    /// the session ([`IdentityError::LockedOut`]); an address over its limit is refused
    /// before the code is looked at ([`IdentityError::Throttled`]).
    pub async fn verify_mfa(
        &self,
        secret: &BearerSecret,
        code: &str,
        source: &str,
    ) -> Result<SessionGrant, IdentityError> {
        let view = self.session(secret).await?;
        if view.token.stage != LoginStage::NeedsMfa {
            return Err(IdentityError::WrongStage);
        }
        let policy = &self.inner.policy;
        let store = &self.inner.store;
        let now = self.now_ms();
        if store.source_failures(source, now, policy.source_window_ms).await? >= policy.max_failures_per_source {
            let window_end = (now / policy.source_window_ms + 1) * policy.source_window_ms;
            return Err(IdentityError::Throttled { retry_after_s: ((window_end - now) / 1000).max(1) });
        }
        if self.check_second_factor(&view.user, code).await? {
            return self.advance(&view, true).await;
        }
        store.note_source_failure(source, now, policy.source_window_ms).await?;
        store.note_login_failure(&view.user.id, now, policy.max_failed_logins, policy.lockout_ms).await?;
        if let Some(user) = store.user_by_id(&view.user.id).await?
            && user.locked_until_ms > now
        {
            store.delete_token(&view.token.digest).await?;
            tracing::info!(user_id = %user.id, "second factor failed too often; account locked for a while");
            return Err(IdentityError::LockedOut);
        }
        Err(IdentityError::BadCode)
    }

    async fn check_second_factor(&self, user: &UserRecord, code: &str) -> Result<bool, IdentityError> {
        let code = code.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            let Some(totp) = self.totp_secret(user)? else { return Ok(false) };
            let Some(step) = totp.matching_step(code, self.now_ms().div_euclid(1000)) else { return Ok(false) };
            return Ok(self.inner.store.accept_totp_step(&user.id, step).await?);
        }
        Ok(self.inner.store.use_recovery_code(&user.id, &recovery_code_digest(code)).await?)
    }

    fn totp_aad(user_id: &str) -> String {
        format!("totp-secret/v1/{user_id}")
    }

    fn totp_secret(&self, user: &UserRecord) -> Result<Option<TotpSecret>, IdentityError> {
        let Some(sealed) = &user.totp_secret_sealed else { return Ok(None) };
        let bytes = self.inner.keys.ring().open_token(&Self::totp_aad(&user.id), sealed)?;
        Ok(Some(TotpSecret::from_bytes(bytes)))
    }

    /// Starts (or restarts) TOTP enrolment for a session at the enrolment stage.
    pub async fn begin_enrolment(&self, secret: &BearerSecret) -> Result<Enrolment, IdentityError> {
        let view = self.session(secret).await?;
        if view.token.stage != LoginStage::NeedsEnrolment {
            return Err(IdentityError::WrongStage);
        }
        let mut user = view.user;
        let totp = TotpSecret::generate()?;
        user.totp_secret_sealed = Some(self.inner.keys.ring().seal_token(&Self::totp_aad(&user.id), totp.as_bytes())?);
        user.totp_confirmed = false;
        user.updated_ms = self.now_ms();
        self.update(&user, false).await?;
        Ok(Enrolment {
            secret_base32: totp.base32(),
            otpauth_uri: totp.otpauth_uri(&self.inner.policy.totp_issuer, &user.username),
        })
    }

    /// Confirms enrolment with a first code; returns the next session and the ten recovery
    /// codes (shown once).
    pub async fn confirm_enrolment(
        &self,
        secret: &BearerSecret,
        code: &str,
    ) -> Result<(SessionGrant, Vec<String>), IdentityError> {
        let view = self.session(secret).await?;
        if view.token.stage != LoginStage::NeedsEnrolment {
            return Err(IdentityError::WrongStage);
        }
        let mut user = view.user.clone();
        let totp = self.totp_secret(&user)?.ok_or(IdentityError::WrongStage)?;
        let step = totp.matching_step(code, self.now_ms().div_euclid(1000)).ok_or(IdentityError::BadCode)?;
        if !self.inner.store.accept_totp_step(&user.id, step).await? {
            return Err(IdentityError::BadCode);
        }
        let codes = generate_recovery_codes()?;
        let digests: Vec<[u8; 32]> = codes.iter().map(|(_, d)| *d).collect();
        // Codes first: if confirming then fails, the user retries and gets new codes; the
        // other order could switch MFA on with recovery codes nobody was ever shown.
        self.inner.store.set_recovery_codes(&user.id, &digests).await?;
        user.totp_confirmed = true;
        user.updated_ms = self.now_ms();
        self.update(&user, false).await?;
        let grant = self.advance(&view, true).await?;
        Ok((grant, codes.into_iter().map(|(c, _)| c).collect()))
    }

    /// Changes the password of the session's user; the old one is required. Every other
    /// session of the user ends.
    pub async fn change_password(
        &self,
        secret: &BearerSecret,
        old: &str,
        new: &str,
    ) -> Result<SessionGrant, IdentityError> {
        let view = self.session(secret).await?;
        if !matches!(view.token.stage, LoginStage::NeedsPasswordChange | LoginStage::Complete) {
            return Err(IdentityError::WrongStage);
        }
        // Wrong current passwords count toward the account's lockout, as at sign-in: a
        // signed-in browser left unattended is not a place to guess the password from.
        let policy = &self.inner.policy;
        let store = &self.inner.store;
        let now = self.now_ms();
        if view.user.locked_until_ms > now {
            store.delete_token(&view.token.digest).await?;
            return Err(IdentityError::LockedOut);
        }
        if !self.verify_password(old, &view.user.password_hash).await? {
            store.note_login_failure(&view.user.id, now, policy.max_failed_logins, policy.lockout_ms).await?;
            if let Some(user) = store.user_by_id(&view.user.id).await?
                && user.locked_until_ms > now
            {
                store.delete_token(&view.token.digest).await?;
                tracing::info!(user_id = %user.id, "current password wrong too often; account locked for a while");
                return Err(IdentityError::LockedOut);
            }
            return Err(IdentityError::WrongCurrentPassword);
        }
        let mut user = view.user.clone();
        self.set_password(&mut user, new, false).await?;
        store.clear_login_failures(&user.id, None).await?;
        // update_user revoked every token of the user, this session's too; issue a new one.
        let stage = self.next_stage(&user, view.token.mfa);
        self.issue_session(&user, stage, view.token.mfa, view.token.authenticated_ms, &view.token.grant_id).await
    }

    async fn set_password(&self, user: &mut UserRecord, new: &str, must_change: bool) -> Result<(), IdentityError> {
        let policy = &self.inner.policy.password;
        policy.check(new, &user.username)?;
        let mut previous = vec![user.password_hash.clone()];
        previous.extend(self.inner.store.password_history(&user.id, policy.history).await?);
        for old_hash in previous.iter().take(policy.history.max(1)) {
            if self.verify_password(new, old_hash).await? {
                return Err(crate::PasswordRejection::Reused(policy.history.max(1)).into());
            }
        }
        let now = self.now_ms();
        let old_hash = std::mem::replace(&mut user.password_hash, self.hash_password(new).await?);
        user.must_change_password = must_change;
        user.password_changed_ms = now;
        user.updated_ms = now;
        self.update(user, true).await?;
        self.inner.store.add_password_history(&user.id, &old_hash, now).await?;
        Ok(())
    }

    pub(crate) async fn update(&self, user: &UserRecord, revoke_tokens: bool) -> Result<(), IdentityError> {
        match self.inner.store.update_user(user, revoke_tokens).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(IdentityError::Conflict("the account changed meanwhile; try again")),
            Err(e) => Err(e.into()),
        }
    }

    /// Ends a session (server-side; the cookie alone is then worthless).
    pub async fn logout(&self, secret: &BearerSecret) -> Result<(), IdentityError> {
        Ok(self.inner.store.delete_token(&secret.digest()).await?)
    }

    /// The principal behind a fully signed-in session or an OAuth access token. Runs on
    /// every request. With a revocation stamp (SQLite), a token validated in the last 15 s
    /// is answered from memory as long as nothing was revoked since; otherwise one indexed
    /// lookup. Either way a write at most every few seconds records activity.
    pub async fn authenticate(&self, secret: &BearerSecret) -> Result<Principal, IdentityError> {
        let now = self.now_ms();
        let digest = secret.digest();
        let stamp = self.inner.store.revocation_stamp();
        if let Some(stamp) = &stamp
            && let Some(principal) = self.cached_principal(&digest, stamp, now).await?
        {
            return Ok(principal);
        }
        let (mut token, principal) = match self.lookup_principal(&digest, now).await {
            Ok(found) => found,
            Err(e) => {
                self.forget(&digest);
                return Err(e);
            }
        };
        if token.idle_ms > 0 && now - token.last_seen_ms >= TOUCH_INTERVAL_MS {
            self.inner.store.touch_token(&digest, now).await?;
            token.last_seen_ms = now;
        }
        if let Some(stamp) = stamp {
            let mut cache = self.inner.auth_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(digest, CachedAuth { principal: principal.clone(), token, stamp, validated_ms: now });
        }
        Ok(principal)
    }

    fn forget(&self, digest: &[u8; 32]) {
        self.inner.auth_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(digest);
    }

    /// A cached principal if it is still good: same stamp, recently validated, not expired,
    /// not idle. Records activity as the database path does.
    async fn cached_principal(
        &self,
        digest: &[u8; 32],
        stamp: &[u8],
        now: i64,
    ) -> Result<Option<Principal>, IdentityError> {
        let (principal, touch) = {
            let mut cache = self.inner.auth_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(entry) = cache.get_mut(digest) else { return Ok(None) };
            let fresh = entry.stamp == stamp
                && now - entry.validated_ms < CACHE_REVALIDATE_MS
                && now >= entry.validated_ms
                // Lockouts, like every other revocation, come with a new stamp.
                && entry.token.live_at(now);
            if !fresh {
                cache.remove(digest);
                return Ok(None);
            }
            let touch = entry.token.idle_ms > 0 && now - entry.token.last_seen_ms >= TOUCH_INTERVAL_MS;
            if touch {
                entry.token.last_seen_ms = now;
            }
            (entry.principal.clone(), touch)
        };
        if touch {
            self.inner.store.touch_token(digest, now).await?;
        }
        Ok(Some(principal))
    }

    /// The database path of [`Identity::authenticate`].
    async fn lookup_principal(&self, digest: &[u8; 32], now: i64) -> Result<(TokenRecord, Principal), IdentityError> {
        let (token, user) = self.inner.store.token(digest).await?.ok_or(IdentityError::Unauthenticated)?;
        if !matches!(token.kind, TokenKind::Session | TokenKind::Access)
            || token.stage != LoginStage::Complete
            || !token.live_at(now)
        {
            return Err(IdentityError::Unauthenticated);
        }
        let principal = match (&token.user_id, user) {
            (Some(_), Some(user)) if user.status == UserStatus::Active && user.locked_until_ms <= now => Principal {
                user_id: Some(user.id),
                username: Some(user.username),
                roles: user.roles,
                patient_id: user.patient_id,
                client_id: token.client_id.clone(),
                scopes: (token.kind == TokenKind::Access).then(|| token.scopes.clone()),
                launch_patient: launch_patient(&token),
                mfa: token.mfa,
                authenticated_ms: token.authenticated_ms,
                grant_id: token.grant_id.clone(),
                kind: token.kind,
            },
            // A backend service acting as itself: no user, the client's scopes.
            (None, None) if token.kind == TokenKind::Access && token.client_id.is_some() => {
                let client_id = token.client_id.clone().unwrap_or_default();
                let active = self.inner.store.client(&client_id).await?.is_some_and(|c| c.active);
                if !active {
                    return Err(IdentityError::Unauthenticated);
                }
                Principal {
                    user_id: None,
                    username: None,
                    roles: Vec::new(),
                    patient_id: None,
                    client_id: Some(client_id),
                    scopes: Some(token.scopes.clone()),
                    launch_patient: None,
                    mfa: false,
                    authenticated_ms: token.authenticated_ms,
                    grant_id: token.grant_id.clone(),
                    kind: token.kind,
                }
            }
            _ => return Err(IdentityError::Unauthenticated),
        };
        Ok((token, principal))
    }

    // ---- administration ----------------------------------------------------------------

    /// Creates an account. Returns its summary and, when no password was given, the
    /// generated temporary one (to hand over once; it must be changed at first login).
    pub async fn create_user(&self, new: NewAccount) -> Result<(UserSummary, Option<String>), IdentityError> {
        let username = new.username.trim().to_lowercase();
        if !valid_username(&username) {
            return Err(IdentityError::Invalid(
                "a username is 3 to 64 characters: lower-case letters, digits, '.', '_', '-' or '@'".into(),
            ));
        }
        let display_name = new.display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 200 || display_name.chars().any(char::is_control) {
            return Err(IdentityError::Invalid("a display name is 1 to 200 printable characters".into()));
        }
        if new.roles.is_empty() {
            return Err(IdentityError::Invalid("an account needs at least one role".into()));
        }
        let is_patient = new.roles.contains(&Role::Patient);
        match (&new.patient_id, is_patient) {
            (None, true) => return Err(IdentityError::Invalid("a patient account must name its Patient id".into())),
            (Some(_), false) => {
                return Err(IdentityError::Invalid("only patient accounts are linked to a Patient id".into()));
            }
            (Some(id), true) if phivault_fhir_id_ok(id) => {}
            (Some(_), true) => return Err(IdentityError::Invalid("the Patient id is not a valid FHIR id".into())),
            (None, false) => {}
        }
        if is_patient && new.roles.len() > 1 {
            return Err(IdentityError::Invalid("a patient account holds no other role".into()));
        }
        let (password, generated) = match new.password {
            Some(p) => (p, None),
            None => {
                let p = temporary_password(&self.inner.policy.password, &username)?;
                (p.clone(), Some(p))
            }
        };
        self.inner.policy.password.check(&password, &username)?;
        let now = self.now_ms();
        let user = UserRecord {
            id: format!("user-{}", random_token(12)?),
            username,
            display_name: display_name.to_owned(),
            roles: new.roles,
            patient_id: new.patient_id,
            status: UserStatus::Active,
            password_hash: self.hash_password(&password).await?,
            // A password someone else chose or saw is temporary.
            must_change_password: true,
            password_changed_ms: now,
            totp_secret_sealed: None,
            totp_confirmed: false,
            failed_logins: 0,
            locked_until_ms: 0,
            last_login_ms: None,
            created_ms: now,
            updated_ms: now,
            version: 1,
        };
        match self.inner.store.insert_user(&user).await {
            Ok(()) => Ok((user.summary(now), generated)),
            Err(StoreError::Conflict) => Err(IdentityError::Conflict("that username is taken")),
            Err(e) => Err(e.into()),
        }
    }

    /// Finds an account by id or username.
    pub async fn find_user(&self, id_or_username: &str) -> Result<UserRecord, IdentityError> {
        let store = &self.inner.store;
        if let Some(user) = store.user_by_id(id_or_username).await? {
            return Ok(user);
        }
        store.user_by_username(&id_or_username.trim().to_lowercase()).await?.ok_or(IdentityError::NoSuchUser)
    }

    pub async fn list_users(&self) -> Result<Vec<UserSummary>, IdentityError> {
        let now = self.now_ms();
        Ok(self.inner.store.list_users().await?.iter().map(|u| u.summary(now)).collect())
    }

    /// The account's live sign-ins and app authorizations, one per grant (a browser
    /// sign-in, or an app's OAuth grant with its access and refresh tokens), oldest first.
    /// Never the tokens themselves: only what identifies and describes each grant.
    pub async fn sessions(&self, id_or_username: &str) -> Result<Vec<SessionSummary>, IdentityError> {
        let user = self.find_user(id_or_username).await?;
        let now = self.now_ms();
        let mut grants: Vec<SessionSummary> = Vec::new();
        for token in self.inner.store.user_tokens(&user.id).await? {
            if !token.live_at(now) {
                continue;
            }
            match grants.iter_mut().find(|g| g.grant == token.grant_id) {
                Some(g) => {
                    g.last_seen_ms = g.last_seen_ms.max(token.last_seen_ms);
                    g.expires_ms = g.expires_ms.max(token.expires_ms);
                    g.mfa |= token.mfa;
                }
                None => grants.push(SessionSummary {
                    grant: token.grant_id.clone(),
                    kind: if token.kind == TokenKind::Session { "sign-in" } else { "app" },
                    client_id: token.client_id.clone(),
                    started_ms: token.authenticated_ms,
                    last_seen_ms: token.last_seen_ms,
                    expires_ms: token.expires_ms,
                    mfa: token.mfa,
                }),
            }
        }
        Ok(grants)
    }

    /// Ends one of the account's sign-ins or app grants (every token issued under it), at
    /// once on every process. `Ok(false)` when the account holds no such grant.
    pub async fn end_session(&self, id_or_username: &str, grant_id: &str) -> Result<bool, IdentityError> {
        let user = self.find_user(id_or_username).await?;
        let owned = self.inner.store.user_tokens(&user.id).await?.iter().any(|t| t.grant_id == grant_id);
        if !owned {
            return Ok(false);
        }
        // The store's revocation stamp changes with it, so no process keeps a cached
        // principal for these tokens.
        self.inner.store.revoke_grant(grant_id).await?;
        Ok(true)
    }

    /// Ends every sign-in and app grant of the account; returns how many there were.
    pub async fn end_all_sessions(&self, id_or_username: &str) -> Result<usize, IdentityError> {
        let live = self.sessions(id_or_username).await?.len();
        let user = self.find_user(id_or_username).await?;
        self.inner.store.delete_user_tokens(&user.id).await?;
        Ok(live)
    }

    /// Locks an account until an administrator unlocks it; its sessions and tokens end.
    pub async fn lock(&self, id_or_username: &str) -> Result<UserSummary, IdentityError> {
        self.change_status(id_or_username, UserStatus::Locked).await
    }

    /// Deactivates an account for good (termination); its sessions and tokens end at once.
    pub async fn deactivate(&self, id_or_username: &str) -> Result<UserSummary, IdentityError> {
        self.change_status(id_or_username, UserStatus::Deactivated).await
    }

    /// Lifts an administrator's lock and any automatic lockout.
    pub async fn unlock(&self, id_or_username: &str) -> Result<UserSummary, IdentityError> {
        let mut user = self.find_user(id_or_username).await?;
        if user.status == UserStatus::Deactivated {
            return Err(IdentityError::Invalid("a deactivated account cannot be unlocked".into()));
        }
        if user.status == UserStatus::Locked {
            user.status = UserStatus::Active;
            user.updated_ms = self.now_ms();
            self.update(&user, false).await?;
        }
        self.inner.store.clear_login_failures(&user.id, None).await?;
        Ok(self.find_user(&user.id).await?.summary(self.now_ms()))
    }

    async fn change_status(&self, id_or_username: &str, status: UserStatus) -> Result<UserSummary, IdentityError> {
        let mut user = self.find_user(id_or_username).await?;
        if user.status == UserStatus::Deactivated {
            return Err(IdentityError::Invalid("the account is already deactivated".into()));
        }
        user.status = status;
        user.updated_ms = self.now_ms();
        self.update(&user, true).await?;
        Ok(self.find_user(&user.id).await?.summary(self.now_ms()))
    }

    /// Sets a random temporary password that must be changed at next login; ends sessions.
    pub async fn reset_password(&self, id_or_username: &str) -> Result<String, IdentityError> {
        let mut user = self.find_user(id_or_username).await?;
        if user.status == UserStatus::Deactivated {
            return Err(IdentityError::Invalid("the account is deactivated".into()));
        }
        let temporary = temporary_password(&self.inner.policy.password, &user.username)?;
        let now = self.now_ms();
        let old_hash = std::mem::replace(&mut user.password_hash, self.hash_password(&temporary).await?);
        user.must_change_password = true;
        user.password_changed_ms = now;
        user.updated_ms = now;
        self.update(&user, true).await?;
        self.inner.store.add_password_history(&user.id, &old_hash, now).await?;
        Ok(temporary)
    }

    /// Removes the second factor (lost phone): the user enrols again at next login.
    pub async fn reset_mfa(&self, id_or_username: &str) -> Result<UserSummary, IdentityError> {
        let mut user = self.find_user(id_or_username).await?;
        user.totp_secret_sealed = None;
        user.totp_confirmed = false;
        user.updated_ms = self.now_ms();
        self.update(&user, true).await?;
        self.inner.store.set_recovery_codes(&user.id, &[]).await?;
        Ok(self.find_user(&user.id).await?.summary(self.now_ms()))
    }

    /// Replaces an account's roles (a privilege change: its sessions end).
    pub async fn set_roles(&self, id_or_username: &str, roles: Vec<Role>) -> Result<UserSummary, IdentityError> {
        let mut user = self.find_user(id_or_username).await?;
        if roles.is_empty() {
            return Err(IdentityError::Invalid("an account needs at least one role".into()));
        }
        if roles.contains(&Role::Patient) != user.roles.contains(&Role::Patient) {
            return Err(IdentityError::Invalid(
                "patient and staff accounts cannot be converted into each other".into(),
            ));
        }
        user.roles = roles;
        user.updated_ms = self.now_ms();
        self.update(&user, true).await?;
        Ok(self.find_user(&user.id).await?.summary(self.now_ms()))
    }

    /// The first administrator, if the database has no account yet: random password shown
    /// once, to be changed, and MFA to be enrolled, at first login.
    pub async fn create_bootstrap_admin(&self) -> Result<Option<(String, String)>, IdentityError> {
        if self.inner.store.count_users().await? > 0 {
            return Ok(None);
        }
        let (summary, password) = self
            .create_user(NewAccount {
                username: "admin".into(),
                display_name: "Bootstrap administrator".into(),
                roles: vec![Role::Admin],
                patient_id: None,
                password: None,
            })
            .await?;
        Ok(password.map(|p| (summary.username, p)))
    }
}

/// A random temporary password that the organization's own rules accept. A random token
/// is refused now and then: about one draw in ten thousand matches a 32-bit prefix on the
/// breached list, and about half lack the symbol a composition rule demands. Such a
/// refusal used to fail account creation (and `phivault init`) at random, so draw again.
pub(crate) fn temporary_password(policy: &PasswordPolicy, username: &str) -> Result<String, IdentityError> {
    // 24 characters (144 bits) unless the rules ask for more or allow fewer.
    let length = policy.min_length.max(24).min(policy.max_length);
    let mut last = None;
    for _ in 0..64 {
        let mut candidate = random_token(length * 3 / 4 + 1)?;
        candidate.truncate(length);
        match policy.check(&candidate, username) {
            Ok(()) => return Ok(candidate),
            Err(rejection) => last = Some(rejection),
        }
    }
    Err(last.map_or_else(|| IdentityError::Invalid("no temporary password fits the password rules".into()), Into::into))
}

fn launch_patient(token: &TokenRecord) -> Option<String> {
    let data: serde_json::Value = serde_json::from_str(token.data.as_deref()?).ok()?;
    data.get("patient")?.as_str().map(str::to_owned)
}

/// FHIR id syntax: 1-64 of `[A-Za-z0-9\-\.]`.
fn phivault_fhir_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_passwords_always_pass_the_rules_they_are_made_for() {
        let strict = PasswordPolicy { require_composition: true, ..PasswordPolicy::default() };
        for _ in 0..300 {
            let p = temporary_password(&strict, "admin").expect("a password");
            assert_eq!(p.chars().count(), 24);
            assert_eq!(strict.check(&p, "admin"), Ok(()), "{}", p.len());
        }
        let long = PasswordPolicy { min_length: 40, ..PasswordPolicy::default() };
        assert_eq!(temporary_password(&long, "admin").expect("long").chars().count(), 40);
        let short_max = PasswordPolicy { min_length: 12, max_length: 16, ..PasswordPolicy::default() };
        assert_eq!(temporary_password(&short_max, "admin").expect("short").chars().count(), 16);
        // Rules nothing can satisfy are an error, not a loop or a panic.
        let impossible = PasswordPolicy { min_length: 30, max_length: 20, ..PasswordPolicy::default() };
        assert!(temporary_password(&impossible, "admin").is_err());
    }
}
