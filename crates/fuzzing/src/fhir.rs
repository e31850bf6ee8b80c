//! FHIR JSON resources and search query strings.

use phivault_fhir::search::{extract_index_entries, history_window, parse_search};
use phivault_fhir::{
    RESOURCE_TYPES, compartment_patients, is_valid_id, parse_date_range, parse_query_string, parse_version_etag,
    validate_resource,
};
use serde_json::Value;

/// A request body: JSON, then validation as the API does it, then what a valid resource
/// goes through on write (search index terms, compartment).
pub fn fhir_resource(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let declared = body.get("resourceType").and_then(Value::as_str).map(str::to_owned);
    let url_id = body.get("id").and_then(Value::as_str).map(str::to_owned);
    let valid = validate_resource(&body, None, None).is_ok();
    // Naming the type or the URL's id can only narrow what validates.
    if let Some(kind) = declared.as_deref() {
        assert!(validate_resource(&body, Some(kind), url_id.as_deref()).is_err() || valid);
    }
    if !valid {
        return;
    }
    let kind = declared.expect("a valid resource declares its type");
    assert!(RESOURCE_TYPES.contains(&kind.as_str()), "validated an unknown type");
    if let Some(id) = &url_id {
        assert!(is_valid_id(id), "validated an invalid id");
    }
    let _ = extract_index_entries(&kind, &body);
    for patient in compartment_patients(&kind, &body) {
        assert!(!patient.is_empty());
    }
}

/// A search or history query string. The first byte picks the resource type.
pub fn search_query(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(query) = std::str::from_utf8(rest) else { return };
    let kind = RESOURCE_TYPES[usize::from(selector) % RESOURCE_TYPES.len()];
    let pairs = parse_query_string(query);
    let strict = parse_search(kind, &pairs, true);
    let lenient = parse_search(kind, &pairs, false);
    // What strict handling accepts, lenient handling accepts too.
    assert!(strict.is_err() || lenient.is_ok(), "strict accepted what lenient refused");
    let _ = history_window(&pairs);
    for (_, value) in &pairs {
        if let Some(range) = parse_date_range(value) {
            assert!(range.lo <= range.hi, "a date range that ends before it starts");
        }
        let _ = parse_version_etag(value);
    }
}
