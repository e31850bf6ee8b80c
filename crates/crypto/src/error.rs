use thiserror::Error;

/// Everything that can go wrong in phivault's cryptography, in its own terms.
///
/// Messages are fixed text: they never include key material, plaintext or ciphertext.
#[derive(Debug, Error)]
pub enum CryptoError {
    /// An AEAD tag did not verify: the ciphertext, its nonce or its associated data
    /// (resource type, id, version, key id) was changed, or the wrong key was used.
    #[error("ciphertext failed authentication: it was altered, moved or opened with the wrong key")]
    TamperedCiphertext,
    /// The key file could not be unsealed with the given passphrase.
    #[error("the key file could not be unsealed: wrong passphrase or damaged key file")]
    WrongPassphrase,
    /// A data key is wrapped under a KEK that this key ring does not hold.
    #[error("data key is wrapped under key-encryption key {0}, which this key ring does not hold")]
    UnknownKek(String),
    /// The key file is not in a format this version understands.
    #[error("key file is malformed: {0}")]
    MalformedKeyFile(&'static str),
    /// Reading or writing the key file failed.
    #[error("key file IO failed")]
    Io(#[source] std::io::Error),
    /// The system random generator or a primitive failed: unrecoverable.
    #[error("cryptographic primitive failed")]
    Primitive,
    /// A password hash string could not be parsed or computed.
    #[error("password hashing failed: {0}")]
    PasswordHash(&'static str),
}

impl From<aws_lc_rs::error::Unspecified> for CryptoError {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        CryptoError::Primitive
    }
}
