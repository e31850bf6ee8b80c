//! Obviously fake demo patients as FHIR R4 JSON.
//!
//! Used by the `phivault demo` command to seed a server, and by tests that check no plaintext
//! PHI reaches the database. Every patient is a cartoon character with reserved-for-fiction
//! phone numbers (555-01xx), never-issued SSNs (999-xx-xxxx), `example.org` mail and a made-up
//! MRN system. Output is fully deterministic: no randomness, no clock.

mod base64;
mod bundle;
mod codes;
mod people;
mod resources;

use serde_json::Value;

use crate::people::PEOPLE;

/// The start of the identifier system of the fake patients' MRNs (an OID arc no real
/// registry assigns), so tools can tell demo patients apart.
pub const DEMO_IDENTIFIER_SYSTEM_PREFIX: &str = "urn:oid:2.16.840.1.113883.3.9999";

/// One fake patient: a FHIR transaction Bundle (type "transaction") whose entries all use
/// `fullUrl: "urn:uuid:<uuid>"` and `request: {"method":"POST","url":"<ResourceType>"}`, with
/// references between entries written as that urn:uuid (e.g. Observation.subject.reference = "urn:uuid:...").
///
/// Returns one bundle per patient (eight in all). Each holds the Patient followed by 2-3
/// Encounters, 4-6 Observations, 1-2 Conditions, 1-2 MedicationRequests, one AllergyIntolerance,
/// one Procedure, one Immunization and one DocumentReference whose base64 `text/plain` note
/// repeats the patient's name, MRN, birth date, phone and street.
#[must_use]
pub fn fake_patient_bundles() -> Vec<Value> {
    (0u32..).zip(PEOPLE.iter()).map(|(p, person)| bundle::patient_bundle(p, person)).collect()
}

/// Every identifying string planted in those bundles, for byte-level "no plaintext at rest" tests:
/// each family name, each given name, each MRN, SSN, phone number, email, street line, and each birth
/// date in ISO form (1937-07-17) AND US form (07/17/1937). Strings only, no duplicates.
///
/// Some entries are short (e.g. "Pig", "Sam"); a scan over ciphertext or its base64/hex encoding
/// can match such strings by chance, so very large scans may want a minimum length.
#[must_use]
pub fn planted_identifiers() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in PEOPLE.iter().flat_map(people::Person::identifiers) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests;
