//! Interoperability: an independent Bulk Data client, Medplum's command-line client
//! (`@medplum/cli` on npm, Node.js), signs in as a SMART backend service (an RS384 client
//! assertion it makes itself) and runs a Patient-level `$export` against a running
//! `phivault serve`: kick-off, status polling, downloads.
//!
//! Runs when `PHIVAULT_TEST_NODE_INTEROP=1` and `PHIVAULT_MEDPLUM` names the `medplum`
//! executable (`.ci/run` installs a pinned version and sets both).

mod common;

use common::{Server, phivault, text};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// An RSA key pair made by Node.js: the private key as PKCS#8 PEM for the client, the
/// public key as a JWK Set for phivault.
fn rsa_client_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let pem = dir.join(format!("{name}.pem"));
    let jwks = dir.join(format!("{name}.jwks.json"));
    let script = r#"
        const crypto = require("crypto"), fs = require("fs");
        const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
        fs.writeFileSync(process.argv[1], privateKey.export({ type: "pkcs8", format: "pem" }));
        const jwk = publicKey.export({ format: "jwk" });
        Object.assign(jwk, { alg: "RS384", use: "sig", kid: "interop-1" });
        fs.writeFileSync(process.argv[2], JSON.stringify({ keys: [jwk] }));
    "#;
    let made = Command::new("node").arg("-e").arg(script).arg(&pem).arg(&jwks).output().expect("node");
    assert!(made.status.success(), "{}", text(&made));
    (pem, jwks)
}

/// `medplum -p phivault OPTIONS ARGS` with its profile folder under `home`.
fn medplum(home: &Path, ca: &Path, args: &[&str]) -> Output {
    let bin = std::env::var("PHIVAULT_MEDPLUM").expect("PHIVAULT_MEDPLUM names the medplum executable");
    Command::new(bin)
        .args(args)
        .env("HOME", home)
        .env("NODE_EXTRA_CA_CERTS", ca)
        .env_remove("MEDPLUM_BASE_URL")
        .env_remove("MEDPLUM_CLIENT_ID")
        .env_remove("MEDPLUM_CLIENT_SECRET")
        .env_remove("MEDPLUM_CLIENT_ACCESS_TOKEN")
        .output()
        .expect("medplum")
}

fn field(output: &Output, label: &str) -> String {
    let out = String::from_utf8_lossy(&output.stdout);
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label:?} in: {}", text(output)))
}

/// Signs in as the backend client with `key` (the login stores the token in the profile).
fn login(home: &Path, ca: &Path, base: &str, client_id: &str, key: &Path) -> Output {
    let key = key.to_str().expect("utf8");
    let options = [
        "-p",
        "phivault",
        "--auth-type",
        "jwt-assertion",
        "--base-url",
        base,
        "--client-id",
        client_id,
        "--private-key-path",
        key,
        // Medplum's assertion audience is base URL + this; phivault wants its token endpoint.
        "--audience",
        "oauth/token",
        "--token-url",
        "oauth/token",
        "--fhir-url-path",
        "fhir/",
        "login",
    ];
    medplum(home, ca, &options)
}

fn ndjson(path: &Path) -> Vec<Value> {
    let body = std::fs::read_to_string(path).expect("file");
    body.lines().map(|l| serde_json::from_str(l).expect("one resource per line")).collect()
}

#[test]
fn medplum_bulk_client_exports_patients_as_a_backend_service() {
    if std::env::var("PHIVAULT_TEST_NODE_INTEROP").as_deref() != Ok("1") {
        eprintln!("skipped: set PHIVAULT_TEST_NODE_INTEROP=1 and PHIVAULT_MEDPLUM (needs node and @medplum/cli)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let bundles = phivault_demo::fake_patient_bundles();
    let folder = tmp.path().join("bundles");
    std::fs::create_dir(&folder).expect("folder");
    for (i, bundle) in bundles.iter().enumerate() {
        std::fs::write(folder.join(format!("{i}.json")), bundle.to_string()).expect("bundle");
    }
    let import = phivault(&data, &["import", folder.to_str().expect("utf8")]);
    assert!(import.status.success(), "{}", text(&import));

    let (key, jwks) = rsa_client_key(tmp.path(), "medplum");
    let client = phivault(
        &data,
        &["client", "add", "--name", "Medplum CLI", "--jwks", jwks.to_str().expect("utf8"), "--scopes", "system/*.rs"],
    );
    assert!(client.status.success(), "{}", text(&client));
    let client_id = field(&client, "client id:");

    let server = Server::start(&data);
    let base = format!("{}/", server.base_url());
    let ca = data.join("tls/cert.pem");

    // A key phivault never saw: the sign-in fails and no token is stored.
    let (stranger, _) = rsa_client_key(tmp.path(), "stranger");
    let stranger_home = tmp.path().join("stranger-home");
    std::fs::create_dir(&stranger_home).expect("home");
    let refused = login(&stranger_home, &ca, &base, &client_id, &stranger);
    assert!(!refused.status.success(), "{}", text(&refused));
    let stored = std::fs::read_to_string(stranger_home.join(".medplum/phivault.json")).unwrap_or_default();
    assert!(!stored.contains("activeLogin"), "a forged assertion got a token: {}", text(&refused));

    let home = tmp.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let signed_in = login(&home, &ca, &base, &client_id, &key);
    assert!(signed_in.status.success(), "{}", text(&signed_in));
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).expect("out");
    let export = medplum(
        &home,
        &ca,
        &[
            "-p",
            "phivault",
            "bulk",
            "export",
            "-e",
            "Patient",
            "-t",
            "Patient,Observation",
            "-d",
            out.to_str().expect("utf8"),
        ],
    );
    assert!(export.status.success(), "{}", text(&export));

    // Medplum writes its files after the command's promise settles: wait for both.
    let deadline = Instant::now() + Duration::from_secs(30);
    let files = loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&out).expect("out").map(|e| e.expect("entry").path()).collect();
        files.sort();
        if files.len() >= 2 || Instant::now() > deadline {
            break files;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let name = |p: &PathBuf| p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    let patients: Vec<Value> =
        files.iter().filter(|p| name(p).starts_with("Patient_")).flat_map(|p| ndjson(p)).collect();
    let observations: Vec<Value> =
        files.iter().filter(|p| name(p).starts_with("Observation_")).flat_map(|p| ndjson(p)).collect();
    assert_eq!(patients.len(), bundles.len(), "every fake patient, once: {files:?}\n{}", text(&export));
    assert!(patients.iter().all(|p| p["resourceType"] == "Patient"));
    let ids: BTreeSet<String> = patients.iter().map(|p| p["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(ids.len(), bundles.len(), "no patient twice");
    assert!(!observations.is_empty(), "{files:?}");
    for observation in &observations {
        assert_eq!(observation["resourceType"], "Observation");
        let subject = observation["subject"]["reference"].as_str().expect("subject");
        assert!(ids.contains(subject.trim_start_matches("Patient/")), "{subject} is one of the exported patients");
    }

    // The trail names the client and the counts of what left.
    let trail = phivault(&data, &["audit", "search", "--action", "export.complete"]);
    assert!(trail.status.success(), "{}", text(&trail));
    let entry = String::from_utf8_lossy(&trail.stdout);
    assert!(entry.contains(&client_id), "{entry}");
    assert!(entry.contains(&format!("Patient={}", bundles.len())), "{entry}");
}
