//! Test support: fresh databases on both engines, key rings, record services.
//!
//! PostgreSQL tests run only when `PHIVAULT_TEST_POSTGRES_URL` is set (CI sets it); each
//! test gets its own freshly created database, dropped when the guard goes out of scope.

use std::collections::BTreeMap;
use std::sync::Arc;

use phivault_crypto::{KeyRing, SecretKey};
use phivault_service::{Records, StaticKeySource, SystemClock};
use phivault_store::SqlStore;

/// A database that lives as long as this value.
#[derive(Debug)]
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop on a separate runtime: Drop cannot await, and we may be inside one.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async {
                    use sqlx::Connection;
                    sqlx::any::install_default_drivers();
                    if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                    }
                });
            })
            .join();
        }
    }
}

/// The engines to run a conformance test on: SQLite always, PostgreSQL when configured.
pub fn engines() -> Vec<&'static str> {
    let mut out = vec!["sqlite"];
    if postgres_url().is_some() {
        out.push("postgres");
    }
    out
}

/// `PHIVAULT_TEST_POSTGRES_URL`, if set and non-empty.
pub fn postgres_url() -> Option<String> {
    std::env::var("PHIVAULT_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())
}

/// A fresh, migrated store on `engine` ("sqlite" or "postgres").
pub async fn fresh_store(engine: &str) -> (SqlStore, TestDb, String) {
    match engine {
        "postgres" => {
            let admin_url = postgres_url().expect("PHIVAULT_TEST_POSTGRES_URL must be set for postgres tests");
            let name = format!(
                "phivault_test_{}",
                phivault_crypto::random_token(9).expect("rng").to_lowercase().replace(['-', '_'], "x")
            );
            {
                use sqlx::Connection;
                sqlx::any::install_default_drivers();
                let mut conn =
                    sqlx::AnyConnection::connect(&admin_url).await.expect("connect to PHIVAULT_TEST_POSTGRES_URL");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
            }
            let url = replace_database(&admin_url, &name);
            let store = SqlStore::connect(&url).await.expect("connect to test database");
            (store, TestDb::Postgres { admin_url, name }, url)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("phivault.db").display());
            let store = SqlStore::connect(&url).await.expect("open sqlite");
            (store, TestDb::Sqlite(dir), url)
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A key ring with one random KEK and a random index key.
pub fn test_ring() -> KeyRing {
    KeyRing::new(
        BTreeMap::from([("kek-test".to_owned(), SecretKey::generate().expect("rng"))]),
        "kek-test".into(),
        SecretKey::generate().expect("rng"),
    )
    .expect("ring")
}

/// A record service over `store` with a fresh test key ring.
pub fn records(store: SqlStore) -> Records {
    records_with_ring(store, test_ring())
}

/// A record service over `store` with `ring`.
pub fn records_with_ring(store: SqlStore, ring: KeyRing) -> Records {
    Records::new(Arc::new(store), Arc::new(StaticKeySource(Arc::new(ring))), Arc::new(SystemClock))
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_replaced_in_url() {
        assert_eq!(
            super::replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::replace_database("postgres://127.0.0.1/test?sslmode=disable", "x"),
            "postgres://127.0.0.1/x?sslmode=disable"
        );
        assert_eq!(super::replace_database("postgres://127.0.0.1", "x"), "postgres://127.0.0.1/x");
    }
}

/// A clock tests move by hand (lockout periods, idle timeouts, TOTP steps).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<std::sync::atomic::AtomicI64>);

impl ManualClock {
    pub fn at(ms: i64) -> Self {
        Self(Arc::new(std::sync::atomic::AtomicI64::new(ms)))
    }

    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl phivault_service::Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The identity service over `store` with `policy`, the default Argon2 parameters, the
/// test key ring and `clock`.
pub fn identity(
    store: SqlStore,
    ring: KeyRing,
    policy: phivault_identity::IdentityPolicy,
    clock: ManualClock,
) -> phivault_identity::Identity {
    let hasher =
        phivault_crypto::PasswordHasher::new(phivault_crypto::PasswordParams::default()).expect("argon2 params");
    phivault_identity::Identity::new(
        Arc::new(store),
        Arc::new(StaticKeySource(Arc::new(ring))),
        hasher,
        policy,
        Arc::new(clock),
    )
    .expect("identity service")
}

/// A fully signed-in session (as after password and TOTP) for a new user with `roles`,
/// written straight to the store: for tests and benchmarks of what lies behind sign-in.
pub async fn signed_in(
    identity: &phivault_identity::Identity,
    username: &str,
    roles: Vec<phivault_identity::Role>,
    patient_id: Option<&str>,
) -> phivault_identity::BearerSecret {
    use phivault_identity::NewAccount;
    let (user, _) = identity
        .create_user(NewAccount {
            username: username.into(),
            display_name: format!("Test user {username}"),
            roles,
            patient_id: patient_id.map(str::to_owned),
            password: Some("a long enough test password".into()),
        })
        .await
        .expect("create user");
    session_for(identity, &user.id, &format!("grant-{username}")).await
}

/// A new fully signed-in session (as after password and TOTP) for an existing account.
pub async fn session_for(
    identity: &phivault_identity::Identity,
    user_id: &str,
    grant_id: &str,
) -> phivault_identity::BearerSecret {
    use phivault_identity::{BearerSecret, LoginStage, TokenKind, TokenRecord};
    let secret = BearerSecret::generate().expect("rng");
    let now = identity.now_ms();
    identity
        .store()
        .insert_token(&TokenRecord {
            digest: secret.digest(),
            kind: TokenKind::Session,
            grant_id: grant_id.to_owned(),
            user_id: Some(user_id.to_owned()),
            client_id: None,
            scopes: String::new(),
            stage: LoginStage::Complete,
            mfa: true,
            authenticated_ms: now,
            created_ms: now,
            last_seen_ms: now,
            idle_ms: 15 * 60_000,
            expires_ms: now + 12 * 3_600_000,
            data: None,
            consumed: false,
        })
        .await
        .expect("session");
    secret
}

/// The identity service on the system clock (for HTTP tests and benchmarks).
pub fn system_identity(store: SqlStore, ring: KeyRing) -> phivault_identity::Identity {
    let hasher =
        phivault_crypto::PasswordHasher::new(phivault_crypto::PasswordParams::default()).expect("argon2 params");
    phivault_identity::Identity::new(
        Arc::new(store),
        Arc::new(StaticKeySource(Arc::new(ring))),
        hasher,
        phivault_identity::IdentityPolicy::default(),
        Arc::new(SystemClock),
    )
    .expect("identity service")
}

/// A test policy for FHIR-mechanics tests: physicians and nurses read and write every
/// record (sensitive-category and separation-of-duty forbids still apply). Authorization
/// tests use the defaults alone.
pub const CLINICIANS_SEE_ALL: &str = r#"
@id("test-clinicians-read-and-write-everything")
permit (
  principal is PhiVault::User,
  action in [PhiVault::Action::"read", PhiVault::Action::"search", PhiVault::Action::"history",
             PhiVault::Action::"create", PhiVault::Action::"update"],
  resource is PhiVault::Record
) when { principal in PhiVault::Role::"physician" || principal in PhiVault::Role::"nurse" };
"#;

/// The default policies plus `extra` Cedar text.
pub fn policies_with(extra: &str) -> phivault_policy::Policies {
    let mut sources = phivault_policy::defaults::policy_sources();
    sources.push(phivault_policy::PolicySource { name: "test.cedar".into(), text: extra.into() });
    phivault_policy::Policies::from_sources(&sources, phivault_policy::defaults::VIEWS).expect("test policies validate")
}

/// Records behind `policies`, with relationships stored in `store` and the writes' audit
/// entries in its trail. Call within a Tokio runtime (it starts the trail's writer).
pub fn guarded(
    records: Records,
    store: SqlStore,
    policies: phivault_policy::Policies,
) -> phivault_service::access::GuardedRecords {
    let audit = phivault_audit::AuditLog::start(Arc::new(store.clone()), "test-node");
    phivault_service::access::GuardedRecords::new(
        records,
        Arc::new(phivault_service::access::LivePolicies::new(policies)),
        Arc::new(store),
        audit,
    )
}

/// A connection pool straight to a test database, bypassing phivault: for tests that act
/// with the database owner's rights (tampering, counting rows).
pub async fn raw_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.expect("raw pool")
}
