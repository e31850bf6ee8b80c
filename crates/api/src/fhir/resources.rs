//! create, read, vread, update.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use phivault_fhir::{FhirError, IssueType, parse_query_string, parse_version_etag};
use phivault_service::access::Accessor;

use super::response::{known_type, resource_response, wants_minimal};
use crate::AppState;
use crate::body::FhirBody;
use crate::error::ApiError;

/// `POST /fhir/{type}`: create, or conditional create with `If-None-Exist`.
pub async fn create(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<Response, ApiError> {
    known_type(&resource_type)?;
    let condition = headers
        .get("if-none-exist")
        .map(|v| v.to_str().map(parse_query_string))
        .transpose()
        .map_err(|_| FhirError::invalid("If-None-Exist is not a valid query"))?;
    let granted = state.records.create(&accessor, &resource_type, body, condition.as_deref()).await?;
    let outcome = granted.value;
    let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    let mut response =
        resource_response(status, &outcome.resource, &state.config.base_url, outcome.created, wants_minimal(&headers));
    super::response::decided(&mut response, granted.policy_ids);
    Ok(response)
}

/// `GET /fhir/{type}/{id}`.
pub async fn read(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    known_type(&resource_type)?;
    let subset = phivault_fhir::parse_subset(&phivault_fhir::parse_query_string(query.as_deref().unwrap_or("")))?;
    // Decided (and recorded) as any read first: a 304 is only ever an answer about a
    // record the caller may read.
    let mut granted = state.records.read(&accessor, &resource_type, &id, None).await?;
    // Only for the whole resource: the tag is the version's, so a trimmed copy (`_elements`,
    // `_summary`) must never be confirmed as current for another trimming.
    if matches!(subset, phivault_fhir::Subset::All) && super::response::not_modified(&headers, &granted.value) {
        let mut response =
            resource_response(StatusCode::NOT_MODIFIED, &granted.value, &state.config.base_url, false, true);
        super::response::decided(&mut response, granted.policy_ids);
        return Ok(response);
    }
    phivault_fhir::apply_subset(&mut granted.value.body, &subset);
    let mut response = resource_response(StatusCode::OK, &granted.value, &state.config.base_url, false, false);
    super::response::decided(&mut response, granted.policy_ids);
    Ok(response)
}

/// `GET /fhir/{type}/{id}/_history/{version}`.
pub async fn vread(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Path((resource_type, id, version)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    known_type(&resource_type)?;
    let version: i64 = version.parse().ok().filter(|v| *v >= 1).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, "the version must be a positive integer")
    })?;
    let granted = state.records.read(&accessor, &resource_type, &id, Some(version)).await?;
    let mut response = resource_response(StatusCode::OK, &granted.value, &state.config.base_url, false, false);
    super::response::decided(&mut response, granted.policy_ids);
    Ok(response)
}

/// `PUT /fhir/{type}/{id}`: update with optimistic locking through `If-Match: W/"n"`.
pub async fn update(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<Response, ApiError> {
    known_type(&resource_type)?;
    let if_match = match headers.get("if-match") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(parse_version_etag)
                .ok_or_else(|| FhirError::invalid("If-Match must be a version ETag such as W/\"2\""))?,
        ),
        None => None,
    };
    let granted = state.records.update(&accessor, &resource_type, &id, body, if_match).await?;
    let outcome = granted.value;
    let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    let mut response =
        resource_response(status, &outcome.resource, &state.config.base_url, outcome.created, wants_minimal(&headers));
    super::response::decided(&mut response, granted.policy_ids);
    Ok(response)
}
