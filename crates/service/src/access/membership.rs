//! Care-team and department memberships, as an administrator makes them (CLI or admin
//! API): only physicians and nurses join, and only a resource that exists can be named.
//! 45 CFR 164.308(a)(4)(ii)(B)-(C) access authorization, establishment and modification.

use super::guarded::GuardedRecords;
use super::{Assignment, AssignmentKind};
use crate::RecordError;
use phivault_fhir::{FhirError, IssueType};

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
