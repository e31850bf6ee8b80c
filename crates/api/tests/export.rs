//! FHIR Bulk Data `$export` through the HTTP API, as the Bulk Data IG's client flow runs
//! it (kick-off with `Prefer: respond-async`, poll the status URL, download each file
//! from the manifest) and as an attacker would probe it: a researcher gets de-identified
//! data only, another account cannot see or download someone's export, roles without
//! the right are refused, unknown parameters are refused without echo, files are sealed at
//! rest and a tampered file is not served, and every step is in the audit trail.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{BASE, Reply, TestApp, app_with, send_as_is};
use phivault_audit::{AuditEvent, AuditStore, Outcome};
use phivault_identity::Role;
use serde_json::{Value, json};

const SSN: &str = "http://hl7.org/fhir/sid/us-ssn";

async fn call(app: &TestApp, token: &str, method: &str, uri: &str, async_pref: bool) -> Reply {
    let mut builder = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {token}"));
    if async_pref {
        builder = builder.header("prefer", "respond-async").header("accept", "application/fhir+json");
    }
    send_as_is(&app.router, builder.body(Body::empty()).expect("request")).await
}

fn relative(url: &str) -> String {
    url.strip_prefix(BASE).expect("an absolute URL on this server").to_owned()
}

/// Kicks off and polls until the manifest (or an error) comes back.
async fn export(app: &TestApp, token: &str, kick_off: &str) -> (String, Reply) {
    poll(app, token, call(app, token, "GET", kick_off, true).await).await
}

/// `POST` kick-off, as Bulk Data IG 2.0 clients send it: a `Parameters` body, or none.
async fn post_kick_off(app: &TestApp, token: &str, uri: &str, body: Option<&Value>) -> Reply {
    let request = Request::builder()
        .method("POST")
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("prefer", "respond-async")
        .header("accept", "application/fhir+json")
        .header("content-type", "application/fhir+json");
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    send_as_is(&app.router, request.body(body).expect("request")).await
}

async fn poll(app: &TestApp, token: &str, started: Reply) -> (String, Reply) {
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
    let status_url = relative(started.headers["content-location"].to_str().expect("ascii"));
    for _ in 0..200 {
        let status = call(app, token, "GET", &status_url, false).await;
        if status.status != StatusCode::ACCEPTED {
            return (status_url, status);
        }
        assert!(status.headers.contains_key("x-progress") && status.headers.contains_key("retry-after"));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the export never finished");
}

async fn download(app: &TestApp, token: &str, manifest: &Value) -> Vec<(String, Vec<Value>)> {
    let mut files = Vec::new();
    for output in manifest["output"].as_array().expect("output") {
        let url = relative(output["url"].as_str().expect("url"));
        let file = call(app, token, "GET", &url, false).await;
        assert_eq!(file.status, StatusCode::OK, "{}", file.text);
        assert_eq!(file.headers["content-type"], "application/fhir+ndjson");
        let lines: Vec<Value> =
            file.text.lines().map(|l| serde_json::from_str(l).expect("one resource per line")).collect();
        assert_eq!(lines.len() as u64, output["count"].as_u64().expect("count"), "the manifest counts each file");
        files.push((output["type"].as_str().expect("type").to_owned(), lines));
    }
    files
}

async fn trail(app: &TestApp) -> Vec<AuditEvent> {
    let entries = app.store.audit_entries(0, 10_000).await.expect("entries");
    entries.iter().map(|e| AuditEvent::from_canonical(&e.bytes).expect("canonical")).collect()
}

struct Clinic {
    app: TestApp,
    _db: phivault_testkit::TestDb,
    daffy: String,
    porky: String,
    group: String,
}

async fn clinic(extra_policy: Option<&str>) -> Clinic {
    let policies = match extra_policy {
        Some(text) => phivault_testkit::policies_with(text),
        None => phivault_policy::Policies::defaults().expect("defaults"),
    };
    let (app, db) = app_with(1 << 20, policies, phivault_policy::Zones::default()).await;
    let patient = |family: &str, given: &str, ssn: &str| {
        json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
            "identifier": [{"system": SSN, "value": ssn}, {"system": "urn:mrn", "value": "123456789"}],
            "address": [{"line": ["1 Looney Tunes Lane"], "city": "Burbank", "state": "CA", "postalCode": "91521"}],
            "gender": "male", "birthDate": "1937-04-17"})
    };
    let daffy = app.records.create("Patient", patient("Duck", "Daffy", "999-00-1234"), None).await.expect("p");
    let porky = app.records.create("Patient", patient("Pig", "Porky", "999-00-5678"), None).await.expect("p");
    let (daffy, porky) = (daffy.resource.id, porky.resource.id);
    for (who, text) in [(&daffy, "Seen by Dr. Elmer Fudd for Daffy Duck"), (&porky, "Porky Pig weight")] {
        let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "note"},
            "valueString": text, "subject": {"reference": format!("Patient/{who}")}});
        app.records.create("Observation", obs, None).await.expect("observation");
    }
    let group = json!({"resourceType": "Group", "type": "person", "actual": true,
        "member": [{"entity": {"reference": format!("Patient/{daffy}")}}]});
    let group = app.records.create("Group", group, None).await.expect("group").resource.id;
    Clinic { app, _db: db, daffy, porky, group }
}

