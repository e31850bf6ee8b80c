//! Per-request context: request id, client address, timeout, and a log line that names the
//! route template, never the URL (FHIR search URLs carry names and identifiers).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use phivault_fhir::IssueType;

use crate::AppState;
use crate::client_ip::{ClientIp, PeerAddr, client_ip};
use crate::error::ApiError;

/// Opaque id of one request, echoed in `X-Request-Id` and in log lines.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub async fn request_context(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let peer = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    if let Some(peer) = peer {
        let ip = client_ip(peer, request.headers(), &state.config.trusted_proxies);
        request.extensions_mut().insert(ClientIp(ip));
    }
    request.extensions_mut().insert(RequestId(request_id.clone()));
    let route = request.extensions().get::<MatchedPath>().map_or("<unmatched>", |p| p.as_str()).to_owned();
    let method = request.method().clone();
    let mut response = match tokio::time::timeout(state.config.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueType::Exception,
            "the request took too long and was abandoned",
        )
        .into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    tracing::info!(
        request_id = %request_id,
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
