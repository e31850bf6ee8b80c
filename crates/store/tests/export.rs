//! Bulk export jobs on both engines, below HTTP: a file larger than one sealed chunk reads
//! back whole on another node; a chunk moved to another place is refused; a de-identified
//! export that is not k-anonymous fails and leaves nothing behind; expired jobs vanish.

use std::sync::Arc;

use phivault_policy::RequestFacts;
use phivault_service::access::{Accessor, GuardedRecords, Requester};
use phivault_service::bulk::{CHUNK_BYTES, ExportRequest, ExportTarget, Exporter, JobStatus};
use phivault_service::{Records, SystemClock};
use phivault_store::SqlStore;
use phivault_testkit::{engines, fresh_store, records};
use serde_json::{Value, json};

fn researcher() -> Accessor {
    Accessor {
        requester: Requester::User {
            user_id: "user-taz".into(),
            roles: vec!["researcher".into()],
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

/// The records behind the default policies, as the export reads them.
fn guarded(records: &Records, store: &SqlStore) -> GuardedRecords {
    phivault_testkit::guarded(
        records.clone(),
        store.clone(),
        phivault_policy::Policies::defaults().expect("default policies"),
    )
}

fn exporter(records: &Records, store: &SqlStore, ttl_ms: i64, min_k: usize) -> Exporter {
    let guarded = guarded(records, store);
    Exporter::new(guarded, Arc::new(store.clone()), records.keys().clone(), Arc::new(SystemClock), ttl_ms, min_k)
}

fn request(types: &[&str]) -> ExportRequest {
    ExportRequest {
        target: ExportTarget::System,
        types: types.iter().map(|t| (*t).to_owned()).collect(),
        since_ms: None,
        deidentify: None,
        request: "/$export".into(),
    }
}

/// Cartoon patients born in different years, each with `notes` long observations, loaded
/// in one transaction.
async fn load(records: &Records, patients: usize, notes: usize) {
    let mut entries = Vec::new();
    for p in 0..patients {
        let full = format!("urn:uuid:00000000-0000-4000-8000-{p:012}");
        entries.push(json!({"fullUrl": full, "request": {"method": "POST", "url": "Patient"},
            "resource": {"resourceType": "Patient", "name": [{"family": "Duck", "given": [format!("Daffy{p}")]}],
                "gender": "male", "birthDate": format!("{}-04-17", 1980 + p)}}));
        for n in 0..notes {
            entries.push(json!({"request": {"method": "POST", "url": "Observation"},
                "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                    "valueString": format!("note {n}: {}", "stable, eating well. ".repeat(50)),
                    "subject": {"reference": full}}}));
        }
    }
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    records.process_bundle(bundle).await.expect("load");
}

async fn read_file(exporter: &Exporter, owner: &str, id: &str, file: u32) -> Vec<Value> {
    let job = exporter.job(owner, id).await.expect("job").expect("visible to its owner");
    let mut bytes = Vec::new();
    let mut chunk = 0;
    while let Some(part) = exporter.chunk(&job, file, chunk).await.expect("chunk opens") {
        bytes.extend(part);
        chunk += 1;
    }
    assert_eq!(chunk, job.files[file as usize].chunks, "every chunk read");
    String::from_utf8(bytes).expect("utf8").lines().map(|l| serde_json::from_str(l).expect("json")).collect()
}

#[tokio::test]
async fn a_multi_chunk_export_reads_back_on_another_node_and_moved_chunks_are_refused() {
    for engine in engines() {
        let (store, _db, url) = fresh_store(engine).await;
        let records = records(store.clone());
        load(&records, 3, 300).await;
        let node_a = exporter(&records, &store, 3_600_000, 0);
        let started = node_a.kick_off(&researcher(), "user-taz", request(&["Observation"])).await.expect("kick-off");
        let (job, level) = started.value;
        let (outcome, ready) = node_a.run(job.clone(), researcher(), level).await;
        assert_eq!(outcome.error, None, "{engine}");
        assert!(outcome.deidentified, "{engine}: the researcher's policy demands Safe Harbor");
        assert_eq!(outcome.counts.get("Observation"), Some(&900), "{engine}");
        assert_eq!(outcome.patients.len(), 3, "{engine}");
        assert!(node_a.publish(ready.expect("written")).await.expect("publish"), "{engine}");

        // Another process on the same database answers for it.
        let other = SqlStore::connect(&url).await.expect("second node");
        let node_b = exporter(&records, &other, 3_600_000, 0);
        let seen = node_b.job("user-taz", &job.id).await.expect("job").expect("visible");
        assert_eq!(seen.status, JobStatus::Complete, "{engine}");
        assert!(seen.files[0].chunks >= 2, "{engine}: more than {CHUNK_BYTES} bytes make several chunks");
        let lines = read_file(&node_b, "user-taz", &job.id, 0).await;
        assert_eq!(lines.len(), 900, "{engine}");
        assert!(lines.iter().all(|l| !l.to_string().contains("Daffy")), "{engine}: de-identified");
        assert!(node_b.job("user-other", &job.id).await.expect("job").is_none(), "{engine}: owner only");

        // Chunk 1 copied over chunk 0: authenticated encryption binds each chunk's place.
        let pool = phivault_testkit::raw_pool(&url).await;
        sqlx::query("UPDATE export_chunks SET body = (SELECT body FROM export_chunks WHERE chunk = 1) WHERE chunk = 0")
            .execute(&pool)
            .await
            .expect("tamper");
        assert!(node_b.chunk(&seen, 0, 0).await.is_err(), "{engine}: a moved chunk is refused");
    }
}

#[tokio::test]
async fn k_anonymity_below_the_floor_fails_the_export_and_expired_jobs_vanish() {
    for engine in engines() {
        let (store, _db, url) = fresh_store(engine).await;
        let records = records(store.clone());
        load(&records, 3, 1).await;
        // Three patients of three birth years: every class holds one.
        let strict = exporter(&records, &store, 3_600_000, 2);
        let started = strict.kick_off(&researcher(), "user-taz", request(&["Patient"])).await.expect("kick-off");
        let (job, level) = started.value;
        let (outcome, ready) = strict.run(job.clone(), researcher(), level).await;
        assert!(ready.is_none(), "{engine}: nothing to publish");
        let error = outcome.error.expect("failed");
        assert!(error.starts_with("k-anonymity below 2: the smallest class holds 1"), "{engine}: {error}");
        let failed = strict.job("user-taz", &job.id).await.expect("job").expect("kept to explain");
        assert_eq!((failed.status, failed.files.len()), (JobStatus::Failed, 0), "{engine}");
        let pool = phivault_testkit::raw_pool(&url).await;
        let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM export_chunks").fetch_one(&pool).await.expect("n");
        assert_eq!(chunks, 0, "{engine}: nothing written stays");

        // A job whose time is up is gone, files and all.
        let brief = exporter(&records, &store, 0, 0);
        let started = brief.kick_off(&researcher(), "user-taz", request(&["Observation"])).await.expect("kick-off");
        let (job, level) = started.value;
        let (_, ready) = brief.run(job.clone(), researcher(), level).await;
        brief.publish(ready.expect("written")).await.expect("publish");
        assert!(brief.job("user-taz", &job.id).await.expect("job").is_none(), "{engine}: expired");
        brief.sweep().await.expect("sweep");
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM export_chunks").fetch_one(&pool).await.expect("n");
        let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM export_jobs WHERE status = 'complete'")
            .fetch_one(&pool)
            .await
            .expect("n");
        assert_eq!((left, jobs), (0, 0), "{engine}");
    }
}

#[tokio::test]
async fn export_pages_neither_skip_nor_repeat_when_records_change_between_pages() {
    use phivault_service::Clock;
    use phivault_service::access::{ExportLevel, ExportWindow};
    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let records = records(store.clone());
        // 800 observations loaded in one transaction: many share a last-updated instant,
        // so the page boundary falls inside a run of equal times.
        load(&records, 2, 400).await;
        let guarded = guarded(&records, &store);
        let window = ExportWindow { since_ms: None, until_ms: SystemClock.now_ms() };
        let first = guarded
            .export_page(&researcher(), "Observation", &ExportLevel::System, window, None)
            .await
            .expect("first page")
            .value;
        let mut seen: Vec<String> = first.items.iter().map(|i| i.resource.id.clone()).collect();
        assert_eq!(seen.len(), phivault_service::access::EXPORT_PAGE, "{engine}: a full first page");
        let next = first.next.expect("more pages");

        // A record of the first page changes while the export runs: it moves to the end of
        // the last-updated order. With offsets the next page would skip one record and
        // repeat this one; the cursor and the window do neither.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let moved = records.read("Observation", &seen[0], None).await.expect("read");
        let mut body = moved.body.clone();
        body["status"] = json!("amended");
        records.update("Observation", &moved.id, body, None).await.expect("update");

        let second = guarded
            .export_page(&researcher(), "Observation", &ExportLevel::System, window, Some(&next))
            .await
            .expect("second page")
            .value;
        assert!(second.next.is_none(), "{engine}: two pages hold 800 records");
        seen.extend(second.items.iter().map(|i| i.resource.id.clone()));
        let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{engine}: no record exported twice");
        assert_eq!(seen.len(), 800, "{engine}: every record exported once");
    }
}
