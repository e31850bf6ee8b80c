//! The audit trail in the database: concurrent appenders on one database keep one verifiable
//! chain, and tampering with the owner's rights (edit, delete, insert, reorder, truncate) is
//! found by the verifier, which names the first bad entry.

use std::sync::Arc;

use phivault_audit::{AuditEvent, AuditLog, AuditStore, CheckpointSigner, Outcome, verify};
use phivault_store::SqlStore;
use phivault_testkit::{engines, fresh_store};

fn event(i: usize, node: &str) -> AuditEvent {
    let mut e = AuditEvent::new(1_800_000_000_000 + i as i64, "read", Outcome::Success, node);
    e.resource_ids = vec![format!("Patient/p{i}")];
    e.user_id = Some("user-daffy".into());
    e
}

async fn all_entries(store: &SqlStore) -> Vec<phivault_audit::StoredEntry> {
    store.audit_entries(0, u64::MAX / 2).await.expect("entries")
}

async fn sign_head(store: &SqlStore, signer: &CheckpointSigner) {
    let entries = all_entries(store).await;
    let leaves: Vec<_> = entries.iter().map(|e| e.leaf).collect();
    let (size, chain) = store.audit_head().await.expect("head");
    let cp = signer.sign(size, &phivault_audit::merkle::root(&leaves), &chain, 1);
    store.insert_checkpoint(&cp).await.expect("checkpoint");
}

async fn exec(url: &str, engine: &str, sql: &'static str) {
    match engine {
        "sqlite" => {
            let pool = sqlx::SqlitePool::connect(url).await.expect("raw sqlite");
            sqlx::raw_sql(sql).execute(&pool).await.expect("tamper");
            pool.close().await;
        }
        _ => {
            let pool = sqlx::PgPool::connect(url).await.expect("raw pg");
            sqlx::raw_sql(sql).execute(&pool).await.expect("tamper");
            pool.close().await;
        }
    }
}

#[tokio::test]
async fn two_writers_share_one_verifiable_trail() {
    for engine in engines() {
        let (store, _db, url) = fresh_store(engine).await;
        let other = SqlStore::connect(&url).await.expect("second pool, as another node");
        let a = AuditLog::start(Arc::new(store.clone()), "node-a");
        let b = AuditLog::start(Arc::new(other.clone()), "node-b");
        let mut tasks = Vec::new();
        for i in 0..200 {
            let (log, node) = if i % 2 == 0 { (a.clone(), "node-a") } else { (b.clone(), "node-b") };
            tasks.push(tokio::spawn(async move { log.record(&event(i, node)).await }));
        }
        let mut seqs: Vec<u64> = Vec::new();
        for t in tasks {
            seqs.push(t.await.expect("task").expect("durable"));
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (0..200).collect::<Vec<u64>>(), "{engine}: no lost or duplicated entries");
        let (signer, _) = CheckpointSigner::generate().expect("key");
        sign_head(&store, &signer).await;
        let report = verify(all_entries(&store).await, &store.checkpoints().await.expect("cps"), &signer.public_key());
        assert!(report.is_intact(), "{engine}: {report:?}");
        assert_eq!((report.entries, report.checkpoints_verified), (200, 1));
    }
}

#[tokio::test]
async fn tampering_with_database_rights_is_found() {
    for engine in engines() {
        let (signer, _) = CheckpointSigner::generate().expect("key");
        let key = signer.public_key();
        let cases: [(&str, &str, u64); 5] = [
            ("edit", "UPDATE audit_log SET entry = (SELECT entry FROM audit_log WHERE seq = 3) WHERE seq = 7", 7),
            ("delete", "DELETE FROM audit_log WHERE seq = 11", 11),
            (
                "reorder",
                "UPDATE audit_log SET seq = -1 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 5; UPDATE audit_log SET seq = 5 WHERE seq = -1",
                4,
            ),
            (
                "insert",
                "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 9; UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1009; INSERT INTO audit_log (seq, time_ms, entry, leaf, chain) SELECT 9, time_ms, entry, leaf, chain FROM audit_log WHERE seq = 2",
                9,
            ),
            ("truncate", "DELETE FROM audit_log WHERE seq >= 15", 15),
        ];
        for (name, sql, first_bad) in cases {
            let (store, _db, url) = fresh_store(engine).await;
            let log = AuditLog::start(Arc::new(store.clone()), "node-a");
            for i in 0..20 {
                log.record(&event(i, "node-a")).await.expect("durable");
            }
            sign_head(&store, &signer).await;
            exec(&url, engine, sql).await;
            let report = verify(all_entries(&store).await, &store.checkpoints().await.expect("cps"), &key);
            let (seq, why) = report.first_problem.clone().unwrap_or_else(|| panic!("{engine} {name}: not detected"));
            assert_eq!(seq, first_bad, "{engine} {name}: {why}");
        }
    }
}

