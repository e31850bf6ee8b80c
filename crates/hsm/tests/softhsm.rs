//! Against Debian's SoftHSM2: a real PKCS#11 module. Runs when the module is installed;
//! CI installs it and sets PHIVAULT_TEST_SOFTHSM=1, which turns a missing module into a failure.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use phivault_crypto::{DataKey, KeyFile, KeyFileProtection, Unlock};
use phivault_hsm::Pkcs11Provider;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "123456";

struct TestToken(String);

impl Drop for TestToken {
    fn drop(&mut self) {
        let _ = Command::new("softhsm2-util").args(["--delete-token", "--token", &self.0]).output();
    }
}

fn token() -> Option<TestToken> {
    if !Path::new(MODULE).exists() {
        assert!(
            std::env::var_os("PHIVAULT_TEST_SOFTHSM").is_none(),
            "PHIVAULT_TEST_SOFTHSM is set but {MODULE} is missing"
        );
        eprintln!("SoftHSM2 is not installed: skipping");
        return None;
    }
    let label = format!("phivault-test-{}", std::process::id());
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", &label, "--pin", PIN, "--so-pin", "654321"])
        .output()
        .expect("softhsm2-util");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(TestToken(label))
}

#[test]
fn key_file_with_kek_in_softhsm_wraps_rotates_and_destroys() {
    let Some(token) = token() else { return };
    assert!(Pkcs11Provider::open(Path::new(MODULE), &token.0, "000000").is_err(), "wrong PIN refused");
    assert!(Pkcs11Provider::open(Path::new(MODULE), "no-such-token", PIN).is_err(), "unknown token refused");
    let provider = Arc::new(Pkcs11Provider::open(Path::new(MODULE), &token.0, PIN).expect("login"));

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("keys.json");
    let mut file = KeyFile::create(&path, KeyFileProtection::Hsm(provider.clone()), 1_000).expect("create");
    let text = std::fs::read_to_string(&path).expect("key file");
    assert!(text.contains("pkcs11") && text.contains(&token.0));

    let dk = DataKey::generate("dk-1").expect("rng");
    let wrapped = file.ring().wrap(&dk, "Patient/p1").expect("wrap in HSM");
    assert!(file.ring().unwrap("dk-1", "Patient/p1", &wrapped).is_ok());
    assert!(file.ring().unwrap("dk-1", "Patient/p2", &wrapped).is_err(), "bound to its scope");
    let mut tampered = wrapped.clone();
    tampered.wrapped[14] ^= 1;
    assert!(file.ring().unwrap("dk-1", "Patient/p1", &tampered).is_err(), "tampered wrapping refused");

    // A second server on the same token and key file (here: a second provider).
    let other = Pkcs11Provider::open(Path::new(MODULE), &token.0, PIN).expect("second login");
    let reopened = KeyFile::open(&path, Unlock::Hsm(Arc::new(other))).expect("reopen");
    assert!(reopened.ring().unwrap("dk-1", "Patient/p1", &wrapped).is_ok());

    file.add_current_kek(2_000).expect("rotate in HSM");
    let rewrapped = file.ring().rewrap("dk-1", "Patient/p1", &wrapped).expect("rewrap");
    file.retire_old_keks(3_000).expect("retire");
    assert_eq!(file.destroy_retired_keks(3_000, 0).expect("destroy").len(), 1);
    let after = KeyFile::open(&path, Unlock::Hsm(provider)).expect("reopen after rotation");
    assert!(after.ring().unwrap("dk-1", "Patient/p1", &rewrapped).is_ok());
    assert!(after.ring().unwrap("dk-1", "Patient/p1", &wrapped).is_err(), "old KEK destroyed in the token");
}
