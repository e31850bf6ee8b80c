//! `/fhir/{type}/{id}/{operation}`: `Group/{id}/$export`, `Patient/{id}/$everything`, and
//! the Patient compartment search `Patient/{id}/{type}`. Each runs on the guarded service,
//! with the same decisions, masks and audit entries as the API's other reads.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use phivault_fhir::IssueType;
use phivault_service::access::{Accessor, EverythingFilter};
use serde_json::{Value, json};

use super::export::{KickOffParameters, kick_off_group};
use super::response::{decided, fhir_json};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

pub async fn instance_operation(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Extension(caller): Extension<Caller>,
    Path((resource_type, id, operation)): Path<(String, String, String)>,
    headers: HeaderMap,
    KickOffParameters(parameters): KickOffParameters,
) -> Result<Response, ApiError> {
    match (resource_type.as_str(), operation.as_str()) {
        ("Group", "$export") => kick_off_group(state, accessor, caller, id, headers, parameters).await,
        ("Patient", "$everything") => everything(&state, &accessor, &id, &parameters).await,
        ("Patient", compartment_type) if phivault_fhir::patient_compartment_types().any(|t| t == compartment_type) => {
            if !phivault_fhir::is_valid_id(&id) {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, "invalid Patient id"));
            }
            if !phivault_fhir::search::search_param_names(compartment_type).iter().any(|(n, _)| *n == "patient") {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    IssueType::NotSupported,
                    format!(
                        "a Patient compartment search of {compartment_type} is not supported (no patient parameter)"
                    ),
                ));
            }
            let mut pairs = parameters;
            // After the client's own, so the positions an error names are theirs.
            pairs.push(("patient".to_owned(), id));
            super::search::run_search(&state, &accessor, compartment_type, &headers, pairs).await
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, IssueType::NotFound, "no such operation")),
    }
}

/// What `$everything` takes: `_type` (a comma-separated list, repeatable) and `_since`.
/// Anything else is refused by position, never ignored: a narrower answer than asked for
/// would mislead, and a wider one would disclose more than needed.
fn everything_filter(parameters: &[(String, String)]) -> Result<EverythingFilter, ApiError> {
    let invalid = |message: String| ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, message);
    let mut filter = EverythingFilter::default();
    for (position, (name, value)) in parameters.iter().enumerate() {
        match name.as_str() {
            "_type" => filter.types.get_or_insert_with(Vec::new).extend(value.split(',').map(|t| t.trim().to_owned())),
            "_since" if filter.since.is_none() => filter.since = Some(value.clone()),
            "_since" => return Err(invalid("_since is given more than once".to_owned())),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    IssueType::NotSupported,
                    format!(
                        "the parameter at position {} is not supported by $everything (supported: _type, _since)",
                        position + 1
                    ),
                ));
            }
        }
    }
    Ok(filter)
}

/// `Patient/{id}/$everything`: the Patient and every resource of its compartment the
/// caller may read, as one searchset Bundle, recorded as one `everything` entry. A record
/// larger than one answer carries is refused (by the service, before any entry says it was
/// shown) rather than cut short.
async fn everything(
    state: &AppState,
    accessor: &Accessor,
    id: &str,
    parameters: &[(String, String)],
) -> Result<Response, ApiError> {
    if !phivault_fhir::is_valid_id(id) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, "invalid Patient id"));
    }
    let filter = everything_filter(parameters)?;
    let granted = state.records.patient_everything(accessor, id, &filter).await?;
    let chart = granted.value;
    let base = &state.config.base_url;
    let entries: Vec<Value> = std::iter::once(&chart.patient)
        .chain(chart.sections.iter().flat_map(|s| s.resources.iter()))
        .map(|r| {
            json!({
                "fullUrl": format!("{base}/fhir/{}/{}", r.resource_type, r.id),
                "resource": r.body,
                "search": {"mode": "match"},
            })
        })
        .collect();
    // The self link names the operation, not its parameters (which could carry a date
    // worth keeping out of logs of URLs).
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": format!("{base}/fhir/Patient/{id}/$everything")}],
        "entry": entries,
    });
    let mut response = fhir_json(StatusCode::OK, &bundle);
    decided(&mut response, granted.policy_ids);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn everything_takes_type_and_since_and_refuses_the_rest_by_position() {
        let filter = everything_filter(&pairs(&[
            ("_type", "Observation, Condition"),
            ("_type", "Encounter"),
            ("_since", "2026"),
        ]))
        .expect("valid");
        assert_eq!(filter.types, Some(vec!["Observation".into(), "Condition".into(), "Encounter".into()]));
        assert_eq!(filter.since.as_deref(), Some("2026"));
        assert!(everything_filter(&[]).expect("none").types.is_none());
        for bad in [&[("_since", "2026"), ("_since", "2027")][..], &[("_type", "Observation"), ("name", "Daffy")][..]] {
            let error = everything_filter(&pairs(bad)).expect_err("refused");
            assert!(!format!("{error:?}").contains("Daffy"), "the client's text is not echoed");
        }
    }
}
