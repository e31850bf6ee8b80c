//! Signed checkpoints: "the log had N entries with Merkle root R at time T", signed with an
//! Ed25519 key kept outside the database, so that whoever controls the database cannot
//! rewrite history (or drop its tail) without the signatures failing.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::merkle::Hash;

/// A checkpoint and its signature. Serialized as one JSON line in the witness file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub tree_size: u64,
    /// Hex of the Merkle root of the first `tree_size` entries.
    pub root: String,
    /// Hex of the hash chain value after entry `tree_size - 1`.
    pub chain: String,
    pub time_ms: i64,
    /// Base64 of the Ed25519 public key's first 8 bytes, to pick the key.
    pub key_id: String,
    /// Base64 Ed25519 signature over [`Checkpoint::signed_text`].
    pub signature: String,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Option<Hash> {
    // Exactly 64 lower-case hex digits: one spelling per hash (`from_str_radix` alone would
    // also take "+f" and upper case).
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Parses a witness file: one checkpoint (JSON) per line, blank lines ignored. A line that
/// is not a checkpoint is refused by its 1-based line number in the file.
pub fn parse_witness(text: &str) -> Result<Vec<Checkpoint>, usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| serde_json::from_str(line).map_err(|_| i + 1))
        .collect()
}

/// Parses a public-key file: the base64 (standard alphabet, padded) of the 32 raw bytes of
/// an Ed25519 public key, surrounding whitespace ignored.
pub fn parse_public_key(text: &str) -> Option<Vec<u8>> {
    B64.decode(text.trim()).ok().filter(|key| key.len() == 32)
}

/// The id checkpoints carry for the key that signed them: base64 of its first 8 bytes.
pub fn key_id_of(public_key: &[u8]) -> String {
    B64.encode(&public_key[..public_key.len().min(8)])
}

/// The checkpoints that name `public_key` and whose signatures verify under it: the only
/// ones any command relies on (a checkpoint's `key_id` is not signed, so both are checked).
pub fn signed_by<'a>(checkpoints: &'a [Checkpoint], public_key: &'a [u8]) -> impl Iterator<Item = &'a Checkpoint> {
    let ours = key_id_of(public_key);
    checkpoints.iter().filter(move |c| c.key_id == ours && c.verify(public_key))
}

impl Checkpoint {
    /// The exact bytes that are signed (documented in docs/AUDIT.md).
    pub fn signed_text(tree_size: u64, root: &str, chain: &str, time_ms: i64) -> String {
        format!("phivault audit checkpoint v1\nsize {tree_size}\nroot {root}\nchain {chain}\ntime_ms {time_ms}\n")
    }

    /// Whether the signature verifies under `public_key` (32 raw bytes).
    pub fn verify(&self, public_key: &[u8]) -> bool {
        let Ok(sig) = B64.decode(&self.signature) else { return false };
        let text = Self::signed_text(self.tree_size, &self.root, &self.chain, self.time_ms);
        UnparsedPublicKey::new(&ED25519, public_key).verify(text.as_bytes(), &sig).is_ok()
    }
}

/// The checkpoint signing key.
pub struct CheckpointSigner {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner").field("key_id", &self.key_id()).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("audit signing key: {0}")]
pub struct KeyError(&'static str);

impl CheckpointSigner {
    /// A new key and its PKCS#8 document (to store outside the database).
    pub fn generate() -> Result<(Self, Vec<u8>), KeyError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError("cannot generate"))?;
        let bytes = pkcs8.as_ref().to_vec();
        Ok((Self::from_pkcs8(&bytes)?, bytes))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, KeyError> {
        Ok(Self { key: Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError("not an Ed25519 PKCS#8 key"))? })
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    pub fn key_id(&self) -> String {
        key_id_of(&self.public_key())
    }

    /// Signs other statements made with this key (an archive run's, [`crate::archive`]);
    /// each has its own first line, so no signature stands for another kind.
    pub(crate) fn sign_bytes(&self, text: &[u8]) -> Vec<u8> {
        self.key.sign(text).as_ref().to_vec()
    }

    pub fn sign(&self, tree_size: u64, root: &Hash, chain: &Hash, time_ms: i64) -> Checkpoint {
        let (root, chain) = (hex(root), hex(chain));
        let signature = self.key.sign(Checkpoint::signed_text(tree_size, &root, &chain, time_ms).as_bytes());
        Checkpoint { tree_size, root, chain, time_ms, key_id: self.key_id(), signature: B64.encode(signature.as_ref()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field() {
        let (signer, pkcs8) = CheckpointSigner::generate().expect("key");
        let again = CheckpointSigner::from_pkcs8(&pkcs8).expect("reload");
        assert_eq!(signer.public_key(), again.public_key());
        let cp = signer.sign(10, &[1; 32], &[2; 32], 1_800_000_000_000);
        assert!(cp.verify(&signer.public_key()));
        for forged in [
            Checkpoint { tree_size: 9, ..cp.clone() },
            Checkpoint { root: hex(&[3; 32]), ..cp.clone() },
            Checkpoint { chain: hex(&[3; 32]), ..cp.clone() },
            Checkpoint { time_ms: 1, ..cp.clone() },
        ] {
            assert!(!forged.verify(&signer.public_key()));
        }
        let (other, _) = CheckpointSigner::generate().expect("key");
        assert!(!cp.verify(&other.public_key()), "another key");
        assert_eq!(unhex(&hex(&[7; 32])), Some([7; 32]));
        assert_eq!(unhex("zz"), None);
    }
}
