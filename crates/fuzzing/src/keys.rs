//! The key file, as `serve` and the `keys` commands open it.

use std::io::Write;
use std::sync::OnceLock;

use phivault_crypto::{KeyFile, Unlock};

fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

/// Any bytes as a key file: refused with an error, never a panic; opened as plaintext
/// only if it says it is plaintext; a passphrase file refused for a too-short passphrase
/// before any key derivation (whose cost the file itself names).
pub fn key_file(data: &[u8]) {
    let path = scratch().path().join("keys.json");
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(data));
    if written.is_err() {
        return;
    }
    let kind = KeyFile::kind(&path);
    if let Ok(file) = KeyFile::open(&path, Unlock::Nothing) {
        assert!(file.is_insecure(), "a protected key file opened without its secret");
        assert!(matches!(kind, Ok(phivault_crypto::KeyFileKind::InsecurePlaintext)));
        let _ = file.keks();
    }
    if let Ok(file) = KeyFile::open(&path, Unlock::Passphrase("short")) {
        assert!(file.is_insecure(), "a sealed key file opened with a passphrase below the minimum");
    }
}
