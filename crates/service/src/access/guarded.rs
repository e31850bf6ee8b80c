//! The record service as users and apps reach it: every operation decided by the policies.

use std::sync::Arc;

use phivault_fhir::patient_compartment;
use phivault_fhir::search::SearchRequest;
use phivault_policy::{
    Action, Decision, FieldMask, Policies, PreparedSubject, RecordFacts, SearchScope, Subject, Target, UserFacts,
};
use serde_json::Value;

use super::{AccessStore, Accessor, Granted, LivePolicies, Requester};
use crate::records::{Bundle, BundleGuard, PageCursor, Records, StoredResource, WriteOutcome};
use crate::{Filter, RecordError};

/// One page of search results a caller may see.
#[derive(Debug, Clone)]
pub struct GuardedPage {
    pub resources: Vec<StoredResource>,
    /// The number of matches, or `None` when a result had to be refused after the store
    /// counted it (a policy looked at facts the search scope cannot see): a count that
    /// included it would hint at a record the caller may not read.
    pub total: Option<u64>,
    /// Whether more pages follow.
    pub has_more: bool,
    pub offset: u64,
    pub count: u64,
}

/// One page of history a caller may see.
#[derive(Debug, Clone)]
pub struct GuardedHistory {
    pub versions: Vec<StoredResource>,
    /// As for [`GuardedPage::total`].
    pub total: Option<u64>,
    pub has_more: bool,
}

/// Records behind the access policies. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GuardedRecords {
    pub(super) records: Records,
    policies: Arc<LivePolicies>,
    pub(super) access: Arc<dyn AccessStore>,
    /// How long a break-glass grant lasts.
    pub(super) break_glass_ms: i64,
    /// How far back an Encounter in a user's department makes its patient theirs.
    department_window_ms: i64,
}

/// Default department window: 30 days.
pub const DEFAULT_DEPARTMENT_WINDOW_DAYS: u32 = 30;

/// Default length of a break-glass grant: one hour.
pub const DEFAULT_BREAK_GLASS_MINUTES: u32 = 60;

/// The id the audit trail shows when an app's patient-level scopes, not a policy, refused.
const LAUNCH_PATIENT_RULE: &str = "smart-launch-patient-only";

pub(super) fn forbidden(policy_ids: Vec<String>) -> RecordError {
    let policy_ids = if policy_ids.is_empty() { vec!["default-deny".to_owned()] } else { policy_ids };
    RecordError::Forbidden { policy_ids }
}

/// The facts of a stored or proposed resource.
pub(super) fn facts_of(resource_type: &str, id: &str, body: &Value) -> RecordFacts {
    RecordFacts::of(resource_type, Some(id), patient_compartment(resource_type, id, body), body)
}

/// Removes the REDACTED label a client may send back with a masked resource: it describes
/// a response, not the record.
fn strip_redacted_label(body: &mut Value) {
    if let Some(Value::Array(security)) = body.pointer_mut("/meta/security") {
        security.retain(|c| c.get("code").and_then(Value::as_str) != Some(phivault_policy::REDACTED_CODE));
    }
}

/// A caller with everything decisions need: subject facts loaded once per request.
pub(super) struct Asking<'a> {
    accessor: &'a Accessor,
    pub(super) subject: Subject,
    /// The subject as the policies evaluate it, built once for the request's decisions.
    prepared: Option<PreparedSubject>,
    pub(super) policies: Arc<Policies>,
}

