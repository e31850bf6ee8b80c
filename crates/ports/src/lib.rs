//! The vocabulary phivault's domain crates share (records, audit, identity): what a store
//! can fail with, where the time comes from, where the key ring comes from. It is a leaf so
//! that the audit trail and its standalone verifier need none of the record service's
//! dependencies (policy engine, FHIR model).

use std::sync::Arc;

use phivault_crypto::{CryptoError, KeyRing};
use thiserror::Error;

/// Storage failures, in the store's own terms. Never carries PHI (the store only ever sees
/// ciphertext, blind terms and opaque ids).
#[derive(Debug, Error)]
pub enum StoreError {
    /// An optimistic-locking or uniqueness check failed: someone else wrote first.
    #[error("write conflict: the record changed since it was read")]
    Conflict,
    /// The database could not be reached or failed.
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A row did not have the shape the schema promises.
    #[error("database row is malformed: {0}")]
    Corrupt(&'static str),
    /// Emergency read-only mode is on: records are read, never written.
    #[error("records are read-only: emergency mode is on")]
    ReadOnly,
}

/// Emergency read-only mode (45 CFR 164.308(a)(7)(ii)(C) emergency mode operation): while
/// it is on, records can be read and no record is written, on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyMode {
    pub since_ms: i64,
    /// Who switched it on (`user:<id>`, `os:<name>`, or `serve --emergency-read-only`).
    pub set_by: String,
    /// Why: one of [`EMERGENCY_REASONS`]. A code, not free text, so that no name or
    /// detail of a patient can reach the trail or the database through it (as break-glass
    /// reasons are codes).
    pub reason: String,
}

/// The reasons emergency read-only mode may be switched on for.
pub const EMERGENCY_REASONS: &[&str] =
    &["restore", "degraded_database", "planned_maintenance", "security_incident", "drill"];

/// Where the service reads the time, so tests can fix it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// Where a service gets the current key ring. A file-backed source reloads after another
/// process rotated the KEK; `refresh` forces a look.
pub trait KeySource: Send + Sync + std::fmt::Debug {
    /// The key ring to use now.
    fn ring(&self) -> Arc<KeyRing>;
    /// Re-reads the key material; returns whether anything changed.
    fn refresh(&self) -> Result<bool, CryptoError>;
}

/// A fixed key ring (tests, and processes that never see rotation).
#[derive(Debug, Clone)]
pub struct StaticKeySource(pub Arc<KeyRing>);

impl KeySource for StaticKeySource {
    fn ring(&self) -> Arc<KeyRing> {
        self.0.clone()
    }
    fn refresh(&self) -> Result<bool, CryptoError> {
        Ok(false)
    }
}
