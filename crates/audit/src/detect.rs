//! Log-in monitoring and information system activity review, as rules over the trail:
//! entries go in, in order, and alerts for the privacy officer come out. Pure logic: what
//! the rules need to know beyond the entries (flagged patients, who may be a user's
//! relative) arrives as a [`Watchlist`] the caller builds.
//!
//! Safeguards: 45 CFR 164.308(a)(1)(ii)(D) information system activity review;
//! 164.308(a)(5)(ii)(C) log-in monitoring; 164.308(a)(6) security incident procedures.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::{AuditEvent, Outcome};

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// What an alert is about. The code is stable: it is stored, audited and e-mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Several failed sign-ins for one account or from one address in a short time.
    FailedLogins,
    /// A sign-in attempt on a deactivated account.
    DeactivatedAccount,
    /// Records opened outside working hours.
    AfterHours,
    /// A user opened a record that may be their own or a relative's (same family name).
    OwnOrRelativeRecord,
    /// A user touched far more patients in a day than their role's baseline.
    UnusualVolume,
    /// Emergency access was granted.
    BreakGlass,
    /// A flagged (for example VIP or staff) patient's record was opened.
    FlaggedPatient,
    /// The integrity scan found damaged or altered records.
    Integrity,
    /// A scheduled backup or drill failed, the newest backup is older than allowed, or no
    /// drill passed in time (45 CFR 164.308(a)(7)).
    Contingency,
}

impl AlertKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::FailedLogins => "failed_logins",
            Self::DeactivatedAccount => "deactivated_account",
            Self::AfterHours => "after_hours",
            Self::OwnOrRelativeRecord => "own_or_relative_record",
            Self::UnusualVolume => "unusual_volume",
            Self::BreakGlass => "break_glass",
            Self::FlaggedPatient => "flagged_patient",
            Self::Integrity => "integrity",
            Self::Contingency => "contingency",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [
            Self::FailedLogins,
            Self::DeactivatedAccount,
            Self::AfterHours,
            Self::OwnOrRelativeRecord,
            Self::UnusualVolume,
            Self::BreakGlass,
            Self::FlaggedPatient,
            Self::Integrity,
            Self::Contingency,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// An alert, before it is stored. Ids, codes and counts only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub kind: AlertKind,
    pub time_ms: i64,
    /// The account the alert is about, if any.
    pub user_id: Option<String>,
    /// The client address, for failed sign-ins.
    pub source_ip: Option<String>,
    pub patient_ids: Vec<String>,
    /// The audit entries that raised it (for failed sign-ins, the last of the run).
    pub seqs: Vec<u64>,
    /// A PHI-free summary, e.g. "5 failed sign-ins in 15 minutes".
    pub detail: String,
}

/// Working hours, in the organization's local time (a fixed UTC offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// Start and end as minutes after local midnight; `start > end` spans midnight.
    pub start_minute: u32,
    pub end_minute: u32,
    /// Local time minus UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// Saturdays and Sundays are outside working hours.
    pub weekdays_only: bool,
}

impl WorkingHours {
    /// Whether `time_ms` falls inside working hours.
    pub fn contains(&self, time_ms: i64) -> bool {
        let local = time_ms + i64::from(self.utc_offset_minutes) * MINUTE_MS;
        let days = local.div_euclid(DAY_MS);
        // 1970-01-01 was a Thursday: day 0 → weekday 3 (Monday = 0).
        let weekday = (days + 3).rem_euclid(7);
        if self.weekdays_only && weekday >= 5 {
            return false;
        }
        let minute = (local.rem_euclid(DAY_MS) / MINUTE_MS) as u32;
        if self.start_minute <= self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute)
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }
}

/// The written review policy, as numbers. Defaults are conservative starting points an
/// organization tunes in `phivault.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionRules {
    /// Failed sign-ins (for one account, or from one address) that raise an alert...
    pub failed_logins: u32,
    /// ...within this many minutes.
    pub failed_login_window_minutes: u32,
    /// Records opened outside these hours raise one alert per user and day; `None` turns
    /// the rule off (a hospital that works around the clock).
    pub working_hours: Option<WorkingHours>,
    /// Distinct patients a user of a role may touch in one UTC day before an alert.
    pub patients_per_day: BTreeMap<String, u32>,
    /// The baseline for roles not listed.
    pub default_patients_per_day: u32,
}

