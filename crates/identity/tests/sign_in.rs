//! Sign-in, MFA, lockout, sessions and administration against both storage engines, tried
//! the way an attacker (or a forgetful user) would.

use phivault_identity::totp::TotpSecret;
use phivault_identity::{
    BearerSecret, Identity, IdentityError, IdentityPolicy, IdentityStore, LoginStage, NewAccount, PasswordRejection,
    Role, SessionGrant,
};
use phivault_testkit::{ManualClock, engines, fresh_store, identity, test_ring};

const START_MS: i64 = 1_800_000_000_000;
const PASSWORD: &str = "quacking loudly at midnight";
const NEW_PASSWORD: &str = "despicable duck season 1951";
const MINUTE: i64 = 60_000;

struct Fixture {
    identity: Identity,
    clock: ManualClock,
    store: phivault_store::SqlStore,
    /// The key ring every "process" of a test shares, as they share the key file.
    ring: phivault_crypto::KeyRing,
    _db: phivault_testkit::TestDb,
}

async fn fixture(engine: &str, policy: IdentityPolicy) -> Fixture {
    let (store, db, _) = fresh_store(engine).await;
    let clock = ManualClock::at(START_MS);
    let ring = test_ring();
    let identity = identity(store.clone(), ring.clone(), policy, clock.clone());
    Fixture { identity, clock, store, ring, _db: db }
}

async fn add(identity: &Identity, username: &str, roles: Vec<Role>) -> String {
    let (summary, generated) = identity
        .create_user(NewAccount {
            username: username.into(),
            display_name: "Daffy Duck".into(),
            roles,
            patient_id: None,
            password: Some(PASSWORD.into()),
        })
        .await
        .expect("create user");
    assert!(generated.is_none());
    summary.id
}

fn now_s(clock: &ManualClock) -> i64 {
    phivault_ports::Clock::now_ms(clock) / 1000
}

/// Signs a new physician in through every first-login step; returns the complete session
/// and the TOTP secret.
async fn first_login(f: &Fixture, username: &str) -> (SessionGrant, TotpSecret) {
    let grant = f.identity.login(username, PASSWORD, "10.0.0.1").await.expect("login");
    assert_eq!(grant.stage, LoginStage::NeedsPasswordChange, "an assigned password must be changed first");
    let grant = f.identity.change_password(&grant.secret, PASSWORD, NEW_PASSWORD).await.expect("change");
    assert_eq!(grant.stage, LoginStage::NeedsEnrolment, "physicians must enrol MFA");
    let enrolment = f.identity.begin_enrolment(&grant.secret).await.expect("enrol");
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/phivault:"));
    let totp = TotpSecret::from_base32(&enrolment.secret_base32).expect("base32");
    let (grant, codes) =
        f.identity.confirm_enrolment(&grant.secret, &totp.code_at(now_s(&f.clock))).await.expect("confirm");
    assert_eq!(codes.len(), 10);
    assert_eq!(grant.stage, LoginStage::Complete);
    (grant, totp)
}

#[tokio::test]
async fn first_login_forces_password_change_and_mfa_then_sessions_work() {
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        add(&f.identity, "daffy", vec![Role::Physician]).await;
        let (grant, totp) = first_login(&f, "daffy").await;
        let principal = f.identity.authenticate(&grant.secret).await.expect("authenticated");
        assert_eq!(principal.roles, vec![Role::Physician]);
        assert!(principal.mfa);

        // Next login: password, then TOTP. A half-signed-in session reaches nothing.
        f.clock.advance_ms(MINUTE);
        let half = f.identity.login("DAFFY", NEW_PASSWORD, "10.0.0.1").await.expect("login");
        assert_eq!(half.stage, LoginStage::NeedsMfa);
        assert!(matches!(f.identity.authenticate(&half.secret).await, Err(IdentityError::Unauthenticated)));
        let code = totp.code_at(now_s(&f.clock));
        let full = f.identity.verify_mfa(&half.secret, &code, "10.0.0.1").await.expect("mfa");
        assert_eq!(full.stage, LoginStage::Complete);
        assert_ne!(full.secret, half.secret, "a new session id after each step");
        assert!(f.identity.authenticate(&half.secret).await.is_err(), "the pre-MFA token is gone");
        f.identity.authenticate(&full.secret).await.expect("complete session works");

        // The same code cannot be used again, even in a fresh login within its 30 seconds.
        let again = f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await.expect("login");
        assert!(matches!(f.identity.verify_mfa(&again.secret, &code, "10.0.0.1").await, Err(IdentityError::BadCode)));

        // Logout ends the session server-side.
        f.identity.logout(&full.secret).await.expect("logout");
        assert!(f.identity.authenticate(&full.secret).await.is_err());
    }
}

