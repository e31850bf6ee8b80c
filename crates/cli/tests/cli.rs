//! The binary as an operator uses it: sealed key file, import, key rotation, refusals.

mod common;

use common::{phivault_with, text};

use std::path::Path;
use std::process::Command;

const PASSPHRASE: &str = "correct horse battery staple";

fn demo_bundle_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("daffy.json");
    let bundle = phivault_demo::fake_patient_bundles().into_iter().next().expect("bundle");
    std::fs::write(&path, bundle.to_string()).expect("write bundle");
    path
}

#[test]
fn sealed_init_import_rotate_and_status() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let init = phivault_with(&data, &["init"], Some(PASSPHRASE));
    assert!(init.status.success(), "{}", text(&init));
    let out = text(&init);
    assert!(out.contains("bootstrap administrator: admin  password: "), "{out}");
    let key_file = std::fs::read_to_string(data.join("keys.json")).expect("key file");
    assert!(key_file.contains("\"kind\": \"passphrase\""), "sealed by default");

    let wrong = phivault_with(&data, &["keys", "status"], Some("not the passphrase at all"));
    assert!(!wrong.status.success());
    assert!(text(&wrong).contains("wrong passphrase"), "{}", text(&wrong));
    let missing = phivault_with(&data, &["keys", "status"], None);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("PHIVAULT_PASSPHRASE"), "{}", text(&missing));

    let bundle = demo_bundle_file(tmp.path());
    let import = phivault_with(&data, &["import", bundle.to_str().expect("path")], Some(PASSPHRASE));
    assert!(import.status.success(), "{}", text(&import));
    assert!(text(&import).contains("0 failed"), "{}", text(&import));

    let rotate = phivault_with(&data, &["keys", "rotate"], Some(PASSPHRASE));
    assert!(rotate.status.success(), "{}", text(&rotate));
    assert!(text(&rotate).contains("re-wrapped 1 data keys"), "{}", text(&rotate));
    let status = phivault_with(&data, &["keys", "status"], Some(PASSPHRASE));
    let status_text = text(&status);
    assert!(status_text.contains("current") && status_text.contains("retired"), "{status_text}");

    // Records imported before the rotation still import-match (conditional) and read after it.
    let again = phivault_with(&data, &["import", bundle.to_str().expect("path")], Some(PASSPHRASE));
    assert!(again.status.success(), "{}", text(&again));
}

#[test]
fn refusals_are_readable() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let no_config = phivault_with(&data, &["serve"], None);
    assert!(!no_config.status.success());
    assert!(text(&no_config).contains("run `phivault init"), "{}", text(&no_config));

    // A failing init leaves nothing behind, so it can simply be run again.
    let unreachable = phivault_with(
        &data,
        &["init", "--insecure-dev-keys", "--database", "postgres://postgres@127.0.0.1:1/none"],
        None,
    );
    assert!(!unreachable.status.success());
    assert!(text(&unreachable).contains("cannot create the database"), "{}", text(&unreachable));
    let leftovers: Vec<_> =
        std::fs::read_dir(&data).expect("dir").filter_map(Result::ok).map(|e| e.file_name()).collect();
    assert!(leftovers.iter().all(|name| name == "tls"), "half-made data dir: {leftovers:?}");

    assert!(phivault_with(&data, &["init", "--insecure-dev-keys"], None).status.success());
    let twice = phivault_with(&data, &["init", "--insecure-dev-keys"], None);
    assert!(!twice.status.success());
    assert!(text(&twice).contains("refusing to overwrite"));

    let shred = phivault_with(&data, &["keys", "shred-patient", "p1"], None);
    assert!(!shred.status.success());
    assert!(text(&shred).contains("--yes"));

    let bad_file = tmp.path().join("broken.json");
    std::fs::write(&bad_file, "{\"resourceType\": \"Bundle\", \"type\": ").expect("write");
    let import = phivault_with(&data, &["import", bad_file.to_str().expect("path")], None);
    assert!(!import.status.success());
    assert!(text(&import).contains("not valid JSON"), "{}", text(&import));

    let config = std::fs::read_to_string(data.join("phivault.toml")).expect("config");
    std::fs::write(
        data.join("phivault.toml"),
        config.replace("listen = \"127.0.0.1:8443\"", "listen = \"everywhere please\""),
    )
    .expect("write");
    let garbled = phivault_with(&data, &["serve"], None);
    assert!(!garbled.status.success());
    assert!(text(&garbled).contains("server.listen must be an address"), "{}", text(&garbled));
}

