//! Search scopes: what a search, history or bundle may return, worked out from the same
//! policies that decide direct reads, so the store can filter before it counts and pages.
//!
//! A search must never return, count or hint at (through `total` or paging links) a record
//! that a direct read by the same caller would refuse. Filtering results after the store
//! has counted them would leak through `total`; so the scope is pushed into the query.
//!
//! The scope names *kinds* of relationship, never lists of patients: "patients whose care
//! team the caller is on" becomes a join in the store, so its cost does not grow with the
//! size of a panel. It is found by asking the policies about representative records: one
//! for each kind of relationship on its own (own record, care team, department, emergency
//! grant), one for a patient the caller has no relationship with, one outside any
//! compartment, and each known sensitive label. Every result is then still decided on its
//! own facts; a policy that looks at facts the scope cannot see (an id, an unknown label,
//! two relationships at once) only makes the scope wider than the decisions, never
//! narrower, and the caller then drops the refused results and omits `total`. (A policy
//! that allows only when two relationships hold together, and neither alone, would find
//! no record through search, though direct reads would: narrower, never a leak.)

use crate::engine::Policies;
use crate::facts::{Action, RecordFacts, RequestFacts, Subject, Target, UserFacts};

/// Security labels the scope probes for. Records with other labels are decided one by one.
pub const PROBED_LABELS: [&str; 11] =
    ["PSY", "MH", "BH", "ETH", "SUD", "42CFRPart2", "HIV", "STD", "SEX", "REPRO", "PSYTHPN"];

/// A patient id no real record has (server ids are UUIDs or client ids of at most 64
/// characters without spaces): the stand-in for "a patient the caller has no relationship with".
const UNRELATED_PATIENT: &str = "(any other patient)";

/// The stand-in for "a patient the caller is related to in one way".
const RELATED_PATIENT: &str = "(a related patient)";

/// Ways a user can be related to a patient. Each is a fact the store can look up by index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Relations {
    /// The patient is the user's own record (patient accounts).
    pub own: bool,
    /// The user is on the patient's care team.
    pub care_team: bool,
    /// The patient had a recent Encounter in one of the user's departments.
    pub department: bool,
    /// The user holds a live break-glass grant for the patient.
    pub emergency: bool,
}

impl Relations {
    /// Whether no relationship holds.
    pub fn is_none(self) -> bool {
        !(self.own || self.care_team || self.department || self.emergency)
    }

    /// The relationships of either.
    pub fn union(self, other: Relations) -> Relations {
        Relations {
            own: self.own || other.own,
            care_team: self.care_team || other.care_team,
            department: self.department || other.department,
            emergency: self.emergency || other.emergency,
        }
    }

    /// Whether any relationship of `self` is also in `other`.
    pub fn meets(self, other: Relations) -> bool {
        (self.own && other.own)
            || (self.care_team && other.care_team)
            || (self.department && other.department)
            || (self.emergency && other.emergency)
    }

    /// `user`'s facts as they bear on `patient`, to whom the user is related by `self`: every
    /// relationship set holds `patient` or nothing. Policies compare a record's patient with
    /// these sets, so a decision about one patient needs no other patient's facts.
    pub fn facts_for(self, user: &UserFacts, patient: &str) -> UserFacts {
        let one = |holds: bool| if holds { vec![patient.to_owned()] } else { Vec::new() };
        UserFacts {
            care_team: one(self.care_team),
            department_patients: one(self.department),
            emergency_access: one(self.emergency),
            own_patient: if self.own { Some(patient.to_owned()) } else { user.own_patient.clone() },
            ..user.clone()
        }
    }
}

/// Which patients' compartments a search may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientScope {
    /// Any patient's.
    Any,
    /// Those of patients the caller is related to in one of these ways (none: no patient's).
    Related(Relations),
}

/// What a search may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchScope {
    pub patients: PatientScope,
    /// Whether records outside every patient compartment may be returned.
    pub unassigned: bool,
    /// Records carrying any of these security labels are left out.
    pub excluded_labels: Vec<String>,
    /// The policies that allowed some part of the scope.
    pub policy_ids: Vec<String>,
    /// The masks the allowing decisions attach: what the results would hide, and so what
    /// the search may not look at either.
    pub masks: Vec<crate::FieldMask>,
}

impl SearchScope {
    /// A scope that holds no record.
    pub fn nothing() -> Self {
        Self {
            patients: PatientScope::Related(Relations::default()),
            unassigned: false,
            excluded_labels: Vec::new(),
            policy_ids: Vec::new(),
            masks: Vec::new(),
        }
    }

    /// Whether a search on `param` of `resource_type` for a token under `system` (`None`:
    /// any system) looks at an element a mask of this scope hides: searching by a masked SSN
    /// would confirm it.
    pub fn hides(&self, resource_type: &str, param: &str, system: Option<&str>) -> bool {
        self.masks.iter().any(|m| m.removals.iter().any(|r| r.hides_search(resource_type, param, system)))
    }

    /// Whether the scope can hold no record at all.
    pub fn is_empty(&self) -> bool {
        !self.unassigned && matches!(self.patients, PatientScope::Related(r) if r.is_none())
    }

