//! Encrypted FHIR records: create, read, update, history and search.

mod bundle;
mod codec;
mod integrity;
mod paging;
mod relatives;
mod search;

use std::sync::Arc;

use phivault_fhir::search::SearchRequest;
use phivault_fhir::{FhirError, IssueType, is_resource_type, is_valid_id};
use serde_json::Value;

pub use bundle::{Bundle, BundleGuard, BundleKind, EntryOutcome, MAX_ENTRIES as MAX_BUNDLE_ENTRIES, OperatorLoad};
pub(crate) use codec::{EntryFor, KeyCache, Slot, new_resource_id};
pub use integrity::{IntegrityProblem, IntegrityReport, ProblemKind};
pub use paging::PageCursor;

use crate::{Clock, KeySource, RecordError, RecordStore, StoredVersion};

/// A resource as read back: its decrypted body and version metadata.
#[derive(Debug, Clone)]
pub struct StoredResource {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated_ms: i64,
    pub body: Value,
}

/// The result of a create or update.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub resource: StoredResource,
    /// True when a new resource came into being (201), false for an update or an
    /// existing match of a conditional create (200).
    pub created: bool,
}

/// One page of search results.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub resources: Vec<StoredResource>,
    pub total: u64,
    pub offset: u64,
    pub count: u64,
}

/// One page of history, newest first.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub versions: Vec<StoredResource>,
    pub total: u64,
}

/// The record service. Cheap to clone; shares the store, key source and clock.
#[derive(Debug, Clone)]
pub struct Records {
    pub(crate) store: Arc<dyn RecordStore>,
    pub(crate) keys: Arc<dyn KeySource>,
    pub(crate) clock: Arc<dyn Clock>,
}

fn check_type(resource_type: &str) -> Result<(), RecordError> {
    if is_resource_type(resource_type) {
        Ok(())
    } else {
        Err(FhirError::new(IssueType::NotSupported, "unknown resource type").into())
    }
}

fn check_id(id: &str) -> Result<(), RecordError> {
    if is_valid_id(id) { Ok(()) } else { Err(FhirError::invalid("invalid resource id").into()) }
}

impl Records {
    /// A record service over `store`, encrypting with keys from `keys`.
    pub fn new(store: Arc<dyn RecordStore>, keys: Arc<dyn KeySource>, clock: Arc<dyn Clock>) -> Self {
        Self { store, keys, clock }
    }

    /// The store behind this service (for health checks and key administration).
    pub fn store(&self) -> &Arc<dyn RecordStore> {
        &self.store
    }

    /// The key source behind this service.
    pub fn keys(&self) -> &Arc<dyn KeySource> {
        &self.keys
    }

    fn decrypt(&self, cache: &mut KeyCache, stored: &StoredVersion) -> Result<StoredResource, RecordError> {
        Ok(StoredResource {
            resource_type: stored.resource_type.clone(),
            id: stored.id.clone(),
            version: stored.version,
            last_updated_ms: stored.last_updated_ms,
            body: self.open_version(cache, stored)?,
        })
    }

    /// Creates a resource with a server-assigned id. With `if_none_exist` (a search query
    /// on the same type), returns the single existing match instead, and refuses when
    /// several match.
    pub async fn create(
        &self,
        resource_type: &str,
        body: Value,
        if_none_exist: Option<&[(String, String)]>,
    ) -> Result<WriteOutcome, RecordError> {
        self.create_recorded(resource_type, body, if_none_exist, None).await
    }

    /// [`Records::create`], committing the audit entry `entry` describes with the write.
    pub(crate) async fn create_recorded(
        &self,
        resource_type: &str,
        mut body: Value,
        if_none_exist: Option<&[(String, String)]>,
        entry: Option<EntryFor<'_>>,
    ) -> Result<WriteOutcome, RecordError> {
        check_type(resource_type)?;
        phivault_fhir::validate_resource(&body, Some(resource_type), None)?;
        if let Some(query) = if_none_exist
            && let Some(existing) = self.find_unique(resource_type, query).await?
        {
            return Ok(WriteOutcome { resource: existing, created: false });
        }
        let id = codec::new_resource_id()?;
        let now = self.clock.now_ms();
        self.seal_and_commit(Slot { resource_type, id: &id, version: 1, replaces: None }, &mut body, now, entry)
            .await?;
        Ok(WriteOutcome {
            resource: StoredResource {
                resource_type: resource_type.into(),
                id,
                version: 1,
                last_updated_ms: now,
                body,
            },
            created: true,
        })
    }

