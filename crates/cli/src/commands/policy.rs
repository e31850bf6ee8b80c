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
        /// manage_users, manage_care_teams, read_audit, review_break_glass, manage_system,
        /// approve_credentials.
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

/// The policy texts in force: the `.cedar` files, `views.toml` and `retention.toml` of
/// `dir` (by name, in order), or the built-in defaults when `dir` does not exist.
fn policy_texts(dir: &Path) -> Vec<(String, String)> {
    if !dir.exists() {
        let mut texts: Vec<(String, String)> =
            phivault_policy::defaults::policy_sources().into_iter().map(|s| (s.name, s.text)).collect();
        texts.push(("views.toml".into(), phivault_policy::defaults::VIEWS.into()));
        texts.push(("retention.toml".into(), phivault_policy::defaults::RETENTION.into()));
        return texts;
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".cedar") || n == "views.toml" || n == "retention.toml")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.into_iter().filter_map(|n| std::fs::read_to_string(dir.join(&n)).ok().map(|t| (n, t))).collect()
}

/// `sha256:<hex>` over the policy texts in force (each name and text, length-prefixed so
/// no two sets share a digest), written to the trail at start and at every reload, and the
/// texts kept under `archive/<hex>/` so an auditor can replay a recorded decision against
/// exactly the rules that made it.
pub fn record_policy_texts(dir: &Path, archive: &Path) -> String {
    let texts = policy_texts(dir);
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for (name, text) in &texts {
        for part in [name.as_bytes(), text.as_bytes()] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
    }
    let hex: String = ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let kept = archive.join(&hex);
    if !kept.exists() {
        let written = std::fs::create_dir_all(&kept)
            .and_then(|()| texts.iter().try_for_each(|(name, text)| std::fs::write(kept.join(name), text)));
        if let Err(e) = written {
            tracing::error!(error = %e, dir = %kept.display(), "cannot keep a copy of the policy texts in force");
        }
    }
    format!("sha256:{hex}")
}

/// Reloads the policies when files in the policy directory change. A set that fails
/// validation is refused: the last good set stays in force, and both outcomes go to the
/// audit trail (`policy.reload`).
pub async fn watch(config: PolicyConfig, live: Arc<LivePolicies>, audit: phivault_audit::AuditLog, archive: PathBuf) {
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
        let reason = if ok { Some(format!("policies={}", record_policy_texts(&config.dir, &archive))) } else { None };
        // The server noticed the change, not a person at a console: the audit system's actor,
        // as for `audit.start` (who edited the files is the operating system's to tell).
        let recorded = match super::audit::cli_event(&audit, "policy.reload", None, ok) {
            Ok(mut event) => {
                event.user_id = Some("system:phivault".into());
                event.reason = reason;
                audit.record(&event).await.map_err(|_| ())
            }
            Err(_) => Err(()),
        };
        if recorded.is_err() {
            tracing::error!("cannot write the policy reload to the audit trail");
        }
    }
}

#[cfg(test)]
mod recorded_texts {
    use super::*;

    /// The review found the start entry's digest unchanged when `staff.cedar` changed: the
    /// digest now covers the policy texts, and the texts are kept for replay.
    #[test]
    fn the_recorded_digest_follows_the_policy_texts_and_keeps_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (dir, archive) = (tmp.path().join("policies"), tmp.path().join("audit/policies"));
        let builtin = record_policy_texts(&dir, &archive);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("staff.cedar"), "@id(\"a\") permit(principal, action, resource);").expect("write");
        let first = record_policy_texts(&dir, &archive);
        std::fs::write(dir.join("staff.cedar"), "@id(\"a\") forbid(principal, action, resource);").expect("write");
        let second = record_policy_texts(&dir, &archive);
        assert_ne!(builtin, first);
        assert_ne!(first, second, "a changed policy file changes the digest");
        assert_eq!(second, record_policy_texts(&dir, &archive), "the same texts, the same digest");
        let kept = archive.join(second.trim_start_matches("sha256:")).join("staff.cedar");
        assert!(std::fs::read_to_string(kept).expect("kept").contains("forbid"), "the texts in force are kept");
        std::fs::write(dir.join("notes.txt"), "not a policy").expect("write");
        assert_eq!(second, record_policy_texts(&dir, &archive), "other files do not count");
    }
}
