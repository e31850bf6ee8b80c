//! Search (GET and POST `_search`) and history, as Bundles with opaque page links.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use phivault_fhir::search::parse_search;
use phivault_fhir::{FhirError, IssueType, format_instant, operation_outcome, parse_query_string};
use phivault_service::StoredResource;
use phivault_service::access::Accessor;
use serde_json::{Value, json};

use super::response::{etag, fhir_json, known_type, wants_strict};
use crate::AppState;
use crate::error::ApiError;

const DEFAULT_HISTORY_COUNT: u64 = 50;
const MAX_HISTORY_COUNT: u64 = 500;

/// `GET /fhir/{type}?...`. Prefer `POST _search` so search values stay out of URLs.
pub async fn search_get(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = parse_query_string(query.as_deref().unwrap_or(""));
    run_search(&state, &accessor, &resource_type, &headers, pairs).await
}

/// `POST /fhir/{type}/_search` with a form body.
pub async fn search_post(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !mime.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueType::NotSupported,
            "send search parameters as application/x-www-form-urlencoded",
        ));
    }
    let text = std::str::from_utf8(&body).map_err(|_| FhirError::invalid("the form body is not UTF-8"))?;
    // R4: the URL's parameters and the body's together (URL first, so positions count
    // through the URL and then the body).
    let mut pairs = parse_query_string(query.as_deref().unwrap_or(""));
    pairs.extend(parse_query_string(text));
    run_search(&state, &accessor, &resource_type, &headers, pairs).await
}

fn page_token(pairs: &[(String, String)]) -> Option<&str> {
    pairs.iter().find(|(k, _)| k == "_page").map(|(_, v)| v.as_str())
}

pub(super) async fn run_search(
    state: &AppState,
    accessor: &Accessor,
    resource_type: &str,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    known_type(resource_type)?;
    let (pairs, offset) = match page_token(&pairs) {
        Some(token) => {
            let cursor = state.records.open_page_cursor(resource_type, token)?;
            (cursor.query, cursor.offset)
        }
        None => (pairs, 0),
    };
    let mut request = parse_search(resource_type, &pairs, wants_strict(headers))?;
    let subset = phivault_fhir::parse_subset(&pairs)?;
    // `_summary=count`: the total only, no resources.
    if pairs.iter().any(|(k, v)| k == "_summary" && v == "count") {
        request.count = 0;
    }
    // Under lenient handling the links repeat the search as performed: without what was
    // ignored. (Sealed cursors: search values never appear in a URL.)
    let applied: Vec<(String, String)> =
        pairs.iter().enumerate().filter(|(i, _)| !request.ignored.contains(&(i + 1))).map(|(_, p)| p.clone()).collect();
    let pairs = applied;
    let granted = state.records.search(accessor, resource_type, &request, offset).await?;
    let page = granted.value;
    let base = &state.config.base_url;
    let link = |offset: u64| -> Result<String, ApiError> {
        Ok(format!(
            "{base}/fhir/{resource_type}?_page={}",
            state.records.seal_page_cursor(resource_type, &pairs, offset)?
        ))
    };
    let mut links = vec![json!({"relation": "self", "url": link(offset)?})];
    if page.has_more {
        links.push(json!({"relation": "next", "url": link(offset + page.count)?}));
    }
    if offset > 0 {
        links.push(json!({"relation": "previous", "url": link(offset.saturating_sub(page.count.max(1)))?}));
    }
    let mut entries: Vec<Value> = page
        .resources
        .iter()
        .map(|r| {
            let mut body = r.body.clone();
            phivault_fhir::apply_subset(&mut body, &subset);
            json!({"fullUrl": format!("{base}/fhir/{}/{}", r.resource_type, r.id), "resource": body, "search": {"mode": "match"}})
        })
        .collect();
    entries.extend(page.included.iter().map(|r| {
        json!({"fullUrl": format!("{base}/fhir/{}/{}", r.resource_type, r.id), "resource": r.body, "search": {"mode": "include"}})
    }));
    if !request.ignored.is_empty() {
        let positions: Vec<String> = request.ignored.iter().map(ToString::to_string).collect();
        // Names of applied parameters are ours (known search parameters); an ignored
        // parameter's name is client text and may hold PHI: it is named by position only.
        let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.split(':').next().unwrap_or("")).collect();
        names.dedup();
        let note = format!(
            "ignored the query parameters at positions {}: not search parameters of {resource_type} (see /metadata); \
             applied: {}; the self link repeats the search as applied",
            positions.join(", "),
            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
        );
        entries.push(
            json!({"resource": operation_outcome("warning", "not-supported", &note), "search": {"mode": "outcome"}}),
        );
    }
    let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries});
    if let Some(total) = page.total {
        bundle["total"] = json!(total);
    }
    let mut response = fhir_json(StatusCode::OK, &bundle);
    super::response::decided(&mut response, granted.policy_ids);
    Ok(response)
}

