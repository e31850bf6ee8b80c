//! A caller with what its decisions need: who it is, and how it relates to the patients a
//! request touches. Relationships are looked up for those patients only (by index), never
//! for a whole panel, so a decision costs the same for a care team of 50 or of 2,500.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use phivault_fhir::patient_compartment;
use phivault_policy::{
    Action, Decision, PatientScope, Policies, RecordFacts, Relations, SearchScope, Subject, Target, UserFacts,
};

use super::guarded::{GuardedRecords, forbidden};
use super::{Accessor, Requester};
use crate::records::StoredResource;
use crate::{Filter, RecordError, ScopePatients};

/// The id the audit trail shows when an app's patient-level scopes, not a policy, refused.
const LAUNCH_PATIENT_RULE: &str = "smart-launch-patient-only";

/// The id the audit trail shows when a search looked at an element the caller's view hides.
const HIDDEN_SEARCH_RULE: &str = "minimum-necessary-search";

/// The facts of a stored or proposed resource.
pub(super) fn facts_of(resource_type: &str, id: &str, body: &serde_json::Value) -> RecordFacts {
    RecordFacts::of(resource_type, Some(id), patient_compartment(resource_type, id, body), body)
}

/// One request's caller, ready to decide.
pub(super) struct Asking<'a> {
    pub(super) accessor: &'a Accessor,
    /// Who asks, with every relationship set empty: each decision fills in the relations
    /// to the one patient it is about.
    pub(super) subject: Subject,
    /// The user's departments (Organization ids).
    departments: Vec<String>,
    pub(super) now_ms: i64,
    /// Relations to the patients looked up so far in this request.
    relations: Mutex<HashMap<String, Relations>>,
    pub(super) policies: Arc<Policies>,
    /// Record decisions made so far in this request, by everything they depend on (see
    /// [`DecisionKey`]): a chart of 500 resources has a handful of distinct facts.
    decisions: Mutex<HashMap<DecisionKey, Decision>>,
}

/// What a record decision depends on within one request (the caller, the request's facts
/// and the policies being fixed): the action, the record's facts but its id, and the
/// caller's relations to its patient. Used only when no policy names a record by id
/// ([`Policies::decisions_follow_record_facts`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DecisionKey {
    action: Action,
    resource_type: String,
    patient: Option<String>,
    labels: Vec<String>,
    relations: Option<Relations>,
}

