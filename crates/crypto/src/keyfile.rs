//! The key file: KEKs and the index key, sealed under a passphrase (Argon2id → AES-256-GCM),
//! or in plaintext only when the operator explicitly asks for insecure development keys.
//!
//! The file never enters the database. Writes are atomic (temporary file, fsync, rename),
//! so a crash during `keys rotate` leaves either the old or the new file, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::envelope::{open_raw, seal_raw};
use crate::{CryptoError, KekId, KeyRing, SecretKey, random_bytes};

const FORMAT: &str = "phivault-keyfile/1";

/// Argon2id cost for deriving the key-file sealing key from the passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes: about a quarter second here, paid once per process start.
    fn default() -> Self {
        Self { memory_kib: 64 * 1024, iterations: 3, parallelism: 1 }
    }
}

/// How the key file protects its keys.
#[derive(Debug)]
pub enum KeyFileProtection {
    /// Sealed under a key derived from this passphrase.
    Passphrase { passphrase: String, kdf: KdfParams },
    /// Plaintext keys: for throwaway demo and development data only.
    InsecurePlaintext,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum ProtectionDoc {
    Passphrase { kdf: String, params: KdfParams, salt: String },
    InsecurePlaintext,
}

#[derive(Serialize, Deserialize, Clone)]
struct KekDoc {
    id: String,
    created_unix: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_unix: Option<i64>,
    material: String,
}

#[derive(Serialize, Deserialize)]
struct KeyFileDoc {
    format: String,
    protection: ProtectionDoc,
    current_kek: String,
    keks: Vec<KekDoc>,
    index_key: String,
}

/// Public facts about one KEK, for `keys status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekInfo {
    pub id: KekId,
    pub created_unix: i64,
    pub retired_unix: Option<i64>,
    pub is_current: bool,
}

/// A key file opened and unsealed. Holds the sealing key (not the passphrase) so it can
/// reload the file after another process rotated the KEK.
pub struct KeyFile {
    path: PathBuf,
    sealing_key: Option<SecretKey>,
    doc: KeyFileDoc,
    ring: KeyRing,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile").field("path", &self.path).field("ring", &self.ring).finish_non_exhaustive()
    }
}

fn derive_sealing_key(passphrase: &str, salt: &[u8], kdf: KdfParams) -> Result<SecretKey, CryptoError> {
    if kdf.memory_kib < 19 * 1024 || kdf.iterations < 2 {
        return Err(CryptoError::MalformedKeyFile("key-file KDF parameters are below 19 MiB / 2 passes"));
    }
    if passphrase.chars().count() < 12 {
        return Err(CryptoError::MalformedKeyFile("passphrase must have at least 12 characters"));
    }
    let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|_| CryptoError::MalformedKeyFile("invalid KDF parameters"))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|_| CryptoError::Primitive)?;
    let key = SecretKey::from_slice(&out);
    zeroize::Zeroize::zeroize(&mut out);
    key
}

fn material_aad(id: &str) -> Vec<u8> {
    format!("phivault/keyfile/v1|{id}").into_bytes()
}

fn encode_material(sealing: Option<&SecretKey>, id: &str, key: &SecretKey) -> Result<String, CryptoError> {
    Ok(match sealing {
        Some(s) => B64.encode(seal_raw(s, &material_aad(id), key.expose())?),
        None => B64.encode(key.expose()),
    })
}

fn decode_material(sealing: Option<&SecretKey>, id: &str, material: &str) -> Result<SecretKey, CryptoError> {
    let bytes = B64.decode(material).map_err(|_| CryptoError::MalformedKeyFile("key material is not base64"))?;
    match sealing {
        Some(s) => {
            let plain = open_raw(s, &material_aad(id), &bytes).map_err(|_| CryptoError::WrongPassphrase)?;
            SecretKey::from_slice(&plain)
        }
        None => SecretKey::from_slice(&bytes),
    }
}

fn new_kek_id(key: &SecretKey, now_unix: i64) -> String {
    format!("kek-{now_unix}-{}", key.fingerprint())
}

impl KeyFile {
    /// Creates a new key file with one KEK and an index key. Refuses to overwrite.
    pub fn create(path: &Path, protection: KeyFileProtection, now_unix: i64) -> Result<Self, CryptoError> {
        if path.exists() {
            return Err(CryptoError::MalformedKeyFile("a key file already exists at this path"));
        }
        let (protection_doc, sealing_key) = match protection {
            KeyFileProtection::Passphrase { passphrase, kdf } => {
                let salt = random_bytes::<16>()?;
                let key = derive_sealing_key(&passphrase, &salt, kdf)?;
                let doc = ProtectionDoc::Passphrase { kdf: "argon2id".into(), params: kdf, salt: B64.encode(salt) };
                (doc, Some(key))
            }
            KeyFileProtection::InsecurePlaintext => (ProtectionDoc::InsecurePlaintext, None),
        };
        let kek = SecretKey::generate()?;
        let kek_id = new_kek_id(&kek, now_unix);
        let index_key = SecretKey::generate()?;
        let doc = KeyFileDoc {
            format: FORMAT.into(),
            protection: protection_doc,
            current_kek: kek_id.clone(),
            keks: vec![KekDoc {
                id: kek_id.clone(),
                created_unix: now_unix,
                retired_unix: None,
                material: encode_material(sealing_key.as_ref(), &kek_id, &kek)?,
            }],
            index_key: encode_material(sealing_key.as_ref(), "index", &index_key)?,
        };
        let ring = KeyRing::new(BTreeMap::from([(kek_id.clone(), kek)]), kek_id, index_key)?;
        let file = Self { path: path.to_owned(), sealing_key, doc, ring };
        file.save()?;
        Ok(file)
    }

