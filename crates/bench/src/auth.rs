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

/// (logins per second on one core, bare Argon2id hashes per second on one core), measured
/// alternately in the same run.
pub async fn login_rate(identity: &Identity) -> (f64, f64) {
    let hasher =
        phivault_crypto::PasswordHasher::new(phivault_crypto::PasswordParams::default()).expect("argon2 params");
    let phc = hasher.hash("a long enough test password").expect("hash");
    let rounds = 20;
    let mut login = 0.0;
    let mut bare = 0.0;
    for i in 0..rounds {
        let started = Instant::now();
        let grant = identity
            .login("bench-login", "a long enough test password", &format!("192.0.2.{}", i % 200))
            .await
            .expect("login");
        login += started.elapsed().as_secs_f64();
        identity.logout(&grant.secret).await.expect("logout");
        let started = Instant::now();
        assert!(hasher.verify("a long enough test password", &phc));
        bare += started.elapsed().as_secs_f64();
    }
    (f64::from(rounds) / login, f64::from(rounds) / bare)
}
