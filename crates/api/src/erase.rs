//! `POST /access/erase` `{"patient": "<id>"}`: crypto-shreds a patient's records, when the
//! policies allow this user to erase (by default the privacy officer, with a second factor
//! used in the last 15 minutes) and every record is past its retention period. Audited as
//! `erase` with the patient, whether it happened or not.
//!
//! Safeguards: 45 CFR 164.310(d)(2)(i) disposal; 164.316(b)(2)(i) retention.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use phivault_audit::{Outcome, clip};
use phivault_fhir::IssueType;
use phivault_service::RecordError;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::auth::gate::{ScopeReach, accessor};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::middleware::RequestId;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EraseBody {
    patient: String,
}

/// The handler.
pub async fn erase(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientIp>>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<Json<EraseBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    if caller.principal.scopes.is_some() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, "erasure is not delegated to apps"));
    }
    let Json(body) = body.map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, "send {\"patient\": \"<id>\"} as JSON")
    })?;
    let origin = crate::audit::Origin::of(&headers, client.as_deref(), request_id.as_deref());
    let mut who = accessor(&state, &caller, client.as_deref().map(|c| c.0), ScopeReach::Unnarrowed);
    origin.onto(&mut who);
    // An erasure that happens commits its entry with the key's destruction; a refused or
    // failed one is recorded here.
    let result = state.records.erase_patient(&who, &body.patient).await;
    if !who.trail.recorded() {
        let (outcome, policies) = match &result {
            Ok(granted) => (Outcome::Success, granted.policy_ids.clone()),
            Err(RecordError::Forbidden { policy_ids }) => (Outcome::Denied, policy_ids.clone()),
            Err(_) => (Outcome::Failure, Vec::new()),
        };
        let mut event = crate::audit::caller_event(&state, &caller, origin, "erase", outcome);
        event.policies = policies;
        event.patient_ids.push(clip(&body.patient, 64));
        event.target = Some(format!("Patient/{}", clip(&body.patient, 64)));
        crate::audit::write(&state, &event).await?;
    }
    let destroyed = result?.value;
    Ok(Json(json!({"patient": body.patient, "erased": true, "key_destroyed_now": destroyed})).into_response())
}
