//! Alerts for the privacy officer: the storage port, the review states, and the monitor
//! that runs the [`detect`](crate::detect) rules over new trail entries.
//!
//! Several server processes may run the monitor on one database. Each run reads the
//! entries after a shared cursor and stores its alerts together with the moved cursor in
//! one compare-and-swap transaction, so an entry is judged once and an alert raised once.
//! A process whose in-memory rule state does not match the cursor (it just started, or
//! another process ran last) first replays the preceding day of entries without raising
//! anything, so day-long rules (volume, once-a-day) see the same history either way.

use async_trait::async_trait;
use phivault_ports::StoreError;
use serde::Serialize;

use crate::detect::{AlertKind, DetectionRules, Detector, NewAlert, Watchlist};
use crate::{AuditEvent, AuditStore};

/// Where an alert stands in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    /// Reviewed: explained, no violation.
    Benign,
    /// Reviewed: a violation, to be handled under the sanction policy (164.308(a)(1)(ii)(C)).
    Violation,
}

impl AlertStatus {
    pub fn code(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Benign => "benign",
            Self::Violation => "violation",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [Self::Open, Self::Benign, Self::Violation].into_iter().find(|s| s.code() == code)
    }
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub id: String,
    pub kind: AlertKind,
    /// When the event that raised it happened.
    pub time_ms: i64,
    /// When the alert was raised.
    pub raised_ms: i64,
    pub user_id: Option<String>,
    pub source_ip: Option<String>,
    pub patient_ids: Vec<String>,
    /// The audit entries behind it.
    pub seqs: Vec<u64>,
    pub detail: String,
    pub status: AlertStatus,
    pub reviewed_by: Option<String>,
    pub reviewed_ms: Option<i64>,
}

impl Alert {
    /// A new open alert with a random id.
    pub fn open(new: NewAlert, raised_ms: i64) -> Result<Self, StoreError> {
        let id = random_alert_id()?;
        Ok(Self {
            id,
            kind: new.kind,
            time_ms: new.time_ms,
            raised_ms,
            user_id: new.user_id,
            source_ip: new.source_ip,
            patient_ids: new.patient_ids,
            seqs: new.seqs,
            detail: new.detail,
            status: AlertStatus::Open,
            reviewed_by: None,
            reviewed_ms: None,
        })
    }

    /// The notice for the privacy officer: ids, codes and times; nothing else.
    pub fn notice(&self) -> (String, String) {
        let subject = format!("phivault alert: {}", self.kind.code());
        let mut body = format!("Alert {}\nKind: {}\nWhat: {}\n", self.id, self.kind.code(), self.detail);
        if let Some(user) = &self.user_id {
            body.push_str(&format!("Account: {user}\n"));
        }
        if let Some(ip) = &self.source_ip {
            body.push_str(&format!("Client address: {ip}\n"));
        }
        if !self.patient_ids.is_empty() {
            body.push_str(&format!("Patient ids: {}\n", self.patient_ids.join(", ")));
        }
        let seqs: Vec<String> = self.seqs.iter().map(u64::to_string).collect();
        body.push_str(&format!(
            "Audit entries: {}\nEvent time (ms since epoch, UTC): {}\n",
            seqs.join(", "),
            self.time_ms
        ));
        body.push_str("Review it in the alert queue (GET /audit/alerts) or with `phivault audit alerts`.\n");
        (subject, body)
    }
}

