//! The key file: KEKs and the index key, sealed under a passphrase (Argon2id → AES-256-GCM);
//! or naming KEKs that live in a PKCS#11 HSM, with the index key sealed by the current one;
//! or in plaintext only when the operator explicitly asks for insecure development keys.
//!
//! The file never enters the database. Writes are atomic (temporary file, fsync, rename),
//! so a crash during `keys rotate` leaves either the old or the new file, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::envelope::{open_raw, seal_raw};
use crate::{CryptoError, Kek, KekId, KekProvider, KeyRing, SecretKey, random_bytes};

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

/// How a new key file protects its keys.
#[derive(Debug)]
pub enum KeyFileProtection {
    /// Sealed under a key derived from this passphrase.
    Passphrase { passphrase: String, kdf: KdfParams },
    /// KEKs generated inside a PKCS#11 HSM; the file names them and holds the index key
    /// sealed by the current one.
    Hsm(Arc<dyn KekProvider>),
    /// Plaintext keys: for throwaway demo and development data only.
    InsecurePlaintext,
}

/// What opening an existing key file needs.
#[derive(Debug, Clone)]
pub enum Unlock<'a> {
    /// Nothing: only a plaintext development key file opens this way.
    Nothing,
    Passphrase(&'a str),
    Hsm(Arc<dyn KekProvider>),
}

/// How an existing key file is protected, read without unsealing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileKind {
    Passphrase,
    Hsm { module: String, token: String },
    InsecurePlaintext,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum ProtectionDoc {
    Passphrase { kdf: String, params: KdfParams, salt: String },
    Pkcs11 { module: String, token: String },
    InsecurePlaintext,
}

/// What seals the key file's material, held so the file can be reloaded.
#[derive(Clone)]
enum Sealer {
    Plain,
    Key(SecretKey),
    Hsm(Arc<dyn KekProvider>),
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
    /// HSM files: the KEK that seals `index_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index_key_kek: Option<String>,
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
    sealer: Sealer,
    doc: KeyFileDoc,
    ring: KeyRing,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile").field("path", &self.path).field("ring", &self.ring).finish_non_exhaustive()
    }
}

const MAX_KDF_MEMORY_KIB: u32 = 4 * 1024 * 1024;
const MAX_KDF_ITERATIONS: u32 = 64;

