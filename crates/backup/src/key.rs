//! The backup key: one 256-bit secret, distinct from the KEKs, from which the chunk-id,
//! chunk-sealing, manifest-signing keys and the chunking seed are derived (HKDF-SHA-256).
//! Whoever restores needs it after the server is gone, so it is escrowed off the host
//! (docs/CONTINGENCY.md); its public half lets anyone check manifests without it.

use std::path::Path;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use aws_lc_rs::{aead, hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use phivault_crypto::SecretKey;

use crate::BackupError;

const KEY_HEADER: &str = "phivault-backup-key/1";
const PUBLIC_HEADER: &str = "phivault-backup-public-key/1";
const HKDF_SALT: &[u8] = b"phivault-backup-key/1";

/// The secret backup key, with the keys derived from it.
pub struct BackupKey {
    secret: SecretKey,
    id_key: hmac::Key,
    seal_key: aead::LessSafeKey,
    signer: Ed25519KeyPair,
    chunk_seed: u64,
    public: BackupPublicKey,
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupKey({})", self.public.id)
    }
}

/// The public half: checks manifest signatures; cannot read or write a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPublicKey {
    id: String,
    key: Vec<u8>,
}

fn derive(secret: &SecretKey, purpose: &[u8]) -> Result<[u8; 32], BackupError> {
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(secret.expose());
    let info = [purpose];
    let okm = prk.expand(&info, Len32).map_err(|_| BackupError::Crypto)?;
    let mut out = [0u8; 32];
    okm.fill(&mut out).map_err(|_| BackupError::Crypto)?;
    Ok(out)
}

impl BackupKey {
    /// A new random key.
    pub fn generate() -> Result<Self, BackupError> {
        Self::from_secret(SecretKey::generate().map_err(|_| BackupError::Crypto)?)
    }

    fn from_secret(secret: SecretKey) -> Result<Self, BackupError> {
        let id_key = hmac::Key::new(hmac::HMAC_SHA256, &derive(&secret, b"chunk-id")?);
        let seal = aead::UnboundKey::new(&aead::AES_256_GCM, &derive(&secret, b"chunk-seal")?)
            .map_err(|_| BackupError::Crypto)?;
        let signer = Ed25519KeyPair::from_seed_unchecked(&derive(&secret, b"manifest-sign")?)
            .map_err(|_| BackupError::Crypto)?;
        let seed_bytes = derive(&secret, b"chunking-seed")?;
        let chunk_seed = u64::from_be_bytes(seed_bytes[..8].try_into().map_err(|_| BackupError::Crypto)?);
        let public = BackupPublicKey::from_bytes(signer.public_key().as_ref().to_vec());
        Ok(Self { secret, id_key, seal_key: aead::LessSafeKey::new(seal), signer, chunk_seed, public })
    }

    /// Reads a key file written by [`BackupKey::write_new`].
    pub fn load(path: &Path) -> Result<Self, BackupError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BackupError::io(format!("cannot read the backup key {}", path.display()), e))?;
        Self::parse(&text).map_err(|why| BackupError::Key(format!("{}: {why}", path.display())))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        if lines.next() != Some(KEY_HEADER) {
            return Err(format!("not a phivault backup key (the first line must be {KEY_HEADER})"));
        }
        let mut id = None;
        let mut secret = None;
        for line in lines {
            match line.split_once(": ") {
                Some(("id", v)) => id = Some(v.to_owned()),
                Some(("secret", v)) => secret = Some(v.to_owned()),
                _ => {}
            }
        }
        let secret = secret.ok_or("it has no secret line")?;
        let bytes = URL_SAFE_NO_PAD.decode(secret.trim()).map_err(|_| "its secret is not base64url")?;
        let secret = SecretKey::from_slice(&bytes).map_err(|_| "its secret is not 32 bytes")?;
        let key = Self::from_secret(secret).map_err(|e| e.to_string())?;
        if id.as_deref() != Some(key.public.id()) {
            return Err("its id does not match its secret (the file was edited or damaged)".into());
        }
        Ok(key)
    }

    /// Creates a new key at `path` (refusing to overwrite one), readable by its owner only,
    /// with its public half beside it (`.pub`).
    pub fn write_new(path: &Path) -> Result<Self, BackupError> {
        let key = Self::generate()?;
        let text = format!(
            "{KEY_HEADER}\n# phivault backup key: without it no backup made with it can be restored.\n\
             # Keep a copy off this host (docs/CONTINGENCY.md), never inside a backup.\nid: {}\nsecret: {}\n",
            key.public.id,
            URL_SAFE_NO_PAD.encode(key.secret.expose())
        );
        write_new_private(path, text.as_bytes())?;
        let public_path = public_path(path);
        if !public_path.exists() {
            write_new_private(&public_path, key.public.to_text().as_bytes())?;
        }
        Ok(key)
    }

    pub fn public(&self) -> &BackupPublicKey {
        &self.public
    }

    pub fn id(&self) -> &str {
        &self.public.id
    }

    /// The content address of a chunk's plaintext.
    pub(crate) fn chunk_mac(&self, plaintext: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.id_key, plaintext);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// A digest as the manifest records it: keyed (HMAC under the chunk-id key), so that a
    /// manifest, which is signed but not encrypted, cannot confirm a guess at a small
    /// table's or file's content.
    pub fn keyed_digest(&self, raw: &[u8]) -> String {
        let tag = hmac::sign(&self.id_key, &[b"phivault-backup-digest/1|".as_slice(), raw].concat());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A table's content digest as the manifest records it.
    pub fn content_digest(&self, digest: &crate::ContentDigest) -> String {
        self.keyed_digest(digest.to_hex().as_bytes())
    }

    pub(crate) fn seal_key(&self) -> &aead::LessSafeKey {
        &self.seal_key
    }

    pub(crate) fn chunk_seed(&self) -> u64 {
        self.chunk_seed
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.signer.sign(message).as_ref().to_vec()
    }
}

