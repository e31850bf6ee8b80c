//! Batch and transaction Bundles.
//!
//! A transaction is all-or-nothing: ids are assigned first, `urn:uuid:` and conditional
//! references (`Practitioner?identifier=...`) are resolved, every entry is sealed, and all
//! versions are written in one store commit. A batch processes entries independently but
//! still writes them in groups (one durable commit per group, not per entry).

use std::collections::HashMap;

use phivault_fhir::{
    FhirError, IssueType, for_each_reference_mut, is_resource_type, is_valid_id, parse_query_string, parse_version_etag,
};
use serde_json::Value;

use super::codec::{KeyCache, Slot, new_resource_id};
use super::{Records, StoredResource};
use crate::{RecordError, VersionWrite};

/// Most entries a Bundle sent over the API may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// Entries written per commit in a batch.
const BATCH_COMMIT_SIZE: usize = 1000;

/// Decides, entry by entry, whether a Bundle may write what it holds and reveal the existing
/// records it matches. The access layer implements it from the policies; only the
/// operator's own loading (import, demo) runs with [`OperatorLoad`].
#[async_trait::async_trait]
pub trait BundleGuard: Send + Sync {
    /// Whether the guard needs the current version of a resource a PUT replaces.
    fn needs_current(&self) -> bool;
    /// Whether every record is within reach (the operator's own loads only).
    fn sees_everything(&self) -> bool;
    /// The one resource matching a condition (`ifNoneExist`, a conditional reference)
    /// among those the guard lets the Bundle see: what lies outside is treated exactly as
    /// what does not exist, so a condition cannot probe for records (an SSN, a diagnosis).
    async fn find_unique(
        &self,
        records: &Records,
        resource_type: &str,
        query: &[(String, String)],
    ) -> Result<Option<StoredResource>, RecordError>;
    /// A resource about to be written (references resolved), with the version it replaces.
    async fn may_write(
        &self,
        resource_type: &str,
        id: &str,
        body: &Value,
        current: Option<&StoredResource>,
    ) -> Result<(), RecordError>;
    /// An existing resource the Bundle would reveal: a conditional create's match, or the
    /// target of a conditional reference.
    async fn may_reveal(&self, found: &StoredResource) -> Result<(), RecordError>;
    /// The audit entry to commit with `writes` (one commit of this Bundle), naming them and
    /// whatever the Bundle revealed since the last commit; `None` only for the operator's
    /// own loads, which the console audits as one act.
    fn entry_for(&self, writes: &[VersionWrite]) -> Option<crate::PendingEntry>;
    /// The commit that carried the last [`BundleGuard::entry_for`] entry succeeded.
    fn committed(&self) {}
    /// An existing record a PUT entry would replace, before anything about the entry's body
    /// is looked at: refused here if the caller may not see it, so the answer for a hidden id
    /// is the answer for a made-up one.
    async fn may_replace(&self, _current: &StoredResource) -> Result<(), RecordError> {
        Ok(())
    }
    /// How an error about a stored record (a destroyed one) is shown to this caller.
    async fn shown(&self, error: RecordError) -> RecordError {
        error
    }
}

/// No checks: the operator loading data at the console (`phivault import`, `phivault
/// demo`), who holds the keys anyway. Never used for a request that arrives over HTTP.
#[derive(Debug, Clone, Copy)]
pub struct OperatorLoad;

#[async_trait::async_trait]
impl BundleGuard for OperatorLoad {
    fn needs_current(&self) -> bool {
        false
    }
    fn sees_everything(&self) -> bool {
        true
    }
    async fn find_unique(
        &self,
        records: &Records,
        resource_type: &str,
        query: &[(String, String)],
    ) -> Result<Option<StoredResource>, RecordError> {
        records.find_unique(resource_type, query).await
    }
    async fn may_write(&self, _: &str, _: &str, _: &Value, _: Option<&StoredResource>) -> Result<(), RecordError> {
        Ok(())
    }
    async fn may_reveal(&self, _: &StoredResource) -> Result<(), RecordError> {
        Ok(())
    }

    fn entry_for(&self, _: &[VersionWrite]) -> Option<crate::PendingEntry> {
        None
    }
}

/// Whether a Bundle was a batch or a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Batch,
    Transaction,
}

/// The outcome of one entry.
#[derive(Debug, Clone)]
pub struct EntryOutcome {
    pub resource: StoredResource,
    /// 201 Created when true, 200 OK when an update or an existing conditional match.
    pub created: bool,
    /// Whether this entry wrote a version (false: an existing conditional match).
    pub written: bool,
}

