//! The ports the service needs: a record store (SQLite or PostgreSQL adapter) and a source
//! of the current key ring.

use async_trait::async_trait;
use phivault_crypto::{BlindTerm, WrappedDataKey};
use phivault_fhir::search::{DateCondition, Sort};
pub use phivault_ports::{EmergencyMode, KeySource, StaticKeySource, StoreError};

/// A data key row: `wrapped` is `None` once the key was destroyed (crypto-shredded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDataKey {
    pub key_id: String,
    pub scope: String,
    pub wrapped: Option<WrappedDataKey>,
    pub created_ms: i64,
}

/// One stored version of a resource, with the data key row needed to open it.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated_ms: i64,
    pub ciphertext: Vec<u8>,
    pub key: StoredDataKey,
}

/// One version to write. Applied atomically with the other writes of the same commit.
#[derive(Debug, Clone)]
pub struct VersionWrite {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    /// The version that must be current now; `None` means the resource must not exist yet.
    pub replaces: Option<i64>,
    pub last_updated_ms: i64,
    /// Patient id of the compartment, if any (an opaque server id).
    pub compartment: Option<String>,
    pub key_id: String,
    pub ciphertext: Vec<u8>,
    pub terms: Vec<(&'static str, BlindTerm)>,
    pub dates: Vec<(&'static str, i64, i64)>,
}

/// An audit entry committed in the same transaction as the writes it describes, so that a
/// change and its entry are durable together or not at all: no crash, timeout or client
/// disconnect can leave one without the other. The audit trail chains it (sequence number,
/// hash) right after, and at the next start whatever a crash left unchained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    pub time_ms: i64,
    /// The entry's canonical bytes (`phivault_audit::AuditEvent::canonical_bytes`).
    pub canonical: Vec<u8>,
}

/// A search filter the store evaluates; identifying values arrive as blind terms only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// For `param`, the resource has all terms of at least one set.
    Terms { param: &'static str, any_of: Vec<Vec<BlindTerm>> },
    /// A stored date range of `param` meets one of the conditions (Unix seconds).
    Date { param: &'static str, any_of: Vec<DateCondition> },
    /// In one of these patients' compartments; empty matches nothing.
    Compartment(Vec<String>),
    /// One of these ids.
    Ids(Vec<String>),
    /// Last updated (conditions in Unix seconds) meets one of the conditions.
    LastUpdated(Vec<DateCondition>),
    /// History only: versions written at or after this instant (Unix ms).
    WrittenSince(i64),
    /// History only: versions current at some moment of `[from_ms, until_ms)`: written
    /// before its end, and not replaced by a later version at or before its start.
    CurrentDuring { from_ms: i64, until_ms: i64 },
    /// The access policy's scope: in the compartment of a patient `patients` admits, or
    /// (when `unassigned`) in no patient's compartment.
    Scope { patients: ScopePatients, unassigned: bool },
    /// Has none of `terms` for `param` (e.g. excluded security labels).
    WithoutTerms { param: &'static str, terms: Vec<BlindTerm> },
    /// Comes after this position in `(last_updated, id)` order: a keyset page of a walk
    /// sorted by `_lastUpdated` ascending, which neither skips nor repeats a record when
    /// others change between pages (offsets do both).
    After { last_updated_ms: i64, id: String },
}

/// Whose compartments an access scope reaches. Relationships are looked up by the store
/// (a join on the care-team and grant tables), never passed as lists of a panel's patients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopePatients {
    /// Any patient's.
    Any,
    /// Patients on whose care team `user_id` is (with `care_team`), for whom it holds a
    /// break-glass grant live at `emergency_at_ms`, or who are `listed` (an own record, a
    /// department's recent patients, an app's launch patient). Nothing set: no patient's.
    Related { user_id: String, care_team: bool, emergency_at_ms: Option<i64>, listed: Vec<String> },
}

impl ScopePatients {
    /// Only the `listed` patients.
    pub fn listed(patients: Vec<String>) -> Self {
        ScopePatients::Related { user_id: String::new(), care_team: false, emergency_at_ms: None, listed: patients }
    }
}

/// A search over current versions of one resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreQuery {
    pub resource_type: String,
    pub filters: Vec<Filter>,
    pub sort: Sort,
    pub offset: u64,
    pub limit: u64,
    /// Whether to count all matches (a searchset's `total`); conditional operations only
    /// need to know whether there are zero, one or several.
    pub count_total: bool,
}

/// Where a walk over every stored version stands: the last `(type, id, version)` seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionKey {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
}

/// One stored version as the integrity scan sees it: the row as stored, with the columns
/// that access decisions and reads rely on (which version is current, whose compartment).
#[derive(Debug, Clone)]
pub struct ScannedVersion {
    pub stored: StoredVersion,
    pub is_current: bool,
    pub compartment: Option<String>,
}