#[test]
fn keys_in_softhsm_init_import_and_rotate() {
    const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
    if !Path::new(MODULE).exists() {
        assert!(
            std::env::var_os("PHIVAULT_TEST_SOFTHSM").is_none(),
            "PHIVAULT_TEST_SOFTHSM is set but SoftHSM2 is missing"
        );
        eprintln!("SoftHSM2 is not installed: skipping");
        return;
    }
    let label = format!("phivault-cli-{}", std::process::id());
    let made = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", &label, "--pin", "246810", "--so-pin", "13579"])
        .output()
        .expect("softhsm2-util");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("softhsm2-util").args(["--delete-token", "--token", &self.0]).output();
        }
    }
    let _cleanup = Cleanup(label.clone());

    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let with_pin = |args: &[&str], pin: &str| {
        Command::new(env!("CARGO_BIN_EXE_phivault"))
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("CI", "true")
            .env("PHIVAULT_HSM_PIN", pin)
            .env_remove("PHIVAULT_PASSPHRASE")
            .output()
            .expect("run phivault")
    };
    let init = with_pin(&["init", "--hsm-module", MODULE, "--hsm-token", &label], "246810");
    assert!(init.status.success(), "{}", text(&init));
    let key_file = std::fs::read_to_string(data.join("keys.json")).expect("key file");
    assert!(key_file.contains("pkcs11") && key_file.contains(&label), "{key_file}");

    let wrong = with_pin(&["keys", "status"], "000000");
    assert!(!wrong.status.success(), "wrong PIN must fail");
    let bundle = demo_bundle_file(tmp.path());
    let import = with_pin(&["import", bundle.to_str().expect("path")], "246810");
    assert!(import.status.success(), "{}", text(&import));
    let rotate = with_pin(&["keys", "rotate"], "246810");
    assert!(rotate.status.success(), "{}", text(&rotate));
    assert!(text(&rotate).contains("re-wrapped 1 data keys"), "{}", text(&rotate));
    let status = with_pin(&["keys", "status"], "246810");
    assert!(text(&status).contains("retired"), "{}", text(&status));
}