#[tokio::test]
async fn recovery_codes_work_once_each() {
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        add(&f.identity, "daffy", vec![Role::Nurse]).await;
        let grant = f.identity.login("daffy", PASSWORD, "10.0.0.1").await.expect("login");
        let grant = f.identity.change_password(&grant.secret, PASSWORD, NEW_PASSWORD).await.expect("change");
        let enrolment = f.identity.begin_enrolment(&grant.secret).await.expect("enrol");
        let totp = TotpSecret::from_base32(&enrolment.secret_base32).expect("base32");
        let (_, codes) =
            f.identity.confirm_enrolment(&grant.secret, &totp.code_at(now_s(&f.clock))).await.expect("confirm");
        let half = f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await.expect("login");
        let typed = codes[3].to_lowercase().replace('-', " ");
        f.identity.verify_mfa(&half.secret, &typed, "10.0.0.1").await.expect("recovery code accepted");
        let half = f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await.expect("login");
        assert!(matches!(
            f.identity.verify_mfa(&half.secret, &codes[3], "10.0.0.1").await,
            Err(IdentityError::BadCode)
        ));
        assert_eq!(f.store.remaining_recovery_codes(&half.user_id).await.expect("count"), 9);
    }
}

#[tokio::test]
async fn lockout_after_five_failures_and_no_user_enumeration() {
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        add(&f.identity, "daffy", vec![Role::Researcher]).await;
        for _ in 0..5 {
            let e = f.identity.login("daffy", "wrong password guess", "10.0.0.2").await.expect_err("wrong");
            assert!(matches!(e, IdentityError::BadCredentials));
        }
        // Locked: the right password gets exactly the answer an unknown user gets.
        let locked = f.identity.login("daffy", PASSWORD, "10.0.0.3").await.expect_err("locked");
        let unknown = f.identity.login("donald", PASSWORD, "10.0.0.3").await.expect_err("unknown");
        assert_eq!(locked.to_string(), unknown.to_string());
        assert!(matches!(locked, IdentityError::BadCredentials));
        // The lockout is in the database: a second server process sees it.
        let other = identity(f.store.clone(), f.ring.clone(), IdentityPolicy::default(), f.clock.clone());
        assert!(other.login("daffy", PASSWORD, "10.0.0.4").await.is_err());
        f.clock.advance_ms(15 * MINUTE);
        let grant = other.login("daffy", PASSWORD, "10.0.0.4").await.expect("lockout expired");
        assert_eq!(grant.stage, LoginStage::NeedsPasswordChange);
    }
}

#[tokio::test]
async fn unknown_users_cost_the_same_argon2_work_as_known_ones() {
    let f = fixture("sqlite", IdentityPolicy::default()).await;
    add(&f.identity, "daffy", vec![Role::Researcher]).await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..5 {
        let t = std::time::Instant::now();
        let _ = f.identity.login("daffy", "wrong password guess", &format!("10.1.0.{i}")).await;
        known.push(t.elapsed());
        f.identity.unlock("daffy").await.expect("unlock");
        let t = std::time::Instant::now();
        let _ = f.identity.login("no-such-user", "wrong password guess", &format!("10.2.0.{i}")).await;
        unknown.push(t.elapsed());
    }
    known.sort();
    unknown.sort();
    let ratio = unknown[2].as_secs_f64() / known[2].as_secs_f64();
    // A skipped hash would make unknown users ~50x faster; allow wide noise either way.
    assert!((0.33..3.0).contains(&ratio), "median unknown/known login time ratio {ratio:.2}");
}

