//! phivault's cryptography: the key hierarchy that protects PHI at rest.
//!
//! ```text
//! passphrase ──Argon2id──▶ key-file sealing key ──AES-256-GCM──▶ KEKs, index key   (key file, never in the DB)
//!   or: KEK inside a PKCS#11 HSM; the key file names it and holds the index key sealed by it
//! KEK ──AES-256-GCM wrap──▶ data key per patient / per resource type               (DB: wrapped only)
//! data key ──AES-256-GCM, AAD = type|id|version|key──▶ resource bodies             (DB: ciphertext only)
//! index key ──HMAC-SHA-256──▶ blind index terms for identifying search values      (DB: truncated MACs)
//! ```
//!
//! Primitives come from aws-lc-rs (AEAD, HMAC, HKDF, randomness) and RustCrypto's `argon2`;
//! nothing here is hand-rolled. The crate does no IO except reading and writing the key file.
//! Safeguard: 45 CFR 164.312(a)(2)(iv) encryption and decryption, 164.312(c) integrity.

mod blind_index;
mod digest;
mod envelope;
mod error;
mod external;
mod jws;
mod keyfile;
mod keyring;
mod password;
mod random;
mod secret;

pub use blind_index::{BLIND_TERM_LEN, BlindIndex, BlindTerm};
pub use digest::{constant_time_eq, hotp, sha256};
pub use envelope::{AssociatedData, DataKey, NONCE_LEN, TAG_LEN, open, seal};
pub use error::CryptoError;
pub use external::{ExternalKek, KekProvider};
pub use jws::{IdTokenSigner, JwsError, verify_client_assertion};
pub use keyfile::{KdfParams, KekInfo, KeyFile, KeyFileKind, KeyFileProtection, Unlock};
pub use keyring::{Kek, KekId, KeyRing, WrappedDataKey};
pub use password::{PasswordHasher, PasswordParams};
pub use random::{random_bytes, random_token};
pub use secret::SecretKey;
