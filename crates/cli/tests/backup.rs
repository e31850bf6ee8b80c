//! `phivault backup`, tried as a clinic and as an attacker: a backup restores exactly (every
//! table, file and audit entry; SQLite into SQLite and into PostgreSQL), and every kind of
//! tampering with the repository is refused and named: a flipped byte, a missing chunk, a
//! chunk from elsewhere, an edited, renamed or rolled-back manifest, the wrong key, an
//! interrupted backup.

mod common;

use std::path::{Path, PathBuf};

use common::{phivault, text};
use phivault_backup::DigestSink;

fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A data dir with fake patients (Daffy Duck and friends) and a signed checkpoint.
fn installation(root: &Path) -> PathBuf {
    let data = root.join("live");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let mut paths = Vec::new();
    for (i, b) in phivault_demo::fake_patient_bundles().into_iter().take(3).enumerate() {
        let path = root.join(format!("bundle-{i}.json"));
        std::fs::write(&path, b.to_string()).expect("write");
        paths.push(path);
    }
    for path in &paths {
        let import = phivault(&data, &["import", arg(path)]);
        assert!(import.status.success(), "{}", text(&import));
    }
    let checkpoint = phivault(&data, &["audit", "checkpoint"]);
    assert!(checkpoint.status.success(), "{}", text(&checkpoint));
    data
}

fn digests(url: &str) -> Vec<(String, u64, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let store = phivault_store::SqlStore::connect(url).await.expect("store");
        let mut sink = DigestSink::default();
        store.snapshot(&mut sink).await.expect("snapshot");
        store.close().await;
        let mut out: Vec<_> = sink.tables.into_iter().map(|(s, d)| (s.name, d.rows(), d.to_hex())).collect();
        out.sort();
        out
    })
}

fn sqlite_url(data: &Path) -> String {
    format!("sqlite://{}", data.join("phivault.db").display())
}

