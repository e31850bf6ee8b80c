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
    /// policies that decided them. Only what is shown counts toward [`MAX_INCLUDED`]: a
    /// record the caller may not see weighs exactly what a reference to nothing weighs.
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
        // Everything looked at already (shown or not): each is fetched and decided once.
        let mut tried: Vec<(String, String)> =
            matches.iter().map(|r| (r.resource_type.clone(), r.id.clone())).collect();
        let mut from: Vec<StoredResource> = matches.to_vec();
        for level in 0..2 {
            let wanted: Vec<&Include> = includes.iter().filter(|i| level == 0 || i.iterate).collect();
            if wanted.is_empty() || from.is_empty() {
                break;
            }
            let mut found: Vec<StoredResource> = Vec::new();
            for include in wanted {
                let (shown, ids) = if include.reverse {
                    if !allowed_type(&asking.accessor.searchable_types, &include.source_type) {
                        continue;
                    }
                    self.reverse_included(asking, &from, include, &tried).await?
                } else {
                    self.forward_included(asking, &from, include, &mut tried).await?
                };
                policy_ids.extend(ids);
                for resource in shown {
                    let key = (resource.resource_type.clone(), resource.id.clone());
                    if !found.iter().chain(&included).any(|r| r.resource_type == key.0 && r.id == key.1) {
                        if !tried.contains(&key) {
                            tried.push(key);
                        }
                        found.push(resource);
                    }
                }
                if included.len() + found.len() > MAX_INCLUDED {
                    return Err(too_many());
                }
            }
            from = found.clone();
            included.extend(found);
        }
        Ok((included, policy_ids))
    }

    /// The records `from` references through `include` that the caller may read, decided
    /// and masked as reads; a reference to a record that does not exist, was destroyed, is
    /// refused or is of a type the caller's token does not cover brings in nothing.
    async fn forward_included(
        &self,
        asking: &Asking<'_>,
        from: &[StoredResource],
        include: &Include,
        tried: &mut Vec<(String, String)>,
    ) -> Result<(Vec<StoredResource>, Vec<String>), RecordError> {
        let mut targets: Vec<(String, String)> = Vec::new();
        for resource in from.iter().filter(|r| r.resource_type == include.source_type) {
            for target in referenced(&resource.body, include) {
                if !tried.contains(&target) && !targets.contains(&target) {
                    targets.push(target);
                }
            }
        }
        tried.extend(targets.iter().cloned());
        let mut fetched = Vec::new();
        for (resource_type, id) in targets {
            if !allowed_type(&asking.accessor.readable_types, &resource_type) {
                continue;
            }
            match self.records.read(&resource_type, &id, None).await {
                Ok(resource) => fetched.push(resource),
                Err(RecordError::NotFound { .. } | RecordError::Shredded { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.relate_results(asking, &fetched).await?;
        let (shown, ids, _) = asking.filter(Action::Read, fetched);
        Ok((shown, ids))
    }

    /// The records of `include.source_type` in the compartments of the Patients among
    /// `from` that the caller may see, decided as a search of that type. Read page by page
    /// to the end, so that what is refused never decides whether the page is too large.
    async fn reverse_included(
        &self,
        asking: &Asking<'_>,
        from: &[StoredResource],
        include: &Include,
        tried: &[(String, String)],
    ) -> Result<(Vec<StoredResource>, Vec<String>), RecordError> {
        let mut out: Vec<StoredResource> = Vec::new();
        let mut policy_ids = Vec::new();
        for patient in from.iter().filter(|r| r.resource_type == "Patient") {
            let query = [("patient".to_owned(), patient.id.clone())];
            let mut request = parse_search(&include.source_type, &query, true)?;
            request.count = phivault_fhir::search::MAX_COUNT;
            let scope = asking.search_scope(Action::Search, &include.source_type, &request)?;
            if scope.is_empty() {
                // The caller may not search this type at all: nothing to include.
                return Ok((out, policy_ids));
            }
            policy_ids.extend(scope.policy_ids.iter().cloned());
            let filters = self.scope_filters(asking, &scope, true).await?;
            let mut offset = 0u64;
            loop {
                let page = self.records.search_in(&include.source_type, &request, offset, filters.clone()).await?;
                let fetched = page.resources.len() as u64;
                self.relate_results(asking, &page.resources).await?;
                let (shown, ids, _) = asking.filter(Action::Search, page.resources);
                policy_ids.extend(ids);
                out.extend(
                    shown.into_iter().filter(|r| !tried.iter().any(|(t, i)| *t == r.resource_type && *i == r.id)),
                );
                if out.len() > MAX_INCLUDED {
                    return Err(too_many());
                }
                offset += fetched;
                if fetched == 0 || offset >= page.total {
                    break;
                }
            }
        }
        Ok((out, policy_ids))
    }
}

/// Whether a token's scopes (`None`: not narrowed) cover `resource_type`.
fn allowed_type(types: &Option<Vec<String>>, resource_type: &str) -> bool {
    types.as_ref().is_none_or(|types| types.iter().any(|t| t == resource_type))
}

fn too_many() -> RecordError {
    RecordError::Invalid(FhirError::new(
        IssueType::TooCostly,
        format!("the page would include more than {MAX_INCLUDED} records: ask for fewer matches with _count"),
    ))
}
