//! Bulk export through the policies: what a caller may export is decided record by record
//! (`export`), exactly as a read would be, with the decision's field mask applied and the
//! de-identification profile a policy demands (`@deidentify`) named beside each record.
//! The store query carries the policies' search scope, so records outside it are never
//! even decrypted.
//!
//! Safeguards: 45 CFR 164.312(a)(1) access control; 164.502(b) minimum necessary;
//! 164.514(b) de-identification.

use phivault_fhir::search::{SearchRequest, parse_search};
use phivault_fhir::{FhirError, format_instant, patient_compartment};
use phivault_policy::Action;

use super::asking::facts_of;
use super::{Accessor, Granted, GuardedRecords};
use crate::records::StoredResource;
use crate::{Filter, RecordError, ScopePatients};

/// Which records an export covers (the Bulk Data IG's three levels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportLevel {
    /// `/$export`: every record the caller may export.
    System,
    /// `/Patient/$export`: records in any patient's compartment.
    AllPatients,
    /// `/Group/{id}/$export`: records in these patients' compartments.
    Patients(Vec<String>),
}

/// One record the caller may export, masked, with the profile a policy demands.
#[derive(Debug, Clone)]
pub struct ExportItem {
    pub resource: StoredResource,
    /// `@deidentify` of the deciding policies, if every one of them demands it.
    pub deidentify: Option<String>,
    /// The patient whose compartment holds the record.
    pub patient: Option<String>,
}

/// One page of an export.
#[derive(Debug, Clone)]
pub struct ExportPage {
    pub items: Vec<ExportItem>,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<ExportCursor>,
}

/// Where an export's walk over one type stands: the last record read (refused ones too),
/// in `(last_updated, id)` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportCursor {
    pub last_updated_ms: i64,
    pub id: String,
}

/// The window an export reads: changed at or after `since_ms` (`_since`) and not after
/// `until_ms` (the manifest's `transactionTime`: a record changed while the export runs
/// belongs to the next export, and its move cannot make a page skip another record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportWindow {
    pub since_ms: Option<i64>,
    pub until_ms: i64,
}

/// Records read per page of an export.
pub const EXPORT_PAGE: usize = 500;

fn page_request(resource_type: &str, window: ExportWindow) -> Result<SearchRequest, RecordError> {
    let mut query = vec![
        ("_count".to_owned(), EXPORT_PAGE.to_string()),
        ("_sort".to_owned(), "_lastUpdated".to_owned()),
        ("_lastUpdated".to_owned(), format!("le{}", format_instant(window.until_ms))),
    ];
    if let Some(since) = window.since_ms {
        query.push(("_lastUpdated".to_owned(), format!("ge{}", format_instant(since))));
    }
    Ok(parse_search(resource_type, &query, true)?)
}

impl GuardedRecords {
    /// Of `types`, those the caller may export at all (the policies leave some record of
    /// the type reachable), with the policies that allowed them: refuses at kick-off, and
    /// again at every status call and download, when none is left. The caller's facts are
    /// loaded once for all types.
    pub async fn exportable_types(
        &self,
        accessor: &Accessor,
        types: &[String],
    ) -> Result<Granted<Vec<String>>, RecordError> {
        let asking = self.asking(accessor).await?;
        let mut allowed = Vec::new();
        let mut policy_ids = Vec::new();
        for resource_type in types {
            let scope = asking.scope(Action::Export, resource_type);
            if !scope.is_empty() {
                allowed.push(resource_type.clone());
                policy_ids.extend(scope.policy_ids);
            }
        }
        if allowed.is_empty() {
            return Err(super::guarded::forbidden(Vec::new()));
        }
        policy_ids.sort();
        policy_ids.dedup();
        Ok(Granted { value: allowed, policy_ids })
    }

