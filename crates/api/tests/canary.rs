//! Canary PHI, planted in request bodies, query strings and headers, never reaches the
//! operational log, the audit trail or an error response, on every storage engine
//! (SQLite always, PostgreSQL when configured).
//!
//! Ids are the exception by design: they are opaque server ids (docs/ARCHITECTURE.md), so
//! no canary is planted in a path. The one client header the trail keeps is the user
//! agent, clipped (docs/AUDIT.md); it carries no canary here.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use common::{Reply, TestApp, app_on, send_as_is};
use phivault_audit::AuditStore;
use serde_json::{Value, json};

const CANARIES: [&str; 7] =
    ["Quackenbush", "Drusilla", "987654321", "555-0199", "1941-06-09", "quack@example.org", "Mallard Pond"];

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn patient() -> Value {
    json!({"resourceType": "Patient",
        "name": [{"family": "Quackenbush", "given": ["Drusilla"]}],
        "identifier": [{"system": "urn:mrn", "value": "987654321"}],
        "telecom": [{"system": "phone", "value": "555-0199"}, {"system": "email", "value": "quack@example.org"}],
        "address": [{"line": ["1 Mallard Pond"], "city": "Burbank", "state": "CA"}],
        "birthDate": "1941-06-09"})
}

/// A request with canaries in headers that phivault must not record.
fn request(app: &TestApp, method: &str, uri: &str, body: Option<&Value>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {}", app.token))
        .header("content-type", "application/fhir+json")
        .header("user-agent", "canary-test/1.0")
        .header("x-patient-name", "Drusilla Quackenbush")
        .header("referer", "https://portal.example/chart?mrn=987654321")
        .header("cookie", "last_patient=Quackenbush")
        .header("prefer", "respond-async")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request")
}

#[tokio::test]
async fn canaries_reach_no_log_no_audit_entry_and_no_error_response() {
    for engine in phivault_testkit::engines() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let policies = phivault_testkit::policies_with(phivault_testkit::CLINICIANS_SEE_ALL);
        let (app, _db) = app_on(engine, 1 << 20, policies, phivault_policy::Zones::default(), None).await;
        let created = send_as_is(&app.router, request(&app, "POST", "/fhir/Patient", Some(&patient()))).await;
        assert_eq!(created.status, 201, "{engine}: {}", created.text);
        let id = created.body["id"].as_str().expect("id").to_owned();

        let mut errors: Vec<Reply> = Vec::new();
        let searches = [
            "/fhir/Patient?family=Quackenbush&given=Drusilla&identifier=987654321",
            "/fhir/Patient?telecom=555-0199&email=quack@example.org&birthdate=1941-06-09",
        ];
        for uri in searches {
            let found = send_as_is(&app.router, request(&app, "GET", uri, None)).await;
            assert_eq!(found.status, 200, "{engine} {uri}: {}", found.text);
        }
        let mut bad_birth = patient();
        bad_birth["birthDate"] = json!("Quackenbush-1941");
        let mut wrong_id = patient();
        wrong_id["id"] = json!("not-this-one");
        let bad_bundle = json!({"resourceType": "Bundle", "type": "transaction",
            "entry": [{"request": {"method": "POST", "url": "Patient"}, "resource": bad_birth.clone()}]});
        for (method, uri, body) in [
            ("POST", "/fhir/Patient".to_owned(), Some(bad_birth.clone())),
            ("PUT", format!("/fhir/Patient/{id}"), Some(wrong_id)),
            ("POST", "/fhir".to_owned(), Some(bad_bundle)),
            ("GET", "/fhir/Patient?birthdate=gt1941-06-09Quackenbush".to_owned(), None),
            ("GET", "/fhir/Patient?_sort=Quackenbush".to_owned(), None),
            ("GET", "/fhir/$export?_type=Quackenbush".to_owned(), None),
            ("GET", "/fhir/$export?Drusilla=1".to_owned(), None),
            ("GET", "/fhir/Quackenbush?name=Drusilla".to_owned(), None),
            // Unsupported and unknown parameters are refused, named by position only.
            ("GET", "/fhir/Patient?address=Mallard%20Pond".to_owned(), None),
            ("GET", "/fhir/Patient?Quackenbush=987654321".to_owned(), None),
        ] {
            let reply = send_as_is(&app.router, request(&app, method, &uri, body.as_ref())).await;
            assert!(reply.status.is_client_error(), "{engine} {method} {uri}: {} {}", reply.status, reply.text);
            errors.push(reply);
        }
        // A forged token carrying a canary.
        let mut forged = request(&app, "GET", "/fhir/Patient?family=Quackenbush", None);
        forged.headers_mut().insert("authorization", "Bearer Quackenbush-987654321".parse().expect("header"));
        errors.push(send_as_is(&app.router, forged).await);

        let log = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
        assert!(log.contains("route="), "{engine}: the scenario was logged at all");
        let trail: Vec<u8> =
            app.store.audit_entries(0, 10_000).await.expect("entries").iter().flat_map(|e| e.bytes.clone()).collect();
        let trail = String::from_utf8(trail).expect("utf8");
        assert!(trail.contains(&id) && trail.contains("canary-test/1.0"), "{engine}: the trail recorded the scenario");
        for canary in CANARIES {
            assert!(!log.contains(canary), "{engine}: the log holds {canary:?}");
            assert!(!trail.contains(canary), "{engine}: the audit trail holds {canary:?}");
            for reply in &errors {
                assert!(!reply.text.contains(canary), "{engine}: an error response holds {canary:?}: {}", reply.text);
            }
        }
    }
}