#[tokio::test]
async fn guessing_from_one_address_is_throttled_across_accounts() {
    for engine in engines() {
        let policy = IdentityPolicy { max_failures_per_source: 3, ..IdentityPolicy::default() };
        let f = fixture(engine, policy).await;
        add(&f.identity, "daffy", vec![Role::Researcher]).await;
        for user in ["a-user", "b-user", "c-user"] {
            assert!(matches!(
                f.identity.login(user, "password guess 123", "203.0.113.9").await,
                Err(IdentityError::BadCredentials)
            ));
        }
        let e = f.identity.login("daffy", PASSWORD, "203.0.113.9").await.expect_err("throttled");
        assert!(matches!(e, IdentityError::Throttled { retry_after_s } if retry_after_s > 0), "{e:?}");
        f.identity.login("daffy", PASSWORD, "203.0.113.10").await.expect("another address is fine");
        f.clock.advance_ms(15 * MINUTE);
        f.identity.login("daffy", PASSWORD, "203.0.113.9").await.expect("next window");
    }
}

#[tokio::test]
async fn wrong_mfa_codes_count_towards_lockout() {
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        add(&f.identity, "daffy", vec![Role::Physician]).await;
        let (_, _totp) = first_login(&f, "daffy").await;
        let half = f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await.expect("login");
        for guess in 0..5 {
            let code = format!("{:06}", guess * 7919);
            assert!(f.identity.verify_mfa(&half.secret, &code, "10.0.0.1").await.is_err());
        }
        assert!(matches!(
            f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await,
            Err(IdentityError::BadCredentials)
        ));
    }
}

/// The attack of the review: a script that knows the password alternates it with wrong
/// codes. A correct password must not forgive the wrong codes before it.
#[tokio::test]
async fn a_known_password_alternated_with_wrong_codes_locks_the_account() {
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        add(&f.identity, "daffy", vec![Role::Physician]).await;
        let (_, totp) = first_login(&f, "daffy").await;
        let mut wrong_codes = 0;
        let mut locked_at = None;
        for round in 0..60 {
            let Ok(half) = f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await else {
                locked_at = Some(round);
                break;
            };
            assert_eq!(half.stage, LoginStage::NeedsMfa);
            let guess = format!("{:06}", (round * 104_729 + 17) % 1_000_000);
            if guess == totp.code_at(now_s(&f.clock)) {
                continue;
            }
            wrong_codes += 1;
            match f.identity.verify_mfa(&half.secret, &guess, "10.0.0.1").await {
                Err(IdentityError::BadCode) => {}
                Err(IdentityError::LockedOut) => assert_eq!(wrong_codes, 5, "the fifth wrong code locks"),
                other => panic!("unexpected answer to a wrong code: {other:?}"),
            }
        }
        assert_eq!(wrong_codes, 5, "five wrong codes in all, whatever passwords came between");
        assert!(locked_at.is_some(), "the correct password is refused while the lockout lasts");
        // Nothing gets through while it lasts, not even the right code on a fresh sign-in.
        assert!(matches!(
            f.identity.login("daffy", NEW_PASSWORD, "10.0.0.9").await,
            Err(IdentityError::BadCredentials)
        ));
        f.clock.advance_ms(16 * MINUTE);
        let half = f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await.expect("after the lockout");
        let full = f.identity.verify_mfa(&half.secret, &totp.code_at(now_s(&f.clock)), "10.0.0.1").await;
        assert_eq!(full.expect("right code").stage, LoginStage::Complete);
        // A finished sign-in forgives: four more wrong codes do not lock (the count restarted).
        for guess in ["000001", "000002", "000003", "000004"] {
            let half = f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await.expect("login");
            assert!(matches!(
                f.identity.verify_mfa(&half.secret, guess, "10.0.0.1").await,
                Err(IdentityError::BadCode)
            ));
        }
        f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await.expect("not locked after four");
    }
}

