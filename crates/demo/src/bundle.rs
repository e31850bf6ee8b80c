//! Assembles one transaction Bundle per fake patient.

use serde_json::{Value, json};

use crate::codes::{ALLERGIES, CONDITIONS, ENCOUNTER_TYPES, MEDICATIONS, OBSERVATIONS, PROCEDURES, VACCINES};
use crate::people::Person;
use crate::resources as res;

/// A clinical time in 2024 (UTC). Kept within one day, so no calendar arithmetic is needed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
}

impl Stamp {
    /// Deterministic time of encounter `k` of patient `p`.
    fn for_encounter(p: u32, k: u32) -> Self {
        Self {
            month: 1 + 4 * k + p % 4,
            day: 1 + (p * 3 + k * 7) % 28,
            hour: 8 + (p + k) % 8,
            minute: 15 * ((p + k) % 4),
        }
    }

    /// The same day, `minutes` later (callers keep this before midnight).
    pub fn plus_minutes(self, minutes: u32) -> Self {
        let total = self.hour * 60 + self.minute + minutes;
        Self { hour: total / 60, minute: total % 60, ..self }
    }

    /// ISO 8601 dateTime with a UTC designator, e.g. "2024-03-01T09:30:00Z".
    pub fn iso(self) -> String {
        format!("2024-{:02}-{:02}T{:02}:{:02}:00Z", self.month, self.day, self.hour, self.minute)
    }
}

/// Deterministic, well-formed (version 4 / RFC 4122 variant) UUID for resource `seq` of patient `p`.
pub(crate) fn uuid(p: u32, seq: u32) -> String {
    format!("00000000-0000-4000-8{p:03x}-{seq:012x}")
}

/// A transaction bundle under construction.
#[derive(Debug)]
struct Builder {
    patient_index: u32,
    entries: Vec<Value>,
}

impl Builder {
    /// Appends `resource` as a POST entry and returns its `urn:uuid:` full URL.
    fn add(&mut self, resource: Value) -> String {
        let seq = u32::try_from(self.entries.len()).expect("a demo bundle has few entries");
        let full_url = format!("urn:uuid:{}", uuid(self.patient_index, seq));
        let resource_type = resource["resourceType"].as_str().expect("every resource has a resourceType").to_owned();
        self.entries.push(json!({
            "fullUrl": full_url,
            "resource": resource,
            "request": { "method": "POST", "url": resource_type },
        }));
        full_url
    }
}

/// Builds the transaction bundle for patient number `p` (0-based) with demographics `person`.
pub(crate) fn patient_bundle(p: u32, person: &Person) -> Value {
    let mut b = Builder { patient_index: p, entries: Vec::new() };
    let patient = b.add(res::patient(person));

    let encounter_count = 2 + p % 2;
    let encounters: Vec<(String, Stamp)> = (0..encounter_count)
        .map(|k| {
            let start = Stamp::for_encounter(p, k);
            let kind = ENCOUNTER_TYPES[(k as usize) % ENCOUNTER_TYPES.len()];
            (b.add(res::encounter(&patient, kind, start, start.plus_minutes(45))), start)
        })
        .collect();
    let encounter_at = |i: u32| &encounters[(i % encounter_count) as usize];

    for i in 0..4 + p % 3 {
        let kind = &OBSERVATIONS[((p + i) as usize) % OBSERVATIONS.len()];
        let offset = (p * 37 + i * 11) % kind.spread_tenths.max(1);
        let (enc, start) = encounter_at(i);
        b.add(res::observation(&patient, enc, kind, kind.base_tenths + offset, start.plus_minutes(10)));
    }

    let condition_count = 1 + (p / 2) % 2;
    let conditions: Vec<&str> = (0..condition_count)
        .map(|j| {
            let code = CONDITIONS[((p + 3 * j) as usize) % CONDITIONS.len()];
            let onset = format!("{}-{:02}-15T00:00:00Z", 2020 + (p + j) % 4, 1 + (p * 5 + j) % 12);
            b.add(res::condition(&patient, code, &onset));
            code.1
        })
        .collect();

    let last = encounters.last().expect("every patient has encounters");
    let medications: Vec<&str> = (0..1 + (p + 1) % 2)
        .map(|j| {
            let med = MEDICATIONS[((2 * p + j) as usize) % MEDICATIONS.len()];
            b.add(res::medication_request(&patient, &last.0, med, last.1.plus_minutes(30)));
            med.1
        })
        .collect();

    let (first_enc, first_start) = encounter_at(0);
    b.add(res::allergy(&patient, ALLERGIES[(p as usize) % ALLERGIES.len()], first_start.plus_minutes(5)));
    b.add(res::procedure(
        &patient,
        first_enc,
        PROCEDURES[(p as usize) % PROCEDURES.len()],
        first_start.plus_minutes(20),
    ));
    let (vax_enc, vax_start) = encounter_at(1);
    b.add(res::immunization(&patient, vax_enc, VACCINES[(p as usize) % VACCINES.len()], vax_start.plus_minutes(25)));

    let note = clinical_note(person, &conditions, &medications);
    b.add(res::document_reference(&patient, &last.0, &note, last.1.plus_minutes(40)));

    json!({ "resourceType": "Bundle", "type": "transaction", "entry": b.entries })
}

/// A short free-text H&P note that leaks the patient's name, MRN, birth date, phone and street,
/// exactly as real notes do; a de-identification pass must scrub these.
pub(crate) fn clinical_note(person: &Person, conditions: &[&str], medications: &[&str]) -> String {
    let name = person.full_name();
    format!(
        "HISTORY AND PHYSICAL (FICTIONAL DEMO PATIENT - NOT A REAL PERSON)\n\
         Patient: {name}    MRN: {mrn}    DOB: {dob}\n\
         Contact: {phone}; lives at {street}, Toontown.\n\
         Chief complaint: routine follow-up.\n\
         History: {name} returns for follow-up of {problems}. Reports feeling well overall.\n\
         Medications: {meds}.\n\
         Plan: continue current regimen; recheck in 3 months. Call {phone} with lab results.\n",
        mrn = person.mrn,
        dob = person.birth_us(),
        phone = person.phone,
        street = person.street,
        problems = conditions.iter().map(|c| strip_semantic_tag(c)).collect::<Vec<_>>().join("; "),
        meds = medications.join("; "),
    )
}

/// "Asthma (disorder)" -> "Asthma": SNOMED fully specified names read oddly in prose.
fn strip_semantic_tag(display: &str) -> &str {
    display.rsplit_once(" (").map_or(display, |(head, _)| head)
}
