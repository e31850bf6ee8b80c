//! The privacy officer's review page, as a browser uses it and as an attacker would try it:
//! it lists open alerts and pending break-glass grants (the clinician's note escaped, never
//! markup), records findings only from this site with the session's CSRF token, refuses
//! other roles and anonymous visitors, and leaves the same audit entries as the JSON API.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{BASE, Reply, app_with, send_as_is, with_json};
use phivault_audit::alerts::{Alert, AlertStatus, AlertStore};
use phivault_audit::detect::{AlertKind, NewAlert};
use phivault_audit::{AuditEvent, AuditStore, Outcome};
use phivault_identity::Role;
use phivault_service::access::AccessStore;
use serde_json::json;

const COOKIE: &str = "__Host-phivault-session";

fn page(token: &str, uri: &str) -> Request<Body> {
    Request::get(uri).header("cookie", format!("{COOKIE}={token}")).body(Body::empty()).expect("request")
}

fn post(token: &str, uri: &str, fields: &[(&str, &str)], origin: &str) -> Request<Body> {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Request::post(uri)
        .header("cookie", format!("{COOKIE}={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", origin)
        .body(Body::from(body.join("&")))
        .expect("request")
}

fn csrf(reply: &Reply) -> String {
    let start = reply.text.find("name=\"csrf\" value=\"").expect("a form") + "name=\"csrf\" value=\"".len();
    reply.text[start..].split('"').next().expect("value").to_owned()
}

#[tokio::test]
async fn the_privacy_officer_reviews_alerts_and_emergency_access_in_the_browser() {
    let (app, _db) =
        app_with(1 << 20, phivault_policy::Policies::defaults().expect("defaults"), Default::default()).await;
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Duck", "given": ["Daffy"]}]});
    let daffy = app.records.create("Patient", patient, None).await.expect("patient").resource.id;
    // The physician asks for emergency access with a note that tries to inject markup.
    let note = "<script>alert(1)</script> found unresponsive";
    let ask = with_json(
        "POST",
        "/access/break-glass",
        &json!({"patient": daffy, "reason": "emergency-treatment", "note": note}),
        &[("authorization", &format!("Bearer {}", app.token))],
    );
    assert_eq!(send_as_is(&app.router, ask).await.status, StatusCode::CREATED);
    let alert = Alert::open(
        NewAlert {
            kind: AlertKind::AfterHours,
            time_ms: 1_795_600_000_000,
            user_id: Some("user-night-owl".into()),
            source_ip: None,
            patient_ids: vec![daffy.clone()],
            seqs: vec![3],
            detail: "records opened outside working hours".into(),
        },
        1_795_600_000_000,
    )
    .expect("alert");
    app.store.insert_alert(&alert).await.expect("stored");

    let officer = phivault_testkit::signed_in(&app.identity, "po-granny", vec![Role::PrivacyOfficer], None).await;
    let officer = officer.expose();
    let shown = send_as_is(&app.router, page(officer, "/review")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert!(shown.text.contains("after_hours") && shown.text.contains(&daffy), "{}", shown.text);
    assert!(shown.text.contains("by Test user dr-daffy (physician)"), "the clinician by name and role: {}", shown.text);
    assert!(shown.text.contains("Daffy Duck <code>"), "the patient by name, through a recorded read: {}", shown.text);
    assert!(shown.text.contains("&lt;script&gt;alert(1)&lt;/script&gt; found unresponsive"), "escaped note");
    assert!(!shown.text.contains("<script>"), "no markup from a note reaches the page");
    let token = csrf(&shown);

    // Findings need this site's origin and the session's CSRF token.
    let alert_url = format!("/review/alerts/{}", alert.id);
    let forged = post(officer, &alert_url, &[("csrf", "guess"), ("finding", "benign")], BASE);
    assert_eq!(send_as_is(&app.router, forged).await.status, StatusCode::FORBIDDEN);
    let cross = post(officer, &alert_url, &[("csrf", &token), ("finding", "benign")], "https://evil.example");
    assert_eq!(send_as_is(&app.router, cross).await.status, StatusCode::FORBIDDEN);
    let done =
        send_as_is(&app.router, post(officer, &alert_url, &[("csrf", &token), ("finding", "benign")], BASE)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(app.store.alert(&alert.id).await.expect("read").expect("alert").status, AlertStatus::Benign);
    let again =
        send_as_is(&app.router, post(officer, &alert_url, &[("csrf", &token), ("finding", "violation")], BASE)).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "a finding is final");

    let grant = app.store.break_glass_grants(true, 10).await.expect("grants").pop().expect("one pending");
    let grant_url = format!("/review/break-glass/{}", grant.id);
    let judged =
        send_as_is(&app.router, post(officer, &grant_url, &[("csrf", &token), ("justified", "no")], BASE)).await;
    assert_eq!(judged.status, StatusCode::SEE_OTHER, "{}", judged.text);
    let after = send_as_is(&app.router, page(officer, "/review")).await;
    assert!(after.text.contains("No open alerts") && after.text.contains("No grants waiting"), "{}", after.text);

    // Other roles and anonymous visitors.
    let physician = send_as_is(&app.router, page(&app.token, "/review")).await;
    assert_eq!(physician.status, StatusCode::FORBIDDEN);
    assert!(!physician.text.contains("after_hours"));
    let anonymous = send_as_is(&app.router, Request::get("/review").body(Body::empty()).expect("request")).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers["location"], "/login?next=/review");

    let entries = app.store.audit_entries(0, 10_000).await.expect("trail");
    let events: Vec<AuditEvent> =
        entries.iter().map(|e| AuditEvent::from_canonical(&e.bytes).expect("event")).collect();
    let named = events.iter().find(|e| e.action == "read" && e.patient_ids == vec![daffy.clone()]);
    assert_eq!(
        named.map(|e| e.policies.clone()),
        Some(vec!["privacy-officer-identifies-patients-under-review".to_owned()]),
        "naming the patient is a read, recorded with its policy"
    );
    for (action, outcome) in [
        ("alert.list", Outcome::Success),
        ("alert.list", Outcome::Denied),
        ("break_glass.queue", Outcome::Success),
        ("alert.review.benign", Outcome::Success),
        ("alert.review.violation", Outcome::Failure),
        ("break_glass.review.unjustified", Outcome::Success),
    ] {
        assert!(events.iter().any(|e| e.action == action && e.outcome == outcome), "{action} {outcome:?}");
    }
    assert!(
        events.iter().all(|e| !String::from_utf8_lossy(&e.canonical_bytes()).contains("unresponsive")),
        "the note stays out of the trail"
    );
}

/// The audit trail search page: a POSTed form (no searched value in any address), the
/// physician named, the patient by id; another role refused; a patient filter that is no
/// record id refused in words and never stored; forged forms refused; the search recorded.
#[tokio::test]
async fn the_privacy_officer_searches_the_trail_with_a_form_that_keeps_values_out_of_addresses() {
    let (app, _db) =
        app_with(1 << 20, phivault_policy::Policies::defaults().expect("defaults"), Default::default()).await;
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Duck", "given": ["Daffy"]}]});
    let daffy = app.records.create("Patient", patient, None).await.expect("patient").resource.id;
    let physician = app.identity.find_user("dr-daffy").await.expect("physician");
    app.store
        .assign(&phivault_service::access::Assignment {
            kind: phivault_service::access::AssignmentKind::CareTeam,
            user_id: physician.id.clone(),
            value: daffy.clone(),
            assigned_by: "test".into(),
            assigned_ms: 0,
        })
        .await
        .expect("assign");
    let read = Request::get(format!("/fhir/Patient/{daffy}"))
        .header("authorization", format!("Bearer {}", app.token))
        .body(Body::empty())
        .expect("request");
    assert_eq!(send_as_is(&app.router, read).await.status, StatusCode::OK);

    let officer = phivault_testkit::signed_in(&app.identity, "po-granny", vec![Role::PrivacyOfficer], None).await;
    let officer = officer.expose().to_owned();
    let form = send_as_is(&app.router, page(&officer, "/review/audit")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    let token = csrf(&form);
    let found = send_as_is(
        &app.router,
        post(&officer, "/review/audit", &[("csrf", &token), ("patient", &daffy), ("action", "read")], BASE),
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert!(found.text.contains(&format!("{} (physician)", physician.display_name)), "{}", found.text);
    assert!(found.text.contains("1 entries, oldest first") && found.text.contains(&daffy), "{}", found.text);
    assert!(!found.text.contains("Duck"), "patients appear by id only");

    // Typed text that is no record id: refused in words, kept in the form, not in the trail.
    let typed =
        send_as_is(&app.router, post(&officer, "/review/audit", &[("csrf", &token), ("patient", "999 11 2233")], BASE))
            .await;
    assert_eq!(typed.status, StatusCode::BAD_REQUEST);
    assert!(typed.text.contains("record id shown on their pages"), "{}", typed.text);
    let bad_date =
        send_as_is(&app.router, post(&officer, "/review/audit", &[("csrf", &token), ("since", "yesterday")], BASE))
            .await;
    assert!(bad_date.text.contains("Dates are written as"), "{}", bad_date.text);
    let forged = send_as_is(&app.router, post(&officer, "/review/audit", &[("csrf", "guess")], BASE)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross =
        send_as_is(&app.router, post(&officer, "/review/audit", &[("csrf", &token)], "https://evil.example")).await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);

    // Another role: refused, and recorded as refused.
    let nurse = phivault_testkit::signed_in(&app.identity, "nurse-tweety", vec![Role::Nurse], None).await;
    let nurse = nurse.expose().to_owned();
    assert_eq!(send_as_is(&app.router, page(&nurse, "/review/audit")).await.status, StatusCode::FORBIDDEN);
    // Nor does a refused search (a bad filter) show the form's list of the workforce.
    let nurse_token = csrf(&send_as_is(&app.router, page(&nurse, "/account")).await);
    let probe =
        send_as_is(&app.router, post(&nurse, "/review/audit", &[("csrf", &nurse_token), ("outcome", "x")], BASE)).await;
    assert_eq!(probe.status, StatusCode::FORBIDDEN);
    assert!(!probe.text.contains("po-granny") && !probe.text.contains(&physician.display_name), "{}", probe.text);

    let entries = app.store.audit_entries(0, 10_000).await.expect("trail");
    let events: Vec<AuditEvent> =
        entries.iter().map(|e| AuditEvent::from_canonical(&e.bytes).expect("event")).collect();
    let searches: Vec<&AuditEvent> = events.iter().filter(|e| e.action == "audit.search").collect();
    assert!(searches.iter().any(|e| e.outcome == Outcome::Success && e.patient_ids == vec![daffy.clone()]));
    assert!(searches.iter().any(|e| e.outcome == Outcome::Denied), "the nurse's refusal");
    let all: String = entries.iter().map(|e| String::from_utf8_lossy(&e.bytes).into_owned()).collect();
    assert!(!all.contains("999 11 2233") && !all.contains("999%2011"), "typed text never stored");
}
