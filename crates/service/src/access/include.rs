//! `_include` and `_revinclude` on the guarded path: every record reached through a
//! reference is decided and masked like a direct read (forward) or a search (reverse), and
//! one the caller may not see is left out exactly as a reference to nothing would be; the
//! search's one audit entry names what was included.

use phivault_fhir::search::{Include, parse_search, referenced};
use phivault_fhir::{FhirError, IssueType};
use phivault_policy::Action;

use super::asking::Asking;
use super::guarded::GuardedRecords;
use crate::RecordError;
use crate::records::StoredResource;

/// At most this many records one page may include: a bound on the work one search asks
/// for. A page that would include more is refused (never cut short silently).
pub const MAX_INCLUDED: usize = 1_000;

impl GuardedRecords {
    /// The records `matches` reach through `includes` (then, for `:iterate`, through what
    /// that included, one level further), each one the caller may see, masked; and the
    /// policies that decided them.
    pub(super) async fn included(
        &self,
        asking: &Asking<'_>,
        matches: &[StoredResource],
        includes: &[Include],
    ) -> Result<(Vec<StoredResource>, Vec<String>), RecordError> {
        let mut included: Vec<StoredResource> = Vec::new();
        let mut policy_ids = Vec::new();
        if includes.is_empty() {
            return Ok((included, policy_ids));
        }
        let mut seen: Vec<(String, String)> = matches.iter().map(|r| (r.resource_type.clone(), r.id.clone())).collect();
        let mut from: Vec<StoredResource> = matches.to_vec();
        for level in 0..2 {
            let wanted: Vec<&Include> = includes.iter().filter(|i| level == 0 || i.iterate).collect();
            if wanted.is_empty() || from.is_empty() {
                break;
            }
            let mut found = Vec::new();
            for include in wanted {
                if include.reverse && !readable(asking, &include.source_type) {
                    continue;
                }
                let budget = MAX_INCLUDED.saturating_sub(included.len() + found.len());
                let reached = if include.reverse {
                    self.reverse_included(asking, &from, include, budget + 1).await?
                } else {
                    self.forward_included(&from, include, &seen, budget + 1).await?
                };
                for resource in reached {
                    let key = (resource.resource_type.clone(), resource.id.clone());
                    if !seen.contains(&key) {
                        seen.push(key);
                        found.push(resource);
                    }
                }
                if included.len() + found.len() > MAX_INCLUDED {
                    return Err(too_many());
                }
            }
            // Forward includes were read without a decision: decide them as reads now, with
            // their patients' relations (reverse ones were decided as a search already, and
            // deciding again as a read gives the same masked view or leaves them out).
            // A token scoped to some types reads only those, however a record is reached.
            found.retain(|r| readable(asking, &r.resource_type));
            self.relate_results(asking, &found).await?;
            let (shown, ids, _) = asking.filter(Action::Read, found);
            policy_ids.extend(ids);
            from = shown.clone();
            included.extend(shown);
        }
        Ok((included, policy_ids))
    }

    /// The records `from` references through `include`, as stored (undecided), at most
    /// `limit`; references to records that do not exist (or were destroyed) are skipped.
    async fn forward_included(
        &self,
        from: &[StoredResource],
        include: &Include,
        seen: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<StoredResource>, RecordError> {
        let mut targets: Vec<(String, String)> = Vec::new();
        for resource in from.iter().filter(|r| r.resource_type == include.source_type) {
            for target in referenced(&resource.body, include) {
                if !seen.contains(&target) && !targets.contains(&target) {
                    targets.push(target);
                }
            }
        }
        if targets.len() > limit {
            return Err(too_many());
        }
        let mut out = Vec::with_capacity(targets.len());
        for (resource_type, id) in targets {
            match self.records.read(&resource_type, &id, None).await {
                Ok(resource) => out.push(resource),
                Err(RecordError::NotFound { .. } | RecordError::Shredded { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The records of `include.source_type` in the compartments of the Patients among
    /// `from`, as a search of that type decides them, at most `limit`.
    async fn reverse_included(
        &self,
        asking: &Asking<'_>,
        from: &[StoredResource],
        include: &Include,
        limit: usize,
    ) -> Result<Vec<StoredResource>, RecordError> {
        let mut out = Vec::new();
        for patient in from.iter().filter(|r| r.resource_type == "Patient") {
            let query = [("patient".to_owned(), patient.id.clone())];
            let mut request = parse_search(&include.source_type, &query, true)?;
            request.count = limit.saturating_sub(out.len()).min(phivault_fhir::search::MAX_COUNT);
            let scope = asking.search_scope(Action::Search, &include.source_type, &request)?;
            if scope.is_empty() {
                // The caller may not search this type at all: nothing to include.
                return Ok(out);
            }
            let filters = self.scope_filters(asking, &scope, true).await?;
            let page = self.records.search_in(&include.source_type, &request, 0, filters).await?;
            if page.total > page.count {
                return Err(too_many());
            }
            self.relate_results(asking, &page.resources).await?;
            let (shown, _, _) = asking.filter(Action::Search, page.resources);
            out.extend(shown);
            if out.len() >= limit {
                return Err(too_many());
            }
        }
        Ok(out)
    }
}

fn readable(asking: &Asking<'_>, resource_type: &str) -> bool {
    asking.accessor.readable_types.as_ref().is_none_or(|types| types.iter().any(|t| t == resource_type))
}

fn too_many() -> RecordError {
    RecordError::Invalid(FhirError::new(
        IssueType::TooCostly,
        format!("the page would include more than {MAX_INCLUDED} records: ask for fewer matches with _count"),
    ))
}
