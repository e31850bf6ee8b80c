//! phivault's use cases, independent of HTTP and SQL.
//!
//! [`Records`] stores, reads and searches FHIR resources: every body is encrypted under its
//! patient's (or its resource type's) data key before it reaches a [`RecordStore`], and
//! identifying search values reach the store only as blind index terms. The storage port
//! is defined here and implemented by `phivault-store` for SQLite and PostgreSQL.

pub mod access;
pub mod bulk;
mod error;
pub mod keys;
mod ports;
pub mod records;

pub use error::RecordError;
pub use phivault_ports::{Clock, EMERGENCY_REASONS, EmergencyMode, SystemClock};
pub use ports::{
    DataKeyRewrap, Filter, KeySource, PendingEntry, RecordStore, ScannedVersion, ScopePatients, StaticKeySource,
    StoreError, StoreQuery, StoredDataKey, StoredVersion, VersionKey, VersionWrite,
};
pub use records::{
    Bundle, BundleKind, EntryOutcome, HistoryPage, IntegrityProblem, IntegrityReport, PageCursor, ProblemKind, Records,
    SearchPage, StoredResource, WriteOutcome,
};
