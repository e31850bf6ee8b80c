//! Activity review: `phivault alerts ...` and `phivault integrity scan`, and the server's
//! periodic runs of both. Every raised alert is written to the audit trail (`alert.raised`)
//! and sent to the privacy officer; every scan is audited (`integrity.scan`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use phivault_audit::alerts::{Alert, AlertMonitor, AlertStatus, AlertStore, FindingError};
use phivault_audit::detect::{AlertKind, DetectionRules, NewAlert, Watchlist};
use phivault_audit::{AuditEvent, Outcome};
use phivault_service::IntegrityReport;

use crate::config::ReviewConfig;
use crate::progress;
use crate::wiring::Services;

#[derive(Debug, Subcommand)]
pub enum AlertAction {
    /// Run the review rules over the audit entries not yet judged, now (the server also
    /// runs them every `review.alert_interval_secs`).
    Run,
    /// List alerts, newest first.
    List {
        /// open, benign, violation or all.
        #[arg(long, default_value = "open")]
        status: String,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Record the finding on an open alert (once).
    Review {
        /// The alert id (`alert-…`).
        id: String,
        /// benign or violation.
        #[arg(long)]
        finding: String,
    },
    /// Flag a patient: every access to their records raises an alert (VIPs, staff).
    Flag { patient_id: String },
    /// Remove a patient's flag.
    Unflag { patient_id: String },
    /// List the flagged patients' ids.
    Flagged,
}

impl AlertAction {
    /// The audit action name and target of this command.
    pub fn audit_name(&self) -> (&'static str, Option<String>) {
        match self {
            Self::Run => ("cli.alerts.run", None),
            Self::List { .. } => ("cli.alerts.list", None),
            Self::Review { id, .. } => ("cli.alerts.review", Some(format!("alert:{id}"))),
            Self::Flag { patient_id } => ("cli.alerts.flag", Some(format!("Patient/{patient_id}"))),
            Self::Unflag { patient_id } => ("cli.alerts.unflag", Some(format!("Patient/{patient_id}"))),
            Self::Flagged => ("cli.alerts.flagged", None),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum IntegrityAction {
    /// Open every stored version and check it against its row: authentication tag, type,
    /// id, version, compartment and data key, and each record's chain of versions. Exits
    /// non-zero and raises an alert when anything is wrong.
    Scan,
}

use crate::clock::now_ms;

/// What the rules know beyond the trail: flagged patients, and the patients sharing a
/// staff member's family name (through the blind index).
pub async fn watchlist(services: &Services) -> Result<Watchlist> {
    let mut watch = Watchlist {
        flagged: services.store.flagged_patients().await?.into_iter().collect(),
        exempt_roles: ["patient".to_owned()].into(),
        ..Watchlist::default()
    };
    let staff: Vec<(String, String)> = services
        .identity
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.status == "active" && !u.roles.iter().any(|r| r == "patient"))
        .map(|u| (u.id, u.display_name))
        .collect();
    watch.related = services.records.patients_sharing_family_name(&staff).await?;
    Ok(watch)
}

/// Writes `alert.raised` to the trail and sends the notice; a failed notice is logged and
/// audited (the alert stays in the queue either way).
async fn announce(services: &Services, alert: &Alert) -> Result<()> {
    let mut event = AuditEvent::new(now_ms(), "alert.raised", Outcome::Success, services.audit.node());
    event.reason = Some(alert.kind.code().to_owned());
    event.target = Some(format!("alert:{}", alert.id));
    event.patient_ids = alert.patient_ids.clone();
    event.user_id = Some("system:activity-review".into());
    services.audit.record(&event).await.map_err(|_| anyhow::anyhow!("the audit trail could not be written"))?;
    if let Some(notifier) = &services.notifier {
        let (subject, body) = alert.notice();
        if let Err(why) = notifier.notify(&subject, &body).await {
            tracing::error!(alert = %alert.id, error = %why, "cannot send the alert notice");
            let mut failed = AuditEvent::new(now_ms(), "alert.notify", Outcome::Failure, services.audit.node());
            failed.target = Some(format!("alert:{}", alert.id));
            failed.user_id = Some("system:activity-review".into());
            let _ = services.audit.record(&failed).await;
        }
    }
    Ok(())
}

/// One run of the rules; returns the alerts raised.
pub async fn run_rules(services: &Services, monitor: &mut AlertMonitor) -> Result<Vec<Alert>> {
    let watch = watchlist(services).await?;
    let raised = monitor.run_once(&services.store, &services.store, &watch, now_ms()).await?;
    for alert in &raised {
        announce(services, alert).await?;
    }
    Ok(raised)
}

/// Scans every stored record; audits the scan and raises an integrity alert on findings.
pub async fn integrity_scan(services: &Services, show_progress: bool) -> Result<IntegrityReport> {
    let total = services.records.store().version_count().await?;
    let bar = if show_progress { progress::bar(total, "scanning") } else { indicatif::ProgressBar::hidden() };
    let started = now_ms();
    let scanned = services.records.integrity_scan(&mut |done| bar.set_position(done)).await;
    bar.finish_and_clear();
    let mut event = AuditEvent::new(started, "integrity.scan", Outcome::Success, services.audit.node());
    event.user_id = Some("system:integrity-scan".into());
    let report = match scanned {
        Ok(report) => report,
        Err(e) => {
            event.outcome = Outcome::Failure;
            event.reason = Some("scan_failed".into());
            let _ = services.audit.record(&event).await;
            return Err(e).context("the integrity scan could not finish");
        }
    };
    let affected = report.affected();
    if !report.is_intact() {
        event.outcome = Outcome::Failure;
        event.reason = Some(format!("{} problems", report.problems.len()));
        // Ids only; capped so one entry stays small even if a whole table was damaged.
        event.resource_ids = affected.iter().take(1000).cloned().collect();
    } else {
        event.reason = Some("intact".into());
    }
    services.audit.record(&event).await.map_err(|_| anyhow::anyhow!("the audit trail could not be written"))?;
    if !report.is_intact() {
        let detail = format!(
            "integrity scan: {} problems in {} records ({})",
            report.problems.len(),
            affected.len(),
            problem_summary(&report)
        );
        raise_integrity_alert(services, started, detail).await?;
    }
    Ok(report)
}

/// Raises an integrity alert (a damaged record, a trail the signer will not vouch for) for
/// the privacy officer: stored, recorded in the trail, and sent if a relay is configured.
/// `detail` holds ids and counts only.
pub async fn raise_integrity_alert(services: &Services, time_ms: i64, detail: String) -> Result<()> {
    raise_alert(services, AlertKind::Integrity, time_ms, detail).await
}

/// Raises a system alert of `kind` (no user, no patient) and announces it.
pub async fn raise_alert(services: &Services, kind: AlertKind, time_ms: i64, detail: String) -> Result<()> {
    let new =
        NewAlert { kind, time_ms, user_id: None, source_ip: None, patient_ids: Vec::new(), seqs: Vec::new(), detail };
    let alert = Alert::open(new, now_ms())?;
    services.store.insert_alert(&alert).await?;
    announce(services, &alert).await
}

/// "3 tampered, 1 version-gap": counts per kind, in a fixed order.
fn problem_summary(report: &IntegrityReport) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for p in &report.problems {
        *counts.entry(p.kind.code()).or_insert(0u64) += 1;
    }
    counts.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
}

pub async fn integrity(services: &Services, action: IntegrityAction) -> Result<()> {
    match action {
        IntegrityAction::Scan => {
            let report = integrity_scan(services, true).await?;
            println!(
                "scanned {} versions of {} records ({} erased by crypto-shredding)",
                report.versions, report.resources, report.shredded
            );
            if report.is_intact() {
                println!("every stored record is intact");
                return Ok(());
            }
            for problem in &report.problems {
                println!("  {problem}");
            }
            bail!(
                "{} integrity problems in {} records; an alert was raised",
                report.problems.len(),
                report.affected().len()
            )
        }
    }
}

pub async fn alerts(services: &Services, rules: &DetectionRules, action: AlertAction) -> Result<()> {
    let store: Arc<dyn AlertStore> = Arc::new(services.store.clone());
    match action {
        AlertAction::Run => {
            let mut monitor = AlertMonitor::new(rules.clone());
            let raised = run_rules(services, &mut monitor).await?;
            println!("{} new alerts", raised.len());
            for alert in &raised {
                println!("{}", serde_json::to_string(alert)?);
            }
        }
        AlertAction::List { status, limit } => {
            let status = match status.as_str() {
                "all" => None,
                s => Some(AlertStatus::parse(s).context("--status is open, benign, violation or all")?),
            };
            for alert in store.alerts(status, limit).await? {
                println!("{}", serde_json::to_string(&alert)?);
            }
        }
        AlertAction::Review { id, finding } => {
            let finding = AlertStatus::parse(&finding).context("--finding is benign or violation")?;
            let reviewer = crate::actor::os_actor();
            match phivault_audit::alerts::record_finding(store.as_ref(), &id, finding, &reviewer, now_ms()).await {
                Ok(()) => println!("alert {id} marked {}", finding.code()),
                Err(FindingError::NotAFinding) => bail!("--finding is benign or violation"),
                Err(FindingError::NotFound) => bail!("there is no alert {id}"),
                Err(FindingError::AlreadyReviewed) => bail!("alert {id} was already reviewed"),
                Err(FindingError::Store(e)) => return Err(e.into()),
            }
        }
        AlertAction::Flag { patient_id } | AlertAction::Unflag { patient_id }
            if !phivault_fhir::is_valid_id(&patient_id) =>
        {
            bail!("that is not a valid Patient id")
        }
        AlertAction::Flag { patient_id } => {
            // The row is enough: the operator flags by id and reads nothing.
            if services.records.store().read("Patient", &patient_id, None).await?.is_none() {
                bail!("there is no Patient/{patient_id}");
            }
            let reviewer = crate::actor::os_actor();
            let changed = store.set_flagged(&patient_id, true, &reviewer, now_ms()).await?;
            println!("Patient/{patient_id} {}", if changed { "flagged" } else { "was already flagged" });
        }
        AlertAction::Unflag { patient_id } => {
            let changed = store.set_flagged(&patient_id, false, "", now_ms()).await?;
            println!("Patient/{patient_id} {}", if changed { "unflagged" } else { "was not flagged" });
        }
        AlertAction::Flagged => {
            for id in store.flagged_patients().await? {
                println!("Patient/{id}");
            }
        }
    }
    Ok(())
}

/// The server's activity review: the rules every `alert_interval_secs`, the integrity
/// scan every `integrity_scan_hours` (first ten minutes after start, so a server that is
/// restarted daily still scans). Runs until aborted; failures are logged and retried.
pub fn spawn_periodic(services: &Services, config: &ReviewConfig) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if config.alert_interval_secs > 0 {
        let (services, rules) = (services.clone(), config.rules.clone());
        let every = Duration::from_secs(config.alert_interval_secs);
        tasks.push(tokio::spawn(async move {
            let mut monitor = AlertMonitor::new(rules);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match run_rules(&services, &mut monitor).await {
                    Ok(raised) if !raised.is_empty() => {
                        tracing::warn!(alerts = raised.len(), "activity review raised alerts")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "the activity review rules could not run"),
                }
            }
        }));
    }
    if config.integrity_scan_hours > 0 {
        let services = services.clone();
        let every = Duration::from_secs(config.integrity_scan_hours.saturating_mul(3600));
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(600).min(every)).await;
            loop {
                match integrity_scan(&services, false).await {
                    Ok(report) if !report.is_intact() => {
                        tracing::error!(
                            problems = report.problems.len(),
                            "integrity scan found damaged or altered records"
                        )
                    }
                    Ok(report) => {
                        tracing::info!(versions = report.versions, "integrity scan: every stored record is intact")
                    }
                    Err(e) => tracing::error!(error = %e, "the integrity scan could not run"),
                }
                tokio::time::sleep(every).await;
            }
        }));
    }
    tasks
}
