//! An archive run's signed statement. `phivault audit archive` empties the content of the
//! oldest entries (their hashes stay); the verifier accepts missing content only inside a range
//! such a statement names. The statement is signed with the checkpoint key, which the database
//! owner does not hold (it is sealed under the key file or kept in the HSM), so an
//! `audit.archive` entry appended by whoever controls the database does not excuse content it
//! removed. It names the checkpoint the run relied on, so it holds only for this trail.

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::checkpoint::{CheckpointSigner, unhex};
use crate::event::{AuditEvent, Outcome};

/// What an archive run signs: entries `first..=last` were moved to an archive file, all of
/// them covered by the checkpoint of `size` entries with Merkle root `root` (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveStatement {
    pub first: u64,
    pub last: u64,
    pub size: u64,
    pub root: String,
}

impl ArchiveStatement {
    /// The exact bytes signed (docs/AUDIT.md §6); distinct from a checkpoint's text, so
    /// neither signature can stand for the other.
    pub fn signed_text(&self) -> String {
        format!(
            "phivault audit archive v1\nfirst {}\nlast {}\nsize {}\nroot {}\n",
            self.first, self.last, self.size, self.root
        )
    }

    /// The `reason` of the `audit.archive` entry that records the run.
    pub fn reason(&self, signer: &CheckpointSigner) -> String {
        let signature = B64.encode(signer.sign_bytes(self.signed_text().as_bytes()));
        format!(
            "entries #{}..#{} moved to an archive file; checkpoint {} {}; signature {signature}",
            self.first, self.last, self.size, self.root
        )
    }

    /// Reads a reason written by [`ArchiveStatement::reason`] and checks its signature under
    /// `public_key`; `None` unless it parses exactly, names a well-formed range inside the
    /// checkpoint, and the signature verifies.
    pub fn from_signed_reason(reason: &str, public_key: &[u8]) -> Option<Self> {
        let rest = reason.strip_prefix("entries #")?;
        let (range, rest) = rest.split_once(" moved to an archive file; checkpoint ")?;
        let (first, last) = range.split_once("..#")?;
        let (size, rest) = rest.split_once(' ')?;
        let (root, signature) = rest.split_once("; signature ")?;
        let statement =
            Self { first: decimal(first)?, last: decimal(last)?, size: decimal(size)?, root: root.to_owned() };
        unhex(&statement.root)?;
        if statement.first > statement.last || statement.last >= statement.size {
            return None;
        }
        let signature = B64.decode(signature).ok()?;
        UnparsedPublicKey::new(&ED25519, public_key).verify(statement.signed_text().as_bytes(), &signature).ok()?;
        Some(statement)
    }
}

/// An `audit.archive` entry's signed statement, if `event` (at `position` in the trail) is
/// one that counts: a successful run whose reason carries a statement signed under
/// `public_key`, recorded after the checkpoint it names (a run can only rely on a
/// checkpoint that already exists). Whether that checkpoint verifies is the caller's to check.
pub fn archive_claim(event: &AuditEvent, position: u64, public_key: &[u8]) -> Option<ArchiveStatement> {
    if event.action != "audit.archive" || event.outcome != Outcome::Success {
        return None;
    }
    ArchiveStatement::from_signed_reason(event.reason.as_deref()?, public_key).filter(|s| position >= s.size)
}

/// How far content may be missing: one past the largest `last` of the `claims` whose named
/// checkpoint `verified` accepts (0 if none). A run archives everything before its `last`
/// that earlier runs had not, and a later run may archive an earlier run's own record, so
/// each statement vouches for every position up to its `last`.
pub fn vouched_end(claims: &[ArchiveStatement], verified: impl Fn(u64, &str) -> bool) -> u64 {
    claims.iter().filter(|c| verified(c.size, &c.root)).map(|c| c.last + 1).max().unwrap_or(0)
}

/// An unsigned decimal in its one spelling: digits only, no sign, no leading zero.
fn decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::hex;

    #[test]
    fn only_the_key_holder_can_excuse_missing_content() {
        let (signer, _) = CheckpointSigner::generate().expect("key");
        let (other, _) = CheckpointSigner::generate().expect("key");
        let statement = ArchiveStatement { first: 0, last: 9, size: 12, root: hex(&[7; 32]) };
        let reason = statement.reason(&signer);
        assert_eq!(ArchiveStatement::from_signed_reason(&reason, &signer.public_key()), Some(statement.clone()));
        assert_eq!(ArchiveStatement::from_signed_reason(&reason, &other.public_key()), None, "another key");
        // The unsigned form older versions wrote, and a widened range under a copied signature.
        assert_eq!(
            ArchiveStatement::from_signed_reason("entries #0..#9 moved to an archive file", &signer.public_key()),
            None
        );
        let widened = reason.replace("#0..#9", "#0..#11");
        assert_eq!(ArchiveStatement::from_signed_reason(&widened, &signer.public_key()), None);
        // Other spellings of the same numbers, and ranges outside the checkpoint.
        for bad in ["#+0..#9", "#00..#9", "#0..#09"] {
            let respelled = reason.replace("#0..#9", bad);
            assert_eq!(ArchiveStatement::from_signed_reason(&respelled, &signer.public_key()), None, "{bad}");
        }
        let outside = ArchiveStatement { first: 0, last: 12, size: 12, root: hex(&[7; 32]) };
        assert_eq!(ArchiveStatement::from_signed_reason(&outside.reason(&signer), &signer.public_key()), None);
    }
}
