//! `phivault audit consistency`: a later signed checkpoint extends an earlier one, until
//! someone with database rights rewrites an entry the earlier one signed.

mod common;

use common::{append_reads as append, phivault, text};

#[test]
fn consistency_between_signed_checkpoints_fails_once_an_early_entry_is_rewritten() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    let none = phivault(&data, &["audit", "consistency"]);
    assert!(!none.status.success() && text(&none).contains("no validly signed checkpoint"), "{}", text(&none));
    // `init` wrote entry #0 and each `audit checkpoint` writes one after it signs: nine and
    // six reads make signed trees of 10 and 17.
    append(&runtime, &url, 0, 9);
    let first = phivault(&data, &["audit", "checkpoint"]);
    assert!(text(&first).contains("signed checkpoint: 10 entries"), "{}", text(&first));
    let alone = phivault(&data, &["audit", "consistency"]);
    assert!(
        !alone.status.success() && text(&alone).contains("no validly signed checkpoint before"),
        "{}",
        text(&alone)
    );
    append(&runtime, &url, 10, 6);
    let second = phivault(&data, &["audit", "checkpoint"]);
    assert!(text(&second).contains("signed checkpoint: 17 entries"), "{}", text(&second));

    // By default: the two latest checkpoints.
    let ok = phivault(&data, &["audit", "consistency"]);
    let out = text(&ok);
    assert!(ok.status.success(), "{out}");
    assert!(out.contains("earlier checkpoint: 10 entries") && out.contains("later checkpoint: 17 entries"), "{out}");
    assert!(out.contains("the signed tree of 17 entries extends the signed tree of 10 entries"), "{out}");
    // RFC 6962 PROOF(10, D[17]) is the roots of entries [8,10) [10,12) [12,16) [0,8) [16,17).
    let proof_lines: Vec<&str> = out.lines().filter(|l| l.starts_with("proof[")).collect();
    assert_eq!(proof_lines.len(), 5, "{out}");
    // The same proof, checked here with the library against the signed roots in the witness.
    let witness: Vec<phivault_audit::Checkpoint> = std::fs::read_to_string(data.join("audit/witness.jsonl"))
        .expect("witness")
        .lines()
        .map(|l| serde_json::from_str(l).expect("checkpoint"))
        .collect();
    let proof: Vec<[u8; 32]> = proof_lines
        .iter()
        .map(|l| phivault_audit::checkpoint::unhex(l.rsplit(' ').next().expect("hash")).expect("hex"))
        .collect();
    let root = |i: usize| phivault_audit::checkpoint::unhex(&witness[i].root).expect("root");
    assert!(phivault_audit::merkle::verify_consistency(10, 17, &root(0), &root(1), &proof));

    // Explicit sizes; a size never signed is refused by name.
    let explicit = phivault(&data, &["audit", "consistency", "--from", "10", "--to", "17"]);
    assert!(explicit.status.success(), "{}", text(&explicit));
    let unsigned = phivault(&data, &["audit", "consistency", "--from", "11"]);
    assert!(!unsigned.status.success(), "{}", text(&unsigned));
    assert!(text(&unsigned).contains("no validly signed checkpoint of 11 entries (signed sizes: 10, 17)"));

    let tamper = |sql: &'static str| {
        runtime.block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
            sqlx::raw_sql(sql).execute(&pool).await.expect("tamper");
            pool.close().await;
        })
    };
    // The database owner rewrites entry #3 (signed by both checkpoints), leaving its stored
    // hashes as they were.
    tamper("UPDATE audit_log SET entry = (SELECT entry FROM audit_log WHERE seq = 0) WHERE seq = 3");
    let rewritten = phivault(&data, &["audit", "consistency"]);
    let out = text(&rewritten);
    assert!(!rewritten.status.success(), "{out}");
    assert!(out.contains("does NOT prove") && out.contains("an entry before #10 was changed"), "{out}");

    // Dropping the tail shows as well: the later checkpoint's entries are gone.
    tamper("DELETE FROM audit_log WHERE seq >= 12");
    let cut = phivault(&data, &["audit", "consistency"]);
    assert!(!cut.status.success(), "{}", text(&cut));
    assert!(text(&cut).contains("the trail holds 12 entries, fewer than the 17"), "{}", text(&cut));
}

