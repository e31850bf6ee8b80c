//! The integrity scan, attacked with the database owner's rights on both engines: a body
//! swapped for another record's, a flipped byte, a record moved into another patient's
//! compartment, a deleted version and a second "current" version are each named; a record
//! erased on purpose (crypto-shredded) is counted, not reported.

use std::collections::BTreeSet;

use phivault_service::{ProblemKind, Records};
use phivault_testkit::{engines, fresh_store, records};
use serde_json::json;

async fn exec(url: &str, engine: &str, sql: String) {
    match engine {
        "sqlite" => {
            let pool = sqlx::SqlitePool::connect(url).await.expect("raw sqlite");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect("tamper");
            pool.close().await;
        }
        _ => {
            let pool = sqlx::PgPool::connect(url).await.expect("raw pg");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect("tamper");
            pool.close().await;
        }
    }
}

async fn patient(records: &Records, family: &str, given: &str) -> String {
    let body = json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
        "identifier": [{"system": "urn:mrn", "value": "123456789"}]});
    let id = records.create("Patient", body.clone(), None).await.expect("create").resource.id;
    let mut v2 = body;
    v2["id"] = json!(id);
    v2["gender"] = json!("male");
    records.update("Patient", &id, v2, None).await.expect("update");
    id
}

async fn observation(records: &Records, patient: &str, text: &str) -> String {
    let body = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": text}, "subject": {"reference": format!("Patient/{patient}")}});
    records.create("Observation", body, None).await.expect("create").resource.id
}

#[tokio::test]
async fn every_kind_of_tampering_is_named_and_erasure_is_not() {
    for engine in engines() {
        let (store, _db, url) = fresh_store(engine).await;
        let records = records(store);
        let daffy = patient(&records, "Duck", "Daffy").await;
        let porky = patient(&records, "Pig", "Porky").await;
        let tweety = patient(&records, "Bird", "Tweety").await;
        let swapped = observation(&records, &daffy, "Daffy weight").await;
        let flipped = observation(&records, &daffy, "Daffy pulse").await;
        let moved = observation(&records, &porky, "Porky pulse").await;
        let _intact = observation(&records, &porky, "Porky weight").await;
        let _erased = observation(&records, &tweety, "Tweety weight").await;

        let mut calls = Vec::new();
        let clean = records.integrity_scan(&mut |done| calls.push(done)).await.expect("scan");
        assert!(clean.is_intact(), "{engine}: {:?}", clean.problems);
        assert_eq!((clean.resources, clean.versions, clean.shredded), (8, 11, 0), "{engine}");
        assert_eq!(calls.last(), Some(&11), "{engine}: progress reaches the total");

        assert!(records.shred_patient(&tweety, None).await.expect("shred"));
        // One bit of the first byte (a random nonce byte) flipped: a fixed value was a no-op 1 time in 256.
        let flip = match engine {
            "sqlite" => {
                "CAST((CASE WHEN substr(body, 1, 1) = X'00' THEN X'01' ELSE X'00' END) || substr(body, 2) AS BLOB)"
            }
            _ => "set_byte(body, 0, get_byte(body, 0) # 1)",
        };
        for sql in [
            format!(
                "UPDATE resources SET body = (SELECT body FROM resources WHERE id = '{moved}') WHERE id = '{swapped}'"
            ),
            format!("UPDATE resources SET body = {flip} WHERE id = '{flipped}'"),
            format!("UPDATE resources SET compartment = '{daffy}' WHERE id = '{moved}'"),
            format!("DELETE FROM resources WHERE id = '{daffy}' AND version = 1"),
            format!("UPDATE resources SET is_current = 1 WHERE id = '{porky}' AND version = 1"),
        ] {
            exec(&url, engine, sql).await;
        }

        let report = records.integrity_scan(&mut |_| {}).await.expect("scan");
        let found: BTreeSet<(String, ProblemKind)> = report.problems.iter().map(|p| (p.id.clone(), p.kind)).collect();
        let expected: BTreeSet<(String, ProblemKind)> = [
            (swapped.clone(), ProblemKind::Tampered),
            (flipped.clone(), ProblemKind::Tampered),
            (moved.clone(), ProblemKind::Misfiled),
            (daffy.clone(), ProblemKind::VersionGap),
            (porky.clone(), ProblemKind::CurrentFlag),
        ]
        .into();
        assert_eq!(found, expected, "{engine}");
        assert_eq!(report.shredded, 3, "{engine}: Tweety's two versions and note are erased, not damaged");
        assert_eq!(report.versions, 10, "{engine}");
        let affected = report.affected();
        assert_eq!(affected.len(), 5, "{engine}: {affected:?}");
        for problem in &report.problems {
            let text = problem.to_string();
            assert!(!text.contains("Duck") && !text.contains("123456789"), "ids only: {text}");
        }
    }
}