impl Asking<'_> {
    fn user(&self) -> Option<&UserFacts> {
        match &self.subject {
            Subject::User(user) => Some(user),
            Subject::Client { .. } => None,
        }
    }

    /// How the caller relates to `patient`, as looked up by [`GuardedRecords::relate`]. A
    /// patient not looked up counts as unrelated: a missed lookup refuses, never allows.
    pub(super) fn relations_to(&self, patient: &str) -> Relations {
        let known = self.relations.lock().unwrap_or_else(PoisonError::into_inner).get(patient).copied();
        let own = self.user().and_then(|u| u.own_patient.as_deref()) == Some(patient);
        Relations { own, ..known.unwrap_or_default() }
    }

    /// The subject as it bears on `patient` (or on no patient's record).
    fn subject_for(&self, patient: Option<&str>) -> Subject {
        match (&self.subject, patient) {
            (Subject::User(user), Some(patient)) => Subject::User(self.relations_to(patient).facts_for(user, patient)),
            _ => self.subject.clone(),
        }
    }

    /// Decides `action` on a record with `facts`: allowed, or [`RecordError::Forbidden`].
    pub(super) fn decide(&self, action: Action, facts: RecordFacts) -> Result<Decision, RecordError> {
        if let Some(launch) = &self.accessor.launch_patient
            && facts.patient.as_ref() != Some(launch)
        {
            return Err(RecordError::Forbidden { policy_ids: vec![LAUNCH_PATIENT_RULE.to_owned()] });
        }
        let key = self.policies.decisions_follow_record_facts().then(|| DecisionKey {
            action,
            resource_type: facts.resource_type.clone(),
            patient: facts.patient.clone(),
            labels: facts.labels.clone(),
            relations: facts.patient.as_deref().map(|p| self.relations_to(p)),
        });
        // Decided with the relations the key holds, so a cached decision is always the one
        // those relations give.
        let known =
            key.as_ref().and_then(|k| self.decisions.lock().unwrap_or_else(PoisonError::into_inner).get(k).cloned());
        let decision = match known {
            Some(decision) => decision,
            None => {
                let relations = key.as_ref().and_then(|k| k.relations);
                let subject = match (&self.subject, facts.patient.as_deref(), relations) {
                    (Subject::User(user), Some(patient), Some(relations)) => {
                        Subject::User(relations.facts_for(user, patient))
                    }
                    _ => self.subject_for(facts.patient.as_deref()),
                };
                let decision = self.policies.decide(&subject, action, &Target::Record(facts), &self.accessor.request);
                if let Some(key) = key {
                    self.decisions.lock().unwrap_or_else(PoisonError::into_inner).insert(key, decision.clone());
                }
                decision
            }
        };
        if !decision.errors.is_empty() {
            // Ids and policy text only: no record content reaches a policy error.
            tracing::warn!(errors = ?decision.errors, "a policy could not be evaluated and counted as not matching");
        }
        if decision.allowed { Ok(decision) } else { Err(forbidden(decision.policy_ids)) }
    }

    /// Decides `action` on a patient as a whole (break-glass, erasure); the decision either way.
    pub(super) fn decide_on_patient(&self, action: Action, patient: &str) -> Decision {
        let subject = self.subject_for(Some(patient));
        self.policies.decide(&subject, action, &Target::Patient(patient.to_owned()), &self.accessor.request)
    }

    /// Decides `action` on the system (administration, audit review).
    pub(super) fn decide_on_system(&self, action: Action) -> Decision {
        self.policies.decide(&self.subject, action, &Target::System, &self.accessor.request)
    }

    /// Decides `action` on a stored resource and masks it; the policy ids on success.
    pub(super) fn show(&self, action: Action, resource: &mut StoredResource) -> Result<Vec<String>, RecordError> {
        let decision = self.decide(action, facts_of(&resource.resource_type, &resource.id, &resource.body))?;
        decision.mask.apply(&resource.resource_type, &mut resource.body);
        Ok(decision.policy_ids)
    }

    /// What `action` over `resource_type` may reach, for a search `request`: refused when
    /// the search looks at an element the results would hide from this caller (a role may
    /// not search by what it may not see, or a match would confirm the hidden value).
    pub(super) fn search_scope(
        &self,
        action: Action,
        resource_type: &str,
        request: &phivault_fhir::search::SearchRequest,
    ) -> Result<SearchScope, RecordError> {
        use phivault_fhir::search::Clause;
        let scope = self.scope(action, resource_type);
        for clause in &request.clauses {
            let Clause::Terms { param, any_of } = clause else { continue };
            for term in any_of.iter().flatten() {
                let system = phivault_fhir::search::token_term_system(term);
                if scope.hides(resource_type, param, system) {
                    return Err(RecordError::Forbidden { policy_ids: vec![HIDDEN_SEARCH_RULE.to_owned()] });
                }
            }
        }
        Ok(scope)
    }

    /// What `action` over `resource_type` may reach.
    pub(super) fn scope(&self, action: Action, resource_type: &str) -> SearchScope {
        let mut scope = self.policies.search_scope(&self.subject, action, resource_type, &self.accessor.request);
        if let Some(launch) = &self.accessor.launch_patient {
            // Only the launch patient, and only if the policies reach them at all.
            let within = scope.admits(self.relations_to(launch));
            scope.patients = PatientScope::Related(Relations::default());
            scope.unassigned = false;
            if within {
                scope.patients = PatientScope::Related(Relations { own: true, ..Relations::default() });
            }
        }
        scope
    }

    /// Filters the shown resources through the decision of each; returns those allowed
    /// (masked), the union of policy ids, and whether any was refused. The caller has
    /// related the results' patients ([`GuardedRecords::relate_results`]).
    pub(super) fn filter(
        &self,
        action: Action,
        resources: Vec<StoredResource>,
    ) -> (Vec<StoredResource>, Vec<String>, bool) {
        let mut shown = Vec::with_capacity(resources.len());
        let mut ids: Vec<String> = Vec::new();
        let mut refused = false;
        for mut resource in resources {
            match self.show(action, &mut resource) {
                Ok(policy_ids) => {
                    ids.extend(policy_ids);
                    shown.push(resource);
                }
                Err(_) => refused = true,
            }
        }
        ids.sort();
        ids.dedup();
        if refused {
            tracing::warn!(action = %action, "the search scope admitted records their own decision refused; total omitted");
        }
        (shown, ids, refused)
    }
}

