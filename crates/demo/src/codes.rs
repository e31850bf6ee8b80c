//! Terminology tables the fake clinical resources draw from (LOINC, SNOMED CT, RxNorm, CVX).

pub(crate) const LOINC: &str = "http://loinc.org";
pub(crate) const SNOMED: &str = "http://snomed.info/sct";
pub(crate) const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub(crate) const CVX: &str = "http://hl7.org/fhir/sid/cvx";
pub(crate) const UCUM: &str = "http://unitsofmeasure.org";
pub(crate) const OBS_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
pub(crate) const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub(crate) const ID_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
pub(crate) const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
pub(crate) const CONDITION_VER: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
pub(crate) const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
pub(crate) const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
pub(crate) const ALLERGY_VER: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
pub(crate) const DOC_CATEGORY: &str = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category";

/// A code and its display text.
pub(crate) type Coded = (&'static str, &'static str);

/// Encounter types (SNOMED CT).
pub(crate) const ENCOUNTER_TYPES: [Coded; 3] = [
    ("185349003", "Encounter for check up (procedure)"),
    ("390906007", "Follow-up encounter (procedure)"),
    ("185345009", "Encounter for symptom (procedure)"),
];

/// One kind of Observation with a plausible value range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObsKind {
    pub loinc: &'static str,
    pub display: &'static str,
    /// `vital-signs` or `laboratory`.
    pub category: &'static str,
    /// UCUM unit code (also used as the human-readable unit).
    pub unit: &'static str,
    /// Lowest value, in tenths of `unit`.
    pub base_tenths: u32,
    /// Width of the value range, in tenths of `unit`.
    pub spread_tenths: u32,
    /// Whether the value keeps one decimal place (otherwise it is a whole number).
    pub decimal: bool,
}

const fn obs(
    loinc: &'static str,
    display: &'static str,
    category: &'static str,
    unit: &'static str,
    base_tenths: u32,
    spread_tenths: u32,
    decimal: bool,
) -> ObsKind {
    ObsKind { loinc, display, category, unit, base_tenths, spread_tenths, decimal }
}

/// Observation kinds; a patient gets up to 6 distinct ones.
pub(crate) const OBSERVATIONS: [ObsKind; 7] = [
    obs("8867-4", "Heart rate", "vital-signs", "/min", 580, 350, false),
    obs("8480-6", "Systolic blood pressure", "vital-signs", "mm[Hg]", 1050, 450, false),
    obs("8462-4", "Diastolic blood pressure", "vital-signs", "mm[Hg]", 620, 280, false),
    obs("8310-5", "Body temperature", "vital-signs", "Cel", 361, 15, true),
    obs("29463-7", "Body weight", "vital-signs", "kg", 550, 450, true),
    obs("2339-0", "Glucose [Mass/volume] in Blood", "laboratory", "mg/dL", 750, 900, false),
    obs("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "laboratory", "%", 48, 30, true),
];

/// Problem-list conditions (SNOMED CT).
pub(crate) const CONDITIONS: [Coded; 6] = [
    ("38341003", "Hypertensive disorder, systemic arterial (disorder)"),
    ("44054006", "Diabetes mellitus type 2 (disorder)"),
    ("195967001", "Asthma (disorder)"),
    ("55822004", "Hyperlipidemia (disorder)"),
    ("239873007", "Osteoarthritis of knee (disorder)"),
    ("35489007", "Depressive disorder (disorder)"),
];

/// Medications (RxNorm clinical drugs) with a dosage text.
pub(crate) const MEDICATIONS: [(&str, &str, &str); 6] = [
    ("314076", "lisinopril 10 MG Oral Tablet", "Take 1 tablet by mouth once daily"),
    (
        "860975",
        "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
        "Take 1 tablet by mouth with evening meal",
    ),
    (
        "745679",
        "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
        "Inhale 2 puffs every 4 hours as needed for wheezing",
    ),
    ("259255", "atorvastatin 80 MG Oral Tablet", "Take 1 tablet by mouth at bedtime"),
    ("197361", "amlodipine 5 MG Oral Tablet", "Take 1 tablet by mouth once daily"),
    ("310798", "hydrochlorothiazide 25 MG Oral Tablet", "Take 1 tablet by mouth every morning"),
];

/// Allergies (SNOMED CT) with their AllergyIntolerance category.
pub(crate) const ALLERGIES: [(&str, &str, &str); 4] = [
    ("91936005", "Allergy to penicillin (finding)", "medication"),
    ("91935009", "Allergy to peanut (finding)", "food"),
    ("300913006", "Shellfish allergy (finding)", "food"),
    ("418689008", "Allergy to grass pollen (finding)", "environment"),
];

/// Procedures (SNOMED CT).
pub(crate) const PROCEDURES: [Coded; 4] = [
    ("73761001", "Colonoscopy (procedure)"),
    ("80146002", "Appendectomy (procedure)"),
    ("268556000", "Urine screening for glucose (procedure)"),
    ("428191000124101", "Documentation of current medications (procedure)"),
];

/// Vaccines (CVX).
pub(crate) const VACCINES: [Coded; 4] = [
    ("140", "Influenza, seasonal, injectable, preservative free"),
    ("115", "Tdap"),
    ("33", "pneumococcal polysaccharide vaccine, 23 valent"),
    ("187", "zoster vaccine recombinant"),
];
