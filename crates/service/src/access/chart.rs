//! One patient's record in one decision pass and one audit entry: the Patient, then for
//! each type asked the newest resources in their compartment the caller may read. What a
//! chart page, a patient's own record page and (later) `$everything` show.
//!
//! The Patient is decided first, exactly as a read: refused, it looks like a record that
//! does not exist (or, to a caller who may break the glass, like one behind a door that
//! can be opened), and no other type is searched. A type the caller's role may not search
//! at all (billing and notes) is left out and marked withheld rather than failing the page.
//!
//! Safeguards: 45 CFR 164.312(a)(1) access control; 164.312(b) audit controls (one entry
//! naming every resource shown, written before the record leaves); 164.502(b) minimum
//! necessary (each resource masked by its own decision).

use phivault_audit::Outcome;
use phivault_fhir::search::{parse_search, search_param_names};
use phivault_policy::Action;

use super::asking::facts_of;
use super::guarded::GuardedRecords;
use super::trail::{event_for, name, name_resources};
use super::{Accessor, Granted, Requester};
use crate::RecordError;
use crate::records::StoredResource;

/// One section of a chart to read: the newest `limit` resources of `resource_type` in the
/// patient's compartment that also match `params` (say `category=laboratory`). A page asks
/// for what it shows, so the audit entry names what was shown, not more.
#[derive(Debug, Clone, Copy)]
pub struct ChartQuery<'a> {
    /// The page's name for the section (`labs`).
    pub section: &'a str,
    pub resource_type: &'a str,
    pub params: &'a [(&'a str, &'a str)],
    pub limit: usize,
}

impl<'a> ChartQuery<'a> {
    /// Every resource of `resource_type`, up to `limit`, under the type's own name.
    pub const fn all(resource_type: &'a str, limit: usize) -> Self {
        Self { section: resource_type, resource_type, params: &[], limit }
    }
}

/// The newest resources of one type in a patient's compartment.
#[derive(Debug, Clone)]
pub struct ChartSection {
    /// The section's name, as asked ([`ChartQuery::section`]).
    pub name: String,
    pub resource_type: String,
    /// Newest first (by the type's clinical date where it has one, else by last update).
    pub resources: Vec<StoredResource>,
    /// Whether the compartment holds more than were returned.
    pub more: bool,
    /// The caller's role may not search this type: nothing was looked at.
    pub withheld: bool,
}

/// A patient and the sections asked for, each resource masked to the caller's view.
#[derive(Debug, Clone)]
pub struct PatientChart {
    pub patient: StoredResource,
    pub sections: Vec<ChartSection>,
    /// When the caller's break-glass access to this patient ends, if that is what opens
    /// the chart to them now (every page of the patient shows it).
    pub emergency_until_ms: Option<i64>,
    /// Of the types read, those the caller may create in this patient's compartment
    /// now (a page offers only the forms whose write the policies would allow: a
    /// break-glass grant reads, it does not write).
    pub writable: Vec<String>,
}

