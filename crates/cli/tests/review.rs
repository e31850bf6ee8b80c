//! `phivault integrity scan` and `phivault alerts` as an operator uses them: a clean store
//! scans intact; a record moved into another patient's compartment by the database owner
//! fails the scan, names the record, raises an integrity alert and writes the scan to the
//! audit trail; the alert is reviewed once; patients are flagged by id.

mod common;

use common::{phivault, text};

#[test]
fn integrity_scan_names_a_misfiled_record_and_raises_an_alert_reviewed_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let bundles: Vec<_> = phivault_demo::fake_patient_bundles().into_iter().take(2).collect();
    for (i, bundle) in bundles.iter().enumerate() {
        let path = tmp.path().join(format!("b{i}.json"));
        std::fs::write(&path, bundle.to_string()).expect("write");
        let import = phivault(&data, &["import", path.to_str().expect("utf8")]);
        assert!(import.status.success(), "{}", text(&import));
    }

    let imports = phivault(&data, &["audit", "search", "--action", "cli.import"]);
    let imports = String::from_utf8_lossy(&imports.stdout).to_string();
    assert_eq!(imports.lines().filter(|l| l.contains("\"reason\":\"files=1 created=")).count(), 2, "{imports}");

    let clean = phivault(&data, &["integrity", "scan"]);
    assert!(clean.status.success(), "{}", text(&clean));
    assert!(text(&clean).contains("every stored record is intact"), "{}", text(&clean));

    // The database owner moves one Observation into the other patient's compartment.
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (moved, other_patient) = runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
        let patients: Vec<String> =
            sqlx::query_scalar("SELECT id FROM resources WHERE resource_type = 'Patient' ORDER BY id")
                .fetch_all(&pool)
                .await
                .expect("patients");
        let (moved, owner): (String, String) = sqlx::query_as(
            "SELECT id, compartment FROM resources WHERE resource_type = 'Observation' ORDER BY id LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .expect("observation");
        let other = patients.into_iter().find(|p| *p != owner).expect("a second patient");
        sqlx::query("UPDATE resources SET compartment = ? WHERE id = ?")
            .bind(&other)
            .bind(&moved)
            .execute(&pool)
            .await
            .expect("tamper");
        pool.close().await;
        (moved, other)
    });

    let scan = phivault(&data, &["integrity", "scan"]);
    let out = text(&scan);
    assert!(!scan.status.success(), "{out}");
    assert!(out.contains(&format!("Observation/{moved}")) && out.contains("misfiled"), "{out}");
    assert!(out.contains("an alert was raised"), "{out}");
    assert!(!out.contains("Duck"), "ids only: {out}");

    let listed = phivault(&data, &["alerts", "list"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON alert per line"))
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"], "integrity");
    let id = alerts[0]["id"].as_str().expect("id").to_owned();

    let trail = phivault(&data, &["audit", "search", "--action", "integrity.scan"]);
    let trail_out = String::from_utf8_lossy(&trail.stdout).to_string();
    assert_eq!(trail_out.lines().count(), 2, "both scans are audited: {trail_out}");
    assert!(trail_out.contains("\"outcome\":\"failure\"") && trail_out.contains(&moved), "{trail_out}");
    let raised = phivault(&data, &["audit", "search", "--action", "alert.raised"]);
    assert!(String::from_utf8_lossy(&raised.stdout).contains(&id), "{}", text(&raised));

    let bad = phivault(&data, &["alerts", "review", &id, "--finding", "maybe"]);
    assert!(!bad.status.success() && text(&bad).contains("benign or violation"), "{}", text(&bad));
    let reviewed = phivault(&data, &["alerts", "review", &id, "--finding", "violation"]);
    assert!(reviewed.status.success(), "{}", text(&reviewed));
    let twice = phivault(&data, &["alerts", "review", &id, "--finding", "benign"]);
    assert!(!twice.status.success() && text(&twice).contains("already reviewed"), "{}", text(&twice));
    let open = phivault(&data, &["alerts", "list"]);
    assert!(String::from_utf8_lossy(&open.stdout).trim().is_empty(), "no open alerts remain");

    assert!(phivault(&data, &["alerts", "flag", &other_patient]).status.success());
    let flagged = phivault(&data, &["alerts", "flagged"]);
    assert!(text(&flagged).contains(&format!("Patient/{other_patient}")), "{}", text(&flagged));
    let unknown = phivault(&data, &["alerts", "flag", "no-such-patient"]);
    assert!(!unknown.status.success() && text(&unknown).contains("no Patient/"), "{}", text(&unknown));
    let review_cmds = phivault(&data, &["audit", "search", "--action", "cli.alerts."]);
    assert_eq!(String::from_utf8_lossy(&review_cmds.stdout).lines().count(), 8, "{}", text(&review_cmds));
}
