//! Turning a resource into a sealed, indexed [`VersionWrite`] and a stored version back
//! into JSON. The only place where plaintext meets keys.

use std::collections::HashMap;

use phivault_crypto::{AssociatedData, CryptoError, DataKey, KeyRing, open, seal};
use phivault_fhir::search::extract_index_entries;
use phivault_fhir::{format_instant, patient_compartment, validate_resource};
use serde_json::{Value, json};

use super::Records;
use crate::{RecordError, StoredDataKey, StoredVersion, VersionWrite};

/// The data-key scope of a resource: its patient's compartment, else its type.
pub(crate) fn key_scope(resource_type: &str, compartment: Option<&str>) -> String {
    match compartment {
        Some(patient) => format!("Patient/{patient}"),
        None => format!("type/{resource_type}"),
    }
}

/// Describes a commit's writes as the audit entry committed with them (see
/// [`crate::PendingEntry`]).
pub(crate) type EntryFor<'a> = &'a (dyn Fn(&[VersionWrite]) -> crate::PendingEntry + Send + Sync);

/// Where a new version goes: type, id, its version number and the version it replaces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
    pub version: i64,
    pub replaces: Option<i64>,
}

/// Data keys unwrapped during one operation (a bundle touches one patient's key hundreds
/// of times). Lives only as long as the operation, so a destroyed key is noticed at once.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    keys: HashMap<String, DataKey>,
    /// Keys created in this operation, stored with its writes in the same commit.
    fresh: Vec<StoredDataKey>,
}

impl KeyCache {
    /// The keys created since the last call, to commit with the writes that use them.
    pub(crate) fn take_fresh(&mut self) -> Vec<StoredDataKey> {
        std::mem::take(&mut self.fresh)
    }

    /// Forgets everything (after a conflict, another process may own a scope's key).
    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.fresh.clear();
    }
}

impl Records {
    /// Stamps `meta`, validates, indexes and encrypts one version.
    pub(crate) async fn seal_version(
        &self,
        cache: &mut KeyCache,
        slot: Slot<'_>,
        body: &mut Value,
        now_ms: i64,
    ) -> Result<VersionWrite, RecordError> {
        let Slot { resource_type, id, version, replaces } = slot;
        body["id"] = json!(id);
        let meta = body.as_object_mut().and_then(|o| {
            let meta = o.entry("meta").or_insert_with(|| json!({}));
            meta.as_object_mut()
        });
        let meta = meta.ok_or_else(|| phivault_fhir::FhirError::invalid("meta must be an object"))?;
        meta.insert("versionId".into(), json!(version.to_string()));
        meta.insert("lastUpdated".into(), json!(format_instant(now_ms)));
        validate_resource(body, Some(resource_type), Some(id))?;
        let entries = extract_index_entries(resource_type, body)?;
        let compartment = patient_compartment(resource_type, id, body);
        let scope = key_scope(resource_type, compartment.as_deref());
        let ring = self.keys.ring();
        let key = self.data_key_for(cache, &ring, &scope, now_ms).await?;
        let plaintext =
            serde_json::to_vec(body).map_err(|_| phivault_fhir::FhirError::invalid("resource cannot be serialized"))?;
        let ciphertext =
            seal(&key, AssociatedData { resource_type, id, version }, &plaintext).map_err(RecordError::Keys)?;
        let index = ring.blind_index();
        Ok(VersionWrite {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            version,
            replaces,
            last_updated_ms: now_ms,
            compartment,
            key_id: key.id.clone(),
            ciphertext,
            terms: entries.terms.iter().map(|(param, term)| (*param, index.term(param, term))).collect(),
            dates: entries.dates,
        })
    }

    /// Seals one version and commits it with any data key it created. If another process
    /// created that scope's key first, seals again under the winner's key (once).
    pub(crate) async fn seal_and_commit(
        &self,
        slot: Slot<'_>,
        body: &mut Value,
        now_ms: i64,
        entry: Option<EntryFor<'_>>,
    ) -> Result<(), RecordError> {
        let mut attempt = 0;
        loop {
            let mut cache = KeyCache::default();
            let write = self.seal_version(&mut cache, slot, body, now_ms).await?;
            let fresh = cache.take_fresh();
            let writes = std::slice::from_ref(&write);
            let entry = entry.map(|describe| describe(writes));
            match self.store.commit(&fresh, writes, entry.as_ref()).await {
                Err(crate::StoreError::Conflict) if !fresh.is_empty() && attempt == 0 => attempt += 1,
                other => return Ok(other?),
            }
        }
    }

