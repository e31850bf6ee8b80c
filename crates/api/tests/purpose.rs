//! A client's declared purpose of use (`X-Purpose-Of-Use`, HL7 v3 PurposeOfUse codes)
//! reaches the policies (`context.purpose_of_use`) and the audit entry; an unknown purpose
//! is refused rather than guessed, and never echoed.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestApp, app_with, send};
use phivault_audit::{AuditEvent, AuditStore};
use serde_json::json;

const NO_RESEARCH_READS: &str = r#"
@id("test-no-reads-for-research")
forbid (principal, action, resource) when { context.purpose_of_use == "research" };
"#;

fn read(id: &str, purpose: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(format!("/fhir/Patient/{id}"));
    if let Some(p) = purpose {
        builder = builder.header("x-purpose-of-use", p);
    }
    builder.body(Body::empty()).expect("request")
}

async fn last_entry(app: &TestApp) -> AuditEvent {
    let entries = app.store.audit_entries(0, 10_000).await.expect("trail");
    AuditEvent::from_canonical(&entries.last().expect("an entry").bytes).expect("event")
}

#[tokio::test]
async fn the_declared_purpose_reaches_the_policies_and_the_trail() {
    let policies =
        phivault_testkit::policies_with(&format!("{}{NO_RESEARCH_READS}", phivault_testkit::CLINICIANS_SEE_ALL));
    let (app, _db) = app_with(1 << 20, policies, phivault_policy::Zones::default()).await;
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Duck", "given": ["Daffy"]}]});
    let id = app.records.create("Patient", patient, None).await.expect("patient").resource.id;

    assert_eq!(send(&app, read(&id, None)).await.status, StatusCode::OK);
    assert_eq!(last_entry(&app).await.purpose_of_use, None, "nothing declared, nothing recorded");

    assert_eq!(send(&app, read(&id, Some("HPAYMT"))).await.status, StatusCode::OK);
    assert_eq!(last_entry(&app).await.purpose_of_use.as_deref(), Some("payment"));

    let research = send(&app, read(&id, Some("HRESCH"))).await;
    // The forbid covers break-glass too, so the record answers as one that does not exist.
    assert_eq!(research.status, StatusCode::NOT_FOUND, "{}", research.text);
    let refused = last_entry(&app).await;
    assert_eq!(refused.outcome, phivault_audit::Outcome::Denied, "the trail knows it was a refusal");
    assert_eq!(refused.purpose_of_use.as_deref(), Some("research"));
    assert_eq!(refused.policies, ["test-no-reads-for-research"]);

    let unknown = send(&app, read(&id, Some("CuriosityDuck"))).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(!unknown.text.contains("CuriosityDuck"), "{}", unknown.text);
    assert_eq!(last_entry(&app).await.purpose_of_use, None, "an unknown purpose is not recorded");
}