#[test]
fn user_administration_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let init = phivault_with(&data, &["init", "--insecure-dev-keys"], None);
    assert!(init.status.success(), "{}", text(&init));
    assert!(text(&init).contains("bootstrap administrator: admin  password: "), "{}", text(&init));

    let add =
        phivault_with(&data, &["user", "add", "daffy", "--name", "Dr Daffy Duck", "--roles", "physician,nurse"], None);
    assert!(add.status.success(), "{}", text(&add));
    assert!(text(&add).contains("temporary password:"), "{}", text(&add));
    assert!(text(&add).contains("roles:                physician,nurse"), "{}", text(&add));

    let list = phivault_with(&data, &["user", "list"], None);
    let listing = text(&list);
    assert!(listing.contains("admin") && listing.contains("daffy"), "{listing}");
    assert!(!listing.contains("argon2"));

    let lock = phivault_with(&data, &["user", "lock", "daffy"], None);
    assert!(text(&lock).contains("status:               locked"), "{}", text(&lock));
    let unlock = phivault_with(&data, &["user", "unlock", "daffy"], None);
    assert!(text(&unlock).contains("status:               active"), "{}", text(&unlock));
    let reset = phivault_with(&data, &["user", "reset-password", "daffy"], None);
    assert!(text(&reset).contains("temporary password: "), "{}", text(&reset));
    let off = phivault_with(&data, &["user", "deactivate", "daffy"], None);
    assert!(text(&off).contains("status:               deactivated"), "{}", text(&off));

    // Bad input: a clear message and a failure status, never a panic.
    for (args, expected) in [
        (vec!["user", "add", "porky", "--name", "Porky Pig", "--roles", "surgeon"], "unknown role \"surgeon\""),
        (vec!["user", "add", "daffy", "--name", "Daffy again", "--roles", "nurse"], "username is taken"),
        (vec!["user", "add", "porky", "--name", "Porky Pig", "--roles", "patient"], "must name its Patient id"),
        (vec!["user", "show", "nobody"], "no such user"),
        (vec!["user", "unlock", "daffy"], "cannot be unlocked"),
    ] {
        let out = phivault_with(&data, &args, None);
        assert!(!out.status.success(), "{args:?} should fail");
        let message = text(&out);
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(!message.contains("panicked"), "{message}");
    }

    // Every command above, refused ones included, is in the audit trail.
    assert!(phivault_with(&data, &["audit", "checkpoint"], None).status.success());
    let verify = phivault_with(&data, &["audit", "verify"], None);
    // Eleven commands, with `init`'s entry before them and the checkpoint's own after.
    assert!(text(&verify).contains("entries: 13") && text(&verify).contains("intact"), "{}", text(&verify));
    // Activity review: filters combine.
    let search = |args: &[&str]| {
        let mut all = vec!["audit", "search"];
        all.extend_from_slice(args);
        phivault_with(&data, &all, None)
    };
    let locks = search(&["--action", "cli.user.lock"]);
    assert_eq!(String::from_utf8_lossy(&locks.stdout).lines().count(), 1, "{}", text(&locks));
    // Accounts by id, as everywhere in the trail; a mistyped or unknown account as a marker,
    // never as typed.
    let daffy = text(&add).lines().find_map(|l| l.strip_prefix("id:")).map(str::trim).expect("id").to_owned();
    assert!(text(&locks).contains(&format!("\"target\":\"user:{daffy}\"")), "{}", text(&locks));
    let shows = search(&["--action", "cli.user.show"]);
    assert!(
        text(&shows).contains("\"target\":\"user:unknown\"") && !text(&shows).contains("nobody"),
        "{}",
        text(&shows)
    );
    let failures = search(&["--outcome", "failure"]);
    assert_eq!(String::from_utf8_lossy(&failures.stdout).lines().count(), 5, "{}", text(&failures));
    let later = search(&["--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(String::from_utf8_lossy(&later.stdout).lines().count(), 0);
    assert!(text(&search(&["--since", "yesterday"])).contains("RFC 3339"));
    assert!(text(&search(&["--outcome", "maybe"])).contains("success, denied or failure"));
}

#[test]
fn demo_creates_one_account_per_role_with_distinct_temporary_passwords() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty_samples = tmp.path().join("no-samples");
    std::fs::create_dir_all(&empty_samples).expect("dir");
    let demo_dir = tmp.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_phivault"))
        .args(["demo", "--no-serve", "--demo-dir"])
        .arg(&demo_dir)
        .arg("--samples")
        .arg(&empty_samples)
        .env("CI", "true")
        .output()
        .expect("run");
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    let passwords: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("  ") && l.split_whitespace().count() == 3)
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(passwords.len(), 8, "admin, six staff roles and one patient: {printed}");
    let mut unique = passwords.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "no shared passwords");
    let list = phivault_with(&demo_dir, &["user", "list"], None);
    for user in
        ["admin", "dr-demo", "nurse-demo", "desk-demo", "billing-demo", "research-demo", "privacy-demo", "patient-demo"]
    {
        assert!(text(&list).contains(user), "{user} missing: {}", text(&list));
    }
}

#[test]
fn the_audit_signing_key_is_sealed_under_the_key_file_and_a_copied_data_dir_cannot_sign() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault_with(&data, &["init"], Some(PASSPHRASE)).status.success());
    let sealed = data.join("audit/signing.key.sealed");
    let bytes = std::fs::read(&sealed).expect("sealed key");
    assert!(bytes.starts_with(b"phivault-sealed-audit-signing-key/1\n"), "sealed, not PKCS#8");
    assert!(!data.join("audit/signing.key").exists(), "no plaintext key in the data dir");
    assert!(phivault_audit::CheckpointSigner::from_pkcs8(&bytes).is_err());

    // The data dir alone (no passphrase) cannot sign; with it, it can.
    let wrong = phivault_with(&data, &["audit", "checkpoint"], Some("not the passphrase at all"));
    assert!(!wrong.status.success() && text(&wrong).contains("wrong passphrase"), "{}", text(&wrong));
    let signed = phivault_with(&data, &["audit", "checkpoint"], Some(PASSPHRASE));
    assert!(text(&signed).contains("signed checkpoint"), "{}", text(&signed));

    // A key sealed under another installation's key file is refused, not used.
    let other = tmp.path().join("other");
    assert!(phivault_with(&other, &["init", "--insecure-dev-keys"], None).status.success());
    std::fs::copy(other.join("audit/signing.key.sealed"), &sealed).expect("swap in a foreign key");
    let foreign = phivault_with(&data, &["audit", "checkpoint"], Some(PASSPHRASE));
    assert!(!foreign.status.success(), "{}", text(&foreign));
    assert!(text(&foreign).contains("sealed under another key file"), "{}", text(&foreign));

    // A plaintext key an older version left is sealed at first use and its plaintext removed;
    // checkpoints it signs verify under the public key already published.
    let (legacy, pkcs8) = phivault_audit::CheckpointSigner::generate().expect("key");
    std::fs::remove_file(other.join("audit/signing.key.sealed")).expect("rm");
    std::fs::write(other.join("audit/signing.key"), &pkcs8).expect("legacy key");
    let public = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, legacy.public_key());
    std::fs::write(other.join("audit/signing.pub"), format!("{public}\n")).expect("pub");
    let migrated = phivault_with(&other, &["audit", "checkpoint"], None);
    assert!(text(&migrated).contains("removed the plaintext"), "{}", text(&migrated));
    assert!(!other.join("audit/signing.key").exists() && other.join("audit/signing.key.sealed").exists());
    let verified = phivault_with(&other, &["audit", "verify"], None);
    assert!(verified.status.success(), "{}", text(&verified));
    // A plaintext copy that reappears beside the sealed key (a restored backup) is removed.
    std::fs::write(other.join("audit/signing.key"), &pkcs8).expect("plaintext copy");
    let cleaned = phivault_with(&other, &["audit", "checkpoint"], None);
    assert!(text(&cleaned).contains("removed a plaintext copy"), "{}", text(&cleaned));
    assert!(!other.join("audit/signing.key").exists());
}

