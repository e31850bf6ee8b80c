//! `phivault careteam ...`, `phivault department ...` and `phivault clearance ...`: the
//! relationships the access policies read. 45 CFR 164.308(a)(4)(ii)(B)-(C): access is authorized, established and
//! modified by a documented act; each is recorded in the audit trail.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use phivault_service::access::{AccessStore, Assignment, AssignmentKind, CLEARANCE_CATEGORIES};

use crate::wiring::Services;

#[derive(Debug, Subcommand)]
pub enum MembershipAction {
    /// Add a physician or nurse (to a patient's care team, or to a department).
    Add {
        user: String,
        /// The Patient id (care teams) or the department's Organization id.
        id: String,
    },
    /// Take a user off.
    Remove { user: String, id: String },
    /// List memberships, of one user or of one patient's team or department.
    List {
        #[arg(long)]
        user: Option<String>,
        /// The Patient id (care teams) or Organization id (departments).
        #[arg(long, visible_alias = "patient", visible_alias = "department")]
        of: Option<String>,
    },
}

/// What a membership joins a user to.
#[derive(Debug, Clone, Copy)]
pub enum Membership {
    /// A patient's care team.
    CareTeam,
    /// A department: patients with a recent Encounter there (`Encounter.serviceProvider`).
    Department,
}

impl Membership {
    fn kind(self) -> AssignmentKind {
        match self {
            Membership::CareTeam => AssignmentKind::CareTeam,
            Membership::Department => AssignmentKind::Department,
        }
    }
    fn resource_type(self) -> &'static str {
        match self {
            Membership::CareTeam => "Patient",
            Membership::Department => "Organization",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Membership::CareTeam => "care team",
            Membership::Department => "department",
        }
    }
    fn audit_name(self, verb: &str) -> String {
        match self {
            Membership::CareTeam => format!("cli.careteam.{verb}"),
            Membership::Department => format!("cli.department.{verb}"),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ClearanceAction {
    /// Clear a user for a sensitive category: behavioral_health, substance_use, hiv,
    /// reproductive_health, psychotherapy_notes.
    Grant { user: String, category: String },
    /// Withdraw a clearance.
    Revoke { user: String, category: String },
    /// List clearances (of one user).
    List {
        #[arg(long)]
        user: Option<String>,
    },
}

/// Who ran the command, as the audit trail names the operator.
fn operator() -> String {
    crate::actor::os_actor()
}

async fn record(services: &Services, action: &str, user_id: &str, patient: Option<&str>, ok: bool) -> Result<()> {
    let outcome = if ok { phivault_audit::Outcome::Success } else { phivault_audit::Outcome::Failure };
    let mut event = phivault_audit::AuditEvent::new(services.identity.now_ms(), action, outcome, services.audit.node());
    event.user_id = Some(operator());
    event.target = Some(format!("user:{user_id}"));
    if let Some(p) = patient {
        event.patient_ids.push(phivault_audit::clip(p, 64));
    }
    services.audit.record(&event).await.map_err(|_| anyhow::anyhow!("the audit trail could not be written"))?;
    Ok(())
}

/// Runs a care-team or department command and records it.
pub async fn membership(services: &Services, what: Membership, action: MembershipAction) -> Result<()> {
    let (kind, noun) = (what.kind(), what.noun());
    match action {
        MembershipAction::Add { user, id } => {
            let account = services.identity.find_user(&user).await.context("no such account")?;
            let roles: Vec<String> = account.roles.iter().map(|r| r.as_str().to_owned()).collect();
            let result = async {
                let added = services.guarded.add_membership(kind, &account.id, &roles, &id, &operator()).await?;
                println!("{}", if added { format!("added to the {noun}") } else { format!("already in the {noun}") });
                anyhow::Ok(())
            }
            .await;
            let patient = matches!(what, Membership::CareTeam).then_some(id.as_str());
            record(services, &what.audit_name("add"), &account.id, patient, result.is_ok()).await?;
            result
        }
        MembershipAction::Remove { user, id } => {
            let account = services.identity.find_user(&user).await.context("no such account")?;
            let removed = services.guarded.remove_membership(kind, &account.id, &id).await;
            let patient = matches!(what, Membership::CareTeam).then_some(id.as_str());
            record(services, &what.audit_name("remove"), &account.id, patient, removed.is_ok()).await?;
            println!(
                "{}",
                if removed? { format!("removed from the {noun}") } else { format!("was not in the {noun}") }
            );
            Ok(())
        }
        MembershipAction::List { user, of } => {
            let user_id = match &user {
                Some(u) => Some(services.identity.find_user(u).await.context("no such account")?.id),
                None => None,
            };
            let rows = services.guarded.memberships(kind, user_id.as_deref(), of.as_deref()).await?;
            for row in &rows {
                println!("user {}  {}/{}  (by {})", row.user_id, what.resource_type(), row.value, row.assigned_by);
            }
            println!("{} membership(s)", rows.len());
            Ok(())
        }
    }
}

/// Runs a clearance command and records it.
pub async fn clearance(services: &Services, action: ClearanceAction) -> Result<()> {
    if let ClearanceAction::Grant { category, .. } | ClearanceAction::Revoke { category, .. } = &action
        && !CLEARANCE_CATEGORIES.contains(&category.as_str())
    {
        bail!("unknown category `{category}`; one of: {}", CLEARANCE_CATEGORIES.join(", "));
    }
    match action {
        ClearanceAction::Grant { user, category } => {
            let account = services.identity.find_user(&user).await.context("no such account")?;
            let added = services
                .store
                .assign(&Assignment {
                    kind: AssignmentKind::Clearance,
                    user_id: account.id.clone(),
                    value: category.clone(),
                    assigned_by: operator(),
                    assigned_ms: services.identity.now_ms(),
                })
                .await;
            record(services, &format!("cli.clearance.grant.{category}"), &account.id, None, added.is_ok()).await?;
            println!("{}", if added? { "cleared" } else { "already cleared" });
            Ok(())
        }
        ClearanceAction::Revoke { user, category } => {
            let account = services.identity.find_user(&user).await.context("no such account")?;
            let removed = services.store.unassign(AssignmentKind::Clearance, &account.id, &category).await;
            record(services, &format!("cli.clearance.revoke.{category}"), &account.id, None, removed.is_ok()).await?;
            println!("{}", if removed? { "clearance withdrawn" } else { "was not cleared" });
            Ok(())
        }
        ClearanceAction::List { user } => {
            let user_id = match &user {
                Some(u) => Some(services.identity.find_user(u).await.context("no such account")?.id),
                None => None,
            };
            let rows = services.store.assignments(AssignmentKind::Clearance, user_id.as_deref(), None).await?;
            for row in &rows {
                println!("user {}  {}  (by {})", row.user_id, row.value, row.assigned_by);
            }
            println!("{} clearance(s)", rows.len());
            Ok(())
        }
    }
}