/// A data key moved from one KEK to another during rotation.
#[derive(Debug, Clone)]
pub struct DataKeyRewrap {
    pub key_id: String,
    pub old: WrappedDataKey,
    pub new: WrappedDataKey,
}

/// Persistent storage of encrypted records and data keys. Every method is
/// safe to call from many server processes sharing one database.
#[async_trait]
pub trait RecordStore: Send + Sync + std::fmt::Debug {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Whether emergency read-only mode is on, as of at most a second ago (for banners and
    /// headers; `commit` itself checks the mode in its own transaction).
    async fn emergency_mode(&self) -> Result<Option<EmergencyMode>, StoreError> {
        Ok(None)
    }
    /// Switches emergency read-only mode on (`Some`) or off, for every node.
    async fn set_emergency_mode(&self, _mode: Option<EmergencyMode>) -> Result<(), StoreError> {
        Err(StoreError::Corrupt("this store has no emergency mode"))
    }
    /// The data key of a scope (`Patient/<id>` or `type/<ResourceType>`), if one exists.
    async fn data_key(&self, scope: &str) -> Result<Option<StoredDataKey>, StoreError>;
    /// The current version (`version = None`) or a given version of a resource.
    async fn read(
        &self,
        resource_type: &str,
        id: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredVersion>, StoreError>;
    /// Versions of one resource (`id`) or of a whole type, newest first, and their total.
    /// `filters` may hold [`Filter::Scope`] only (other filters read current versions).
    async fn history(
        &self,
        resource_type: &str,
        id: Option<&str>,
        filters: &[Filter],
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<StoredVersion>, u64), StoreError>;
    /// Current versions matching a query, and the total number of matches.
    async fn search(&self, query: &StoreQuery) -> Result<(Vec<StoredVersion>, u64), StoreError>;
    /// Ids of current resources of `resource_type` that have any of `terms` for `param`,
    /// as `(term, id)` pairs: many single-term lookups (a batch's conditional creates) in
    /// one query.
    async fn ids_by_terms(
        &self,
        resource_type: &str,
        param: &str,
        terms: &[BlindTerm],
    ) -> Result<Vec<(BlindTerm, String)>, StoreError>;
    /// In one transaction (one durable commit): stores `new_keys` (data keys created for
    /// these writes), applies all writes and stores `entry`, the audit entry that describes
    /// them; or does nothing. [`StoreError::Conflict`] when a `replaces` check fails, a new
    /// version already exists, or another process created a different data key for one of
    /// the scopes first. Only the operator's own loads (import, demo) commit without an
    /// entry; they are audited as one act by the console.
    async fn commit(
        &self,
        new_keys: &[StoredDataKey],
        writes: &[VersionWrite],
        entry: Option<&PendingEntry>,
    ) -> Result<(), StoreError>;
    /// Up to `limit` live data keys wrapped under a KEK other than `current_kek`.
    async fn data_keys_not_under(&self, current_kek: &str, limit: u64) -> Result<Vec<StoredDataKey>, StoreError>;
    /// Replaces wrapped keys in one transaction where they still equal `old`; returns how many changed.
    async fn rewrap_data_keys(&self, rewraps: &[DataKeyRewrap]) -> Result<u64, StoreError>;
    /// Number of live data keys per KEK id.
    async fn data_keys_per_kek(&self) -> Result<Vec<(String, u64)>, StoreError>;
    /// The distinct patient compartments of the current resources a query matches (for
    /// relationships such as "an encounter in my department"); the query's paging is ignored.
    async fn compartments(&self, query: &StoreQuery) -> Result<Vec<String>, StoreError>;
    /// For each resource type in a patient's compartment, the newest last-updated time
    /// (for retention checks before erasure).
    async fn compartment_activity(&self, patient_id: &str) -> Result<Vec<(String, i64)>, StoreError>;
    /// Every stored version (all resources, all versions, shredded ones included) in
    /// `(type, id, version)` order after `after`, at most `limit`: the integrity scan's walk.
    async fn scan_versions(&self, after: Option<&VersionKey>, limit: u64) -> Result<Vec<ScannedVersion>, StoreError>;
    /// The number of stored versions (for progress).
    async fn version_count(&self) -> Result<u64, StoreError>;
    /// Destroys a scope's data key and the search index rows of its resources; returns
    /// whether a live key was destroyed.
    async fn destroy_data_key(
        &self,
        scope: &str,
        compartment: Option<&str>,
        now_ms: i64,
        entry: Option<&PendingEntry>,
    ) -> Result<bool, StoreError>;
}
