//! The unsealed key ring a running process holds: KEKs by id, the index key, and the
//! operations that use them. Loading and saving is [`crate::KeyFile`]'s job.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::hkdf;

use crate::envelope::{open_raw, seal_raw};
use crate::{BlindIndex, CryptoError, DataKey, ExternalKek, SecretKey};

/// Identifier of a key-encryption key, recorded beside every data key it wraps.
pub type KekId = String;

/// A data key as stored in the database: wrapped under the KEK named by `kek_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    pub kek_id: KekId,
    pub wrapped: Vec<u8>,
}

/// A key-encryption key: in memory (from a sealed key file) or inside an HSM.
#[derive(Clone)]
pub enum Kek {
    Local(SecretKey),
    External(Arc<dyn ExternalKek>),
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kek::Local(_) => f.write_str("Kek::Local(<redacted>)"),
            Kek::External(e) => write!(f, "Kek::External({e:?})"),
        }
    }
}

impl From<SecretKey> for Kek {
    fn from(key: SecretKey) -> Self {
        Kek::Local(key)
    }
}

impl Kek {
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self {
            Kek::Local(key) => seal_raw(key, aad, plaintext),
            Kek::External(kek) => kek.seal(aad, plaintext),
        }
    }

    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self {
            Kek::Local(key) => open_raw(key, aad, sealed),
            Kek::External(kek) => kek.open(aad, sealed),
        }
    }
}

