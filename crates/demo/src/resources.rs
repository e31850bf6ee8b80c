//! Builders for the individual FHIR R4 resources of a demo bundle.
//!
//! `patient` and `enc` arguments are `urn:uuid:` full URLs of entries in the same bundle.

use serde_json::{Value, json};

use crate::base64;
use crate::bundle::Stamp;
use crate::codes::{
    ACT_CODE, ALLERGY_CLINICAL, ALLERGY_VER, CONDITION_CATEGORY, CONDITION_CLINICAL, CONDITION_VER, CVX, Coded,
    DOC_CATEGORY, ID_TYPE, LOINC, OBS_CATEGORY, ObsKind, RXNORM, SNOMED, UCUM,
};
use crate::people::{CITY, MRN_SYSTEM, POSTAL_CODE, Person, SSN_SYSTEM, STATE};

fn reference(url: &str) -> Value {
    json!({ "reference": url })
}

fn concept(system: &str, (code, display): (&str, &str)) -> Value {
    json!({ "coding": [{ "system": system, "code": code, "display": display }], "text": display })
}

fn status_concept(system: &str, code: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code }] })
}

/// The Patient resource with identifiers, name, telecom and address.
pub(crate) fn patient(person: &Person) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [
            {
                "use": "usual",
                "type": concept(ID_TYPE, ("MR", "Medical record number")),
                "system": MRN_SYSTEM,
                "value": person.mrn,
            },
            {
                "use": "official",
                "type": concept(ID_TYPE, ("SS", "Social Security number")),
                "system": SSN_SYSTEM,
                "value": person.ssn,
            },
        ],
        "active": true,
        "name": [{ "use": "official", "family": person.family, "given": person.given }],
        "telecom": [
            { "system": "phone", "value": person.phone, "use": "home" },
            { "system": "email", "value": person.email },
        ],
        "gender": person.gender,
        "birthDate": person.birth_iso(),
        "address": [{
            "use": "home",
            "line": [person.street],
            "city": CITY,
            "state": STATE,
            "postalCode": POSTAL_CODE,
            "country": "US",
        }],
    })
}

/// A finished ambulatory Encounter.
pub(crate) fn encounter(patient: &str, kind: Coded, start: Stamp, end: Stamp) -> Value {
    json!({
        "resourceType": "Encounter",
        "status": "finished",
        "class": { "system": ACT_CODE, "code": "AMB", "display": "ambulatory" },
        "type": [concept(SNOMED, kind)],
        "subject": reference(patient),
        "period": { "start": start.iso(), "end": end.iso() },
    })
}

/// A final vital-sign or laboratory Observation; `value_tenths` is in tenths of the unit.
pub(crate) fn observation(patient: &str, enc: &str, kind: &ObsKind, value_tenths: u32, at: Stamp) -> Value {
    let value = if kind.decimal { json!(f64::from(value_tenths) / 10.0) } else { json!(value_tenths / 10) };
    let category_display = if kind.category == "laboratory" { "Laboratory" } else { "Vital Signs" };
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [concept(OBS_CATEGORY, (kind.category, category_display))],
        "code": concept(LOINC, (kind.loinc, kind.display)),
        "subject": reference(patient),
        "encounter": reference(enc),
        "effectiveDateTime": at.iso(),
        "valueQuantity": { "value": value, "unit": kind.unit, "system": UCUM, "code": kind.unit },
    })
}

/// An active, confirmed problem-list Condition.
pub(crate) fn condition(patient: &str, code: Coded, onset: &str) -> Value {
    json!({
        "resourceType": "Condition",
        "clinicalStatus": status_concept(CONDITION_CLINICAL, "active"),
        "verificationStatus": status_concept(CONDITION_VER, "confirmed"),
        "category": [concept(CONDITION_CATEGORY, ("problem-list-item", "Problem List Item"))],
        "code": concept(SNOMED, code),
        "subject": reference(patient),
        "onsetDateTime": onset,
    })
}

/// An active MedicationRequest (order) for an RxNorm drug.
pub(crate) fn medication_request(
    patient: &str,
    enc: &str,
    (code, display, dosage): (&str, &str, &str),
    at: Stamp,
) -> Value {
    json!({
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": concept(RXNORM, (code, display)),
        "subject": reference(patient),
        "encounter": reference(enc),
        "authoredOn": at.iso(),
        "dosageInstruction": [{ "text": dosage }],
    })
}

/// An active, confirmed AllergyIntolerance.
pub(crate) fn allergy(patient: &str, (code, display, category): (&str, &str, &str), at: Stamp) -> Value {
    json!({
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": status_concept(ALLERGY_CLINICAL, "active"),
        "verificationStatus": status_concept(ALLERGY_VER, "confirmed"),
        "type": "allergy",
        "category": [category],
        "criticality": "low",
        "code": concept(SNOMED, (code, display)),
        "patient": reference(patient),
        "recordedDate": at.iso(),
    })
}

/// A completed Procedure.
pub(crate) fn procedure(patient: &str, enc: &str, code: Coded, at: Stamp) -> Value {
    json!({
        "resourceType": "Procedure",
        "status": "completed",
        "code": concept(SNOMED, code),
        "subject": reference(patient),
        "encounter": reference(enc),
        "performedDateTime": at.iso(),
    })
}

/// A completed Immunization with a CVX vaccine code.
pub(crate) fn immunization(patient: &str, enc: &str, vaccine: Coded, at: Stamp) -> Value {
    json!({
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": concept(CVX, vaccine),
        "patient": reference(patient),
        "encounter": reference(enc),
        "occurrenceDateTime": at.iso(),
        "primarySource": true,
    })
}

/// A current H&P DocumentReference whose attachment holds `note` as base64 text.
pub(crate) fn document_reference(patient: &str, enc: &str, note: &str, at: Stamp) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": concept(LOINC, ("34117-2", "History and physical note")),
        "category": [concept(DOC_CATEGORY, ("clinical-note", "Clinical Note"))],
        "subject": reference(patient),
        "date": at.iso(),
        "content": [{
            "attachment": {
                "contentType": "text/plain",
                "language": "en-US",
                "data": base64::encode(note.as_bytes()),
                "title": "History and physical",
                "creation": at.iso(),
            },
        }],
        "context": { "encounter": [reference(enc)] },
    })
}