impl Default for DetectionRules {
    fn default() -> Self {
        Self {
            failed_logins: 5,
            failed_login_window_minutes: 15,
            working_hours: Some(WorkingHours {
                start_minute: 7 * 60,
                end_minute: 19 * 60,
                utc_offset_minutes: 0,
                weekdays_only: false,
            }),
            patients_per_day: [("front_desk", 150), ("billing", 300), ("physician", 60), ("nurse", 80)]
                .into_iter()
                .map(|(r, n)| (r.to_owned(), n))
                .collect(),
            default_patients_per_day: 60,
        }
    }
}

/// What the rules know beyond the trail.
#[derive(Debug, Clone, Default)]
pub struct Watchlist {
    /// Patients whose every access raises an alert (VIPs, staff who are patients).
    pub flagged: HashSet<String>,
    /// For each account, the patients who may be the user or a relative.
    pub related: HashMap<String, HashSet<String>>,
    /// Roles whose own compartment is theirs to read (patients): never "own record".
    pub exempt_roles: HashSet<String>,
}

/// Actions that open PHI.
fn opens_records(event: &AuditEvent) -> bool {
    matches!(
        event.action.as_str(),
        "read" | "vread" | "search" | "history" | "create" | "update" | "batch" | "export.patients"
    ) && event.outcome == Outcome::Success
        && !event.patient_ids.is_empty()
}

/// The rules, with the little state they keep between entries (sliding windows and what
/// was already raised today). Feed entries in trail order.
#[derive(Debug)]
pub struct Detector {
    rules: DetectionRules,
    /// Failed sign-in times per account (`u:`) and per address (`a:`).
    failures: HashMap<String, VecDeque<i64>>,
    /// Patients touched per (user, day).
    touched: HashMap<(String, i64), HashSet<String>>,
    /// Alerts already raised, so each fires once per user (and patient) and day.
    raised: HashSet<(AlertKind, String, i64)>,
}

impl Detector {
    pub fn new(rules: DetectionRules) -> Self {
        Self { rules, failures: HashMap::new(), touched: HashMap::new(), raised: HashSet::new() }
    }

    /// Looks at one entry; returns the alerts it raises.
    pub fn observe(&mut self, seq: u64, event: &AuditEvent, watch: &Watchlist) -> Vec<NewAlert> {
        let mut out = Vec::new();
        let day = event.time_ms.div_euclid(DAY_MS);
        self.forget_before(day);
        let alert = |kind, detail: String, patients: Vec<String>| NewAlert {
            kind,
            time_ms: event.time_ms,
            user_id: event.user_id.clone(),
            source_ip: None,
            patient_ids: patients,
            seqs: vec![seq],
            detail,
        };
        if event.action == "login.password" && event.reason.as_deref() == Some("deactivated_account") {
            out.push(alert(AlertKind::DeactivatedAccount, "sign-in attempt on a deactivated account".into(), vec![]));
        }
        if event.action.starts_with("login.") && event.outcome != Outcome::Success {
            self.failed_login(seq, event, &mut out);
        }
        if event.action == "break_glass.request" && event.outcome == Outcome::Success {
            out.push(alert(AlertKind::BreakGlass, "emergency access granted".into(), event.patient_ids.clone()));
        }
        let Some(user) = event.user_id.clone() else { return out };
        if !opens_records(event) {
            return out;
        }
        if let Some(hours) = &self.rules.working_hours
            && !hours.contains(event.time_ms)
            && self.raised.insert((AlertKind::AfterHours, user.clone(), day))
        {
            out.push(alert(AlertKind::AfterHours, "records opened outside working hours".into(), vec![]));
        }
        for patient in &event.patient_ids {
            if watch.flagged.contains(patient)
                && self.raised.insert((AlertKind::FlaggedPatient, format!("{user} {patient}"), day))
            {
                out.push(alert(
                    AlertKind::FlaggedPatient,
                    "a flagged patient's record was opened".into(),
                    vec![patient.clone()],
                ));
            }
            let exempt = event.roles.iter().any(|r| watch.exempt_roles.contains(r));
            if !exempt
                && watch.related.get(&user).is_some_and(|related| related.contains(patient))
                && self.raised.insert((AlertKind::OwnOrRelativeRecord, format!("{user} {patient}"), day))
            {
                out.push(alert(
                    AlertKind::OwnOrRelativeRecord,
                    "the record shares the user's family name".into(),
                    vec![patient.clone()],
                ));
            }
        }
        let baseline = event
            .roles
            .iter()
            .filter_map(|r| self.rules.patients_per_day.get(r).copied())
            .max()
            .unwrap_or(self.rules.default_patients_per_day);
        let touched = self.touched.entry((user.clone(), day)).or_default();
        touched.extend(event.patient_ids.iter().cloned());
        let count = touched.len();
        if count > baseline as usize && self.raised.insert((AlertKind::UnusualVolume, user, day)) {
            out.push(alert(
                AlertKind::UnusualVolume,
                format!("{count} patients today, above the role's baseline of {baseline}"),
                vec![],
            ));
        }
        out
    }