/// The audit actions recorded in a data dir's trail, in order (but the exports this reading
/// makes, which are recorded too).
fn audit_actions(data: &Path) -> Vec<(String, String)> {
    let export =
        data.parent().expect("parent").join(format!("export-{}.jsonl", phivault_crypto::random_token(4).expect("rng")));
    let out = phivault(data, &["audit", "export", "--out", arg(&export), "--format", "jsonl"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::read_to_string(&export)
        .expect("export")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let entry = &v["event"];
            (
                entry["action"].as_str().unwrap_or_default().to_owned(),
                entry["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .filter(|(action, _)| action != "cli.audit.export")
        .collect()
}

fn chunk_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for prefix in std::fs::read_dir(repo.join("chunks")).expect("chunks") {
        for chunk in std::fs::read_dir(prefix.expect("dir").path()).expect("prefix") {
            out.push(chunk.expect("chunk").path());
        }
    }
    out.sort();
    out
}

fn manifests(repo: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(repo.join("manifests")).expect("manifests").map(|e| e.expect("entry").path()).collect();
    out.sort();
    out
}

#[test]
fn a_backup_restores_exactly_into_a_new_data_dir_and_the_restored_installation_works() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    let before = digests(&sqlite_url(&live));
    let created = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(created.status.success(), "{}", text(&created));
    assert!(text(&created).contains("Copy it OFF this host"), "the first backup says to escrow the key");
    let key = live.join("backup/backup.key");
    assert!(key.exists());
    // The backup key never goes into a backup, and no chunk holds a record in the clear.
    let needle = "Daffy";
    for chunk in chunk_files(&repo) {
        let bytes = std::fs::read(&chunk).expect("chunk");
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "plaintext in {}", chunk.display());
    }

    let restored = tmp.path().join("restored");
    let out = phivault(&restored, &["backup", "restore", "--from", arg(&repo), "--key", arg(&key)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("verified"), "{}", text(&out));
    // Every table holds exactly what the live one held at the backup (the restore adds its
    // own audit entry, after the backup's).
    let after = digests(&sqlite_url(&restored));
    for (name, rows, digest) in &before {
        let restored_table = after.iter().find(|(n, _, _)| n == name).expect("table restored");
        if name == "audit_log" {
            assert_eq!(restored_table.1, rows + 1, "one more entry: the restore's own");
        } else {
            assert_eq!((&restored_table.1, &restored_table.2), (rows, digest), "table {name}");
        }
    }
    for file in ["keys.json", "policy/default.cedar", "audit/witness.jsonl", "audit/signing.pub", "tls/cert.pem"] {
        if live.join(file).exists() {
            assert_eq!(
                std::fs::read(live.join(file)).expect("live"),
                std::fs::read(restored.join(file)).expect("restored"),
                "{file}"
            );
        }
    }
    assert!(!restored.join("backup/backup.key").exists(), "the backup key is not in the backup");
    // The restored installation opens its records (keys and data keys came back) and its
    // trail verifies against the signed checkpoints; the restore is its last entry.
    let scan = phivault(&restored, &["integrity", "scan"]);
    assert!(scan.status.success(), "{}", text(&scan));
    let verify = phivault(&restored, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let actions = audit_actions(&restored);
    let backed_up = before.iter().find(|(n, _, _)| n == "audit_log").expect("trail").1 as usize;
    let (action, reason) = &actions[backed_up];
    assert_eq!(action, "cli.backup.restore", "the entry after the backed-up trail");
    assert!(reason.contains("restored backup #1"), "{reason}");
    // The live trail records the backup, with its manifest digest.
    assert!(audit_actions(&live).iter().any(|(a, r)| a == "cli.backup.create" && r.contains("manifest sha256")));

    // A second restore into the same place is refused, and leaves it as it was.
    let again = phivault(&restored, &["backup", "restore", "--from", arg(&repo), "--key", arg(&key)]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already holds a phivault configuration"), "{}", text(&again));
    assert!(restored.join("phivault.toml").exists());
}

#[test]
fn an_unchanged_database_adds_almost_nothing_and_every_backup_stays_restorable() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    let first = chunk_files(&repo).len();
    let second = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(second.status.success(), "{}", text(&second));
    // Only what changed (the audit trail's tail: the first backup's own entry) is new.
    assert!(chunk_files(&repo).len() <= first + 2, "{} chunks after {first}", chunk_files(&repo).len());
    let list = phivault(&live, &["backup", "list", "--repo", arg(&repo)]);
    assert!(text(&list).contains("#1") && text(&list).contains("#2"), "{}", text(&list));
    assert!(
        audit_actions(&live).iter().any(|(a, r)| a == "cli.backup.list" && r.ends_with("listed")),
        "reading the list of backups is recorded"
    );
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo), "--read-data"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains("backups: 2 with a valid signature"), "{}", text(&verify));
    let key = live.join("backup/backup.key");
    let older = tmp.path().join("older");
    let name = manifests(&repo)[0].file_name().expect("name").to_string_lossy().into_owned();
    let out = phivault(&older, &["backup", "restore", "--from", arg(&repo), "--key", arg(&key), "--backup", &name]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("restored backup #1"), "{}", text(&out));
}

#[test]
fn a_flipped_byte_a_missing_chunk_or_a_chunk_from_elsewhere_is_named_and_nothing_is_restored() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    let key = live.join("backup/backup.key");
    let chunks = chunk_files(&repo);
    assert!(chunks.len() >= 2);
    let restore = |target: &Path| phivault(target, &["backup", "restore", "--from", arg(&repo), "--key", arg(&key)]);

    // A flipped bit: found by --read-data, and by the restore, which leaves no data dir.
    let victim = &chunks[0];
    let original = std::fs::read(victim).expect("chunk");
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(victim, &flipped).expect("tamper");
    let victim_name = victim.file_name().expect("name").to_string_lossy().into_owned();
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo), "--read-data"]);
    assert!(!verify.status.success());
    assert!(text(&verify).contains(&victim_name) && text(&verify).contains("does not decrypt"), "{}", text(&verify));
    let target = tmp.path().join("t1");
    let out = restore(&target);
    assert!(!out.status.success());
    assert!(text(&out).contains(&victim_name), "{}", text(&out));
    assert!(!target.exists(), "a failed restore leaves nothing behind");

    // Another chunk's valid content under this chunk's name.
    std::fs::copy(&chunks[1], victim).expect("swap");
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo), "--read-data"]);
    assert!(!verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains(&victim_name), "{}", text(&verify));
    assert!(!restore(&tmp.path().join("t2")).status.success());

    // Missing: found without reading data, and the restore refuses before writing.
    std::fs::remove_file(victim).expect("remove");
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo)]);
    assert!(!verify.status.success());
    assert!(
        text(&verify).contains(&format!("chunk {victim_name}")) && text(&verify).contains("missing"),
        "{}",
        text(&verify)
    );
    let target = tmp.path().join("t3");
    let out = restore(&target);
    assert!(!out.status.success());
    assert!(text(&out).contains("incomplete") && text(&out).contains(&victim_name), "{}", text(&out));
    assert!(!target.exists());

    // Put back, all is well again.
    std::fs::write(victim, &original).expect("restore chunk");
    assert!(phivault(&live, &["backup", "verify", "--repo", arg(&repo), "--read-data"]).status.success());
}