fn random_alert_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| StoreError::Corrupt("no randomness for an alert id"))?;
    Ok(format!("alert-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// Storage of alerts, the monitor's cursor and the flagged patients.
#[async_trait]
pub trait AlertStore: Send + Sync + std::fmt::Debug {
    /// The next trail entry the rules have not looked at (0 at first).
    async fn alert_cursor(&self) -> Result<u64, StoreError>;
    /// Stores `alerts` and moves the cursor from `from` to `to`, in one transaction;
    /// [`StoreError::Conflict`] (and nothing stored) if the cursor is no longer at `from`.
    async fn commit_alerts(&self, from: u64, to: u64, alerts: &[Alert]) -> Result<(), StoreError>;
    /// Stores one alert raised outside the rules (the integrity scan).
    async fn insert_alert(&self, alert: &Alert) -> Result<(), StoreError>;
    /// Alerts, newest first, optionally of one status.
    async fn alerts(&self, status: Option<AlertStatus>, limit: u64) -> Result<Vec<Alert>, StoreError>;
    async fn alert(&self, id: &str) -> Result<Option<Alert>, StoreError>;
    /// Records a finding on an open alert; false if it is unknown or already reviewed.
    async fn review_alert(
        &self,
        id: &str,
        finding: AlertStatus,
        reviewer: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    async fn flagged_patients(&self) -> Result<Vec<String>, StoreError>;
    /// Flags or unflags a patient; returns whether anything changed.
    async fn set_flagged(&self, patient_id: &str, flagged: bool, by: &str, now_ms: i64) -> Result<bool, StoreError>;
}

/// Why a finding could not be recorded. The texts are safe to show: ids at most.
#[derive(Debug, thiserror::Error)]
pub enum FindingError {
    /// Only `benign` and `violation` are findings; `open` is no review.
    #[error("a finding is benign or violation")]
    NotAFinding,
    #[error("there is no such alert")]
    NotFound,
    /// Reviews are final: a second finding would rewrite the record of the first.
    #[error("the alert was already reviewed")]
    AlreadyReviewed,
    #[error("the alert queue cannot be written")]
    Store(#[from] StoreError),
}

/// Records the privacy officer's finding on an open alert, once. Every way in (the API,
/// the review page, the CLI) goes through here, so they agree on what a finding is and on
/// when one is refused; deciding who may review, and auditing it, stay with the caller.
pub async fn record_finding(
    store: &dyn AlertStore,
    id: &str,
    finding: AlertStatus,
    reviewer: &str,
    now_ms: i64,
) -> Result<(), FindingError> {
    if finding == AlertStatus::Open {
        return Err(FindingError::NotAFinding);
    }
    if store.review_alert(id, finding, reviewer, now_ms).await? {
        return Ok(());
    }
    // Nothing changed: tell a missing alert from a reviewed one.
    match store.alert(id).await? {
        None => Err(FindingError::NotFound),
        Some(_) => Err(FindingError::AlreadyReviewed),
    }
}

/// Entries judged per run at most, so one run stays short however far behind it is.
const RUN_MAX: u64 = 50_000;
const PAGE: u64 = 5_000;
/// How much history a fresh rule state replays.
const REPLAY_MS: i64 = 86_400_000;

/// Runs the rules over new entries. One per process.
#[derive(Debug)]
pub struct AlertMonitor {
    rules: DetectionRules,
    detector: Detector,
    /// The cursor this process's rule state is at, if it is in step with the store.
    position: Option<u64>,
}

impl AlertMonitor {
    pub fn new(rules: DetectionRules) -> Self {
        Self { detector: Detector::new(rules.clone()), rules, position: None }
    }

    /// Judges the entries after the shared cursor; returns the alerts it stored (empty when
    /// another process ran at the same time and won).
    pub async fn run_once(
        &mut self,
        trail: &dyn AuditStore,
        alerts: &dyn AlertStore,
        watch: &Watchlist,
        now_ms: i64,
    ) -> Result<Vec<Alert>, StoreError> {
        let from = alerts.alert_cursor().await?;
        if self.position != Some(from) {
            self.replay(trail, from, watch).await?;
        }
        let mut raised = Vec::new();
        let mut next = from;
        while next < from + RUN_MAX {
            let page = trail.audit_entries(next, PAGE.min(from + RUN_MAX - next)).await?;
            let Some(last) = page.last() else { break };
            next = last.seq + 1;
            for entry in &page {
                // Entries are verified elsewhere; one that does not parse raises nothing here.
                if let Some(event) = AuditEvent::from_canonical(&entry.bytes) {
                    for new in self.detector.observe(entry.seq, &event, watch) {
                        raised.push(Alert::open(new, now_ms)?);
                    }
                }
            }
        }
        if next == from {
            return Ok(Vec::new());
        }
        match alerts.commit_alerts(from, next, &raised).await {
            Ok(()) => {
                self.position = Some(next);
                Ok(raised)
            }
            Err(StoreError::Conflict) => {
                self.position = None;
                Ok(Vec::new())
            }
            Err(e) => {
                self.position = None;
                Err(e)
            }
        }
    }

    /// Rebuilds the rule state from the day before entry `to`, raising nothing.
    async fn replay(&mut self, trail: &dyn AuditStore, to: u64, watch: &Watchlist) -> Result<(), StoreError> {
        self.detector = Detector::new(self.rules.clone());
        self.position = None;
        if to == 0 {
            self.position = Some(0);
            return Ok(());
        }
        let Some(last) = trail.audit_entries(to - 1, 1).await?.pop() else { return Ok(()) };
        let last_time = AuditEvent::from_canonical(&last.bytes).map_or(0, |e| e.time_ms);
        let mut seq = first_at_or_after(trail, last_time - REPLAY_MS, to).await?;
        while seq < to {
            let page = trail.audit_entries(seq, PAGE.min(to - seq)).await?;
            let Some(last) = page.last() else { break };
            seq = last.seq + 1;
            for entry in &page {
                if let Some(event) = AuditEvent::from_canonical(&entry.bytes) {
                    let _ = self.detector.observe(entry.seq, &event, watch);
                }
            }
        }
        self.position = Some(to);
        Ok(())
    }
}

/// The first entry before `end` written at or after `time_ms`, by binary search (entries
/// are appended in time order, give or take a group commit).
async fn first_at_or_after(trail: &dyn AuditStore, time_ms: i64, end: u64) -> Result<u64, StoreError> {
    let (mut lo, mut hi) = (0u64, end);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let time = match trail.audit_entries(mid, 1).await?.first() {
            Some(e) => AuditEvent::from_canonical(&e.bytes).map_or(i64::MIN, |e| e.time_ms),
            None => i64::MAX,
        };
        if time < time_ms {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}
