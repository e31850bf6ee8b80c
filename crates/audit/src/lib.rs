//! phivault's audit trail, as data: what an entry holds ([`event`]), how entries are chained
//! into an RFC 6962 Merkle tree ([`merkle`]), how checkpoints are signed ([`checkpoint`]), and
//! how a copy of the log is verified ([`verify`]), and how entries leave for other systems as
//! FHIR `AuditEvent`s ([`fhir`]) or syslog ([`syslog`]). No storage IO of its own: the store
//! appends and reads, the CLI and the standalone verifier call [`verify::verify`]; only
//! [`syslog::deliver`] talks to the network.
//!
//! Safeguards: 45 CFR 164.312(b) audit controls, 164.312(c)(1) integrity; ONC 170.315(d)(2)
//! auditable events and tamper-resistance.

pub mod alerts;
pub mod archive;
pub mod checkpoint;
pub mod detect;
pub mod event;
pub mod export;
pub mod fhir;
mod log;
pub mod merkle;
mod ports;
pub mod search;
pub mod syslog;
pub mod verify;

pub use checkpoint::{Checkpoint, CheckpointSigner};
pub use event::{AuditEvent, Outcome, clip};
pub use log::{AuditLog, AuditUnavailable};
pub use ports::AuditStore;
pub use search::{AuditQuery, search};
pub use verify::{Report, StoredEntry, verify};
