//! Building FHIR responses: resource bodies with ETag, Last-Modified and Location.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phivault_fhir::{IssueType, format_instant, is_resource_type};
use phivault_service::StoredResource;
use serde_json::Value;

use super::FHIR_JSON;
use crate::error::ApiError;

/// A FHIR JSON response.
pub fn fhir_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// `W/"n"` for version `n`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// HTTP-date of Unix milliseconds (RFC 7231 IMF-fixdate).
pub fn http_date(unix_ms: i64) -> String {
    let instant = format_instant(unix_ms);
    // Derive from the ISO form to avoid another date dependency.
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000)) else { return instant };
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[dt.weekday().number_days_from_monday() as usize],
        dt.day(),
        MONTHS[usize::from(u8::from(dt.month())) - 1],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Whether the client asked for `Prefer: return=minimal`.
pub fn wants_minimal(headers: &HeaderMap) -> bool {
    headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split([',', ';']).any(|p| p.trim() == "return=minimal"))
}

/// Whether unknown search parameters are refused: yes unless the client asked for
/// `Prefer: handling=lenient`. A search that silently drops a parameter returns more
/// records than were asked for, which for PHI is a leak and a clinical hazard.
pub fn wants_strict(headers: &HeaderMap) -> bool {
    !headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([',', ';']).any(|p| p.trim() == "handling=lenient"))
}

/// A resource response with its version headers.
pub fn resource_response(
    status: StatusCode,
    resource: &StoredResource,
    base_url: &str,
    location: bool,
    minimal: bool,
) -> Response {
    let mut response = if minimal { status.into_response() } else { fhir_json(status, &resource.body) };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag(resource.version)) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(resource.last_updated_ms)) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    if location {
        let url = format!("{base_url}/fhir/{}/{}/_history/{}", resource.resource_type, resource.id, resource.version);
        if let Ok(v) = HeaderValue::from_str(&url) {
            headers.insert(header::LOCATION, v);
        }
    }
    response
}

/// Whether a conditional read's validators say the client's copy is current (RFC 9110
/// §13.1.2, §13.1.3): `If-None-Match` (weak comparison; `*` matches any) when present,
/// else `If-Modified-Since` (whole seconds). A malformed date is ignored, as HTTP says.
pub fn not_modified(headers: &axum::http::HeaderMap, resource: &StoredResource) -> bool {
    if let Some(tags) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let current = resource.version.to_string();
        return tags
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"') == current);
    }
    let Some(since) = headers.get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()) else { return false };
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    match time::PrimitiveDateTime::parse(since.trim(), &format) {
        Ok(when) => resource.last_updated_ms.div_euclid(1000) <= when.assume_utc().unix_timestamp(),
        Err(_) => false,
    }
}

/// Refuses resource types that FHIR R4 does not define, as an unknown endpoint.
pub fn known_type(resource_type: &str) -> Result<(), ApiError> {
    if is_resource_type(resource_type) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, IssueType::NotSupported, "unknown resource type"))
    }
}

/// The policy id under which a break-glass grant opens a record.
const EMERGENCY_POLICY: &str = "emergency-access-reads-one-patient";

/// Marks a response a break-glass grant opened with `X-Phivault-Break-Glass: active`, so
/// every client can show the emergency banner the grant calls for. (The audit entry was
/// written by the operation itself, with these policies.)
pub fn decided(response: &mut Response, policy_ids: Vec<String>) {
    if policy_ids.iter().any(|id| id == EMERGENCY_POLICY) {
        response.headers_mut().insert("x-phivault-break-glass", HeaderValue::from_static("active"));
    }
}
