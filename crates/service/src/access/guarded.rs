//! The record service as users and apps reach it: every operation decided by the policies.

use std::sync::Arc;

use phivault_fhir::patient_compartment;
use phivault_fhir::search::SearchRequest;
use phivault_policy::{Action, FieldMask, RecordFacts};
use serde_json::Value;

use phivault_audit::{AuditLog, Outcome};

use super::asking::{Asking, facts_of};
use super::trail::{event_for, name, name_resources, name_writes, pending};
use super::{AccessStore, Accessor, Granted, LivePolicies};
use crate::records::{Bundle, BundleGuard, PageCursor, Records, StoredResource, WriteOutcome};
use crate::{Filter, PendingEntry, RecordError, VersionWrite};

/// One page of search results a caller may see.
#[derive(Debug, Clone)]
pub struct GuardedPage {
    pub resources: Vec<StoredResource>,
    /// Records the matches reach through `_include` / `_revinclude`, each decided and masked.
    pub included: Vec<StoredResource>,
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
    /// The trail the operations write their own entries to.
    pub(super) audit: AuditLog,
}

/// Default department window: 30 days.
pub const DEFAULT_DEPARTMENT_WINDOW_DAYS: u32 = 30;

/// Default length of a break-glass grant: one hour.
pub const DEFAULT_BREAK_GLASS_MINUTES: u32 = 60;

pub(super) fn forbidden(policy_ids: Vec<String>) -> RecordError {
    let policy_ids = if policy_ids.is_empty() { vec!["default-deny".to_owned()] } else { policy_ids };
    RecordError::Forbidden { policy_ids }
}

/// Removes the REDACTED label a client may send back with a masked resource: it describes
/// a response, not the record.
fn strip_redacted_label(body: &mut Value) {
    if let Some(Value::Array(security)) = body.pointer_mut("/meta/security") {
        security.retain(|c| c.get("code").and_then(Value::as_str) != Some(phivault_policy::REDACTED_CODE));
    }
}

