//! `phivault audit archive` moves the oldest entries' content into an archive file and
//! keeps their hashes: the trail still verifies, the archive is checked against it (by the
//! command and by the standalone verifier), a changed archive or content removed outside the
//! archived prefix is found, and only checkpointed entries are archived.

mod common;

use common::{phivault, text};

use std::path::Path;

// 2099-11-25 12:00 UTC (after `init`'s own entry, written now); entry i is written i
// minutes later.
const NOON: i64 = 4_099_291_200_000;

#[test]
fn archived_entries_stay_verifiable_and_a_changed_archive_shows() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let write = |range: std::ops::Range<i64>| {
        runtime.block_on(async {
            let store = phivault_store::SqlStore::connect(&url).await.expect("store");
            let log = phivault_audit::AuditLog::start(std::sync::Arc::new(store.clone()), "test");
            for i in range {
                let mut e = phivault_audit::AuditEvent::new(
                    NOON + i * 60_000,
                    "read",
                    phivault_audit::Outcome::Success,
                    "test",
                );
                e.resource_ids = vec![format!("Patient/p{i}")];
                e.patient_ids = vec![format!("p{i}")];
                log.record(&e).await.expect("durable");
            }
            store.close().await;
        })
    };
    write(0..20);
    let archive = tmp.path().join("archive-2026.jsonl");
    let archive_arg = archive.to_str().expect("utf8");
    // Nothing is checkpointed yet: nothing may be archived.
    let early = phivault(&data, &["audit", "archive", "--before", "2099-11-25T12:10:00Z", "--out", archive_arg]);
    assert!(!early.status.success() && text(&early).contains("audit checkpoint"), "{}", text(&early));
    assert!(!archive.exists());

    assert!(phivault(&data, &["audit", "checkpoint"]).status.success());
    write(20..25);
    let moved = phivault(&data, &["audit", "archive", "--before", "2099-11-25T12:10:00Z", "--out", archive_arg]);
    assert!(moved.status.success(), "{}", text(&moved));
    // `init`'s entry (#0) and the reads before 12:10 (#1..#10).
    assert!(text(&moved).contains("archived 11 entries"), "{}", text(&moved));
    assert_eq!(std::fs::read_to_string(&archive).expect("archive").lines().count(), 11);
    let again = phivault(&data, &["audit", "archive", "--before", "2099-11-25T12:10:00Z", "--out", archive_arg]);
    assert!(!again.status.success(), "an archive is never overwritten");

    // The online trail verifies, saying what it could not check; with the archive, all of it.
    let online = phivault(&data, &["audit", "verify"]);
    assert!(online.status.success(), "{}", text(&online));
    assert!(
        text(&online).contains("archived entries not checked (pass their --archive files): 11"),
        "{}",
        text(&online)
    );
    let full = phivault(&data, &["audit", "verify", "--archive", archive_arg]);
    assert!(full.status.success() && text(&full).contains("checked against the archive files: 11"), "{}", text(&full));
    // An archived entry still proves into the signed tree, by its stored leaf.
    let proved = phivault(&data, &["audit", "prove", "3"]);
    assert!(proved.status.success(), "{}", text(&proved));
    assert!(text(&proved).contains("(archived") && text(&proved).contains("entry #3 is included"), "{}", text(&proved));
    // The archive run is itself in the trail; archived entries leave searches.
    let search = phivault(&data, &["audit", "search", "--action", "read"]);
    assert_eq!(String::from_utf8_lossy(&search.stdout).lines().count(), 15, "{}", text(&search));
    let recorded = phivault(&data, &["audit", "search", "--action", "audit.archive"]);
    assert!(text(&recorded).contains("entries #0..#10 moved to an archive file"), "{}", text(&recorded));

    // The standalone verifier agrees, from an export, the witness, the key and the archive.
    let export = tmp.path().join("export.jsonl");
    assert!(phivault(&data, &["audit", "export", "--out", export.to_str().expect("utf8")]).status.success());
    // What the standalone verifier does, through the same library calls.
    let standalone = |archive: &Path| {
        let parse = |path: &Path| -> Vec<phivault_audit::StoredEntry> {
            let text = std::fs::read_to_string(path).expect("file");
            text.lines().map(|l| phivault_audit::export::parse_line(l).expect("line")).collect()
        };
        let mut entries = parse(&export);
        phivault_audit::export::fill_from_archive(&mut entries, parse(archive));
        let witness: Vec<phivault_audit::Checkpoint> = std::fs::read_to_string(data.join("audit/witness.jsonl"))
            .expect("witness")
            .lines()
            .map(|l| serde_json::from_str(l).expect("checkpoint"))
            .collect();
        let key = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            std::fs::read_to_string(data.join("audit/signing.pub")).expect("pub").trim(),
        )
        .expect("b64");
        phivault_audit::verify(entries, &witness, &key)
    };
    let intact = standalone(&archive);
    assert!(intact.is_intact() && intact.archived == 0, "{intact:?}");

    // An archived entry changed in the archive file: found, by both.
    let original = std::fs::read_to_string(&archive).expect("archive");
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let mut third = phivault_audit::export::parse_line(&lines[3]).expect("line");
    let mut event = phivault_audit::AuditEvent::from_canonical(&third.bytes).expect("event");
    event.patient_ids = vec!["someone-else".into()];
    third.bytes = event.canonical_bytes();
    lines[3] = phivault_audit::export::export_line(&third);
    std::fs::write(&archive, lines.join("\n") + "\n").expect("rewrite");
    let caught = phivault(&data, &["audit", "verify", "--archive", archive_arg]);
    assert!(!caught.status.success() && text(&caught).contains("#3"), "{}", text(&caught));
    assert_eq!(standalone(&archive).first_problem.map(|(seq, _)| seq), Some(3));
    std::fs::write(&archive, original).expect("restore");

    // Content removed from a recent entry is not an archive: found.
    let saved: Vec<u8> = runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        let saved =
            sqlx::query_scalar("SELECT entry FROM audit_log WHERE seq = 17").fetch_one(&pool).await.expect("17");
        sqlx::query("UPDATE audit_log SET entry = X'' WHERE seq = 17").execute(&pool).await.expect("tamper");
        pool.close().await;
        saved
    });
    let hidden = phivault(&data, &["audit", "verify", "--archive", archive_arg]);
    assert!(!hidden.status.success(), "{}", text(&hidden));
    assert!(text(&hidden).contains("entries #17..#17 was removed, but no signed archive run"), "{}", text(&hidden));
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        sqlx::query("UPDATE audit_log SET entry = $1 WHERE seq = 17")
            .bind(saved.clone())
            .execute(&pool)
            .await
            .expect("restore");
        pool.close().await;
    });
    assert!(phivault(&data, &["audit", "verify", "--archive", archive_arg]).status.success(), "restored");

    // The review's case: the oldest entries beyond the recorded archive run (#0..#10) emptied
    // as well, still a prefix, so only the recorded ranges tell.
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        sqlx::query("UPDATE audit_log SET entry = X'' WHERE seq < 13").execute(&pool).await.expect("tamper");
        pool.close().await;
    });
    let beyond = phivault(&data, &["audit", "verify"]);
    assert!(!beyond.status.success(), "{}", text(&beyond));
    assert!(text(&beyond).contains("entries #11..#12 was removed, but no signed archive run"), "{}", text(&beyond));

    // The database owner then records an archive run of its own, correctly chained (in the
    // form older versions wrote, and with the real run's signature over a wider range), and
    // the next checkpoint signs it: it still excuses nothing, having no valid signature.
    let real = text(&recorded);
    let signed_reason =
        real.split("\"reason\":\"").nth(1).and_then(|r| r.split('"').next()).expect("reason").to_owned();
    for forged in ["entries #0..#12 moved to an archive file".to_owned(), signed_reason.replace("#0..#10", "#0..#12")] {
        runtime.block_on(async {
            let store = phivault_store::SqlStore::connect(&url).await.expect("store");
            let log = phivault_audit::AuditLog::start(std::sync::Arc::new(store.clone()), "test");
            let mut e = phivault_audit::AuditEvent::new(
                NOON + 3_600_000,
                "audit.archive",
                phivault_audit::Outcome::Success,
                "test",
            );
            e.user_id = Some("os:root".into());
            e.reason = Some(forged.clone());
            log.record(&e).await.expect("durable");
            store.close().await;
        });
        assert!(phivault(&data, &["audit", "checkpoint"]).status.success());
        let excused = phivault(&data, &["audit", "verify"]);
        assert!(!excused.status.success(), "{forged}: {}", text(&excused));
        assert!(text(&excused).contains("entries #11..#12 was removed"), "{}", text(&excused));
    }
}

/// Content emptied with no archive run recorded at all is tampering, not an archive.
#[test]
fn content_removed_without_a_recorded_archive_run_is_found() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let store = phivault_store::SqlStore::connect(&url).await.expect("store");
        let log = phivault_audit::AuditLog::start(std::sync::Arc::new(store.clone()), "test");
        for i in 0..8 {
            let mut e = phivault_audit::AuditEvent::new(NOON + i, "read", phivault_audit::Outcome::Success, "test");
            e.patient_ids = vec![format!("p{i}")];
            log.record(&e).await.expect("durable");
        }
        store.close().await;
    });
    assert!(phivault(&data, &["audit", "checkpoint"]).status.success());
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        sqlx::query("UPDATE audit_log SET entry = X'' WHERE seq < 3").execute(&pool).await.expect("tamper");
        pool.close().await;
    });
    let out = phivault(&data, &["audit", "verify"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("entries #0..#2 was removed"), "{}", text(&out));
}
