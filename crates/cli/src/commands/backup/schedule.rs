//! The server's own backup schedule (`[backup] repository`): a backup every
//! `every_minutes`, a drill every `drill_every_days`, and alerts to the privacy officer when
//! a backup or drill fails, when the newest backup is older than `rpo_minutes`, or when no
//! drill has passed within `drill_within_days` (45 CFR 164.308(a)(7)(ii)(A), (D)). Each alert
//! is raised once per cause, not at every check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use phivault_audit::detect::AlertKind;

use super::state;
use crate::config::Config;
use crate::wiring::Services;

/// How often the schedule looks.
const CHECK_EVERY: Duration = Duration::from_secs(60);
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
const ACTOR: &str = "system:phivault";

use crate::clock::now_ms;

/// Starts the schedule when a repository is configured.
pub fn spawn(services: &Services, config: &Config, data_dir: &Path) -> Option<tokio::task::JoinHandle<()>> {
    let repo = config.backup.repository.clone()?;
    let (services, config, data_dir) = (services.clone(), config.clone(), data_dir.to_owned());
    Some(tokio::spawn(async move {
        let mut schedule = Schedule { services, config, data_dir, repo, alerted: Vec::new(), started_ms: now_ms() };
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            schedule.check().await;
        }
    }))
}

/// Runs `work` on a blocking thread of the same runtime (its database pool stays usable).
async fn off_the_workers(
    work: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work))
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the backup task failed: {e}")))
}

struct Schedule {
    services: Services,
    config: Config,
    data_dir: PathBuf,
    repo: PathBuf,
    /// The causes already alerted on (cleared when the cause goes away).
    alerted: Vec<&'static str>,
    started_ms: i64,
}

impl Schedule {
    async fn check(&mut self) {
        let backup = self.config.backup.clone();
        let now = now_ms();
        // An unreadable state file stops the schedule (it would back up every minute,
        // and could not tell a rolled-back repository) until someone repairs it.
        let newest = match state::newest_time(&backup.state_file, &self.repo) {
            Ok(newest) => {
                self.clear("state");
                newest
            }
            Err(e) => {
                let detail = format!("the backup schedule stopped: {e:#}");
                self.alert("state", detail).await;
                return;
            }
        };
        if newest.is_none_or(|t| now - t >= backup.every_minutes as i64 * MINUTE_MS) {
            self.back_up().await;
        }
        // Late: measured from the newest backup, or from this start when there is none yet.
        let newest = state::newest_time(&backup.state_file, &self.repo).ok().flatten();
        let age = now_ms() - newest.unwrap_or(self.started_ms);
        if age > backup.rpo_minutes as i64 * MINUTE_MS {
            let detail = format!(
                "the newest backup in {} is {} minutes old; the recovery point objective is {} minutes",
                self.repo.display(),
                age / MINUTE_MS,
                backup.rpo_minutes
            );
            self.alert("stale", detail).await;
        } else {
            self.clear("stale");
        }
        if backup.drill_every_days > 0 {
            let (last, _) = state::drills(&backup.state_file, &self.repo).unwrap_or_default();
            if newest.is_some() && last.is_none_or(|d| now_ms() - d.time_ms >= backup.drill_every_days as i64 * DAY_MS)
            {
                self.drill().await;
            }
        }
        let (_, passed) = state::drills(&backup.state_file, &self.repo).unwrap_or_default();
        let since = passed.unwrap_or(self.started_ms);
        if now_ms() - since > backup.drill_within_days as i64 * DAY_MS {
            let detail = format!(
                "no backup drill has passed for {} in {} days (the plan asks for one within {})",
                self.repo.display(),
                (now_ms() - since) / DAY_MS,
                backup.drill_within_days
            );
            self.alert("no-drill", detail).await;
        } else {
            self.clear("no-drill");
        }
    }

    async fn back_up(&mut self) {
        let (data_dir, config, store, repo) =
            (self.data_dir.clone(), self.config.clone(), self.services.store.clone(), self.repo.clone());
        // File IO, compression and sealing on a blocking thread, not on the server's workers.
        let result = off_the_workers(async move {
            super::create_recorded(&data_dir, &config, &store, &repo, ACTOR, "backup.create").await.map(|_| ())
        })
        .await;
        match result {
            Ok(_) => self.clear("backup-failed"),
            // Another node (or a console backup) holds the repository: its turn.
            Err(e) if format!("{e:#}").contains("is locked by another backup") => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the scheduled backup failed");
                self.alert("backup-failed", format!("the scheduled backup into {} failed: {e:#}", self.repo.display()))
                    .await;
            }
        }
    }

    async fn drill(&mut self) {
        let (config, store, repo) = (self.config.clone(), self.services.store.clone(), self.repo.clone());
        let result = off_the_workers(async move {
            super::drill_recorded(&config, &store, &repo, ACTOR, "backup.drill").await.map(|_| ())
        })
        .await;
        match result {
            Ok(_) => self.clear("drill-failed"),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the scheduled backup drill failed");
                self.alert(
                    "drill-failed",
                    format!("the scheduled backup drill of {} failed: {e:#}", self.repo.display()),
                )
                .await;
            }
        }
    }

    async fn alert(&mut self, cause: &'static str, detail: String) {
        if self.alerted.contains(&cause) {
            return;
        }
        match crate::commands::review::raise_alert(&self.services, AlertKind::Contingency, now_ms(), detail).await {
            Ok(()) => self.alerted.push(cause),
            Err(e) => tracing::error!(error = %e, "cannot raise the contingency alert"),
        }
    }

    fn clear(&mut self, cause: &'static str) {
        self.alerted.retain(|c| *c != cause);
    }
}