#[test]
fn audit_checkpoint_and_verify_find_tampering() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault_with(&data, &["init", "--insecure-dev-keys"], None).status.success());
    assert!(data.join("audit/signing.key.sealed").exists() && data.join("audit/signing.pub").exists());
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    common::append_reads(&runtime, &url, 0, 10);
    let cp = phivault_with(&data, &["audit", "checkpoint"], None);
    // `init`'s entry and the ten reads; the checkpoint's own entry follows.
    assert!(text(&cp).contains("signed checkpoint: 11 entries"), "{}", text(&cp));
    let ok = phivault_with(&data, &["audit", "verify"], None);
    assert!(ok.status.success() && text(&ok).contains("the audit trail is intact"), "{}", text(&ok));
    // The export the standalone verifier reads: one parseable line per entry, and the same
    // verdict from the export, the witness file and the public key alone.
    let export = tmp.path().join("export.jsonl");
    let exported = phivault_with(&data, &["audit", "export", "--out", export.to_str().expect("utf8")], None);
    assert!(text(&exported).contains("exported 12 entries"), "{}", text(&exported));
    let lines: Vec<phivault_audit::StoredEntry> = std::fs::read_to_string(&export)
        .expect("export")
        .lines()
        .map(|l| phivault_audit::export::parse_line(l).expect("line"))
        .collect();
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
    assert!(phivault_audit::verify(lines, &witness, &key).is_intact());
    let again = phivault_with(&data, &["audit", "export", "--out", export.to_str().expect("utf8")], None);
    assert!(!again.status.success(), "an export is never overwritten");
    let proof = phivault_with(&data, &["audit", "prove", "4"], None);
    assert!(text(&proof).contains("entry #4 is included in the signed tree"), "{}", text(&proof));
    assert!(text(&proof).contains("proof[3]: "), "an 11-entry tree needs 4 proof hashes: {}", text(&proof));
    assert!(!phivault_with(&data, &["audit", "prove", "11"], None).status.success(), "not yet checkpointed");

    let tamper = |sql: &'static str| {
        runtime.block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
            sqlx::raw_sql(sql).execute(&pool).await.expect("tamper");
            pool.close().await;
        })
    };
    // The database owner deletes the checkpoints and the last three entries: the witness
    // file still holds the checkpoint, so the truncation shows.
    tamper("DELETE FROM audit_checkpoints; DELETE FROM audit_log WHERE seq >= 7");
    let cut = phivault_with(&data, &["audit", "verify"], None);
    assert!(!cut.status.success());
    assert!(text(&cut).contains("truncated") && text(&cut).contains("#7"), "{}", text(&cut));
    tamper("UPDATE audit_log SET entry = (SELECT entry FROM audit_log WHERE seq = 0) WHERE seq = 3");
    let edited = phivault_with(&data, &["audit", "verify"], None);
    assert!(text(&edited).contains("first bad entry #3"), "{}", text(&edited));
    assert!(!phivault_with(&data, &["audit", "prove", "3"], None).status.success(), "a changed entry has no proof");
}

