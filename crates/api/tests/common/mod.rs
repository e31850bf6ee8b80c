//! Shared helpers for the HTTP tests: an app over a fresh SQLite store, and requests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use phivault_api::{ApiConfig, AppState, router};
use phivault_testkit::{TestDb, fresh_store, records};
use serde_json::Value;
use tower::ServiceExt;

pub const BASE: &str = "https://127.0.0.1:8443";

pub async fn app_with_limit(max_body_bytes: usize) -> (Router, TestDb) {
    let (store, db, _) = fresh_store("sqlite").await;
    let state = AppState {
        records: records(store),
        config: Arc::new(ApiConfig {
            base_url: BASE.into(),
            max_body_bytes,
            request_timeout: Duration::from_secs(30),
            trusted_proxies: vec![],
        }),
    };
    (router(state), db)
}

pub async fn app() -> (Router, TestDb) {
    app_with_limit(4 * 1024 * 1024).await
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

pub async fn send(app: &Router, request: Request<Body>) -> Reply {
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