impl Asking<'_> {
    pub(super) fn decide(&self, action: Action, facts: RecordFacts) -> Result<Decision, RecordError> {
        if let Some(launch) = &self.accessor.launch_patient
            && facts.patient.as_ref() != Some(launch)
        {
            return Err(RecordError::Forbidden { policy_ids: vec![LAUNCH_PATIENT_RULE.to_owned()] });
        }
        let target = Target::Record(facts);
        let decision = match &self.prepared {
            Some(prepared) => self.policies.decide_prepared(prepared, action, &target, &self.accessor.request),
            None => self.policies.decide(&self.subject, action, &target, &self.accessor.request),
        };
        if !decision.errors.is_empty() {
            // Ids and policy text only: no record content reaches a policy error.
            tracing::warn!(errors = ?decision.errors, "a policy could not be evaluated and counted as not matching");
        }
        if decision.allowed { Ok(decision) } else { Err(forbidden(decision.policy_ids)) }
    }

    /// Decides `action` on a stored resource and masks it; the policy ids on success.
    pub(super) fn show(&self, action: Action, resource: &mut StoredResource) -> Result<Vec<String>, RecordError> {
        let decision = self.decide(action, facts_of(&resource.resource_type, &resource.id, &resource.body))?;
        decision.mask.apply(&resource.resource_type, &mut resource.body);
        Ok(decision.policy_ids)
    }

    pub(super) fn scope(&self, action: Action, resource_type: &str) -> SearchScope {
        let mut scope = self.policies.search_scope(&self.subject, action, resource_type, &self.accessor.request);
        if let Some(launch) = &self.accessor.launch_patient {
            let within = match &scope.patients {
                None => true,
                Some(patients) => patients.contains(launch),
            };
            scope.patients = Some(if within { vec![launch.clone()] } else { Vec::new() });
            scope.unassigned = false;
        }
        scope
    }

    /// Filters the shown resources through the decision of each; returns those allowed
    /// (masked), the union of policy ids, and whether any was refused.
    fn filter(&self, action: Action, resources: Vec<StoredResource>) -> (Vec<StoredResource>, Vec<String>, bool) {
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
    /// Records behind `policies`, with relationships from `access`.
    pub fn new(records: Records, policies: Arc<LivePolicies>, access: Arc<dyn AccessStore>) -> Self {
        Self {
            records,
            policies,
            access,
            break_glass_ms: i64::from(DEFAULT_BREAK_GLASS_MINUTES) * 60_000,
            department_window_ms: i64::from(DEFAULT_DEPARTMENT_WINDOW_DAYS) * 86_400_000,
        }
    }

    /// Sets how far back an Encounter in a user's department counts.
    pub fn with_department_window_days(mut self, days: u32) -> Self {
        self.department_window_ms = i64::from(days.max(1)) * 86_400_000;
        self
    }

    /// Sets how long break-glass grants last.
    pub fn with_break_glass_minutes(mut self, minutes: u32) -> Self {
        self.break_glass_ms = i64::from(minutes.max(1)) * 60_000;
        self
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<(), crate::StoreError> {
        self.records.store.ping().await
    }

    /// The policies in force.
    pub fn policies(&self) -> &Arc<LivePolicies> {
        &self.policies
    }

    /// Seals a page link (it holds the query, never results; each page is decided anew).
    pub fn seal_page_cursor(
        &self,
        target: &str,
        query: &[(String, String)],
        offset: u64,
    ) -> Result<String, RecordError> {
        self.records.seal_page_cursor(target, query, offset)
    }

    /// Opens a page link sealed by [`GuardedRecords::seal_page_cursor`].
    pub fn open_page_cursor(&self, target: &str, token: &str) -> Result<PageCursor, RecordError> {
        self.records.open_page_cursor(target, token)
    }

    pub(super) async fn asking<'a>(&self, accessor: &'a Accessor) -> Result<Asking<'a>, RecordError> {
        let subject = match &accessor.requester {
            Requester::Client { client_id } => Subject::Client { client_id: client_id.clone() },
            Requester::User { user_id, roles, own_patient, mfa, authenticated_ms, via_app } => {
                let now = self.records.clock.now_ms();
                let relationships = self.access.relationships(user_id, now).await?;
                let department_patients = self.department_patients(&relationships.departments, now).await?;
                Subject::User(UserFacts {
                    user_id: user_id.clone(),
                    roles: roles.clone(),
                    own_patient: own_patient.clone(),
                    care_team: relationships.care_team,
                    department_patients,
                    emergency_access: relationships.emergency_access,
                    cleared_categories: relationships.clearances,
                    mfa: *mfa,
                    authentication_age_secs: (now - authenticated_ms).max(0) / 1000,
                    via_app: *via_app,
                })
            }
        };
        let policies = self.policies.current();
        let prepared = policies.prepare(&subject).ok();
        Ok(Asking { accessor, subject, prepared, policies })
    }

    /// The patients `departments` make a user's now (for `phivault policy explain`).
    pub async fn department_patients_of(&self, departments: &[String]) -> Result<Vec<String>, RecordError> {
        self.department_patients(departments, self.records.clock.now_ms()).await
    }

    /// Patients with an Encounter in one of `departments` (Organization ids, as
    /// `Encounter.serviceProvider`) whose period reaches into the department window.
    async fn department_patients(&self, departments: &[String], now_ms: i64) -> Result<Vec<String>, RecordError> {
        if departments.is_empty() {
            return Ok(Vec::new());
        }
        let since = phivault_fhir::format_instant(now_ms - self.department_window_ms);
        let providers: Vec<String> = departments.iter().map(|d| format!("Organization/{d}")).collect();
        let query =
            [("service-provider".to_owned(), providers.join(",")), ("date".to_owned(), format!("ge{}", &since[..10]))];
        let request = phivault_fhir::search::parse_search("Encounter", &query, true)?;
        let mut store_query = self.records.store_query("Encounter", &request, 0);
        store_query.count_total = false;
        Ok(self.records.store.compartments(&store_query).await?)
    }

    /// Reads the current version, or `version` (vread).
    pub async fn read(
        &self,
        accessor: &Accessor,
        resource_type: &str,
        id: &str,
        version: Option<i64>,
    ) -> Result<Granted<StoredResource>, RecordError> {
        let asking = self.asking(accessor).await?;
        let mut resource = self.records.read(resource_type, id, version).await?;
        let policy_ids = asking.show(Action::Read, &mut resource)?;
        Ok(Granted { value: resource, policy_ids })
    }

    /// Searches within what the caller may read: the scope is part of the query, so the
    /// total and the paging never count a record outside it.
    pub async fn search(
        &self,
        accessor: &Accessor,
        resource_type: &str,
        request: &SearchRequest,
        offset: u64,
    ) -> Result<Granted<GuardedPage>, RecordError> {
        let asking = self.asking(accessor).await?;
        let scope = asking.scope(Action::Search, resource_type);
        if scope.is_empty() {
            return Err(forbidden(Vec::new()));
        }
        let filters = self.scope_filters(&scope, true);
        let page = self.records.search_in(resource_type, request, offset, filters).await?;
        let has_more = page.count > 0 && offset + page.count < page.total;
        let (resources, mut policy_ids, refused) = asking.filter(Action::Search, page.resources);
        policy_ids.extend(scope.policy_ids);
        policy_ids.sort();
        policy_ids.dedup();
        let total = (!refused).then_some(page.total);
        Ok(Granted {
            value: GuardedPage { resources, total, has_more, offset: page.offset, count: page.count },
            policy_ids,
        })
    }

    /// History of one resource or a whole type, within what the caller may read.
    pub async fn history(
        &self,
        accessor: &Accessor,
        resource_type: &str,
        id: Option<&str>,
        offset: u64,
        count: u64,
    ) -> Result<Granted<GuardedHistory>, RecordError> {
        let asking = self.asking(accessor).await?;
        let filters = match id {
            // One resource: its current version decides whether its history is visible.
            Some(id) => {
                let mut current = self.records.read(resource_type, id, None).await?;
                asking.show(Action::History, &mut current)?;
                Vec::new()
            }
            None => {
                let scope = asking.scope(Action::History, resource_type);
                if scope.is_empty() {
                    return Err(forbidden(Vec::new()));
                }
                self.scope_filters(&scope, false)
            }
        };
        let page = self.records.history_in(resource_type, id, &filters, offset, count).await?;
        let has_more = count > 0 && offset + count < page.total;
        let (versions, policy_ids, refused) = asking.filter(Action::History, page.versions);
        let total = (!refused).then_some(page.total);
        Ok(Granted { value: GuardedHistory { versions, total, has_more }, policy_ids })
    }

    pub(super) fn scope_filters(&self, scope: &SearchScope, with_labels: bool) -> Vec<Filter> {
        let mut filters = vec![Filter::Scope { patients: scope.patients.clone(), unassigned: scope.unassigned }];
        if with_labels && !scope.excluded_labels.is_empty() {
            let index = self.records.keys.ring().blind_index();
            // The code-only token form, as `_security=CODE` searches it.
            let terms =
                scope.excluded_labels.iter().map(|label| index.term("_security", &format!("c:{label}"))).collect();
            filters.push(Filter::WithoutTerms { param: "_security", terms });
        }
        filters
    }

    /// Creates a resource the caller may create. A conditional create that matches an
    /// existing resource returns it only if the caller may read it.
    pub async fn create(
        &self,
        accessor: &Accessor,
        resource_type: &str,
        mut body: Value,
        if_none_exist: Option<&[(String, String)]>,
    ) -> Result<Granted<WriteOutcome>, RecordError> {
        let asking = self.asking(accessor).await?;
        strip_redacted_label(&mut body);
        // The id is not known yet: a new Patient is its own compartment, decided as "a
        // patient this caller has no relationship with yet".
        let facts = RecordFacts::of(
            resource_type,
            None,
            if resource_type == "Patient" {
                Some("(new patient)".to_owned())
            } else {
                patient_compartment(resource_type, "", &body)
            },
            &body,
        );
        let decision = asking.decide(Action::Create, facts)?;
        // The condition is matched within what the caller may see: a 403 for a match they
        // may not read would reveal that such a record exists.
        if let Some(condition) = if_none_exist
            && let Some(mut existing) = self.visible_match(&asking, resource_type, condition).await?
        {
            let policy_ids = asking.show(Action::Read, &mut existing)?;
            return Ok(Granted { value: WriteOutcome { resource: existing, created: false }, policy_ids });
        }
        let mut outcome = self.records.create(resource_type, body, None).await?;
        decision.mask.apply(resource_type, &mut outcome.resource.body);
        Ok(Granted { value: outcome, policy_ids: decision.policy_ids })
    }

    /// The one resource matching a conditional create's query among those the caller may
    /// search; `None` if none, [`RecordError::MultipleMatches`] if several.
    async fn visible_match(
        &self,
        asking: &Asking<'_>,
        resource_type: &str,
        condition: &[(String, String)],
    ) -> Result<Option<StoredResource>, RecordError> {
        let mut request = phivault_fhir::search::parse_search(resource_type, condition, true)?;
        if request.clauses.is_empty() {
            return Err(phivault_fhir::FhirError::invalid("a condition must hold at least one search parameter").into());
        }
        request.count = 2;
        let scope = asking.scope(Action::Search, resource_type);
        if scope.is_empty() {
            return Ok(None);
        }
        let page = self.records.search_in(resource_type, &request, 0, self.scope_filters(&scope, true)).await?;
        let (mut visible, _, _) = asking.filter(Action::Search, page.resources);
        match visible.len() {
            0 => Ok(None),
            1 => Ok(visible.pop()),
            _ => Err(RecordError::MultipleMatches),
        }
    }

    /// Updates (or creates with a chosen id) a resource the caller may write, both as it
    /// is and as it will be: a record cannot be moved into or out of a patient's
    /// compartment the caller cannot write. Fields the caller's view masks keep their
    /// stored values, so a masked read followed by an update loses nothing.
    pub async fn update(
        &self,
        accessor: &Accessor,
        resource_type: &str,
        id: &str,
        mut body: Value,
        if_match: Option<i64>,
    ) -> Result<Granted<WriteOutcome>, RecordError> {
        let asking = self.asking(accessor).await?;
        strip_redacted_label(&mut body);
        let current = match self.records.read(resource_type, id, None).await {
            Ok(current) => Some(current),
            Err(RecordError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut policy_ids = Vec::new();
        let mask = match &current {
            Some(current) => {
                let before = asking.decide(Action::Update, facts_of(resource_type, id, &current.body))?;
                policy_ids.extend(before.policy_ids);
                before.mask.restore(resource_type, &mut body, &current.body);
                before.mask
            }
            None => FieldMask::default(),
        };
        let action = if current.is_some() { Action::Update } else { Action::Create };
        let after = asking.decide(action, facts_of(resource_type, id, &body))?;
        policy_ids.extend(after.policy_ids);
        policy_ids.sort();
        policy_ids.dedup();
        let mut outcome = self.records.update(resource_type, id, body, if_match).await?;
        mask.apply(resource_type, &mut outcome.resource.body);
        after.mask.apply(resource_type, &mut outcome.resource.body);
        Ok(Granted { value: outcome, policy_ids })
    }

    /// Processes a batch or transaction Bundle, deciding every entry it writes and every
    /// existing record it would reveal.
    pub async fn process_bundle(&self, accessor: &Accessor, body: Value) -> Result<Granted<Bundle>, RecordError> {
        let asking = self.asking(accessor).await?;
        let guard = EntryGuard { asking, policy_ids: std::sync::Mutex::new(Vec::new()) };
        let bundle = self.records.process_bundle_guarded(body, &guard).await?;
        let mut policy_ids = guard.policy_ids.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        policy_ids.sort();
        policy_ids.dedup();
        Ok(Granted { value: bundle, policy_ids })
    }
}

/// Bundle entries decided one by one.
struct EntryGuard<'a> {
    asking: Asking<'a>,
    policy_ids: std::sync::Mutex<Vec<String>>,
}

