//! The operational log never holds PHI: route templates and ids only.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{app, get, send, with_json};
use serde_json::json;

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

#[tokio::test]
async fn scenario_with_fake_patient_logs_no_identifying_value() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (app, _db) = app().await;
    for bundle in phivault_demo::fake_patient_bundles().into_iter().take(2) {
        assert_eq!(send(&app, with_json("POST", "/fhir", &bundle, &[])).await.status, 200);
    }
    send(&app, get("/fhir/Patient?family=Duck&given=Daffy&identifier=123456789&birthdate=1937-04-17")).await;
    send(&app, get("/fhir/Patient?phone=555-0142&email=nobody@example.org")).await;
    send(&app, get("/fhir/Patient?birthdate=gtDuckburg")).await;
    let bad = json!({"resourceType": "Patient", "name": [{"family": "Duck"}], "birthDate": "Duck-04-17"});
    send(&app, with_json("POST", "/fhir/Patient", &bad, &[])).await;
    send(
        &app,
        with_json(
            "PUT",
            "/fhir/Patient/abc",
            &json!({"resourceType": "Patient", "id": "xyz", "name": [{"family": "Duck"}]}),
            &[],
        ),
    )
    .await;

    let log = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
    assert!(log.contains("route=/fhir/{resource_type}"), "the scenario was logged at all:\n{log}");
    let mut planted = phivault_demo::planted_identifiers();
    planted.extend(["Duckburg".to_owned(), "nobody@example.org".to_owned(), "5550142".to_owned()]);
    for value in planted {
        assert!(!log.contains(&value), "log holds '{value}'");
    }
}