/// `GET /fhir/{type}/_history`.
pub async fn type_history(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    history(&state, &accessor, &resource_type, None, query).await
}

/// `GET /fhir/{type}/{id}/_history`.
pub async fn instance_history(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    history(&state, &accessor, &resource_type, Some(&id), query).await
}

async fn history(
    state: &AppState,
    accessor: &Accessor,
    resource_type: &str,
    id: Option<&str>,
    query: Option<String>,
) -> Result<Response, ApiError> {
    known_type(resource_type)?;
    let target = match id {
        Some(id) => format!("{resource_type}/{id}/_history"),
        None => format!("{resource_type}/_history"),
    };
    let mut pairs = parse_query_string(query.as_deref().unwrap_or(""));
    let mut offset = 0;
    if let Some(token) = page_token(&pairs) {
        let cursor = state.records.open_page_cursor(&target, token)?;
        pairs = cursor.query;
        offset = cursor.offset;
    }
    let count = match pairs.iter().find(|(k, _)| k == "_count") {
        Some((_, v)) => v
            .parse::<u64>()
            .map_err(|_| FhirError::invalid("_count must be a non-negative integer"))?
            .min(MAX_HISTORY_COUNT),
        None => DEFAULT_HISTORY_COUNT,
    };
    let window = phivault_fhir::search::history_window(&pairs)?;
    // `_summary` as on a search (`_elements` is refused by the window above).
    let subset = phivault_fhir::parse_subset(&pairs)?;
    let granted = state.records.history(accessor, resource_type, id, &window, offset, count).await?;
    let page = granted.value;
    let base = &state.config.base_url;
    let mut links = Vec::new();
    if page.has_more {
        let token = state.records.seal_page_cursor(&target, &pairs, offset + count)?;
        links.push(json!({"relation": "next", "url": format!("{base}/fhir/{target}?_page={token}")}));
    }
    let entries: Vec<Value> = page
        .versions
        .iter()
        .map(|v| {
            let mut entry = history_entry(base, v);
            phivault_fhir::apply_subset(&mut entry["resource"], &subset);
            entry
        })
        .collect();
    let mut bundle = json!({"resourceType": "Bundle", "type": "history", "link": links, "entry": entries});
    if let Some(total) = page.total {
        bundle["total"] = json!(total);
    }
    let mut response = fhir_json(StatusCode::OK, &bundle);
    super::response::decided(&mut response, granted.policy_ids);
    Ok(response)
}

fn history_entry(base: &str, v: &StoredResource) -> Value {
    let (method, url, status) = if v.version == 1 {
        ("POST", v.resource_type.clone(), "201 Created")
    } else {
        ("PUT", format!("{}/{}", v.resource_type, v.id), "200 OK")
    };
    json!({
        "fullUrl": format!("{base}/fhir/{}/{}", v.resource_type, v.id),
        "resource": v.body,
        "request": {"method": method, "url": url},
        "response": {"status": status, "etag": etag(v.version), "lastModified": format_instant(v.last_updated_ms)}
    })
}