/// What a processed Bundle produced, entry by entry, in request order.
#[derive(Debug)]
pub struct Bundle {
    pub kind: BundleKind,
    pub entries: Vec<Result<EntryOutcome, RecordError>>,
}

enum Method {
    Post { if_none_exist: Option<String> },
    Put { id: String, if_match: Option<i64> },
}

struct Entry {
    full_url: Option<String>,
    resource_type: String,
    method: Method,
    resource: Value,
}

fn at(index: usize, e: FhirError) -> RecordError {
    RecordError::Invalid(FhirError::new(e.issue, format!("entry {index}: {}", e.message)))
}

fn parse_entry(index: usize, raw: Value) -> Result<Entry, RecordError> {
    let Value::Object(mut raw) = raw else {
        return Err(at(index, FhirError::new(IssueType::Structure, "entry is not an object")));
    };
    let resource = raw
        .remove("resource")
        .ok_or_else(|| at(index, FhirError::new(IssueType::Required, "entry.resource is missing")))?;
    let request =
        raw.get("request").ok_or_else(|| at(index, FhirError::new(IssueType::Required, "entry.request is missing")))?;
    let field = |name: &str| request.get(name).and_then(Value::as_str).map(str::to_owned);
    let url =
        field("url").ok_or_else(|| at(index, FhirError::new(IssueType::Required, "entry.request.url is missing")))?;
    let resource_type = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_owned();
    let method = match field("method").as_deref() {
        Some("POST") => {
            if url != resource_type {
                return Err(at(index, FhirError::invalid("entry.request.url must name the resource's type for POST")));
            }
            Method::Post { if_none_exist: field("ifNoneExist") }
        }
        Some("PUT") => {
            let (t, id) = url.split_once('/').ok_or_else(|| {
                at(index, FhirError::new(IssueType::NotSupported, "PUT needs a url of the form Type/id"))
            })?;
            if t != resource_type || !is_valid_id(id) {
                return Err(at(
                    index,
                    FhirError::invalid("entry.request.url does not match the resource's type or holds an invalid id"),
                ));
            }
            let if_match = match field("ifMatch") {
                Some(tag) => Some(
                    parse_version_etag(&tag)
                        .ok_or_else(|| at(index, FhirError::invalid("ifMatch is not a version ETag")))?,
                ),
                None => None,
            };
            Method::Put { id: id.to_owned(), if_match }
        }
        _ => return Err(at(index, FhirError::new(IssueType::NotSupported, "only POST and PUT entries are supported"))),
    };
    if !is_resource_type(&resource_type) {
        return Err(at(index, FhirError::new(IssueType::NotSupported, "entry.resource has no known resourceType")));
    }
    Ok(Entry {
        full_url: raw.get("fullUrl").and_then(Value::as_str).map(str::to_owned),
        resource_type,
        method,
        resource,
    })
}

impl Records {
    /// Processes a `batch` or `transaction` Bundle as the operator ([`OperatorLoad`]).
    pub async fn process_bundle(&self, body: Value) -> Result<Bundle, RecordError> {
        self.process_bundle_guarded(body, &OperatorLoad).await
    }

