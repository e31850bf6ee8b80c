//! Authentication over HTTP, tried as an attacker would: no token, forged tokens, roles
//! that must not see records, another patient's id, cross-site forms, a deactivated user.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{BASE, TestApp, app, daffy, get, send, send_as_is, with_json};
use phivault_identity::totp::TotpSecret;
use phivault_identity::{NewAccount, Role};
use phivault_testkit::signed_in;

fn bearer(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri).header("authorization", format!("Bearer {token}")).body(Body::empty()).expect("request")
}

#[tokio::test]
async fn fhir_needs_a_valid_token_and_says_so() {
    let (app, _db) = app().await;
    let anonymous = send_as_is(&app.router, get("/fhir/Patient")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer realm=\"phivault\"");
    assert_eq!(anonymous.body["resourceType"], "OperationOutcome");
    assert_eq!(anonymous.body["issue"][0]["code"], "login");

    for forged in ["not-a-token", &format!("{}x", app.token), &app.token[..app.token.len() - 1], ""] {
        let r = send_as_is(&app.router, bearer("/fhir/Patient", forged)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{forged}");
    }
    let r = send_as_is(&app.router, bearer("/fhir/Patient", "forged-token-value")).await;
    assert!(r.headers["www-authenticate"].to_str().expect("ascii").contains("error=\"invalid_token\""));
    let basic = Request::get("/fhir/Patient").header("authorization", "Basic YWRtaW46YWRtaW4=").body(Body::empty());
    assert_eq!(send_as_is(&app.router, basic.expect("request")).await.status, StatusCode::UNAUTHORIZED);

    // The capability statement is public, as SMART clients need it before signing in.
    let metadata = send_as_is(&app.router, get("/fhir/metadata")).await;
    assert_eq!(metadata.status, StatusCode::OK);
    let security = &metadata.body["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    assert_eq!(security["extension"][0]["extension"][1]["valueUri"], format!("{BASE}/oauth/token"));
    assert_eq!(send(&app, get("/fhir/Patient")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn roles_without_clinical_duties_and_other_patients_are_refused() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let other = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let other_id = other.body["id"].as_str().expect("id").to_owned();

    for (name, role) in [("root", Role::Admin), ("scientist", Role::Researcher), ("privacy", Role::PrivacyOfficer)] {
        let token = signed_in(&app.identity, name, vec![role], None).await;
        let r = send_as_is(&app.router, bearer(&format!("/fhir/Patient/{id}"), token.expose())).await;
        // Refused reads look exactly like ids that do not exist: no existence oracle.
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{role}");
        assert_eq!(r.body["issue"][0]["code"], "not-found");
        let made_up = "0d1e2a6b-0000-4000-8000-000000000000";
        let absent = send_as_is(&app.router, bearer(&format!("/fhir/Patient/{made_up}"), token.expose())).await;
        assert_eq!(absent.status, r.status, "{role}");
        assert_eq!(absent.text.replace(made_up, &id), r.text, "{role}: word for word the same");
        assert!(!r.text.contains("Duck"), "no PHI in the refusal");
        let head = Request::head(format!("/fhir/Patient/{id}"))
            .header("authorization", format!("Bearer {}", token.expose()))
            .body(Body::empty())
            .expect("request");
        let probe = send_as_is(&app.router, head).await;
        assert_eq!(probe.status, StatusCode::NOT_FOUND, "HEAD is gated like GET");
        assert!(!probe.headers.contains_key("etag"));
    }
    let patient = signed_in(&app.identity, "daffy-himself", vec![Role::Patient], Some(&id)).await;
    let own = send_as_is(&app.router, bearer(&format!("/fhir/Patient/{id}"), patient.expose())).await;
    assert_eq!(own.status, StatusCode::OK);
    let theirs = send_as_is(&app.router, bearer(&format!("/fhir/Patient/{other_id}"), patient.expose())).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "another patient's id");
    let search = send_as_is(&app.router, bearer("/fhir/Patient?family=Duck", patient.expose())).await;
    assert_eq!(search.status, StatusCode::OK, "a search stays within the patient's own compartment");
    let found: Vec<&str> =
        search.body["entry"].as_array().expect("entries").iter().filter_map(|e| e["resource"]["id"].as_str()).collect();
    assert_eq!(found, [id.as_str()], "no other patient appears");
}

fn cookie_of(reply: &common::Reply) -> String {
    let set = reply.headers["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(set.starts_with("__Host-phivault-session="), "{set}");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    set.split(';').next().expect("pair").to_owned()
}

fn form(uri: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Request<Body> {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", v.bytes().map(|b| format!("%{b:02X}")).collect::<String>()))
        .collect();
    let mut builder =
        Request::post(uri).header("content-type", "application/x-www-form-urlencoded").header("origin", BASE);
    if let Some(c) = cookie {
        builder = builder.header("cookie", c);
    }
    builder.body(Body::from(body.join("&"))).expect("request")
}

fn with_cookie(uri: &str, cookie: &str) -> Request<Body> {
    Request::get(uri).header("cookie", cookie).body(Body::empty()).expect("request")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).map(|i| i + start.len()).expect("start marker");
    &text[from..from + text[from..].find(end).expect("end marker")]
}

async fn browser_first_login(app: &TestApp, username: &str, password: &str) -> String {
    let r = send_as_is(&app.router, form("/login", None, &[("username", username), ("password", password)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(r.headers["location"].to_str().expect("ascii").starts_with("/login/password"));
    let cookie = cookie_of(&r);
    let page = send_as_is(&app.router, with_cookie("/login/password", &cookie)).await;
    let csrf = between(&page.text, "name=\"csrf\" value=\"", "\"").to_owned();
    let new_password = "a brand new duck password";
    let r = send_as_is(
        &app.router,
        form(
            "/login/password",
            Some(&cookie),
            &[("current", password), ("new", new_password), ("repeat", new_password), ("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let cookie2 = cookie_of(&r);
    assert_ne!(cookie, cookie2, "a new session id after each step");
    let page = send_as_is(&app.router, with_cookie("/login/enrol", &cookie2)).await;
    assert!(page.text.contains("<svg"), "a QR code is shown");
    let key = between(&page.text, "type the key <code>", "</code>").to_owned();
    let csrf = between(&page.text, "name=\"csrf\" value=\"", "\"").to_owned();
    let totp = TotpSecret::from_base32(&key).expect("base32");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() as i64;
    let r =
        send_as_is(&app.router, form("/login/enrol", Some(&cookie2), &[("code", &totp.code_at(now)), ("csrf", &csrf)]))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.text.matches("<li>").count(), 10, "ten recovery codes");
    cookie_of(&r)
}

#[tokio::test]
async fn browser_sign_in_with_password_change_totp_enrolment_csrf_and_logout() {
    let (app, _db) = app().await;
    let password = "temporary duck password";
    app.identity
        .create_user(NewAccount {
            username: "nurse-porky".into(),
            display_name: "Nurse Porky Pig".into(),
            roles: vec![Role::Nurse],
            patient_id: None,
            password: Some(password.into()),
        })
        .await
        .expect("user");
    // A wrong password: the same answer as for an unknown user.
    let wrong =
        send_as_is(&app.router, form("/login", None, &[("username", "nurse-porky"), ("password", "nope nope nope")]))
            .await;
    let unknown =
        send_as_is(&app.router, form("/login", None, &[("username", "nobody-here"), ("password", "nope nope nope")]))
            .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text, unknown.text);
    // A login form posted from another site is refused (login CSRF).
    let mut cross = form("/login", None, &[("username", "nurse-porky"), ("password", password)]);
    cross.headers_mut().insert("origin", "https://evil.example".parse().expect("header"));
    assert_eq!(send_as_is(&app.router, cross).await.status, StatusCode::FORBIDDEN);

    let cookie = browser_first_login(&app, "nurse-porky", password).await;
    let account = send_as_is(&app.router, with_cookie("/account", &cookie)).await;
    assert!(account.text.contains("Nurse Porky Pig"), "{}", account.text);
    assert_eq!(send_as_is(&app.router, with_cookie("/fhir/Patient", &cookie)).await.status, StatusCode::OK);

    // Writes through the cookie need the CSRF token.
    let mut post = with_json("POST", "/fhir/Patient", &daffy(), &[("cookie", &cookie)]);
    let refused = send_as_is(&app.router, post).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let csrf = between(&account.text, "name=\"csrf\" value=\"", "\"").to_owned();
    post = with_json("POST", "/fhir/Patient", &daffy(), &[("cookie", &cookie), ("x-csrf-token", &csrf)]);
    assert_eq!(send_as_is(&app.router, post).await.status, StatusCode::CREATED);

    // Logout without the CSRF token is refused; with it, the session ends server-side.
    assert_eq!(
        send_as_is(&app.router, form("/logout", Some(&cookie), &[("csrf", "guess")])).await.status,
        StatusCode::FORBIDDEN
    );
    let out = send_as_is(&app.router, form("/logout", Some(&cookie), &[("csrf", &csrf)])).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.headers["set-cookie"].to_str().expect("ascii").contains("Max-Age=0"));
    assert_eq!(send_as_is(&app.router, with_cookie("/fhir/Patient", &cookie)).await.status, StatusCode::UNAUTHORIZED);

    // The first-login password change and the second-factor enrolment are events of the trail.
    let porky = app.identity.find_user("nurse-porky").await.expect("account");
    let entries = phivault_audit::AuditStore::audit_entries(&app.store, 0, 1000).await.expect("trail");
    let actions: Vec<String> = entries
        .iter()
        .filter_map(|e| phivault_audit::AuditEvent::from_canonical(&e.bytes))
        .filter(|e| e.user_id.as_deref() == Some(porky.id.as_str()) && e.outcome == phivault_audit::Outcome::Success)
        .map(|e| e.action)
        .collect();
    for action in ["login.password", "account.password", "account.mfa_enrol", "logout"] {
        assert!(actions.iter().any(|a| a == action), "{action} missing from {actions:?}");
    }
}

/// The browser path of the guessing attack: the password is known, the codes are guessed,
/// and every correct password in between forgives nothing.
#[tokio::test]
async fn browser_code_guessing_after_a_known_password_is_locked_out() {
    let (app, _db) = app().await;
    let password = "temporary duck password";
    app.identity
        .create_user(NewAccount {
            username: "nurse-porky".into(),
            display_name: "Nurse Porky Pig".into(),
            roles: vec![Role::Nurse],
            patient_id: None,
            password: Some(password.into()),
        })
        .await
        .expect("user");
    browser_first_login(&app, "nurse-porky", password).await;
    let known = [("username", "nurse-porky"), ("password", "a brand new duck password")];
    let mut paused = None;
    for round in 0..20 {
        let r = send_as_is(&app.router, form("/login", None, &known)).await;
        if r.status != StatusCode::SEE_OTHER {
            paused = Some((round, r));
            break;
        }
        assert!(r.headers["location"].to_str().expect("ascii").starts_with("/login/mfa"));
        let cookie = cookie_of(&r);
        let page = send_as_is(&app.router, with_cookie("/login/mfa", &cookie)).await;
        let csrf = between(&page.text, "name=\"csrf\" value=\"", "\"").to_owned();
        let guess = format!("{:06}", 100_003 * (round + 1) % 1_000_000);
        let r = send_as_is(&app.router, form("/login/mfa", Some(&cookie), &[("code", &guess), ("csrf", &csrf)])).await;
        if round < 4 {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "round {round}: {}", r.text);
        } else {
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the fifth wrong code pauses sign-in");
            assert!(r.text.contains("try again later"), "{}", r.text);
        }
    }
    let (round, r) = paused.expect("the known password stops working");
    assert_eq!(round, 5);
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The same page as for an account that does not exist: the lockout reveals nothing.
    let unknown =
        send_as_is(&app.router, form("/login", None, &[("username", "nobody-here"), ("password", "x")])).await;
    assert_eq!(r.text, unknown.text);
    assert!(r.text.contains("try again later"));
    let porky = app.identity.find_user("nurse-porky").await.expect("account");
    let entries = phivault_audit::AuditStore::audit_entries(&app.store, 0, 1000).await.expect("trail");
    let reasons: Vec<String> = entries
        .iter()
        .filter_map(|e| phivault_audit::AuditEvent::from_canonical(&e.bytes))
        .filter(|e| e.user_id.as_deref() == Some(porky.id.as_str()) && e.action == "login.mfa")
        .filter_map(|e| e.reason)
        .collect();
    assert_eq!(reasons, ["bad_code", "bad_code", "bad_code", "bad_code", "locked_out"]);
}

#[tokio::test]
async fn admin_api_manages_accounts_and_deactivation_is_immediate() {
    let (app, _db) = app().await;
    let admin = signed_in(&app.identity, "root", vec![Role::Admin], None).await;
    let as_admin = |method: &str, uri: &str, body: Option<serde_json::Value>| {
        let builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", admin.expose()))
            .header("content-type", "application/json");
        builder.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).expect("request")
    };
    let created = send_as_is(
        &app.router,
        as_admin(
            "POST",
            "/admin/users",
            Some(serde_json::json!({"username": "dr-elmer", "display_name": "Dr Elmer Fudd", "roles": ["physician"]})),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    // Separation of duties: the administrator gets a request for a second person, no password.
    assert!(created.body["temporary_password"].is_null(), "{}", created.text);
    assert_eq!(created.body["credential_request"]["change"], "activate");
    assert!(!created.text.contains("argon2"));

    let bad = send_as_is(
        &app.router,
        as_admin(
            "POST",
            "/admin/users",
            Some(serde_json::json!({"username": "x2", "display_name": "X", "roles": ["superuser"]})),
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["resourceType"], "OperationOutcome");
    let garbage = send_as_is(&app.router, as_admin("POST", "/admin/users", Some(serde_json::json!({"nope": 1})))).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);

    // A physician cannot use the admin API.
    let physician = send_as_is(&app.router, bearer("/admin/users", &app.token)).await;
    assert_eq!(physician.status, StatusCode::FORBIDDEN);

    // Deactivating the physician whose token the app uses: the next request fails.
    assert_eq!(send(&app, get("/fhir/Patient")).await.status, StatusCode::OK);
    let off = send_as_is(&app.router, as_admin("POST", "/admin/users/dr-daffy/deactivate", None)).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_eq!(off.body["status"], "deactivated");
    assert_eq!(send(&app, get("/fhir/Patient")).await.status, StatusCode::UNAUTHORIZED);
    let listed = send_as_is(&app.router, as_admin("GET", "/admin/users", None)).await;
    assert_eq!(listed.body["users"].as_array().map(Vec::len), Some(3));
    let missing = send_as_is(&app.router, as_admin("POST", "/admin/users/nobody/lock", None)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Termination procedures need sessions that can be listed and ended: an administrator
/// sees a nurse's live sign-ins (ids and times, no tokens), ends one, and the nurse's token
/// stops working at once; a grant of another account cannot be ended through hers; every
/// step is in the trail.
#[tokio::test]
async fn an_administrator_lists_and_ends_an_accounts_sessions() {
    let (app, _db) = app().await;
    let admin = signed_in(&app.identity, "root", vec![Role::Admin], None).await;
    let nurse = signed_in(&app.identity, "nurse-porky", vec![Role::Nurse], None).await;
    let other = signed_in(&app.identity, "nurse-petunia", vec![Role::Nurse], None).await;
    let as_admin = |method: &str, uri: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", admin.expose()))
            .body(Body::empty())
            .expect("request")
    };
    let listed = send_as_is(&app.router, as_admin("GET", "/admin/users/nurse-porky/sessions")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let sessions = listed.body["sessions"].as_array().expect("sessions").clone();
    assert_eq!(sessions.len(), 1, "{}", listed.text);
    assert_eq!(sessions[0]["kind"], "sign-in");
    assert!(!listed.text.contains(nurse.expose()), "no token is ever listed");
    let grant = sessions[0]["grant"].as_str().expect("grant").to_owned();

    let others = send_as_is(&app.router, as_admin("GET", "/admin/users/nurse-petunia/sessions")).await;
    let other_grant = others.body["sessions"][0]["grant"].as_str().expect("grant").to_owned();
    let wrong =
        send_as_is(&app.router, as_admin("POST", &format!("/admin/users/nurse-porky/sessions/{other_grant}/end")))
            .await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND, "another account's grant is not hers to end");
    // Client text in the grant's place (an SSN) never reaches the trail as typed.
    let typed =
        send_as_is(&app.router, as_admin("POST", "/admin/users/nurse-porky/sessions/999-11-2233%20x/end")).await;
    assert_eq!(typed.status, StatusCode::NOT_FOUND);
    let as_other = Request::get("/fhir/Patient").header("authorization", format!("Bearer {}", other.expose()));
    assert_eq!(send_as_is(&app.router, as_other.body(Body::empty()).expect("request")).await.status, StatusCode::OK);

    let as_nurse = || {
        Request::get("/fhir/Patient")
            .header("authorization", format!("Bearer {}", nurse.expose()))
            .body(Body::empty())
            .expect("request")
    };
    assert_eq!(send_as_is(&app.router, as_nurse()).await.status, StatusCode::OK);
    let ended =
        send_as_is(&app.router, as_admin("POST", &format!("/admin/users/nurse-porky/sessions/{grant}/end"))).await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.text);
    assert_eq!(send_as_is(&app.router, as_nurse()).await.status, StatusCode::UNAUTHORIZED, "ended at once");
    let after = send_as_is(&app.router, as_admin("GET", "/admin/users/nurse-porky/sessions")).await;
    assert_eq!(after.body["sessions"].as_array().map(Vec::len), Some(0));
    let all = send_as_is(&app.router, as_admin("POST", "/admin/users/nurse-petunia/sessions/end-all")).await;
    assert_eq!(all.body["ended"], 1, "{}", all.text);

    let entries = phivault_audit::AuditStore::audit_entries(&app.store, 0, 1000).await.expect("trail");
    let events: Vec<phivault_audit::AuditEvent> =
        entries.iter().filter_map(|e| phivault_audit::AuditEvent::from_canonical(&e.bytes)).collect();
    let end = events
        .iter()
        .find(|e| e.action == "admin.user.end_session" && e.outcome == phivault_audit::Outcome::Success)
        .expect("the ending is recorded");
    assert_eq!(end.target.as_deref(), Some(format!("user:nurse-porky grant:{grant}").as_str()));
    assert!(events.iter().any(|e| e.action == "admin.user.sessions"));
    assert!(events.iter().any(|e| e.action == "admin.user.end_all_sessions"));
    let raw: Vec<u8> = entries.iter().flat_map(|e| e.bytes.clone()).collect();
    assert!(!String::from_utf8_lossy(&raw).contains("999-11-2233"), "typed text in the trail");
}
