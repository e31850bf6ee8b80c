//! The audit export and witness files, as `phivault-audit-verify` reads them.

use std::sync::OnceLock;

use phivault_audit::checkpoint::{CheckpointSigner, parse_public_key, parse_witness};
use phivault_audit::export::{export_line, parse_line};
use phivault_audit::merkle::{Accumulator, CHAIN_START, chain_hash, leaf_hash};
use phivault_audit::{AuditEvent, Outcome, StoredEntry, verify};

/// An honest trail of six entries with signed checkpoints at sizes 3 and 6.
struct Honest {
    public_key: Vec<u8>,
    entries: Vec<StoredEntry>,
    export: String,
    witness: String,
}

/// An honest trail of `n` read entries signed by `signer` at each size in `signed_at`: the
/// entries, their verifier export (one line each) and the witness file.
pub fn honest_trail(signer: &CheckpointSigner, n: u64, signed_at: &[u64]) -> (Vec<StoredEntry>, String, String) {
    let mut entries = Vec::new();
    let mut witness = String::new();
    let mut tree = Accumulator::default();
    let mut chain = CHAIN_START;
    for i in 0..n {
        let mut event = AuditEvent::new(1_800_000_000_000 + i as i64, "read", Outcome::Success, "node-a");
        event.resource_ids = vec![format!("Patient/p{i}")];
        let bytes = event.canonical_bytes();
        let leaf = leaf_hash(&bytes);
        chain = chain_hash(&chain, &leaf);
        tree.push(leaf);
        entries.push(StoredEntry { seq: i, bytes, leaf, chain });
        if signed_at.contains(&tree.size()) {
            let cp = signer.sign(tree.size(), &tree.root(), &chain, 1_800_000_100_000 + i as i64);
            witness.push_str(&serde_json::to_string(&cp).expect("json"));
            witness.push('\n');
        }
    }
    let export = entries.iter().map(export_line).collect::<Vec<_>>().join("\n");
    (entries, export, witness)
}

fn honest() -> &'static Honest {
    static HONEST: OnceLock<Honest> = OnceLock::new();
    HONEST.get_or_init(|| {
        let (signer, _) = CheckpointSigner::generate().expect("key");
        let (entries, export, witness) = honest_trail(&signer, 6, &[3, 6]);
        Honest { public_key: signer.public_key(), entries, export, witness }
    })
}

fn same(a: &[StoredEntry], b: &[StoredEntry]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| (x.seq, &x.bytes, x.leaf, x.chain) == (y.seq, &y.bytes, y.leaf, y.chain))
}

/// Even first byte: a log and a witness made up whole (split at a NUL) — no checkpoint of
/// them may verify under a key nobody used. Odd: the honest files with bytes overwritten at
/// chosen places — the verifier may call the result intact only if every entry a verified
/// checkpoint covers is still the honest one.
pub fn audit_trail(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let honest = honest();
    let _ = std::str::from_utf8(rest).map(parse_public_key);
    let (log, witness) = if mode % 2 == 0 {
        let (log, witness) = crate::split_nul(rest);
        (String::from_utf8_lossy(log).into_owned(), String::from_utf8_lossy(witness.unwrap_or_default()).into_owned())
    } else {
        let mut log = honest.export.clone().into_bytes();
        let mut witness = honest.witness.clone().into_bytes();
        for edit in rest.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([edit[0], edit[1]]));
            let file = if at % 2 == 0 { &mut log } else { &mut witness };
            let at = (at / 2) % file.len();
            file[at] = edit[2];
        }
        (String::from_utf8_lossy(&log).into_owned(), String::from_utf8_lossy(&witness).into_owned())
    };
    // A malformed line stops the verifier (it says so); only well-formed files go on.
    let Some(entries) = log.lines().map(parse_line).collect::<Option<Vec<_>>>() else { return };
    let Ok(checkpoints) = parse_witness(&witness) else { return };
    let report = verify(entries.clone(), &checkpoints, &honest.public_key);
    if mode % 2 == 0 {
        assert_eq!(report.checkpoints_verified, 0, "a made-up checkpoint verified");
        return;
    }
    if report.is_intact() {
        let covered = usize::try_from(report.verified_size).unwrap_or(usize::MAX);
        let prefix = |e: &[StoredEntry]| e[..covered.min(e.len())].to_vec();
        assert!(
            entries.len() >= covered && same(&prefix(&entries), &prefix(&honest.entries)),
            "a changed trail was called intact with {} checkpoints verified",
            report.checkpoints_verified
        );
    }
}
