//! Emergency read-only mode over HTTP (45 CFR 164.308(a)(7)(ii)(C) emergency mode
//! operation): `GET /emergency-mode` says whether it is on; `POST /emergency-mode`
//! `{"readOnly": true, "reason": "..."}` switches it, for whom the policies allow
//! (`set_emergency_mode`: the privacy officer, with a second factor, in their own session),
//! audited (`emergency_mode.enter` / `emergency_mode.leave`). While it is on, every answer to
//! someone signed in carries `X-Phivault-Mode: emergency-read-only` and every signed-in page a
//! banner (nobody else is told); writes are refused
//! by the store itself, on every node (`phivault_store` `emergency.rs`).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use phivault_audit::Outcome;
use phivault_fhir::{IssueType, format_instant};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::auth::gate::{ScopeReach, accessor};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::middleware::RequestId;

pub const MODE_HEADER: &str = "x-phivault-mode";
const READ_ONLY: &str = "emergency-read-only";
/// The largest page the banner is put into (pages are rendered in memory; a larger one is
/// refused rather than shown without the banner).
const MAX_PAGE: usize = 64 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/emergency-mode", get(status).post(switch))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SwitchBody {
    read_only: bool,
    reason: Option<String>,
}

async fn status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mode = state.records.emergency_mode().await?;
    Ok(Json(json!({
        "readOnly": mode.is_some(),
        "since": mode.as_ref().map(|m| format_instant(m.since_ms)),
    }))
    .into_response())
}

async fn switch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientIp>>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<Json<SwitchBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            IssueType::Invalid,
            format!(
                "send {{\"readOnly\": true, \"reason\": <one of {}>}} to switch emergency read-only mode on, \
                 {{\"readOnly\": false}} to switch it off",
                phivault_service::EMERGENCY_REASONS.join(", ")
            ),
        )
    };
    let Json(body) = body.map_err(|_| bad())?;
    let reason = match (body.read_only, body.reason.as_deref()) {
        (true, Some(r)) if phivault_service::EMERGENCY_REASONS.contains(&r) => Some(r.to_owned()),
        (true, _) => return Err(bad()),
        (false, _) => None,
    };
    let action = if body.read_only { "emergency_mode.enter" } else { "emergency_mode.leave" };
    let ids = (client.as_deref(), request_id.as_deref());
    // A person in their own session, not an app acting for them.
    let who = accessor(&state, &caller, ids.0.map(|c| c.0), ScopeReach::Unnarrowed);
    let decided = if caller.principal.scopes.is_some() || caller.principal.user_id.is_none() {
        Err(phivault_service::RecordError::Forbidden { policy_ids: Vec::new() })
    } else {
        state.records.may(&who, phivault_policy::Action::SetEmergencyMode).await
    };
    let (outcome, policies) = match &decided {
        Ok(policies) => (Outcome::Success, policies.clone()),
        Err(phivault_service::RecordError::Forbidden { policy_ids }) => (Outcome::Denied, policy_ids.clone()),
        Err(_) => (Outcome::Failure, Vec::new()),
    };
    // Recorded before it takes effect: a switch whose entry cannot be written does not
    // happen (the answer is 503), and one that then fails is followed by a failure entry.
    crate::alerts::audit(&state, &caller, &headers, ids, action, outcome, policies.clone(), None, reason.clone())
        .await?;
    decided?;
    if let Err(e) = state.records.set_emergency_mode(&who, reason.clone()).await {
        crate::alerts::audit(&state, &caller, &headers, ids, action, Outcome::Failure, policies, None, reason).await?;
        return Err(e.into());
    }
    Ok(Json(json!({"readOnly": body.read_only})).into_response())
}

/// Marks every response while the mode is on: a header for programs, a banner in pages.
pub async fn mark_responses(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    // Said only to someone signed in (an authenticated API call, a signed-in page): the
    // state of the installation is nobody else's to learn.
    let signed_in = response.extensions().get::<Caller>().is_some()
        || response.extensions().get::<crate::web::SignedInPage>().is_some();
    if !signed_in {
        return response;
    }
    let Ok(Some(mode)) = state.records.emergency_mode().await else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(MODE_HEADER, HeaderValue::from_static(READ_ONLY));
    let is_page = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_page {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be shown").into_response();
    };
    let banner = format!(
        "<main><p class=\"banner\" role=\"alert\"><strong>Emergency read-only mode</strong> since {}: records can \
         be read but not changed until it ends.</p>",
        format_instant(mode.since_ms)
    );
    let page = String::from_utf8_lossy(&bytes).replacen("<main>", &banner, 1);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(page))
}
