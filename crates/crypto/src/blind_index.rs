//! Keyed blind indexes: equality search over identifying values without storing them.
//!
//! A term is `HMAC-SHA-256(index key, "phivault/blind/v1" || len(param) || param || value)`,
//! truncated to 128 bits. Normalising the value (case, accents, punctuation) is the caller's
//! job, done identically when indexing and when querying.

use aws_lc_rs::hmac;

use crate::SecretKey;

/// Bytes kept of each HMAC: 128 bits makes accidental collisions negligible.
pub const BLIND_TERM_LEN: usize = 16;

/// One blind index term, as stored in the database.
pub type BlindTerm = [u8; BLIND_TERM_LEN];

/// Computes blind index terms under the index key (kept apart from the KEKs, so key
/// rotation does not force a re-index).
#[derive(Clone)]
pub struct BlindIndex {
    key: hmac::Key,
}

impl std::fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndex(<key redacted>)")
    }
}

impl BlindIndex {
    /// An index computer under `key`.
    pub fn new(key: &SecretKey) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, key.expose()) }
    }

    /// The term for `value` of search parameter `param`.
    pub fn term(&self, param: &str, value: &str) -> BlindTerm {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"phivault/blind/v1");
        ctx.update(&(param.len() as u32).to_be_bytes());
        ctx.update(param.as_bytes());
        ctx.update(value.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; BLIND_TERM_LEN];
        out.copy_from_slice(&tag.as_ref()[..BLIND_TERM_LEN]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_deterministic_and_separated_by_param_and_key() {
        let key = SecretKey::from_slice(&[7; 32]).expect("key");
        let index = BlindIndex::new(&key);
        assert_eq!(index.term("family", "duck"), index.term("family", "duck"));
        assert_ne!(index.term("family", "duck"), index.term("given", "duck"));
        // Length prefix: ("fam", "ilyduck") must not collide with ("family", "duck").
        assert_ne!(index.term("fam", "ilyduck"), index.term("family", "duck"));
        let other = BlindIndex::new(&SecretKey::from_slice(&[8; 32]).expect("key"));
        assert_ne!(index.term("family", "duck"), other.term("family", "duck"));
    }

    #[test]
    fn term_does_not_contain_value() {
        let index = BlindIndex::new(&SecretKey::from_slice(&[7; 32]).expect("key"));
        let term = index.term("identifier", "123456789");
        assert!(!term.windows(3).any(|w| w == b"123"));
    }
}
