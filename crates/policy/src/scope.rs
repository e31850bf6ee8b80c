//! Search scopes: what a search, history or bundle may return, worked out from the same
//! policies that decide direct reads, so the store can filter before it counts and pages.
//!
//! A search must never return, count or hint at (through `total` or paging links) a record
//! that a direct read by the same caller would refuse. Filtering results after the store
//! has counted them would leak through `total`; so the scope is pushed into the query.
//! The scope is found by asking the policies about representative records: one per kind of
//! relationship the caller has with a patient (own record, care team, emergency grant,
//! several at once), one for a patient the caller has no relationship with, one outside any
//! compartment, and each known sensitive label. Every result is then still decided on its
//! own facts; a policy that looks at facts the scope cannot see (an id, an unknown label)
//! only makes the scope wider than the decisions, never narrower, and the caller then
//! drops the refused results and omits `total`.

use std::collections::BTreeMap;

use crate::engine::Policies;
use crate::facts::{Action, RecordFacts, RequestFacts, Subject, Target};

/// Security labels the scope probes for. Records with other labels are decided one by one.
pub const PROBED_LABELS: [&str; 11] =
    ["PSY", "MH", "BH", "ETH", "SUD", "42CFRPart2", "HIV", "STD", "SEX", "REPRO", "PSYTHPN"];

/// A patient id no real record has (server ids are UUIDs or client ids of at most 64
/// characters without spaces): the stand-in for "a patient the caller has no relationship with".
const UNRELATED_PATIENT: &str = "(any other patient)";

/// What a search may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchScope {
    /// `None`: records in any patient's compartment; `Some`: only in these patients'.
    pub patients: Option<Vec<String>>,
    /// Whether records outside every patient compartment may be returned.
    pub unassigned: bool,
    /// Records carrying any of these security labels are left out.
    pub excluded_labels: Vec<String>,
    /// The policies that allowed some part of the scope.
    pub policy_ids: Vec<String>,
}

impl SearchScope {
    /// Whether the scope can hold no record at all.
    pub fn is_empty(&self) -> bool {
        !self.unassigned && self.patients.as_ref().is_some_and(Vec::is_empty)
    }
}

impl Policies {
    /// The scope of `action` (search or history) over `resource_type` for `subject`.
    pub fn search_scope(
        &self,
        subject: &Subject,
        action: Action,
        resource_type: &str,
        request: &RequestFacts,
    ) -> SearchScope {
        let prepared = match self.prepare(subject) {
            Ok(prepared) => prepared,
            Err(_) => {
                return SearchScope {
                    patients: Some(Vec::new()),
                    unassigned: false,
                    excluded_labels: Vec::new(),
                    policy_ids: Vec::new(),
                };
            }
        };
        let mut allowed_ids: Vec<String> = Vec::new();
        let mut excluded: Vec<String> = Vec::new();
        let mut probe = |patient: Option<&str>| -> bool {
            let facts = |labels: Vec<String>| {
                Target::Record(RecordFacts {
                    resource_type: resource_type.to_owned(),
                    id: None,
                    patient: patient.map(str::to_owned),
                    labels,
                })
            };
            let decision = self.decide_prepared(&prepared, action, &facts(Vec::new()), request);
            if !decision.allowed {
                return false;
            }
            allowed_ids.extend(decision.policy_ids);
            for label in PROBED_LABELS {
                if !excluded.iter().any(|l| l == label)
                    && !self.decide_prepared(&prepared, action, &facts(vec![label.to_owned()]), request).allowed
                {
                    excluded.push(label.to_owned());
                }
            }
            true
        };
        let unassigned = probe(None);
        let any_patient = probe(Some(UNRELATED_PATIENT));
        let patients = if any_patient {
            None
        } else {
            // Group related patients by how they are related; ask once per group.
            let mut groups: BTreeMap<(bool, bool, bool, bool), Vec<String>> = BTreeMap::new();
            if let Subject::User(user) = subject {
                let mut related: Vec<&String> = user
                    .care_team
                    .iter()
                    .chain(&user.department_patients)
                    .chain(&user.emergency_access)
                    .chain(&user.own_patient)
                    .collect();
                related.sort();
                related.dedup();
                for patient in related {
                    let key = (
                        user.own_patient.as_ref() == Some(patient),
                        user.care_team.contains(patient),
                        user.department_patients.contains(patient),
                        user.emergency_access.contains(patient),
                    );
                    groups.entry(key).or_default().push(patient.clone());
                }
            }
            let mut allowed = Vec::new();
            for members in groups.into_values() {
                if probe(Some(&members[0])) {
                    allowed.extend(members);
                }
            }
            allowed.sort();
            Some(allowed)
        };
        allowed_ids.sort();
        allowed_ids.dedup();
        excluded.sort();
        SearchScope { patients, unassigned, excluded_labels: excluded, policy_ids: allowed_ids }
    }
}