    /// Processes a `batch` or `transaction` Bundle, asking `guard` about every entry. A
    /// transaction either fully succeeds or returns the first error (a refusal included)
    /// and writes nothing; in a batch, a refused entry fails alone.
    pub async fn process_bundle_guarded(&self, body: Value, guard: &dyn BundleGuard) -> Result<Bundle, RecordError> {
        phivault_fhir::validate_resource(&body, Some("Bundle"), None)?;
        let kind = match body.get("type").and_then(Value::as_str) {
            Some("transaction") => BundleKind::Transaction,
            Some("batch") => BundleKind::Batch,
            _ => return Err(FhirError::invalid("Bundle.type must be batch or transaction").into()),
        };
        let Value::Object(mut body) = body else {
            return Err(FhirError::new(IssueType::Structure, "a Bundle must be an object").into());
        };
        let raw_entries = match body.remove("entry") {
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(FhirError::new(IssueType::Structure, "Bundle.entry must be an array").into()),
        };
        // A bound on the work and memory one request may ask for (a 100,000-entry Bundle
        // took 400 MB); the operator's own loads are not bounded.
        if !guard.sees_everything() && raw_entries.len() > MAX_ENTRIES {
            return Err(FhirError::new(
                IssueType::TooCostly,
                format!("a Bundle holds at most {MAX_ENTRIES} entries; this one has {}: split it", raw_entries.len()),
            )
            .into());
        }
        match kind {
            BundleKind::Transaction => {
                let entries = raw_entries
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| parse_entry(i, e))
                    .collect::<Result<Vec<_>, _>>()?;
                let outcomes = self.transaction(entries, guard).await?;
                Ok(Bundle { kind, entries: outcomes.into_iter().map(Ok).collect() })
            }
            BundleKind::Batch => Ok(Bundle { kind, entries: self.batch(raw_entries, guard).await? }),
        }
    }

    /// What a PUT entry replaces, decided before anything about its body is looked at, so a
    /// hidden, a destroyed and a made-up id answer alike: the current version and body (the
    /// guard shown the record), or the refusal of update-as-create.
    async fn replaced(
        &self,
        guard: &dyn BundleGuard,
        resource_type: &str,
        id: &str,
    ) -> Result<(Option<i64>, Option<StoredResource>), RecordError> {
        let (current, body) = match self.current_for(guard, resource_type, id).await {
            Ok(found) => found,
            Err(e) => return Err(guard.shown(e).await),
        };
        if let Some(existing) = &body {
            guard.may_replace(existing).await?;
        }
        refuse_put_create(guard, resource_type, id, current)?;
        Ok((current, body))
    }

    /// The current version number of a resource, and its body when the guard needs it.
    async fn current_for(
        &self,
        guard: &dyn BundleGuard,
        resource_type: &str,
        id: &str,
    ) -> Result<(Option<i64>, Option<StoredResource>), RecordError> {
        if !guard.needs_current() {
            return Ok((self.store.read(resource_type, id, None).await?.map(|v| v.version), None));
        }
        match self.read(resource_type, id, None).await {
            Ok(current) => Ok((Some(current.version), Some(current))),
            Err(RecordError::NotFound { .. }) => Ok((None, None)),
            Err(e) => Err(e),
        }
    }

    async fn transaction(
        &self,
        mut entries: Vec<Entry>,
        guard: &dyn BundleGuard,
    ) -> Result<Vec<EntryOutcome>, RecordError> {
        let mut targets: HashMap<String, String> = HashMap::new();
        let mut existing: Vec<Option<StoredResource>> = Vec::with_capacity(entries.len());
        let mut ids = Vec::with_capacity(entries.len());
        let mut conditions: HashMap<(String, String), usize> = HashMap::new();
        // 1. Decide each entry's id: assigned, client-chosen (PUT), or an existing match.
        for (i, entry) in entries.iter().enumerate() {
            let (id, found) = match &entry.method {
                Method::Post { if_none_exist: Some(cond) } => {
                    if let Some(&first) = conditions.get(&(entry.resource_type.clone(), cond.clone())) {
                        (ids.get(first).cloned().unwrap_or_default(), existing.get(first).cloned().flatten())
                    } else {
                        conditions.insert((entry.resource_type.clone(), cond.clone()), i);
                        match guard
                            .find_unique(self, &entry.resource_type, &parse_query_string(cond))
                            .await
                            .map_err(|e| in_entry(i, e))?
                        {
                            Some(found) => {
                                guard.may_reveal(&found).await.map_err(|e| in_entry(i, e))?;
                                (found.id.clone(), Some(found))
                            }
                            None => (new_resource_id()?, None),
                        }
                    }
                }
                Method::Post { if_none_exist: None } => (new_resource_id()?, None),
                Method::Put { id, .. } => (id.clone(), None),
            };
            if let Some(url) = &entry.full_url
                && targets.insert(url.clone(), format!("{}/{id}", entry.resource_type)).is_some()
            {
                // bdl-7: two entries with one fullUrl make every reference to it ambiguous.
                return Err(at(i, FhirError::invalid("fullUrl repeats an earlier entry's (bdl-7)")));
            }
            ids.push(id);
            existing.push(found);
        }
        // 2. Rewrite references, 3. seal every entry that writes.
        let now = self.clock.now_ms();
        let mut cache = KeyCache::default();
        let mut resolved: HashMap<String, String> = HashMap::new();
        let mut writes: Vec<VersionWrite> = Vec::new();
        let mut outcomes = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter_mut().enumerate() {
            if let Some(found) = existing[i].take() {
                outcomes.push(EntryOutcome { resource: found, created: false, written: false });
                continue;
            }
            let base = entry.full_url.as_deref().and_then(server_base);
            self.resolve_references(i, &mut entry.resource, &targets, base, &mut resolved, guard).await?;
            let id = &ids[i];
            let mut mismatch = false;
            let (version, replaces, current_body) = match &entry.method {
                Method::Put { if_match, .. } => {
                    let (current, body) = self.replaced(guard, &entry.resource_type, id).await?;
                    mismatch = if_match.is_some_and(|m| Some(m) != current);
                    (current.map_or(1, |v| v + 1), current, body)
                }
                Method::Post { .. } => (1, None, None),
            };
            guard
                .may_write(&entry.resource_type, id, &entry.resource, current_body.as_ref())
                .await
                .map_err(|e| in_entry(i, e))?;
            // Only after the decision: a version answer about a record the caller may not
            // write would tell them that it exists, and at which version.
            if mismatch {
                return Err(RecordError::VersionMismatch);
            }
            let mut body = std::mem::take(&mut entry.resource);
            let write = self
                .seal_version(
                    &mut cache,
                    Slot { resource_type: &entry.resource_type, id, version, replaces },
                    &mut body,
                    now,
                )
                .await
                .map_err(|e| in_entry(i, e))?;
            writes.push(write);
            outcomes.push(EntryOutcome {
                resource: StoredResource {
                    resource_type: entry.resource_type.clone(),
                    id: id.clone(),
                    version,
                    last_updated_ms: now,
                    body,
                },
                created: replaces.is_none(),
                written: true,
            });
        }
        // 4. One atomic commit, with the data keys created for it.
        let entry = guard.entry_for(&writes);
        self.store.commit(&cache.take_fresh(), &writes, entry.as_ref()).await?;
        guard.committed();
        Ok(outcomes)
    }

    async fn resolve_references(
        &self,
        index: usize,
        resource: &mut Value,
        targets: &HashMap<String, String>,
        base: Option<&str>,
        resolved: &mut HashMap<String, String>,
        guard: &dyn BundleGuard,
    ) -> Result<(), RecordError> {
        // Collect first (the visitor cannot await), then rewrite.
        let mut conditional = Vec::new();
        for_each_reference_mut::<RecordError>(resource, &mut |r| {
            // Another entry's fullUrl, whatever its form (urn:uuid:, an absolute URL), or a
            // relative reference that R4 resolves against this entry's absolute fullUrl
            // (`Patient/1` under `http://example.org/fhir/Observation/2`): the entry's
            // stored id. Left as written, it would dangle.
            let relative_target = base
                .filter(|_| !r.contains("://") && phivault_fhir::parse_relative_reference(r).is_some())
                .and_then(|base| targets.get(&format!("{base}/{r}")));
            if let Some(target) = targets.get(r.as_str()).or(relative_target) {
                *r = target.clone();
            } else if r.starts_with("urn:uuid:") || r.starts_with("urn:oid:") {
                return Err(at(
                    index,
                    FhirError::new(IssueType::NotFound, "a urn: reference names no entry of this Bundle"),
                ));
            } else if r.contains('?') && !resolved.contains_key(r.as_str()) {
                conditional.push(r.clone());
            }
            Ok(())
        })?;
        for reference in conditional {
            let (resource_type, query) = match reference.split_once('?') {
                Some((t, q)) => (t.to_owned(), q.to_owned()),
                None => continue,
            };
            let resource_type = resource_type.as_str();
            if !is_resource_type(resource_type) {
                return Err(at(index, FhirError::invalid("a conditional reference names no known resource type")));
            }
            let found = guard
                .find_unique(self, resource_type, &parse_query_string(&query))
                .await
                .map_err(|e| in_entry(index, e))?;
            let found = found.ok_or_else(|| {
                at(index, FhirError::new(IssueType::NotFound, "a conditional reference matched no resource"))
            })?;
            guard.may_reveal(&found).await.map_err(|e| in_entry(index, e))?;
            resolved.insert(reference, format!("{resource_type}/{}", found.id));
        }
        for_each_reference_mut::<RecordError>(resource, &mut |r| {
            if let Some(target) = resolved.get(r.as_str()) {
                *r = target.clone();
            }
            Ok(())
        })
    }

    async fn batch(
        &self,
        raw_entries: Vec<Value>,
        guard: &dyn BundleGuard,
    ) -> Result<Vec<Result<EntryOutcome, RecordError>>, RecordError> {
        // Prefetching matches across the whole database is for the operator's own loads;
        // a caller's conditions are matched inside its scope, one by one.
        let prefetched =
            if guard.sees_everything() { self.prefetch_conditions(&raw_entries).await? } else { HashMap::new() };
        let now = self.clock.now_ms();
        let mut cache = KeyCache::default();
        let mut resolved = HashMap::new();
        let no_targets = HashMap::new();
        let mut created_by_condition: HashMap<(String, String), StoredResource> = HashMap::new();
        let mut results: Vec<Result<EntryOutcome, RecordError>> = Vec::with_capacity(raw_entries.len());
        let mut pending: Vec<(usize, VersionWrite)> = Vec::new();
        for (i, raw) in raw_entries.into_iter().enumerate() {
            let outcome = async {
                let mut entry = parse_entry(i, raw)?;
                let mut current_body = None;
                let mut mismatch = false;
                let (id, version, replaces) = match &entry.method {
                    Method::Post { if_none_exist: Some(cond) } => {
                        let key = (entry.resource_type.clone(), cond.clone());
                        if let Some(done) = created_by_condition.get(&key) {
                            return Ok((EntryOutcome { resource: done.clone(), created: false, written: false }, None));
                        }
                        let found = match prefetched.get(&key) {
                            Some(ids) if ids.len() > 1 => return Err(RecordError::MultipleMatches),
                            Some(ids) => match ids.first() {
                                Some(id) => Some(self.read(&entry.resource_type, id, None).await?),
                                None => None,
                            },
                            None => guard.find_unique(self, &entry.resource_type, &parse_query_string(cond)).await?,
                        };
                        if let Some(found) = found {
                            guard.may_reveal(&found).await?;
                            return Ok((EntryOutcome { resource: found, created: false, written: false }, None));
                        }
                        (new_resource_id()?, 1, None)
                    }
                    Method::Post { if_none_exist: None } => (new_resource_id()?, 1, None),
                    Method::Put { id, if_match } => {
                        let (current, body) = self.replaced(guard, &entry.resource_type, id).await?;
                        mismatch = if_match.is_some_and(|m| Some(m) != current);
                        current_body = body;
                        (id.clone(), current.map_or(1, |v| v + 1), current)
                    }
                };
                self.resolve_references(i, &mut entry.resource, &no_targets, None, &mut resolved, guard).await?;
                guard.may_write(&entry.resource_type, &id, &entry.resource, current_body.as_ref()).await?;
                // As in a transaction: decided first, then the version compared.
                if mismatch {
                    return Err(RecordError::VersionMismatch);
                }
                let mut body = std::mem::take(&mut entry.resource);
                let write = self
                    .seal_version(
                        &mut cache,
                        Slot { resource_type: &entry.resource_type, id: &id, version, replaces },
                        &mut body,
                        now,
                    )
                    .await?;
                let resource = StoredResource {
                    resource_type: entry.resource_type.clone(),
                    id,
                    version,
                    last_updated_ms: now,
                    body,
                };
                if let Method::Post { if_none_exist: Some(cond) } = &entry.method {
                    created_by_condition.insert((entry.resource_type.clone(), cond.clone()), resource.clone());
                }
                Ok((EntryOutcome { resource, created: replaces.is_none(), written: true }, Some(write)))
            }
            .await;
            match outcome {
                Ok((done, write)) => {
                    if let Some(write) = write {
                        pending.push((i, write));
                    }
                    results.push(Ok(done));
                }
                Err(e) => results.push(Err(e)),
            }
            if pending.len() >= BATCH_COMMIT_SIZE {
                self.commit_batch_group(&mut cache, &mut pending, &mut results, guard).await?;
            }
        }
        self.commit_batch_group(&mut cache, &mut pending, &mut results, guard).await?;
        Ok(results)
    }

    /// Answers, in a few queries, the conditional creates of a batch whose condition is one
    /// exact term (`identifier=system|value`, the common case): `(type, condition)` → ids.
    /// Conditions of other shapes are left to `find_unique`, entry by entry.
    async fn prefetch_conditions(
        &self,
        raw_entries: &[Value],
    ) -> Result<HashMap<(String, String), Vec<String>>, RecordError> {
        let index = self.keys.ring().blind_index();
        // (type, param) → [(condition, term)]
        let mut groups: HashMap<(String, &'static str), Vec<(String, phivault_crypto::BlindTerm)>> = HashMap::new();
        for raw in raw_entries {
            let request = &raw["request"];
            let (Some("POST"), Some(cond), Some(rtype)) =
                (request["method"].as_str(), request["ifNoneExist"].as_str(), raw["resource"]["resourceType"].as_str())
            else {
                continue;
            };
            let Ok(search) = phivault_fhir::search::parse_search(rtype, &parse_query_string(cond), true) else {
                continue;
            };
            if let [phivault_fhir::search::Clause::Terms { param, any_of }] = search.clauses.as_slice()
                && let [single] = any_of.as_slice()
                && let [term] = single.as_slice()
            {
                groups.entry((rtype.to_owned(), param)).or_default().push((cond.to_owned(), index.term(param, term)));
            }
        }
        let mut answers: HashMap<(String, String), Vec<String>> = HashMap::new();
        for ((rtype, param), conditions) in groups {
            let terms: Vec<phivault_crypto::BlindTerm> = conditions.iter().map(|(_, t)| *t).collect();
            let mut by_term: HashMap<phivault_crypto::BlindTerm, Vec<String>> = HashMap::new();
            for (term, id) in self.store.ids_by_terms(&rtype, param, &terms).await? {
                by_term.entry(term).or_default().push(id);
            }
            for (cond, term) in conditions {
                let mut ids = by_term.get(&term).cloned().unwrap_or_default();
                ids.sort();
                ids.dedup();
                answers.insert((rtype.clone(), cond), ids);
            }
        }
        Ok(answers)
    }

    /// Commits a group of independent batch writes; on a conflict, retries them one by one
    /// so only the conflicting entries fail; if the database fails, marks the group's entries
    /// failed (earlier groups stay committed and reported so).
    async fn commit_batch_group(
        &self,
        cache: &mut KeyCache,
        pending: &mut Vec<(usize, VersionWrite)>,
        results: &mut [Result<EntryOutcome, RecordError>],
        guard: &dyn BundleGuard,
    ) -> Result<(), RecordError> {
        if pending.is_empty() {
            return Ok(());
        }
        let keys = cache.take_fresh();
        let (entries, writes): (Vec<usize>, Vec<VersionWrite>) = std::mem::take(pending).into_iter().unzip();
        let entry = guard.entry_for(&writes);
        match self.store.commit(&keys, &writes, entry.as_ref()).await {
            Ok(()) => guard.committed(),
            Err(crate::StoreError::Conflict) => {
                // Keys go with each retried write; once stored, later retries find them ours.
                // Each retried write commits with its own entry.
                for (i, write) in entries.iter().zip(&writes) {
                    let one = std::slice::from_ref(write);
                    let entry = guard.entry_for(one);
                    match self.store.commit(&keys, one, entry.as_ref()).await {
                        Ok(()) => guard.committed(),
                        Err(e) => results[*i] = Err(e.into()),
                    }
                }
                cache.clear();
            }
            Err(crate::StoreError::ReadOnly) => {
                for i in entries {
                    results[i] = Err(RecordError::ReadOnly);
                }
                cache.clear();
            }
            Err(e) => {
                // Earlier groups are committed and stay reported as such; this group's
                // entries are reported as not stored, so the response says exactly what is.
                tracing::error!(error = %e, cause = ?std::error::Error::source(&e).map(ToString::to_string), entries = entries.len(), "batch group commit failed");
                for i in entries {
                    results[i] = Err(RecordError::Store(crate::StoreError::Unavailable(Box::new(
                        std::io::Error::other("this entry's group was not committed"),
                    ))));
                }
                cache.clear();
            }
        }
        Ok(())
    }
}

/// The server base of an absolute `fullUrl` (`http://example.org/fhir` of
/// `http://example.org/fhir/Patient/1`), against which R4 resolves relative references.
fn server_base(full_url: &str) -> Option<&str> {
    if !(full_url.starts_with("http://") || full_url.starts_with("https://")) {
        return None;
    }
    let (rest, _id) = full_url.rsplit_once('/')?;
    let (base, resource_type) = rest.rsplit_once('/')?;
    is_resource_type(resource_type).then_some(base)
}

/// A PUT to an id that does not exist creates only in the operator's own loads: for anyone
/// else it answers what an out-of-reach id does ("not found"), so the answer never tells
/// which ids are real (see `GuardedRecords::update`).
fn refuse_put_create(
    guard: &dyn BundleGuard,
    resource_type: &str,
    id: &str,
    current: Option<i64>,
) -> Result<(), RecordError> {
    if current.is_none() && !guard.sees_everything() {
        return Err(RecordError::NotFound { resource_type: resource_type.to_owned(), id: id.to_owned() });
    }
    Ok(())
}

fn in_entry(index: usize, e: RecordError) -> RecordError {
    match e {
        RecordError::Invalid(f) => at(index, f),
        other => other,
    }
}
