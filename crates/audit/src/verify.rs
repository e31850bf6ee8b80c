//! Verifying a copy of the log: every entry's bytes, leaf hash and chain link in order, and
//! every signed checkpoint against the entries. Finds edited, deleted, inserted and reordered
//! entries and a truncated tail, and names the first bad entry.

use crate::archive::{ArchiveStatement, archive_claim, vouched_end};
use crate::checkpoint::{Checkpoint, hex, unhex};
use crate::event::AuditEvent;
use crate::merkle::{Accumulator, CHAIN_START, Hash, chain_hash, leaf_hash};

/// One stored entry as read back: its position and what the database holds for it.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub seq: u64,
    pub bytes: Vec<u8>,
    pub leaf: Hash,
    pub chain: Hash,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// Entries whose content was archived (moved to an archive file) and not supplied: their
    /// leaf hashes were checked against the chain and the checkpoints, their content not.
    pub archived: u64,
    /// Checkpoints whose signature and tree both verified.
    pub checkpoints_verified: usize,
    /// The largest tree size a verified checkpoint covers (0 if none): the entries before it
    /// are vouched for by a signature.
    pub verified_size: u64,
    /// Checkpoints naming another signing key (another deployment's, or a node set up with
    /// its own key): not checked, and said so.
    pub checkpoints_other_keys: usize,
    /// The first problem, if any: the entry position it concerns, and what is wrong.
    pub first_problem: Option<(u64, String)>,
    /// The Merkle root over all entries read.
    pub root: String,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.first_problem.is_none()
    }

    /// Whether a signature vouches for what was read: at least one checkpoint verified under
    /// the key, or nothing to vouch for. Without it "intact" means only that the hash chain
    /// is consistent, which whoever controls the database can make it.
    pub fn is_verified(&self) -> bool {
        self.entries == 0 || self.checkpoints_verified > 0
    }
}

/// Consecutive positions `(first, last)` inclusive, merged as they are added in order.
#[derive(Default)]
struct Runs(Vec<(u64, u64)>);

impl Runs {
    fn add(&mut self, position: u64) {
        match self.0.last_mut() {
            Some((_, last)) if *last + 1 == position => *last = position,
            _ => self.0.push((position, position)),
        }
    }
}