    /// Opens and unseals a key file. `passphrase` is required unless the file is plaintext.
    pub fn open(path: &Path, passphrase: Option<&str>) -> Result<Self, CryptoError> {
        let doc = read_doc(path)?;
        let sealing_key = match &doc.protection {
            ProtectionDoc::Passphrase { kdf, params, salt } => {
                if kdf != "argon2id" {
                    return Err(CryptoError::MalformedKeyFile("unknown KDF"));
                }
                let salt = B64.decode(salt).map_err(|_| CryptoError::MalformedKeyFile("salt is not base64"))?;
                let passphrase = passphrase.ok_or(CryptoError::WrongPassphrase)?;
                Some(derive_sealing_key(passphrase, &salt, *params)?)
            }
            ProtectionDoc::InsecurePlaintext => None,
        };
        let ring = ring_from_doc(&doc, sealing_key.as_ref())?;
        Ok(Self { path: path.to_owned(), sealing_key, doc, ring })
    }

    /// Whether the file is a plaintext development key file.
    pub fn is_insecure(&self) -> bool {
        self.sealing_key.is_none()
    }

    /// Whether the file at `path` declares itself sealed under a passphrase.
    pub fn needs_passphrase(path: &Path) -> Result<bool, CryptoError> {
        Ok(matches!(read_doc(path)?.protection, ProtectionDoc::Passphrase { .. }))
    }

    /// The unsealed key ring.
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Path of the key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file (after another process rotated keys) with the sealing key held.
    pub fn reload(&mut self) -> Result<(), CryptoError> {
        let doc = read_doc(&self.path)?;
        self.ring = ring_from_doc(&doc, self.sealing_key.as_ref())?;
        self.doc = doc;
        Ok(())
    }

    /// Facts about every KEK in the file.
    pub fn keks(&self) -> Vec<KekInfo> {
        self.doc
            .keks
            .iter()
            .map(|k| KekInfo {
                id: k.id.clone(),
                created_unix: k.created_unix,
                retired_unix: k.retired_unix,
                is_current: k.id == self.doc.current_kek,
            })
            .collect()
    }

    /// Adds a new KEK and makes it current; older KEKs stay to unwrap until re-wrapped.
    /// Saved before returning, so a crash afterwards resumes with the same new KEK.
    pub fn add_current_kek(&mut self, now_unix: i64) -> Result<KekId, CryptoError> {
        let kek = SecretKey::generate()?;
        let id = new_kek_id(&kek, now_unix);
        self.doc.keks.push(KekDoc {
            id: id.clone(),
            created_unix: now_unix,
            retired_unix: None,
            material: encode_material(self.sealing_key.as_ref(), &id, &kek)?,
        });
        self.doc.current_kek = id.clone();
        self.save()?;
        self.reload()?;
        Ok(id)
    }

    /// Marks every non-current KEK retired (no data key is wrapped under it any more).
    pub fn retire_old_keks(&mut self, now_unix: i64) -> Result<Vec<KekId>, CryptoError> {
        let current = self.doc.current_kek.clone();
        let mut retired = Vec::new();
        for kek in self.doc.keks.iter_mut().filter(|k| k.id != current && k.retired_unix.is_none()) {
            kek.retired_unix = Some(now_unix);
            retired.push(kek.id.clone());
        }
        self.save()?;
        Ok(retired)
    }

    /// Destroys retired KEKs older than `keep_secs`: after this, nothing they wrapped opens.
    /// Callers must first check that no data key is still wrapped under them.
    pub fn destroy_retired_keks(&mut self, now_unix: i64, keep_secs: i64) -> Result<Vec<KekId>, CryptoError> {
        let mut destroyed = Vec::new();
        self.doc.keks.retain(|k| match k.retired_unix {
            Some(at) if now_unix - at >= keep_secs => {
                destroyed.push(k.id.clone());
                false
            }
            _ => true,
        });
        self.save()?;
        self.reload()?;
        Ok(destroyed)
    }