    /// Updates (or creates, with a client-chosen id) a resource. `if_match` is the version
    /// the client last read; a different current version is refused.
    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        body: Value,
        if_match: Option<i64>,
    ) -> Result<WriteOutcome, RecordError> {
        self.update_recorded(resource_type, id, body, if_match, None).await
    }

    /// [`Records::update`], committing the audit entry `entry` describes with the write.
    pub(crate) async fn update_recorded(
        &self,
        resource_type: &str,
        id: &str,
        mut body: Value,
        if_match: Option<i64>,
        entry: Option<EntryFor<'_>>,
    ) -> Result<WriteOutcome, RecordError> {
        check_type(resource_type)?;
        check_id(id)?;
        phivault_fhir::validate_resource(&body, Some(resource_type), Some(id))?;
        let current = self.store.read(resource_type, id, None).await?.map(|v| v.version);
        match (current, if_match) {
            (Some(v), Some(expected)) if v != expected => return Err(RecordError::VersionMismatch),
            (None, Some(_)) => return Err(RecordError::VersionMismatch),
            _ => {}
        }
        let version = current.map_or(1, |v| v + 1);
        let now = self.clock.now_ms();
        self.seal_and_commit(Slot { resource_type, id, version, replaces: current }, &mut body, now, entry).await?;
        Ok(WriteOutcome {
            resource: StoredResource {
                resource_type: resource_type.into(),
                id: id.into(),
                version,
                last_updated_ms: now,
                body,
            },
            created: current.is_none(),
        })
    }

    /// Reads the current version, or version `version` (vread).
    pub async fn read(
        &self,
        resource_type: &str,
        id: &str,
        version: Option<i64>,
    ) -> Result<StoredResource, RecordError> {
        check_type(resource_type)?;
        check_id(id)?;
        let stored = self
            .store
            .read(resource_type, id, version)
            .await?
            .ok_or_else(|| RecordError::NotFound { resource_type: resource_type.into(), id: id.into() })?;
        self.decrypt(&mut KeyCache::default(), &stored)
    }

    /// History of one resource or of a whole type, newest first.
    pub async fn history(
        &self,
        resource_type: &str,
        id: Option<&str>,
        offset: u64,
        count: u64,
    ) -> Result<HistoryPage, RecordError> {
        self.history_in(resource_type, id, &[], offset, count).await
    }

    /// [`Records::history`] limited by scope filters (the access layer's).
    pub(crate) async fn history_in(
        &self,
        resource_type: &str,
        id: Option<&str>,
        filters: &[crate::Filter],
        offset: u64,
        count: u64,
    ) -> Result<HistoryPage, RecordError> {
        check_type(resource_type)?;
        if let Some(id) = id {
            check_id(id)?;
        }
        let (rows, total) = self.store.history(resource_type, id, filters, offset, count).await?;
        // No version at all: no such resource. With a time window, an empty page may just
        // mean nothing changed in it.
        let windowed =
            filters.iter().any(|f| matches!(f, crate::Filter::WrittenSince(_) | crate::Filter::CurrentDuring { .. }));
        if let (Some(id), 0) = (id, total)
            && (!windowed || self.store.read(resource_type, id, None).await?.is_none())
        {
            return Err(RecordError::NotFound { resource_type: resource_type.into(), id: id.into() });
        }
        let mut cache = KeyCache::default();
        let versions = rows.iter().map(|r| self.decrypt(&mut cache, r)).collect::<Result<_, _>>()?;
        Ok(HistoryPage { versions, total })
    }

    /// Runs a parsed search from `offset`.
    pub async fn search(
        &self,
        resource_type: &str,
        request: &SearchRequest,
        offset: u64,
    ) -> Result<SearchPage, RecordError> {
        self.search_in(resource_type, request, offset, Vec::new()).await
    }

    /// [`Records::search`] with extra filters (the access layer's scope).
    pub(crate) async fn search_in(
        &self,
        resource_type: &str,
        request: &SearchRequest,
        offset: u64,
        extra: Vec<crate::Filter>,
    ) -> Result<SearchPage, RecordError> {
        check_type(resource_type)?;
        let mut query = self.store_query(resource_type, request, offset);
        query.filters.extend(extra);
        let (rows, total) = self.store.search(&query).await?;
        let mut cache = KeyCache::default();
        let resources = rows.iter().map(|r| self.decrypt(&mut cache, r)).collect::<Result<_, _>>()?;
        Ok(SearchPage { resources, total, offset, count: request.count as u64 })
    }

    /// The first `request.count + 1` matches, without counting them all: the one past the
    /// limit tells the caller whether more follow, once it has decided it may see it (a
    /// chart's sections need no total).
    pub(crate) async fn search_first(
        &self,
        resource_type: &str,
        request: &SearchRequest,
        extra: Vec<crate::Filter>,
    ) -> Result<Vec<StoredResource>, RecordError> {
        check_type(resource_type)?;
        let mut one_more = request.clone();
        one_more.count = request.count.saturating_add(1);
        let mut query = self.store_query(resource_type, &one_more, 0);
        query.count_total = false;
        query.filters.extend(extra);
        let (rows, _) = self.store.search(&query).await?;
        let mut cache = KeyCache::default();
        rows.iter().map(|r| self.decrypt(&mut cache, r)).collect()
    }

    /// The one resource matching `query`, `None` if none, an error if several.
    pub(crate) async fn find_unique(
        &self,
        resource_type: &str,
        query: &[(String, String)],
    ) -> Result<Option<StoredResource>, RecordError> {
        let mut request = phivault_fhir::search::parse_search(resource_type, query, true)?;
        if request.clauses.is_empty() {
            return Err(FhirError::invalid("a condition must hold at least one search parameter").into());
        }
        request.count = 2;
        let mut query = self.store_query(resource_type, &request, 0);
        query.count_total = false;
        let (rows, _) = self.store.search(&query).await?;
        let mut cache = KeyCache::default();
        let page: Vec<StoredResource> = rows.iter().map(|r| self.decrypt(&mut cache, r)).collect::<Result<_, _>>()?;
        match page.len() {
            0 => Ok(None),
            1 => Ok(page.into_iter().next()),
            _ => Err(RecordError::MultipleMatches),
        }
    }
}
