//! `cargo run --release -p phivault-bench -- [sqlite|postgres] [max_patients]`, or
//! `... -- panel [sqlite|postgres] [patients]` for the access path at panel sizes (`panel.rs`),
//! or `... -- seed <data-dir> <patients> <team>` to fill a data dir for `scripts/bench-http.sh`,
//! or `... -- chart [sqlite|postgres] [patients]` for the chart page of a 500-resource patient
//! (`chart.rs`).
//!
//! Measures, on a fresh database: Synthea import rate; bulk patient load; at 10k and
//! `max_patients` patients, read by id, create and family-name search through the service;
//! HTTPS read by id through the real listener; and how much of a read and a search is spent
//! on AEAD and blind-index HMACs; audit appends and audited HTTPS reads under concurrency
//! (`audit.rs`). PostgreSQL needs `PHIVAULT_TEST_POSTGRES_URL`.
//! Prints a Markdown table for docs/BENCHMARKS.md.

mod audit;
mod auth;
mod chart;
mod https;
mod panel;
mod policy;
mod seed;
mod workload;

/// The same allocator as the server binary, so the figures match what it does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use phivault_testkit::{fresh_store, records_with_ring, test_ring};

#[tokio::main]
async fn main() {
    phivault_api::tls::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("seed") {
        let (Some(data), Some(patients), Some(team)) =
            (args.get(2), args.get(3).and_then(|s| s.parse().ok()), args.get(4).and_then(|s| s.parse().ok()))
        else {
            eprintln!("usage: phivault-bench seed <data-dir> <patients> <team>");
            std::process::exit(2);
        };
        seed::run(std::path::Path::new(data), patients, team).await;
        return;
    }
    if args.get(1).map(String::as_str) == Some("chart") {
        let engine = args.get(2).map_or("sqlite", String::as_str);
        let patients = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000);
        if engine == "postgres" && phivault_testkit::postgres_url().is_none() {
            eprintln!("set PHIVAULT_TEST_POSTGRES_URL to benchmark PostgreSQL");
            std::process::exit(2);
        }
        chart::run(engine, patients).await;
        return;
    }
    if args.get(1).map(String::as_str) == Some("panel") {
        let engine = args.get(2).map_or("sqlite", String::as_str);
        let patients = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000);
        if engine == "postgres" && phivault_testkit::postgres_url().is_none() {
            eprintln!("set PHIVAULT_TEST_POSTGRES_URL to benchmark PostgreSQL");
            std::process::exit(2);
        }
        panel::run(engine, patients).await;
        return;
    }
    let engine = args.get(1).map_or("sqlite", String::as_str).to_owned();
    let max: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    if engine == "postgres" && phivault_testkit::postgres_url().is_none() {
        eprintln!("set PHIVAULT_TEST_POSTGRES_URL to benchmark PostgreSQL");
        std::process::exit(2);
    }
    let (store, _db, _url) = fresh_store(&engine).await;
    let ring = test_ring();
    let records = records_with_ring(store.clone(), ring.clone());
    println!("| engine | measure | value |");
    println!("|---|---|---|");
    let row = |what: &str, value: String| println!("| {engine} | {what} | {value} |");

    let (written, secs) = workload::import_synthea(&records).await;
    if written > 0 {
        row(
            "Synthea import (30 bundles)",
            format!("{written} resources in {secs:.2} s = {:.0} resources/s", written as f64 / secs),
        );
    }

    let mut loaded = 0;
    for target in [10_000.min(max), max] {
        if target <= loaded {
            continue;
        }
        let started = Instant::now();
        workload::load_patients(&records, loaded, target).await;
        let secs = started.elapsed().as_secs_f64();
        row(
            &format!("bulk load patients {loaded}..{target}"),
            format!("{:.0} patients/s", (target - loaded) as f64 / secs),
        );
        loaded = target;
        let read = workload::read_by_id(&records, target).await;
        row(
            &format!("read by id @ {target} patients (service: DB + unwrap + AEAD open + JSON)"),
            format!("{read:.0} µs"),
        );
        let search = workload::search_family(&records, target).await;
        row(&format!("search family= @ {target} patients (10 matches, page of 10)"), format!("{search:.0} µs"));
        let store_only = workload::search_family_store_only(&store, &ring, target).await;
        row(&format!("  of which the store's queries (COUNT + page) @ {target}"), format!("{store_only:.0} µs"));
        let create = workload::create_one(&records, target).await;
        row(&format!("create one Patient @ {target} patients (one durable commit)"), format!("{create:.2} ms"));
        if target == max {
            let (aead, hmac) = workload::crypto_costs();
            row("AEAD open of one Patient (~1 KB)", format!("{aead:.1} µs = {:.1} % of a read", 100.0 * aead / read));
            row(
                "blind-index HMACs of one family query",
                format!("{hmac:.1} µs; with 10 AEAD opens {:.1} % of a search", 100.0 * (hmac + 10.0 * aead) / search),
            );
            let identity = phivault_testkit::system_identity(store.clone(), ring.clone());
            let token = phivault_testkit::signed_in(
                &identity,
                "bench-physician",
                vec![phivault_identity::Role::Physician],
                None,
            )
            .await;
            let (validate, bare_lookup) = auth::session_validation(&identity, &store, &token).await;
            row(
                if engine == "sqlite" {
                    "validate a session token (SHA-256, revocation-stamp read, cached principal; DB lookup every 15 s)"
                } else {
                    "validate a session token (SHA-256 + one indexed lookup joined with the account)"
                },
                format!("{validate:.1} µs per request; a bare `SELECT 1` round trip costs {bare_lookup:.1} µs"),
            );
            identity
                .create_user(phivault_identity::NewAccount {
                    username: "bench-login".into(),
                    display_name: "Bench login".into(),
                    roles: vec![phivault_identity::Role::Nurse],
                    patient_id: None,
                    password: Some("a long enough test password".into()),
                })
                .await
                .expect("bench user");
            let (logins, hashes, logins_cpu, hashes_cpu) = auth::login_rate(&identity).await;
            row(
                "password login (Argon2id m=19 MiB t=2, throttle check, lookup, one commit) vs bare Argon2id verify",
                format!(
                    "wall: {logins:.1} vs {hashes:.1} per s ({:+.1} %); per CPU-second: {logins_cpu:.1} vs {hashes_cpu:.1} ({:+.1} %)",
                    100.0 * (hashes / logins - 1.0),
                    100.0 * (hashes_cpu / logins_cpu - 1.0)
                ),
            );
            // The same reads with auditing switched off (entries discarded), then on.
            let off = phivault_audit::AuditLog::start(std::sync::Arc::new(auth::DiscardAudit), "bench");
            // Reads go through the access policies: the defaults plus a permit for the bench
            // physician on every record, so every default policy is still evaluated.
            let guarded = phivault_testkit::guarded(
                records.clone(),
                store.clone(),
                phivault_testkit::policies_with(phivault_testkit::CLINICIANS_SEE_ALL),
            );
            let (latency_off, _) = https::read_by_id(
                guarded.clone(),
                identity.clone(),
                off,
                std::sync::Arc::new(store.clone()),
                token.expose(),
                target,
            )
            .await;
            let audit = phivault_audit::AuditLog::start(std::sync::Arc::new(store.clone()), "bench");
            let (latency, cpu) = https::read_by_id(
                guarded.clone(),
                identity.clone(),
                audit,
                std::sync::Arc::new(store.clone()),
                token.expose(),
                target,
            )
            .await;
            row(
                "HTTPS GET Patient/id, audit trail off (discarded) vs on (durable, fail closed), 1 client",
                format!(
                    "{latency_off:.0} µs vs {latency:.0} µs: overhead {:+.0} %",
                    100.0 * (latency / latency_off - 1.0)
                ),
            );
            row(
                &format!("HTTPS GET Patient/id @ {target} patients, keep-alive, 1 client"),
                format!("{latency:.0} µs latency; {cpu:.0} µs CPU per request (server + client in one process)"),
            );
            crate::audit::concurrency(&row, &store, guarded, identity, token.expose(), target).await;
        }
    }
    let (p50, p99) = policy::decision_latency();
    row(
        "one Cedar decision (default policies; physician, 50-patient care team, Observation read)",
        format!("p50 {p50:.1} µs, p99 {p99:.1} µs"),
    );
    row(
        "one search scope (the policies probed per relationship and sensitive label)",
        format!("{:.0} µs", policy::scope_latency()),
    );
    let ((bare_read, guarded_read), (bare_search, guarded_search)) =
        policy::guarded_vs_bare(&records, &store, loaded).await;
    row(
        &format!("read by id, bare service vs behind the policies (relationships query + decision) @ {loaded}"),
        format!(
            "{bare_read:.0} µs vs {guarded_read:.0} µs: {:+.0} %; one decision is {:.1} % of the guarded read",
            100.0 * (guarded_read / bare_read - 1.0),
            100.0 * p50 / guarded_read
        ),
    );
    row(
        &format!("Patient?_count=50 @ {loaded}: all patients (bare) vs a 50-patient care team (scoped in the query)"),
        format!(
            "{bare_search:.0} µs vs {guarded_search:.0} µs per search ({:.0} vs {:.0} searches/s)",
            1e6 / bare_search,
            1e6 / guarded_search
        ),
    );
    if engine == "sqlite" {
        let secs = auth::audit_verify_seconds(1_000_000);
        row("audit verify, 1,000,000 entries in memory, checkpoint every 10,000, one core", format!("{secs:.2} s"));
    }
    store.close().await;
    if std::env::var_os("PHIVAULT_BENCH_KEEP_DB").is_some() {
        // For inspecting query plans afterwards: leave the database on disk.
        eprintln!("kept the benchmark database: {_url}");
        std::mem::forget(_db);
    }
}