    /// One page of `resource_type` at `level` in `window`, after `after`: each record
    /// decided (`export`), masked; refused ones are left out.
    pub async fn export_page(
        &self,
        accessor: &Accessor,
        resource_type: &str,
        level: &ExportLevel,
        window: ExportWindow,
        after: Option<&ExportCursor>,
    ) -> Result<Granted<ExportPage>, RecordError> {
        let asking = self.asking(accessor).await?;
        let scope = asking.scope(Action::Export, resource_type);
        if scope.is_empty() {
            return Ok(Granted { value: ExportPage { items: Vec::new(), next: None }, policy_ids: Vec::new() });
        }
        let mut filters = self.scope_filters(&asking, &scope, true).await?;
        match level {
            ExportLevel::System => {}
            ExportLevel::AllPatients => filters.push(Filter::Scope { patients: ScopePatients::Any, unassigned: false }),
            ExportLevel::Patients(ids) => filters.push(Filter::Compartment(ids.clone())),
        }
        if let Some(after) = after {
            filters.push(Filter::After { last_updated_ms: after.last_updated_ms, id: after.id.clone() });
        }
        let request = page_request(resource_type, window)?;
        let page = self.records.search_in(resource_type, &request, 0, filters).await?;
        // A full page may have more after it; the cursor is the last record read,
        // whatever the policies then decide about it.
        let next = (page.resources.len() >= EXPORT_PAGE)
            .then(|| page.resources.last())
            .flatten()
            .map(|r| ExportCursor { last_updated_ms: r.last_updated_ms, id: r.id.clone() });
        self.relate_results(&asking, &page.resources).await?;
        let mut items = Vec::with_capacity(page.resources.len());
        let mut policy_ids = scope.policy_ids;
        for mut resource in page.resources {
            let facts = facts_of(&resource.resource_type, &resource.id, &resource.body);
            let Ok(decision) = asking.decide(Action::Export, facts) else { continue };
            decision.mask.apply(&resource.resource_type, &mut resource.body);
            let patient = patient_compartment(&resource.resource_type, &resource.id, &resource.body);
            policy_ids.extend(decision.policy_ids);
            items.push(ExportItem { resource, deidentify: decision.deidentify, patient });
        }
        policy_ids.sort();
        policy_ids.dedup();
        Ok(Granted { value: ExportPage { items, next }, policy_ids })
    }

    /// The patients of a Group the caller may read (`Group.member.entity` references to
    /// Patients), for a Group-level export.
    pub async fn group_patients(
        &self,
        accessor: &Accessor,
        group_id: &str,
    ) -> Result<Granted<Vec<String>>, RecordError> {
        let asking = self.asking(accessor).await?;
        let mut group = self.records.read("Group", group_id, None).await?;
        self.relate_results(&asking, std::slice::from_ref(&group)).await?;
        // The Group is decided as part of the export it defines.
        let policy_ids = asking.show(Action::Export, &mut group)?;
        let mut patients: Vec<String> = group
            .body
            .get("member")
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
            .filter_map(|m| m.pointer("/entity/reference").and_then(|r| r.as_str()))
            .filter_map(|r| r.strip_prefix("Patient/"))
            .filter(|id| phivault_fhir::is_valid_id(id))
            .map(str::to_owned)
            .collect();
        if patients.is_empty() {
            return Err(FhirError::invalid("the Group has no Patient members").into());
        }
        patients.sort();
        patients.dedup();
        Ok(Granted { value: patients, policy_ids })
    }
}

impl GuardedRecords {
    /// A patient's own record, unmasked, for the exporter to learn which names and numbers
    /// to scrub from that patient's free text. Never returned to a caller.
    pub(crate) async fn patient_for_redaction(
        &self,
        patient_id: &str,
    ) -> Result<Option<serde_json::Value>, RecordError> {
        match self.records.read("Patient", patient_id, None).await {
            Ok(patient) => Ok(Some(patient.body)),
            Err(RecordError::NotFound { .. } | RecordError::Shredded { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
