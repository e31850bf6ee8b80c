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
    /// The parameter whose stored terms this one searches: itself, or for an alias of the
    /// same elements (`code` and `vaccine-code`) the canonical one, so terms are stored once.
    pub index_as: &'static str,
}

impl ParamDef {
    /// Whether this parameter stores its own terms (it is not an alias).
    pub fn is_indexed(&self) -> bool {
        self.index_as == self.name
    }
}

const fn p(name: &'static str, kind: ParamKind, paths: &'static [&'static str]) -> ParamDef {
    ParamDef { name, kind, paths, index_as: name }
}

const fn alias(name: &'static str, of: ParamDef) -> ParamDef {
    ParamDef { name, kind: of.kind, paths: of.paths, index_as: of.name }
}

use ParamKind::{BirthDate, Date, Patient, Text, Token};

/// Parameters every resource type has (besides `_id` and `_lastUpdated`, which read row
/// metadata rather than the body).
const COMMON: &[ParamDef] = &[p("identifier", Token, &["identifier"]), p("_security", Token, &["meta.security"])];

const COMPARTMENT: &[ParamDef] = &[p("patient", Patient, &[]), p("subject", Patient, &[])];

const CLINICAL_STATUS: ParamDef = p("status", Token, &["status"]);
const TELECOM: ParamDef = p("telecom", Token, &["telecom"]);
const CONDITION_CLINICAL_STATUS: ParamDef = p("clinical-status", Token, &["clinicalStatus"]);
const AUTHORED_ON: ParamDef = p("authoredon", Date, &["authoredOn"]);
const VACCINE_CODE: ParamDef = p("vaccine-code", Token, &["vaccineCode"]);
const DOCUMENT_TYPE: ParamDef = p("type", Token, &["type"]);

const BY_TYPE: &[(&str, &[ParamDef])] = &[
    (
        "Patient",
        &[
            p("name", Text, &["name"]),
            p("family", Text, &["name.family"]),
            p("given", Text, &["name.given"]),
            p("birthdate", BirthDate, &["birthDate"]),
            p("gender", Token, &["gender"]),
            TELECOM,
            alias("phone", TELECOM),
            alias("email", TELECOM),
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
            CONDITION_CLINICAL_STATUS,
            alias("status", CONDITION_CLINICAL_STATUS),
        ],
    ),
    (
        "Encounter",
        &[
            p("type", Token, &["type"]),
            p("class", Token, &["class"]),
            p("date", Date, &["period"]),
            p("service-provider", Token, &["serviceProvider"]),
            CLINICAL_STATUS,
        ],
    ),
    (
        "MedicationRequest",
        &[
            p("code", Token, &["medicationCodeableConcept"]),
            p("category", Token, &["category"]),
            AUTHORED_ON,
            alias("date", AUTHORED_ON),
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
            CONDITION_CLINICAL_STATUS,
            alias("status", CONDITION_CLINICAL_STATUS),
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
        &[VACCINE_CODE, alias("code", VACCINE_CODE), p("date", Date, &["occurrenceDateTime"]), CLINICAL_STATUS],
    ),
    (
        "DocumentReference",
        &[
            DOCUMENT_TYPE,
            alias("code", DOCUMENT_TYPE),
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
