//! The privacy officer's alert queue over HTTP: `GET /audit/alerts` and
//! `POST /audit/alerts/{id}/review`. Both are part of the audit review, decided by the
//! same policy (`read_audit`), in a person's own session, and themselves audited.
//!
//! Safeguards: 45 CFR 164.308(a)(1)(ii)(D) information system activity review;
//! 164.308(a)(6)(ii) response and reporting of security incidents.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use phivault_audit::alerts::{self, AlertStatus, FindingError};
use phivault_audit::{Outcome, clip};
use phivault_fhir::{IssueType, format_instant};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::auth::gate::{ScopeReach, accessor};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::middleware::RequestId;

/// Most alerts one answer holds.
const MAX_ALERTS: u64 = 500;

pub fn routes() -> Router<AppState> {
    Router::new().route("/alerts", get(list)).route("/alerts/{id}/review", post(review))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    limit: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    finding: String,
}

fn unavailable(_: phivault_service::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, IssueType::Exception, "the alert queue cannot be read")
}

/// Decides `read_audit` for the caller (a person in their own session, not an app): the
/// alert queue and the trail search share it.
pub(crate) async fn decide_read_audit(
    state: &AppState,
    caller: &Caller,
    client: Option<&ClientIp>,
) -> (Outcome, Vec<String>) {
    let decided = if caller.principal.scopes.is_some() || caller.principal.user_id.is_none() {
        Err(phivault_service::RecordError::Forbidden { policy_ids: Vec::new() })
    } else {
        let who = accessor(state, caller, client.map(|c| c.0), ScopeReach::Unnarrowed);
        state.records.may(&who, phivault_policy::Action::ReadAudit).await
    };
    match decided {
        Ok(policies) => (Outcome::Success, policies),
        Err(phivault_service::RecordError::Forbidden { policy_ids }) => (Outcome::Denied, policy_ids),
        Err(_) => (Outcome::Failure, Vec::new()),
    }
}

/// Writes the entry for `action`; the response waits for it (fail closed).
#[allow(clippy::too_many_arguments, reason = "one audit entry's fields")]
pub(crate) async fn audit(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    ids: (Option<&ClientIp>, Option<&RequestId>),
    action: &str,
    outcome: Outcome,
    policies: Vec<String>,
    target: Option<String>,
    reason: Option<String>,
) -> Result<(), ApiError> {
    let origin = crate::audit::Origin::of(headers, ids.0, ids.1);
    let mut event = crate::audit::caller_event(state, caller, origin, action, outcome);
    event.policies = policies;
    event.target = target;
    event.reason = reason;
    crate::audit::write(state, &event).await
}

/// The answer to a decision that did not allow.
fn refused(outcome: Outcome) -> ApiError {
    match outcome {
        Outcome::Denied => ApiError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, "access denied by policy"),
        _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, IssueType::Exception, "the decision could not be made"),
    }
}

/// `GET /audit/alerts?status=open|benign|violation|all&limit=`: newest first.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientIp>>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, "filters are status and limit"))?;
    let status = match params.status.as_deref().unwrap_or("open") {
        "all" => None,
        s => Some(AlertStatus::parse(s).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, "status is open, benign, violation or all")
        })?),
    };
    let ids = (client.as_deref(), request_id.as_deref());
    let (outcome, policies) = decide_read_audit(&state, &caller, ids.0).await;
    audit(&state, &caller, &headers, ids, "alert.list", outcome, policies, None, None).await?;
    if outcome != Outcome::Success {
        return Err(refused(outcome));
    }
    let limit = params.limit.unwrap_or(100).clamp(1, MAX_ALERTS);
    let alerts = state.alerts.alerts(status, limit).await.map_err(unavailable)?;
    let alerts: Vec<Value> = alerts
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id,
                "kind": a.kind,
                "time": format_instant(a.time_ms),
                "raised": format_instant(a.raised_ms),
                "user": a.user_id,
                "sourceIp": a.source_ip,
                "patients": a.patient_ids,
                "auditEntries": a.seqs,
                "detail": a.detail,
                "status": a.status,
                "reviewedBy": a.reviewed_by,
                "reviewed": a.reviewed_ms.map(format_instant),
            })
        })
        .collect();
    Ok(Json(json!({"alerts": alerts})).into_response())
}

/// `POST /audit/alerts/{id}/review` `{"finding": "benign"|"violation"}`: once per alert.
async fn review(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientIp>>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<ReviewBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let finding = match body.as_ref().ok().and_then(|Json(b)| AlertStatus::parse(&b.finding)) {
        Some(f @ (AlertStatus::Benign | AlertStatus::Violation)) => f,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                IssueType::Invalid,
                "send {\"finding\": \"benign\"} or {\"finding\": \"violation\"} as JSON",
            ));
        }
    };
    let ids = (client.as_deref(), request_id.as_deref());
    record_finding(&state, &caller, &headers, ids, &id, finding).await?;
    Ok(Json(json!({"alert": id, "status": finding})).into_response())
}

/// Records a finding on an open alert (once) and its audit entry; the API and the review
/// page share it.
pub(crate) async fn record_finding(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    ids: (Option<&ClientIp>, Option<&RequestId>),
    id: &str,
    finding: AlertStatus,
) -> Result<(), ApiError> {
    let action = format!("alert.review.{}", finding.code());
    let target = Some(format!("alert:{}", clip(id, 64)));
    let (outcome, policies) = decide_read_audit(state, caller, ids.0).await;
    if outcome != Outcome::Success {
        audit(state, caller, headers, ids, &action, outcome, policies, target, None).await?;
        return Err(refused(outcome));
    }
    // The finding is stored first and the entry says what became of it.
    let reviewer = caller.principal.user_id.clone().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
    let refusal = match alerts::record_finding(state.alerts.as_ref(), id, finding, &reviewer, now).await {
        Ok(()) => None,
        Err(e @ FindingError::NotAFinding) => {
            Some(ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, e.to_string()))
        }
        Err(FindingError::NotFound) => Some(ApiError::new(StatusCode::NOT_FOUND, IssueType::NotFound, "no such alert")),
        Err(e @ FindingError::AlreadyReviewed) => {
            Some(ApiError::new(StatusCode::CONFLICT, IssueType::Conflict, e.to_string()))
        }
        Err(FindingError::Store(e)) => Some(unavailable(e)),
    };
    let (outcome, reason) = match &refusal {
        None => (Outcome::Success, None),
        Some(e) => (Outcome::Failure, Some(e.status.as_str().to_owned())),
    };
    audit(state, caller, headers, ids, &action, outcome, policies, target, reason).await?;
    match refusal {
        Some(refusal) => Err(refusal),
        None => Ok(()),
    }
}

/// The open alerts, for a caller the policies allow `read_audit`; the read is audited.
pub(crate) async fn open_alerts(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    ids: (Option<&ClientIp>, Option<&RequestId>),
) -> Result<Vec<phivault_audit::alerts::Alert>, ApiError> {
    let (outcome, policies) = decide_read_audit(state, caller, ids.0).await;
    audit(state, caller, headers, ids, "alert.list", outcome, policies, None, None).await?;
    if outcome != Outcome::Success {
        return Err(refused(outcome));
    }
    state.alerts.alerts(Some(AlertStatus::Open), MAX_ALERTS).await.map_err(unavailable)
}
