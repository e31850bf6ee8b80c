//! Break-glass over HTTP: a clinician asks for emergency access to one patient; the
//! privacy officer reads the review queue and records a finding. JSON in and out, errors as
//! OperationOutcomes; every call is audited (`break_glass.*`), and each grant is sent to the
//! privacy officer through the configured notifier.
//!
//! Safeguards: 45 CFR 164.312(a)(2)(ii) emergency access procedure; 164.308(a)(1)(ii)(D)
//! information system activity review.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use phivault_audit::{AuditEvent, Outcome, clip};
use phivault_fhir::IssueType;
use phivault_service::RecordError;
use phivault_service::access::{Accessor, BreakGlassRequest};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::auth::gate::{ScopeReach, accessor};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::middleware::RequestId;

/// Routes under `/access`, behind authentication: break-glass and erasure.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/break-glass", post(request).get(queue))
        .route("/break-glass/{id}/review", post(review))
        .route("/erase", post(crate::erase::erase))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    patient: String,
    reason: String,
    note: String,
}

#[derive(Debug, Deserialize)]
struct QueueQuery {
    #[serde(default)]
    pending: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    justified: bool,
}

/// Break-glass is a person's act: a session, not an app's token.
fn person(caller: &Caller) -> Result<(), ApiError> {
    if caller.principal.scopes.is_some() || caller.principal.user_id.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            IssueType::Forbidden,
            "break-glass is asked for and reviewed in a person's own session, not through an app",
        ));
    }
    Ok(())
}

fn who(state: &AppState, caller: &Caller, client: Option<&ClientIp>) -> Accessor {
    accessor(state, caller, client.map(|c| c.0), ScopeReach::Unnarrowed)
}

/// Writes the entry for a break-glass call; the response waits for it (fail closed).
#[allow(clippy::too_many_arguments, reason = "one audit entry's fields")]
async fn audit(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    ids: (Option<&ClientIp>, Option<&RequestId>),
    action: &str,
    outcome: Outcome,
    patient: Option<&str>,
    reason: Option<&str>,
    policies: Vec<String>,
) -> Result<(), ApiError> {
    let origin = crate::audit::Origin::of(headers, ids.0, ids.1);
    let mut event = crate::audit::caller_event(state, caller, origin, action, outcome);
    event.reason = reason.map(|r| clip(r, 64));
    event.policies = policies;
    if let Some(p) = patient {
        event.patient_ids.push(clip(p, 64));
        event.resource_ids.push(format!("Patient/{}", clip(p, 64)));
    }
    crate::audit::write(state, &event).await
}

fn outcome_of(error: &RecordError) -> (Outcome, Vec<String>) {
    match error {
        RecordError::Forbidden { policy_ids } => (Outcome::Denied, policy_ids.clone()),
        _ => (Outcome::Failure, Vec::new()),
    }
}

/// `POST /access/break-glass` `{"patient", "reason", "note"}`: grants emergency access to
/// that patient for the configured time, and notifies the privacy officer.
async fn request(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientIp>>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<Json<RequestBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    person(&caller)?;
    let Json(body) = body.map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, "send {\"patient\", \"reason\", \"note\"} as JSON")
    })?;
    let ids = (client.as_deref(), request_id.as_deref());
    let mut accessor = who(&state, &caller, ids.0);
    crate::audit::Origin::of(&headers, ids.0, ids.1).onto(&mut accessor);
    let asked = BreakGlassRequest { patient_id: body.patient.clone(), reason: body.reason.clone(), note: body.note };
    let reason = phivault_service::access::BREAK_GLASS_REASONS.iter().find(|r| **r == body.reason).copied();
    match state.records.break_glass(&accessor, &asked).await {
        Ok(granted) => {
            // The grant committed its `break_glass.request` entry with itself.
            let grant = granted.value;
            notify(&state, &grant).await;
            let body = json!({
                "grant": grant.id,
                "patient": grant.patient_id,
                "expires": phivault_fhir::format_instant(grant.expires_ms),
                "notice": "emergency access is recorded, sent to the privacy officer and reviewed"
            });
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(e) => {
            let (outcome, policies) = outcome_of(&e);
            audit(
                &state,
                &caller,
                &headers,
                ids,
                "break_glass.request",
                outcome,
                Some(&body.patient),
                reason,
                policies,
            )
            .await?;
            Err(e.into())
        }
    }
}

