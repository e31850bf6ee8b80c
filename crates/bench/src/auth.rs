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
    async fn append_audit(&self, _: &[(i64, Vec<u8>)], _: bool) -> Result<u64, phivault_service::StoreError> {
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

/// Seconds `phivault_audit::verify` takes over `n` entries held in memory (the database
/// read is not included), with a checkpoint every 10,000 entries.
pub fn audit_verify_seconds(n: u64) -> f64 {
    use phivault_audit::merkle::{Accumulator, CHAIN_START, chain_hash, leaf_hash};
    let (signer, _) = phivault_audit::CheckpointSigner::generate().expect("key");
    let mut entries = Vec::with_capacity(n as usize);
    let mut checkpoints = Vec::new();
    let mut tree = Accumulator::default();
    let mut chain = CHAIN_START;
    for i in 0..n {
        let mut e = phivault_audit::AuditEvent::new(
            1_800_000_000_000 + i as i64,
            "read",
            phivault_audit::Outcome::Success,
            "bench/1",
        );
        e.user_id = Some("user-AbCdEfGhIjKlMnOp".into());
        e.roles = vec!["physician".into()];
        e.resource_type = Some("Observation".into());
        e.resource_ids = vec![format!("Observation/{:032x}", i)];
        e.patient_ids = vec![format!("{:032x}", i / 50)];
        e.source_ip = Some("10.1.2.3".into());
        e.request_id = Some(format!("{:032x}", i));
        let bytes = e.canonical_bytes();
        let leaf = leaf_hash(&bytes);
        chain = chain_hash(&chain, &leaf);
        tree.push(leaf);
        entries.push(phivault_audit::StoredEntry { seq: i, bytes, leaf, chain });
        if (i + 1) % 10_000 == 0 {
            checkpoints.push(signer.sign(i + 1, &tree.root(), &chain, 0));
        }
    }
    let started = Instant::now();
    let report = phivault_audit::verify(entries, &checkpoints, &signer.public_key());
    let secs = started.elapsed().as_secs_f64();
    assert!(report.is_intact() && report.entries == n);
    secs
}
