use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::CryptoError;

/// 256 bits of key material. Zeroed on drop; `Debug` never prints the bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps existing key bytes; refuses anything but exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; 32] =
            bytes.try_into().map_err(|_| CryptoError::MalformedKeyFile("key material must be 32 bytes"))?;
        Ok(Self(array))
    }

    /// The raw bytes, for handing to a primitive. Keep the borrow short.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short, non-secret fingerprint for naming a key in logs and key ids.
    pub fn fingerprint(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.0);
        digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random_bytes;

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = SecretKey::from_slice(&[0xAB; 32]).expect("32 bytes");
        let shown = format!("{key:?}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn wrong_length_is_refused() {
        assert!(SecretKey::from_slice(&[1; 31]).is_err());
        assert!(SecretKey::from_slice(&[1; 33]).is_err());
    }

    #[test]
    fn generated_keys_differ() {
        let a = SecretKey::generate().expect("rng");
        let b = SecretKey::generate().expect("rng");
        assert_ne!(a, b);
        assert_ne!(random_bytes::<16>().expect("rng"), [0u8; 16]);
    }
}