/// Sends the grant to the privacy officer (ids, reason code and times only; the note stays
/// in the review queue). A failure is logged and audited; the grant stands, since the
/// clinician may be treating the patient.
pub(crate) async fn notify(state: &AppState, grant: &phivault_service::access::BreakGlassGrant) {
    let Some(notifier) = &state.notifier else { return };
    let subject = format!("phivault: break-glass access to Patient/{}", grant.patient_id);
    let body = format!(
        "User {} used break-glass access to Patient/{} (reason: {}), from {} until {}.\n\
         Grant {} waits in the review queue (GET /access/break-glass?pending=true).\n",
        grant.user_id,
        grant.patient_id,
        grant.reason_code,
        phivault_fhir::format_instant(grant.started_ms),
        phivault_fhir::format_instant(grant.expires_ms),
        grant.id
    );
    let outcome = match notifier.notify(&subject, &body).await {
        Ok(()) => Outcome::Success,
        Err(e) => {
            tracing::error!(error = %e, grant = %grant.id, "cannot notify the privacy officer of a break-glass grant");
            Outcome::Failure
        }
    };
    let mut event = AuditEvent::new(state.identity.now_ms(), "break_glass.notify", outcome, state.audit.node());
    event.target = Some(format!("grant:{}", grant.id));
    event.patient_ids.push(grant.patient_id.clone());
    if state.audit.record(&event).await.is_err() {
        tracing::error!("cannot write the break-glass notification to the audit trail");
    }
}

/// `GET /access/break-glass[?pending=true]`: the review queue, for the privacy officer.
async fn queue(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientIp>>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    Query(query): Query<QueueQuery>,
) -> Result<Response, ApiError> {
    person(&caller)?;
    let ids = (client.as_deref(), request_id.as_deref());
    let accessor = who(&state, &caller, ids.0);
    match state.records.break_glass_queue(&accessor, query.pending.unwrap_or(false)).await {
        Ok(granted) => {
            audit(
                &state,
                &caller,
                &headers,
                ids,
                "break_glass.queue",
                Outcome::Success,
                None,
                None,
                granted.policy_ids,
            )
            .await?;
            Ok(Json(json!({"grants": granted.value})).into_response())
        }
        Err(e) => {
            let (outcome, policies) = outcome_of(&e);
            audit(&state, &caller, &headers, ids, "break_glass.queue", outcome, None, None, policies).await?;
            Err(e.into())
        }
    }
}

/// `POST /access/break-glass/{id}/review` `{"justified": true|false}`.
async fn review(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientIp>>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<ReviewBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, "send {\"justified\": true|false} as JSON")
    })?;
    let ids = (client.as_deref(), request_id.as_deref());
    let finding = record_review(&state, &caller, &headers, ids, &id, body.justified).await?;
    Ok(Json(json!({"grant": id, "review": finding})).into_response())
}

/// Records a finding on a grant (once) and its audit entry; the API and the review page
/// share it. Returns the finding's name.
pub(crate) async fn record_review(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    ids: (Option<&ClientIp>, Option<&RequestId>),
    id: &str,
    justified: bool,
) -> Result<&'static str, ApiError> {
    person(caller)?;
    let accessor = who(state, caller, ids.0);
    let finding = if justified { "justified" } else { "unjustified" };
    let result = state.records.review_break_glass(&accessor, id, justified).await;
    let (outcome, policies) = match &result {
        Ok(granted) => (Outcome::Success, granted.policy_ids.clone()),
        Err(e) => outcome_of(e),
    };
    let action = format!("break_glass.review.{finding}");
    let origin = crate::audit::Origin::of(headers, ids.0, ids.1);
    let mut event = crate::audit::caller_event(state, caller, origin, &action, outcome);
    event.target = Some(format!("grant:{}", clip(id, 64)));
    event.policies = policies;
    crate::audit::write(state, &event).await?;
    result?;
    Ok(finding)
}

/// The pending grants with their notes opened, for a caller the policies let review;
/// the read is audited (`break_glass.queue`).
pub(crate) async fn pending_grants(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    ids: (Option<&ClientIp>, Option<&RequestId>),
) -> Result<Vec<phivault_service::access::GrantView>, ApiError> {
    person(caller)?;
    let accessor = who(state, caller, ids.0);
    match state.records.break_glass_queue(&accessor, true).await {
        Ok(granted) => {
            audit(state, caller, headers, ids, "break_glass.queue", Outcome::Success, None, None, granted.policy_ids)
                .await?;
            Ok(granted.value)
        }
        Err(e) => {
            let (outcome, policies) = outcome_of(&e);
            audit(state, caller, headers, ids, "break_glass.queue", outcome, None, None, policies).await?;
            Err(e.into())
        }
    }
}