    /// Whether a patient related to the caller by `relations` lies inside the scope.
    pub fn admits(&self, relations: Relations) -> bool {
        match self.patients {
            PatientScope::Any => true,
            PatientScope::Related(allowed) => allowed.meets(relations),
        }
    }
}

impl Policies {
    /// The scope of `action` (search or history) over `resource_type` for `subject`. A
    /// user's relationship sets are ignored: the scope is made of kinds of relationship.
    pub fn search_scope(
        &self,
        subject: &Subject,
        action: Action,
        resource_type: &str,
        request: &RequestFacts,
    ) -> SearchScope {
        let base = match subject {
            Subject::User(user) => Subject::User(UserFacts {
                care_team: Vec::new(),
                department_patients: Vec::new(),
                emergency_access: Vec::new(),
                own_patient: None,
                ..user.clone()
            }),
            Subject::Client { .. } => subject.clone(),
        };
        let mut allowed_ids: Vec<String> = Vec::new();
        let mut excluded: Vec<String> = Vec::new();
        let mut masks: Vec<crate::FieldMask> = Vec::new();
        let mut probe = |subject: &Subject, patient: Option<&str>| -> bool {
            let Ok(prepared) = self.prepare(subject) else { return false };
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
            if !decision.mask.is_empty() && !masks.contains(&decision.mask) {
                masks.push(decision.mask);
            }
            for label in PROBED_LABELS {
                if !excluded.iter().any(|l| l == label)
                    && !self.decide_prepared(&prepared, action, &facts(vec![label.to_owned()]), request).allowed
                {
                    excluded.push(label.to_owned());
                }
            }
            true
        };
        let unassigned = probe(&base, None);
        let patients = if probe(&base, Some(UNRELATED_PATIENT)) {
            PatientScope::Any
        } else {
            let mut allowed = Relations::default();
            if let Subject::User(user) = subject {
                let one = Relations::default();
                let kinds = [
                    Relations { own: true, ..one },
                    Relations { care_team: true, ..one },
                    Relations { department: true, ..one },
                    Relations { emergency: true, ..one },
                ];
                for kind in kinds {
                    // Only a patient account has an own record.
                    if kind.own && user.own_patient.is_none() {
                        continue;
                    }
                    let Subject::User(base_user) = &base else { continue };
                    let related = Subject::User(kind.facts_for(base_user, RELATED_PATIENT));
                    if probe(&related, Some(RELATED_PATIENT)) {
                        allowed = allowed.union(kind);
                    }
                }
            }
            PatientScope::Related(allowed)
        };
        allowed_ids.sort();
        allowed_ids.dedup();
        excluded.sort();
        SearchScope { patients, unassigned, excluded_labels: excluded, policy_ids: allowed_ids, masks }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[&str], own: Option<&str>) -> Subject {
        Subject::User(UserFacts {
            user_id: "u-1".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            own_patient: own.map(str::to_owned),
            // Lists the scope must ignore: it is made of kinds, not of patients.
            care_team: (0..2500).map(|k| format!("p{k}")).collect(),
            mfa: true,
            ..UserFacts::default()
        })
    }

    #[test]
    fn a_clinician_searches_by_kind_of_relationship_not_by_list() {
        let policies = Policies::defaults().expect("defaults");
        let scope =
            policies.search_scope(&user(&["physician"], None), Action::Search, "Observation", &RequestFacts::default());
        let PatientScope::Related(kinds) = scope.patients else { panic!("a physician must not search every patient") };
        assert!(kinds.care_team && kinds.department && kinds.emergency && !kinds.own, "{kinds:?}");
        assert!(!scope.unassigned);
        assert!(scope.excluded_labels.iter().any(|l| l == "HIV"), "uncleared: HIV left out");
        assert!(scope.admits(Relations { care_team: true, ..Relations::default() }));
        assert!(!scope.admits(Relations::default()), "an unrelated patient is outside");
    }

    #[test]
    fn a_patient_reaches_only_their_own_record_and_an_admin_nothing() {
        let policies = Policies::defaults().expect("defaults");
        let request = RequestFacts::default();
        let scope = policies.search_scope(&user(&["patient"], Some("p7")), Action::Search, "Observation", &request);
        assert_eq!(scope.patients, PatientScope::Related(Relations { own: true, ..Relations::default() }));
        assert!(!scope.admits(Relations { care_team: true, ..Relations::default() }));
        let admin = policies.search_scope(&user(&["admin"], None), Action::Search, "Observation", &request);
        assert!(admin.is_empty(), "{admin:?}");
        assert!(!admin.admits(Relations { care_team: true, own: true, department: true, emergency: true }));
    }

    #[test]
    fn facts_for_one_patient_name_only_that_patient() {
        let Subject::User(full) = user(&["physician"], None) else { unreachable!() };
        let facts = Relations { care_team: true, ..Relations::default() }.facts_for(&full, "p9");
        assert_eq!(facts.care_team, ["p9"]);
        assert!(facts.emergency_access.is_empty() && facts.department_patients.is_empty());
        assert_eq!(Relations::default().facts_for(&full, "p9").care_team, Vec::<String>::new());
    }
}