    /// The data key of `scope`, created (and wrapped under the current KEK) on first use.
    async fn data_key_for(
        &self,
        cache: &mut KeyCache,
        ring: &KeyRing,
        scope: &str,
        now_ms: i64,
    ) -> Result<DataKey, RecordError> {
        if let Some(key) = cache.keys.get(scope) {
            return Ok(key.clone());
        }
        let key = match self.store.data_key(scope).await? {
            Some(stored) => self.unwrap_key(&stored, scope)?,
            None => {
                // Stored with the first write that uses it, in the same commit.
                let fresh = DataKey::generate(format!("dk-{}", phivault_fhir::new_id(random16()?)))
                    .map_err(RecordError::Keys)?;
                let wrapped = ring.wrap(&fresh, scope).map_err(RecordError::Keys)?;
                cache.fresh.push(StoredDataKey {
                    key_id: fresh.id.clone(),
                    scope: scope.to_owned(),
                    wrapped: Some(wrapped),
                    created_ms: now_ms,
                });
                fresh
            }
        };
        cache.keys.insert(scope.to_owned(), key.clone());
        Ok(key)
    }

    fn unwrap_key(&self, stored: &StoredDataKey, subject: &str) -> Result<DataKey, RecordError> {
        let (resource_type, id) = subject.split_once('/').unwrap_or((subject, ""));
        let wrapped = stored
            .wrapped
            .as_ref()
            .ok_or_else(|| RecordError::Shredded { resource_type: resource_type.to_owned(), id: id.to_owned() })?;
        match self.keys.ring().unwrap(&stored.key_id, &stored.scope, wrapped) {
            Err(CryptoError::UnknownKek(_)) => {
                // Another process may have rotated the KEK since we loaded the key file.
                self.keys.refresh().map_err(RecordError::Keys)?;
                self.keys.ring().unwrap(&stored.key_id, &stored.scope, wrapped).map_err(RecordError::Keys)
            }
            Err(CryptoError::TamperedCiphertext) => {
                tracing::error!(key_id = %stored.key_id, "wrapped data key failed authentication");
                Err(RecordError::Integrity { resource_type: resource_type.to_owned(), id: id.to_owned(), version: 0 })
            }
            other => other.map_err(RecordError::Keys),
        }
    }

    /// Decrypts a stored version. Tampering is reported as [`RecordError::Integrity`].
    pub(crate) fn open_version(&self, cache: &mut KeyCache, stored: &StoredVersion) -> Result<Value, RecordError> {
        let subject = format!("{}/{}", stored.resource_type, stored.id);
        let key = match cache.keys.get(&stored.key.scope) {
            Some(key) if key.id == stored.key.key_id => key.clone(),
            _ => {
                let key = self.unwrap_key(&stored.key, &subject)?;
                cache.keys.insert(stored.key.scope.clone(), key.clone());
                key
            }
        };
        let ad = AssociatedData { resource_type: &stored.resource_type, id: &stored.id, version: stored.version };
        let integrity = || RecordError::Integrity {
            resource_type: stored.resource_type.clone(),
            id: stored.id.clone(),
            version: stored.version,
        };
        let plaintext = open(&key, ad, &stored.ciphertext).map_err(|_| {
            tracing::error!(resource_type = %stored.resource_type, id = %stored.id, version = stored.version, "stored record failed authentication");
            integrity()
        })?;
        serde_json::from_slice(&plaintext).map_err(|_| integrity())
    }
}

fn random16() -> Result<[u8; 16], RecordError> {
    phivault_crypto::random_bytes::<16>().map_err(RecordError::Keys)
}

pub(crate) fn new_resource_id() -> Result<String, RecordError> {
    Ok(phivault_fhir::new_id(random16()?))
}