/// `backup.key` → `backup.key.pub`.
pub fn public_path(key_path: &Path) -> std::path::PathBuf {
    let mut name = key_path.as_os_str().to_owned();
    name.push(".pub");
    name.into()
}

fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| BackupError::io(format!("cannot create {}", parent.display()), e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| BackupError::io(format!("cannot create {}", path.display()), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| BackupError::io(format!("cannot write {}", path.display()), e))
}

impl BackupPublicKey {
    fn from_bytes(key: Vec<u8>) -> Self {
        let digest = phivault_crypto::sha256(&[b"phivault-backup-key-id/1".as_slice(), &key].concat());
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self { id, key }
    }

    /// The key's id: the first 8 bytes of a hash of the public key, in hex.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.key).verify(message, signature).is_ok()
    }

    pub fn to_text(&self) -> String {
        format!("{PUBLIC_HEADER}\nid: {}\nkey: {}\n", self.id, URL_SAFE_NO_PAD.encode(&self.key))
    }

    /// Reads a public key file (or takes the public half of a secret key file).
    pub fn load(path: &Path) -> Result<Self, BackupError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| BackupError::io(format!("cannot read {}", path.display()), e))?;
        if text.starts_with(KEY_HEADER) {
            return BackupKey::parse(&text)
                .map(|k| k.public)
                .map_err(|why| BackupError::Key(format!("{}: {why}", path.display())));
        }
        let bad = |why: &str| BackupError::Key(format!("{}: {why}", path.display()));
        let mut lines = text.lines();
        if lines.next() != Some(PUBLIC_HEADER) {
            return Err(bad("not a phivault backup public key"));
        }
        let mut id = None;
        let mut key = None;
        for line in lines {
            match line.split_once(": ") {
                Some(("id", v)) => id = Some(v.to_owned()),
                Some(("key", v)) => key = URL_SAFE_NO_PAD.decode(v.trim()).ok(),
                _ => {}
            }
        }
        let key = key.filter(|k| k.len() == 32).ok_or_else(|| bad("its key line is not a 32-byte base64url key"))?;
        let public = Self::from_bytes(key);
        if id.as_deref() != Some(public.id()) {
            return Err(bad("its id does not match its key"));
        }
        Ok(public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_with_the_same_id_and_derived_keys() {
        let dir = tempfile::tempdir().expect("test step");
        let path = dir.path().join("backup.key");
        let key = BackupKey::write_new(&path).expect("test step");
        let again = BackupKey::load(&path).expect("test step");
        assert_eq!(key.id(), again.id());
        assert_eq!(key.chunk_mac(b"x"), again.chunk_mac(b"x"));
        let public = BackupPublicKey::load(&public_path(&path)).expect("test step");
        assert!(public.verify(b"m", &key.sign(b"m")));
        assert!(!public.verify(b"n", &key.sign(b"m")));
        // Never overwritten.
        assert!(BackupKey::write_new(&path).is_err());
    }

    #[test]
    fn an_edited_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("test step");
        let path = dir.path().join("backup.key");
        BackupKey::write_new(&path).expect("test step");
        let text = std::fs::read_to_string(&path).expect("test step");
        let other = BackupKey::generate().expect("test step");
        let edited = text
            .lines()
            .map(|l| if l.starts_with("id: ") { format!("id: {}", other.id()) } else { l.to_owned() })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&path, edited).expect("test step");
        let err = BackupKey::load(&path).expect_err("must fail").to_string();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn different_keys_name_the_same_content_differently() {
        let (a, b) = (BackupKey::generate().expect("test step"), BackupKey::generate().expect("test step"));
        assert_ne!(a.chunk_mac(b"Daffy Duck"), b.chunk_mac(b"Daffy Duck"));
        assert_ne!(a.id(), b.id());
    }
}