#[test]
fn an_edited_renamed_or_rolled_back_manifest_or_a_wrong_key_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    let key = live.join("backup/backup.key");
    let [first, second] = manifests(&repo).try_into().expect("two manifests");
    let second_bytes = std::fs::read(&second).expect("manifest");

    // Edited: one digit of a row count.
    let text_manifest = String::from_utf8(second_bytes.clone()).expect("utf-8");
    let edited = text_manifest.replacen("\"rows\": ", "\"rows\": 1", 1);
    std::fs::write(&second, edited).expect("edit");
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo)]);
    assert!(!verify.status.success());
    assert!(text(&verify).contains("invalid signature"), "{}", text(&verify));
    let out = phivault(&tmp.path().join("t1"), &["backup", "restore", "--from", arg(&repo), "--key", arg(&key)]);
    assert!(!out.status.success() && text(&out).contains("invalid signature"), "{}", text(&out));

    // Rolled back: the newest manifest deleted. The repository alone cannot tell; this
    // installation's record of its newest backup can.
    std::fs::remove_file(&second).expect("roll back");
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo)]);
    assert!(!verify.status.success());
    assert!(text(&verify).contains("rolled back"), "{}", text(&verify));

    // Replaced: the older backup's manifest put in under the newer one's name.
    std::fs::copy(&first, &second).expect("replace");
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo)]);
    assert!(!verify.status.success());
    assert!(text(&verify).contains("another backup's name"), "{}", text(&verify));
    std::fs::write(&second, &second_bytes).expect("put back");
    assert!(phivault(&live, &["backup", "verify", "--repo", arg(&repo)]).status.success());

    // The wrong key: another installation's.
    let other = tmp.path().join("other");
    assert!(phivault(&other, &["init", "--insecure-dev-keys"]).status.success());
    assert!(phivault(&other, &["backup", "create", "--to", arg(&tmp.path().join("other-repo"))]).status.success());
    let out = phivault(
        &tmp.path().join("t2"),
        &["backup", "restore", "--from", arg(&repo), "--key", arg(&other.join("backup/backup.key"))],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("signed by backup key") && text(&out).contains("--key"), "{}", text(&out));
    assert!(!tmp.path().join("t2").exists());
    // And a backup from another repository is not taken as this one's next.
    let foreign = manifests(&tmp.path().join("other-repo")).pop().expect("foreign");
    let verify = phivault(
        &live,
        &[
            "backup",
            "verify",
            "--repo",
            arg(&tmp.path().join("other-repo")),
            "--key",
            arg(&live.join("backup/backup.key")),
        ],
    );
    assert!(!verify.status.success(), "{}", text(&verify));
    assert!(foreign.exists());
}

