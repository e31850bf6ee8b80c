//! `POST /fhir`: batch and transaction Bundles.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phivault_fhir::{format_instant, operation_outcome};
use phivault_service::BundleKind;
use phivault_service::access::Accessor;
use serde_json::{Value, json};

use super::response::{etag, fhir_json};
use crate::AppState;
use crate::body::BundleBody;
use crate::error::ApiError;

/// Processes a batch (entries independent) or transaction (all or nothing) Bundle.
pub async fn process_bundle(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    BundleBody(body): BundleBody,
) -> Result<Response, ApiError> {
    let granted = state.records.process_bundle(&accessor, body).await?;
    let outcome = granted.value;
    let base = &state.config.base_url;
    let entries: Vec<Value> = outcome
        .entries
        .into_iter()
        .map(|entry| match entry {
            Ok(done) => {
                let r = &done.resource;
                json!({
                    "fullUrl": format!("{base}/fhir/{}/{}", r.resource_type, r.id),
                    "response": {
                        "status": if done.created { "201 Created" } else { "200 OK" },
                        "location": format!("{}/{}/_history/{}", r.resource_type, r.id, r.version),
                        "etag": etag(r.version),
                        "lastModified": format_instant(r.last_updated_ms)
                    }
                })
            }
            Err(e) => {
                let error = ApiError::from(e);
                json!({"response": {
                    "status": format!("{} {}", error.status.as_u16(), error.status.canonical_reason().unwrap_or("")),
                    "outcome": operation_outcome("error", error.code, &error.message)
                }})
            }
        })
        .collect();
    let kind = match outcome.kind {
        BundleKind::Batch => "batch-response",
        BundleKind::Transaction => "transaction-response",
    };
    let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": entries});
    let mut response = fhir_json(StatusCode::OK, &bundle).into_response();
    super::response::decided(&mut response, granted.policy_ids);
    Ok(response)
}
