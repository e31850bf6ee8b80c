//! Account display names can be PHI: a patient account's display name is the patient's
//! name. This decorator seals them on the way into the storage port and opens them on the
//! way out, so every path that writes or reads an account (now and later) goes through it
//! and the database holds only ciphertext. Rows written before sealing (no prefix) are read
//! as they are and sealed at their next update.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use phivault_ports::{KeySource, StoreError};

use crate::{ClientRecord, CredentialRequest, IdentityStore, RequestState, Spent, TokenKind, TokenRecord, UserRecord};

const PREFIX: &str = "sealed:v1:";

#[derive(Debug)]
pub(crate) struct SealingStore {
    pub(crate) inner: Arc<dyn IdentityStore>,
    pub(crate) keys: Arc<dyn KeySource>,
}

fn purpose(user_id: &str) -> String {
    format!("user-display-name/v1/{user_id}")
}

impl SealingStore {
    fn seal(&self, user: &UserRecord) -> Result<UserRecord, StoreError> {
        let sealed = self
            .keys
            .ring()
            .seal_token(&purpose(&user.id), user.display_name.as_bytes())
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(UserRecord { display_name: format!("{PREFIX}{}", B64.encode(sealed)), ..user.clone() })
    }

    fn open(&self, mut user: UserRecord) -> Result<UserRecord, StoreError> {
        if let Some(text) = user.display_name.strip_prefix(PREFIX) {
            let sealed = B64.decode(text).map_err(|_| StoreError::Corrupt("user row: sealed display name"))?;
            let plain = self
                .keys
                .ring()
                .open_token(&purpose(&user.id), &sealed)
                .map_err(|_| StoreError::Corrupt("user row: display name does not open"))?;
            user.display_name =
                String::from_utf8(plain).map_err(|_| StoreError::Corrupt("user row: display name encoding"))?;
        }
        Ok(user)
    }

    fn open_opt(&self, user: Option<UserRecord>) -> Result<Option<UserRecord>, StoreError> {
        user.map(|u| self.open(u)).transpose()
    }
}

#[async_trait]
impl IdentityStore for SealingStore {
    fn revocation_stamp(&self) -> Option<Vec<u8>> {
        self.inner.revocation_stamp()
    }
    async fn count_users(&self) -> Result<u64, StoreError> {
        self.inner.count_users().await
    }
    async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.inner.insert_user(&self.seal(user)?).await
    }
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.open_opt(self.inner.user_by_id(id).await?)
    }
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.open_opt(self.inner.user_by_username(username).await?)
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.inner.list_users().await?.into_iter().map(|u| self.open(u)).collect()
    }
    async fn update_user(&self, user: &UserRecord, revoke_tokens: bool) -> Result<(), StoreError> {
        self.inner.update_user(&self.seal(user)?, revoke_tokens).await
    }
    async fn note_login_failure(
        &self,
        user_id: &str,
        now_ms: i64,
        max: i64,
        lockout_ms: i64,
    ) -> Result<(), StoreError> {
        self.inner.note_login_failure(user_id, now_ms, max, lockout_ms).await
    }
    async fn clear_login_failures(&self, user_id: &str, login_ms: Option<i64>) -> Result<(), StoreError> {
        self.inner.clear_login_failures(user_id, login_ms).await
    }
    async fn note_source_failure(&self, source: &str, now_ms: i64, window_ms: i64) -> Result<i64, StoreError> {
        self.inner.note_source_failure(source, now_ms, window_ms).await
    }
    async fn source_failures(&self, source: &str, now_ms: i64, window_ms: i64) -> Result<i64, StoreError> {
        self.inner.source_failures(source, now_ms, window_ms).await
    }
    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        self.inner.accept_totp_step(user_id, step).await
    }
    async fn set_recovery_codes(&self, user_id: &str, digests: &[[u8; 32]]) -> Result<(), StoreError> {
        self.inner.set_recovery_codes(user_id, digests).await
    }
    async fn use_recovery_code(&self, user_id: &str, digest: &[u8; 32]) -> Result<bool, StoreError> {
        self.inner.use_recovery_code(user_id, digest).await
    }
    async fn remaining_recovery_codes(&self, user_id: &str) -> Result<u64, StoreError> {
        self.inner.remaining_recovery_codes(user_id).await
    }
    async fn password_history(&self, user_id: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.inner.password_history(user_id, limit).await
    }
    async fn add_password_history(&self, user_id: &str, hash: &str, now_ms: i64) -> Result<(), StoreError> {
        self.inner.add_password_history(user_id, hash, now_ms).await
    }
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.inner.insert_token(token).await
    }
    async fn record_login(&self, user_id: &str, login_ms: i64, session: &TokenRecord) -> Result<(), StoreError> {
        self.inner.record_login(user_id, login_ms, session).await
    }
    async fn token(&self, digest: &[u8; 32]) -> Result<Option<(TokenRecord, Option<UserRecord>)>, StoreError> {
        match self.inner.token(digest).await? {
            Some((token, user)) => Ok(Some((token, self.open_opt(user)?))),
            None => Ok(None),
        }
    }
    async fn touch_token(&self, digest: &[u8; 32], now_ms: i64) -> Result<(), StoreError> {
        self.inner.touch_token(digest, now_ms).await
    }
    async fn spend_token(&self, digest: &[u8; 32], kind: TokenKind) -> Result<Spent, StoreError> {
        self.inner.spend_token(digest, kind).await
    }
    async fn delete_token(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.inner.delete_token(digest).await
    }
    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.inner.revoke_grant(grant_id).await
    }
    async fn delete_user_tokens(&self, user_id: &str) -> Result<(), StoreError> {
        self.inner.delete_user_tokens(user_id).await
    }
    async fn user_tokens(&self, user_id: &str) -> Result<Vec<TokenRecord>, StoreError> {
        self.inner.user_tokens(user_id).await
    }
    async fn purge_expired_tokens(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.inner.purge_expired_tokens(before_ms).await
    }
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.inner.insert_client(client).await
    }
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.inner.client(id).await
    }
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.inner.list_clients().await
    }
    async fn set_client_active(&self, id: &str, active: bool) -> Result<bool, StoreError> {
        self.inner.set_client_active(id, active).await
    }
    async fn signing_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.inner.signing_key().await
    }
    async fn insert_signing_key(&self, kid: &str, sealed: &[u8], now_ms: i64) -> Result<(), StoreError> {
        self.inner.insert_signing_key(kid, sealed, now_ms).await
    }
    async fn note_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.inner.note_assertion_jti(client_id, jti, expires_ms, now_ms).await
    }

    async fn insert_credential_request(&self, request: &CredentialRequest) -> Result<(), StoreError> {
        self.inner.insert_credential_request(request).await
    }

    async fn credential_request(&self, id: &str) -> Result<Option<CredentialRequest>, StoreError> {
        self.inner.credential_request(id).await
    }

    async fn credential_requests(
        &self,
        user_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CredentialRequest>, StoreError> {
        self.inner.credential_requests(user_id, limit).await
    }

    async fn decide_credential_request(
        &self,
        id: &str,
        state: RequestState,
        by: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.inner.decide_credential_request(id, state, by, at_ms).await
    }
}
