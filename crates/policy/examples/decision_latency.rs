//! `cargo run --release -p phivault-policy --example decision_latency`: p50/p99 of one
//! decision and one search scope under the default policies, for a physician with a
//! 50-patient care team (the figures in docs/BENCHMARKS.md come from phivault-bench).

use std::time::Instant;

use phivault_policy::{Action, Policies, RecordFacts, RequestFacts, Subject, Target, UserFacts};

fn main() {
    let policies = Policies::defaults().expect("defaults");
    let team: Vec<String> = (0..50).map(|i| format!("patient-{i:08}")).collect();
    let subject = Subject::User(UserFacts {
        user_id: "u".into(),
        roles: vec!["physician".into()],
        care_team: team.clone(),
        mfa: true,
        ..UserFacts::default()
    });
    let request = RequestFacts::default();
    let mut samples = Vec::new();
    for k in 0..20_000 {
        let target = Target::Record(RecordFacts {
            resource_type: "Observation".into(),
            id: Some(format!("o{k}")),
            patient: Some(team[k % 50].clone()),
            labels: Vec::new(),
        });
        let started = Instant::now();
        // As a request does: the subject prepared once per request, here once per decision.
        let prepared = policies.prepare(&subject).expect("prepared");
        assert!(policies.decide_prepared(&prepared, Action::Read, &target, &request).allowed);
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!("decision with its subject prepared: p50 {:.1} µs p99 {:.1} µs", at(0.5), at(0.99));
    // Later decisions of the same request reuse the prepared subject.
    let prepared = policies.prepare(&subject).expect("prepared");
    let mut reused = Vec::new();
    for k in 0..20_000 {
        let target = Target::Record(RecordFacts {
            resource_type: "Observation".into(),
            id: Some(format!("o{k}")),
            patient: Some(team[k % 50].clone()),
            labels: Vec::new(),
        });
        let started = Instant::now();
        assert!(policies.decide_prepared(&prepared, Action::Read, &target, &request).allowed);
        reused.push(started.elapsed().as_secs_f64() * 1e6);
    }
    reused.sort_by(f64::total_cmp);
    let at = |p: f64| reused[((reused.len() - 1) as f64 * p) as usize];
    println!("each further decision of the request: p50 {:.1} µs p99 {:.1} µs", at(0.5), at(0.99));
    let started = Instant::now();
    for _ in 0..500 {
        policies.search_scope(&subject, Action::Search, "Observation", &request);
    }
    println!("scope {:.0} µs", started.elapsed().as_secs_f64() * 1e6 / 500.0);
}