/// Verifies `entries` (in stored order) against `checkpoints` signed by `public_key`.
pub fn verify(entries: impl IntoIterator<Item = StoredEntry>, checkpoints: &[Checkpoint], public_key: &[u8]) -> Report {
    // Only checkpoints that name this key are checked; one that names it but does not verify
    // is a problem. (The key id is not signed: renaming a checkpoint's key hides it no
    // better than deleting it, which the witness copies are there to catch.)
    let ours = crate::checkpoint::key_id_of(public_key);
    let (mut sorted, others): (Vec<&Checkpoint>, Vec<&Checkpoint>) = checkpoints.iter().partition(|c| c.key_id == ours);
    sorted.sort_by_key(|c| c.tree_size);
    let mut pending = sorted.into_iter().peekable();
    let mut problem: Option<(u64, String)> = None;
    let mut verified = 0;
    let mut last_good = 0u64;
    // (size, root) of each checkpoint that verified: an archive statement counts only if the
    // checkpoint it names is one of them.
    let mut good: Vec<(u64, String)> = Vec::new();
    let mut tree = Accumulator::default();
    let mut previous = CHAIN_START;
    let mut check = |cp: &Checkpoint, tree: &Accumulator, chain: &Hash, problem: &mut Option<(u64, String)>| {
        let size = cp.tree_size;
        if !cp.verify(public_key) {
            problem.get_or_insert((
                size.saturating_sub(1),
                format!("the checkpoint at size {size} has an invalid signature"),
            ));
        } else if unhex(&cp.root).is_some_and(|r| r == tree.root()) && unhex(&cp.chain).is_some_and(|c| c == *chain) {
            verified += 1;
            last_good = size;
            good.push((size, cp.root.clone()));
        } else if last_good >= size {
            // Another validly signed checkpoint of this size matched: the key signed two
            // different trees of one size (a fork), not a changed range.
            problem.get_or_insert((
                size.saturating_sub(1),
                format!("two validly signed checkpoints at size {size} sign different trees (a fork of the trail)"),
            ));
        } else {
            problem.get_or_insert((
                last_good,
                format!("entries #{last_good}..#{} differ from what the checkpoint at size {size} signed", size - 1),
            ));
        }
    };
    // Size-0 checkpoints (a server started on an empty trail signs one) vouch for no entry,
    // so they never count as verified; but one that names this key must still verify and
    // sign the empty tree, or it is a forgery like any other.
    while let Some(cp) = pending.next_if(|cp| cp.tree_size == 0) {
        if !cp.verify(public_key) {
            problem.get_or_insert((0, "the checkpoint at size 0 has an invalid signature".to_owned()));
        } else if cp.root != hex(&Accumulator::default().root()) || cp.chain != hex(&CHAIN_START) {
            problem.get_or_insert((0, "the checkpoint at size 0 signs a tree that is not empty".to_owned()));
        }
    }
    let mut archived = 0u64;
    // Where content is missing, and what signed archive runs recorded: content may be missing
    // only there (an `audit.archive` entry is written before the content is removed; archive
    // files given back fill some of it, so the missing part need not be a prefix).
    let mut emptied = Runs::default();
    let mut claims: Vec<ArchiveStatement> = Vec::new();
    for (expected, entry) in entries.into_iter().enumerate() {
        let expected = expected as u64;
        let mut note = |why: String| {
            if problem.is_none() {
                problem = Some((expected, why));
            }
        };
        if entry.seq != expected {
            note(format!("entry #{expected} is missing or out of order (found #{})", entry.seq));
        }
        // Empty content is an archived entry: its stored leaf must still fit the chain and the
        // signed trees, and a signed archive run must name it (checked after the walk).
        let leaf = if entry.bytes.is_empty() {
            emptied.add(expected);
            archived += 1;
            entry.leaf
        } else {
            let leaf = leaf_hash(&entry.bytes);
            match AuditEvent::from_canonical(&entry.bytes) {
                None => note(format!("entry #{expected} is not a well-formed audit event")),
                Some(event) => claims.extend(archive_claim(&event, expected, public_key)),
            }
            if leaf != entry.leaf {
                note(format!("entry #{expected} was changed (its content does not match its hash)"));
            }
            leaf
        };
        let chain = chain_hash(&previous, &leaf);
        if chain != entry.chain {
            note(format!("entry #{expected} breaks the hash chain (changed, inserted or reordered)"));
        }
        previous = chain;
        tree.push(leaf);
        let mut batch: Vec<&Checkpoint> = Vec::new();
        while let Some(cp) = pending.next_if(|cp| cp.tree_size <= tree.size()) {
            if cp.tree_size == tree.size() {
                batch.push(cp);
            }
        }
        // Of several checkpoints of one size, the ones matching the stored trail first: then
        // a validly signed other tree of that size is named as the fork it is, whatever the
        // order the checkpoints came in.
        let root = hex(&tree.root());
        batch.sort_by_key(|cp| !(cp.root == root && unhex(&cp.chain).is_some_and(|c| c == chain)));
        for cp in batch {
            check(cp, &tree, &chain, &mut problem);
        }
    }
    let entries_read = tree.size();
    let covered_end = vouched_end(&claims, |size, root| good.iter().any(|(s, r)| *s == size && r == root));
    let uncovered = emptied.0.iter().find(|(_, last)| *last >= covered_end).map(|&(f, l)| (f.max(covered_end), l));
    if let Some((first, last)) = uncovered {
        problem.get_or_insert((
            first,
            format!(
                "the content of entries #{first}..#{last} was removed, but no signed archive run recorded in the trail covers them"
            ),
        ));
    }
    for cp in pending {
        if !cp.verify(public_key) {
            problem.get_or_insert((
                cp.tree_size - 1,
                format!("the checkpoint at size {} has an invalid signature", cp.tree_size),
            ));
            continue;
        }
        problem.get_or_insert((
            entries_read,
            format!("the log was truncated: a checkpoint signed {} entries, {entries_read} remain", cp.tree_size),
        ));
    }
    Report {
        entries: entries_read,
        archived,
        checkpoints_verified: verified,
        verified_size: last_good,
        checkpoints_other_keys: others.len(),
        first_problem: problem,
        root: hex(&tree.root()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointSigner;
    use crate::event::Outcome;

    #[test]
    fn a_size_zero_checkpoint_is_checked_but_vouches_for_nothing() {
        let (signer, _) = CheckpointSigner::generate().expect("key");
        let (other, _) = CheckpointSigner::generate().expect("key");
        let empty = Accumulator::default().root();
        let honest = signer.sign(0, &empty, &CHAIN_START, 1);
        let report = verify(Vec::new(), std::slice::from_ref(&honest), &signer.public_key());
        assert!(report.is_intact() && report.checkpoints_verified == 0, "{report:?}");
        let entries = log(3);
        let report = verify(entries.clone(), std::slice::from_ref(&honest), &signer.public_key());
        assert!(report.is_intact() && !report.is_verified(), "nothing vouches for the three entries");
        // One naming this key but signed by another, and one signing a non-empty tree at size 0.
        let mut forged = other.sign(0, &empty, &CHAIN_START, 1);
        forged.key_id = honest.key_id.clone();
        let report = verify(entries.clone(), &[forged], &signer.public_key());
        assert!(report.first_problem.is_some_and(|(_, why)| why.contains("invalid signature")));
        let lying = signer.sign(0, &entries[0].leaf, &CHAIN_START, 1);
        let report = verify(entries, &[lying], &signer.public_key());
        assert!(report.first_problem.is_some_and(|(_, why)| why.contains("not empty")));
    }

    fn log(n: usize) -> Vec<StoredEntry> {
        let mut previous = CHAIN_START;
        (0..n)
            .map(|i| {
                let mut e = AuditEvent::new(1_800_000_000_000 + i as i64, "read", Outcome::Success, "node-a");
                e.resource_ids = vec![format!("Patient/p{i}")];
                let bytes = e.canonical_bytes();
                let leaf = leaf_hash(&bytes);
                let chain = chain_hash(&previous, &leaf);
                previous = chain;
                StoredEntry { seq: i as u64, bytes, leaf, chain }
            })
            .collect()
    }

    /// Rewrites hashes from `from` on, as an attacker with database rights would.
    fn rehash(entries: &mut [StoredEntry]) {
        let mut previous = CHAIN_START;
        for (i, e) in entries.iter_mut().enumerate() {
            e.seq = i as u64;
            e.leaf = leaf_hash(&e.bytes);
            e.chain = chain_hash(&previous, &e.leaf);
            previous = e.chain;
        }
    }

    fn checkpoint(signer: &CheckpointSigner, entries: &[StoredEntry], size: usize) -> Checkpoint {
        let leaves: Vec<Hash> = entries[..size].iter().map(|e| e.leaf).collect();
        signer.sign(size as u64, &crate::merkle::root(&leaves), &entries[size - 1].chain, 1)
    }

    fn edited(e: &StoredEntry) -> Vec<u8> {
        String::from_utf8(e.bytes.clone()).expect("utf8").replace("\"read\"", "\"update\"").into_bytes()
    }

    /// The review found a fork reported as the impossible range "#39..#38": two validly
    /// signed checkpoints of one size with different trees are named as a fork.
    #[test]
    fn two_signed_trees_of_one_size_are_reported_as_a_fork() {
        let (signer, _) = CheckpointSigner::generate().expect("key");
        let entries = log(40);
        let mut other = log(40);
        other[5].bytes = edited(&other[5]);
        rehash(&mut other);
        let cps = vec![checkpoint(&signer, &entries, 39), checkpoint(&signer, &other, 39)];
        // In either order (the review found the message depended on it).
        for cps in [cps.clone(), cps.into_iter().rev().collect()] {
            let report = verify(entries.clone(), &cps, &signer.public_key());
            let (_, why) = report.first_problem.expect("a problem");
            assert!(why.contains("fork") && !why.contains("#39..#38"), "{why}");
        }
    }

    /// Appends an `audit.archive` entry with `reason`, chained as the log would.
    fn append_archive_entry(entries: &mut Vec<StoredEntry>, reason: String) {
        let mut e = AuditEvent::new(1_900_000_000_000, "audit.archive", Outcome::Success, "node-a");
        e.reason = Some(reason);
        let bytes = e.canonical_bytes();
        let leaf = leaf_hash(&bytes);
        let chain = chain_hash(&entries.last().expect("entries").chain, &leaf);
        entries.push(StoredEntry { seq: entries.len() as u64, bytes, leaf, chain });
    }

    /// Missing content is excused only by an archive run signed with the checkpoint key and
    /// naming a checkpoint that verifies; any part of the archived range may be missing (an
    /// auditor may give back only some archive files).
    #[test]
    fn only_a_signed_archive_run_excuses_missing_content() {
        let (signer, _) = CheckpointSigner::generate().expect("key");
        let (stranger, _) = CheckpointSigner::generate().expect("key");
        let entries = log(20);
        let anchor = checkpoint(&signer, &entries, 20);
        let statement = ArchiveStatement { first: 0, last: 9, size: 20, root: anchor.root.clone() };
        let honest = {
            let mut e = entries.clone();
            append_archive_entry(&mut e, statement.reason(&signer));
            e
        };
        let emptied = |mut e: Vec<StoredEntry>, positions: std::ops::Range<usize>| {
            for entry in &mut e[positions] {
                entry.bytes.clear();
            }
            e
        };
        let key = signer.public_key();
        let cps = |e: &[StoredEntry]| vec![anchor.clone(), checkpoint(&signer, e, e.len())];
        // The run emptied #0..#9; an auditor filled #0..#4 back from one of two files.
        for range in [0..10, 5..10, 3..7] {
            let e = emptied(honest.clone(), range.clone());
            let report = verify(e.clone(), &cps(&e), &key);
            assert!(report.is_intact() && report.archived == range.len() as u64, "{range:?}: {report:?}");
        }
        // Beyond the signed range.
        let e = emptied(honest.clone(), 0..12);
        let (at, why) = verify(e.clone(), &cps(&e), &key).first_problem.expect("found");
        assert!(at == 10 && why.contains("#10..#11") && why.contains("signed archive run"), "{at} {why}");
        // A run signed by another key, and one naming a checkpoint that does not verify.
        let forged_runs = [
            statement.reason(&stranger),
            ArchiveStatement { root: hex(&[9; 32]), ..statement.clone() }.reason(&signer),
        ];
        for reason in forged_runs {
            let mut e = entries.clone();
            append_archive_entry(&mut e, reason);
            let e = emptied(e, 0..10);
            let (at, why) = verify(e.clone(), &cps(&e), &key).first_problem.expect("found");
            assert!(at == 0 && why.contains("#0..#9 was removed"), "{at} {why}");
        }
        // A signed statement in a record that says the run failed excuses nothing either.
        let mut e = entries.clone();
        append_archive_entry(&mut e, statement.reason(&signer));
        let mut failed = AuditEvent::from_canonical(&e[20].bytes).expect("event");
        failed.outcome = Outcome::Failure;
        e[20].bytes = failed.canonical_bytes();
        rehash(&mut e);
        let e = emptied(e, 0..10);
        assert!(verify(e.clone(), &cps(&e), &key).first_problem.is_some_and(|(at, _)| at == 0));
        // A later run archives the first run's own record (#20): its statement vouches for
        // everything up to its `last`, the first run's range included.
        let mut e = honest.clone();
        e.extend(log(30).into_iter().skip(21));
        rehash(&mut e);
        let later_anchor = checkpoint(&signer, &e, 30);
        let later = ArchiveStatement { first: 10, last: 25, size: 30, root: later_anchor.root.clone() };
        append_archive_entry(&mut e, later.reason(&signer));
        let e = emptied(e, 0..26);
        let all = vec![anchor.clone(), later_anchor, checkpoint(&signer, &e, e.len())];
        let report = verify(e, &all, &key);
        assert!(report.is_intact() && report.archived == 26, "{report:?}");
    }

    #[test]
    fn an_intact_log_verifies() {
        let (signer, _) = CheckpointSigner::generate().expect("key");
        let entries = log(50);
        let cps = vec![checkpoint(&signer, &entries, 20), checkpoint(&signer, &entries, 50)];
        let report = verify(entries, &cps, &signer.public_key());
        assert!(report.is_intact(), "{report:?}");
        assert_eq!((report.entries, report.checkpoints_verified), (50, 2));
    }

    #[test]
    fn checkpoints_of_other_keys_are_counted_not_checked_and_ours_must_verify() {
        let (signer, _) = CheckpointSigner::generate().expect("key");
        let (other, _) = CheckpointSigner::generate().expect("another key");
        let entries = log(30);
        let mut cps = vec![checkpoint(&signer, &entries, 10), checkpoint(&other, &entries, 20)];
        let report = verify(entries.clone(), &cps, &signer.public_key());
        assert!(report.is_intact(), "{report:?}");
        assert_eq!((report.checkpoints_verified, report.checkpoints_other_keys), (1, 1));
        // A checkpoint that names our key but was not signed by it is a problem.
        let mut forged = checkpoint(&other, &entries, 30);
        forged.key_id = signer.key_id();
        cps.push(forged);
        let report = verify(entries, &cps, &signer.public_key());
        assert!(report.first_problem.expect("problem").1.contains("invalid signature"));
    }

    #[test]
    fn each_kind_of_tampering_is_found_and_the_first_bad_entry_named() {
        let (signer, _) = CheckpointSigner::generate().expect("key");
        let original = log(50);
        let cps = vec![
            checkpoint(&signer, &original, 10),
            checkpoint(&signer, &original, 30),
            checkpoint(&signer, &original, 50),
        ];
        let key = signer.public_key();
        let first = |entries: Vec<StoredEntry>| verify(entries, &cps, &key).first_problem.map(|(seq, _)| seq);

        // Edited in place, hashes left alone.
        let mut e = original.clone();
        e[17].bytes = edited(&e[17]);
        assert_eq!(first(e), Some(17));
        // Edited with the entry's own leaf hash recomputed: the chain still names it.
        let mut e = original.clone();
        e[17].bytes = edited(&e[17]);
        e[17].leaf = leaf_hash(&e[17].bytes);
        assert_eq!(first(e), Some(17));
        // Deleted.
        let mut e = original.clone();
        e.remove(23);
        assert_eq!(first(e), Some(23));
        // Inserted.
        let mut e = original.clone();
        let mut extra = e[5].clone();
        extra.seq = 6;
        e.insert(6, extra);
        assert_eq!(first(e), Some(6));
        // Reordered.
        let mut e = original.clone();
        e.swap(12, 13);
        assert_eq!(first(e), Some(12));
        // Truncated tail.
        let mut e = original.clone();
        e.truncate(40);
        let report = verify(e, &cps, &key);
        assert_eq!(report.first_problem.as_ref().map(|p| p.0), Some(40));
        assert!(report.first_problem.expect("problem").1.contains("truncated"));
        // Edited and every hash after it recomputed: only the checkpoints can tell, and
        // they bound the entry to the span after the last checkpoint that still holds.
        let mut e = original.clone();
        e[17].bytes = edited(&e[17]);
        rehash(&mut e);
        let report = verify(e, &cps, &key);
        let (seq, why) = report.first_problem.expect("found");
        assert_eq!(seq, 10, "{why}");
        assert!(why.contains("#10..#29"), "{why}");
        // A forged checkpoint.
        let mut forged = cps.clone();
        forged[0].tree_size = 11;
        assert!(!verify(original.clone(), &forged, &key).is_intact());
    }
}