/// Several half-finished sign-ins opened at once do not multiply the guesses: the lockout
/// reached through one ends the others, and recovery codes count like TOTP codes.
#[tokio::test]
async fn parallel_half_sessions_share_one_lockout() {
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        add(&f.identity, "daffy", vec![Role::Physician]).await;
        let (_, totp) = first_login(&f, "daffy").await;
        let mut halves = Vec::new();
        for _ in 0..6 {
            halves.push(f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await.expect("login"));
        }
        for (i, half) in halves.iter().take(5).enumerate() {
            // Recovery-code shaped guesses, each on its own half session.
            let answer = f.identity.verify_mfa(&half.secret, &format!("abcd-efgh-{i:04}"), "10.0.0.1").await;
            assert!(matches!(answer, Err(IdentityError::BadCode | IdentityError::LockedOut)), "{answer:?}");
        }
        let last = f.identity.verify_mfa(&halves[5].secret, &totp.code_at(now_s(&f.clock)), "10.0.0.1").await;
        assert!(
            matches!(last, Err(IdentityError::Unauthenticated)),
            "the sixth session ended with the lockout: {last:?}"
        );
    }
}

/// Wrong codes count per address too, across accounts: one client cannot spread its
/// guesses over many accounts whose passwords it holds.
#[tokio::test]
async fn wrong_codes_count_per_address() {
    for engine in engines() {
        let policy = IdentityPolicy { max_failures_per_source: 3, ..IdentityPolicy::default() };
        let f = fixture(engine, policy).await;
        let mut secrets = Vec::new();
        for name in ["daffy", "donald", "scrooge"] {
            add(&f.identity, name, vec![Role::Physician]).await;
            secrets.push((name, first_login(&f, name).await.1));
        }
        for (name, _) in &secrets {
            let half = f.identity.login(name, NEW_PASSWORD, "198.51.100.7").await.expect("login");
            assert!(matches!(
                f.identity.verify_mfa(&half.secret, "999999", "198.51.100.7").await,
                Err(IdentityError::BadCode)
            ));
        }
        let (name, totp) = &secrets[0];
        // The password step is throttled for the address now; a half session opened before
        // is refused at the code step before the code is even looked at.
        let half = f.identity.login(name, NEW_PASSWORD, "198.51.100.8").await.expect("other address");
        f.clock.advance_ms(31_000); // the enrolment spent the current code
        let code = totp.code_at(now_s(&f.clock));
        assert!(matches!(
            f.identity.verify_mfa(&half.secret, &code, "198.51.100.7").await,
            Err(IdentityError::Throttled { .. })
        ));
        assert!(matches!(
            f.identity.login(name, NEW_PASSWORD, "198.51.100.7").await,
            Err(IdentityError::Throttled { .. })
        ));
        let full = f.identity.verify_mfa(&half.secret, &code, "198.51.100.8").await.expect("another address");
        assert_eq!(full.stage, LoginStage::Complete);
    }
}

#[tokio::test]
async fn deactivation_ends_every_session_on_every_process_at_once() {
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        add(&f.identity, "daffy", vec![Role::Physician]).await;
        let (grant, _) = first_login(&f, "daffy").await;
        let other_process = identity(f.store.clone(), f.ring.clone(), IdentityPolicy::default(), f.clock.clone());
        other_process.authenticate(&grant.secret).await.expect("valid on both processes");
        f.identity.deactivate("daffy").await.expect("deactivate");
        assert!(other_process.authenticate(&grant.secret).await.is_err());
        assert!(f.identity.authenticate(&grant.secret).await.is_err());
        assert!(matches!(
            f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await,
            Err(IdentityError::BadCredentials)
        ));
        assert!(f.identity.unlock("daffy").await.is_err(), "a deactivated account stays deactivated");
    }
}

#[tokio::test]
async fn automatic_logoff_after_idle_and_absolute_lifetime() {
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        add(&f.identity, "daffy", vec![Role::Physician]).await;
        let (grant, totp) = first_login(&f, "daffy").await;
        // Activity every 10 minutes keeps it alive...
        for _ in 0..3 {
            f.clock.advance_ms(10 * MINUTE);
            f.identity.authenticate(&grant.secret).await.expect("active session");
        }
        // ...15 idle minutes end it.
        f.clock.advance_ms(15 * MINUTE);
        assert!(f.identity.authenticate(&grant.secret).await.is_err());

        // However active, a session ends after 12 hours.
        let half = f.identity.login("daffy", NEW_PASSWORD, "10.0.0.1").await.expect("login");
        let full = f.identity.verify_mfa(&half.secret, &totp.code_at(now_s(&f.clock)), "10.0.0.1").await.expect("mfa");
        for _ in 0..(12 * 6) {
            f.clock.advance_ms(10 * MINUTE);
            if f.identity.authenticate(&full.secret).await.is_err() {
                break;
            }
        }
        assert!(f.identity.authenticate(&full.secret).await.is_err());
    }
}

