//! End-to-end in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`) signs a physician in with a temporary password and
//! TOTP enrolment, finds a patient, reads the chart, writes a note and vital signs, is
//! refused a patient outside the team and breaks the glass; the front desk registers a
//! patient, assigns the physician and books an appointment, and the physician then finds
//! them; the patient reads and downloads their record and sees who opened it; an
//! administrator requests an account and the privacy officer approves it; axe-core checks every
//! page and no identifying value in any address, cookie or web storage
//! (`tests/interop/browser_e2e.py`). Screenshots go to `target/e2e-screenshots/`.
//!
//! Runs when `PHIVAULT_TEST_BROWSER=1` and `PHIVAULT_AXE` names axe-core's `axe.min.js`
//! (`.ci/run` installs Chromium, ChromeDriver and axe-core and sets both).

mod common;

use common::{Server, phivault};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn field(output: &Output, label: &str) -> String {
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label:?} in: {text}{}", String::from_utf8_lossy(&output.stderr)))
}

/// The ids of every Patient in the data dir's database.
fn patient_ids(data: &Path) -> Vec<String> {
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("db");
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM resources WHERE resource_type = 'Patient'")
            .fetch_all(&pool)
            .await
            .expect("patients");
        pool.close().await;
        ids
    })
}

/// Imports the demo's `index`th cartoon patient; returns its Patient id.
fn import_patient(data: &Path, tmp: &Path, index: usize) -> String {
    let before = patient_ids(data);
    let bundle = tmp.join(format!("patient-{index}.json"));
    let fake = phivault_demo::fake_patient_bundles().into_iter().nth(index).expect("bundle");
    std::fs::write(&bundle, fake.to_string()).expect("bundle");
    let imported = phivault(data, &["import", bundle.to_str().expect("utf8")]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    patient_ids(data).into_iter().find(|id| !before.contains(id)).expect("a new patient")
}

#[test]
fn a_physician_works_in_a_real_browser_and_leaves_no_phi_in_addresses_or_storage() {
    if std::env::var("PHIVAULT_TEST_BROWSER").as_deref() != Ok("1") {
        eprintln!("skipped: set PHIVAULT_TEST_BROWSER=1 and PHIVAULT_AXE (needs chromium, chromedriver, axe-core)");
        return;
    }
    let axe = std::env::var("PHIVAULT_AXE").expect("PHIVAULT_AXE names axe.min.js");
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let user = phivault(&data, &["user", "add", "dr-porky", "--name", "Dr Quincy Test", "--roles", "physician"]);
    assert!(user.status.success());
    let password = field(&user, "temporary password:");
    let daffy = import_patient(&data, tmp.path(), 0);
    let porky = import_patient(&data, tmp.path(), 2);
    assert!(phivault(&data, &["careteam", "add", "dr-porky", &daffy]).status.success());
    let desk = phivault(&data, &["user", "add", "desk-granny", "--name", "Granny Desk", "--roles", "front_desk"]);
    assert!(desk.status.success());
    let patient =
        phivault(&data, &["user", "add", "daffy", "--name", "Daffy", "--roles", "patient", "--patient-id", &daffy]);
    assert!(patient.status.success(), "{}", String::from_utf8_lossy(&patient.stderr));
    let physician_id = field(&user, "id:");
    let admin = phivault(&data, &["user", "add", "admin-bugs", "--name", "Bugs Admin", "--roles", "admin"]);
    assert!(admin.status.success());
    let officer =
        phivault(&data, &["user", "add", "po-granny", "--name", "Granny Officer", "--roles", "privacy_officer"]);
    assert!(officer.status.success());

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let server = Server::start(&data);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/browser_e2e.py");
    let phi = serde_json::to_string(&phivault_demo::planted_identifiers()).expect("json");
    let run = Command::new("python3")
        .arg(&script)
        .env("PV_BASE", server.base_url())
        .env("PV_USER", "dr-porky")
        .env("PV_PASSWORD", &password)
        .env("PV_PHYSICIAN_ID", &physician_id)
        .env("PV_DESK", "desk-granny")
        .env("PV_DESK_PASSWORD", field(&desk, "temporary password:"))
        .env("PV_PATIENT", "daffy")
        .env("PV_PATIENT_PASSWORD", field(&patient, "temporary password:"))
        .env("PV_ADMIN", "admin-bugs")
        .env("PV_ADMIN_PASSWORD", field(&admin, "temporary password:"))
        .env("PV_OFFICER", "po-granny")
        .env("PV_OFFICER_PASSWORD", field(&officer, "temporary password:"))
        .env("PV_DAFFY", &daffy)
        .env("PV_PORKY", &porky)
        .env("PV_PHI", phi)
        .env("PV_AXE", axe)
        .env("PV_SHOTS", &shots)
        .output()
        .expect("python3");
    let out = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{out}");
    assert!(out.trim_end().ends_with("OK"), "{out}");
}

#[test]
fn an_idle_page_warns_then_removes_itself_for_the_sign_in_page() {
    if std::env::var("PHIVAULT_TEST_BROWSER").as_deref() != Ok("1") {
        eprintln!("skipped: set PHIVAULT_TEST_BROWSER=1 and PHIVAULT_AXE (needs chromium, chromedriver, axe-core)");
        return;
    }
    let axe = std::env::var("PHIVAULT_AXE").expect("PHIVAULT_AXE names axe.min.js");
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    // Sessions idle out after one minute (the shortest setting).
    let config = data.join("phivault.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("idle_timeout_minutes = 15"), "{text}");
    std::fs::write(&config, text.replace("idle_timeout_minutes = 15", "idle_timeout_minutes = 1")).expect("config");
    let user = phivault(&data, &["user", "add", "dr-idle", "--name", "Dr Quincy Test", "--roles", "physician"]);
    assert!(user.status.success());
    let daffy = import_patient(&data, tmp.path(), 0);
    assert!(phivault(&data, &["careteam", "add", "dr-idle", &daffy]).status.success());
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let server = Server::start(&data);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/browser_e2e.py");
    let phi = serde_json::to_string(&phivault_demo::planted_identifiers()).expect("json");
    let run = Command::new("python3")
        .arg(&script)
        .env("PV_MODE", "idle")
        .env("PV_BASE", server.base_url())
        .env("PV_USER", "dr-idle")
        .env("PV_PASSWORD", field(&user, "temporary password:"))
        .env("PV_DAFFY", &daffy)
        .env("PV_PHI", phi)
        .env("PV_AXE", axe)
        .env("PV_SHOTS", &shots)
        .output()
        .expect("python3");
    let out = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{out}");
    assert!(out.trim_end().ends_with("OK"), "{out}");
}
