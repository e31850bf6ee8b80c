//! Resource → index entries.

use serde_json::Value;

use super::normalize::{contact_value, prefix_term, text_words};
use super::params::{ParamKind, params_for};
use crate::date::{Precision, parse_date_range};
use crate::{FhirError, IssueType};

/// What a resource contributes to the search index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexEntries {
    /// `(parameter, term)`: exact-match terms, stored only as blind index hashes.
    pub terms: Vec<(&'static str, String)>,
    /// `(parameter, lo, hi)`: clinical date ranges in Unix seconds.
    pub dates: Vec<(&'static str, i64, i64)>,
}

/// Leaves reached by a dotted path, flattening arrays at every step.
fn leaves<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![root];
    for segment in path.split('.') {
        let mut next = Vec::new();
        for value in current {
            match value.get(segment) {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(v) => next.push(v),
                None => {}
            }
        }
        current = next;
    }
    current
        .into_iter()
        .flat_map(|v| if let Value::Array(items) = v { items.iter().collect() } else { vec![v] })
        .collect()
}

/// Computes every index entry of a resource. Fails when an indexed element holds a
/// malformed value (e.g. an impossible date), naming the element but not the value.
pub fn extract_index_entries(resource_type: &str, resource: &Value) -> Result<IndexEntries, FhirError> {
    let mut out = IndexEntries::default();
    for def in params_for(resource_type).filter(|d| d.is_indexed()) {
        for path in def.paths {
            for leaf in leaves(resource, path) {
                match def.kind {
                    ParamKind::Token => token_terms(def.name, leaf, &mut out.terms),
                    ParamKind::Text => text_terms(def.name, leaf, &mut out.terms),
                    ParamKind::Date => {
                        let (lo, hi) = date_or_period(leaf).ok_or_else(|| {
                            FhirError::new(
                                IssueType::Value,
                                format!("{resource_type}.{path} is not a valid date, dateTime or Period"),
                            )
                        })?;
                        out.dates.push((def.name, lo, hi));
                    }
                    ParamKind::BirthDate => {
                        let text = leaf.as_str().unwrap_or_default();
                        let terms = birth_date_terms(text).ok_or_else(|| {
                            FhirError::new(IssueType::Value, format!("{resource_type}.{path} is not a valid date"))
                        })?;
                        out.terms.extend(terms.into_iter().map(|t| (def.name, t)));
                    }
                    ParamKind::Patient => {}
                }
            }
        }
    }
    out.terms.sort();
    out.terms.dedup();
    Ok(out)
}

/// Blind terms of a birth date: `Y:yyyy`, and `M:yyyy-mm` and `D:yyyy-mm-dd` as precise as written.
pub(crate) fn birth_date_terms(text: &str) -> Option<Vec<String>> {
    let range = parse_date_range(text)?;
    if range.precision == Precision::Time {
        return None;
    }
    let mut terms = vec![format!("Y:{}", &text[..4])];
    if range.precision >= Precision::Month {
        terms.push(format!("M:{}", &text[..7]));
    }
    if range.precision >= Precision::Day {
        terms.push(format!("D:{}", &text[..10]));
    }
    Some(terms)
}

fn date_or_period(leaf: &Value) -> Option<(i64, i64)> {
    match leaf {
        Value::String(s) => parse_date_range(s).map(|r| (r.lo, r.hi)),
        Value::Object(period) => {
            let start = period.get("start").and_then(Value::as_str);
            let end = period.get("end").and_then(Value::as_str);
            let lo = match start {
                Some(s) => parse_date_range(s)?.lo,
                None => i64::MIN / 2,
            };
            let hi = match end {
                Some(e) => parse_date_range(e)?.hi,
                None => i64::MAX / 2,
            };
            (start.is_some() || end.is_some()).then_some((lo, hi))
        }
        _ => None,
    }
}

/// Adds the token forms of one coded value: `sc:system|code`, `c:code`, `s:system`, and
/// `ns:code` when no system is given.
pub(crate) fn push_token(param: &'static str, system: Option<&str>, code: &str, out: &mut Vec<(&'static str, String)>) {
    let code = code.trim();
    if code.is_empty() {
        return;
    }
    out.push((param, format!("c:{code}")));
    match system.map(str::trim).filter(|s| !s.is_empty()) {
        Some(system) => {
            out.push((param, format!("sc:{system}|{code}")));
            out.push((param, format!("s:{system}")));
        }
        None => out.push((param, format!("ns:{code}"))),
    }
}