#[tokio::test]
async fn a_researcher_exports_de_identified_data_and_nobody_else_sees_it() {
    let c = clinic(None).await;
    let researcher = phivault_testkit::signed_in(&c.app.identity, "re-taz", vec![Role::Researcher], None).await;
    let researcher = researcher.expose();

    // The IG's kick-off needs Prefer: respond-async.
    assert_eq!(call(&c.app, researcher, "GET", "/fhir/$export", false).await.status, StatusCode::BAD_REQUEST);
    let (status_url, done) = export(&c.app, researcher, "/fhir/$export?_type=Patient,Observation").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let manifest = &done.body;
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(manifest["extension"]["smallestEquivalenceClass"], 2);
    assert_eq!(manifest["request"], format!("{BASE}/fhir/$export?_type=Patient,Observation"));
    let files = download(&c.app, researcher, manifest).await;
    let kinds: Vec<&str> = files.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["Patient", "Observation"]);
    let everything: String = files.iter().flat_map(|(_, l)| l.iter().map(Value::to_string)).collect();
    for planted in ["Duck", "Daffy", "Porky", "999-00-1234", "123456789", "Looney", "Burbank", "1937-04-17", "Fudd"] {
        assert!(!everything.contains(planted), "{planted} survived the researcher's export: {everything}");
    }
    for id in [&c.daffy, &c.porky] {
        assert!(!everything.contains(id.as_str()), "ids are pseudonymised");
    }
    let patients = &files[0].1;
    assert_eq!(patients.len(), 2);
    assert!(patients.iter().all(|p| p["birthDate"] == "1937"), "{patients:?}");

    // Another account learns nothing of it; roles without export are refused.
    let physician = c.app.token.clone();
    assert_eq!(call(&c.app, &physician, "GET", &status_url, false).await.status, StatusCode::NOT_FOUND);
    let file_url = relative(manifest["output"][0]["url"].as_str().expect("url"));
    assert_eq!(call(&c.app, &physician, "GET", &file_url, false).await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&c.app, &physician, "GET", "/fhir/$export", true).await.status, StatusCode::FORBIDDEN);
    let admin = phivault_testkit::signed_in(&c.app.identity, "admin-elmer", vec![Role::Admin], None).await;
    assert_eq!(call(&c.app, admin.expose(), "GET", "/fhir/$export", true).await.status, StatusCode::FORBIDDEN);

    // Parameters are checked, and client text is never echoed.
    for (uri, expected) in [
        ("/fhir/$export?_type=Nope", StatusCode::BAD_REQUEST),
        ("/fhir/$export?_deidentify=none", StatusCode::BAD_REQUEST),
        ("/fhir/$export?_since=yesterday", StatusCode::BAD_REQUEST),
        ("/fhir/$export?_outputFormat=text/csv", StatusCode::BAD_REQUEST),
        ("/fhir/$export?DaffyDuck=1", StatusCode::BAD_REQUEST),
        ("/fhir/Observation/$export", StatusCode::FORBIDDEN),
    ] {
        let refused = call(&c.app, researcher, "GET", uri, true).await;
        assert_eq!(refused.status, expected, "{uri}: {}", refused.text);
        assert!(!refused.text.contains("DaffyDuck") && !refused.text.contains("Nope"), "{}", refused.text);
    }

    // A researcher whose role is withdrawn no longer downloads what they exported before.
    // (The role change ends their sessions; they sign in again as front desk.)
    let taz = c.app.identity.find_user("re-taz").await.expect("researcher");
    c.app.identity.set_roles(&taz.id, vec![Role::FrontDesk]).await.expect("role change");
    assert_eq!(call(&c.app, researcher, "GET", &file_url, false).await.status, StatusCode::UNAUTHORIZED);
    let desk = phivault_testkit::session_for(&c.app.identity, &taz.id, "grant-desk").await;
    let desk = desk.expose();
    assert_eq!(call(&c.app, desk, "GET", &status_url, false).await.status, StatusCode::FORBIDDEN);
    assert_eq!(call(&c.app, desk, "GET", &file_url, false).await.status, StatusCode::FORBIDDEN);
    c.app.identity.set_roles(&taz.id, vec![Role::Researcher]).await.expect("role back");
    let researcher = phivault_testkit::session_for(&c.app.identity, &taz.id, "grant-again").await;
    let researcher = researcher.expose();

    // Cancelling deletes it.
    assert_eq!(call(&c.app, researcher, "DELETE", &status_url, false).await.status, StatusCode::ACCEPTED);
    assert_eq!(call(&c.app, researcher, "GET", &status_url, false).await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&c.app, researcher, "GET", &file_url, false).await.status, StatusCode::NOT_FOUND);

    let events = trail(&c.app).await;
    let complete = events.iter().find(|e| e.action == "export.complete").expect("export.complete");
    assert_eq!(complete.outcome, Outcome::Success);
    // Two patients, same birth year, gender and state, no ZIP: one class of two.
    assert_eq!(complete.reason.as_deref(), Some("Observation=2 Patient=2 deidentified k=2"));
    assert_eq!(complete.policies, ["researcher-exports-de-identified-data"]);
    let mut exported: Vec<String> =
        events.iter().filter(|e| e.action == "export.patients").flat_map(|e| e.patient_ids.clone()).collect();
    exported.sort();
    let mut expected = vec![c.daffy.clone(), c.porky.clone()];
    expected.sort();
    assert_eq!(exported, expected, "each patient's accounting shows the export");
    for action in ["export", "export.status", "export.download", "export.cancel"] {
        assert!(events.iter().any(|e| e.action == action && e.outcome == Outcome::Success), "{action}");
    }
    assert!(events.iter().any(|e| e.action == "export" && e.outcome == Outcome::Denied), "refusals too");
}