fn derive_sealing_key(passphrase: &str, salt: &[u8], kdf: KdfParams) -> Result<SecretKey, CryptoError> {
    if kdf.memory_kib < 19 * 1024 || kdf.iterations < 2 {
        return Err(CryptoError::MalformedKeyFile("key-file KDF parameters are below 19 MiB / 2 passes"));
    }
    // An altered file must not make opening it take all memory or hours: the bounds are far
    // above what `keys init` writes (64 MiB, 3 passes, 1 lane).
    if kdf.memory_kib > MAX_KDF_MEMORY_KIB
        || kdf.iterations > MAX_KDF_ITERATIONS
        || !(1..=16).contains(&kdf.parallelism)
    {
        return Err(CryptoError::MalformedKeyFile("key-file KDF parameters are above 4 GiB / 64 passes / 16 lanes"));
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

/// HSM object label of a KEK.
fn hsm_label(kek_id: &str) -> String {
    format!("phivault-{kek_id}")
}

fn new_kek_id(now_unix: i64) -> Result<String, CryptoError> {
    let tag: String = random_bytes::<4>()?.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("kek-{now_unix}-{tag}"))
}

impl KeyFile {
    /// Creates a new key file with one KEK and an index key. Refuses to overwrite.
    pub fn create(path: &Path, protection: KeyFileProtection, now_unix: i64) -> Result<Self, CryptoError> {
        if path.exists() {
            return Err(CryptoError::MalformedKeyFile("a key file already exists at this path"));
        }
        let (protection_doc, sealer) = match protection {
            KeyFileProtection::Passphrase { passphrase, kdf } => {
                let salt = random_bytes::<16>()?;
                let key = derive_sealing_key(&passphrase, &salt, kdf)?;
                let doc = ProtectionDoc::Passphrase { kdf: "argon2id".into(), params: kdf, salt: B64.encode(salt) };
                (doc, Sealer::Key(key))
            }
            KeyFileProtection::Hsm(provider) => {
                let (module, token) = provider.describe();
                (ProtectionDoc::Pkcs11 { module, token }, Sealer::Hsm(provider))
            }
            KeyFileProtection::InsecurePlaintext => (ProtectionDoc::InsecurePlaintext, Sealer::Plain),
        };
        let kek_id = new_kek_id(now_unix)?;
        let index_key = SecretKey::generate()?;
        let mut doc = KeyFileDoc {
            format: FORMAT.into(),
            protection: protection_doc,
            current_kek: kek_id.clone(),
            keks: Vec::new(),
            index_key: String::new(),
            index_key_kek: None,
        };
        let kek = new_kek(&sealer, &kek_id)?;
        doc.keks.push(KekDoc { id: kek_id.clone(), created_unix: now_unix, retired_unix: None, material: kek.1 });
        seal_index_key(&sealer, &mut doc, &kek.0, &kek_id, &index_key)?;
        let ring = KeyRing::new(BTreeMap::from([(kek_id.clone(), kek.0)]), kek_id, index_key)?;
        let file = Self { path: path.to_owned(), sealer, doc, ring };
        file.save()?;
        Ok(file)
    }

    /// How the key file at `path` is protected.
    pub fn kind(path: &Path) -> Result<KeyFileKind, CryptoError> {
        Ok(match read_doc(path)?.protection {
            ProtectionDoc::Passphrase { .. } => KeyFileKind::Passphrase,
            ProtectionDoc::Pkcs11 { module, token } => KeyFileKind::Hsm { module, token },
            ProtectionDoc::InsecurePlaintext => KeyFileKind::InsecurePlaintext,
        })
    }

    /// Opens and unseals a key file with what its protection needs.
    pub fn open(path: &Path, unlock: Unlock<'_>) -> Result<Self, CryptoError> {
        let doc = read_doc(path)?;
        let sealer = match (&doc.protection, unlock) {
            (ProtectionDoc::Passphrase { kdf, params, salt }, Unlock::Passphrase(passphrase)) => {
                if kdf != "argon2id" {
                    return Err(CryptoError::MalformedKeyFile("unknown KDF"));
                }
                let salt = B64.decode(salt).map_err(|_| CryptoError::MalformedKeyFile("salt is not base64"))?;
                Sealer::Key(derive_sealing_key(passphrase, &salt, *params)?)
            }
            (ProtectionDoc::Passphrase { .. }, _) => return Err(CryptoError::WrongPassphrase),
            (ProtectionDoc::Pkcs11 { .. }, Unlock::Hsm(provider)) => Sealer::Hsm(provider),
            (ProtectionDoc::Pkcs11 { .. }, _) => {
                return Err(CryptoError::MalformedKeyFile("this key file needs its HSM"));
            }
            (ProtectionDoc::InsecurePlaintext, _) => Sealer::Plain,
        };
        let ring = ring_from_doc(&doc, &sealer)?;
        Ok(Self { path: path.to_owned(), sealer, doc, ring })
    }

    /// Whether the file is a plaintext development key file.
    pub fn is_insecure(&self) -> bool {
        matches!(self.sealer, Sealer::Plain)
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
        self.ring = ring_from_doc(&doc, &self.sealer)?;
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
        let id = new_kek_id(now_unix)?;
        let (kek, material) = new_kek(&self.sealer, &id)?;
        self.doc.keks.push(KekDoc { id: id.clone(), created_unix: now_unix, retired_unix: None, material });
        if matches!(self.sealer, Sealer::Hsm(_)) {
            // The index key moves to the new KEK so the old one can be destroyed later.
            let index_key = decode_index_key(&self.doc, &self.sealer, &self.ring)?;
            seal_index_key(&self.sealer, &mut self.doc, &kek, &id, &index_key)?;
        }
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
        let doomed: Vec<KekDoc> = self
            .doc
            .keks
            .iter()
            .filter(|k| k.retired_unix.is_some_and(|at| now_unix - at >= keep_secs) && k.id != self.doc.current_kek)
            .cloned()
            .collect();
        self.doc.keks.retain(|k| !doomed.iter().any(|d| d.id == k.id));
        self.save()?;
        if let Sealer::Hsm(provider) = &self.sealer {
            for kek in &doomed {
                provider.destroy_kek(&kek.material)?;
            }
        }
        self.reload()?;
        Ok(doomed.into_iter().map(|k| k.id).collect())
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

fn sealing_key(sealer: &Sealer) -> Option<&SecretKey> {
    match sealer {
        Sealer::Key(k) => Some(k),
        _ => None,
    }
}

/// A fresh KEK and the key-file material that stores it (sealed bytes, or an HSM label).
fn new_kek(sealer: &Sealer, id: &str) -> Result<(Kek, String), CryptoError> {
    match sealer {
        Sealer::Hsm(provider) => {
            let label = hsm_label(id);
            Ok((Kek::External(provider.create_kek(&label)?), label))
        }
        other => {
            let key = SecretKey::generate()?;
            let material = encode_material(sealing_key(other), id, &key)?;
            Ok((Kek::Local(key), material))
        }
    }
}

fn seal_index_key(
    sealer: &Sealer,
    doc: &mut KeyFileDoc,
    kek: &Kek,
    kek_id: &str,
    index_key: &SecretKey,
) -> Result<(), CryptoError> {
    match sealer {
        Sealer::Hsm(_) => {
            doc.index_key = B64.encode(kek.seal(&material_aad("index"), index_key.expose())?);
            doc.index_key_kek = Some(kek_id.to_owned());
        }
        other => doc.index_key = encode_material(sealing_key(other), "index", index_key)?,
    }
    Ok(())
}

fn decode_index_key(doc: &KeyFileDoc, sealer: &Sealer, keks: &dyn KekLookup) -> Result<SecretKey, CryptoError> {
    match sealer {
        Sealer::Hsm(_) => {
            let kek_id = doc.index_key_kek.as_deref().ok_or(CryptoError::MalformedKeyFile("index key names no KEK"))?;
            let kek = keks.get(kek_id).ok_or(CryptoError::MalformedKeyFile("index key KEK is missing"))?;
            let bytes =
                B64.decode(&doc.index_key).map_err(|_| CryptoError::MalformedKeyFile("index key is not base64"))?;
            SecretKey::from_slice(&kek.open(&material_aad("index"), &bytes)?)
        }
        other => decode_material(sealing_key(other), "index", &doc.index_key),
    }
}

/// Lookup of KEKs by id, from a ring or from a map being built.
trait KekLookup {
    fn get(&self, id: &str) -> Option<&Kek>;
}

impl KekLookup for BTreeMap<KekId, Kek> {
    fn get(&self, id: &str) -> Option<&Kek> {
        BTreeMap::get(self, id)
    }
}

impl KekLookup for KeyRing {
    fn get(&self, id: &str) -> Option<&Kek> {
        self.kek(id)
    }
}

fn ring_from_doc(doc: &KeyFileDoc, sealer: &Sealer) -> Result<KeyRing, CryptoError> {
    let mut keks: BTreeMap<KekId, Kek> = BTreeMap::new();
    for kek in &doc.keks {
        let value = match sealer {
            Sealer::Hsm(provider) => Kek::External(provider.open_kek(&kek.material)?),
            other => Kek::Local(decode_material(sealing_key(other), &kek.id, &kek.material)?),
        };
        keks.insert(kek.id.clone(), value);
    }
    let index_key = decode_index_key(doc, sealer, &keks)?;
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

        let reopened = KeyFile::open(&path, Unlock::Passphrase(PASS)).expect("open");
        assert!(reopened.ring().unwrap("dk", "s", &wrapped).is_ok());
        assert!(matches!(
            KeyFile::open(&path, Unlock::Passphrase("wrong passphrase!!")),
            Err(CryptoError::WrongPassphrase)
        ));
        assert!(matches!(KeyFile::open(&path, Unlock::Nothing), Err(CryptoError::WrongPassphrase)));
        assert_eq!(KeyFile::kind(&path).expect("read"), KeyFileKind::Passphrase);
        assert!(!reopened.is_insecure());
    }

    #[test]
    fn a_key_file_asking_for_unbounded_kdf_work_is_refused_before_any_is_done() {
        let dir = tempdir();
        let path = dir.join("keys.json");
        sealed(&path);
        let original = std::fs::read_to_string(&path).expect("read");
        for (field, value) in [("memory_kib", "4294967295"), ("iterations", "100000"), ("parallelism", "0")] {
            let mut doc: serde_json::Value = serde_json::from_str(&original).expect("json");
            let params = doc["protection"]["params"].as_object_mut().expect("params");
            params.insert(field.into(), serde_json::from_str(value).expect("n"));
            std::fs::write(&path, doc.to_string()).expect("write");
            let refused = KeyFile::open(&path, Unlock::Passphrase(PASS)).expect_err(field);
            assert!(
                matches!(refused, CryptoError::MalformedKeyFile(m) if m.contains("above")),
                "{field}: refused by the bound, before deriving: {refused:?}"
            );
        }
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
        assert!(KeyFile::open(&path, Unlock::Passphrase(PASS)).is_err());
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
        let other_process = KeyFile::open(&path, Unlock::Nothing).expect("open");
        assert_eq!(other_process.ring().current_kek_id(), new);
        assert!(other_process.ring().unwrap("dk", "s", &wrapped).is_ok(), "old KEK still unwraps");

        assert_eq!(file.retire_old_keks(300).expect("retire"), vec![old.clone()]);
        assert!(file.destroy_retired_keks(301, 3600).expect("keep").is_empty(), "kept within grace period");
        assert_eq!(file.destroy_retired_keks(300 + 3600, 3600).expect("destroy"), vec![old]);
        assert!(file.ring().unwrap("dk", "s", &wrapped).is_err());
    }

    /// An in-memory stand-in for an HSM, to test the key-file logic; the real PKCS#11
    /// provider is tested against SoftHSM2 in `phivault-hsm`.
    #[derive(Debug, Default)]
    struct FakeHsm {
        keys: std::sync::Mutex<std::collections::HashMap<String, SecretKey>>,
    }

    #[derive(Debug)]
    struct FakeKek(SecretKey);

    impl crate::ExternalKek for FakeKek {
        fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
            seal_raw(&self.0, aad, plaintext)
        }
        fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
            open_raw(&self.0, aad, sealed)
        }
    }

    impl KekProvider for FakeHsm {
        fn create_kek(&self, label: &str) -> Result<Arc<dyn crate::ExternalKek>, CryptoError> {
            let key = SecretKey::generate()?;
            self.keys.lock().expect("lock").insert(label.to_owned(), key.clone());
            Ok(Arc::new(FakeKek(key)))
        }
        fn open_kek(&self, label: &str) -> Result<Arc<dyn crate::ExternalKek>, CryptoError> {
            let key =
                self.keys.lock().expect("lock").get(label).cloned().ok_or(CryptoError::UnknownKek(label.to_owned()))?;
            Ok(Arc::new(FakeKek(key)))
        }
        fn destroy_kek(&self, label: &str) -> Result<(), CryptoError> {
            self.keys.lock().expect("lock").remove(label);
            Ok(())
        }
        fn describe(&self) -> (String, String) {
            ("fake-module".into(), "fake-token".into())
        }
    }

    #[test]
    fn hsm_key_file_holds_labels_not_keys_and_survives_rotation() {
        let dir = tempdir();
        let path = dir.join("keys.json");
        let hsm = Arc::new(FakeHsm::default());
        let mut file = KeyFile::create(&path, KeyFileProtection::Hsm(hsm.clone()), 100).expect("create");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("\"kind\": \"pkcs11\"") && text.contains("phivault-kek-100-"), "{text}");
        assert_eq!(
            KeyFile::kind(&path).expect("kind"),
            KeyFileKind::Hsm { module: "fake-module".into(), token: "fake-token".into() }
        );
        assert!(KeyFile::open(&path, Unlock::Nothing).is_err(), "an HSM file does not open without its HSM");

        let dk = DataKey::generate("dk").expect("rng");
        let wrapped = file.ring().wrap(&dk, "s").expect("wrap");
        let term = file.ring().blind_index().term("family", "duck");
        let reopened = KeyFile::open(&path, Unlock::Hsm(hsm.clone())).expect("open");
        assert!(reopened.ring().unwrap("dk", "s", &wrapped).is_ok());
        assert_eq!(reopened.ring().blind_index().term("family", "duck"), term, "same index key");

        file.add_current_kek(200).expect("rotate");
        let rewrapped = file.ring().rewrap("dk", "s", &wrapped).expect("rewrap");
        file.retire_old_keks(300).expect("retire");
        assert_eq!(file.destroy_retired_keks(300, 0).expect("destroy").len(), 1);
        assert_eq!(hsm.keys.lock().expect("lock").len(), 1, "old KEK destroyed inside the HSM");
        let after = KeyFile::open(&path, Unlock::Hsm(hsm)).expect("open after rotation");
        assert!(after.ring().unwrap("dk", "s", &rewrapped).is_ok());
        assert!(after.ring().unwrap("dk", "s", &wrapped).is_err(), "old wrapping is gone with its KEK");
        assert_eq!(after.ring().blind_index().term("family", "duck"), term, "index key moved to the new KEK");
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("phivault-keyfile-{}", crate::random_token(8).expect("rng")));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }
}