    fn failed_login(&mut self, seq: u64, event: &AuditEvent, out: &mut Vec<NewAlert>) {
        let window = i64::from(self.rules.failed_login_window_minutes) * MINUTE_MS;
        let keys =
            [event.user_id.as_ref().map(|u| format!("u:{u}")), event.source_ip.as_ref().map(|a| format!("a:{a}"))];
        for key in keys.into_iter().flatten() {
            let times = self.failures.entry(key.clone()).or_default();
            times.push_back(event.time_ms);
            while times.front().is_some_and(|t| *t <= event.time_ms - window) {
                times.pop_front();
            }
            if times.len() >= self.rules.failed_logins.max(1) as usize {
                // Start counting again: the next alert needs a fresh run of failures.
                times.clear();
                let by_account = key.starts_with("u:");
                out.push(NewAlert {
                    kind: AlertKind::FailedLogins,
                    time_ms: event.time_ms,
                    user_id: if by_account { event.user_id.clone() } else { None },
                    source_ip: if by_account { None } else { event.source_ip.clone() },
                    patient_ids: vec![],
                    seqs: vec![seq],
                    detail: format!(
                        "{} failed sign-ins {} within {} minutes",
                        self.rules.failed_logins,
                        if by_account { "for one account" } else { "from one address" },
                        self.rules.failed_login_window_minutes
                    ),
                });
            }
        }
    }