/// A test policy: physicians export identified data (as a backend service would).
const PHYSICIANS_EXPORT: &str = r#"
@id("test-physicians-export")
permit (principal in PhiVault::Role::"physician", action == PhiVault::Action::"export", resource is PhiVault::Record);
"#;

#[tokio::test]
async fn group_and_patient_exports_cover_their_patients_files_are_sealed_and_tampering_is_refused() {
    let c = clinic(Some(PHYSICIANS_EXPORT)).await;
    let token = c.app.token.clone();
    let (_, group) =
        export(&c.app, &token, &format!("/fhir/Group/{}/$export?_type=Patient,Observation", c.group)).await;
    assert_eq!(group.status, StatusCode::OK, "{}", group.text);
    let files = download(&c.app, &token, &group.body).await;
    let text: String = files.iter().flat_map(|(_, l)| l.iter().map(Value::to_string)).collect();
    assert!(text.contains("Duck") && text.contains(&c.daffy), "identified, as the policy allows");
    assert!(!text.contains("Porky"), "the Group holds Daffy only: {text}");

    let (_, patients) = export(&c.app, &token, "/fhir/Patient/$export").await;
    let counts: Vec<(String, u64)> = patients.body["output"]
        .as_array()
        .expect("output")
        .iter()
        .map(|o| (o["type"].as_str().expect("t").to_owned(), o["count"].as_u64().expect("n")))
        .collect();
    assert_eq!(counts, [("Observation".to_owned(), 2), ("Patient".to_owned(), 2)], "no Group: not in a compartment");

    // At rest: sealed chunks, nothing in the clear.
    let phivault_testkit::TestDb::Sqlite(dir) = &c._db else { panic!("the HTTP tests run on SQLite") };
    let url = format!("sqlite://{}", dir.path().join("phivault.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
    let bodies: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT body FROM export_chunks").fetch_all(&pool).await.expect("rows");
    assert!(!bodies.is_empty());
    for body in &bodies {
        let lossy = String::from_utf8_lossy(body);
        assert!(!lossy.contains("Duck") && !lossy.contains("resourceType"), "sealed at rest");
    }
    // A flipped byte in a stored chunk: the file is refused, not served damaged.
    // (XOR, not a fixed byte: a chunk whose first byte already was that value stayed intact 1 time in 256.)
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT rowid, body FROM export_chunks").fetch_all(&pool).await.expect("rows");
    for (rowid, mut body) in rows {
        body[0] ^= 0x01;
        sqlx::query("UPDATE export_chunks SET body = ? WHERE rowid = ?")
            .bind(body)
            .bind(rowid)
            .execute(&pool)
            .await
            .expect("tamper");
    }
    let file = relative(patients.body["output"][0]["url"].as_str().expect("url"));
    let refused = call(&c.app, &token, "GET", &file, false).await;
    assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", refused.text);
    assert!(!refused.text.contains("Duck"));
}

#[tokio::test]
async fn a_post_kick_off_reads_its_parameters_body_and_refuses_what_it_cannot_honour() {
    let c = clinic(Some(PHYSICIANS_EXPORT)).await;
    let token = c.app.token.clone();
    let types_of = |manifest: &Value| -> Vec<(String, u64)> {
        manifest["output"]
            .as_array()
            .expect("output")
            .iter()
            .map(|o| (o["type"].as_str().expect("t").to_owned(), o["count"].as_u64().expect("n")))
            .collect()
    };
    let parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Patient"},
        {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
        {"name": "_since", "valueInstant": "2000-01-01T00:00:00Z"}]});
    let group_uri = format!("/fhir/Group/{}/$export", c.group);
    let started = post_kick_off(&c.app, &token, &group_uri, Some(&parameters)).await;
    let (_, done) = poll(&c.app, &token, started).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(types_of(&done.body), [("Patient".to_owned(), 1)], "the body's _type was honoured: {}", done.text);
    let request = done.body["request"].as_str().expect("request");
    assert!(request.ends_with("?_type=Patient&_since=2000-01-01T00:00:00.000Z"), "{request}");
    let files = download(&c.app, &token, &done.body).await;
    assert_eq!(files[0].1[0]["id"], c.daffy.as_str());

    // No body at all (what Medplum's client sends): the query string alone.
    let started = post_kick_off(&c.app, &token, "/fhir/Patient/$export?_type=Observation", None).await;
    let (_, done) = poll(&c.app, &token, started).await;
    assert_eq!(types_of(&done.body), [("Observation".to_owned(), 2)], "{}", done.text);

    // What cannot be honoured is refused before any job starts, without echoing the input.
    let refusals = [
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": {"reference": format!("Patient/{}", c.porky)}}]}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "_since", "valueInstant": "last tuesday"}]}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Daffy"}]}),
        json!({"resourceType": "Parameters", "parameter": [{"valueString": "Patient"}]}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueInteger": 7}]}),
        json!({"resourceType": "Patient", "name": [{"family": "Duck"}]}),
    ];
    for body in &refusals {
        let refused = post_kick_off(&c.app, &token, "/fhir/$export", Some(body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}: {}", refused.text);
        assert_eq!(refused.body["resourceType"], "OperationOutcome");
        assert!(
            !refused.text.contains("Duck") && !refused.text.contains("tuesday") && !refused.text.contains(&c.porky)
        );
    }
    let not_json = Request::builder()
        .method("POST")
        .uri("/fhir/$export")
        .header("authorization", format!("Bearer {token}"))
        .header("prefer", "respond-async")
        .body(Body::from("_type=Patient"))
        .expect("request");
    assert_eq!(send_as_is(&c.app.router, not_json).await.status, StatusCode::BAD_REQUEST);
    let get_with_body = Request::builder()
        .method("GET")
        .uri("/fhir/$export")
        .header("authorization", format!("Bearer {token}"))
        .header("prefer", "respond-async")
        .body(Body::from(parameters.to_string()))
        .expect("request");
    assert_eq!(send_as_is(&c.app.router, get_with_body).await.status, StatusCode::BAD_REQUEST);
}