#[test]
fn an_interrupted_backup_is_never_a_backup_and_prune_clears_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    // What a backup killed before its manifest leaves: chunks nobody names, a temporary file.
    let stray_dir = repo.join("chunks/ff");
    std::fs::create_dir_all(&stray_dir).expect("dir");
    std::fs::write(stray_dir.join("ff".repeat(32)), b"half a chunk").expect("stray");
    std::fs::write(repo.join("manifests/.0000000002-x.tmp"), b"half a manifest").expect("tmp");
    let list = phivault(&live, &["backup", "list", "--repo", arg(&repo)]);
    assert!(!text(&list).contains("#2"), "{}", text(&list));
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo)]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains("1 chunks no backup names"), "{}", text(&verify));
    // A held lock stops a second writer, naming the holder.
    std::fs::write(repo.join("lock"), "backup create by process 1").expect("lock");
    let blocked = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(!blocked.status.success() && text(&blocked).contains("locked"), "{}", text(&blocked));
    std::fs::remove_file(repo.join("lock")).expect("unlock");
    let prune = phivault(&live, &["backup", "prune", "--repo", arg(&repo)]);
    assert!(prune.status.success(), "{}", text(&prune));
    assert!(text(&prune).contains("removed 0 backups and 1 chunks"), "{}", text(&prune));
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo), "--read-data"]);
    assert!(verify.status.success() && !text(&verify).contains("no backup names"), "{}", text(&verify));
    // A directory that is not a repository is not filled with chunks.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::write(home.join("notes.txt"), "x").expect("file");
    let out = phivault(&live, &["backup", "create", "--to", arg(&home)]);
    assert!(!out.status.success() && text(&out).contains("not empty"), "{}", text(&out));
}

#[test]
fn a_drill_restores_compares_and_records_its_rto_and_rpo() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    let drill = phivault(&live, &["backup", "drill", "--repo", arg(&repo)]);
    assert!(drill.status.success(), "{}", text(&drill));
    let out = text(&drill);
    assert!(out.contains("drill passed") && out.contains("RTO") && out.contains("RPO"), "{out}");
    // The audit log changed since the backup (the backup's own entry); the records did not.
    assert!(out.contains("1 changed (audit_log)"), "{out}");
    let actions = audit_actions(&live);
    let (action, reason) = actions.last().expect("entries");
    assert_eq!(action, "cli.backup.drill");
    assert!(reason.contains("RTO") && reason.contains("drill passed"), "{reason}");
    // A drill against a damaged repository fails, and says so in the trail.
    for chunk in chunk_files(&repo) {
        std::fs::remove_file(chunk).expect("remove");
    }
    let failed = phivault(&live, &["backup", "drill", "--repo", arg(&repo)]);
    assert!(!failed.status.success());
    let actions = audit_actions(&live);
    let (action, reason) = actions.last().expect("entries");
    assert_eq!(action, "cli.backup.drill");
    assert!(reason.contains("incomplete"), "{reason}");
}

