//! The access policies as an operator handles them: check, test, explain, care teams,
//! clearances, and a broken policy file that is refused with a readable message.

mod common;

use common::{phivault, text};

use std::path::Path;
use std::process::Command;

/// A data dir with one imported fake patient; returns the patient's id.
fn clinic(data: &Path, tmp: &Path) -> String {
    assert!(phivault(data, &["init", "--insecure-dev-keys"]).status.success());
    let bundle = tmp.join("daffy.json");
    let fake = phivault_demo::fake_patient_bundles().into_iter().next().expect("bundle");
    std::fs::write(&bundle, fake.to_string()).expect("bundle");
    assert!(phivault(data, &["import", bundle.to_str().expect("utf8")]).status.success());
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("db");
        sqlx::query_scalar("SELECT id FROM resources WHERE resource_type = 'Patient' LIMIT 1")
            .fetch_one(&pool)
            .await
            .expect("patient")
    })
}

#[test]
fn init_writes_policies_that_check_and_pass_their_decision_table() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    for file in ["clinical.cedar", "sensitive.cedar", "views.toml", "retention.toml", "cases.toml"] {
        assert!(data.join("policy").join(file).exists(), "{file}");
    }
    let check = phivault(&data, &["policy", "check"]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("clinician-reads-care-team-patients"));
    let test = phivault(&data, &["policy", "test"]);
    assert!(test.status.success(), "{}", text(&test));
    assert!(text(&test).contains(" 0 failed"), "{}", text(&test));

    // An operator's own table that expects something the policies do not do fails.
    let wrong = tmp.path().join("wrong.toml");
    std::fs::write(
        &wrong,
        "[[case]]\nname = \"billing reads notes\"\nprincipal = { roles = [\"billing\"] }\naction = \"read\"\n\
         resource = { type = \"DocumentReference\", patient = \"p\" }\nexpect = \"allow\"\n",
    )
    .expect("cases");
    let failed = phivault(&data, &["policy", "test", "--cases", wrong.to_str().expect("utf8")]);
    assert!(!failed.status.success());
    assert!(text(&failed).contains("FAIL billing reads notes"), "{}", text(&failed));
}

#[test]
fn a_broken_policy_file_is_refused_by_check_and_by_the_server() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    // An attribute the schema does not declare.
    std::fs::write(
        data.join("policy/extra.cedar"),
        "@id(\"typo\")\npermit (principal, action, resource is PhiVault::Record) when { resource.colour == \"red\" };\n",
    )
    .expect("policy");
    let check = phivault(&data, &["policy", "check"]);
    assert!(!check.status.success());
    let out = text(&check);
    assert!(out.contains("extra.cedar") && out.contains("typo"), "names the file and policy: {out}");
    let serve = Command::new(env!("CARGO_BIN_EXE_phivault"))
        .arg("--data-dir")
        .arg(&data)
        .arg("serve")
        .env("PHIVAULT_LISTEN", "127.0.0.1:0")
        .output()
        .expect("serve");
    assert!(!serve.status.success(), "the server refuses to start on invalid policies");
    assert!(text(&serve).contains("not valid"), "{}", text(&serve));
    // Missing @id.
    std::fs::write(data.join("policy/extra.cedar"), "permit (principal, action, resource);\n").expect("policy");
    assert!(text(&phivault(&data, &["policy", "check"])).contains("@id"));
}

#[test]
fn care_teams_need_a_real_patient_and_a_clinician_and_explain_says_why() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let patient = clinic(&data, tmp.path());
    for (user, roles) in [("dr-porky", "physician"), ("desk-petunia", "front_desk")] {
        let added = phivault(&data, &["user", "add", user, "--name", "Test", "--roles", roles]);
        assert!(added.status.success(), "{}", text(&added));
    }
    let forged = phivault(&data, &["careteam", "add", "dr-porky", "no-such-patient"]);
    assert!(!forged.status.success());
    assert!(text(&forged).contains("Patient/no-such-patient was not found"), "{}", text(&forged));
    let desk = phivault(&data, &["careteam", "add", "desk-petunia", &patient]);
    assert!(!desk.status.success(), "only physicians and nurses join care teams");

    let resource = format!("Patient/{patient}");
    let before =
        phivault(&data, &["policy", "explain", "--user", "dr-porky", "--action", "read", "--resource", &resource]);
    assert!(before.status.success(), "{}", text(&before));
    assert!(text(&before).contains("DENY") && text(&before).contains("default deny"), "{}", text(&before));
    assert!(!text(&before).contains("Duck"), "explain shows facts, never content");

    assert!(phivault(&data, &["careteam", "add", "dr-porky", &patient]).status.success());
    let after =
        phivault(&data, &["policy", "explain", "--user", "dr-porky", "--action", "read", "--resource", &resource]);
    let out = text(&after);
    assert!(out.contains("ALLOW") && out.contains("clinician-reads-care-team-patients"), "{out}");
    assert!(out.contains("45 CFR"), "the policy text with its citation: {out}");
    let listed = phivault(&data, &["careteam", "list", "--patient", &patient]);
    assert!(text(&listed).contains("1 membership"), "{}", text(&listed));
    let unknown = phivault(&data, &["clearance", "grant", "dr-porky", "astrology"]);
    assert!(!unknown.status.success() && text(&unknown).contains("unknown category"));
    assert!(phivault(&data, &["clearance", "grant", "dr-porky", "behavioral_health"]).status.success());

    let verify = phivault(&data, &["audit", "search", "--action", "cli.careteam.add"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains(&patient), "the assignment names its patient: {}", text(&verify));
}
