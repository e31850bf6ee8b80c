//! The audit entries guarded operations write themselves. A write's entry is built from
//! the versions it stores and committed in the same transaction ([`crate::PendingEntry`]),
//! so the change and its entry are durable together or not at all; nothing a client does
//! (disconnecting, timing out) and no crash can separate them. The HTTP adapter records a
//! request itself only when no operation did (refusals before any record was reached, bad
//! input), which [`Trail::recorded`] tells it.
//!
//! Safeguards: 45 CFR 164.312(b) audit controls; 164.312(c)(1) integrity.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use phivault_audit::{AuditEvent, AuditLog, Outcome};

use super::{Accessor, Requester};
use crate::{PendingEntry, VersionWrite};

/// Where a request came from and what the route table calls it, for the entries its
/// operations write. PHI-free by construction: addresses, ids and names FHIR defines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The action the route table names (`create`, `update`, `batch`, ...); empty: the
    /// operation's own name.
    pub action: String,
    pub grant_id: Option<String>,
    pub client_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub purpose_of_use: Option<String>,
}

/// One request's place in the audit trail: its origin, and whether an operation has
/// recorded its entry (shared by every clone, so the adapter sees what the service did).
#[derive(Debug, Clone, Default)]
pub struct Trail {
    pub origin: Origin,
    recorded: Arc<AtomicBool>,
}

impl PartialEq for Trail {
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin
    }
}

impl Eq for Trail {}

impl Trail {
    pub fn new(origin: Origin) -> Self {
        Self { origin, recorded: Arc::default() }
    }

    /// Whether an operation of this request committed an entry of its own.
    pub fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Acquire)
    }

    /// Marks the request recorded: by an operation, or by an adapter that wrote the
    /// request's own entry (so a second one is not written).
    pub fn mark_recorded(&self) {
        self.recorded.store(true, Ordering::Release);
    }
}

/// The entry for what `accessor` did, with who and from where filled in.
pub(super) fn event_for(
    audit: &AuditLog,
    accessor: &Accessor,
    now_ms: i64,
    action: &str,
    outcome: Outcome,
) -> AuditEvent {
    let origin = &accessor.trail.origin;
    let action = if origin.action.is_empty() { action } else { origin.action.as_str() };
    let mut event = AuditEvent::new(now_ms, action, outcome, audit.node());
    match &accessor.requester {
        Requester::User { user_id, roles, .. } => {
            event.user_id = Some(user_id.clone());
            event.roles = roles.clone();
        }
        Requester::Client { .. } => {}
    }
    event.client_id = origin.client_id.clone().or_else(|| match &accessor.requester {
        Requester::Client { client_id } => Some(client_id.clone()),
        Requester::User { .. } => None,
    });
    event.grant_id = origin.grant_id.clone();
    event.source_ip = origin.source_ip.clone();
    event.user_agent = origin.user_agent.clone();
    event.request_id = origin.request_id.clone();
    event.purpose_of_use = origin.purpose_of_use.clone();
    event
}

/// Names, once each, every resource (`Type/id`) and every patient whose compartment holds
/// one: the one way an entry lists what an operation wrote or returned.
pub(super) fn name<'a>(
    event: &mut AuditEvent,
    resources: impl IntoIterator<Item = (&'a str, &'a str, Option<String>)>,
) {
    for (resource_type, id, patient) in resources {
        let id = format!("{resource_type}/{id}");
        if !event.resource_ids.contains(&id) {
            event.resource_ids.push(id);
        }
        if let Some(patient) = patient
            && !event.patient_ids.contains(&patient)
        {
            event.patient_ids.push(patient);
        }
    }
}

/// [`name`] for the versions a commit writes.
pub(super) fn name_writes(event: &mut AuditEvent, writes: &[VersionWrite]) {
    name(event, writes.iter().map(|w| (w.resource_type.as_str(), w.id.as_str(), w.compartment.clone())));
}

/// [`name`] for stored resources an operation returns.
pub(super) fn name_resources(event: &mut AuditEvent, resources: &[crate::records::StoredResource]) {
    name(
        event,
        resources.iter().map(|r| {
            (
                r.resource_type.as_str(),
                r.id.as_str(),
                phivault_fhir::patient_compartment(&r.resource_type, &r.id, &r.body),
            )
        }),
    );
}

/// The entry to commit with `writes`.
pub(super) fn pending(event: &AuditEvent) -> PendingEntry {
    PendingEntry { time_ms: event.time_ms, canonical: event.canonical_bytes() }
}