#[test]
fn a_sqlite_backup_restores_into_postgresql_exactly() {
    let Some(_) = phivault_testkit::postgres_url() else {
        eprintln!("PHIVAULT_TEST_POSTGRES_URL not set: skipping the PostgreSQL restore");
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    let before = digests(&sqlite_url(&live));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (store, _db, url) = runtime.block_on(phivault_testkit::fresh_store("postgres"));
    runtime.block_on(store.close());
    let target = tmp.path().join("on-postgres");
    let key = live.join("backup/backup.key");
    let out = phivault(&target, &["backup", "restore", "--from", arg(&repo), "--key", arg(&key), "--database", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let after = digests(&url);
    for (name, rows, digest) in &before {
        let table = after.iter().find(|(n, _, _)| n == name).expect("table on postgres");
        if name != "audit_log" {
            assert_eq!((&table.1, &table.2), (rows, digest), "table {name} on PostgreSQL");
        }
    }
    assert!(std::fs::read_to_string(target.join("phivault.toml")).expect("config").contains(&url));
    let verify = phivault(&target, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let scan = phivault(&target, &["integrity", "scan"]);
    assert!(scan.status.success(), "{}", text(&scan));
    // A database that is not empty is never restored into.
    let again = phivault(
        &tmp.path().join("again"),
        &["backup", "restore", "--from", arg(&repo), "--key", arg(&key), "--database", &url],
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("not empty"), "{}", text(&again));
}

#[test]
fn a_postgresql_installation_backs_up_online_and_restores_into_sqlite() {
    let Some(_) = phivault_testkit::postgres_url() else {
        eprintln!("PHIVAULT_TEST_POSTGRES_URL not set: skipping the PostgreSQL backup");
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (store, _db, url) = runtime.block_on(phivault_testkit::fresh_store("postgres"));
    runtime.block_on(store.close());
    let live = tmp.path().join("live");
    let init = phivault(&live, &["init", "--insecure-dev-keys", "--database", &url]);
    assert!(init.status.success(), "{}", text(&init));
    let bundle = tmp.path().join("daffy.json");
    std::fs::write(&bundle, phivault_demo::fake_patient_bundles().remove(0).to_string()).expect("write");
    assert!(phivault(&live, &["import", arg(&bundle)]).status.success());
    assert!(phivault(&live, &["audit", "checkpoint"]).status.success());
    let before = digests(&url);
    let repo = tmp.path().join("repo");
    let created = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(created.status.success(), "{}", text(&created));
    let list = phivault(&live, &["backup", "list", "--repo", arg(&repo)]);
    assert!(text(&list).contains("postgres"), "{}", text(&list));

    let target = tmp.path().join("on-sqlite");
    let key = live.join("backup/backup.key");
    // Without --database the restore would go to the live PostgreSQL database: refused.
    let onto_live = phivault(&target, &["backup", "restore", "--from", arg(&repo), "--key", arg(&key)]);
    assert!(!onto_live.status.success() && text(&onto_live).contains("not empty"), "{}", text(&onto_live));
    assert!(!target.exists());
    let out = phivault(
        &target,
        &["backup", "restore", "--from", arg(&repo), "--key", arg(&key), "--database", "sqlite://phivault.db"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let after = digests(&sqlite_url(&target));
    for (name, rows, digest) in &before {
        let table = after.iter().find(|(n, _, _)| n == name).expect("table on sqlite");
        if name != "audit_log" {
            assert_eq!((&table.1, &table.2), (rows, digest), "table {name} on SQLite");
        }
    }
    assert!(phivault(&target, &["audit", "verify"]).status.success());
    assert!(phivault(&target, &["integrity", "scan"]).status.success());
}

#[test]
fn after_a_key_rotation_old_backups_stay_readable_with_the_retired_key_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    let rotated = phivault(&live, &["backup", "rotate-key"]);
    assert!(rotated.status.success(), "{}", text(&rotated));
    assert!(text(&rotated).contains("retired backup key"), "{}", text(&rotated));
    let retired: Vec<PathBuf> = std::fs::read_dir(live.join("backup"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".retired"))
        .collect();
    assert_eq!(retired.len(), 1);
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    // Both backups verify and read with the data dir's keys, current and retired.
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo), "--read-data"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let [first, second] = manifests(&repo).try_into().expect("two");
    let name = |p: &PathBuf| p.file_name().expect("name").to_string_lossy().into_owned();
    let new_key = live.join("backup/backup.key");
    // The new key opens only the new backup; the retired one only the old.
    let out = phivault(
        &tmp.path().join("a"),
        &["backup", "restore", "--from", arg(&repo), "--key", arg(&new_key), "--backup", &name(&first)],
    );
    assert!(!out.status.success() && text(&out).contains("signed by backup key"), "{}", text(&out));
    let out = phivault(
        &tmp.path().join("b"),
        &["backup", "restore", "--from", arg(&repo), "--key", arg(&retired[0]), "--backup", &name(&first)],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = phivault(
        &tmp.path().join("c"),
        &["backup", "restore", "--from", arg(&repo), "--key", arg(&new_key), "--backup", &name(&second)],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Only with the new key given, the old backup is named as unread, not passed.
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo), "--key", arg(&new_key)]);
    assert!(!verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains("not among the keys given"), "{}", text(&verify));
}

#[test]
fn a_backup_taken_while_the_server_runs_and_signs_restores_and_verifies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    // The server signs a checkpoint at start and appends to the witness while it runs.
    let server = common::Server::start(&live);
    for round in 0..3 {
        let created = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
        assert!(created.status.success(), "round {round}: {}", text(&created));
    }
    drop(server);
    let key = live.join("backup/backup.key");
    let restored = tmp.path().join("restored");
    let out = phivault(&restored, &["backup", "restore", "--from", arg(&repo), "--key", arg(&key)]);
    assert!(out.status.success(), "{}", text(&out));
    let verify = phivault(&restored, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn the_restoring_shells_environment_does_not_redirect_a_restore() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    let before = digests(&sqlite_url(&live));
    let restored = tmp.path().join("restored");
    // An operator's shell still pointing at the live installation.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_phivault"))
        .arg("--data-dir")
        .arg(&restored)
        .args(["backup", "restore", "--from", arg(&repo), "--key", arg(&live.join("backup/backup.key"))])
        .env("CI", "true")
        .env("PHIVAULT_DATABASE", sqlite_url(&live))
        .env("PHIVAULT_KEY_FILE", live.join("keys.json"))
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    assert!(restored.join("phivault.db").exists() && restored.join("keys.json").exists());
    let after_live = digests(&sqlite_url(&live));
    let audit = |d: &[(String, u64, String)]| d.iter().find(|(n, _, _)| n == "audit_log").map(|t| t.1);
    // Nothing was restored into the live database (the restore's own entry went to the new one).
    assert_eq!(audit(&after_live), audit(&before));
    for (name, rows, _) in &before {
        if name != "audit_log" {
            assert_eq!(after_live.iter().find(|(n, _, _)| n == name).map(|t| t.1), Some(*rows), "{name}");
        }
    }
}

#[test]
fn a_restored_installation_without_its_backup_key_does_not_start_a_second_series_silently() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    let key = live.join("backup/backup.key");
    let restored = tmp.path().join("restored");
    assert!(phivault(&restored, &["backup", "restore", "--from", arg(&repo), "--key", arg(&key)]).status.success());
    let refused = phivault(&restored, &["backup", "create", "--to", arg(&repo)]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("no backup key"), "{}", text(&refused));
    assert!(!restored.join("backup/backup.key").exists());
    // With the key copied back from escrow, the series goes on.
    std::fs::create_dir_all(restored.join("backup")).expect("dir");
    std::fs::copy(&key, restored.join("backup/backup.key")).expect("copy");
    let created = phivault(&restored, &["backup", "create", "--to", arg(&repo)]);
    assert!(created.status.success(), "{}", text(&created));
    assert!(text(&created).contains("backup #2"), "{}", text(&created));
}

#[test]
fn a_drill_right_after_a_key_rotation_uses_the_retired_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    assert!(phivault(&live, &["backup", "rotate-key"]).status.success());
    let drill = phivault(&live, &["backup", "drill", "--repo", arg(&repo)]);
    assert!(drill.status.success(), "{}", text(&drill));
}

/// Points the data dir's `[backup] repository` at `repo`: `serve` then backs up on its own.
fn schedule_backups(data: &Path, repo: &Path) {
    let path = data.join("phivault.toml");
    let config = std::fs::read_to_string(&path).expect("config");
    let config = config.replacen("[backup]\n", &format!("[backup]\nrepository = \"{}\"\n", repo.display()), 1);
    std::fs::write(&path, config).expect("write config");
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[test]
fn the_server_backs_up_and_drills_on_its_own_schedule_and_alerts_when_it_cannot() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    schedule_backups(&live, &repo);
    let server = common::Server::start(&live);
    // At start: a backup (none exists yet), then a drill (none has run yet).
    wait_for("the scheduled backup", || repo.join("manifests").is_dir() && !manifests(&repo).is_empty());
    let state = live.join("backup/state.json");
    wait_for("the scheduled drill", || std::fs::read_to_string(&state).is_ok_and(|s| s.contains("last_passed_ms")));
    drop(server);
    let actions = audit_actions(&live);
    let created = actions.iter().find(|(a, _)| a == "backup.create").expect("the schedule's backup is recorded");
    assert!(created.1.contains("backup #1"), "{}", created.1);
    let drilled = actions.iter().find(|(a, _)| a == "backup.drill").expect("the schedule's drill is recorded");
    assert!(drilled.1.contains("drill passed"), "{}", drilled.1);
    assert!(phivault(&live, &["backup", "verify", "--repo", arg(&repo), "--read-data"]).status.success());

    // A repository the server cannot write to: the privacy officer hears of it.
    let broken = tmp.path().join("not-a-repository");
    std::fs::create_dir_all(&broken).expect("dir");
    std::fs::write(broken.join("holiday-photos.txt"), "x").expect("file");
    let other = tmp.path().join("other");
    assert!(phivault(&other, &["init", "--insecure-dev-keys"]).status.success());
    schedule_backups(&other, &broken);
    let server = common::Server::start(&other);
    wait_for("the contingency alert", || text(&phivault(&other, &["alerts", "list"])).contains("contingency"));
    drop(server);
    let alerts = text(&phivault(&other, &["alerts", "list"]));
    assert!(alerts.contains("not empty and not a phivault backup repository"), "{alerts}");
    assert!(!broken.join("chunks").exists(), "nothing was written into the wrong directory");
}

#[test]
fn a_configuration_that_climbs_out_of_its_data_dir_is_restored_inside_the_new_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    // The operator keeps the key file beside the data dir, named relative to it.
    std::fs::create_dir_all(tmp.path().join("keys")).expect("dir");
    std::fs::rename(live.join("keys.json"), tmp.path().join("keys/keys.json")).expect("move");
    let config = std::fs::read_to_string(live.join("phivault.toml")).expect("config");
    std::fs::write(
        live.join("phivault.toml"),
        config.replacen("key_file = \"keys.json\"", "key_file = \"../keys/keys.json\"", 1),
    )
    .expect("edit");
    let repo = tmp.path().join("repo");
    let created = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(created.status.success(), "{}", text(&created));
    // Restored beside the live installation, `../keys/keys.json` would be the live key file.
    let restored = tmp.path().join("restored");
    let out = phivault(
        &restored,
        &["backup", "restore", "--from", arg(&repo), "--key", arg(&live.join("backup/backup.key"))],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(restored.join("keys.json").exists(), "the key file lands inside the new data dir");
    assert!(
        std::fs::read_to_string(restored.join("phivault.toml")).expect("config").contains("key_file = \"keys.json\"")
    );
    assert_eq!(std::fs::read_dir(tmp.path().join("keys")).expect("dir").count(), 1, "nothing written beside it");
    assert!(phivault(&restored, &["integrity", "scan"]).status.success());
}

#[test]
fn a_missing_disk_a_rolled_back_repository_or_a_planted_manifest_stops_the_next_backup() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());

    // The backup disk is not mounted: its mount point is an empty folder.
    std::fs::rename(&repo, tmp.path().join("repo-on-the-disk")).expect("unmount");
    std::fs::create_dir_all(&repo).expect("mount point");
    let out = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(!out.status.success() && text(&out).contains("mounted"), "{}", text(&out));
    assert!(std::fs::read_dir(&repo).expect("dir").next().is_none(), "no new repository made in its place");
    std::fs::remove_dir(&repo).expect("rmdir");
    std::fs::rename(tmp.path().join("repo-on-the-disk"), &repo).expect("mount");

    // Rolled back: the newest manifest deleted.
    let newest = manifests(&repo).pop().expect("newest");
    let saved = std::fs::read(&newest).expect("manifest");
    std::fs::remove_file(&newest).expect("roll back");
    let out = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(!out.status.success() && text(&out).contains("rolled back"), "{}", text(&out));
    std::fs::write(&newest, saved).expect("put back");

    // A manifest someone put there, numbered to come last, under a key nobody has.
    let planted = repo.join("manifests/9999999999-planted");
    std::fs::write(&planted, "phivault-backup-manifest/1 0011223344556677 AAAA\n{}").expect("plant");
    let out = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(!out.status.success() && text(&out).contains("does not verify"), "{}", text(&out));
    std::fs::remove_file(&planted).expect("remove");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
}