#[tokio::test]
async fn password_rules_history_and_admin_reset() {
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        add(&f.identity, "daffy", vec![Role::Researcher]).await;
        let grant = f.identity.login("daffy", PASSWORD, "10.0.0.1").await.expect("login");
        let refuse = |r: Result<SessionGrant, IdentityError>| match r {
            Err(IdentityError::PasswordRejected(why)) => why,
            other => panic!("expected a rejection, got {other:?}"),
        };
        assert_eq!(
            refuse(f.identity.change_password(&grant.secret, PASSWORD, "iloveyou").await),
            PasswordRejection::TooShort(12)
        );
        assert_eq!(
            refuse(f.identity.change_password(&grant.secret, PASSWORD, "password1234").await),
            PasswordRejection::Common
        );
        assert_eq!(
            refuse(f.identity.change_password(&grant.secret, PASSWORD, "i am daffy and proud").await),
            PasswordRejection::ContainsUsername
        );
        assert_eq!(
            refuse(f.identity.change_password(&grant.secret, PASSWORD, PASSWORD).await),
            PasswordRejection::Reused(5)
        );
        assert!(matches!(
            f.identity.change_password(&grant.secret, "not the old one!", NEW_PASSWORD).await,
            Err(IdentityError::WrongCurrentPassword)
        ));
        let grant = f.identity.change_password(&grant.secret, PASSWORD, NEW_PASSWORD).await.expect("change");
        assert_eq!(grant.stage, LoginStage::Complete, "researchers need no MFA by default");
        let grant = f.identity.change_password(&grant.secret, NEW_PASSWORD, "third time lucky duck").await.expect("ok");
        assert_eq!(
            refuse(f.identity.change_password(&grant.secret, "third time lucky duck", PASSWORD).await),
            PasswordRejection::Reused(5),
            "a password from the history is refused"
        );

        let temporary = f.identity.reset_password("daffy").await.expect("reset");
        assert!(f.identity.authenticate(&grant.secret).await.is_err(), "a reset ends existing sessions");
        let grant = f.identity.login("daffy", &temporary, "10.0.0.1").await.expect("temporary password");
        assert_eq!(grant.stage, LoginStage::NeedsPasswordChange);
        assert!(f.identity.authenticate(&grant.secret).await.is_err(), "nothing until it is changed");
    }
}

#[tokio::test]
async fn raised_argon2_parameters_rehash_at_login() {
    let f = fixture("sqlite", IdentityPolicy::default()).await;
    let id = add(&f.identity, "daffy", vec![Role::Researcher]).await;
    let stronger = phivault_crypto::PasswordHasher::new(phivault_crypto::PasswordParams {
        memory_kib: 24 * 1024,
        iterations: 3,
        parallelism: 1,
    })
    .expect("params");
    let upgraded = Identity::new(
        std::sync::Arc::new(f.store.clone()),
        std::sync::Arc::new(phivault_ports::StaticKeySource(std::sync::Arc::new(f.ring.clone()))),
        stronger,
        IdentityPolicy::default(),
        std::sync::Arc::new(f.clock.clone()),
    )
    .expect("identity");
    upgraded.login("daffy", PASSWORD, "10.0.0.1").await.expect("old hash still verifies");
    let stored = f.store.user_by_id(&id).await.expect("read").expect("user");
    assert!(stored.password_hash.starts_with("$argon2id$v=19$m=24576,t=3,p=1$"), "{}", stored.password_hash);
}