impl GuardedRecords {
    /// The caller of `accessor`, with its standing facts (roles, clearances, departments)
    /// loaded, and its relation to an app's launch patient.
    pub(super) async fn asking<'a>(&self, accessor: &'a Accessor) -> Result<Asking<'a>, RecordError> {
        let now_ms = self.records.clock.now_ms();
        let (subject, departments) = match &accessor.requester {
            Requester::Client { client_id } => (Subject::Client { client_id: client_id.clone() }, Vec::new()),
            Requester::User { user_id, roles, own_patient, mfa, authenticated_ms, via_app } => {
                let standing = self.access.standing(user_id).await?;
                let user = UserFacts {
                    user_id: user_id.clone(),
                    roles: roles.clone(),
                    own_patient: own_patient.clone(),
                    care_team: Vec::new(),
                    department_patients: Vec::new(),
                    emergency_access: Vec::new(),
                    cleared_categories: standing.clearances,
                    mfa: *mfa,
                    authentication_age_secs: (now_ms - authenticated_ms).max(0) / 1000,
                    via_app: *via_app,
                };
                (Subject::User(user), standing.departments)
            }
        };
        let asking = Asking {
            accessor,
            subject,
            departments,
            now_ms,
            relations: Mutex::new(HashMap::new()),
            policies: self.policies().current(),
            decisions: Mutex::new(HashMap::new()),
        };
        if let Some(launch) = &accessor.launch_patient {
            self.relate(&asking, std::slice::from_ref(launch)).await?;
        }
        Ok(asking)
    }

    /// Looks up how the caller relates to `patients` (those not looked up yet): one indexed
    /// query for care teams and grants, one for departments when the user has any.
    pub(super) async fn relate(&self, asking: &Asking<'_>, patients: &[String]) -> Result<(), RecordError> {
        let Some(user) = asking.user() else { return Ok(()) };
        let mut missing: Vec<String> = {
            let known = asking.relations.lock().unwrap_or_else(PoisonError::into_inner);
            patients.iter().filter(|p| !known.contains_key(*p)).cloned().collect()
        };
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let links = self.access.links_to(&user.user_id, &missing, asking.now_ms).await?;
        let department = if asking.departments.is_empty() {
            Vec::new()
        } else {
            self.department_patients(&asking.departments, Some(&missing), asking.now_ms).await?
        };
        let mut known = asking.relations.lock().unwrap_or_else(PoisonError::into_inner);
        for patient in missing {
            let relations = Relations {
                own: false,
                care_team: links.care_team.binary_search(&patient).is_ok(),
                department: department.contains(&patient),
                emergency: links.emergency_access.binary_search(&patient).is_ok(),
            };
            known.insert(patient, relations);
        }
        Ok(())
    }

    /// [`GuardedRecords::relate`] for the patients of `resources`.
    pub(super) async fn relate_results(
        &self,
        asking: &Asking<'_>,
        resources: &[StoredResource],
    ) -> Result<(), RecordError> {
        let patients: Vec<String> =
            resources.iter().filter_map(|r| patient_compartment(&r.resource_type, &r.id, &r.body)).collect();
        self.relate(asking, &patients).await
    }

    /// The store filters of `scope` for this caller: relationships as joins, labels as
    /// excluded terms (with `with_labels`).
    pub(super) async fn scope_filters(
        &self,
        asking: &Asking<'_>,
        scope: &SearchScope,
        with_labels: bool,
    ) -> Result<Vec<Filter>, RecordError> {
        let patients = match scope.patients {
            PatientScope::Any => ScopePatients::Any,
            PatientScope::Related(relations) => match (&asking.accessor.launch_patient, asking.user()) {
                (Some(launch), _) => {
                    ScopePatients::listed(if relations.is_none() { Vec::new() } else { vec![launch.clone()] })
                }
                (None, None) => ScopePatients::listed(Vec::new()),
                (None, Some(user)) => {
                    let mut listed = Vec::new();
                    if relations.own
                        && let Some(own) = &user.own_patient
                    {
                        listed.push(own.clone());
                    }
                    if relations.department && !asking.departments.is_empty() {
                        listed.extend(self.department_patients(&asking.departments, None, asking.now_ms).await?);
                    }
                    ScopePatients::Related {
                        user_id: user.user_id.clone(),
                        care_team: relations.care_team,
                        emergency_at_ms: relations.emergency.then_some(asking.now_ms),
                        listed,
                    }
                }
            },
        };
        let mut filters = vec![Filter::Scope { patients, unassigned: scope.unassigned }];
        if with_labels && !scope.excluded_labels.is_empty() {
            let index = self.records.keys.ring().blind_index();
            // The code-only token form, as `_security=CODE` searches it.
            let terms =
                scope.excluded_labels.iter().map(|label| index.term("_security", &format!("c:{label}"))).collect();
            filters.push(Filter::WithoutTerms { param: "_security", terms });
        }
        Ok(filters)
    }
}
