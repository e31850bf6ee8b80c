//! Emergency read-only mode (45 CFR 164.308(a)(7)(ii)(C)): while it is on, reads go on and
//! every record write is refused with an OperationOutcome, on every node at once; responses
//! say so in a header and pages in a banner; only the privacy officer (with a second factor,
//! in their own session) switches it, and every switch and attempt is in the trail.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Reply, TestApp, app, daffy, get, send, send_as_is, with_json};
use phivault_audit::{AuditEvent, AuditStore, Outcome};
use phivault_identity::Role;
use phivault_service::{EmergencyMode, RecordStore};
use phivault_testkit::signed_in;
use serde_json::json;

async fn switch(app: &TestApp, token: &str, body: serde_json::Value) -> Reply {
    let request = Request::post("/emergency-mode")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    send_as_is(&app.router, request).await
}

async fn trail(app: &TestApp) -> Vec<AuditEvent> {
    let entries = app.store.audit_entries(0, 10_000).await.expect("entries");
    entries.iter().map(|e| AuditEvent::from_canonical(&e.bytes).expect("canonical")).collect()
}

fn observation(patient: &str) -> serde_json::Value {
    json!({"resourceType": "Observation", "status": "final", "code": {"text": "Body weight (fake)"},
        "subject": {"reference": format!("Patient/{patient}")}, "valueQuantity": {"value": 61, "unit": "kg"}})
}

#[tokio::test]
async fn reads_go_on_writes_are_refused_and_only_the_privacy_officer_switches() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let patient = created.body["id"].as_str().expect("id").to_owned();
    let officer = signed_in(&app.identity, "privacy-porky", vec![Role::PrivacyOfficer], None).await;
    let admin = signed_in(&app.identity, "root", vec![Role::Admin], None).await;

    // Neither an administrator nor the physician may switch it; both attempts are recorded.
    for token in [admin.expose(), app.token.as_str()] {
        let refused = switch(&app, token, json!({"readOnly": true, "reason": "drill"})).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    }
    assert_eq!(
        trail(&app).await.iter().filter(|e| e.action == "emergency_mode.enter" && e.outcome == Outcome::Denied).count(),
        2
    );
    let no_reason = switch(&app, officer.expose(), json!({"readOnly": true})).await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST, "a reason is required to switch it on");
    // Free text could carry a patient's name into the trail and the database: refused.
    let free_text =
        switch(&app, officer.expose(), json!({"readOnly": true, "reason": "Daffy Duck's chart is corrupt"})).await;
    assert_eq!(free_text.status, StatusCode::BAD_REQUEST, "{}", free_text.text);
    assert!(!free_text.text.contains("Daffy"), "{}", free_text.text);
    assert!(trail(&app).await.iter().all(|e| !e.reason.as_deref().unwrap_or_default().contains("Daffy")));

    let on = switch(&app, officer.expose(), json!({"readOnly": true, "reason": "restore"})).await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);

    // Reads go on, marked.
    let read = send(&app, get(&format!("/fhir/Patient/{patient}"))).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.headers.get("x-phivault-mode").and_then(|v| v.to_str().ok()), Some("emergency-read-only"));
    let search = send(&app, get("/fhir/Patient?family=Duck")).await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.text);

    // Every kind of write is refused, with an OperationOutcome, and nothing is stored.
    let before = send(&app, get("/fhir/Observation?_summary=count")).await.body["total"].clone();
    let create = send(&app, with_json("POST", "/fhir/Observation", &observation(&patient), &[])).await;
    assert_eq!(create.status, StatusCode::SERVICE_UNAVAILABLE, "{}", create.text);
    assert_eq!(create.body["resourceType"], "OperationOutcome");
    assert_eq!(create.body["issue"][0]["code"], "transient");
    assert!(create.text.contains("emergency read-only mode"), "{}", create.text);
    assert!(!create.text.contains("\"restore\""), "the officer's reason is not shown to callers");
    let mut changed = daffy();
    changed["id"] = json!(patient);
    changed["gender"] = json!("other");
    let update = send(&app, with_json("PUT", &format!("/fhir/Patient/{patient}"), &changed, &[])).await;
    assert_eq!(update.status, StatusCode::SERVICE_UNAVAILABLE, "{}", update.text);
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation(&patient), "request": {"method": "POST", "url": "Observation"}}]});
    let bundle = send(&app, with_json("POST", "/fhir", &transaction, &[])).await;
    assert!(bundle.status == StatusCode::SERVICE_UNAVAILABLE, "{} {}", bundle.status, bundle.text);
    let after = send(&app, get("/fhir/Observation?_summary=count")).await.body["total"].clone();
    assert_eq!(before, after, "nothing was written");
    let unchanged = send(&app, get(&format!("/fhir/Patient/{patient}"))).await;
    assert_eq!(unchanged.body["meta"]["versionId"], "1");

    // Signed-in pages carry a banner; nobody signed out is told (neither the sign-in page
    // nor an unauthenticated API call).
    let signed_in = Request::get("/account")
        .header("cookie", format!("__Host-phivault-session={}", officer.expose()))
        .body(Body::empty())
        .expect("request");
    let page = send_as_is(&app.router, signed_in).await;
    assert!(page.text.contains("Emergency read-only mode"), "{}", page.text);
    assert_eq!(page.headers.get("x-phivault-mode").and_then(|v| v.to_str().ok()), Some("emergency-read-only"));
    let login = send_as_is(&app.router, get("/login")).await;
    assert!(!login.text.contains("Emergency read-only mode") && login.headers.get("x-phivault-mode").is_none());
    let anonymous = send_as_is(&app.router, get("/fhir/Patient")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers.get("x-phivault-mode").is_none(), "no state for whoever is not signed in");

    // Off again: writes work, the marks are gone; both switches are in the trail with the reason.
    let off = switch(&app, officer.expose(), json!({"readOnly": false})).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    let create = send(&app, with_json("POST", "/fhir/Observation", &observation(&patient), &[])).await;
    assert_eq!(create.status, StatusCode::CREATED, "{}", create.text);
    assert!(create.headers.get("x-phivault-mode").is_none());
    let entries = trail(&app).await;
    let entered =
        entries.iter().find(|e| e.action == "emergency_mode.enter" && e.outcome == Outcome::Success).expect("enter");
    assert_eq!(entered.reason.as_deref(), Some("restore"));
    assert!(entered.policies.iter().any(|p| p == "privacy-officer-switches-emergency-mode"), "{:?}", entered.policies);
    assert!(entries.iter().any(|e| e.action == "emergency_mode.leave" && e.outcome == Outcome::Success));
}

#[tokio::test]
async fn a_switch_made_on_another_node_holds_for_the_next_write_at_once() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let patient = created.body["id"].as_str().expect("id").to_owned();
    // Another server process on the same database.
    let other_node = phivault_store::SqlStore::connect(&app.url).await.expect("second node");
    let mode = EmergencyMode { since_ms: 1, set_by: "os:operator".into(), reason: "degraded_database".into() };
    other_node.set_emergency_mode(Some(mode)).await.expect("switch");
    // No cache stands between the switch and this node's next commit.
    let create = send(&app, with_json("POST", "/fhir/Observation", &observation(&patient), &[])).await;
    assert_eq!(create.status, StatusCode::SERVICE_UNAVAILABLE, "{}", create.text);
    other_node.set_emergency_mode(None).await.expect("switch off");
    let create = send(&app, with_json("POST", "/fhir/Observation", &observation(&patient), &[])).await;
    assert_eq!(create.status, StatusCode::CREATED, "{}", create.text);
    other_node.close().await;
}
