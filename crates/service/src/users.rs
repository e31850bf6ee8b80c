//! Accounts. For now only the bootstrap administrator that `init` creates; the identity
//! work adds login, MFA, lockout and administration.
//!
//! Safeguard: 45 CFR 164.312(a)(2)(i) unique user identification (no shared or default
//! accounts: the bootstrap password is random, shown once, and must be changed).

use phivault_crypto::{PasswordHasher, random_token};

use crate::{Clock, NewUser, RecordError, RecordStore};

/// The first administrator's credentials, to print once.
#[derive(Debug)]
pub struct BootstrapAdmin {
    pub username: String,
    /// Random, 24 characters; only its Argon2id hash is stored.
    pub password: String,
}

/// Creates the first administrator if the database has no account yet.
pub async fn create_bootstrap_admin(
    store: &dyn RecordStore,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
) -> Result<Option<BootstrapAdmin>, RecordError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let password = random_token(18).map_err(RecordError::Keys)?;
    let user = NewUser {
        id: format!("user-{}", random_token(12).map_err(RecordError::Keys)?),
        username: "admin".into(),
        display_name: "Bootstrap administrator".into(),
        roles: vec!["admin".into()],
        password_hash: hasher.hash(&password).map_err(RecordError::Keys)?,
        must_change_password: true,
        created_ms: clock.now_ms(),
    };
    store.insert_user(&user).await?;
    Ok(Some(BootstrapAdmin { username: user.username, password }))
}
