//! Key administration use cases: KEK rotation (re-wrapping data keys), status, and
//! crypto-shredding a patient's records.
//!
//! Safeguards: 45 CFR 164.312(a)(2)(iv) encryption and decryption (key management);
//! crypto-shredding supports disposal under 164.310(d)(2)(i).

use crate::records::Records;
use crate::{DataKeyRewrap, KeySource, RecordError, RecordStore};

/// Data keys re-wrapped per store transaction during rotation.
pub const REWRAP_BATCH: u64 = 500;

/// Where the keys stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    /// The KEK new data keys are wrapped under.
    pub current_kek: String,
    /// Live data keys per KEK id.
    pub data_keys_per_kek: Vec<(String, u64)>,
}

impl KeyUsage {
    /// Live data keys not yet under the current KEK.
    pub fn pending_rewrap(&self) -> u64 {
        self.data_keys_per_kek.iter().filter(|(k, _)| *k != self.current_kek).map(|(_, n)| n).sum()
    }
}

/// Counts data keys per KEK.
pub async fn key_usage(store: &dyn RecordStore, keys: &dyn KeySource) -> Result<KeyUsage, RecordError> {
    Ok(KeyUsage {
        current_kek: keys.ring().current_kek_id().to_owned(),
        data_keys_per_kek: store.data_keys_per_kek().await?,
    })
}

/// Re-wraps every live data key that is not under the current KEK, in batches, calling
/// `progress` with the number done so far. Safe to interrupt and run again (each key row
/// names its KEK, so a rerun continues where the last one stopped) and safe while servers
/// serve (a row is replaced only if it still holds the value that was read).
pub async fn rewrap_all(
    store: &dyn RecordStore,
    keys: &dyn KeySource,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, RecordError> {
    let ring = keys.ring();
    let mut done = 0;
    loop {
        let batch = store.data_keys_not_under(ring.current_kek_id(), REWRAP_BATCH).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        let mut rewraps = Vec::with_capacity(batch.len());
        for key in batch {
            let Some(old) = key.wrapped else { continue };
            let new = ring.rewrap(&key.key_id, &key.scope, &old).map_err(RecordError::Keys)?;
            rewraps.push(DataKeyRewrap { key_id: key.key_id, old, new });
        }
        let changed = store.rewrap_data_keys(&rewraps).await?;
        if changed == 0 && !rewraps.is_empty() {
            // Every row changed under us (another rotation?): re-read rather than spin.
            tokio::task::yield_now().await;
        }
        done += changed;
        progress(done);
    }
}

impl Records {
    /// Crypto-shreds a patient: destroys the data key of the patient's compartment and its
    /// search index rows. Every version of every resource in the compartment becomes
    /// unrecoverable, while row metadata (ids, versions, times) stays for the audit trail.
    /// Returns whether a live key was destroyed. `entry`, the audit entry recording the
    /// act, is committed in the same transaction as the destruction: the key is never
    /// destroyed unrecorded.
    pub async fn shred_patient(
        &self,
        patient_id: &str,
        entry: Option<&crate::PendingEntry>,
    ) -> Result<bool, RecordError> {
        if !phivault_fhir::is_valid_id(patient_id) {
            return Err(phivault_fhir::FhirError::invalid("invalid patient id").into());
        }
        let scope = format!("Patient/{patient_id}");
        Ok(self.store.destroy_data_key(&scope, Some(patient_id), self.clock.now_ms(), entry).await?)
    }
}