#[tokio::test]
async fn admin_verbs_and_bad_input() {
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        let bootstrap = f.identity.create_bootstrap_admin().await.expect("bootstrap").expect("first admin");
        assert!(f.identity.create_bootstrap_admin().await.expect("again").is_none(), "only once");
        let grant = f.identity.login(&bootstrap.0, &bootstrap.1, "10.0.0.1").await.expect("login");
        assert_eq!(grant.stage, LoginStage::NeedsPasswordChange, "no usable default account");

        let dup = NewAccount {
            username: "admin".into(),
            display_name: "Another".into(),
            roles: vec![Role::Nurse],
            patient_id: None,
            password: None,
        };
        assert!(matches!(f.identity.create_user(dup.clone()).await, Err(IdentityError::Conflict(_))));
        for bad in [
            NewAccount { username: "x".into(), ..dup.clone() },
            NewAccount { username: "Robert'); DROP TABLE users;--".into(), ..dup.clone() },
            NewAccount { username: "porky".into(), roles: vec![], ..dup.clone() },
            NewAccount { username: "porky".into(), roles: vec![Role::Patient], ..dup.clone() },
            NewAccount { username: "porky".into(), patient_id: Some("p1".into()), ..dup.clone() },
            NewAccount {
                username: "porky".into(),
                roles: vec![Role::Patient, Role::Nurse],
                patient_id: Some("p1".into()),
                ..dup.clone()
            },
            NewAccount { username: "porky".into(), display_name: "   ".into(), ..dup.clone() },
        ] {
            assert!(matches!(f.identity.create_user(bad.clone()).await, Err(IdentityError::Invalid(_))), "{bad:?}");
        }
        let (patient, temporary) = f
            .identity
            .create_user(NewAccount {
                username: "porky".into(),
                display_name: "Porky Pig".into(),
                roles: vec![Role::Patient],
                patient_id: Some("example-patient-1".into()),
                password: None,
            })
            .await
            .expect("patient account");
        assert!(temporary.is_some());
        assert_eq!(patient.patient_id.as_deref(), Some("example-patient-1"));
        assert_eq!(f.identity.lock("porky").await.expect("lock").status, "locked");
        assert!(f.identity.login("porky", temporary.as_deref().unwrap_or_default(), "10.0.0.1").await.is_err());
        assert_eq!(f.identity.unlock("porky").await.expect("unlock").status, "active");
        assert!(matches!(f.identity.lock("nobody").await, Err(IdentityError::NoSuchUser)));
        let users = f.identity.list_users().await.expect("list");
        assert_eq!(users.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), ["admin", "porky"]);
        let json = serde_json::to_string(&users).expect("json");
        assert!(!json.contains("argon2"), "summaries carry no hashes");
    }
}

#[tokio::test]
async fn totp_secrets_and_tokens_are_not_stored_in_the_clear() {
    let f = fixture("sqlite", IdentityPolicy::default()).await;
    let id = add(&f.identity, "daffy", vec![Role::Physician]).await;
    let (grant, totp) = first_login(&f, "daffy").await;
    let stored = f.store.user_by_id(&id).await.expect("read").expect("user");
    let sealed = stored.totp_secret_sealed.expect("enrolled");
    assert!(!sealed.windows(totp.as_bytes().len()).any(|w| w == totp.as_bytes()));
    assert!(f.store.token(&grant.secret.digest()).await.expect("lookup").is_some());
    let presented = BearerSecret::from_presented(grant.secret.expose());
    let raw = grant.secret.expose().as_bytes().to_vec();
    assert!(
        f.store
            .token(&raw.iter().map(|b| b ^ 1).collect::<Vec<_>>().try_into().unwrap_or([0; 32]))
            .await
            .expect("lookup")
            .is_none()
    );
    assert_eq!(presented.digest(), grant.secret.digest());
}

