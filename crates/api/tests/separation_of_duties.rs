//! No single administrator can become someone else (45 CFR 164.308(a)(3)(ii)(A)-(B)): the
//! review's attack was `POST /admin/users` for a patient (the temporary password came back
//! to the administrator), or `reset-password` + `reset-mfa` on a physician, then signing in
//! as them. Now every credential change waits for a second person, who alone sees the
//! password; requester, approver and account holder must be three accounts.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Reply, TestApp, app, send_as_is};
use phivault_audit::{AuditEvent, AuditStore};
use phivault_identity::{LoginStage, Role};
use phivault_testkit::signed_in;

async fn call(app: &TestApp, token: &str, method: &str, uri: &str, body: Option<serde_json::Value>) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    send_as_is(&app.router, request).await
}

async fn trail(app: &TestApp) -> Vec<AuditEvent> {
    let entries = app.store.audit_entries(0, 10_000).await.expect("entries");
    entries.iter().map(|e| AuditEvent::from_canonical(&e.bytes).expect("canonical")).collect()
}

#[tokio::test]
async fn an_administrator_never_sees_a_new_accounts_password_and_a_second_person_hands_it_over() {
    let (app, _db) = app().await;
    let admin = signed_in(&app.identity, "root", vec![Role::Admin], None).await;
    let officer = signed_in(&app.identity, "privacy-porky", vec![Role::PrivacyOfficer], None).await;
    let admin_id = app.identity.find_user("root").await.expect("admin").id;
    let officer_id = app.identity.find_user("privacy-porky").await.expect("officer").id;

    let created = call(
        &app,
        admin.expose(),
        "POST",
        "/admin/users",
        Some(serde_json::json!({"username": "daffy", "display_name": "Daffy Duck", "roles": ["patient"],
            "patient_id": "p-daffy"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(
        !created.text.contains("temporary_password"),
        "no credential in the administrator's answer: {}",
        created.text
    );
    let request = created.body["credential_request"].clone();
    assert_eq!(request["change"], "activate");
    assert_eq!(request["state"], "pending");
    let request_id = request["id"].as_str().expect("request id").to_owned();
    let user_id = created.body["user"]["id"].as_str().expect("user id").to_owned();

    // The administrator cannot approve (the policies name the second person) ...
    let own = call(&app, admin.expose(), "POST", &format!("/admin/approvals/{request_id}/approve"), None).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.text);
    assert!(!own.text.contains("temporary_password"));
    // ... nor read the queue, nor guess their way in before approval.
    let queue = call(&app, admin.expose(), "GET", "/admin/approvals", None).await;
    assert_eq!(queue.status, StatusCode::FORBIDDEN);
    for guess in ["", "daffy", "a long enough test password", &request_id] {
        assert!(app.identity.login("daffy", guess, "203.0.113.9").await.is_err(), "{guess:?}");
    }

    // The privacy officer sees the request and approves it: the password is shown to them.
    let queue = call(&app, officer.expose(), "GET", "/admin/approvals", None).await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.text);
    assert_eq!(queue.body["credential_requests"][0]["id"], request_id.as_str());
    assert_eq!(queue.body["credential_requests"][0]["requested_by"], admin_id.as_str());
    let approved = call(&app, officer.expose(), "POST", &format!("/admin/approvals/{request_id}/approve"), None).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    let password = approved.body["temporary_password"].as_str().expect("password for the hand-over").to_owned();
    assert!(password.len() >= 20);
    assert!(approved.body["hand_over"].as_str().is_some_and(|h| h.contains("daffy") && h.contains("in person")));
    assert_eq!(approved.body["credential_request"]["state"], "approved");
    assert_eq!(approved.body["credential_request"]["decided_by"], officer_id.as_str());

    // It works once, for the holder, who must replace it first.
    let grant = app.identity.login("daffy", &password, "203.0.113.9").await.expect("hand-over password works");
    assert_eq!(grant.stage, LoginStage::NeedsPasswordChange);
    // A decided request cannot be approved again (no second password from the same request).
    let again = call(&app, officer.expose(), "POST", &format!("/admin/approvals/{request_id}/approve"), None).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text);
    assert!(again.body["temporary_password"].is_null());

    // Every step is in the trail, naming the account and the request, and who did it.
    let events = trail(&app).await;
    let find = |action: &str| events.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("{action}"));
    let made = find("admin.user.create");
    assert_eq!(made.user_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(made.target.as_deref(), Some(format!("user:{user_id} request:{request_id}").as_str()));
    let yes = events
        .iter()
        .find(|e| e.action == "admin.approval.approve" && e.user_id.as_deref() == Some(officer_id.as_str()))
        .expect("approval recorded");
    assert_eq!(yes.target.as_deref(), Some(format!("user:{user_id} request:{request_id}").as_str()));
    assert!(
        events.iter().any(|e| e.action == "admin.approval.approve"
            && e.user_id.as_deref() == Some(admin_id.as_str())
            && e.outcome == phivault_audit::Outcome::Denied),
        "the administrator's attempt is recorded as refused"
    );
    let everything: String = events.iter().map(|e| format!("{e:?}")).collect();
    assert!(!everything.contains(&password), "the password is never in the trail");
}

#[tokio::test]
async fn resetting_a_physician_changes_nothing_until_a_second_person_approves_and_never_the_requester() {
    let (app, _db) = app().await;
    let admin = signed_in(&app.identity, "root", vec![Role::Admin], None).await;
    // One person holding both roles is still only one person.
    let both = signed_in(&app.identity, "root-and-privacy", vec![Role::Admin, Role::PrivacyOfficer], None).await;
    let officer = signed_in(&app.identity, "privacy-porky", vec![Role::PrivacyOfficer], None).await;
    // The physician the test app signed in (dr-daffy, password "a long enough test password").
    let physician = app.token.clone();

    let reset = call(&app, both.expose(), "POST", "/admin/users/dr-daffy/reset-password", None).await;
    assert_eq!(reset.status, StatusCode::ACCEPTED, "{}", reset.text);
    assert!(reset.body["temporary_password"].is_null(), "{}", reset.text);
    let password_request = reset.body["credential_request"]["id"].as_str().expect("id").to_owned();
    let mfa = call(&app, admin.expose(), "POST", "/admin/users/dr-daffy/reset-mfa", None).await;
    assert_eq!(mfa.status, StatusCode::ACCEPTED, "{}", mfa.text);
    let mfa_request = mfa.body["credential_request"]["id"].as_str().expect("id").to_owned();
    let twice = call(&app, admin.expose(), "POST", "/admin/users/dr-daffy/reset-mfa", None).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "one waiting request per change");

    // Nothing changed yet: the physician's session and password still work, MFA is enrolled
    // as before, and no new password exists anywhere.
    let fhir = Request::get("/fhir/Patient").header("authorization", format!("Bearer {physician}"));
    assert_eq!(send_as_is(&app.router, fhir.body(Body::empty()).expect("request")).await.status, StatusCode::OK);
    app.identity.login("dr-daffy", "a long enough test password", "203.0.113.9").await.expect("old password");

    // The requester cannot approve their own request, though their roles would allow it.
    let own = call(&app, both.expose(), "POST", &format!("/admin/approvals/{password_request}/approve"), None).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.text);
    assert!(own.body["issue"][0]["diagnostics"].as_str().is_some_and(|d| d.contains("asked for it")), "{}", own.text);
    assert!(own.body["temporary_password"].is_null());

    // The second person refuses one and approves the other.
    let no = call(&app, officer.expose(), "POST", &format!("/admin/approvals/{password_request}/refuse"), None).await;
    assert_eq!(no.status, StatusCode::OK, "{}", no.text);
    assert_eq!(no.body["credential_request"]["state"], "refused");
    let late = call(&app, both.expose(), "POST", &format!("/admin/approvals/{password_request}/approve"), None).await;
    assert_eq!(late.status, StatusCode::FORBIDDEN, "still the requester");
    let late =
        call(&app, officer.expose(), "POST", &format!("/admin/approvals/{password_request}/approve"), None).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "a refused request stays refused: {}", late.text);
    app.identity.login("dr-daffy", "a long enough test password", "203.0.113.9").await.expect("password unchanged");

    let yes = call(&app, officer.expose(), "POST", &format!("/admin/approvals/{mfa_request}/approve"), None).await;
    assert_eq!(yes.status, StatusCode::OK, "{}", yes.text);
    assert!(yes.body["temporary_password"].is_null(), "an MFA reset issues no password");
    let after = call(&app, admin.expose(), "GET", "/admin/users/dr-daffy", None).await;
    assert_eq!(after.body["mfa_enrolled"], false);
    let fhir = Request::get("/fhir/Patient").header("authorization", format!("Bearer {physician}"));
    let ended = send_as_is(&app.router, fhir.body(Body::empty()).expect("request")).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "the reset ended the physician's sessions");

    let listed = call(&app, admin.expose(), "GET", "/admin/users/dr-daffy/credential-requests", None).await;
    let states: Vec<&str> = listed.body["credential_requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| r["state"].as_str())
        .collect();
    assert_eq!(states.len(), 2, "{}", listed.text);
    assert!(states.contains(&"refused") && states.contains(&"approved"), "{states:?}");
}

#[tokio::test]
async fn the_account_holder_cannot_approve_a_change_to_their_own_account() {
    let (app, _db) = app().await;
    let admin = signed_in(&app.identity, "root", vec![Role::Admin], None).await;
    let officer = signed_in(&app.identity, "privacy-porky", vec![Role::PrivacyOfficer], None).await;
    let reset = call(&app, admin.expose(), "POST", "/admin/users/privacy-porky/reset-password", None).await;
    assert_eq!(reset.status, StatusCode::ACCEPTED, "{}", reset.text);
    let id = reset.body["credential_request"]["id"].as_str().expect("id").to_owned();
    let own = call(&app, officer.expose(), "POST", &format!("/admin/approvals/{id}/approve"), None).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.text);
    assert!(own.body["temporary_password"].is_null());
    let bogus = call(&app, officer.expose(), "POST", "/admin/approvals/req-made-up/approve", None).await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);
}
