//! `_elements` and `_summary=text|data`: a response carrying only some elements of each
//! resource, marked SUBSETTED so that nobody mistakes it for the whole record (and writes
//! it back as one).

use serde_json::{Map, Value, json};

use crate::FhirError;

/// What of each resource a response carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Subset {
    /// The whole resource.
    #[default]
    All,
    /// `_elements`: these top-level elements (and `id`, `meta`).
    Elements(Vec<String>),
    /// `_summary=text`: `id`, `meta` and the narrative.
    Text,
    /// `_summary=data`: everything but the narrative.
    Data,
}

/// Reads `_elements` and `_summary` from query pairs. `_summary=true` is not supported (it
/// needs R4's summary flags per element) and is refused rather than answered in full.
pub fn parse_subset(pairs: &[(String, String)]) -> Result<Subset, FhirError> {
    let mut subset = Subset::All;
    for (key, value) in pairs {
        match key.as_str() {
            "_elements" => {
                let names: Vec<String> = value.split(',').map(|n| n.trim().to_owned()).collect();
                let valid = |n: &str| {
                    let bare = n.strip_suffix("[x]").unwrap_or(n);
                    bare.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                        && bare.chars().all(|c| c.is_ascii_alphanumeric())
                };
                if names.iter().any(|n| !valid(n)) {
                    return Err(FhirError::invalid("_elements must list element names such as name,birthDate"));
                }
                subset = Subset::Elements(names);
            }
            "_summary" => {
                subset = match value.as_str() {
                    "text" => Subset::Text,
                    "data" => Subset::Data,
                    "false" | "count" => subset,
                    "true" => {
                        return Err(FhirError::new(
                            crate::IssueType::NotSupported,
                            "_summary=true is not supported; use _elements to name the elements wanted",
                        ));
                    }
                    _ => return Err(FhirError::invalid("_summary must be true, false, text, data or count")),
                };
            }
            _ => {}
        }
    }
    Ok(subset)
}

/// Applies `subset` to one resource.
pub fn apply_subset(resource: &mut Value, subset: &Subset) {
    let Value::Object(map) = resource else { return };
    let keep = |name: &str, map: &Map<String, Value>| -> bool {
        match subset {
            Subset::All => true,
            Subset::Data => name != "text",
            Subset::Text => matches!(name, "resourceType" | "id" | "meta" | "text"),
            Subset::Elements(names) => {
                matches!(name, "resourceType" | "id" | "meta")
                    || names.iter().any(|n| match n.strip_suffix("[x]") {
                        // `value[x]` names every choice: valueQuantity, valueString, …
                        Some(stem) => name
                            .strip_prefix(stem)
                            .is_some_and(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_uppercase())),
                        None => n == name,
                    })
                    || (name.starts_with('_') && map.contains_key(&name[1..]) && names.iter().any(|n| n == &name[1..]))
            }
        }
    };
    if matches!(subset, Subset::All) {
        return;
    }
    let before = map.len();
    let snapshot = map.clone();
    map.retain(|name, _| keep(name, &snapshot));
    if map.len() < before {
        let meta = map.entry("meta").or_insert_with(|| json!({}));
        if let Value::Object(meta) = meta {
            let tags = meta.entry("tag").or_insert_with(|| json!([]));
            if let Value::Array(tags) = tags {
                tags.push(
                    json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> Value {
        json!({"resourceType": "Patient", "id": "p1", "meta": {"versionId": "1"},
            "text": {"status": "generated", "div": "<div/>"}, "name": [{"family": "Duck"}],
            "birthDate": "1937-04-17", "_birthDate": {"extension": []}, "gender": "male"})
    }

    #[test]
    fn elements_keep_what_was_named_and_mark_the_rest_missing() {
        let mut p = patient();
        apply_subset(&mut p, &Subset::Elements(vec!["name".into(), "birthDate".into()]));
        let keys: Vec<&str> = p.as_object().expect("obj").keys().map(String::as_str).collect();
        assert_eq!(keys, ["resourceType", "id", "meta", "name", "birthDate", "_birthDate"]);
        assert_eq!(p["meta"]["tag"][0]["code"], "SUBSETTED");
        let mut o = json!({"resourceType": "Observation", "id": "o", "valueQuantity": {"value": 1}, "status": "final"});
        apply_subset(&mut o, &Subset::Elements(vec!["value[x]".into()]));
        assert!(o.get("valueQuantity").is_some() && o.get("status").is_none());
    }

    #[test]
    fn summaries_and_refusals() {
        let mut p = patient();
        apply_subset(&mut p, &Subset::Data);
        assert!(p.get("text").is_none() && p.get("name").is_some());
        let mut p = patient();
        apply_subset(&mut p, &Subset::Text);
        assert!(p.get("text").is_some() && p.get("name").is_none());
        let mut whole = patient();
        apply_subset(&mut whole, &Subset::All);
        assert_eq!(whole, patient(), "untouched, untagged");
        let q = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert!(parse_subset(&q("_summary", "true")).is_err());
        assert!(parse_subset(&q("_elements", "name,Daffy Duck")).is_err());
        assert_eq!(parse_subset(&q("_summary", "data")).expect("data"), Subset::Data);
    }
}
