//! The Merkle tree of RFC 6962 (Certificate Transparency) over audit entries: leaf and node
//! hashes are domain-separated (0x00 / 0x01 prefixes), so a leaf can never pass for a node.
//! Inclusion proofs show one entry is in a tree of a given size and root; consistency proofs
//! show a later tree extends an earlier one without changing it (append-only).

use aws_lc_rs::digest::{Context, SHA256};

pub type Hash = [u8; 32];

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    sha256(&[&[0u8], entry])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[1u8], left, right])
}

/// The hash chain link after `previous`: `SHA-256(previous || leaf)`. The chain lets a
/// verifier name the first bad entry when a stored leaf hash was rewritten as well.
pub fn chain_hash(previous: &Hash, leaf: &Hash) -> Hash {
    sha256(&[previous, leaf])
}

/// The chain value before the first entry.
pub const CHAIN_START: Hash = [0u8; 32];

/// Largest power of two strictly below `n` (n >= 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The Merkle tree hash of `leaves` (leaf hashes), RFC 6962 section 2.1.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        _ => {
            // Iterative: hash level by level, carrying an odd node up unchanged; this gives
            // the same tree as the recursive definition (left subtrees are perfect).
            let mut level: Vec<Hash> = leaves.to_vec();
            while level.len() > 1 {
                let mut next = Vec::with_capacity(level.len().div_ceil(2));
                for pair in level.chunks(2) {
                    next.push(if pair.len() == 2 { node_hash(&pair[0], &pair[1]) } else { pair[0] });
                }
                level = next;
            }
            level[0]
        }
    }
}

/// Builds the tree leaf by leaf, keeping only the roots of its perfect subtrees (at most
/// one per bit of the size): the root at any size costs O(log n), so a verifier checks many
/// checkpoints in one pass over the log.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    /// (subtree size, subtree root), largest first.
    stack: Vec<(u64, Hash)>,
    size: u64,
}

impl Accumulator {
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (1u64, leaf);
        while let Some(&(size, top)) = self.stack.last() {
            if size != node.0 {
                break;
            }
            self.stack.pop();
            node = (size * 2, node_hash(&top, &node.1));
        }
        self.stack.push(node);
        self.size += 1;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The Merkle tree hash of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut r)) = iter.next() else { return sha256(&[]) };
        for (_, left) in iter {
            r = node_hash(left, &r);
        }
        r
    }
}

/// Audit path for leaf `index` in `leaves` (RFC 6962 PATH).
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 || index >= n {
        return Vec::new();
    }
    let k = split(n);
    if index < k {
        let mut p = inclusion_proof(index, &leaves[..k]);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = inclusion_proof(index - k, &leaves[k..]);
        p.push(root(&leaves[..k]));
        p
    }
}

/// Proof that the tree of the first `old_size` leaves is a prefix of `leaves` (RFC 6962 PROOF).
pub fn consistency_proof(old_size: usize, leaves: &[Hash]) -> Vec<Hash> {
    if old_size == 0 || old_size >= leaves.len() {
        return Vec::new();
    }
    subproof(old_size, leaves, true)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete { Vec::new() } else { vec![root(leaves)] };
    }
    let k = split(n);
    if m <= k {
        let mut p = subproof(m, &leaves[..k], complete);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = subproof(m - k, &leaves[k..], false);
        p.push(root(&leaves[..k]));
        p
    }
}

/// Verifies an inclusion proof (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], expected_root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *expected_root
}

/// Verifies a consistency proof between two tree heads (RFC 9162 section 2.1.4.2).
pub fn verify_consistency(old_size: u64, new_size: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect()
    }

    fn recursive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => sha256(&[]),
            1 => leaves[0],
            n => {
                let k = split(n);
                node_hash(&recursive_root(&leaves[..k]), &recursive_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn iterative_root_matches_the_rfc_definition() {
        for n in 0..70 {
            assert_eq!(root(&leaves(n)), recursive_root(&leaves(n)), "n={n}");
        }
    }

    #[test]
    fn accumulator_matches_root_at_every_size() {
        let l = leaves(130);
        let mut acc = Accumulator::default();
        assert_eq!(acc.root(), root(&[]));
        for (i, leaf) in l.iter().enumerate() {
            acc.push(*leaf);
            assert_eq!(acc.root(), root(&l[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn matches_rfc6962_empty_and_single_leaf_vectors() {
        let empty = root(&[]);
        assert_eq!(empty[..4], [0xe3, 0xb0, 0xc4, 0x42]);
        // The leaf hash of the empty entry, as in RFC 6962 test vectors.
        assert_eq!(leaf_hash(b"")[..4], [0x6e, 0x34, 0x0b, 0x9c]);
    }

    #[test]
    fn every_inclusion_proof_verifies_and_wrong_ones_do_not() {
        for n in 1..40usize {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let proof = inclusion_proof(i, &l);
                assert!(verify_inclusion(i as u64, n as u64, &l[i], &proof, &r), "n={n} i={i}");
                let other = leaf_hash(b"forged");
                assert!(!verify_inclusion(i as u64, n as u64, &other, &proof, &r));
                if n > 1 {
                    assert!(
                        !verify_inclusion(((i + 1) % n) as u64, n as u64, &l[i], &proof, &r) || l[i] == l[(i + 1) % n]
                    );
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_rewritten_history_does_not() {
        for n in 1..34usize {
            let l = leaves(n);
            for m in 1..=n {
                let proof = consistency_proof(m, &l);
                assert!(verify_consistency(m as u64, n as u64, &root(&l[..m]), &root(&l), &proof), "m={m} n={n}");
                if m < n {
                    let mut rewritten = l.clone();
                    rewritten[m - 1] = leaf_hash(b"rewritten");
                    let proof = consistency_proof(m, &rewritten);
                    assert!(
                        !verify_consistency(m as u64, n as u64, &root(&l[..m]), &root(&rewritten), &proof),
                        "a changed old entry must break consistency (m={m} n={n})"
                    );
                }
            }
        }
    }
}
