//! Erasure: crypto-shredding a patient's records through the policy layer, once every
//! record is past its retention period. Safeguards: 45 CFR 164.310(d)(2)(i) disposal;
//! 164.316(b)(2)(i) retention. DELETE stays refused to everyone (`no-deletion`); this is
//! the one privileged, audited end of a record's life.

use phivault_audit::Outcome;
use phivault_fhir::{FhirError, IssueType, format_instant};
use phivault_policy::Action;

use super::guarded::GuardedRecords;
use super::trail::{event_for, pending};
use super::{Accessor, Granted};
use crate::RecordError;

impl GuardedRecords {
    /// Destroys the data key of `patient_id`'s compartment, if the policies allow this
    /// user to erase (by default: the privacy officer, with a second factor used in the last
    /// 15 minutes) and no record of the patient is within its retention period. Returns
    /// whether a live key was destroyed.
    pub async fn erase_patient(&self, accessor: &Accessor, patient_id: &str) -> Result<Granted<bool>, RecordError> {
        let asking = self.asking(accessor).await?;
        self.relate(&asking, &[patient_id.to_owned()]).await?;
        let decision = asking.decide_on_patient(Action::Erase, patient_id);
        if !decision.allowed {
            return Err(RecordError::Forbidden { policy_ids: decision.policy_ids });
        }
        match self.records.read("Patient", patient_id, None).await {
            Ok(_) | Err(RecordError::Shredded { .. }) => {}
            Err(e) => return Err(e),
        }
        let newest = self.records.store.compartment_activity(patient_id).await?;
        let now = self.records.clock.now_ms();
        let retained = asking.policies.retention().still_retained(&newest, now);
        if let Some(latest) = retained.iter().map(|(_, until)| *until).max() {
            let types: Vec<&str> = retained.iter().map(|(t, _)| t.as_str()).collect();
            return Err(FhirError::new(
                IssueType::BusinessRule,
                format!(
                    "records of this patient are within their retention period ({}) until {}; see retention.toml",
                    types.join(", "),
                    format_instant(latest)
                ),
            )
            .into());
        }
        let mut event = event_for(&self.audit, accessor, now, "erase", Outcome::Success);
        event.policies = decision.policy_ids.clone();
        event.patient_ids.push(patient_id.to_owned());
        event.target = Some(format!("Patient/{patient_id}"));
        let destroyed = self.records.shred_patient(patient_id, Some(&pending(&event))).await?;
        self.settle(accessor).await;
        Ok(Granted { value: destroyed, policy_ids: decision.policy_ids })
    }
}
