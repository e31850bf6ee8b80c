use serde_json::Value;

use crate::parse_relative_reference;

/// Elements that place a resource in a patient's compartment for types the table below
/// does not list, in the order checked.
const PATIENT_LINKS: [&str; 5] = ["patient", "subject", "beneficiary", "individual", "target"];

/// R4's Patient CompartmentDefinition, as element paths (through arrays) per resource type:
/// where a reference to the patient can sit. The first path that holds one files the record.
fn compartment_paths(resource_type: &str) -> Option<&'static [&'static str]> {
    Some(match resource_type {
        "Account" => &["subject"],
        "AdverseEvent" => &["subject"],
        "AllergyIntolerance" => &["patient", "recorder", "asserter"],
        "Appointment" => &["participant.actor"],
        "AppointmentResponse" => &["actor"],
        "Basic" => &["subject", "author"],
        "BodyStructure" => &["patient"],
        "CarePlan" => &["subject"],
        "CareTeam" => &["subject", "participant.member"],
        "ChargeItem" => &["subject"],
        "Claim" => &["patient", "payee.party"],
        "ClaimResponse" => &["patient"],
        "ClinicalImpression" => &["subject"],
        "Communication" => &["subject", "sender", "recipient"],
        "CommunicationRequest" => &["subject", "sender", "recipient", "requester"],
        "Composition" => &["subject", "author", "attester.party"],
        "Condition" => &["subject", "asserter"],
        "Consent" => &["patient"],
        "Coverage" => &["beneficiary", "policyHolder", "subscriber", "payor"],
        "CoverageEligibilityRequest" | "CoverageEligibilityResponse" => &["patient"],
        "DetectedIssue" => &["patient"],
        "DeviceRequest" => &["subject", "performer"],
        "DeviceUseStatement" => &["subject"],
        "DiagnosticReport" => &["subject"],
        "DocumentManifest" => &["subject", "author", "recipient"],
        "DocumentReference" => &["subject", "author"],
        "Encounter" => &["subject"],
        "EnrollmentRequest" => &["candidate"],
        "EpisodeOfCare" => &["patient"],
        "ExplanationOfBenefit" => &["patient", "payee.party"],
        "FamilyMemberHistory" => &["patient"],
        "Flag" => &["subject"],
        "Goal" => &["subject"],
        "ImagingStudy" => &["subject"],
        "Immunization" => &["patient"],
        "ImmunizationEvaluation" | "ImmunizationRecommendation" => &["patient"],
        "Invoice" => &["subject", "recipient"],
        "List" => &["subject", "source"],
        "MeasureReport" => &["subject"],
        "Media" => &["subject"],
        "MedicationAdministration" => &["subject", "performer.actor"],
        "MedicationDispense" => &["subject", "receiver"],
        "MedicationRequest" => &["subject"],
        "MedicationStatement" => &["subject"],
        "MolecularSequence" => &["patient"],
        "NutritionOrder" => &["patient"],
        "Observation" => &["subject", "performer"],
        "Procedure" => &["subject", "performer.actor"],
        "Provenance" => &["target"],
        "QuestionnaireResponse" => &["subject", "author"],
        "RelatedPerson" => &["patient"],
        "RequestGroup" => &["subject", "action.participant"],
        "ResearchSubject" => &["individual"],
        "RiskAssessment" => &["subject"],
        "Schedule" => &["actor"],
        "ServiceRequest" => &["subject", "performer"],
        "Specimen" => &["subject"],
        "SupplyDelivery" => &["patient"],
        "SupplyRequest" => &["deliverTo"],
        "VisionPrescription" => &["patient"],
        _ => return None,
    })
}

/// The resource types R4's Patient CompartmentDefinition places in a patient's compartment
/// (besides the Patient itself): what a patient's whole record is made of.
pub fn patient_compartment_types() -> impl Iterator<Item = &'static str> {
    crate::RESOURCE_TYPES.iter().copied().filter(|t| compartment_paths(t).is_some())
}

/// The id of the patient whose compartment the resource belongs to, if any: the Patient's
/// own id, or the first `Patient/...` reference along the type's compartment paths.
pub fn patient_compartment(resource_type: &str, id: &str, resource: &Value) -> Option<String> {
    if resource_type == "Patient" {
        return Some(id.to_owned());
    }
    compartment_patients(resource_type, resource).into_iter().next()
}

