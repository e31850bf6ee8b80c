//! The patient portal, as a patient uses it and as an attacker would try it: a patient
//! reads and downloads their own record and nobody else's, and "who has seen my record"
//! names the people and roles (never account ids) with what they did and why, including
//! emergency access.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{COOKIE, TestApp, app_with, header, page, send_as_is};
use phivault_identity::Role;
use phivault_service::access::{AccessStore, Assignment, AssignmentKind};
use serde_json::{Value, json};

async fn create(app: &TestApp, body: Value) -> String {
    let t = body["resourceType"].as_str().expect("type").to_owned();
    app.records.create(&t, body, None).await.expect("created").resource.id
}

#[tokio::test]
async fn a_patient_reads_downloads_and_audits_their_own_record_only() {
    let (app, _db) =
        app_with(1 << 20, phivault_policy::Policies::defaults().expect("defaults"), Default::default()).await;
    let router = &app.router;
    let daffy = create(
        &app,
        json!({"resourceType": "Patient", "name": [{"family": "Duck", "given": ["Daffy"]}], "birthDate": "1937-04-17"}),
    )
    .await;
    let porky = create(&app, json!({"resourceType": "Patient", "name": [{"family": "Pig", "given": ["Porky"]}]})).await;
    create(&app, json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{daffy}")}, "code": {"text": "Lisp"}})).await;
    create(&app, json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{porky}")}, "code": {"text": "Stutter"}})).await;
    create(&app, json!({"resourceType": "Observation", "status": "final", "code": {"text": "Feather count"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
        "subject": {"reference": format!("Patient/{daffy}")}, "valueString": "plenty"})).await;
    let physician = app.identity.find_user("dr-daffy").await.expect("physician");
    app.store
        .assign(&Assignment {
            kind: AssignmentKind::CareTeam,
            user_id: physician.id.clone(),
            value: daffy.clone(),
            assigned_by: "test".into(),
            assigned_ms: 0,
        })
        .await
        .expect("assign");
    // The physician opens the chart; a nurse breaks the glass and opens it too.
    assert_eq!(send_as_is(router, page(&app.token, &format!("/chart/{daffy}"))).await.status, StatusCode::OK);
    let nurse = phivault_testkit::signed_in(&app.identity, "nurse-sylvester", vec![Role::Nurse], None).await;
    let closed = send_as_is(router, page(nurse.expose(), &format!("/chart/{daffy}"))).await;
    let csrf_at = closed.text.find("name=\"csrf\" value=\"").expect("form") + "name=\"csrf\" value=\"".len();
    let csrf = closed.text[csrf_at..].split('"').next().expect("csrf").to_owned();
    let glass = Request::post(format!("/chart/{daffy}/break-glass"))
        .header("cookie", format!("{COOKIE}={}", nurse.expose()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", common::BASE)
        .body(Body::from(format!("csrf={csrf}&reason=emergency-treatment&note=found%20unconscious%20in%20the%20pond")))
        .expect("request");
    assert_eq!(send_as_is(router, glass).await.status, StatusCode::SEE_OTHER);
    assert_eq!(send_as_is(router, page(nurse.expose(), &format!("/chart/{daffy}"))).await.status, StatusCode::OK);

    let patient = phivault_testkit::signed_in(&app.identity, "daffy-himself", vec![Role::Patient], Some(&daffy)).await;
    let patient = patient.expose();
    let record = send_as_is(router, page(patient, "/my-record")).await;
    assert_eq!(record.status, StatusCode::OK, "{}", record.text);
    assert!(record.text.contains("Your health problems") && record.text.contains("Lisp"));
    assert!(!record.text.contains("Stutter"), "another patient's problem is not in my record");

    let download = send_as_is(router, page(patient, "/my-record/download")).await;
    assert_eq!(download.status, StatusCode::OK);
    assert!(header(&download, "content-disposition").starts_with("attachment"));
    assert_eq!(download.body["resourceType"], "Bundle");
    let entries = download.body["entry"].as_array().expect("entries");
    let kinds: Vec<&str> = entries.iter().filter_map(|e| e["resource"]["resourceType"].as_str()).collect();
    assert!(kinds.contains(&"Patient") && kinds.contains(&"Condition") && kinds.contains(&"Observation"), "{kinds:?}");
    assert!(!download.text.contains("Stutter") && !download.text.contains(&porky), "only my own compartment");
    let summary = send_as_is(router, page(patient, "/my-record/summary")).await;
    assert!(header(&summary, "content-disposition").contains("my-health-record.html"));
    assert!(
        summary.text.contains("Health record of Daffy Duck") && summary.text.contains("Feather count"),
        "{}",
        summary.text
    );

    let access = send_as_is(router, page(patient, "/my-record/access")).await;
    assert_eq!(access.status, StatusCode::OK, "{}", access.text);
    assert!(access.text.contains("Test user dr-daffy") && access.text.contains("opened your chart"), "{}", access.text);
    assert!(access.text.contains("caring for you (care team)"));
    assert!(
        access.text.contains("Test user nurse-sylvester") && access.text.contains("emergency access (break the glass)")
    );
    assert!(access.text.contains("asked for emergency access to your record"));
    assert!(!access.text.contains(&physician.id), "people, not account ids");
    assert!(!access.text.contains("found unconscious"), "the clinician's note stays with the privacy officer");

    // Another patient sees none of this; staff are not patients.
    let other = phivault_testkit::signed_in(&app.identity, "porky-himself", vec![Role::Patient], Some(&porky)).await;
    let theirs = send_as_is(router, page(other.expose(), "/my-record")).await;
    assert!(theirs.text.contains("Stutter") && !theirs.text.contains("Lisp"));
    let theirs = send_as_is(router, page(other.expose(), "/my-record/access")).await;
    assert!(!theirs.text.contains("nurse-sylvester"), "{}", theirs.text);
    assert_eq!(send_as_is(router, page(&app.token, "/my-record")).await.status, StatusCode::FORBIDDEN);
}
