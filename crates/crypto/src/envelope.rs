//! Envelope encryption of one record: AES-256-GCM under a data key, with the record's
//! identity as associated data so a ciphertext only opens in the row it was written for.

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};

use crate::{CryptoError, SecretKey};

/// Bytes of the random nonce stored in front of each ciphertext.
pub const NONCE_LEN: usize = 12;
/// Bytes of the GCM authentication tag stored after each ciphertext.
pub const TAG_LEN: usize = 16;

/// An unwrapped data key: encrypts the records of one patient or one resource type.
#[derive(Debug, Clone)]
pub struct DataKey {
    /// The key id recorded beside every ciphertext it produced.
    pub id: String,
    pub(crate) key: SecretKey,
}

impl DataKey {
    /// A fresh random data key with the given id.
    pub fn generate(id: impl Into<String>) -> Result<Self, CryptoError> {
        Ok(Self { id: id.into(), key: SecretKey::generate()? })
    }
}

/// What a ciphertext is bound to. Every field goes into the AEAD's associated data, so a
/// ciphertext copied to another row (other type, id, version or key) fails to open.
#[derive(Debug, Clone, Copy)]
pub struct AssociatedData<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
    pub version: i64,
}

impl AssociatedData<'_> {
    fn encode(&self, key_id: &str) -> Vec<u8> {
        // Length-prefixed fields: no two distinct tuples encode to the same bytes.
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"phivault/record/v1");
        for field in [self.resource_type.as_bytes(), self.id.as_bytes(), key_id.as_bytes()] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&self.version.to_be_bytes());
        out
    }
}

/// Encrypts `plaintext` under `key`, returning `nonce || ciphertext || tag`.
pub fn seal(key: &DataKey, ad: AssociatedData<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    seal_raw(&key.key, &ad.encode(&key.id), plaintext)
}

/// Decrypts what [`seal`] produced. Any change to the bytes, or a different row identity,
/// yields [`CryptoError::TamperedCiphertext`], never garbage.
pub fn open(key: &DataKey, ad: AssociatedData<'_>, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    open_raw(&key.key, &ad.encode(&key.id), sealed)
}

pub(crate) fn seal_raw(key: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let sealing = RandomizedNonceKey::new(&AES_256_GCM, key.expose())?;
    let mut in_out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    in_out.extend_from_slice(plaintext);
    let nonce = sealing.seal_in_place_append_tag(Aad::from(aad), &mut in_out)?;
    let mut out = Vec::with_capacity(NONCE_LEN + in_out.len());
    out.extend_from_slice(nonce.as_ref());
    out.extend_from_slice(&in_out);
    Ok(out)
}

pub(crate) fn open_raw(key: &SecretKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::TamperedCiphertext);
    }
    let opening = RandomizedNonceKey::new(&AES_256_GCM, key.expose())?;
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::TamperedCiphertext)?;
    let mut in_out = body.to_vec();
    let plain_len =
        opening.open_in_place(nonce, Aad::from(aad), &mut in_out).map_err(|_| CryptoError::TamperedCiphertext)?.len();
    in_out.truncate(plain_len);
    Ok(in_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(version: i64) -> AssociatedData<'static> {
        AssociatedData { resource_type: "Patient", id: "p1", version }
    }

    #[test]
    fn round_trip() {
        let key = DataKey::generate("dk-1").expect("rng");
        let sealed = seal(&key, ad(1), b"Daffy Duck").expect("seal");
        assert_eq!(open(&key, ad(1), &sealed).expect("open"), b"Daffy Duck");
        assert!(!sealed.windows(5).any(|w| w == b"Daffy"), "plaintext visible in ciphertext");
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let key = DataKey::generate("dk-1").expect("rng");
        let sealed = seal(&key, ad(1), b"MRN 123456789").expect("seal");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(matches!(open(&key, ad(1), &bad), Err(CryptoError::TamperedCiphertext)), "byte {i}");
        }
    }

    #[test]
    fn ciphertext_moved_to_another_row_does_not_open() {
        let key = DataKey::generate("dk-1").expect("rng");
        let sealed = seal(&key, ad(1), b"x").expect("seal");
        assert!(open(&key, ad(2), &sealed).is_err(), "other version");
        let other_id = AssociatedData { resource_type: "Patient", id: "p2", version: 1 };
        assert!(open(&key, other_id, &sealed).is_err(), "other id");
        let other_type = AssociatedData { resource_type: "Observation", id: "p1", version: 1 };
        assert!(open(&key, other_type, &sealed).is_err(), "other type");
        let other_key = DataKey { id: "dk-2".into(), key: key.key.clone() };
        assert!(open(&other_key, ad(1), &sealed).is_err(), "other key id");
        let wrong_key = DataKey::generate("dk-1").expect("rng");
        assert!(open(&wrong_key, ad(1), &sealed).is_err(), "wrong key");
    }

    #[test]
    fn truncated_input_is_refused_not_panicking() {
        let key = DataKey::generate("dk-1").expect("rng");
        for len in 0..(NONCE_LEN + TAG_LEN) {
            assert!(open(&key, ad(1), &vec![0u8; len]).is_err());
        }
    }

    #[test]
    fn same_plaintext_encrypts_differently() {
        let key = DataKey::generate("dk-1").expect("rng");
        assert_ne!(seal(&key, ad(1), b"x").expect("seal"), seal(&key, ad(1), b"x").expect("seal"));
    }
}