/// A patient's accounting reads an index by patient, written with the entries: it finds
/// exactly what a walk of the whole trail finds, also for ids that try to break out of the
/// statement, and also for entries chained from the outbox.
#[tokio::test]
async fn the_index_by_patient_finds_what_a_walk_of_the_trail_finds() {
    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let log = AuditLog::start(Arc::new(store.clone()), "node-a");
        let hostile = "p1'); DELETE FROM audit_log; --";
        for i in 0..30 {
            let mut e = event(i, "node-a");
            e.patient_ids = match i % 3 {
                0 => vec!["p1".into()],
                1 => vec!["p1".into(), "p2".into()],
                _ => vec![hostile.into()],
            };
            log.record(&e).await.expect("record");
        }
        let mut pending = event(99, "node-a");
        pending.patient_ids = vec!["p2".into()];
        let entry = phivault_service::PendingEntry { time_ms: pending.time_ms, canonical: pending.canonical_bytes() };
        phivault_service::RecordStore::commit(&store, &[], &[], Some(&entry)).await.expect("outboxed");
        log.settle().await.expect("settle");
        assert_eq!(all_entries(&store).await.len(), 31, "{engine}: nothing deleted by the hostile id");
        for patient in ["p1", "p2", hostile, "p3"] {
            let query = phivault_audit::AuditQuery { patient_id: Some(patient.into()), ..Default::default() };
            let indexed = phivault_audit::search(&store, &query, usize::MAX).await.expect("search");
            let walked: Vec<u64> = all_entries(&store)
                .await
                .iter()
                .filter(|e| {
                    AuditEvent::from_canonical(&e.bytes).is_some_and(|e| e.patient_ids.iter().any(|p| p == patient))
                })
                .map(|e| e.seq)
                .collect();
            let indexed: Vec<u64> = indexed.iter().map(|(seq, _)| *seq).collect();
            assert_eq!(indexed, walked, "{engine}: {patient}");
        }
        let p2 = phivault_audit::AuditQuery { patient_id: Some("p2".into()), ..Default::default() };
        assert_eq!(phivault_audit::search(&store, &p2, usize::MAX).await.expect("p2").len(), 11, "{engine}");
    }
}

/// The signer asks for its key's newest checkpoints only: the largest first, other keys'
/// left out, at most the number asked for.
#[tokio::test]
async fn the_newest_checkpoints_of_one_key_come_largest_first() {
    for engine in engines() {
        let (store, _db, _url) = fresh_store(engine).await;
        let (ours, _) = CheckpointSigner::generate().expect("key");
        let (theirs, _) = CheckpointSigner::generate().expect("key");
        for size in 1..=6u64 {
            let signer = if size == 6 { &theirs } else { &ours };
            store.insert_checkpoint(&signer.sign(size, &[1; 32], &[2; 32], size as i64)).await.expect("checkpoint");
        }
        let newest = store.newest_checkpoints(&ours.key_id(), 3).await.expect("newest");
        let sizes: Vec<u64> = newest.iter().map(|c| c.tree_size).collect();
        assert_eq!(sizes, vec![5, 4, 3], "{engine}");
        assert!(newest.iter().all(|c| c.verify(&ours.public_key())), "{engine}: rows read back exactly");
    }
}