impl EntryGuard<'_> {
    fn note(&self, ids: Vec<String>) {
        if let Ok(mut all) = self.policy_ids.lock() {
            all.extend(ids);
        }
    }
}

impl BundleGuard for EntryGuard<'_> {
    fn needs_current(&self) -> bool {
        true
    }

    fn may_write(
        &self,
        resource_type: &str,
        id: &str,
        body: &Value,
        current: Option<&StoredResource>,
    ) -> Result<(), RecordError> {
        if let Some(current) = current {
            let before = self.asking.decide(Action::Update, facts_of(resource_type, id, &current.body))?;
            if !before.mask.is_empty() {
                // A Bundle cannot carry the merge of masked fields that a PUT does.
                return Err(RecordError::Forbidden { policy_ids: vec!["masked-view-updates-one-by-one".into()] });
            }
            self.note(before.policy_ids);
        }
        let action = if current.is_some() { Action::Update } else { Action::Create };
        let after = self.asking.decide(action, facts_of(resource_type, id, body))?;
        self.note(after.policy_ids);
        Ok(())
    }

    fn may_reveal(&self, found: &StoredResource) -> Result<(), RecordError> {
        let decision = self.asking.decide(Action::Read, facts_of(&found.resource_type, &found.id, &found.body))?;
        self.note(decision.policy_ids);
        Ok(())
    }
}
