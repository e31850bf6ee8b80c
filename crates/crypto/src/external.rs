//! Key-encryption keys held outside the process, in a hardware security module. phivault
//! asks the holder to seal and open data keys; the KEK itself never enters memory.

use std::sync::Arc;

use crate::CryptoError;

/// A KEK inside an HSM: authenticated encryption with associated data, done by the holder.
pub trait ExternalKek: Send + Sync + std::fmt::Debug {
    /// Encrypts `plaintext` bound to `aad`; returns whatever the holder needs to open it.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Opens what [`ExternalKek::seal`] produced; fails on any change.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError>;
}

/// Creates, finds and destroys KEKs in an HSM by label.
pub trait KekProvider: Send + Sync + std::fmt::Debug {
    /// A new non-extractable AES-256 key with `label`.
    fn create_kek(&self, label: &str) -> Result<Arc<dyn ExternalKek>, CryptoError>;
    /// The existing key with `label`.
    fn open_kek(&self, label: &str) -> Result<Arc<dyn ExternalKek>, CryptoError>;
    /// Destroys the key with `label`: nothing it sealed opens afterwards.
    fn destroy_kek(&self, label: &str) -> Result<(), CryptoError>;
    /// Module path and token label, recorded in the key file for operators.
    fn describe(&self) -> (String, String);
}
