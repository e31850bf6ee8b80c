//! The audit trail under concurrency. Appends per second through the group-commit writer
//! (`AuditLog`) with 1, 8 and 64 writers, against a baseline measured in the same round:
//! the same number of single-entry appends straight to the store, one after another (one
//! durable single-row insert and commit each, no writer task). And HTTPS reads by id with
//! 8 (and 64) concurrent clients, auditing off (entries discarded) vs on (durable, fail closed).
//! Every measure runs in several rounds; the ratios are taken within a round, since the
//! machine is shared and absolute figures drift between rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use phivault_audit::{AuditEvent, AuditLog, AuditStore, Checkpoint, StoredEntry};
use phivault_service::StoreError;
use phivault_service::access::GuardedRecords;
use phivault_store::SqlStore;

use crate::https::{Server, cpu_seconds, get_patient};

const ROUNDS: usize = 3;
/// Entries per append measurement: divisible by every writer count.
const APPENDS: usize = 2048;
const WRITERS: [usize; 3] = [1, 8, 64];
/// Concurrent HTTPS clients: 8 as the issue asks, and 64 to see how far more sharing of
/// each commit takes the overhead down.
const CLIENTS: [usize; 2] = [8, 64];
/// HTTPS reads per measurement, split among the clients.
const READS: usize = 2400;

/// Forwards to the real store and counts transactions and entries, to show how many
/// entries group commit puts in one commit.
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn AuditStore>,
    commits: AtomicU64,
    entries: AtomicU64,
}

impl Counted {
    fn new(inner: Arc<dyn AuditStore>) -> Arc<Self> {
        Arc::new(Self { inner, commits: AtomicU64::new(0), entries: AtomicU64::new(0) })
    }

    fn per_commit(&self) -> f64 {
        self.entries.load(Ordering::Relaxed) as f64 / self.commits.load(Ordering::Relaxed).max(1) as f64
    }
}

#[async_trait::async_trait]
impl AuditStore for Counted {
    async fn append_audit(&self, entries: &[(i64, Vec<u8>)], settle: bool) -> Result<u64, StoreError> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.entries.fetch_add(entries.len() as u64, Ordering::Relaxed);
        self.inner.append_audit(entries, settle).await
    }
    async fn audit_entries(&self, from_seq: u64, limit: u64) -> Result<Vec<StoredEntry>, StoreError> {
        self.inner.audit_entries(from_seq, limit).await
    }
    async fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        self.inner.audit_head().await
    }
    async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.inner.insert_checkpoint(checkpoint).await
    }
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.inner.checkpoints().await
    }
}

/// An entry shaped like a clinician's read, so the rows are the size the server writes.
fn read_event(i: usize) -> AuditEvent {
    let mut e = AuditEvent::new(1_800_000_000_000 + i as i64, "read", phivault_audit::Outcome::Success, "bench/1");
    e.user_id = Some("user-AbCdEfGhIjKlMnOp".into());
    e.roles = vec!["physician".into()];
    e.resource_type = Some("Observation".into());
    e.resource_ids = vec![format!("Observation/{i:032x}")];
    e.patient_ids = vec![format!("{:032x}", i / 50)];
    e.source_ip = Some("10.1.2.3".into());
    e.request_id = Some(format!("{i:032x}"));
    e
}

/// Baseline: `APPENDS` single-entry appends straight to the store, one at a time:
/// (appends/s, µs of process CPU per append).
async fn direct_appends_per_second(store: &Arc<dyn AuditStore>) -> (f64, f64) {
    let store = store.clone();
    // On a runtime worker, as the writer task and the server's handlers run: `main`'s own
    // future runs outside the workers, and every wake-up there costs a thread hand-off.
    tokio::spawn(async move {
        let (started, cpu) = (Instant::now(), cpu_seconds());
        for i in 0..APPENDS {
            let e = read_event(i);
            store.append_audit(&[(e.time_ms, e.canonical_bytes())], false).await.expect("durable append");
        }
        (APPENDS as f64 / started.elapsed().as_secs_f64(), (cpu_seconds() - cpu) * 1e6 / APPENDS as f64)
    })
    .await
    .expect("baseline")
}

