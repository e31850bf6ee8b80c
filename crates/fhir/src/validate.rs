use serde_json::Value;

use crate::{FhirError, IssueType, is_resource_type, is_valid_id};

/// Elements of a few types whose value sets are checked (code element, allowed codes).
const REQUIRED_CODES: &[(&str, &str, &[&str])] = &[
    ("Patient", "gender", &["male", "female", "other", "unknown"]),
    ("Practitioner", "gender", &["male", "female", "other", "unknown"]),
    (
        "Observation",
        "status",
        &["registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"],
    ),
    (
        "Encounter",
        "status",
        &[
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    ),
];

/// Elements that must be JSON arrays when present (cardinality 0..*), for every type.
const ARRAY_ELEMENTS: &[&str] = &["contained", "extension", "modifierExtension"];

/// Further 0..* elements of the person types whose identifying values phivault indexes.
const PERSON_ARRAY_ELEMENTS: &[&str] = &["identifier", "name", "telecom", "address"];
const PERSON_TYPES: &[&str] = &["Patient", "Practitioner", "RelatedPerson", "Person"];

/// Checks the structure phivault relies on: a JSON object of the expected, known resource
/// type; a valid id that matches the URL on update; arrays where FHIR has lists; codes in
/// the value sets phivault enforces. Messages name elements, never their values.
pub fn validate_resource(body: &Value, expected_type: Option<&str>, url_id: Option<&str>) -> Result<(), FhirError> {
    let object = body.as_object().ok_or_else(|| {
        FhirError::new(IssueType::Structure, "the body must be a JSON object holding one FHIR resource")
    })?;
    let resource_type = object
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or_else(|| FhirError::new(IssueType::Required, "resourceType is missing"))?;
    if !is_resource_type(resource_type) {
        return Err(FhirError::new(IssueType::NotSupported, "resourceType is not a FHIR R4 resource type"));
    }
    if let Some(expected) = expected_type.filter(|e| *e != resource_type) {
        return Err(FhirError::invalid(format!("resourceType does not match the URL, which names {expected}")));
    }
    match (object.get("id"), url_id) {
        (Some(Value::String(id)), _) if !is_valid_id(id) => {
            return Err(FhirError::invalid("id is not a valid FHIR id"));
        }
        (Some(v), _) if !v.is_string() => return Err(FhirError::invalid("id must be a string")),
        (Some(Value::String(id)), Some(url)) if id != url => {
            return Err(FhirError::invalid("id in the body differs from the id in the URL"));
        }
        (None, Some(_)) => return Err(FhirError::new(IssueType::Required, "id is required in the body of an update")),
        _ => {}
    }
    // A subset (from `_elements` or `_summary`) stored as the record would erase what it
    // left out.
    let tags = object.get("meta").and_then(|m| m.get("tag")).and_then(Value::as_array);
    if tags.is_some_and(|tags| tags.iter().any(|t| t.get("code").and_then(Value::as_str) == Some("SUBSETTED"))) {
        return Err(FhirError::invalid(
            "the resource is a SUBSETTED view (from _elements or _summary); read it whole before writing it",
        ));
    }
    let person_elements = if PERSON_TYPES.contains(&resource_type) { PERSON_ARRAY_ELEMENTS } else { &[] };
    for element in ARRAY_ELEMENTS.iter().chain(person_elements) {
        if object.get(*element).is_some_and(|v| !v.is_array()) {
            return Err(FhirError::new(IssueType::Structure, format!("{resource_type}.{element} must be an array")));
        }
    }
    for (rtype, element, codes) in REQUIRED_CODES {
        if *rtype != resource_type {
            continue;
        }
        if let Some(value) = object.get(*element)
            && !value.as_str().is_some_and(|c| codes.contains(&c))
        {
            return Err(FhirError::new(
                IssueType::Value,
                format!("{resource_type}.{element} is not one of: {}", codes.join(", ")),
            ));
        }
    }
    if let Some(Value::Array(names)) = object.get("name")
        && resource_type == "Patient"
        && names.iter().any(|n| !n.is_object())
    {
        return Err(FhirError::new(IssueType::Structure, "Patient.name entries must be HumanName objects"));
    }
    check_references(body)
}

fn check_references(value: &Value) -> Result<(), FhirError> {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "reference" && child.as_str().is_none_or(|s| s.trim().is_empty()) {
                    return Err(FhirError::invalid("a Reference.reference is empty or not a string"));
                }
                check_references(child)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check_references),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_a_plain_patient() {
        let p = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Duck"}], "gender": "male"});
        assert!(validate_resource(&p, Some("Patient"), Some("p1")).is_ok());
        assert!(validate_resource(&p, Some("Patient"), None).is_ok());
    }

    #[test]
    fn refuses_bad_shapes_without_echoing_values() {
        let cases = [
            json!([1, 2]),
            json!({"name": []}),
            json!({"resourceType": "Patientz"}),
            json!({"resourceType": "Observation"}),
            json!({"resourceType": "Patient", "id": "../etc"}),
            json!({"resourceType": "Patient", "id": 5}),
            json!({"resourceType": "Patient", "gender": "Daffy"}),
            json!({"resourceType": "Patient", "name": {"family": "Duck"}}),
            json!({"resourceType": "Patient", "managingOrganization": {"reference": ""}}),
        ];
        for case in cases {
            let err = validate_resource(&case, Some("Patient"), None).expect_err("invalid");
            assert!(!err.message.contains("Daffy") && !err.message.contains("Duck"), "{}", err.message);
        }
    }

    #[test]
    fn update_id_must_match_url() {
        let p = json!({"resourceType": "Patient", "id": "p1"});
        assert!(validate_resource(&p, Some("Patient"), Some("p2")).is_err());
        let no_id = json!({"resourceType": "Patient"});
        assert!(validate_resource(&no_id, Some("Patient"), Some("p2")).is_err());
    }
}
