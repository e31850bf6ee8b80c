//! A k-anonymity check on the quasi-identifiers that Safe Harbor leaves in
//! place (birth year, gender, ZIP-3, state). Safe Harbor does not require
//! it; it is the release gate that catches the small groups the rules
//! cannot see (the one 90-year-old in a ZIP-3, say).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::DeidError;

/// One record's quasi-identifiers. `None` is a value of its own (a
/// missing birth year groups with other missing birth years).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct QuasiIdentifiers {
    /// Birth year, `YYYY`.
    pub birth_year: Option<String>,
    /// Administrative gender code.
    pub gender: Option<String>,
    /// First three digits of the ZIP code (or "000").
    pub zip3: Option<String>,
    /// State.
    pub state: Option<String>,
}

impl QuasiIdentifiers {
    /// The quasi-identifiers of a (de-identified) Patient resource: the
    /// birth year, gender, and the ZIP-3 and state of its first address.
    pub fn from_patient(patient: &Value) -> QuasiIdentifiers {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let address = patient.get("address").and_then(|a| a.get(0));
        QuasiIdentifiers {
            birth_year: s(patient.get("birthDate")).map(|b| b.chars().take(4).collect()),
            gender: s(patient.get("gender")),
            zip3: s(address.and_then(|a| a.get("postalCode"))).map(|z| z.chars().take(3).collect()),
            state: s(address.and_then(|a| a.get("state"))),
        }
    }
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KAnonymityReport {
    /// The k asked for.
    pub k: usize,
    /// Records checked.
    pub records: usize,
    /// Equivalence classes (distinct quasi-identifier tuples).
    pub classes: usize,
    /// Size of the smallest class; 0 when there are no records.
    pub smallest_class: usize,
    /// Classes smaller than k.
    pub classes_below_k: usize,
    /// Records in those classes: what would have to be suppressed or
    /// generalised further before release.
    pub records_below_k: usize,
}

/// The k-anonymity gate.
#[derive(Debug, Clone, Copy)]
pub struct KAnonymity;

impl KAnonymity {
    /// Groups `records` into equivalence classes and reports on them.
    /// `Ok` when every class has at least `k` records (an empty set passes:
    /// it releases nothing); [`DeidError::BelowK`] otherwise, which means
    /// "do not release".
    pub fn check(records: &[QuasiIdentifiers], k: usize) -> Result<KAnonymityReport, DeidError> {
        let mut classes: BTreeMap<&QuasiIdentifiers, usize> = BTreeMap::new();
        for r in records {
            *classes.entry(r).or_default() += 1;
        }
        let small: Vec<usize> = classes.values().copied().filter(|&n| n < k).collect();
        let report = KAnonymityReport {
            k,
            records: records.len(),
            classes: classes.len(),
            smallest_class: classes.values().copied().min().unwrap_or(0),
            classes_below_k: small.len(),
            records_below_k: small.iter().sum(),
        };
        if report.classes_below_k > 0 { Err(DeidError::BelowK(Box::new(report))) } else { Ok(report) }
    }

    /// [`KAnonymity::check`] on de-identified Patient resources.
    pub fn check_patients(patients: &[Value], k: usize) -> Result<KAnonymityReport, DeidError> {
        let q: Vec<QuasiIdentifiers> = patients.iter().map(QuasiIdentifiers::from_patient).collect();
        KAnonymity::check(&q, k)
    }
}
