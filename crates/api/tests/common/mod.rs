//! Shared helpers for the HTTP tests: an app over a fresh SQLite store, and requests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use phivault_api::{ApiConfig, AppState, router};
use phivault_identity::{Identity, Role};
use phivault_testkit::{
    CLINICIANS_SEE_ALL, TestDb, fresh_store, guarded, policies_with, records_with_ring, signed_in, system_identity,
    test_ring,
};
use serde_json::Value;
use tower::ServiceExt;

pub const BASE: &str = "https://127.0.0.1:8443";
/// The one origin the test apps let browser apps call from (CORS).
pub const APP_ORIGIN: &str = "https://app.example";

/// A router plus a signed-in physician's session token, which [`send`] presents unless the
/// request already carries an `Authorization` header.
#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub store: phivault_store::SqlStore,
    pub records: phivault_service::Records,
    pub identity: Identity,
    pub token: String,
    /// The database's URL, for tests that act with the database owner's rights.
    pub url: String,
}

/// An app whose physician may read and write every record ([`CLINICIANS_SEE_ALL`]): for
/// tests of FHIR mechanics rather than of authorization.
pub async fn app_with_limit(max_body_bytes: usize) -> (TestApp, TestDb) {
    app_with(max_body_bytes, policies_with(CLINICIANS_SEE_ALL), phivault_policy::Zones::default()).await
}

/// An app under `policies` and `zones`.
pub async fn app_with(
    max_body_bytes: usize,
    policies: phivault_policy::Policies,
    zones: phivault_policy::Zones,
) -> (TestApp, TestDb) {
    app_notifying(max_body_bytes, policies, zones, None).await
}

/// An app under `policies` and `zones` that sends break-glass notices to `notifier`.
pub async fn app_notifying(
    max_body_bytes: usize,
    policies: phivault_policy::Policies,
    zones: phivault_policy::Zones,
    notifier: Option<Arc<dyn phivault_service::access::Notifier>>,
) -> (TestApp, TestDb) {
    app_on("sqlite", max_body_bytes, policies, zones, notifier).await
}

/// [`app_notifying`] on `engine` ("sqlite" or "postgres").
pub async fn app_on(
    engine: &str,
    max_body_bytes: usize,
    policies: phivault_policy::Policies,
    zones: phivault_policy::Zones,
    notifier: Option<Arc<dyn phivault_service::access::Notifier>>,
) -> (TestApp, TestDb) {
    let (store, db, url) = fresh_store(engine).await;
    let ring = test_ring();
    let identity = system_identity(store.clone(), ring.clone());
    let token = signed_in(&identity, "dr-daffy", vec![Role::Physician], None).await;
    let audit = phivault_audit::AuditLog::start(std::sync::Arc::new(store.clone()), "test-node");
    let records = records_with_ring(store.clone(), ring);
    let guarded = guarded(records.clone(), store.clone(), policies);
    let exports = phivault_service::bulk::Exporter::new(
        guarded.clone(),
        Arc::new(store.clone()),
        records.keys().clone(),
        Arc::new(phivault_service::SystemClock),
        3_600_000,
        0,
    );
    let state = AppState {
        records: guarded,
        identity: identity.clone(),
        audit,
        notifier,
        alerts: Arc::new(store.clone()),
        exports: Some(exports),
        config: Arc::new(ApiConfig {
            base_url: BASE.into(),
            max_body_bytes,
            request_timeout: Duration::from_secs(30),
            trusted_proxies: vec![],
            zones,
            cors_origins: vec![APP_ORIGIN.into()],
            local_offset_minutes: 0,
        }),
    };
    (TestApp { router: router(state), store, records, identity, token: token.expose().to_owned(), url }, db)
}

pub async fn app() -> (TestApp, TestDb) {
    app_with_limit(4 * 1024 * 1024).await
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

pub async fn send(app: &TestApp, mut request: Request<Body>) -> Reply {
    if !request.headers().contains_key("authorization") && !request.headers().contains_key("cookie") {
        let value = format!("Bearer {}", app.token).parse().expect("header");
        request.headers_mut().insert("authorization", value);
    }
    send_as_is(&app.router, request).await
}

/// Sends `request` exactly as built (no credentials added).
pub async fn send_as_is(app: &Router, request: Request<Body>) -> Reply {
    let response: Response<Body> = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body, text }
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

pub fn with_json(method: &str, uri: &str, body: &Value, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri).header("content-type", "application/fhir+json");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Body::from(body.to_string())).expect("request")
}

pub fn daffy() -> Value {
    serde_json::json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:mrn", "value": "123456789"}],
        "name": [{"family": "Duck", "given": ["Daffy"]}],
        "telecom": [{"system": "phone", "value": "555-0142"}],
        "gender": "male",
        "birthDate": "1937-04-17"
    })
}

// ---- browser pages -----------------------------------------------------------------------

/// The session cookie's name.
pub const COOKIE: &str = "__Host-phivault-session";

/// `GET uri` with the session cookie `token`.
pub fn page(token: &str, uri: &str) -> Request<Body> {
    Request::get(uri).header("cookie", format!("{COOKIE}={token}")).body(Body::empty()).expect("request")
}

/// A form posted with the session cookie from `origin`.
pub fn post(token: &str, uri: &str, fields: &[(&str, &str)], origin: &str) -> Request<Body> {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    Request::post(uri)
        .header("cookie", format!("{COOKIE}={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", origin)
        .body(Body::from(body.join("&")))
        .expect("request")
}

/// The CSRF token of the first form on a page.
pub fn csrf(reply: &Reply) -> String {
    let start = reply.text.find("name=\"csrf\" value=\"").expect("a form") + "name=\"csrf\" value=\"".len();
    reply.text[start..].split('"').next().expect("value").to_owned()
}

/// A response header's value, or empty.
pub fn header(reply: &Reply, name: &str) -> String {
    reply.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// Where a redirect points, or empty.
pub fn location(reply: &Reply) -> String {
    header(reply, "location")
}

/// Every entry of the app's audit trail, decoded.
pub async fn trail(app: &TestApp) -> Vec<phivault_audit::AuditEvent> {
    use phivault_audit::AuditStore;
    let entries = app.store.audit_entries(0, 10_000).await.expect("trail");
    entries.iter().map(|e| phivault_audit::AuditEvent::from_canonical(&e.bytes).expect("event")).collect()
}