/// The review's attack on the verifier: remove every checkpoint the auditor's key could
/// check (empty the witness, delete the database's), then truncate the log. The hash chain
/// alone still "verifies", since whoever controls the database can recompute it, so the
/// verdict must be "not verified", with its own exit code, never "intact".
#[test]
fn audit_verify_fails_closed_when_no_checkpoint_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault_with(&data, &["init", "--insecure-dev-keys"], None).status.success());
    for name in ["daffy", "porky", "tweety"] {
        let out = phivault_with(&data, &["user", "add", name, "--name", "Fake Person", "--roles", "nurse"], None);
        assert!(out.status.success(), "{}", text(&out));
    }
    // A registered client is named in its entry (the id is only known once it exists).
    let added = phivault_with(
        &data,
        &[
            "client",
            "add",
            "--name",
            "Fake App",
            "--redirect-uri",
            "https://app.example/cb",
            "--scopes",
            "patient/*.rs",
        ],
        None,
    );
    assert!(added.status.success(), "{}", text(&added));
    let recorded = phivault_with(&data, &["audit", "search", "--action", "cli.client.add"], None);
    assert!(text(&recorded).contains("\"target\":\"client:"), "{}", text(&recorded));
    assert!(phivault_with(&data, &["audit", "checkpoint"], None).status.success());
    // A second one (the first's own entry makes the trail grow), for a rollback to drop.
    assert!(phivault_with(&data, &["audit", "checkpoint"], None).status.success());
    let honest = phivault_with(&data, &["audit", "verify"], None);
    assert!(honest.status.success() && text(&honest).contains("intact"), "{}", text(&honest));
    assert!(text(&honest).contains("--public-key"), "an unpinned verdict says what it cannot prove");
    assert!(!text(&honest).contains("warning: the witness file"), "{}", text(&honest));
    // A witness rolled back (its last line dropped), emptied or deleted while the database
    // keeps its checkpoints: not intact, unless nodes sharing a trail keep partial witnesses.
    let witness_path = data.join("audit/witness.jsonl");
    let kept = std::fs::read_to_string(&witness_path).expect("witness");
    let lines: Vec<&str> = kept.lines().collect();
    assert!(lines.len() >= 2, "{kept}");
    let rolled_back = lines[..lines.len() - 1].join("\n") + "\n";
    for (how, witness) in [("rolled back", Some(rolled_back.as_str())), ("emptied", Some("")), ("deleted", None)] {
        match witness {
            Some(text) => std::fs::write(&witness_path, text).expect("roll back"),
            None => std::fs::remove_file(&witness_path).expect("delete"),
        }
        let out = phivault_with(&data, &["audit", "verify"], None);
        assert_eq!(out.status.code(), Some(1), "{how}: {}", text(&out));
        assert!(text(&out).contains("NOT intact: the witness file") && !text(&out).contains("is intact"), "{how}");
        let partial = phivault_with(&data, &["audit", "verify", "--allow-partial-witness"], None);
        assert!(partial.status.success() && text(&partial).contains("warning: the witness file"), "{how}");
    }
    // Nor does the signer sign on the database's word alone once the witness is gone.
    let signing = phivault_with(&data, &["audit", "checkpoint"], None);
    assert!(!signing.status.success() && text(&signing).contains("witness file"), "{}", text(&signing));
    std::fs::write(&witness_path, kept).expect("restore");

    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // Re-labelled checkpoints (another key id) are not checkpoints of this key.
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        sqlx::raw_sql("UPDATE audit_checkpoints SET key_id = 'someone-else'").execute(&pool).await.expect("tamper");
        pool.close().await;
    });
    let witness = data.join("audit/witness.jsonl");
    let relabelled = std::fs::read_to_string(&witness).expect("witness").replace("\"key_id\":\"", "\"key_id\":\"x");
    std::fs::write(&witness, relabelled).expect("witness");
    let out = phivault_with(&data, &["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("NOT verified") && !text(&out).contains("is intact"), "{}", text(&out));

    // No checkpoints at all, and the log cut short.
    std::fs::write(&witness, "").expect("empty witness");
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        sqlx::raw_sql("DELETE FROM audit_checkpoints; DELETE FROM audit_log WHERE seq >= 2")
            .execute(&pool)
            .await
            .expect("tamper");
        pool.close().await;
    });
    let out = phivault_with(&data, &["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("NOT verified"), "{}", text(&out));
}
