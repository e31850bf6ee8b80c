//! `phivault careteam ...` and `phivault clearance ...`: the relationships the access
//! policies read. 45 CFR 164.308(a)(4)(ii)(B)-(C): access is authorized, established and
//! modified by a documented act; each is recorded in the audit trail.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use phivault_identity::Role;
use phivault_service::access::{AccessStore, Assignment, AssignmentKind, CLEARANCE_CATEGORIES};

use crate::wiring::Services;

#[derive(Debug, Subcommand)]
pub enum CareTeamAction {
    /// Put a physician or nurse on a patient's care team.
    Add { user: String, patient_id: String },
    /// Take a user off a patient's care team.
    Remove { user: String, patient_id: String },
    /// List memberships, of one user or of one patient's team.
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        patient: Option<String>,
    },
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
    let login = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    format!("os:{}", phivault_audit::clip(&login, 64))
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

/// Runs a care-team command and records it.
pub async fn care_team(services: &Services, action: CareTeamAction) -> Result<()> {
    match action {
        CareTeamAction::Add { user, patient_id } => {
            let account = services.identity.find_user(&user).await.context("no such account")?;
            let result = async {
                if !account.roles.iter().any(|r| matches!(r, Role::Physician | Role::Nurse)) {
                    bail!("only physicians and nurses join care teams; {user} has neither role");
                }
                // A care team names a real patient: a made-up id would be a standing grant
                // to whatever record later takes it.
                match services.records.read("Patient", &patient_id, None).await {
                    Ok(_) => {}
                    Err(phivault_service::RecordError::NotFound { .. }) => bail!("there is no Patient/{patient_id}"),
                    Err(e) => return Err(e).context("cannot check the patient"),
                }
                let added = services
                    .store
                    .assign(&Assignment {
                        kind: AssignmentKind::CareTeam,
                        user_id: account.id.clone(),
                        value: patient_id.clone(),
                        assigned_by: operator(),
                        assigned_ms: services.identity.now_ms(),
                    })
                    .await?;
                println!("{}", if added { "added to the care team" } else { "already on the care team" });
                Ok(())
            }
            .await;
            record(services, "cli.careteam.add", &account.id, Some(&patient_id), result.is_ok()).await?;
            result
        }
        CareTeamAction::Remove { user, patient_id } => {
            let account = services.identity.find_user(&user).await.context("no such account")?;
            let removed = services.store.unassign(AssignmentKind::CareTeam, &account.id, &patient_id).await;
            record(services, "cli.careteam.remove", &account.id, Some(&patient_id), removed.is_ok()).await?;
            println!("{}", if removed? { "removed from the care team" } else { "was not on the care team" });
            Ok(())
        }
        CareTeamAction::List { user, patient } => {
            let user_id = match &user {
                Some(u) => Some(services.identity.find_user(u).await.context("no such account")?.id),
                None => None,
            };
            let rows =
                services.store.assignments(AssignmentKind::CareTeam, user_id.as_deref(), patient.as_deref()).await?;
            for row in &rows {
                println!("user {}  Patient/{}  (by {})", row.user_id, row.value, row.assigned_by);
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
