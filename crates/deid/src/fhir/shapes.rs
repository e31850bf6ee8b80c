//! Recognising FHIR datatypes by shape, and the small per-shape rules
//! the walk applies: the walk decides where to look, this file what a
//! thing is.

use serde_json::{Map, Value};

/// Units of an age in years (UCUM `a` and the spellings seen in the wild).
const YEAR_UNITS: &[&str] = &["a", "yr", "yrs", "year", "years", "y"];

/// A `ContactPoint` outside `telecom` (an extension's value, say).
pub(crate) fn is_contact_point(m: &Map<String, Value>) -> bool {
    matches!(
        m.get("system").and_then(Value::as_str),
        Some("phone" | "fax" | "email" | "pager" | "url" | "sms" | "other")
    ) && m.contains_key("value")
}

pub(crate) fn is_address(m: &Map<String, Value>) -> bool {
    ["line", "city", "postalCode", "district"].iter().any(|k| m.contains_key(*k))
}

/// A Quantity in years (an `Age`, or an age given as a plain quantity).
pub(crate) fn is_years(m: &Map<String, Value>) -> bool {
    let unit = |k: &str| {
        m.get(k).and_then(Value::as_str).is_some_and(|u| YEAR_UNITS.contains(&u.to_ascii_lowercase().as_str()))
    };
    m.get("value").is_some_and(Value::is_number) && (unit("unit") || unit("code"))
}

/// Ages over 89 become "90 or more" (item (C)).
pub(crate) fn cap_age(m: &Map<String, Value>) -> Map<String, Value> {
    let mut out = m.clone();
    if m.get("value").and_then(Value::as_f64).is_some_and(|v| v > 89.0) {
        out.insert("value".into(), Value::from(90));
        out.insert("comparator".into(), Value::String(">=".into()));
    }
    out
}

/// Whole-string URLs and IP addresses (items (N), (O)). Free text that
/// contains one is scrubbed instead, by the caller.
pub(crate) fn looks_like_url_or_ip(s: &str) -> bool {
    let s = s.trim();
    if s.contains("://") || s.starts_with("www.") {
        return !s.contains(char::is_whitespace);
    }
    s.parse::<std::net::IpAddr>().is_ok()
}

/// The id of the patient a resource belongs to: its own id for a
/// Patient, else the target of `subject`, `patient` or `beneficiary` when
/// it is a `Patient/` or `urn:uuid:` reference.
pub(crate) fn patient_id(map: &Map<String, Value>) -> Option<String> {
    if map.get("resourceType").and_then(Value::as_str) == Some("Patient") {
        return map.get("id").and_then(Value::as_str).map(str::to_string);
    }
    ["subject", "patient", "beneficiary"].iter().find_map(|k| {
        let r = map.get(*k)?.get("reference")?.as_str()?;
        r.strip_prefix("urn:uuid:")
            .or_else(|| r.rsplit_once("Patient/").map(|(_, id)| id.split('/').next().unwrap_or(id)))
            .map(str::to_string)
    })
}
