//! Costs of authentication: validating a session token on every request, and a login
//! against a bare Argon2id hash.

use std::time::Instant;

use phivault_identity::{BearerSecret, Identity};
use phivault_store::SqlStore;

/// (µs per `authenticate`, µs per bare `SELECT 1` through the same pool) — the second is
/// the floor any database-backed check pays, measured in the same run.
pub async fn session_validation(identity: &Identity, store: &SqlStore, token: &BearerSecret) -> (f64, f64) {
    let n = 5000;
    for _ in 0..200 {
        identity.authenticate(token).await.expect("valid");
    }
    let started = Instant::now();
    for _ in 0..n {
        identity.authenticate(token).await.expect("valid");
    }
    let validate = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let started = Instant::now();
    for _ in 0..n {
        phivault_store::RecordStore::ping(store).await.expect("select 1");
    }
    let bare = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    (validate, bare)
}

/// Logins against bare Argon2id verifies, measured alternately in the same run:
/// (logins/s wall, verifies/s wall, logins per CPU-second, verifies per CPU-second). The
/// CPU figures count this process only (for PostgreSQL, not the server's share).
pub async fn login_rate(identity: &Identity) -> (f64, f64, f64, f64) {
    use crate::https::cpu_seconds;
    let hasher =
        phivault_crypto::PasswordHasher::new(phivault_crypto::PasswordParams::default()).expect("argon2 params");
    let phc = hasher.hash("a long enough test password").expect("hash");
    let rounds = 40;
    let (mut login_wall, mut login_cpu, mut bare_wall, mut bare_cpu) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..rounds {
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let grant = identity
            .login("bench-login", "a long enough test password", &format!("192.0.2.{}", i % 200))
            .await
            .expect("login");
        login_wall += started.elapsed().as_secs_f64();
        login_cpu += cpu_seconds() - cpu;
        identity.logout(&grant.secret).await.expect("logout");
        let (started, cpu) = (Instant::now(), cpu_seconds());
        assert!(hasher.verify("a long enough test password", &phc));
        bare_wall += started.elapsed().as_secs_f64();
        bare_cpu += cpu_seconds() - cpu;
    }
    let n = f64::from(rounds);
    (n / login_wall, n / bare_wall, n / login_cpu.max(1e-9), n / bare_cpu.max(1e-9))
}

/// An audit store that keeps nothing: "auditing switched off", for comparison only.
#[derive(Debug)]
pub struct DiscardAudit;

#[async_trait::async_trait]
impl phivault_audit::AuditStore for DiscardAudit {
    async fn append_audit(&self, _: &[(i64, Vec<u8>)]) -> Result<u64, phivault_service::StoreError> {
        Ok(0)
    }
    async fn audit_entries(
        &self,
        _: u64,
        _: u64,
    ) -> Result<Vec<phivault_audit::StoredEntry>, phivault_service::StoreError> {
        Ok(Vec::new())
    }
    async fn audit_head(&self) -> Result<(u64, [u8; 32]), phivault_service::StoreError> {
        Ok((0, [0; 32]))
    }
    async fn insert_checkpoint(&self, _: &phivault_audit::Checkpoint) -> Result<(), phivault_service::StoreError> {
        Ok(())
    }
    async fn checkpoints(&self) -> Result<Vec<phivault_audit::Checkpoint>, phivault_service::StoreError> {
        Ok(Vec::new())
    }
}