fn token_terms(param: &'static str, leaf: &Value, out: &mut Vec<(&'static str, String)>) {
    match leaf {
        Value::String(code) => push_token(param, None, code, out),
        Value::Bool(b) => push_token(param, None, if *b { "true" } else { "false" }, out),
        Value::Object(map) => {
            if let Some(Value::Array(codings)) = map.get("coding") {
                for coding in codings {
                    token_terms(param, coding, out);
                }
            }
            // A Reference (`serviceProvider`, ...): its relative reference is the token.
            if let Some(reference) = map.get("reference").and_then(Value::as_str) {
                push_token(param, None, reference, out);
            }
            let system = map.get("system").and_then(Value::as_str);
            if let Some(code) = map.get("code").and_then(Value::as_str) {
                push_token(param, system, code, out);
            }
            if let Some(value) = map.get("value").and_then(Value::as_str) {
                // ContactPoint systems (phone, email) are words, not URIs: normalise the value.
                let is_contact = matches!(system, Some("phone" | "fax" | "email" | "pager" | "sms" | "url" | "other"));
                let value = if is_contact { contact_value(value) } else { value.to_owned() };
                push_token(param, system, &value, out);
            }
        }
        _ => {}
    }
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(map) => {
            for (key, child) in map {
                // `use` and `period` are not part of what a person calls the name.
                if key != "use" && key != "period" && key != "extension" {
                    collect_strings(child, out);
                }
            }
        }
        _ => {}
    }
}

fn text_terms(param: &'static str, leaf: &Value, out: &mut Vec<(&'static str, String)>) {
    let mut strings = Vec::new();
    collect_strings(leaf, &mut strings);
    for s in strings {
        out.push((param, format!("x:{}", s.trim())));
        for word in text_words(s) {
            let chars: Vec<char> = word.chars().collect();
            for len in 1..=chars.len().min(super::normalize::MAX_PREFIX) {
                out.push((param, prefix_term(&chars[..len].iter().collect::<String>())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn daffy() -> Value {
        json!({
            "resourceType": "Patient",
            "identifier": [{"system": "urn:mrn", "value": "123456789"}],
            "name": [{"use": "official", "family": "Duck", "given": ["Daffy", "Q"]}],
            "telecom": [{"system": "phone", "value": "555-0142"}, {"system": "email", "value": "Daffy@Example.org"}],
            "gender": "male",
            "birthDate": "1937-04-17"
        })
    }

    fn has(entries: &IndexEntries, param: &str, term: &str) -> bool {
        entries.terms.iter().any(|(p, t)| *p == param && t == term)
    }

    #[test]
    fn patient_terms() {
        let e = extract_index_entries("Patient", &daffy()).expect("valid");
        assert!(has(&e, "family", "p:d") && has(&e, "family", "p:duck"));
        assert!(!has(&e, "family", "p:daffy"), "given name not under family");
        assert!(has(&e, "name", "p:daffy") && has(&e, "name", "p:duck"));
        assert!(!has(&e, "name", "p:official"), "use is not part of the name");
        assert!(has(&e, "identifier", "sc:urn:mrn|123456789") && has(&e, "identifier", "c:123456789"));
        assert!(has(&e, "telecom", "sc:phone|5550142"));
        assert!(has(&e, "telecom", "sc:email|daffy@example.org"));
        assert!(!e.terms.iter().any(|(p, _)| *p == "phone" || *p == "email"), "aliases store no terms of their own");
        assert!(has(&e, "gender", "c:male"));
        for t in ["Y:1937", "M:1937-04", "D:1937-04-17"] {
            assert!(has(&e, "birthdate", t), "{t}");
        }
    }

    #[test]
    fn observation_terms_and_dates() {
        let obs = json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-03-01T09:30:00Z"
        });
        let e = extract_index_entries("Observation", &obs).expect("valid");
        assert!(has(&e, "code", "sc:http://loinc.org|8867-4"));
        assert!(has(&e, "status", "c:final"));
        assert_eq!(e.dates.len(), 1);
        assert_eq!(e.dates[0].0, "date");
    }

    #[test]
    fn bad_dates_are_refused_without_echoing_value() {
        let mut p = daffy();
        p["birthDate"] = json!("1937-02-30");
        let err = extract_index_entries("Patient", &p).expect_err("invalid");
        assert!(!err.message.contains("1937"), "{}", err.message);
        let obs = json!({"resourceType": "Observation", "effectiveDateTime": "yesterday"});
        assert!(extract_index_entries("Observation", &obs).is_err());
    }
}
