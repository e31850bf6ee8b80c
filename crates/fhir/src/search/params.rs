//! The search parameters phivault supports, per resource type.

/// How a parameter's values are indexed and matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Codes, codings, identifiers, contact points: exact match on `system|code` forms.
    Token,
    /// Human text such as names: case-insensitive prefix match on each word.
    Text,
    /// Clinical dates and periods: range search, stored as Unix-second ranges.
    Date,
    /// A birth date: identifying, so indexed only as blind terms for year, month and day;
    /// range queries are expanded into the set of those terms they cover.
    BirthDate,
    /// `patient` / `subject`: the resource's patient compartment.
    Patient,
}

/// One search parameter: its name, kind and the element paths it reads (alternatives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamDef {
    pub name: &'static str,
    pub kind: ParamKind,
    pub paths: &'static [&'static str],
}

const fn p(name: &'static str, kind: ParamKind, paths: &'static [&'static str]) -> ParamDef {
    ParamDef { name, kind, paths }
}

use ParamKind::{BirthDate, Date, Patient, Text, Token};

/// Parameters every resource type has (besides `_id` and `_lastUpdated`, which read row
/// metadata rather than the body).
const COMMON: &[ParamDef] = &[p("identifier", Token, &["identifier"])];

const COMPARTMENT: &[ParamDef] = &[p("patient", Patient, &[]), p("subject", Patient, &[])];

const CLINICAL_STATUS: ParamDef = p("status", Token, &["status"]);

const BY_TYPE: &[(&str, &[ParamDef])] = &[
    (
        "Patient",
        &[
            p("name", Text, &["name"]),
            p("family", Text, &["name.family"]),
            p("given", Text, &["name.given"]),
            p("birthdate", BirthDate, &["birthDate"]),
            p("gender", Token, &["gender"]),
            p("telecom", Token, &["telecom"]),
            p("phone", Token, &["telecom"]),
            p("email", Token, &["telecom"]),
            p("address-postalcode", Token, &["address.postalCode"]),
        ],
    ),
    (
        "Practitioner",
        &[p("name", Text, &["name"]), p("family", Text, &["name.family"]), p("given", Text, &["name.given"])],
    ),
    ("Organization", &[p("name", Text, &["name", "alias"])]),
    ("Location", &[p("name", Text, &["name", "alias"])]),
    (
        "Observation",
        &[
            p("code", Token, &["code"]),
            p("category", Token, &["category"]),
            p("date", Date, &["effectiveDateTime", "effectivePeriod", "effectiveInstant"]),
            CLINICAL_STATUS,
        ],
    ),
    (
        "Condition",
        &[
            p("code", Token, &["code"]),
            p("category", Token, &["category"]),
            p("date", Date, &["onsetDateTime", "onsetPeriod", "recordedDate"]),
            p("onset-date", Date, &["onsetDateTime", "onsetPeriod"]),
            p("clinical-status", Token, &["clinicalStatus"]),
            p("status", Token, &["clinicalStatus"]),
        ],
    ),
    (
        "Encounter",
        &[p("type", Token, &["type"]), p("class", Token, &["class"]), p("date", Date, &["period"]), CLINICAL_STATUS],
    ),
    (
        "MedicationRequest",
        &[
            p("code", Token, &["medicationCodeableConcept"]),
            p("category", Token, &["category"]),
            p("date", Date, &["authoredOn"]),
            p("authoredon", Date, &["authoredOn"]),
            p("intent", Token, &["intent"]),
            CLINICAL_STATUS,
        ],
    ),
    (
        "AllergyIntolerance",
        &[
            p("code", Token, &["code"]),
            p("category", Token, &["category"]),
            p("date", Date, &["recordedDate"]),
            p("clinical-status", Token, &["clinicalStatus"]),
            p("status", Token, &["clinicalStatus"]),
        ],
    ),
    (
        "Procedure",
        &[
            p("code", Token, &["code"]),
            p("category", Token, &["category"]),
            p("date", Date, &["performedDateTime", "performedPeriod"]),
            CLINICAL_STATUS,
        ],
    ),
    (
        "Immunization",
        &[
            p("vaccine-code", Token, &["vaccineCode"]),
            p("code", Token, &["vaccineCode"]),
            p("date", Date, &["occurrenceDateTime"]),
            CLINICAL_STATUS,
        ],
    ),
    (
        "DocumentReference",
        &[
            p("type", Token, &["type"]),
            p("code", Token, &["type"]),
            p("category", Token, &["category"]),
            p("date", Date, &["date"]),
            CLINICAL_STATUS,
        ],
    ),
    (
        "DiagnosticReport",
        &[
            p("code", Token, &["code"]),
            p("category", Token, &["category"]),
            p("date", Date, &["effectiveDateTime", "effectivePeriod"]),
            CLINICAL_STATUS,
        ],
    ),
];

/// All search parameters of `resource_type`, body-based ones only.
pub fn params_for(resource_type: &str) -> impl Iterator<Item = &'static ParamDef> + '_ {
    let specific = BY_TYPE.iter().find(|(t, _)| *t == resource_type).map_or(&[][..], |(_, defs)| defs);
    let compartment = if resource_type == "Patient" { &[][..] } else { COMPARTMENT };
    COMMON.iter().chain(specific).chain(compartment)
}

/// Names of every parameter of `resource_type`, including `_id` and `_lastUpdated`, for
/// the CapabilityStatement.
pub fn search_param_names(resource_type: &str) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![("_id", "token"), ("_lastUpdated", "date")];
    out.extend(params_for(resource_type).map(|d| {
        let kind = match d.kind {
            ParamKind::Token => "token",
            ParamKind::Text => "string",
            ParamKind::Date | ParamKind::BirthDate => "date",
            ParamKind::Patient => "reference",
        };
        (d.name, kind)
    }));
    out
}
