use serde_json::Value;

use crate::parse_relative_reference;

/// Elements that place a resource in a patient's compartment, in the order checked.
/// They cover the R4 Patient compartment for the resource types phivault sees in practice
/// (clinical, financial and provenance records).
const PATIENT_LINKS: [&str; 5] = ["patient", "subject", "beneficiary", "individual", "target"];

/// The id of the patient whose compartment the resource belongs to, if any: the Patient's
/// own id, or the first `Patient/...` reference among the linking elements.
pub fn patient_compartment(resource_type: &str, id: &str, resource: &Value) -> Option<String> {
    if resource_type == "Patient" {
        return Some(id.to_owned());
    }
    PATIENT_LINKS.iter().filter_map(|link| resource.get(*link)).find_map(first_patient_ref)
}

fn first_patient_ref(value: &Value) -> Option<String> {
    match value {
        Value::Array(items) => items.iter().find_map(first_patient_ref),
        Value::Object(map) => {
            let reference = map.get("reference")?.as_str()?;
            match parse_relative_reference(reference)? {
                ("Patient", id) => Some(id.to_owned()),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_patient_through_linking_elements() {
        assert_eq!(patient_compartment("Patient", "p1", &json!({})), Some("p1".into()));
        let obs = json!({"subject": {"reference": "Patient/p2"}});
        assert_eq!(patient_compartment("Observation", "o", &obs), Some("p2".into()));
        let imm = json!({"patient": {"reference": "Patient/p3"}});
        assert_eq!(patient_compartment("Immunization", "i", &imm), Some("p3".into()));
        let prov = json!({"target": [{"reference": "Encounter/e"}, {"reference": "Patient/p4"}]});
        assert_eq!(patient_compartment("Provenance", "v", &prov), Some("p4".into()));
        let group_subject = json!({"subject": {"reference": "Group/g"}});
        assert_eq!(patient_compartment("Observation", "o", &group_subject), None);
        assert_eq!(patient_compartment("Organization", "org", &json!({"name": "x"})), None);
    }
}