/// Every patient the resource's compartment elements name, in order, without repeats.
pub fn compartment_patients(resource_type: &str, resource: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut note = |value: &Value| {
        patient_refs(value, &mut |id| {
            if !found.iter().any(|f| f == id) {
                found.push(id.to_owned());
            }
        })
    };
    match compartment_paths(resource_type) {
        Some(paths) => {
            for path in paths {
                each_at(resource, path, &mut note);
            }
        }
        None => {
            for link in PATIENT_LINKS {
                if let Some(value) = resource.get(link) {
                    note(value);
                }
            }
        }
    }
    found
}

/// Refuses a resource that names more than one patient in its compartment elements, or
/// that names a patient in an element its type does not have in R4 (an Observation's
/// `patient`): a record is filed under one patient, and must say only that patient.
pub fn check_one_patient(resource_type: &str, resource: &Value) -> Result<(), crate::FhirError> {
    if resource_type == "Patient" || resource_type == "Group" {
        return Ok(());
    }
    if let Some(paths) = compartment_paths(resource_type) {
        for link in PATIENT_LINKS {
            let defined = paths.iter().any(|p| p.split('.').next() == Some(link));
            if !defined && resource.get(link).is_some() {
                let mut names_patient = false;
                patient_refs(&resource[link], &mut |_| names_patient = true);
                if names_patient {
                    return Err(crate::FhirError::invalid(format!(
                        "{resource_type} has no element `{link}` in FHIR R4; the patient belongs in {}",
                        paths[0]
                    )));
                }
            }
        }
    }
    if compartment_patients(resource_type, resource).len() > 1 {
        return Err(crate::FhirError::invalid(format!(
            "this {resource_type} names more than one patient; a record belongs to one patient's compartment"
        )));
    }
    Ok(())
}

/// Calls `each` with every value at `path` (dot-separated element names, through arrays).
fn each_at(value: &Value, path: &str, each: &mut dyn FnMut(&Value)) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| each_at(item, path, each)),
        Value::Object(map) => match path.split_once('.') {
            None => {
                if let Some(v) = map.get(path) {
                    each(v);
                }
            }
            Some((head, rest)) => {
                if let Some(v) = map.get(head) {
                    each_at(v, rest, each);
                }
            }
        },
        _ => {}
    }
}

/// Calls `each` with the id of every `Patient/...` reference in `value` (a Reference or a
/// list of them).
fn patient_refs(value: &Value, each: &mut dyn FnMut(&str)) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| patient_refs(item, each)),
        Value::Object(map) => {
            if let Some(reference) = map.get("reference").and_then(Value::as_str)
                && let Some(("Patient", id)) = parse_relative_reference(reference)
            {
                each(id);
            }
        }
        _ => {}
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
        // Appointments name their patient among the participants.
        let appt = json!({"participant": [{"actor": {"reference": "Practitioner/d"}}, {"actor": {"reference": "Patient/p5"}}]});
        assert_eq!(patient_compartment("Appointment", "a", &appt), Some("p5".into()));
        // An unknown type keeps the generic elements.
        assert_eq!(
            patient_compartment("Foo", "f", &json!({"patient": {"reference": "Patient/p6"}})),
            Some("p6".into())
        );
    }

    #[test]
    fn a_record_that_names_two_patients_or_a_non_r4_element_is_refused() {
        let two = json!({"subject": {"reference": "Patient/a"}, "performer": [{"reference": "Patient/b"}]});
        assert!(check_one_patient("Observation", &two).is_err());
        let smuggled = json!({"subject": {"reference": "Patient/a"}, "patient": {"reference": "Patient/b"}});
        let e = check_one_patient("Observation", &smuggled).expect_err("no Observation.patient in R4");
        assert!(e.message.contains("`patient`"), "{}", e.message);
        let self_reported = json!({"subject": {"reference": "Patient/a"}, "performer": [{"reference": "Patient/a"}]});
        assert!(check_one_patient("Observation", &self_reported).is_ok());
        let two_in_appt =
            json!({"participant": [{"actor": {"reference": "Patient/a"}}, {"actor": {"reference": "Patient/b"}}]});
        assert!(check_one_patient("Appointment", &two_in_appt).is_err());
        assert!(check_one_patient("Group", &json!({"member": [{"entity": {"reference": "Patient/a"}}]})).is_ok());
    }
}