    fn save(&self) -> Result<(), CryptoError> {
        let json = serde_json::to_vec_pretty(&self.doc).map_err(|_| CryptoError::MalformedKeyFile("serialize"))?;
        let tmp = self.path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(CryptoError::Io)?;
        file.write_all(&json).map_err(CryptoError::Io)?;
        file.sync_all().map_err(CryptoError::Io)?;
        std::fs::rename(&tmp, &self.path).map_err(CryptoError::Io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(CryptoError::Io)?;
        }
        Ok(())
    }
}

fn read_doc(path: &Path) -> Result<KeyFileDoc, CryptoError> {
    let bytes = std::fs::read(path).map_err(CryptoError::Io)?;
    let doc: KeyFileDoc =
        serde_json::from_slice(&bytes).map_err(|_| CryptoError::MalformedKeyFile("not a phivault key file"))?;
    if doc.format != FORMAT {
        return Err(CryptoError::MalformedKeyFile("unsupported key file format"));
    }
    Ok(doc)
}

fn ring_from_doc(doc: &KeyFileDoc, sealing: Option<&SecretKey>) -> Result<KeyRing, CryptoError> {
    let mut keks = BTreeMap::new();
    for kek in &doc.keks {
        keks.insert(kek.id.clone(), decode_material(sealing, &kek.id, &kek.material)?);
    }
    let index_key = decode_material(sealing, "index", &doc.index_key)?;
    KeyRing::new(keks, doc.current_kek.clone(), index_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataKey;

    const PASS: &str = "correct horse battery staple";

    fn sealed(path: &Path) -> KeyFile {
        let kdf = KdfParams { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 };
        KeyFile::create(path, KeyFileProtection::Passphrase { passphrase: PASS.into(), kdf }, 1_700_000_000)
            .expect("create")
    }

    #[test]
    fn sealed_file_opens_only_with_its_passphrase_and_holds_no_plain_keys() {
        let dir = tempdir();
        let path = dir.join("keys.json");
        let created = sealed(&path);
        let dk = DataKey::generate("dk").expect("rng");
        let wrapped = created.ring().wrap(&dk, "s").expect("wrap");

        let reopened = KeyFile::open(&path, Some(PASS)).expect("open");
        assert!(reopened.ring().unwrap("dk", "s", &wrapped).is_ok());
        assert!(matches!(KeyFile::open(&path, Some("wrong passphrase!!")), Err(CryptoError::WrongPassphrase)));
        assert!(matches!(KeyFile::open(&path, None), Err(CryptoError::WrongPassphrase)));
        assert!(KeyFile::needs_passphrase(&path).expect("read"));
        assert!(!reopened.is_insecure());
    }

    #[test]
    fn refuses_short_passphrase_and_overwrite() {
        let dir = tempdir();
        let path = dir.join("keys.json");
        let kdf = KdfParams { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 };
        let short = KeyFileProtection::Passphrase { passphrase: "short".into(), kdf };
        assert!(KeyFile::create(&path, short, 0).is_err());
        KeyFile::create(&path, KeyFileProtection::InsecurePlaintext, 0).expect("create");
        assert!(KeyFile::create(&path, KeyFileProtection::InsecurePlaintext, 0).is_err());
    }

    #[test]
    fn tampered_key_file_is_refused() {
        let dir = tempdir();
        let path = dir.join("keys.json");
        sealed(&path);
        let text = std::fs::read_to_string(&path).expect("read");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        let material = doc["keks"][0]["material"].as_str().expect("material").to_owned();
        let mut bytes = B64.decode(&material).expect("b64");
        bytes[14] ^= 0x80;
        std::fs::write(&path, text.replace(&material, &B64.encode(bytes))).expect("write");
        assert!(KeyFile::open(&path, Some(PASS)).is_err());
    }

    #[test]
    fn rotation_keeps_old_kek_until_destroyed() {
        let dir = tempdir();
        let path = dir.join("keys.json");
        let mut file = KeyFile::create(&path, KeyFileProtection::InsecurePlaintext, 100).expect("create");
        let old = file.ring().current_kek_id().to_owned();
        let dk = DataKey::generate("dk").expect("rng");
        let wrapped = file.ring().wrap(&dk, "s").expect("wrap");

        let new = file.add_current_kek(200).expect("rotate");
        assert_ne!(old, new);
        let other_process = KeyFile::open(&path, None).expect("open");
        assert_eq!(other_process.ring().current_kek_id(), new);
        assert!(other_process.ring().unwrap("dk", "s", &wrapped).is_ok(), "old KEK still unwraps");

        assert_eq!(file.retire_old_keks(300).expect("retire"), vec![old.clone()]);
        assert!(file.destroy_retired_keks(301, 3600).expect("keep").is_empty(), "kept within grace period");
        assert_eq!(file.destroy_retired_keks(300 + 3600, 3600).expect("destroy"), vec![old]);
        assert!(file.ring().unwrap("dk", "s", &wrapped).is_err());
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("phivault-keyfile-{}", crate::random_token(8).expect("rng")));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }
}
