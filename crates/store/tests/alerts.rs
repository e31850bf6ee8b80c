//! The activity review over a real trail on both engines: two nodes running the rules
//! against one database raise each alert exactly once; a node that starts late replays the
//! day so once-a-day rules hold; reviews are recorded once; flags persist.

use std::collections::BTreeMap;
use std::sync::Arc;

use phivault_audit::alerts::{AlertMonitor, AlertStatus, AlertStore, FindingError, record_finding};
use phivault_audit::detect::{AlertKind, DetectionRules, Watchlist};
use phivault_audit::{AuditEvent, AuditLog, Outcome};
use phivault_store::SqlStore;
use phivault_testkit::{engines, fresh_store};

// 2026-11-25 12:00 UTC, inside the default working hours.
const NOON: i64 = 1_795_608_000_000;

fn failed_login(i: i64, user: &str) -> AuditEvent {
    let mut e = AuditEvent::new(NOON + i * 1000, "login.password", Outcome::Denied, "node-a");
    e.user_id = Some(user.into());
    e.reason = Some("bad_credentials".into());
    e
}

fn read(i: i64, user: &str, patient: &str) -> AuditEvent {
    let mut e = AuditEvent::new(NOON + i * 1000, "read", Outcome::Success, "node-a");
    e.user_id = Some(user.into());
    e.roles = vec!["billing".into()];
    e.patient_ids = vec![patient.into()];
    e
}

fn rules() -> DetectionRules {
    let mut rules = DetectionRules::default();
    rules.patients_per_day.insert("billing".into(), 3);
    rules
}

#[tokio::test]
async fn two_nodes_raise_each_alert_once_and_reviews_are_final() {
    for engine in engines() {
        let (store, _db, url) = fresh_store(engine).await;
        let other = SqlStore::connect(&url).await.expect("second node");
        let log = AuditLog::start(Arc::new(store.clone()), "node-a");
        let mut a = AlertMonitor::new(rules());
        let mut b = AlertMonitor::new(rules());
        let watch = Watchlist::default();

        // Two runs of failed sign-ins (5 each) for Daffy's account: two alerts.
        for i in 0..10 {
            log.record(&failed_login(i, "user-daffy")).await.expect("durable");
        }
        // Both nodes run, one after the other, over the same entries.
        let first = a.run_once(&store, &store, &watch, NOON).await.expect("run a");
        let second = b.run_once(&other, &other, &watch, NOON).await.expect("run b");
        assert_eq!(first.len() + second.len(), 2, "{engine}: {first:?} {second:?}");
        assert!(second.is_empty(), "{engine}: b found the cursor moved and judged nothing twice");

        // Concurrent runs over new entries: the loser of the compare-and-swap stores nothing.
        for i in 0..4 {
            log.record(&read(20 + i, "clerk", &format!("p{i}"))).await.expect("durable");
        }
        let (ra, rb) = tokio::join!(a.run_once(&store, &store, &watch, NOON), b.run_once(&other, &other, &watch, NOON));
        let raised = ra.expect("a").len() + rb.expect("b").len();
        assert_eq!(raised, 1, "{engine}: the fourth distinct patient raises unusual volume once");

        // A node that starts now replays the day: the fifth patient does not alert again,
        // because today's volume alert was already raised.
        log.record(&read(30, "clerk", "p9")).await.expect("durable");
        let mut late = AlertMonitor::new(rules());
        let again = late.run_once(&other, &other, &watch, NOON).await.expect("late");
        assert!(again.is_empty(), "{engine}: {again:?}");

        let stored = store.alerts(None, 100).await.expect("alerts");
        let kinds: BTreeMap<AlertKind, usize> = stored.iter().fold(BTreeMap::new(), |mut m, a| {
            *m.entry(a.kind).or_default() += 1;
            m
        });
        assert_eq!(kinds, [(AlertKind::FailedLogins, 2), (AlertKind::UnusualVolume, 1)].into(), "{engine}");
        assert_eq!(store.alert_cursor().await.expect("cursor"), 15, "{engine}: every entry judged");

        // Reviews: once, and only to a final finding.
        let id = stored[0].id.clone();
        assert!(!store.review_alert(&id, AlertStatus::Open, "user-po", NOON).await.expect("no-op"));
        assert!(store.review_alert(&id, AlertStatus::Benign, "user-po", NOON).await.expect("review"));
        assert!(!other.review_alert(&id, AlertStatus::Violation, "user-po2", NOON).await.expect("second"));
        let reviewed = store.alert(&id).await.expect("read").expect("exists");
        assert_eq!((reviewed.status, reviewed.reviewed_by.as_deref()), (AlertStatus::Benign, Some("user-po")));
        assert_eq!(store.alerts(Some(AlertStatus::Open), 100).await.expect("open").len(), 2, "{engine}");

        // The one way every adapter records a finding: refusals say why.
        let next = stored[1].id.clone();
        let r = record_finding(&store, &next, AlertStatus::Open, "user-po", NOON).await;
        assert!(matches!(r, Err(FindingError::NotAFinding)), "{engine}: {r:?}");
        let r = record_finding(&store, "no-such-alert", AlertStatus::Benign, "user-po", NOON).await;
        assert!(matches!(r, Err(FindingError::NotFound)), "{engine}: {r:?}");
        record_finding(&store, &next, AlertStatus::Violation, "user-po", NOON).await.expect("first finding");
        let r = record_finding(&other, &next, AlertStatus::Benign, "user-po2", NOON).await;
        assert!(matches!(r, Err(FindingError::AlreadyReviewed)), "{engine}: {r:?}");
        let reviewed = store.alert(&next).await.expect("read").expect("exists");
        assert_eq!((reviewed.status, reviewed.reviewed_by.as_deref()), (AlertStatus::Violation, Some("user-po")));

        // Flags.
        assert!(store.set_flagged("p-vip", true, "os:root", NOON).await.expect("flag"));
        assert!(!other.set_flagged("p-vip", true, "os:root", NOON).await.expect("again"));
        assert_eq!(other.flagged_patients().await.expect("list"), ["p-vip"]);
        assert!(store.set_flagged("p-vip", false, "", NOON).await.expect("unflag"));
        assert!(store.flagged_patients().await.expect("list").is_empty());
    }
}