impl GuardedRecords {
    /// Records behind `policies`, with relationships from `access`; every write commits
    /// its entry for `audit` with it.
    pub fn new(records: Records, policies: Arc<LivePolicies>, access: Arc<dyn AccessStore>, audit: AuditLog) -> Self {
        Self {
            records,
            policies,
            access,
            audit,
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

    /// How long a break-glass grant lasts, in minutes (what the request form tells).
    pub fn break_glass_minutes(&self) -> u32 {
        u32::try_from(self.break_glass_ms / 60_000).unwrap_or(u32::MAX)
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

    /// The patients `departments` make a user's now (for `phivault policy explain`).
    pub async fn department_patients_of(&self, departments: &[String]) -> Result<Vec<String>, RecordError> {
        self.department_patients(departments, None, self.records.clock.now_ms()).await
    }

    /// Patients with an Encounter in one of `departments` (Organization ids, as
    /// `Encounter.serviceProvider`) whose period reaches into the department window; with
    /// `among`, only those of these patients.
    pub(super) async fn department_patients(
        &self,
        departments: &[String],
        among: Option<&[String]>,
        now_ms: i64,
    ) -> Result<Vec<String>, RecordError> {
        if departments.is_empty() || among.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        let since = phivault_fhir::format_instant(now_ms - self.department_window_ms);
        let providers: Vec<String> = departments.iter().map(|d| format!("Organization/{d}")).collect();
        let query =
            [("service-provider".to_owned(), providers.join(",")), ("date".to_owned(), format!("ge{}", &since[..10]))];
        let request = phivault_fhir::search::parse_search("Encounter", &query, true)?;
        let mut store_query = self.records.store_query("Encounter", &request, 0);
        store_query.count_total = false;
        if let Some(among) = among {
            store_query.filters.push(Filter::Compartment(among.to_vec()));
        }
        Ok(self.records.store.compartments(&store_query).await?)
    }

    /// Reads the current version, or `version` (vread). A version is shown only if both it
    /// and the current version may be read: a label added later (an HIV result found on
    /// review) also closes the versions written before it.
    pub async fn read(
        &self,
        accessor: &Accessor,
        resource_type: &str,
        id: &str,
        version: Option<i64>,
    ) -> Result<Granted<StoredResource>, RecordError> {
        let asking = self.asking(accessor).await?;
        let mut resource = match self.records.read(resource_type, id, version).await {
            Ok(resource) => resource,
            Err(e) => return Err(self.hide_shredded(&asking, e).await),
        };
        let current = match version {
            Some(_) => match self.records.read(resource_type, id, None).await {
                Ok(current) => Some(current),
                Err(e) => return Err(self.hide_shredded(&asking, e).await),
            },
            None => None,
        };
        let mut patients: Vec<String> = current.iter().chain([&resource]).filter_map(compartment_of).collect();
        patients.dedup();
        self.relate(&asking, &patients).await?;
        let decided = (|| {
            let mut policy_ids = Vec::new();
            if let Some(current) = &current {
                let decision = asking.decide(Action::Read, facts_of(resource_type, id, &current.body))?;
                decision.mask.apply(resource_type, &mut resource.body);
                policy_ids = decision.policy_ids;
            }
            policy_ids.extend(asking.show(Action::Read, &mut resource)?);
            policy_ids.sort();
            policy_ids.dedup();
            Ok(policy_ids)
        })();
        let action = if version.is_some() { "vread" } else { "read" };
        match decided {
            Ok(policy_ids) => {
                self.record_disclosure(
                    accessor,
                    action,
                    resource_type,
                    Some(id),
                    std::slice::from_ref(&resource),
                    &policy_ids,
                )
                .await?;
                Ok(Granted { value: resource, policy_ids })
            }
            Err(e) => {
                let refusal = self.hide_refusal(&asking, e, resource_type, id, patients.first());
                self.record_refusal(accessor, action, &refusal).await?;
                Err(refusal)
            }
        }
    }

    /// Records, before they leave, the resources an operation returns: every `Type/id`
    /// and every patient whose compartment holds one, with the deciding policies. Fail
    /// closed: if the entry cannot be made durable the caller gets none of them.
    async fn record_disclosure(
        &self,
        accessor: &Accessor,
        action: &str,
        resource_type: &str,
        asked_id: Option<&str>,
        resources: &[StoredResource],
        policy_ids: &[String],
    ) -> Result<(), RecordError> {
        let mut event = event_for(&self.audit, accessor, self.records.clock.now_ms(), action, Outcome::Success);
        event.reason = Some("200".to_owned());
        event.resource_type = Some(resource_type.to_owned());
        event.policies = policy_ids.to_vec();
        // The id asked for first (a history of one resource names it once), then the rest.
        if let Some(id) = asked_id {
            name(&mut event, [(resource_type, id, None)]);
        }
        name_resources(&mut event, resources);
        self.audit.record(&event).await.map_err(|_| RecordError::AuditUnavailable)?;
        accessor.trail.mark_recorded();
        Ok(())
    }

    /// Records a refused direct read, vread or history with the patient it concerned and
    /// the deciding policies (the caller is told only "not found", or that emergency access
    /// can be requested).
    pub(super) async fn record_refusal(
        &self,
        accessor: &Accessor,
        action: &str,
        refusal: &RecordError,
    ) -> Result<(), RecordError> {
        let RecordError::Refused { policy_ids, patient, resource_type, id, break_glass } = refusal else {
            return Ok(());
        };
        let mut event = event_for(&self.audit, accessor, self.records.clock.now_ms(), action, Outcome::Denied);
        event.reason = Some(if *break_glass { "403" } else { "404" }.to_owned());
        event.resource_type = Some(resource_type.clone());
        event.resource_ids.push(format!("{resource_type}/{id}"));
        event.patient_ids.extend(patient.iter().cloned());
        event.policies = policy_ids.clone();
        self.audit.record(&event).await.map_err(|_| RecordError::AuditUnavailable)?;
        accessor.trail.mark_recorded();
        Ok(())
    }

    /// A destroyed record answers "gone" (410) only to those who may erase its patient's
    /// records (the privacy officer); to anyone else it looks like a record that never
    /// existed, so shredding leaves no trace of which ids were real.
    pub(super) async fn hide_shredded(&self, asking: &Asking<'_>, error: RecordError) -> RecordError {
        let RecordError::Shredded { resource_type, id } = &error else { return error };
        let patient = match self.records.store.read(resource_type, id, None).await {
            Ok(Some(row)) => row.key.scope.strip_prefix("Patient/").map(str::to_owned),
            _ => None,
        };
        let may_erase = match &patient {
            Some(p) => {
                self.relate(asking, std::slice::from_ref(p)).await.is_ok()
                    && asking.decide_on_patient(Action::Erase, p).allowed
            }
            None => false,
        };
        if may_erase { error } else { RecordError::NotFound { resource_type: resource_type.clone(), id: id.clone() } }
    }

    /// A refused direct read, vread or history of one resource must look like a record that
    /// does not exist (`NotFound`), or a probe could learn which ids are real. Only a caller
    /// who may break the glass for the record's patient learns that it exists (a 403 that
    /// says so), since the emergency procedure needs it. Either way the refusal keeps its
    /// policies and the patient it concerned, for the audit entry.
    pub(super) fn hide_refusal(
        &self,
        asking: &Asking<'_>,
        error: RecordError,
        resource_type: &str,
        id: &str,
        patient: Option<&String>,
    ) -> RecordError {
        let RecordError::Forbidden { policy_ids } = error else { return error };
        let may_break_glass = asking.accessor.launch_patient.is_none()
            && patient.is_some_and(|p| asking.decide_on_patient(Action::BreakGlass, p).allowed);
        RecordError::Refused {
            policy_ids,
            patient: patient.cloned(),
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            break_glass: may_break_glass,
        }
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
        let scope = asking.search_scope(Action::Search, resource_type, request)?;
        if scope.is_empty() {
            return Err(forbidden(Vec::new()));
        }
        let filters = self.scope_filters(&asking, &scope, true).await?;
        let page = self.records.search_in(resource_type, request, offset, filters).await?;
        let has_more = page.count > 0 && offset + page.count < page.total;
        self.relate_results(&asking, &page.resources).await?;
        let (resources, mut policy_ids, refused) = asking.filter(Action::Search, page.resources);
        let (included, include_policies) = self.included(&asking, &resources, &request.includes).await?;
        policy_ids.extend(scope.policy_ids);
        policy_ids.extend(include_policies);
        policy_ids.sort();
        policy_ids.dedup();
        let total = (!refused).then_some(page.total);
        // One entry for the page: the matches and what they brought in.
        let disclosed: Vec<StoredResource> = resources.iter().chain(&included).cloned().collect();
        self.record_disclosure(accessor, "search", resource_type, None, &disclosed, &policy_ids).await?;
        Ok(Granted {
            value: GuardedPage { resources, included, total, has_more, offset: page.offset, count: page.count },
            policy_ids,
        })
    }

    /// History of one resource or a whole type, within what the caller may read. Every
    /// version is decided with the current version's labels as well as its own.
    pub async fn history(
        &self,
        accessor: &Accessor,
        resource_type: &str,
        id: Option<&str>,
        window: &phivault_fhir::search::HistoryWindow,
        offset: u64,
        count: u64,
    ) -> Result<Granted<GuardedHistory>, RecordError> {
        let asking = self.asking(accessor).await?;
        let mut filters = match id {
            // One resource: its current version decides whether its history is visible.
            Some(id) => {
                let mut current = match self.records.read(resource_type, id, None).await {
                    Ok(current) => current,
                    Err(e) => return Err(self.hide_shredded(&asking, e).await),
                };
                let patient = compartment_of(&current);
                self.relate(&asking, patient.as_slice()).await?;
                if let Err(e) = asking.show(Action::History, &mut current) {
                    let refusal = self.hide_refusal(&asking, e, resource_type, id, patient.as_ref());
                    self.record_refusal(accessor, "history", &refusal).await?;
                    return Err(refusal);
                }
                Vec::new()
            }
            None => {
                let scope = asking.scope(Action::History, resource_type);
                if scope.is_empty() {
                    return Err(forbidden(Vec::new()));
                }
                // Labels are not indexed per version: versions whose labels (or whose current
                // version's labels) refuse them are dropped below, and `total` omitted.
                self.scope_filters(&asking, &scope, false).await?
            }
        };
        filters.extend(window.since_ms.map(Filter::WrittenSince));
        filters.extend(window.at.map(|(from_ms, until_ms)| Filter::CurrentDuring { from_ms, until_ms }));
        let page = self.records.history_in(resource_type, id, &filters, offset, count).await?;
        let has_more = count > 0 && offset + count < page.total;
        self.relate_results(&asking, &page.versions).await?;
        let (versions, policy_ids, refused) = self.filter_versions(&asking, resource_type, page.versions).await?;
        let total = (!refused).then_some(page.total);
        self.record_disclosure(accessor, "history", resource_type, id, &versions, &policy_ids).await?;
        Ok(Granted { value: GuardedHistory { versions, total, has_more }, policy_ids })
    }

    /// [`Asking::filter`] for versions: each is decided on its own facts and on those of its
    /// resource's current version (read once per resource).
    async fn filter_versions(
        &self,
        asking: &Asking<'_>,
        resource_type: &str,
        versions: Vec<StoredResource>,
    ) -> Result<(Vec<StoredResource>, Vec<String>, bool), RecordError> {
        let mut currents: std::collections::HashMap<String, Option<StoredResource>> = Default::default();
        let mut kept = Vec::with_capacity(versions.len());
        let mut refused = false;
        for version in versions {
            if !currents.contains_key(&version.id) {
                let current = match self.records.read(resource_type, &version.id, None).await {
                    Ok(current) => Some(current),
                    Err(RecordError::NotFound { .. } | RecordError::Shredded { .. }) => None,
                    Err(e) => return Err(e),
                };
                currents.insert(version.id.clone(), current);
            }
            let later = currents.get(&version.id).and_then(Option::as_ref).filter(|c| c.version != version.version);
            if let Some(current) = later {
                self.relate(asking, compartment_of(current).as_slice()).await?;
                if asking.decide(Action::History, facts_of(resource_type, &current.id, &current.body)).is_err() {
                    refused = true;
                    continue;
                }
            }
            kept.push(version);
        }
        let (shown, policy_ids, refused_here) = asking.filter(Action::History, kept);
        Ok((shown, policy_ids, refused || refused_here))
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
        phivault_fhir::check_one_patient(resource_type, &body)?;
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
        self.relate(&asking, facts.patient.as_slice()).await?;
        let decision = asking.decide(Action::Create, facts)?;
        // The condition is matched within what the caller may see: a 403 for a match they
        // may not read would reveal that such a record exists.
        if let Some(condition) = if_none_exist
            && let Some(mut existing) = self.visible_match(&asking, resource_type, condition).await?
        {
            let policy_ids = asking.show(Action::Read, &mut existing)?;
            self.record_disclosure(
                accessor,
                "create",
                resource_type,
                None,
                std::slice::from_ref(&existing),
                &policy_ids,
            )
            .await?;
            return Ok(Granted { value: WriteOutcome { resource: existing, created: false }, policy_ids });
        }
        let describe = |writes: &[VersionWrite]| {
            self.write_entry(accessor, "create", resource_type, "201", &decision.policy_ids, writes)
        };
        let mut outcome = self.records.create_recorded(resource_type, body, None, Some(&describe)).await?;
        self.settle(accessor).await;
        decision.mask.apply(resource_type, &mut outcome.resource.body);
        Ok(Granted { value: outcome, policy_ids: decision.policy_ids })
    }

    /// The entry a write commits with: who, from where, under which policies, and every
    /// version it stores with its patient.
    fn write_entry(
        &self,
        accessor: &Accessor,
        action: &str,
        resource_type: &str,
        status: &str,
        policy_ids: &[String],
        writes: &[VersionWrite],
    ) -> PendingEntry {
        let mut event = event_for(&self.audit, accessor, self.records.clock.now_ms(), action, Outcome::Success);
        event.reason = Some(status.to_owned());
        if !resource_type.is_empty() {
            event.resource_type = Some(resource_type.to_owned());
        }
        event.policies = policy_ids.to_vec();
        name_writes(&mut event, writes);
        pending(&event)
    }

    /// After a commit that carried its entry: the request is recorded, and the entry is
    /// given its place in the hash chain. If chaining fails now the entry is still durable
    /// (it was committed with the write) and the trail's next append chains it, so the
    /// write is reported as done.
    pub(super) async fn settle(&self, accessor: &Accessor) {
        accessor.trail.mark_recorded();
        if let Err(e) = self.audit.settle().await {
            tracing::error!(error = %e, "a write's audit entry is stored but not yet chained; the next append chains it");
        }
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
        let scope = asking.search_scope(Action::Search, resource_type, &request)?;
        if scope.is_empty() {
            return Ok(None);
        }
        let filters = self.scope_filters(asking, &scope, true).await?;
        let page = self.records.search_in(resource_type, &request, 0, filters).await?;
        self.relate_results(asking, &page.resources).await?;
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
        // Bad input is answered as bad input, whatever exists at the id.
        phivault_fhir::validate_resource(&body, Some(resource_type), Some(id))?;
        phivault_fhir::check_one_patient(resource_type, &body)?;
        let current = match self.records.read(resource_type, id, None).await {
            Ok(current) => Some(current),
            Err(RecordError::NotFound { .. }) => None,
            Err(e) => return Err(self.hide_shredded(&asking, e).await),
        };
        let patients: Vec<String> = current
            .as_ref()
            .and_then(compartment_of)
            .into_iter()
            .chain(patient_compartment(resource_type, id, &body))
            .collect();
        self.relate(&asking, &patients).await?;
        // Update-as-create is refused: a PUT to a new id answering 201 while a PUT to an
        // existing, out-of-reach id answers "not found" would tell a probe which ids are
        // real. Both now answer what a made-up id does (records come in by POST, or by the
        // operator's import); an unreadable existing record is refused as a read is.
        let Some(existing) = &current else {
            return Err(RecordError::NotFound { resource_type: resource_type.to_owned(), id: id.to_owned() });
        };
        if let Err(e) = asking.decide(Action::Read, facts_of(resource_type, id, &existing.body)) {
            // The stored record's patient, never one the body names.
            let refusal = self.hide_refusal(&asking, e, resource_type, id, compartment_of(existing).as_ref());
            self.record_refusal(accessor, "update", &refusal).await?;
            return Err(refusal);
        }
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
        let status = if current.is_some() { "200" } else { "201" };
        let describe =
            |writes: &[VersionWrite]| self.write_entry(accessor, "update", resource_type, status, &policy_ids, writes);
        let mut outcome = self.records.update_recorded(resource_type, id, body, if_match, Some(&describe)).await?;
        self.settle(accessor).await;
        mask.apply(resource_type, &mut outcome.resource.body);
        after.mask.apply(resource_type, &mut outcome.resource.body);
        Ok(Granted { value: outcome, policy_ids })
    }

    /// Processes a batch or transaction Bundle, deciding every entry it writes and every
    /// existing record it would reveal.
    pub async fn process_bundle(&self, accessor: &Accessor, body: Value) -> Result<Granted<Bundle>, RecordError> {
        let asking = self.asking(accessor).await?;
        let guard = EntryGuard {
            records: self,
            asking,
            policy_ids: std::sync::Mutex::new(Vec::new()),
            revealed: std::sync::Mutex::new(Vec::new()),
            refused: std::sync::Mutex::new(Vec::new()),
            revealed_in_flight: std::sync::Mutex::new(0),
        };
        let processed = self.records.process_bundle_guarded(body, &guard).await;
        // Entries the policies refused (a batch's, one by one; a transaction's first) are
        // recorded as denied, with the resources and patients they concerned, before the
        // answer leaves (fail closed), as a refused read is.
        let refused = guard.refused.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default();
        if !refused.is_empty() {
            let mut event = event_for(&self.audit, accessor, self.records.clock.now_ms(), "batch", Outcome::Denied);
            event.reason = Some(format!("{} entries refused by policy", refused.len()));
            for r in &refused {
                match &r.id {
                    Some(id) => name(&mut event, [(r.resource_type.as_str(), id.as_str(), r.patient.clone())]),
                    None => {
                        if let Some(p) = r.patient.as_ref().filter(|p| !event.patient_ids.contains(p)) {
                            event.patient_ids.push(p.clone());
                        }
                    }
                }
                event.policies.extend(r.policy_ids.iter().cloned());
            }
            event.policies.sort();
            event.policies.dedup();
            self.audit.record(&event).await.map_err(|_| RecordError::AuditUnavailable)?;
            accessor.trail.mark_recorded();
        }
        let bundle = processed?;
        if bundle.entries.iter().any(|e| e.as_ref().is_ok_and(|o| o.written)) {
            self.settle(accessor).await;
        }
        let mut policy_ids = guard.policy_ids.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        policy_ids.sort();
        policy_ids.dedup();
        // Existing records the Bundle matched (and so reveals in its response) get an entry
        // of their own, written before the response leaves (fail closed).
        let revealed = guard.revealed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !revealed.is_empty() {
            let now = self.records.clock.now_ms();
            let mut event = event_for(&self.audit, accessor, now, "batch", Outcome::Success);
            event.reason = Some("200".to_owned());
            event.policies = policy_ids.clone();
            name_resources(&mut event, &revealed);
            self.audit.record(&event).await.map_err(|_| RecordError::AuditUnavailable)?;
            accessor.trail.mark_recorded();
        }
        Ok(Granted { value: bundle, policy_ids })
    }
}

/// The patient whose compartment holds a stored resource.
fn compartment_of(resource: &StoredResource) -> Option<String> {
    patient_compartment(&resource.resource_type, &resource.id, &resource.body)
}

/// Bundle entries decided one by one.
struct EntryGuard<'a> {
    records: &'a GuardedRecords,
    asking: Asking<'a>,
    policy_ids: std::sync::Mutex<Vec<String>>,
    /// Existing records a condition matched and the response will show.
    revealed: std::sync::Mutex<Vec<StoredResource>>,
    /// Entries the policies refused to write.
    refused: std::sync::Mutex<Vec<RefusedEntry>>,
    /// How many of `revealed` the entry of the commit in flight names.
    revealed_in_flight: std::sync::Mutex<usize>,
}

/// A Bundle entry the policies refused: what it would have written, for the audit entry.
struct RefusedEntry {
    resource_type: String,
    /// The record it would have replaced; none for a create (its id was never used).
    id: Option<String>,
    patient: Option<String>,
    policy_ids: Vec<String>,
}

impl EntryGuard<'_> {
    fn note(&self, ids: Vec<String>) {
        self.policy_ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(ids);
    }

    /// The decisions on one entry's write (its patients already related; whether the caller
    /// may see the record it replaces was decided by `may_replace`).
    fn decide_write(
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
}

#[async_trait::async_trait]
impl BundleGuard for EntryGuard<'_> {
    fn needs_current(&self) -> bool {
        true
    }

    fn sees_everything(&self) -> bool {
        false
    }

    async fn find_unique(
        &self,
        _records: &Records,
        resource_type: &str,
        query: &[(String, String)],
    ) -> Result<Option<StoredResource>, RecordError> {
        self.records.visible_match(&self.asking, resource_type, query).await
    }

    async fn may_write(
        &self,
        resource_type: &str,
        id: &str,
        body: &Value,
        current: Option<&StoredResource>,
    ) -> Result<(), RecordError> {
        phivault_fhir::check_one_patient(resource_type, body)?;
        let patients: Vec<String> =
            current.and_then(compartment_of).into_iter().chain(patient_compartment(resource_type, id, body)).collect();
        self.records.relate(&self.asking, &patients).await?;
        let decided = self.decide_write(resource_type, id, body, current);
        if let Err(RecordError::Forbidden { policy_ids } | RecordError::Refused { policy_ids, .. }) = &decided {
            self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(RefusedEntry {
                resource_type: resource_type.to_owned(),
                id: current.map(|_| id.to_owned()),
                patient: patients.first().cloned(),
                policy_ids: policy_ids.clone(),
            });
        }
        decided
    }

    async fn may_reveal(&self, found: &StoredResource) -> Result<(), RecordError> {
        self.records.relate(&self.asking, compartment_of(found).as_slice()).await?;
        let decision = self.asking.decide(Action::Read, facts_of(&found.resource_type, &found.id, &found.body))?;
        self.note(decision.policy_ids);
        self.revealed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(found.clone());
        Ok(())
    }

    fn entry_for(&self, writes: &[VersionWrite]) -> Option<PendingEntry> {
        let mut policy_ids = self.policy_ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        policy_ids.sort();
        policy_ids.dedup();
        // The existing records matched so far ride in this commit's entry: they are durable
        // together with the writes, so a failure after the commit cannot leave the client
        // with a 503 for a Bundle that happened (what is matched after the last commit, or in
        // a Bundle that writes nothing, still gets its own entry before the answer leaves).
        // Named now, dropped from `revealed` only once the commit succeeds (`committed`):
        // if it fails, they still get their own entry before the answer leaves.
        let revealed = self.revealed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        *self.revealed_in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = revealed.len();
        let mut event = event_for(
            &self.records.audit,
            self.asking.accessor,
            self.records.records.clock.now_ms(),
            "batch",
            Outcome::Success,
        );
        event.reason = Some("200".to_owned());
        event.policies = policy_ids;
        name_writes(&mut event, writes);
        name_resources(&mut event, &revealed);
        Some(pending(&event))
    }

    fn committed(&self) {
        let in_flight =
            std::mem::take(&mut *self.revealed_in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut revealed = self.revealed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = in_flight.min(revealed.len());
        revealed.drain(..n);
    }

    async fn may_replace(&self, current: &StoredResource) -> Result<(), RecordError> {
        let patient = compartment_of(current);
        self.records.relate(&self.asking, patient.as_slice()).await?;
        let Err(e) = self.asking.decide(Action::Read, facts_of(&current.resource_type, &current.id, &current.body))
        else {
            return Ok(());
        };
        let refusal = self.records.hide_refusal(&self.asking, e, &current.resource_type, &current.id, patient.as_ref());
        if let RecordError::Refused { policy_ids, .. } = &refusal {
            self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(RefusedEntry {
                resource_type: current.resource_type.clone(),
                id: Some(current.id.clone()),
                patient,
                policy_ids: policy_ids.clone(),
            });
        }
        Err(refusal)
    }

    async fn shown(&self, error: RecordError) -> RecordError {
        self.records.hide_shredded(&self.asking, error).await
    }
}
