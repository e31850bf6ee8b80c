//! The access layer's cost: one Cedar decision (p50/p99), one search scope, and a read and
//! a search through `GuardedRecords` against the same through the bare record service, in
//! one run.

use std::time::Instant;

use phivault_fhir::search::parse_search;
use phivault_policy::{Action, Policies, RecordFacts, RequestFacts, Subject, Target, UserFacts};
use phivault_service::Records;
use phivault_service::access::{AccessStore, Accessor, Assignment, AssignmentKind, GuardedRecords, Requester};
use phivault_store::SqlStore;

use crate::workload::ids_for;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn physician(care_team: Vec<String>) -> Subject {
    Subject::User(UserFacts {
        user_id: "bench-physician".into(),
        roles: vec!["physician".into()],
        own_patient: None,
        care_team,
        department_patients: Vec::new(),
        emergency_access: Vec::new(),
        cleared_categories: Vec::new(),
        mfa: true,
        authentication_age_secs: 60,
        via_app: false,
    })
}

/// (p50 µs, p99 µs) of one decision: a physician with a 50-patient care team reads an
/// Observation of one of them, under the default policies.
pub fn decision_latency() -> (f64, f64) {
    let policies = Policies::defaults().expect("defaults");
    let team: Vec<String> = (0..50).map(ids_for).collect();
    let subject = physician(team.clone());
    let request = RequestFacts::default();
    let mut samples = Vec::with_capacity(20_000);
    for k in 0..20_000 {
        let target = Target::Record(RecordFacts {
            resource_type: "Observation".into(),
            id: Some(format!("o{k}")),
            patient: Some(team[k % team.len()].clone()),
            labels: Vec::new(),
        });
        let started = Instant::now();
        let decision = policies.decide(&subject, Action::Read, &target, &request);
        samples.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(decision.allowed);
    }
    samples.sort_by(f64::total_cmp);
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// Mean µs to work out one search scope (for the same physician).
pub fn scope_latency() -> f64 {
    let policies = Policies::defaults().expect("defaults");
    let subject = physician((0..50).map(ids_for).collect());
    let n = 2000;
    let started = Instant::now();
    for _ in 0..n {
        let scope = policies.search_scope(&subject, Action::Search, "Observation", &RequestFacts::default());
        assert!(matches!(scope.patients, phivault_policy::PatientScope::Related(r) if r.care_team));
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// A signed-in physician with a second factor, asking directly (not through an app).
pub fn physician_accessor(user_id: &str) -> Accessor {
    Accessor {
        requester: Requester::User {
            user_id: user_id.to_owned(),
            roles: vec!["physician".into()],
            own_patient: None,
            mfa: true,
            authenticated_ms: 0,
            via_app: false,
        },
        request: RequestFacts::default(),
        launch_patient: None,
        readable_types: None,
        searchable_types: None,
        trail: Default::default(),
    }
}

/// (bare µs, guarded µs) per read by id, and (bare µs, guarded µs) per `Patient?_count=50`
/// search: the bare service searches all `loaded` patients, the guarded one the bench
/// physician's 50-patient care team among them.
pub async fn guarded_vs_bare(records: &Records, store: &SqlStore, loaded: usize) -> ((f64, f64), (f64, f64)) {
    let guarded = GuardedRecords::new(
        records.clone(),
        std::sync::Arc::new(phivault_service::access::LivePolicies::new(Policies::defaults().expect("defaults"))),
        std::sync::Arc::new(store.clone()),
        phivault_audit::AuditLog::start(std::sync::Arc::new(store.clone()), "bench"),
    );
    let team: Vec<String> = (0..50).map(|k| ids_for((k * 104_729) % loaded)).collect();
    for patient in &team {
        let assignment = Assignment {
            kind: AssignmentKind::CareTeam,
            user_id: "bench-physician".into(),
            value: patient.clone(),
            assigned_by: "bench".into(),
            assigned_ms: 0,
        };
        store.assign(&assignment).await.expect("assign");
    }
    let accessor = physician_accessor("bench-physician");
    let n = 2000;
    let started = Instant::now();
    for k in 0..n {
        records.read("Patient", &team[k % team.len()], None).await.expect("read");
    }
    let bare_read = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let started = Instant::now();
    for k in 0..n {
        guarded.read(&accessor, "Patient", &team[k % team.len()], None).await.expect("guarded read");
    }
    let guarded_read = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let request = parse_search("Patient", &[("_count".into(), "50".into())], true).expect("query");
    let searches = 100;
    let started = Instant::now();
    for _ in 0..searches {
        let page = records.search("Patient", &request, 0).await.expect("search");
        assert!(page.total as usize >= loaded);
    }
    let bare_search = started.elapsed().as_secs_f64() * 1e6 / searches as f64;
    let started = Instant::now();
    for _ in 0..searches {
        let page = guarded.search(&accessor, "Patient", &request, 0).await.expect("guarded search");
        assert_eq!(page.value.total, Some(50));
    }
    let guarded_search = started.elapsed().as_secs_f64() * 1e6 / searches as f64;
    ((bare_read, guarded_read), (bare_search, guarded_search))
}
