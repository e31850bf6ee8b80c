//! `phivault policy ...`: validate, test and explain the access policies; and the server's
//! reload of changed policy files (a set that fails validation never replaces the last
//! good one).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use phivault_policy::{Action, Policies, RecordFacts, RequestFacts, Subject, Target, TargetKind, UserFacts, cases};
use phivault_service::access::{AccessStore, LivePolicies};

use crate::config::PolicyConfig;
use crate::wiring::Services;

#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Validate the policies against the schema and list them.
    Check,
    /// Run decision tables: the policy directory's cases.toml (or the built-in one) and
    /// any given with --cases.
    Test {
        /// More decision tables (TOML, see the policy directory's cases.toml).
        #[arg(long)]
        cases: Vec<PathBuf>,
    },
    /// Could USER do ACTION on a resource, a patient or the system, and why?
    Explain {
        /// Username or account id.
        #[arg(long)]
        user: String,
        /// read, search, history, create, update, delete, export, break_glass, erase,
        /// manage_users, manage_care_teams, read_audit, review_break_glass, manage_system.
        #[arg(long)]
        action: String,
        /// For record actions: the resource as Type/id (its compartment and labels are read).
        #[arg(long)]
        resource: Option<String>,
        /// For patient actions (break_glass, erase): the Patient id.
        #[arg(long)]
        patient: Option<String>,
        /// The network zone to assume.
        #[arg(long, default_value = phivault_policy::ANY_ZONE)]
        zone: String,
    },
}

/// `phivault policy check`.
pub fn check(config: &PolicyConfig) -> Result<()> {
    let policies = config.load()?;
    let source = if config.dir.exists() { config.dir.display().to_string() } else { "built-in defaults".into() };
    println!("policies valid ({source}):");
    for (id, file) in policies.policy_ids() {
        println!("  {id:<48} {file}");
    }
    for (name, about, mask) in policies.views().iter() {
        println!("view {name}: {about} ({} fields masked)", mask.removals.len());
    }
    Ok(())
}

/// `phivault policy test`.
pub fn test(config: &PolicyConfig, extra: &[PathBuf]) -> Result<()> {
    let policies = config.load()?;
    let own = config.dir.join("cases.toml");
    let mut tables: Vec<(String, String)> = Vec::new();
    if own.exists() {
        tables.push((own.display().to_string(), std::fs::read_to_string(&own)?));
    } else {
        tables.push(("built-in cases".into(), phivault_policy::defaults::CASES.into()));
    }
    for path in extra {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        tables.push((path.display().to_string(), text));
    }
    let (mut passed, mut failed) = (0, 0);
    for (name, text) in tables {
        let table = cases::parse(&text).with_context(|| format!("{name} is not a valid decision table"))?;
        for result in cases::run(&policies, &table)? {
            if result.passed {
                passed += 1;
                println!("ok   {}", result.name);
            } else {
                failed += 1;
                println!("FAIL {}\n     expected {}, got {}", result.name, result.expected, result.got);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} decision(s) differ from the table");
    }
    Ok(())
}

/// `phivault policy explain`: prints the decision and the text of the policies behind it.
pub async fn explain(
    services: &Services,
    user: &str,
    action: &str,
    resource: Option<&str>,
    patient: Option<&str>,
    zone: &str,
) -> Result<()> {
    let Some(action) = Action::parse(action) else { bail!("unknown action `{action}`") };
    let account = services.identity.find_user(user).await.context("no such account")?;
    let now = services.identity.now_ms();
    let relationships = services.store.relationships(&account.id, now).await?;
    let subject = Subject::User(UserFacts {
        user_id: account.id.clone(),
        roles: account.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        own_patient: account.patient_id.clone(),
        care_team: relationships.care_team,
        department_patients: services.guarded.department_patients_of(&relationships.departments).await?,
        emergency_access: relationships.emergency_access,
        cleared_categories: relationships.clearances,
        mfa: account.totp_confirmed,
        authentication_age_secs: 0,
        via_app: false,
    });
    let target = match (action.target(), resource, patient) {
        (TargetKind::Record, Some(reference), None) => {
            let Some((resource_type, id)) = reference.split_once('/') else {
                bail!("--resource must be Type/id");
            };
            // The operator's console reads the record's facts only; nothing is printed of it.
            let stored = services.records.read(resource_type, id, None).await.context("cannot read the resource")?;
            let compartment = phivault_fhir::patient_compartment(resource_type, id, &stored.body);
            Target::Record(RecordFacts::of(resource_type, Some(id), compartment, &stored.body))
        }
        (TargetKind::Patient, None, Some(p)) => Target::Patient(p.to_owned()),
        (TargetKind::System, None, None) => Target::System,
        (TargetKind::Record, ..) => bail!("{action} applies to a record: give --resource Type/id"),
        (TargetKind::Patient, ..) => bail!("{action} applies to a patient: give --patient ID"),
        (TargetKind::System, ..) => bail!("{action} applies to the system: give neither --resource nor --patient"),
    };
    let policies = services.guarded.policies().current();
    let request = RequestFacts { zone: zone.to_owned(), ..RequestFacts::default() };
    let decision = policies.decide(&subject, action, &target, &request);
    if let Target::Record(facts) = &target {
        println!(
            "resource: {} in {}; labels: {}",
            facts.resource_type,
            facts
                .patient
                .as_ref()
                .map_or("no patient's compartment".to_owned(), |p| format!("Patient/{p}'s compartment")),
            if facts.labels.is_empty() { "none".to_owned() } else { facts.labels.join(", ") }
        );
    }
    println!("decision: {}", if decision.allowed { "ALLOW" } else { "DENY" });
    if decision.policy_ids.is_empty() {
        println!("because no policy permits it (default deny)");
    }
    for id in &decision.policy_ids {
        println!("\n-- {id} --\n{}", policies.policy_text(id).unwrap_or_default());
    }
    if !decision.mask.is_empty() {
        let fields: Vec<String> = decision.mask.removals.iter().map(ToString::to_string).collect();
        println!("\nview {}: masks {}", decision.mask.views.join("+"), fields.join(", "));
    }
    for error in &decision.errors {
        println!("note: a policy could not be evaluated: {error}");
    }
    Ok(())
}

/// The newest modification time and the names of the policy directory's files.
fn fingerprint(dir: &Path) -> Option<(SystemTime, Vec<String>)> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let modified = entry.metadata().ok()?.modified().ok()?;
        newest = newest.max(modified);
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Some((newest, names))
}

/// Reloads the policies when files in the policy directory change. A set that fails
/// validation is refused: the last good set stays in force, and both outcomes go to the
/// audit trail (`policy.reload`).
pub async fn watch(config: PolicyConfig, live: Arc<LivePolicies>, audit: phivault_audit::AuditLog) {
    let mut seen = fingerprint(&config.dir);
    let mut tick = tokio::time::interval(Duration::from_secs(config.reload_interval_secs.max(1)));
    loop {
        tick.tick().await;
        let now = fingerprint(&config.dir);
        if now == seen {
            continue;
        }
        seen = now;
        let result = if config.dir.exists() { Policies::from_dir(&config.dir) } else { Policies::defaults() };
        let ok = match result {
            Ok(policies) => {
                live.replace(policies);
                tracing::info!(dir = %config.dir.display(), "access policies reloaded");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "changed access policies are invalid; the last good set stays in force");
                false
            }
        };
        if super::audit::record_cli(&audit, "policy.reload", None, ok).await.is_err() {
            tracing::error!("cannot write the policy reload to the audit trail");
        }
    }
}
