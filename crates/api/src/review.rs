//! Reading the audit trail over HTTP: the privacy officer's search (`read_audit`), and a
//! patient's accounting of who accessed their record. Both are themselves audited.
//!
//! Safeguards: 45 CFR 164.308(a)(1)(ii)(D) information system activity review; 164.528
//! accounting of disclosures; 164.524 right of access; ONC 170.315(d)(3) audit reports.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use phivault_audit::{AuditQuery, Outcome, clip};
use phivault_fhir::{IssueType, format_instant};
use phivault_identity::Role;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::middleware::RequestId;

/// Most entries one answer holds.
const MAX_ENTRIES: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchParams {
    user: Option<String>,
    patient: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

fn instant(value: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        IssueType::Invalid,
                        format!("{name} must be an RFC 3339 time such as 2026-11-25T08:00:00Z"),
                    )
                })
        })
        .transpose()
}

fn outcome(value: Option<&str>) -> Result<Option<Outcome>, ApiError> {
    match value {
        None => Ok(None),
        Some("success") => Ok(Some(Outcome::Success)),
        Some("denied") => Ok(Some(Outcome::Denied)),
        Some("failure") => Ok(Some(Outcome::Failure)),
        Some(_) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, "outcome is success, denied or failure"))
        }
    }
}

fn unavailable(_: phivault_service::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, IssueType::Exception, "the audit trail cannot be read")
}

/// `GET /audit/entries?user=&patient=&action=&outcome=&since=&until=&limit=`: entries
/// matching every given filter, oldest first, for a user the policies allow to `read_audit`.
pub async fn entries(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientIp>>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            IssueType::Invalid,
            "filters are user, patient, action, outcome, since, until and limit",
        )
    })?;
    let origin = crate::audit::Origin::of(&headers, client.as_deref(), request_id.as_deref());
    let query = AuditQuery {
        user_id: params.user,
        patient_id: params.patient,
        action: params.action,
        outcome: outcome(params.outcome.as_deref())?,
        since_ms: instant(params.since.as_deref(), "since")?,
        until_ms: instant(params.until.as_deref(), "until")?,
    };
    let limit = params.limit.unwrap_or(MAX_ENTRIES).min(MAX_ENTRIES);
    let found = search_trail(&state, &caller, client.as_deref(), origin, &query, limit).await?;
    let entries: Vec<Value> = found.into_iter().map(|(seq, event)| json!({"seq": seq, "event": event})).collect();
    Ok(Json(json!({"entries": entries})).into_response())
}

/// The privacy officer's search of the trail, for the API and the page alike: decided
/// (`read_audit`), recorded first (`audit.search`, with the patient searched for), then
/// up to `limit` matching entries, oldest first.
pub(crate) async fn search_trail(
    state: &AppState,
    caller: &Caller,
    client: Option<&ClientIp>,
    origin: crate::audit::Origin,
    query: &AuditQuery,
    limit: usize,
) -> Result<Vec<(u64, phivault_audit::AuditEvent)>, ApiError> {
    let (result, policies) = crate::alerts::decide_read_audit(state, caller, client).await;
    let mut event = crate::audit::caller_event(state, caller, origin, "audit.search", result);
    event.policies = policies;
    // Only a valid id names a patient in the trail; other typed text is not kept.
    if let Some(p) = query.patient_id.as_deref().filter(|p| phivault_fhir::is_valid_id(p)) {
        event.patient_ids.push(clip(p, 64));
    }
    crate::audit::write(state, &event).await?;
    if result != Outcome::Success {
        return Err(ApiError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, "access denied by policy"));
    }
    phivault_audit::search(state.audit.store().as_ref(), query, limit).await.map_err(unavailable)
}

/// Actions that touch a patient's records, for the accounting.
fn is_record_access(action: &str) -> bool {
    matches!(
        action,
        "read"
            | "vread"
            | "search"
            | "history"
            | "create"
            | "update"
            | "batch"
            | "chart"
            | "everything"
            | "erase"
            | "export.patients"
    ) || action.starts_with("break_glass.request")
}

/// The patient of a patient's own account, or the refusal.
pub(crate) fn own_patient(caller: &Caller) -> Result<String, ApiError> {
    let p = &caller.principal;
    match (&p.patient_id, p.roles.contains(&Role::Patient), &p.user_id) {
        (Some(patient), true, Some(_)) => Ok(patient.clone()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            IssueType::Forbidden,
            "the accounting of accesses is for a patient's own account",
        )),
    }
}

/// Every access to `own`'s records by someone other than the caller, oldest first; the
/// reading itself is recorded first (`accounting`), and nothing is returned if it cannot be.
pub(crate) async fn accesses_of(
    state: &AppState,
    caller: &Caller,
    origin: crate::audit::Origin,
    own: &str,
) -> Result<Vec<phivault_audit::AuditEvent>, ApiError> {
    let mut event = crate::audit::caller_event(state, caller, origin, "accounting", Outcome::Success);
    event.patient_ids.push(own.to_owned());
    crate::audit::write(state, &event).await?;
    let query = AuditQuery { patient_id: Some(own.to_owned()), ..AuditQuery::default() };
    let found = phivault_audit::search(state.audit.store().as_ref(), &query, usize::MAX).await.map_err(unavailable)?;
    Ok(found
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| is_record_access(&e.action) && e.user_id != caller.principal.user_id)
        .collect())
}

/// `GET /access/accounting`: for a patient's own account, every access to their records by
/// someone else: when, what, who (account id and roles), the outcome, and why (the
/// policies that allowed or refused it).
pub async fn accounting(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientIp>>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let own = own_patient(&caller)?;
    let origin = crate::audit::Origin::of(&headers, client.as_deref(), request_id.as_deref());
    let accesses: Vec<Value> = accesses_of(&state, &caller, origin, &own)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "time": format_instant(e.time_ms),
                "action": e.action,
                "outcome": e.outcome,
                "user": e.user_id,
                "roles": e.roles,
                "app": e.client_id,
                "why": e.policies,
            })
        })
        .collect();
    Ok(Json(json!({"patient": own, "accesses": accesses})).into_response())
}