    /// Drops per-day state older than yesterday, so memory stays bounded on a long run.
    fn forget_before(&mut self, day: i64) {
        if self.touched.keys().any(|(_, d)| *d < day - 1) {
            self.touched.retain(|(_, d), _| *d >= day - 1);
            self.raised.retain(|(_, _, d)| *d >= day - 1);
        }
        if self.failures.len() > 10_000 {
            self.failures.retain(|_, times| !times.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-25 (a Wednesday) 12:00 UTC.
    const NOON: i64 = 1_795_608_000_000;

    fn read(time_ms: i64, user: &str, role: &str, patients: &[&str]) -> AuditEvent {
        let mut e = AuditEvent::new(time_ms, "read", Outcome::Success, "n");
        e.user_id = Some(user.into());
        e.roles = vec![role.into()];
        e.patient_ids = patients.iter().map(|p| (*p).to_owned()).collect();
        e
    }

    fn kinds(alerts: &[NewAlert]) -> Vec<AlertKind> {
        alerts.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn working_hours_respect_offset_weekends_and_midnight() {
        let h = WorkingHours { start_minute: 420, end_minute: 1140, utc_offset_minutes: 0, weekdays_only: true };
        assert!(h.contains(NOON));
        assert!(!h.contains(NOON + 8 * 3_600_000), "20:00");
        assert!(!h.contains(NOON + 3 * DAY_MS), "Saturday noon");
        let east = WorkingHours { utc_offset_minutes: 600, ..h };
        assert!(!east.contains(NOON), "22:00 in UTC+10");
        let night = WorkingHours { start_minute: 1320, end_minute: 360, utc_offset_minutes: 0, weekdays_only: false };
        assert!(night.contains(NOON + 11 * 3_600_000) && !night.contains(NOON));
    }

    #[test]
    fn five_failures_for_one_account_raise_one_alert_then_count_again() {
        let mut d = Detector::new(DetectionRules::default());
        let w = Watchlist::default();
        let fail = |i: i64| {
            let mut e = AuditEvent::new(NOON + i * MINUTE_MS, "login.password", Outcome::Denied, "n");
            e.user_id = Some("user-daffy".into());
            e.reason = Some("bad_credentials".into());
            e
        };
        let mut alerts = Vec::new();
        for i in 0..4 {
            alerts.extend(d.observe(i as u64, &fail(i), &w));
        }
        assert!(alerts.is_empty(), "four is below the threshold");
        alerts.extend(d.observe(4, &fail(4), &w));
        assert_eq!(kinds(&alerts), [AlertKind::FailedLogins]);
        assert_eq!(alerts[0].user_id.as_deref(), Some("user-daffy"));
        // Failures spread beyond the window do not add up.
        let mut d = Detector::new(DetectionRules::default());
        let spread: Vec<NewAlert> = (0..10).flat_map(|i| d.observe(i as u64, &fail(i * 20), &w)).collect();
        assert!(spread.is_empty(), "{spread:?}");
    }

    #[test]
    fn failures_from_one_address_across_accounts_are_caught() {
        let mut d = Detector::new(DetectionRules::default());
        let alerts: Vec<NewAlert> = (0..5)
            .flat_map(|i| {
                let mut e = AuditEvent::new(NOON + i, "login.password", Outcome::Denied, "n");
                e.source_ip = Some("203.0.113.9".into());
                d.observe(i as u64, &e, &Watchlist::default())
            })
            .collect();
        assert_eq!(kinds(&alerts), [AlertKind::FailedLogins]);
        assert_eq!(alerts[0].source_ip.as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn after_hours_once_per_user_and_day() {
        let mut d = Detector::new(DetectionRules::default());
        let w = Watchlist::default();
        assert!(d.observe(0, &read(NOON, "u1", "nurse", &["p1"]), &w).is_empty());
        let late = NOON + 10 * 3_600_000; // 22:00
        assert_eq!(kinds(&d.observe(1, &read(late, "u1", "nurse", &["p1"]), &w)), [AlertKind::AfterHours]);
        assert!(d.observe(2, &read(late + 60_000, "u1", "nurse", &["p2"]), &w).is_empty());
        assert_eq!(kinds(&d.observe(3, &read(late, "u2", "nurse", &["p1"]), &w)), [AlertKind::AfterHours]);
        let refused = AuditEvent { outcome: Outcome::Denied, ..read(late, "u3", "nurse", &["p1"]) };
        assert!(d.observe(4, &refused, &w).is_empty(), "a refused access opened nothing");
    }

    #[test]
    fn flagged_and_related_patients_and_patients_reading_their_own() {
        let mut d = Detector::new(DetectionRules::default());
        let mut w = Watchlist::default();
        w.flagged.insert("vip".into());
        w.related.insert("u1".into(), ["cousin".to_owned()].into());
        w.related.insert("u-patient".into(), ["self".to_owned()].into());
        w.exempt_roles.insert("patient".into());
        let a = d.observe(0, &read(NOON, "u1", "physician", &["vip", "cousin", "other"]), &w);
        assert_eq!(kinds(&a), [AlertKind::FlaggedPatient, AlertKind::OwnOrRelativeRecord]);
        assert_eq!(a[0].patient_ids, ["vip"]);
        assert!(d.observe(1, &read(NOON, "u1", "physician", &["vip"]), &w).is_empty(), "once a day");
        assert!(d.observe(2, &read(NOON, "u-patient", "patient", &["self"]), &w).is_empty());
    }

    #[test]
    fn volume_above_the_role_baseline() {
        let mut rules = DetectionRules::default();
        rules.patients_per_day.insert("billing".into(), 3);
        let mut d = Detector::new(rules);
        let w = Watchlist::default();
        let mut alerts = Vec::new();
        for (i, p) in ["a", "b", "c", "a", "d", "e"].iter().enumerate() {
            alerts.extend(d.observe(i as u64, &read(NOON, "clerk", "billing", &[p]), &w));
        }
        assert_eq!(kinds(&alerts), [AlertKind::UnusualVolume], "the fourth distinct patient, once");
        assert_eq!(alerts[0].seqs, [4]);
        // The next day starts again.
        let next = d.observe(9, &read(NOON + DAY_MS, "clerk", "billing", &["a"]), &w);
        assert!(next.is_empty());
    }

    #[test]
    fn break_glass_and_deactivated_accounts_always_alert() {
        let mut d = Detector::new(DetectionRules::default());
        let w = Watchlist::default();
        let mut bg = AuditEvent::new(NOON, "break_glass.request", Outcome::Success, "n");
        bg.user_id = Some("u1".into());
        bg.patient_ids = vec!["p1".into()];
        assert_eq!(kinds(&d.observe(0, &bg, &w)), [AlertKind::BreakGlass]);
        let mut gone = AuditEvent::new(NOON, "login.password", Outcome::Denied, "n");
        gone.user_id = Some("u-left".into());
        gone.reason = Some("deactivated_account".into());
        assert_eq!(kinds(&d.observe(1, &gone, &w)), [AlertKind::DeactivatedAccount]);
    }

    #[test]
    fn kinds_round_trip_through_their_codes() {
        for kind in [AlertKind::FailedLogins, AlertKind::Integrity, AlertKind::OwnOrRelativeRecord] {
            assert_eq!(AlertKind::parse(kind.code()), Some(kind));
        }
        assert_eq!(AlertKind::parse("nope"), None);
    }
}