/// (appends/s, entries per commit, µs of process CPU per append) for `APPENDS` entries
/// recorded by `writers` tasks at once through the group-commit writer, each waiting for
/// its entry to be durable.
async fn grouped_appends_per_second(store: &Arc<dyn AuditStore>, writers: usize) -> (f64, f64, f64) {
    let counted = Counted::new(store.clone());
    let log = AuditLog::start(counted.clone(), "bench/1");
    let each = APPENDS / writers;
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    log.record(&read_event(w * each + i)).await.expect("durable append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    let rate = APPENDS as f64 / started.elapsed().as_secs_f64();
    (rate, counted.per_commit(), (cpu_seconds() - cpu) * 1e6 / APPENDS as f64)
}

/// (requests/s, mean µs latency, µs of process CPU per request) for `clients` keep-alive
/// connections together reading `READS` patients, each as fast as its answers come.
async fn concurrent_reads(
    clients: usize,
    records: GuardedRecords,
    identity: phivault_identity::Identity,
    audit: AuditLog,
    alerts: Arc<dyn phivault_audit::alerts::AlertStore>,
    token: &str,
    loaded: usize,
) -> (f64, f64, f64) {
    let server = Server::start(records, identity, audit, alerts).await;
    let each = READS / clients;
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(server.connect().await);
    }
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(c, mut stream)| {
            let token = token.to_owned();
            tokio::spawn(async move {
                let begun = Instant::now();
                for k in 0..each {
                    let n = c * each + k;
                    get_patient(&mut stream, &format!("bench-{}", (n * 104_729) % loaded), &token).await;
                }
                begun.elapsed().as_secs_f64()
            })
        })
        .collect();
    let mut busy = 0.0;
    for task in tasks {
        busy += task.await.expect("client");
    }
    let wall = started.elapsed().as_secs_f64();
    let requests = (clients * each) as f64;
    let cpu = (cpu_seconds() - cpu_before) * 1e6 / requests;
    server.stop().await;
    (requests / wall, busy * 1e6 / requests, cpu)
}

fn range(values: &[f64], decimals: usize) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{low:.decimals$}–{high:.decimals$}")
}

fn list(values: &[f64], decimals: usize) -> String {
    values.iter().map(|v| format!("{v:.decimals$}")).collect::<Vec<_>>().join(", ")
}

/// Runs both measures and prints one table row each through `row`.
pub async fn concurrency(
    row: &dyn Fn(&str, String),
    store: &SqlStore,
    records: GuardedRecords,
    identity: phivault_identity::Identity,
    token: &str,
    loaded: usize,
) {
    let audit_store: Arc<dyn AuditStore> = Arc::new(store.clone());
    let mut baseline = Vec::new();
    let mut grouped: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); WRITERS.len()];
    for _ in 0..ROUNDS {
        baseline.push(direct_appends_per_second(&audit_store).await);
        for (w, writers) in WRITERS.iter().enumerate() {
            grouped[w].push(grouped_appends_per_second(&audit_store, *writers).await);
        }
    }
    let rates: Vec<f64> = baseline.iter().map(|b| b.0).collect();
    let cpus: Vec<f64> = baseline.iter().map(|b| b.1).collect();
    row(
        &format!("audit appends/s, baseline: {APPENDS} single-entry appends straight to the store, one commit each"),
        format!(
            "{} appends/s ({ROUNDS} rounds: {}); {} µs process CPU per append",
            range(&rates, 0),
            list(&rates, 0),
            range(&cpus, 0)
        ),
    );
    for (w, writers) in WRITERS.iter().enumerate() {
        let rates: Vec<f64> = grouped[w].iter().map(|g| g.0).collect();
        let ratios: Vec<f64> = rates.iter().zip(&baseline).map(|(r, b)| r / b.0).collect();
        let per_commit: Vec<f64> = grouped[w].iter().map(|g| g.1).collect();
        let cpus: Vec<f64> = grouped[w].iter().map(|g| g.2).collect();
        row(
            &format!("audit appends/s through AuditLog (group commit), writers at once: {writers}"),
            format!(
                "{} appends/s = ×{} the same round's baseline; {} entries per commit; {} µs process CPU per append",
                range(&rates, 0),
                list(&ratios, 2),
                range(&per_commit, 1),
                range(&cpus, 0)
            ),
        );
    }

    let alerts: Arc<dyn phivault_audit::alerts::AlertStore> = Arc::new(store.clone());
    for clients in CLIENTS {
        let (mut off, mut on) = (Vec::new(), Vec::new());
        let mut per_commit = Vec::new();
        for _ in 0..ROUNDS {
            let discard = AuditLog::start(Arc::new(crate::auth::DiscardAudit), "bench/1");
            let (r, i) = (records.clone(), identity.clone());
            off.push(concurrent_reads(clients, r, i, discard, alerts.clone(), token, loaded).await);
            let counted = Counted::new(audit_store.clone());
            let durable = AuditLog::start(counted.clone(), "bench/1");
            let (r, i) = (records.clone(), identity.clone());
            on.push(concurrent_reads(clients, r, i, durable, alerts.clone(), token, loaded).await);
            per_commit.push(counted.per_commit());
        }
        let pick = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| v.iter().map(f).collect::<Vec<_>>();
        let overhead: Vec<String> =
            off.iter().zip(&on).map(|(a, b)| format!("{:+.0}", 100.0 * (a.0 / b.0 - 1.0))).collect();
        row(
            &format!(
                "HTTPS GET Patient/id, {clients} concurrent clients, audit off (discarded) vs on (durable, fail closed)"
            ),
            format!(
                "{} vs {} requests/s; mean latency {} vs {} µs; CPU {} vs {} µs per request; \
                 time per read {} % with auditing (per round); {} entries per commit",
                range(&pick(&off, |m| m.0), 0),
                range(&pick(&on, |m| m.0), 0),
                range(&pick(&off, |m| m.1), 0),
                range(&pick(&on, |m| m.1), 0),
                range(&pick(&off, |m| m.2), 0),
                range(&pick(&on, |m| m.2), 0),
                overhead.join(", "),
                range(&per_commit, 1)
            ),
        );
    }
}
