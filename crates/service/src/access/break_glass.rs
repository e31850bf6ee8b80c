//! Break-glass: emergency access to one patient by a clinician with no relationship to
//! them. 45 CFR 164.312(a)(2)(ii) emergency access procedure; 164.308(a)(1)(ii)(D) review.
//!
//! A request names the patient, one of a fixed list of reasons and a free-text note. The
//! policies decide whether the user may ask (`break_glass` on the Patient); the grant then
//! opens that patient's records for reading until it expires (`emergency-access-reads-one-
//! patient`), the privacy officer is notified, and the grant waits in the review queue
//! until marked justified or not. The note is sealed at rest: a clinician may write clinical
//! details into it.

use async_trait::async_trait;
use phivault_audit::Outcome;
use phivault_policy::Action;
use serde::Serialize;

use super::guarded::GuardedRecords;
use super::trail::{event_for, pending};
use super::{Accessor, BreakGlassGrant, Granted};
use crate::RecordError;

/// The reasons a request may give (the free-text note comes on top).
pub const BREAK_GLASS_REASONS: [&str; 5] =
    ["emergency-treatment", "patient-unable-to-consent", "urgent-consultation", "covering-colleague", "other"];

/// Shortest note accepted: a reason an auditor can judge, not "x".
const MIN_NOTE_CHARS: usize = 10;
/// Longest note kept.
const MAX_NOTE_CHARS: usize = 2000;

/// Where notifications for the privacy officer go (SMTP, webhook).
#[async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Sends one message. The text holds ids, reason codes and times, never PHI.
    async fn notify(&self, subject: &str, body: &str) -> Result<(), String>;
}

/// A break-glass request.
#[derive(Debug, Clone)]
pub struct BreakGlassRequest {
    pub patient_id: String,
    pub reason: String,
    pub note: String,
}

/// A grant as the review queue shows it (the note opened).
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    pub id: String,
    pub user_id: String,
    pub patient_id: String,
    pub reason: String,
    pub note: String,
    pub started_ms: i64,
    pub expires_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviewed_by: Option<String>,
}

fn note_purpose(grant_id: &str) -> String {
    format!("break-glass-note/v1/{grant_id}")
}

fn refused(why: &str) -> RecordError {
    RecordError::Invalid(phivault_fhir::FhirError::invalid(why))
}