impl PatientChart {
    /// The section named `name`, if it was asked for.
    pub fn section(&self, name: &str) -> Option<&ChartSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Whether the caller may create `resource_type` for this patient now (of the types
    /// the chart read).
    pub fn may_create(&self, resource_type: &str) -> bool {
        self.writable.iter().any(|t| t == resource_type)
    }
}

/// What `$everything` may be narrowed to (R4's `_type` and `_since`). The Patient itself is
/// always returned: it is the record's subject.
#[derive(Debug, Clone, Default)]
pub struct EverythingFilter {
    /// Only these types of the compartment (every one when `None`).
    pub types: Option<Vec<String>>,
    /// Only resources last updated at or after this FHIR instant.
    pub since: Option<String>,
}

/// At most this many resources of one type in one chart.
pub const CHART_MAX_PER_TYPE: usize = phivault_fhir::search::MAX_COUNT;

/// At most this many resources of one type in a patient's whole record (a download); a
/// type with more is marked `more`, never silently cut.
pub const EVERYTHING_MAX_PER_TYPE: usize = 20_000;

impl GuardedRecords {
    /// `patient_id`'s chart: the Patient and, for each of `queries`, up to its limit (at
    /// most [`CHART_MAX_PER_TYPE`]) of the newest resources the caller may read. One audit
    /// entry (`chart`, or the adapter's name for it) names every resource returned.
    pub async fn patient_chart(
        &self,
        accessor: &Accessor,
        patient_id: &str,
        queries: &[ChartQuery<'_>],
    ) -> Result<Granted<PatientChart>, RecordError> {
        let queries: Vec<ChartQuery<'_>> =
            queries.iter().map(|q| ChartQuery { limit: q.limit.clamp(1, CHART_MAX_PER_TYPE), ..*q }).collect();
        self.compartment_read(accessor, patient_id, &queries, "chart", false).await
    }

    /// `patient_id`'s whole record as the caller may read it: every type of R4's Patient
    /// compartment (or those `filter` names), up to [`EVERYTHING_MAX_PER_TYPE`] of each (a
    /// section with more says so). One audit entry (`everything`). What a patient
    /// downloads, and `Patient/{id}/$everything`.
    pub async fn patient_everything(
        &self,
        accessor: &Accessor,
        patient_id: &str,
        filter: &EverythingFilter,
    ) -> Result<Granted<PatientChart>, RecordError> {
        let mut types: Vec<&str> = phivault_fhir::patient_compartment_types().collect();
        if let Some(asked) = &filter.types {
            if let Some(outside) = asked.iter().position(|t| !types.contains(&t.as_str())) {
                // Named by position: the text is the client's.
                return Err(RecordError::Invalid(phivault_fhir::FhirError::invalid(format!(
                    "_type value #{} is not a resource type of the Patient compartment",
                    outside + 1
                ))));
            }
            types.retain(|t| asked.iter().any(|a| a == t));
        }
        let since = filter.since.as_ref().map(|s| format!("ge{s}"));
        let params: Vec<(&str, &str)> = since.iter().map(|s| ("_lastUpdated", s.as_str())).collect();
        let queries: Vec<ChartQuery<'_>> = types
            .into_iter()
            .map(|t| ChartQuery { params: &params, ..ChartQuery::all(t, EVERYTHING_MAX_PER_TYPE) })
            .collect();
        self.compartment_read(accessor, patient_id, &queries, "everything", true).await
    }

    async fn compartment_read(
        &self,
        accessor: &Accessor,
        patient_id: &str,
        queries: &[ChartQuery<'_>],
        action: &str,
        whole: bool,
    ) -> Result<Granted<PatientChart>, RecordError> {
        let asking = self.asking(accessor).await?;
        let mut patient = match self.records.read("Patient", patient_id, None).await {
            Ok(patient) => patient,
            Err(e) => return Err(self.hide_shredded(&asking, e).await),
        };
        let patient_ref = patient_id.to_owned();
        self.relate(&asking, std::slice::from_ref(&patient_ref)).await?;
        let mut policy_ids = match asking.show(Action::Read, &mut patient) {
            Ok(ids) => ids,
            Err(e) => {
                let refusal = self.hide_refusal(&asking, e, "Patient", patient_id, Some(&patient_ref));
                self.record_refusal(accessor, action, &refusal).await?;
                return Err(refusal);
            }
        };
        let emergency_until_ms = match &accessor.requester {
            Requester::User { user_id, .. } if asking.relations_to(patient_id).emergency => {
                self.access.emergency_access_until(user_id, patient_id, asking.now_ms).await?
            }
            _ => None,
        };
        let mut sections = Vec::with_capacity(queries.len());
        for asked in queries {
            let resource_type = &asked.resource_type;
            let by_date = search_param_names(resource_type).iter().any(|(n, _)| *n == "date");
            let mut query = vec![
                ("patient".to_owned(), patient_id.to_owned()),
                ("_sort".to_owned(), if by_date { "-date" } else { "-_lastUpdated" }.to_owned()),
            ];
            query.extend(asked.params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
            let mut request = parse_search(resource_type, &query, true)?;
            request.count = asked.limit;
            // The patient is known and related already: what this caller may see of the
            // type in this one compartment is decided for it directly (the decision a
            // search scope would derive by probing every kind of relationship), with the
            // labels that would refuse a record left out of the query, so the newest
            // `limit` the store returns are the newest the caller may see.
            let Some(filters) = self.chart_filters(&asking, resource_type, patient_id, &request) else {
                sections.push(ChartSection {
                    name: asked.section.to_owned(),
                    resource_type: (*resource_type).to_owned(),
                    resources: Vec::new(),
                    more: false,
                    withheld: true,
                });
                continue;
            };
            let found = self.records.search_first(resource_type, &request, filters).await?;
            // A whole record (`whole`) is never cut short: a type with more rows than one
            // answer carries is refused before anything is recorded as shown (counted as
            // stored, so no visible record beyond a refused one is silently dropped).
            if whole && found.len() > asked.limit {
                return Err(RecordError::Invalid(phivault_fhir::FhirError::new(
                    phivault_fhir::IssueType::TooCostly,
                    format!(
                        "the record holds more {resource_type} than one answer carries ({} of a type at most); \
                         narrow it with _type or _since, or use Patient/$export",
                        asked.limit
                    ),
                )));
            }
            self.relate_results(&asking, &found).await?;
            let (mut resources, ids, _) = asking.filter(Action::Search, found);
            // More follow only if the caller may see one past the limit: a refused record
            // must not announce itself as "more". (Refusals can leave a section short.)
            let more = resources.len() > asked.limit;
            resources.truncate(asked.limit);
            policy_ids.extend(ids);
            sections.push(ChartSection {
                name: asked.section.to_owned(),
                resource_type: (*resource_type).to_owned(),
                resources,
                more,
                withheld: false,
            });
        }
        policy_ids.sort();
        policy_ids.dedup();
        let mut writable: Vec<String> = queries
            .iter()
            .map(|q| q.resource_type)
            .filter(|t| {
                // The patient in both places a compartment reads it from.
                let reference = serde_json::json!({"reference": format!("Patient/{patient_id}")});
                let proposed = serde_json::json!({"resourceType": t, "subject": reference, "patient": reference});
                asking.decide(Action::Create, facts_of(t, "", &proposed)).is_ok()
            })
            .map(str::to_owned)
            .collect();
        writable.dedup();
        let chart = PatientChart { patient, sections, emergency_until_ms, writable };
        self.record_chart(accessor, action, &chart, &policy_ids).await?;
        Ok(Granted { value: chart, policy_ids })
    }

    /// The store filters for `resource_type` in `patient_id`'s compartment, or `None` when
    /// the caller may not search it there (or the query looks at an element their view of
    /// it hides). Probes go through the request's decision cache.
    fn chart_filters(
        &self,
        asking: &super::asking::Asking<'_>,
        resource_type: &str,
        patient_id: &str,
        request: &phivault_fhir::search::SearchRequest,
    ) -> Option<Vec<crate::Filter>> {
        let probe = |labels: Vec<String>| {
            let facts = phivault_policy::RecordFacts {
                resource_type: resource_type.to_owned(),
                id: None,
                patient: Some(patient_id.to_owned()),
                labels,
            };
            asking.decide(Action::Search, facts)
        };
        // Whether a view that would show a record hides an element the query looks at:
        // searching by it would confirm the hidden value.
        let hides = |mask: &phivault_policy::FieldMask| {
            request.clauses.iter().any(|clause| {
                let phivault_fhir::search::Clause::Terms { param, any_of } = clause else { return false };
                any_of.iter().flatten().any(|term| {
                    let system = phivault_fhir::search::token_term_system(term);
                    mask.removals.iter().any(|r| r.hides_search(resource_type, param, system))
                })
            })
        };
        let decision = probe(Vec::new()).ok()?;
        if hides(&decision.mask) {
            return None;
        }
        let mut excluded: Vec<&str> = Vec::new();
        for label in phivault_policy::PROBED_LABELS {
            match probe(vec![label.to_owned()]) {
                Ok(labelled) if hides(&labelled.mask) => return None,
                Ok(_) => {}
                Err(_) => excluded.push(label),
            }
        }
        let mut filters = Vec::new();
        if !excluded.is_empty() {
            let index = self.records.keys.ring().blind_index();
            let terms = excluded.iter().map(|label| index.term("_security", &format!("c:{label}"))).collect();
            filters.push(crate::Filter::WithoutTerms { param: "_security", terms });
        }
        Some(filters)
    }

    /// The entry for a chart shown: the Patient first, then every resource of every section.
    async fn record_chart(
        &self,
        accessor: &Accessor,
        action: &str,
        chart: &PatientChart,
        policy_ids: &[String],
    ) -> Result<(), RecordError> {
        let mut event = event_for(&self.audit, accessor, self.records.clock.now_ms(), action, Outcome::Success);
        event.reason = Some("200".to_owned());
        event.resource_type = Some("Patient".to_owned());
        event.policies = policy_ids.to_vec();
        name(&mut event, [("Patient", chart.patient.id.as_str(), Some(chart.patient.id.clone()))]);
        for section in &chart.sections {
            name_resources(&mut event, &section.resources);
        }
        self.audit.record(&event).await.map_err(|_| RecordError::AuditUnavailable)?;
        accessor.trail.mark_recorded();
        Ok(())
    }
}
