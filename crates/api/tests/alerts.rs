//! Log-in monitoring and activity review through the HTTP side: sign-in attempts on a
//! deactivated account and runs of wrong passwords reach the trail with what the rules
//! need (the client is told nothing more), a clinician opening a record that shares their
//! family name is flagged through the blind index, and the privacy officer alone works
//! the alert queue, once per alert, with every step audited.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{BASE, Reply, TestApp, app_with, get, send_as_is, with_json};
use phivault_audit::alerts::{AlertMonitor, AlertStore};
use phivault_audit::detect::{AlertKind, DetectionRules, Watchlist};
use phivault_audit::{AuditEvent, AuditStore, Outcome};
use phivault_identity::{NewAccount, Role};
use serde_json::json;

async fn as_user(app: &TestApp, token: &str, request: Request<Body>) -> Reply {
    let mut request = request;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    send_as_is(&app.router, request).await
}

fn login(username: &str, password: &str) -> Request<Body> {
    let enc = |v: &str| v.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", BASE)
        .body(Body::from(format!("username={}&password={}", enc(username), enc(password))))
        .expect("request")
}

async fn trail(app: &TestApp) -> Vec<AuditEvent> {
    let entries = app.store.audit_entries(0, 10_000).await.expect("entries");
    entries.iter().map(|e| AuditEvent::from_canonical(&e.bytes).expect("canonical")).collect()
}

#[tokio::test]
async fn suspicious_activity_raises_alerts_that_only_the_privacy_officer_reviews() {
    let policies = phivault_testkit::policies_with(phivault_testkit::CLINICIANS_SEE_ALL);
    let (app, _db) = app_with(1 << 20, policies, phivault_policy::Zones::default()).await;
    let password = "correct horse battery staple 42";
    for username in ["nurse-porky", "nurse-sylvester"] {
        app.identity
            .create_user(NewAccount {
                username: username.into(),
                display_name: format!("Test nurse {username}"),
                roles: vec![Role::Nurse],
                patient_id: None,
                password: Some(password.into()),
            })
            .await
            .expect("user");
    }
    let porky = app.identity.deactivate("nurse-porky").await.expect("deactivate");

    // The right password on a deactivated account gets the answer a wrong one gets.
    let gone = send_as_is(&app.router, login("nurse-porky", password)).await;
    let wrong = send_as_is(&app.router, login("nurse-sylvester", "not the password")).await;
    assert_eq!((gone.status, gone.text.clone()), (wrong.status, wrong.text.clone()));
    for _ in 0..4 {
        send_as_is(&app.router, login("nurse-sylvester", "still not it")).await;
    }
    let events = trail(&app).await;
    let refusal = events.iter().find(|e| e.user_id.as_deref() == Some(porky.id.as_str())).expect("entry");
    assert_eq!(refusal.reason.as_deref(), Some("deactivated_account"));

    // dr-daffy ("Test user dr-daffy") reads a record whose family name is Daffy.
    let relative = json!({"resourceType": "Patient", "name": [{"family": "Daffy", "given": ["Junior"]}]});
    let relative_id = app.records.create("Patient", relative, None).await.expect("patient").resource.id;
    let stranger = json!({"resourceType": "Patient", "name": [{"family": "Pig", "given": ["Petunia"]}]});
    let stranger_id = app.records.create("Patient", stranger, None).await.expect("patient").resource.id;
    for id in [&relative_id, &stranger_id] {
        let read = as_user(&app, &app.token, get(&format!("/fhir/Patient/{id}"))).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    }

    let physician = app.identity.find_user("dr-daffy").await.expect("physician");
    let watch = Watchlist {
        related: app
            .records
            .patients_sharing_family_name(&[(physician.id.clone(), physician.display_name.clone())])
            .await
            .expect("blind index lookup"),
        ..Watchlist::default()
    };
    assert_eq!(watch.related[&physician.id], [relative_id.clone()].into(), "the relative, not the stranger");
    // Working hours off: this test must not depend on the time of day it runs.
    let rules = DetectionRules { working_hours: None, ..DetectionRules::default() };
    let mut monitor = AlertMonitor::new(rules);
    let raised = monitor.run_once(&app.store, &app.store, &watch, 0).await.expect("rules");
    let mut kinds: Vec<AlertKind> = raised.iter().map(|a| a.kind).collect();
    kinds.sort();
    assert_eq!(kinds, [AlertKind::FailedLogins, AlertKind::DeactivatedAccount, AlertKind::OwnOrRelativeRecord]);
    let relative_alert = raised.iter().find(|a| a.kind == AlertKind::OwnOrRelativeRecord).expect("alert");
    assert_eq!(relative_alert.patient_ids, std::slice::from_ref(&relative_id));
    for alert in &raised {
        let (_, body) = alert.notice();
        assert!(!body.contains("Daffy") && !body.contains("Junior") && !body.contains("nurse-"), "ids only: {body}");
    }

    // The queue: the privacy officer lists and reviews; nobody else sees it.
    let officer = phivault_testkit::signed_in(&app.identity, "po-granny", vec![Role::PrivacyOfficer], None).await;
    let officer = officer.expose();
    let listed = as_user(&app, officer, get("/audit/alerts")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["alerts"].as_array().map(Vec::len), Some(3));
    assert_eq!(as_user(&app, &app.token, get("/audit/alerts")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(as_user(&app, officer, get("/audit/alerts?status=maybe")).await.status, StatusCode::BAD_REQUEST);

    let id = relative_alert.id.clone();
    let review =
        |finding: &str| with_json("POST", &format!("/audit/alerts/{id}/review"), &json!({ "finding": finding }), &[]);
    assert_eq!(as_user(&app, &app.token, review("benign")).await.status, StatusCode::FORBIDDEN, "the subject");
    assert_eq!(as_user(&app, officer, review("fine")).await.status, StatusCode::BAD_REQUEST);
    let done = as_user(&app, officer, review("violation")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(as_user(&app, officer, review("benign")).await.status, StatusCode::CONFLICT, "a finding is final");
    let unknown = with_json("POST", "/audit/alerts/alert-none/review", &json!({"finding": "benign"}), &[]);
    assert_eq!(as_user(&app, officer, unknown).await.status, StatusCode::NOT_FOUND);
    let violations = as_user(&app, officer, get("/audit/alerts?status=violation")).await;
    assert_eq!(violations.body["alerts"][0]["id"], id.as_str());
    assert_eq!(app.store.alerts(None, 10).await.expect("alerts").len(), 3);

    let events = trail(&app).await;
    let reviews: Vec<(Outcome, Option<&str>)> = events
        .iter()
        .filter(|e| e.action.starts_with("alert.review."))
        .map(|e| (e.outcome, e.reason.as_deref()))
        .collect();
    assert_eq!(
        reviews,
        [
            (Outcome::Denied, None),
            (Outcome::Success, None),
            (Outcome::Failure, Some("409")),
            (Outcome::Failure, Some("404"))
        ]
    );
    assert!(events.iter().any(|e| e.action == "alert.list" && e.outcome == Outcome::Denied));
}
