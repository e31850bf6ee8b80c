//! The standalone verifier binary, as an auditor runs it: an export, a witness file and a
//! public key; exit 0 when intact, 1 naming the first bad entry, 2 on unusable input, 3 when
//! no checkpoint verifies under the key.

use std::io::Write;
use std::process::Command;

use base64::Engine;
use phivault_audit::merkle::{Accumulator, CHAIN_START, chain_hash, leaf_hash};
use phivault_audit::{AuditEvent, CheckpointSigner, Outcome, StoredEntry};

fn entries(n: u64) -> Vec<StoredEntry> {
    let mut chain = CHAIN_START;
    (0..n)
        .map(|i| {
            let mut e = AuditEvent::new(1_800_000_000_000 + i as i64, "read", Outcome::Success, "node-a");
            e.resource_ids = vec![format!("Patient/p{i}")];
            let bytes = e.canonical_bytes();
            let leaf = leaf_hash(&bytes);
            chain = chain_hash(&chain, &leaf);
            StoredEntry { seq: i, bytes, leaf, chain }
        })
        .collect()
}

fn write_lines(path: &std::path::Path, lines: impl IntoIterator<Item = String>) {
    let mut f = std::fs::File::create(path).expect("create");
    for l in lines {
        writeln!(f, "{l}").expect("write");
    }
}

fn run(dir: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_phivault-audit-verify"))
        .args(["--log", "export.jsonl", "--witness", "witness.jsonl", "--public-key", "signing.pub"])
        .current_dir(dir)
        .output()
        .expect("run verifier");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn verifies_an_export_and_names_the_first_bad_entry() {
    let dir = tempfile::tempdir().expect("dir");
    let (signer, _) = CheckpointSigner::generate().expect("key");
    std::fs::write(
        dir.path().join("signing.pub"),
        base64::engine::general_purpose::STANDARD.encode(signer.public_key()),
    )
    .expect("key");
    let log = entries(25);
    let mut tree = Accumulator::default();
    for e in &log {
        tree.push(e.leaf);
    }
    let cp = signer.sign(25, &tree.root(), &log[24].chain, 1);
    write_lines(&dir.path().join("witness.jsonl"), [serde_json::to_string(&cp).expect("json")]);
    write_lines(&dir.path().join("export.jsonl"), log.iter().map(phivault_audit::export::export_line));
    let (code, out) = run(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("entries: 25") && out.contains("checkpoints verified: 1 of 1") && out.contains("intact"));

    let mut tampered = log.clone();
    tampered[12].bytes =
        String::from_utf8(tampered[12].bytes.clone()).expect("utf8").replace("p12", "p99").into_bytes();
    write_lines(&dir.path().join("export.jsonl"), tampered.iter().map(phivault_audit::export::export_line));
    let (code, out) = run(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("first bad entry #12"), "{out}");

    write_lines(&dir.path().join("export.jsonl"), log[..20].iter().map(phivault_audit::export::export_line));
    let (code, out) = run(dir.path());
    assert_eq!(code, 1);
    assert!(out.contains("truncated"), "{out}");

    std::fs::write(dir.path().join("signing.pub"), "not a key").expect("write");
    assert_eq!(run(dir.path()).0, 2);
}

/// The review's case for the standalone verifier: with no checkpoint that verifies under the
/// auditor's key (witness emptied, or signed by someone else's key), a consistent hash chain
/// is not "intact": whoever controls the database can recompute it. Exit 3, as
/// `phivault audit verify`.
#[test]
fn without_a_checkpoint_under_the_key_the_verdict_is_not_verified() {
    let dir = tempfile::tempdir().expect("dir");
    let (auditor, _) = CheckpointSigner::generate().expect("key");
    let (someone_else, _) = CheckpointSigner::generate().expect("key");
    std::fs::write(
        dir.path().join("signing.pub"),
        base64::engine::general_purpose::STANDARD.encode(auditor.public_key()),
    )
    .expect("key");
    let log = entries(5);
    write_lines(&dir.path().join("export.jsonl"), log.iter().map(phivault_audit::export::export_line));
    write_lines(&dir.path().join("witness.jsonl"), []);
    let (code, out) = run(dir.path());
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("NOT verified") && !out.contains("intact"), "{out}");

    let mut tree = Accumulator::default();
    for e in &log {
        tree.push(e.leaf);
    }
    let foreign = someone_else.sign(5, &tree.root(), &log[4].chain, 1);
    write_lines(&dir.path().join("witness.jsonl"), [serde_json::to_string(&foreign).expect("json")]);
    let (code, out) = run(dir.path());
    assert_eq!(code, 3, "a checkpoint under another key vouches for nothing: {out}");

    // A hash has one spelling: an export line whose leaf is written in upper case is
    // malformed, not a second form of the same entry.
    let signed = auditor.sign(5, &tree.root(), &log[4].chain, 1);
    write_lines(&dir.path().join("witness.jsonl"), [serde_json::to_string(&signed).expect("json")]);
    assert_eq!(run(dir.path()).0, 0, "the honest files verify");
    let mut lines: Vec<String> = log.iter().map(phivault_audit::export::export_line).collect();
    let leaf = phivault_audit::checkpoint::hex(&log[2].leaf);
    lines[2] = lines[2].replace(&leaf, &leaf.to_uppercase());
    assert_ne!(lines[2], phivault_audit::export::export_line(&log[2]), "the leaf has letters to raise");
    write_lines(&dir.path().join("export.jsonl"), lines);
    let (code, out) = run(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 3 of the export is malformed"), "{out}");
}