impl GuardedRecords {
    /// Grants emergency access as `request` asks, if the policies let this user ask.
    /// Returns the grant; the caller notifies and audits.
    pub async fn break_glass(
        &self,
        accessor: &Accessor,
        request: &BreakGlassRequest,
    ) -> Result<Granted<BreakGlassGrant>, RecordError> {
        let asking = self.asking(accessor).await?;
        let user_id = match &accessor.requester {
            super::Requester::User { user_id, .. } => user_id.clone(),
            super::Requester::Client { .. } => return Err(RecordError::Forbidden { policy_ids: vec![] }),
        };
        self.relate(&asking, std::slice::from_ref(&request.patient_id)).await?;
        let decision = asking.decide_on_patient(Action::BreakGlass, &request.patient_id);
        if !decision.allowed {
            return Err(RecordError::Forbidden { policy_ids: decision.policy_ids });
        }
        // Only someone who may ask is told what a request needs.
        if !BREAK_GLASS_REASONS.contains(&request.reason.as_str()) {
            return Err(refused("the reason must be one of the listed break-glass reasons"));
        }
        let note = request.note.trim();
        if note.chars().count() < MIN_NOTE_CHARS {
            return Err(refused("a break-glass request needs a note of at least 10 characters saying why"));
        }
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(refused("the break-glass note is longer than 2000 characters"));
        }
        // The patient must exist: a grant for an id no record has yet would open whatever
        // record later takes it.
        self.records.read("Patient", &request.patient_id, None).await?;
        let id = crate::records::new_resource_id()?;
        let ring = self.records.keys.ring();
        let sealed = ring.seal_token(&note_purpose(&id), note.as_bytes()).map_err(RecordError::Keys)?;
        let now = self.records.clock.now_ms();
        let grant = BreakGlassGrant {
            id,
            user_id,
            patient_id: request.patient_id.clone(),
            reason_code: request.reason.clone(),
            reason_sealed: sealed,
            started_ms: now,
            expires_ms: now + self.break_glass_ms,
            review: None,
            reviewed_by: None,
            reviewed_ms: None,
        };
        // Recorded with the grant, in its transaction: no grant exists unrecorded. The entry
        // names the break-glass grant, not the session it was asked in.
        let mut event = event_for(&self.audit, accessor, now, "break_glass.request", Outcome::Success);
        event.reason = Some(grant.reason_code.clone());
        event.policies = decision.policy_ids.clone();
        event.patient_ids.push(grant.patient_id.clone());
        event.resource_ids.push(format!("Patient/{}", grant.patient_id));
        event.target = Some(format!("grant:{}", grant.id));
        self.access.insert_break_glass(&grant, &pending(&event)).await?;
        self.settle(accessor).await;
        Ok(Granted { value: grant, policy_ids: decision.policy_ids })
    }

    /// The review queue (all grants, or those not yet reviewed), newest first, for a user
    /// the policies let review (`review_break_glass`).
    pub async fn break_glass_queue(
        &self,
        accessor: &Accessor,
        pending_only: bool,
    ) -> Result<Granted<Vec<GrantView>>, RecordError> {
        let policy_ids = self.may_review(accessor).await?;
        let grants = self.access.break_glass_grants(pending_only, 500).await?;
        let ring = self.records.keys.ring();
        let views = grants
            .into_iter()
            .map(|g| {
                let note = ring
                    .open_token(&note_purpose(&g.id), &g.reason_sealed)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_else(|_| "(the note cannot be opened: it was altered)".into());
                GrantView {
                    id: g.id,
                    user_id: g.user_id,
                    patient_id: g.patient_id,
                    reason: g.reason_code,
                    note,
                    started_ms: g.started_ms,
                    expires_ms: g.expires_ms,
                    review: g.review,
                    reviewed_by: g.reviewed_by,
                }
            })
            .collect();
        Ok(Granted { value: views, policy_ids })
    }

    /// Records the privacy officer's finding on a grant not yet reviewed.
    pub async fn review_break_glass(
        &self,
        accessor: &Accessor,
        grant_id: &str,
        justified: bool,
    ) -> Result<Granted<()>, RecordError> {
        let policy_ids = self.may_review(accessor).await?;
        let reviewer = match &accessor.requester {
            super::Requester::User { user_id, .. } => user_id.clone(),
            super::Requester::Client { client_id } => format!("client:{client_id}"),
        };
        let finding = if justified { "justified" } else { "unjustified" };
        let now = self.records.clock.now_ms();
        if !self.access.review_break_glass(grant_id, finding, &reviewer, now).await? {
            return Err(RecordError::NotFound { resource_type: "break-glass grant".into(), id: grant_id.into() });
        }
        Ok(Granted { value: (), policy_ids })
    }

    async fn may_review(&self, accessor: &Accessor) -> Result<Vec<String>, RecordError> {
        self.may(accessor, Action::ReviewBreakGlass).await
    }

    /// Emergency read-only mode as of at most a second ago (for headers and banners).
    pub async fn emergency_mode(&self) -> Result<Option<crate::EmergencyMode>, RecordError> {
        Ok(self.records.store.emergency_mode().await?)
    }

    /// Switches emergency read-only mode on (`Some(reason)`) or off, if the policies let
    /// the caller (`set_emergency_mode`); returns the deciding policies, for the entry the
    /// caller writes.
    pub async fn set_emergency_mode(
        &self,
        accessor: &Accessor,
        reason: Option<String>,
    ) -> Result<Vec<String>, RecordError> {
        let policy_ids = self.may(accessor, Action::SetEmergencyMode).await?;
        let mode = reason.map(|reason| crate::EmergencyMode {
            since_ms: self.records.clock.now_ms(),
            set_by: match &accessor.requester {
                crate::access::Requester::User { user_id, .. } => format!("user:{user_id}"),
                _ => "a backend service".to_owned(),
            },
            reason,
        });
        self.records.store.set_emergency_mode(mode).await?;
        Ok(policy_ids)
    }

    /// Whether the policies allow `action` on the system (`manage_users`, `read_audit`,
    /// ...): the determining policy ids, or [`RecordError::Forbidden`].
    pub async fn may(&self, accessor: &Accessor, action: Action) -> Result<Vec<String>, RecordError> {
        let asking = self.asking(accessor).await?;
        let decision = asking.decide_on_system(action);
        if decision.allowed {
            Ok(decision.policy_ids)
        } else {
            Err(RecordError::Forbidden { policy_ids: decision.policy_ids })
        }
    }
}