#[tokio::test]
async fn client_registration_refuses_unsafe_settings() {
    use phivault_identity::ClientKind;
    let f = fixture("sqlite", IdentityPolicy::default()).await;
    let public = |uris: Vec<&str>, scopes: &'static str| {
        let identity = f.identity.clone();
        let uris: Vec<String> = uris.into_iter().map(str::to_owned).collect();
        async move { identity.register_client("App", ClientKind::Public, uris, scopes, None).await }
    };
    for (uris, scopes) in [
        (vec![], "user/*.rs"),
        (vec!["http://app.example/cb"], "user/*.rs"),
        (vec!["https://app.example/cb#frag"], "user/*.rs"),
        (vec!["javascript:alert(1)"], "user/*.rs"),
        (vec!["https://app.example/cb"], "system/*.rs"),
        (vec!["https://app.example/cb"], "nonsense"),
    ] {
        assert!(matches!(public(uris.clone(), scopes).await, Err(IdentityError::Invalid(_))), "{uris:?} {scopes}");
    }
    assert!(public(vec!["http://127.0.0.1:9/cb", "https://app.example/cb"], "user/*.rs").await.is_ok());
    let private = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "d": "secret"}]});
    let backend = |jwks: Option<serde_json::Value>, scopes: &'static str| {
        let identity = f.identity.clone();
        async move { identity.register_client("Job", ClientKind::Backend, vec![], scopes, jwks).await }
    };
    assert!(matches!(backend(Some(private), "system/*.rs").await, Err(IdentityError::Invalid(_))), "private key");
    assert!(matches!(backend(None, "system/*.rs").await, Err(IdentityError::Invalid(_))), "no keys");
    let public_key = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]});
    assert!(matches!(backend(Some(public_key.clone()), "user/*.rs").await, Err(IdentityError::Invalid(_))));
    assert!(backend(Some(public_key), "system/Patient.rs").await.is_ok());
}

/// The per-process principal cache (SQLite's revocation stamp) must never outlive a
/// revocation made by another process with its own connection pool, nor an idle timeout.
#[tokio::test]
async fn cached_sessions_end_at_once_when_another_process_revokes() {
    let (store, _db, url) = fresh_store("sqlite").await;
    let clock = ManualClock::at(START_MS);
    let ring = test_ring();
    let server = identity(store.clone(), ring.clone(), IdentityPolicy::default(), clock.clone());
    let cli_store = phivault_store::SqlStore::connect(&url).await.expect("second pool, as the CLI opens it");
    let cli = identity(cli_store.clone(), ring, IdentityPolicy::default(), clock.clone());
    assert!(store.revocation_stamp().is_some(), "SQLite files offer a stamp");

    for (name, revoke) in ["deactivate", "lock", "logout", "set-roles", "reset-mfa"].into_iter().enumerate() {
        let username = format!("daffy-{name}");
        let session = phivault_testkit::signed_in(&server, &format!("{username}-s"), vec![Role::Nurse], None).await;
        // Warm the cache: validated once from the database, then answered from memory.
        server.authenticate(&session).await.expect("valid");
        server.authenticate(&session).await.expect("valid, cached");
        let user = format!("{username}-s");
        match revoke {
            "deactivate" => drop(cli.deactivate(&user).await.expect("deactivate")),
            "lock" => drop(cli.lock(&user).await.expect("lock")),
            "logout" => cli.logout(&session).await.expect("logout"),
            "set-roles" => drop(cli.set_roles(&user, vec![Role::Physician]).await.expect("roles")),
            _ => drop(cli.reset_mfa(&user).await.expect("reset mfa")),
        }
        assert!(
            matches!(server.authenticate(&session).await, Err(IdentityError::Unauthenticated)),
            "{revoke}: the cached session must end at the next request"
        );
    }

    // A change made behind phivault's back (no stamp) is noticed within 15 seconds.
    let session = phivault_testkit::signed_in(&server, "daffy-sneaky", vec![Role::Nurse], None).await;
    server.authenticate(&session).await.expect("valid");
    sqlx::query("DELETE FROM auth_tokens")
        .execute(&sqlx::SqlitePool::connect(&url).await.expect("raw"))
        .await
        .expect("delete");
    clock.advance_ms(15_000);
    assert!(server.authenticate(&session).await.is_err(), "revalidated after 15 s");

    // Idle timeout holds for cached entries too.
    let session = phivault_testkit::signed_in(&server, "daffy-idle", vec![Role::Nurse], None).await;
    server.authenticate(&session).await.expect("valid");
    clock.advance_ms(15 * MINUTE);
    assert!(server.authenticate(&session).await.is_err(), "idle for 15 minutes");
}

