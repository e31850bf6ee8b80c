//! Care-team and department memberships, as an administrator makes them (CLI or admin
//! API): only physicians and nurses join, and only a resource that exists can be named.
//! 45 CFR 164.308(a)(4)(ii)(B)-(C) access authorization, establishment and modification.

use super::guarded::{GuardedRecords, forbidden};
use super::trail::{event_for, pending};
use super::{Accessor, Assignment, AssignmentKind, Granted, Requester};
use crate::RecordError;
use phivault_audit::Outcome;
use phivault_fhir::{FhirError, IssueType};
use phivault_policy::Action;

/// The policy id a refusal to put oneself on a care team names.
pub const NO_SELF_ASSIGNMENT: &str = "no-self-assignment";

/// A change to a care team, as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareTeamChange {
    pub add: bool,
    /// The clinician's account id and roles.
    pub member_id: String,
    pub member_roles: Vec<String>,
    pub patient_id: String,
}

/// Roles that may hold care-team or department memberships.
const MEMBER_ROLES: [&str; 2] = ["physician", "nurse"];

impl GuardedRecords {
    /// Adds `user_id` (holding `roles`) to the care team of a Patient or to a department
    /// (an Organization). Refuses other roles and ids that name no existing resource: a
    /// made-up id would be a standing grant to whatever record later takes it. Returns
    /// whether the membership is new. The caller has decided that the actor may manage
    /// memberships, and audits.
    pub async fn add_membership(
        &self,
        kind: AssignmentKind,
        user_id: &str,
        roles: &[String],
        value: &str,
        assigned_by: &str,
    ) -> Result<bool, RecordError> {
        let resource_type = match kind {
            AssignmentKind::CareTeam => "Patient",
            AssignmentKind::Department => "Organization",
            AssignmentKind::Clearance => {
                return Err(FhirError::invalid("clearances are granted, not joined").into());
            }
        };
        if !roles.iter().any(|r| MEMBER_ROLES.contains(&r.as_str())) {
            return Err(FhirError::new(
                IssueType::BusinessRule,
                "only physicians and nurses join care teams and departments",
            )
            .into());
        }
        match self.records.read(resource_type, value, None).await {
            Ok(_) | Err(RecordError::Shredded { .. }) => {}
            Err(e) => return Err(e),
        }
        let assignment = Assignment {
            kind,
            user_id: user_id.to_owned(),
            value: value.to_owned(),
            assigned_by: assigned_by.to_owned(),
            assigned_ms: self.records.clock.now_ms(),
        };
        Ok(self.access.assign(&assignment).await?)
    }

    /// Adds or removes a clinician on a patient's care team for a signed-in person the
    /// policies let manage care teams (`manage_care_teams`), with the entry `action`
    /// committed in the same transaction. Refused: managing one's own membership (a
    /// standing grant to oneself, with none of break-glass's time limit or review), a patient
    /// the caller may not read (answered as not found, as a read would be), a member who is
    /// not a physician or nurse. Whether anything changed.
    pub async fn change_care_team(
        &self,
        accessor: &Accessor,
        change: &CareTeamChange,
        action: &str,
    ) -> Result<Granted<bool>, RecordError> {
        let asking = self.asking(accessor).await?;
        let Requester::User { user_id: actor, .. } = &accessor.requester else {
            return Err(forbidden(Vec::new()));
        };
        let decision = asking.decide_on_system(Action::ManageCareTeams);
        if !decision.allowed {
            return Err(RecordError::Forbidden { policy_ids: decision.policy_ids });
        }
        if *actor == change.member_id {
            return Err(RecordError::Forbidden { policy_ids: vec![NO_SELF_ASSIGNMENT.to_owned()] });
        }
        if change.add && !change.member_roles.iter().any(|r| MEMBER_ROLES.contains(&r.as_str())) {
            return Err(FhirError::new(IssueType::BusinessRule, "only physicians and nurses join care teams").into());
        }
        // The patient must be one the caller may read: a hidden or destroyed record looks
        // like one that never existed, here as everywhere.
        let mut patient = match self.records.read("Patient", &change.patient_id, None).await {
            Ok(patient) => patient,
            Err(e) => return Err(self.hide_shredded(&asking, e).await),
        };
        self.relate(&asking, std::slice::from_ref(&change.patient_id)).await?;
        if asking.show(Action::Read, &mut patient).is_err() {
            return Err(RecordError::NotFound { resource_type: "Patient".into(), id: change.patient_id.clone() });
        }
        let now = self.records.clock.now_ms();
        let mut event = event_for(&self.audit, accessor, now, action, Outcome::Success);
        event.target = Some(format!("user:{}", change.member_id));
        event.patient_ids.push(change.patient_id.clone());
        event.resource_ids.push(format!("Patient/{}", change.patient_id));
        event.policies = decision.policy_ids.clone();
        let assignment = Assignment {
            kind: AssignmentKind::CareTeam,
            user_id: change.member_id.clone(),
            value: change.patient_id.clone(),
            assigned_by: actor.clone(),
            assigned_ms: now,
        };
        let changed = self.access.change_care_team_recorded(&assignment, change.add, &pending(&event)).await?;
        self.settle(accessor).await;
        Ok(Granted { value: changed, policy_ids: decision.policy_ids })
    }

    /// Removes a membership; whether there was one.
    pub async fn remove_membership(
        &self,
        kind: AssignmentKind,
        user_id: &str,
        value: &str,
    ) -> Result<bool, RecordError> {
        Ok(self.access.unassign(kind, user_id, value).await?)
    }

    /// Memberships of one kind, of one user or for one patient or department.
    pub async fn memberships(
        &self,
        kind: AssignmentKind,
        user_id: Option<&str>,
        value: Option<&str>,
    ) -> Result<Vec<Assignment>, RecordError> {
        Ok(self.access.assignments(kind, user_id, value).await?)
    }
}
