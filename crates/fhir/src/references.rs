use serde_json::Value;

use crate::{is_resource_type, is_valid_id};

/// Calls `f` on every `reference` string in the resource (at any depth, including
/// contained resources), letting it rewrite the value in place.
pub fn for_each_reference_mut<E>(value: &mut Value, f: &mut impl FnMut(&mut String) -> Result<(), E>) -> Result<(), E> {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(s) if key == "reference" => f(s)?,
                    _ => for_each_reference_mut(child, f)?,
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                for_each_reference_mut(item, f)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads `Type/id`, `Type/id/_history/n` or an absolute URL ending in one of those into
/// `(type, id)`. Returns `None` for contained (`#x`), `urn:` and conditional references.
pub fn parse_relative_reference(reference: &str) -> Option<(&str, &str)> {
    if reference.starts_with('#') || reference.starts_with("urn:") || reference.contains('?') {
        return None;
    }
    let trimmed = match reference.find("/_history/") {
        Some(pos) => &reference[..pos],
        None => reference,
    };
    let mut parts = trimmed.rsplit('/');
    let id = parts.next()?;
    let resource_type = parts.next()?;
    (is_resource_type(resource_type) && is_valid_id(id)).then_some((resource_type, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_reference_forms() {
        assert_eq!(parse_relative_reference("Patient/123"), Some(("Patient", "123")));
        assert_eq!(parse_relative_reference("Patient/123/_history/2"), Some(("Patient", "123")));
        assert_eq!(parse_relative_reference("https://x.example/fhir/Patient/a-1"), Some(("Patient", "a-1")));
        assert_eq!(parse_relative_reference("#contained"), None);
        assert_eq!(parse_relative_reference("urn:uuid:1234"), None);
        assert_eq!(parse_relative_reference("Practitioner?identifier=x|1"), None);
        assert_eq!(parse_relative_reference("Nonsense/1"), None);
    }

    #[test]
    fn rewrites_nested_references() {
        let mut v =
            json!({"subject": {"reference": "urn:uuid:a"}, "x": [{"y": {"reference": "urn:uuid:b"}}], "reference": 5});
        let mut seen = Vec::new();
        for_each_reference_mut::<()>(&mut v, &mut |r| {
            seen.push(r.clone());
            *r = format!("Patient/{}", &r[9..]);
            Ok(())
        })
        .expect("no error");
        assert_eq!(seen, ["urn:uuid:a", "urn:uuid:b"]);
        assert_eq!(v["x"][0]["y"]["reference"], "Patient/b");
    }
}