/// The earlier size a power of two: the proof carries no hash of the earlier entries, so
/// the rewrite must be caught by recomputing the earlier root from the stored entries.
#[test]
fn a_rewrite_under_a_power_of_two_checkpoint_is_still_caught() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // With `init`'s entry and the checkpoint's own: signed trees of 8 and 13.
    append(&runtime, &url, 0, 7);
    assert!(phivault(&data, &["audit", "checkpoint"]).status.success());
    append(&runtime, &url, 8, 4);
    assert!(phivault(&data, &["audit", "checkpoint"]).status.success());
    let ok = phivault(&data, &["audit", "consistency"]);
    assert!(ok.status.success(), "{}", text(&ok));
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        sqlx::raw_sql("UPDATE audit_log SET entry = (SELECT entry FROM audit_log WHERE seq = 0) WHERE seq = 5")
            .execute(&pool)
            .await
            .expect("tamper");
        pool.close().await;
    });
    let rewritten = phivault(&data, &["audit", "consistency"]);
    let out = text(&rewritten);
    assert!(!rewritten.status.success(), "{out}");
    assert!(out.contains("no longer holds the entries") && out.contains("an entry before #8 was changed"), "{out}");
}

/// After `audit archive` empties the oldest entries, they count by the hashes they left; an
/// archive file given back is checked, and a changed one breaks the proof. Content emptied
/// outside the archived prefix is a change.
#[test]
fn an_archived_prefix_still_proves_and_a_changed_archive_does_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // `init`'s entry (#0, written now), reads 1..=9, the checkpoint's entry, six reads.
    append(&runtime, &url, 1, 9);
    assert!(phivault(&data, &["audit", "checkpoint"]).status.success());
    append(&runtime, &url, 10, 6);
    assert!(phivault(&data, &["audit", "checkpoint"]).status.success());
    // Entries #0..#4 were written before 08:00:00.005 on 2027-01-15.
    let archive = tmp.path().join("archive.jsonl");
    let archive_arg = archive.to_str().expect("utf8");
    let moved = phivault(&data, &["audit", "archive", "--before", "2027-01-15T08:00:00.005Z", "--out", archive_arg]);
    assert!(text(&moved).contains("archived 5 entries"), "{}", text(&moved));

    let online = phivault(&data, &["audit", "consistency"]);
    assert!(online.status.success(), "{}", text(&online));
    assert!(text(&online).contains("counted by their stored hash (pass their --archive files to check them): 5"));
    let full = phivault(&data, &["audit", "consistency", "--archive", archive_arg]);
    assert!(full.status.success(), "{}", text(&full));
    assert!(text(&full).contains("archived entries checked against the archive files: 5"), "{}", text(&full));

    // An archived entry changed in the archive file.
    let original = std::fs::read_to_string(&archive).expect("archive");
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let mut third = phivault_audit::export::parse_line(&lines[3]).expect("line");
    let mut event = phivault_audit::AuditEvent::from_canonical(&third.bytes).expect("event");
    event.patient_ids = vec!["someone-else".into()];
    third.bytes = event.canonical_bytes();
    lines[3] = phivault_audit::export::export_line(&third);
    std::fs::write(&archive, lines.join("\n") + "\n").expect("rewrite");
    let changed = phivault(&data, &["audit", "consistency", "--archive", archive_arg]);
    assert!(!changed.status.success(), "{}", text(&changed));
    assert!(text(&changed).contains("an entry before #10 was changed"), "{}", text(&changed));

    // Content removed from an entry after the archived prefix is not an archive.
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        sqlx::query("UPDATE audit_log SET entry = X'' WHERE seq = 12").execute(&pool).await.expect("tamper");
        pool.close().await;
    });
    let emptied = phivault(&data, &["audit", "consistency"]);
    assert!(!emptied.status.success(), "{}", text(&emptied));
    assert!(text(&emptied).contains("an entry from #10 to #16 was changed"), "{}", text(&emptied));
}