/// KEKs (one current, older ones still able to unwrap until rotation finishes) and the
/// index key. `Debug` shows ids only.
#[derive(Clone)]
pub struct KeyRing {
    keks: BTreeMap<KekId, Kek>,
    current: KekId,
    index_key: SecretKey,
    cursor_key: SecretKey,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("keks", &self.keks.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

fn wrap_aad(key_id: &str, scope: &str, kek_id: &str) -> Vec<u8> {
    let mut out = b"phivault/dek/v1".to_vec();
    for field in [key_id, scope, kek_id] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

impl KeyRing {
    /// Assembles a ring. `current` must be one of `keks`.
    pub fn new<K: Into<Kek>>(
        keks: BTreeMap<KekId, K>,
        current: KekId,
        index_key: SecretKey,
    ) -> Result<Self, CryptoError> {
        let keks: BTreeMap<KekId, Kek> = keks.into_iter().map(|(id, k)| (id, k.into())).collect();
        if !keks.contains_key(&current) {
            return Err(CryptoError::MalformedKeyFile("current KEK is not in the key ring"));
        }
        // Page cursors get their own key, derived so that it is distinct from the index key.
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"phivault");
        let prk = salt.extract(index_key.expose());
        let mut cursor = [0u8; 32];
        prk.expand(&[b"phivault/cursor/v1"], hkdf::HKDF_SHA256)?.fill(&mut cursor)?;
        Ok(Self { keks, current, index_key, cursor_key: SecretKey::from_slice(&cursor)? })
    }

    /// The KEK new data keys are wrapped under.
    pub fn current_kek_id(&self) -> &str {
        &self.current
    }

    pub(crate) fn kek(&self, id: &str) -> Option<&Kek> {
        self.keks.get(id)
    }

    /// Whether this ring can unwrap keys wrapped under `kek_id`.
    pub fn holds(&self, kek_id: &str) -> bool {
        self.keks.contains_key(kek_id)
    }

    /// Wraps a data key under the current KEK, bound to its id and scope.
    pub fn wrap(&self, key: &DataKey, scope: &str) -> Result<WrappedDataKey, CryptoError> {
        let kek = self.keks.get(&self.current).ok_or(CryptoError::Primitive)?;
        let wrapped = kek.seal(&wrap_aad(&key.id, scope, &self.current), key.key.expose())?;
        Ok(WrappedDataKey { kek_id: self.current.clone(), wrapped })
    }

    /// Unwraps a stored data key. Fails if it was altered, moved to another key id or
    /// scope, or wrapped under a KEK this ring does not hold.
    pub fn unwrap(&self, key_id: &str, scope: &str, wrapped: &WrappedDataKey) -> Result<DataKey, CryptoError> {
        let kek = self.keks.get(&wrapped.kek_id).ok_or_else(|| CryptoError::UnknownKek(wrapped.kek_id.clone()))?;
        let bytes = kek.open(&wrap_aad(key_id, scope, &wrapped.kek_id), &wrapped.wrapped)?;
        Ok(DataKey { id: key_id.to_owned(), key: SecretKey::from_slice(&bytes)? })
    }

    /// Unwraps under whichever KEK holds the key and wraps again under the current one.
    pub fn rewrap(&self, key_id: &str, scope: &str, wrapped: &WrappedDataKey) -> Result<WrappedDataKey, CryptoError> {
        let key = self.unwrap(key_id, scope, wrapped)?;
        self.wrap(&key, scope)
    }

    /// The blind index computer (HMAC under the index key).
    pub fn blind_index(&self) -> BlindIndex {
        BlindIndex::new(&self.index_key)
    }

    /// Encrypts an opaque server token (e.g. a search page cursor) so that it carries no
    /// readable PHI in a URL and cannot be forged.
    pub fn seal_token(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_raw(&self.cursor_key, purpose.as_bytes(), plaintext)
    }

    /// Opens what [`KeyRing::seal_token`] produced for the same purpose.
    pub fn open_token(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open_raw(&self.cursor_key, purpose.as_bytes(), sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ids: &[&str], current: &str) -> KeyRing {
        let keks: BTreeMap<KekId, SecretKey> =
            ids.iter().map(|id| ((*id).to_owned(), SecretKey::generate().expect("rng"))).collect();
        KeyRing::new(keks, current.to_owned(), SecretKey::generate().expect("rng")).expect("ring")
    }

    #[test]
    fn wrapped_key_only_unwraps_for_its_id_and_scope() {
        let ring = ring(&["k1"], "k1");
        let dk = DataKey::generate("dk-1").expect("rng");
        let wrapped = ring.wrap(&dk, "Patient/p1").expect("wrap");
        assert!(ring.unwrap("dk-1", "Patient/p1", &wrapped).is_ok());
        assert!(ring.unwrap("dk-2", "Patient/p1", &wrapped).is_err(), "moved to another key id");
        assert!(ring.unwrap("dk-1", "Patient/p2", &wrapped).is_err(), "moved to another patient");
        let mut tampered = wrapped.clone();
        tampered.wrapped[20] ^= 1;
        assert!(ring.unwrap("dk-1", "Patient/p1", &tampered).is_err());
    }

    #[test]
    fn rewrap_moves_key_to_current_kek_and_keeps_it_usable() {
        let mut old = ring(&["k1"], "k1");
        let dk = DataKey::generate("dk-1").expect("rng");
        let wrapped = old.wrap(&dk, "s").expect("wrap");
        old.keks.insert("k2".into(), SecretKey::generate().expect("rng").into());
        old.current = "k2".into();
        let rewrapped = old.rewrap("dk-1", "s", &wrapped).expect("rewrap");
        assert_eq!(rewrapped.kek_id, "k2");
        old.keks.remove("k1");
        let back = old.unwrap("dk-1", "s", &rewrapped).expect("unwrap");
        assert_eq!(back.key, dk.key);
        assert!(format!("{old:?}").contains("k2") && !format!("{:?}", old.keks["k2"]).contains("SecretKey(["));
        assert!(matches!(old.unwrap("dk-1", "s", &wrapped), Err(CryptoError::UnknownKek(_))));
    }

    #[test]
    fn tokens_are_bound_to_purpose() {
        let ring = ring(&["k1"], "k1");
        let sealed = ring.seal_token("page", b"offset=20").expect("seal");
        assert_eq!(ring.open_token("page", &sealed).expect("open"), b"offset=20");
        assert!(ring.open_token("other", &sealed).is_err());
    }
}
