//! Interoperability: an independent SMART client (Python: Authlib for OAuth 2.0 + PKCE,
//! pyotp for TOTP) signs in to a running `phivault serve` and reads a Patient.
//!
//! Needs python3 with `authlib`, `requests` and `pyotp`; runs when
//! `PHIVAULT_TEST_PYTHON_INTEROP=1` (set by `.ci/run`, which installs them).

mod common;

use common::{Server, phivault};

use std::path::Path;
use std::process::{Command, Output};

fn field(output: &Output, label: &str) -> String {
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label:?} in: {text}{}", String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn python_smart_client_signs_in_with_pkce_and_reads_a_patient() {
    if std::env::var("PHIVAULT_TEST_PYTHON_INTEROP").as_deref() != Ok("1") {
        eprintln!("skipped: set PHIVAULT_TEST_PYTHON_INTEROP=1 (needs python3 with authlib, requests, pyotp)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let user = phivault(&data, &["user", "add", "dr-porky", "--name", "Dr Porky Pig", "--roles", "physician"]);
    assert!(user.status.success());
    let password = field(&user, "temporary password:");
    let redirect = "http://127.0.0.1:9/callback";
    let client = phivault(
        &data,
        &[
            "client",
            "add",
            "--name",
            "Python SMART client",
            "--redirect-uri",
            redirect,
            "--scopes",
            "openid fhirUser offline_access user/*.rs",
        ],
    );
    assert!(client.status.success(), "{}", String::from_utf8_lossy(&client.stderr));
    let client_id = field(&client, "client id:");
    let bundle = tmp.path().join("daffy.json");
    let fake = phivault_demo::fake_patient_bundles().into_iter().next().expect("bundle");
    std::fs::write(&bundle, fake.to_string()).expect("bundle");
    assert!(phivault(&data, &["import", bundle.to_str().expect("utf8")]).status.success());
    // The physician sees the patient only once on their care team.
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let patient_id: String = runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("db");
        sqlx::query_scalar("SELECT id FROM resources WHERE resource_type = 'Patient' LIMIT 1")
            .fetch_one(&pool)
            .await
            .expect("patient")
    });
    assert!(phivault(&data, &["careteam", "add", "dr-porky", &patient_id]).status.success());

    let server = Server::start(&data);
    let base = server.base_url();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/smart_client.py");
    let run = Command::new("python3")
        .arg(&script)
        .env("PV_BASE", &base)
        .env("PV_CA", data.join("tls/cert.pem"))
        .env("PV_USER", "dr-porky")
        .env("PV_PASSWORD", &password)
        .env("PV_CLIENT_ID", &client_id)
        .env("PV_REDIRECT", redirect)
        // requests prefers these over a session's own `verify`; the test trusts only
        // the server's self-signed certificate.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .expect("python3");
    let out = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{out}");
    assert!(out.trim_end().ends_with("OK"), "{out}");
}
