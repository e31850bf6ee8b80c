//! `phivault-bench panel [sqlite|postgres] [patients]`: the guarded access path at a
//! physician's realistic panel sizes (care teams of 50, 1,000 and 2,500 among `patients`),
//! under the default policies: a read by id and a `Patient?_count=50` search through the
//! guarded service, and an audited HTTPS read of a team patient over one keep-alive
//! connection. The cost should not grow with the team.

use std::sync::Arc;
use std::time::Instant;

use phivault_fhir::search::parse_search;
use phivault_policy::Policies;
use phivault_service::access::{AccessStore, Assignment, AssignmentKind, GuardedRecords};
use phivault_testkit::{fresh_store, records_with_ring, test_ring};

use crate::https::cpu_seconds;
use crate::workload::{ids_for, load_patients};

/// Team sizes measured.
const TEAMS: [usize; 3] = [50, 1000, 2500];

pub async fn run(engine: &str, patients: usize) {
    let (store, _db, _url) = fresh_store(engine).await;
    let ring = test_ring();
    let records = records_with_ring(store.clone(), ring.clone());
    load_patients(&records, 0, patients).await;
    let identity = phivault_testkit::system_identity(store.clone(), ring.clone());
    let token =
        phivault_testkit::signed_in(&identity, "bench-physician", vec![phivault_identity::Role::Physician], None).await;
    let user_id = identity.find_user("bench-physician").await.expect("physician").id;
    let policies = Arc::new(phivault_service::access::LivePolicies::new(Policies::defaults().expect("defaults")));
    let audit = phivault_audit::AuditLog::start(Arc::new(store.clone()), "bench");
    let guarded = GuardedRecords::new(records.clone(), policies, Arc::new(store.clone()), audit);
    let accessor = crate::policy::physician_accessor(&user_id);
    println!(
        "| engine | care team (of {patients}) | guarded read by id | guarded `Patient?_count=50` | audited HTTPS read, 1 client |"
    );
    println!("|---|---|---|---|---|");
    // The team: patients spread over the whole id range.
    let member = |k: usize| ids_for((k * 7919) % patients);
    let mut assigned = 0;
    for team in TEAMS {
        while assigned < team {
            let assignment = Assignment {
                kind: AssignmentKind::CareTeam,
                user_id: user_id.clone(),
                value: member(assigned),
                assigned_by: "bench".into(),
                assigned_ms: 0,
            };
            store.assign(&assignment).await.expect("assign");
            assigned += 1;
        }
        let n = 2000;
        let cpu = cpu_seconds();
        let started = Instant::now();
        for k in 0..n {
            guarded.read(&accessor, "Patient", &member((k * 31) % team), None).await.expect("guarded read");
        }
        let read = started.elapsed().as_secs_f64() * 1e6 / n as f64;
        let read_cpu = (cpu_seconds() - cpu) * 1e6 / n as f64;
        let request = parse_search("Patient", &[("_count".into(), "50".into())], true).expect("query");
        let searches = 200;
        let cpu = cpu_seconds();
        let started = Instant::now();
        for _ in 0..searches {
            let page = guarded.search(&accessor, "Patient", &request, 0).await.expect("guarded search");
            assert_eq!(page.value.total, Some(team as u64));
        }
        let search = started.elapsed().as_secs_f64() * 1e6 / searches as f64;
        let search_cpu = (cpu_seconds() - cpu) * 1e6 / searches as f64;
        let audit = phivault_audit::AuditLog::start(Arc::new(store.clone()), "bench");
        let ids: Vec<String> = (0..team).map(member).collect();
        let (https, https_cpu) = crate::https::read_ids(
            guarded.clone(),
            identity.clone(),
            audit,
            Arc::new(store.clone()),
            token.expose(),
            &ids,
        )
        .await;
        println!(
            "| {engine} | {team} | {read:.0} µs ({read_cpu:.0} µs CPU) | {search:.0} µs ({search_cpu:.0} µs CPU) | {https:.0} µs ({https_cpu:.0} µs CPU, server and client in one process) |"
        );
    }
}