#[test]
fn a_damaged_chunk_is_written_again_by_the_next_backup_and_a_crashed_holders_lock_is_taken_over() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let repo = tmp.path().join("repo");
    assert!(phivault(&live, &["backup", "create", "--to", arg(&repo)]).status.success());
    let largest = chunk_files(&repo)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("chunk");
    let bytes = std::fs::read(&largest).expect("chunk");
    std::fs::write(&largest, &bytes[..bytes.len() / 2]).expect("truncate");
    assert!(!phivault(&live, &["backup", "verify", "--repo", arg(&repo)]).status.success());
    // A backup process on this host that died holding the lock.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname").trim().to_owned();
    std::fs::write(repo.join("lock"), format!("backup create by process 4194000 on {host} since 2026-12-03T00:00:00Z"))
        .expect("lock");
    let created = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(created.status.success(), "{}", text(&created));
    let verify = phivault(&live, &["backup", "verify", "--repo", arg(&repo), "--read-data"]);
    assert!(verify.status.success(), "the rewritten chunk repairs both backups: {}", text(&verify));
    assert!(!repo.join("lock").exists());
}

#[test]
fn a_table_made_by_hand_is_left_out_and_named_so_the_backup_still_restores() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let pool = phivault_testkit::raw_pool(&sqlite_url(&live)).await;
        sqlx::raw_sql("CREATE TABLE clinic_notes (id INTEGER PRIMARY KEY, text TEXT)")
            .execute(&pool)
            .await
            .expect("create");
        pool.close().await;
    });
    let repo = tmp.path().join("repo");
    let created = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(created.status.success(), "{}", text(&created));
    assert!(text(&created).contains("left out tables that are not phivault's: clinic_notes"), "{}", text(&created));
    let out = phivault(
        &tmp.path().join("restored"),
        &["backup", "restore", "--from", arg(&repo), "--key", arg(&live.join("backup/backup.key"))],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_backup_whose_audit_entry_cannot_be_written_never_appears() {
    let tmp = tempfile::tempdir().expect("tmp");
    let live = installation(tmp.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // The trail refuses every new entry (a full disk, a broken audit store).
    let refuse = |on: bool| {
        runtime.block_on(async {
            let pool = phivault_testkit::raw_pool(&sqlite_url(&live)).await;
            let sql = if on {
                "CREATE TRIGGER trail_down BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'trail down'); END"
            } else {
                "DROP TRIGGER trail_down"
            };
            sqlx::raw_sql(sql).execute(&pool).await.expect("trigger");
            pool.close().await;
        })
    };
    refuse(true);
    let repo = tmp.path().join("repo");
    let out = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(!out.status.success());
    assert!(text(&out).contains("was not stored"), "{}", text(&out));
    assert!(manifests(&repo).is_empty(), "no backup exists without its entry");
    refuse(false);
    // Its chunks are unreferenced; the next backup is #1 and verifies.
    let created = phivault(&live, &["backup", "create", "--to", arg(&repo)]);
    assert!(created.status.success() && text(&created).contains("backup #1"), "{}", text(&created));
    assert!(phivault(&live, &["backup", "verify", "--repo", arg(&repo), "--read-data"]).status.success());
}