/// A patient account's display name is the patient's name: the database holds it sealed.
#[tokio::test]
async fn display_names_are_stored_sealed() {
    for engine in engines() {
        let (store, _db, url) = fresh_store(engine).await;
        let f = identity(store.clone(), test_ring(), IdentityPolicy::default(), ManualClock::at(START_MS));
        let (summary, _) = f
            .create_user(NewAccount {
                username: "patient-7".into(),
                display_name: "Porky Pig".into(),
                roles: vec![Role::Patient],
                patient_id: Some("example-patient-7".into()),
                password: None,
            })
            .await
            .expect("create");
        f.lock("patient-7").await.expect("update path seals too");
        let raw: Vec<String> = match engine {
            "sqlite" => sqlx::query_scalar("SELECT display_name FROM users")
                .fetch_all(&sqlx::SqlitePool::connect(&url).await.expect("raw"))
                .await
                .expect("select"),
            _ => sqlx::query_scalar("SELECT display_name FROM users")
                .fetch_all(&sqlx::PgPool::connect(&url).await.expect("raw"))
                .await
                .expect("select"),
        };
        assert!(raw.iter().all(|d| d.starts_with("sealed:v1:") && !d.contains("Porky")), "{engine}: {raw:?}");
        assert_eq!(summary.display_name, "Porky Pig");
        assert_eq!(f.find_user("patient-7").await.expect("read").display_name, "Porky Pig");
        assert_eq!(f.list_users().await.expect("list")[0].display_name, "Porky Pig");
    }
}

/// Separation of duties at the service: a request expires unapproved; a handed-over
/// password stops working if it is not replaced in time; two approvers racing produce one
/// password, not two; the requester and the holder are refused whatever the engine.
#[tokio::test]
async fn credential_requests_expire_race_once_and_refuse_the_requester_and_holder() {
    use phivault_identity::CredentialChange;
    for engine in engines() {
        let f = fixture(engine, IdentityPolicy::default()).await;
        let admin = add(&f.identity, "root", vec![Role::Admin]).await;
        let officer = add(&f.identity, "privacy", vec![Role::PrivacyOfficer]).await;
        let other_officer = add(&f.identity, "privacy-two", vec![Role::PrivacyOfficer]).await;
        let (user, request) = f
            .identity
            .create_user_for_approval(
                NewAccount {
                    username: "dr-elmer".into(),
                    display_name: "Dr Elmer Fudd".into(),
                    roles: vec![Role::Physician],
                    patient_id: None,
                    password: None,
                },
                &admin,
            )
            .await
            .expect("create");
        assert!(matches!(
            f.identity.approve_credential_change(&request.id, &admin).await,
            Err(IdentityError::SeparationOfDuties(_))
        ));
        assert!(matches!(
            f.identity.approve_credential_change(&request.id, &user.id).await,
            Err(IdentityError::SeparationOfDuties(_))
        ));

        // Two approvers at once: exactly one password is issued.
        let (a, b) = tokio::join!(
            f.identity.approve_credential_change(&request.id, &officer),
            f.identity.approve_credential_change(&request.id, &other_officer)
        );
        let issued: Vec<String> =
            [a, b].into_iter().filter_map(|r| r.ok()).filter_map(|r| r.temporary_password).collect();
        assert_eq!(issued.len(), 1, "{engine}: one approval wins");
        let password = issued[0].clone();

        // Not replaced within 72 hours: refused like a wrong password.
        f.clock.advance_ms(72 * 60 * MINUTE + MINUTE);
        assert!(matches!(
            f.identity.login("dr-elmer", &password, "10.0.0.1").await,
            Err(IdentityError::BadCredentials)
        ));

        // A request left unapproved past its time cannot be approved.
        let reset = f
            .identity
            .request_credential_change("dr-elmer", CredentialChange::ResetPassword, &admin)
            .await
            .expect("request");
        f.clock.advance_ms(72 * 60 * MINUTE + MINUTE);
        match f.identity.approve_credential_change(&reset.id, &officer).await {
            Err(IdentityError::Invalid(m)) => assert!(m.contains("expired"), "{engine}: {m}"),
            other => panic!("{engine}: an expired request was approved: {other:?}"),
        }
        // A fresh request, approved in time, issues a working password.
        let again = f
            .identity
            .request_credential_change("dr-elmer", CredentialChange::ResetPassword, &admin)
            .await
            .expect("request again");
        let approved = f.identity.approve_credential_change(&again.id, &officer).await.expect("approve");
        let password = approved.temporary_password.expect("password");
        let grant = f.identity.login("dr-elmer", &password, "10.0.0.1").await.expect("fresh password works");
        assert_eq!(grant.stage, LoginStage::NeedsPasswordChange);
    }
}