/// The signer checks before it signs: an entry changed after the last checkpoint, or a
/// rewrite of the signed prefix with every hash recomputed (and the database's checkpoints
/// deleted to hide it), is refused, not signed: the witness still holds what was signed.
#[test]
fn the_signer_refuses_to_sign_a_trail_changed_behind_its_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    append(&runtime, &url, 0, 9);
    assert!(phivault(&data, &["audit", "checkpoint"]).status.success());
    append(&runtime, &url, 9, 3);
    let sql = |statement: String| {
        runtime.block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&pool).await.expect("tamper");
            pool.close().await;
        })
    };

    // An entry after the checkpoint edited, its hashes left as they were.
    let saved: Vec<u8> = runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        let saved = sqlx::query_scalar("SELECT entry FROM audit_log WHERE seq = 12").fetch_one(&pool).await;
        pool.close().await;
        saved.expect("entry 12")
    });
    sql("UPDATE audit_log SET entry = (SELECT entry FROM audit_log WHERE seq = 1) WHERE seq = 12".into());
    let refused = phivault(&data, &["audit", "checkpoint"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("entry #12 does not match its stored hash"), "{}", text(&refused));
    let hex: String = saved.iter().map(|b| format!("{b:02x}")).collect();
    sql(format!("UPDATE audit_log SET entry = X'{hex}' WHERE seq = 12"));
    assert!(phivault(&data, &["audit", "checkpoint"]).status.success(), "restored, it signs");

    // Entry #3 (signed) rewritten with every leaf and chain recomputed, and the database's
    // checkpoints deleted: the chain is consistent, yet the witness remembers the root.
    let rewritten: Vec<phivault_audit::StoredEntry> = runtime.block_on(async {
        let store = phivault_store::SqlStore::connect(&url).await.expect("store");
        let entries = phivault_audit::AuditStore::audit_entries(&store, 0, 1000).await.expect("entries");
        store.close().await;
        let mut chain = phivault_audit::merkle::CHAIN_START;
        entries
            .into_iter()
            .map(|mut e| {
                if e.seq == 3 {
                    let mut event = phivault_audit::AuditEvent::from_canonical(&e.bytes).expect("event");
                    event.resource_ids = vec!["Patient/someone-else".into()];
                    e.bytes = event.canonical_bytes();
                }
                e.leaf = phivault_audit::merkle::leaf_hash(&e.bytes);
                chain = phivault_audit::merkle::chain_hash(&chain, &e.leaf);
                e.chain = chain;
                e
            })
            .collect()
    });
    let blob = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for e in &rewritten {
        sql(format!(
            "UPDATE audit_log SET entry = X'{}', leaf = X'{}', chain = X'{}' WHERE seq = {}",
            blob(&e.bytes),
            blob(&e.leaf),
            blob(&e.chain),
            e.seq
        ));
    }
    sql("DELETE FROM audit_checkpoints".into());
    let refused = phivault(&data, &["audit", "checkpoint"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("no longer match the checkpoint signed for them"), "{}", text(&refused));
}

/// The running server, finding the trail changed behind its back at a periodic checkpoint,
/// signs nothing and tells the privacy officer: an integrity alert naming the refusal.
#[test]
fn a_server_that_will_not_sign_raises_an_integrity_alert() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let config_path = data.join("phivault.toml");
    let mut config: toml::Table = std::fs::read_to_string(&config_path).expect("config").parse().expect("toml");
    let audit = config.entry("audit").or_insert_with(|| toml::Table::new().into());
    audit.as_table_mut().expect("table").insert("checkpoint_interval_secs".into(), 1.into());
    std::fs::write(&config_path, config.to_string()).expect("config");
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    append(&runtime, &url, 0, 3);

    let server = common::Server::start(&data);
    let witness = data.join("audit/witness.jsonl");
    let signed = || std::fs::read_to_string(&witness).map(|t| t.lines().count()).unwrap_or(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while signed() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(signed() > 0, "the server signed at start");
    // The database owner replaces entry #1 (signed) and its leaf hash; the trail then grows.
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        sqlx::query(
            "UPDATE audit_log SET entry = (SELECT entry FROM audit_log WHERE seq = 0), \
             leaf = (SELECT leaf FROM audit_log WHERE seq = 0) WHERE seq = 1",
        )
        .execute(&pool)
        .await
        .expect("tamper");
        pool.close().await;
    });
    append(&runtime, &url, 3, 1);
    let alerts = || text(&phivault(&data, &["alerts", "list"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !alerts().contains("refusing to sign") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // Further ticks (the alert's own entry grows the trail) find the same refusal.
    std::thread::sleep(std::time::Duration::from_secs(3));
    drop(server);
    let listed = alerts();
    assert!(listed.contains("integrity") && listed.contains("refusing to sign"), "{listed}");
    assert_eq!(listed.matches("refusing to sign").count(), 1, "once per finding, not every tick: {listed}");
}
