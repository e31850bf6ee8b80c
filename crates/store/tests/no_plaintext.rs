//! No identifying plaintext at rest: after loading the fake demo patients and the Synthea
//! samples, the raw database bytes (SQLite file, WAL and shared memory; `pg_dump` of
//! PostgreSQL) contain none of the planted identifiers.

use std::path::PathBuf;

use phivault_service::Records;
use phivault_testkit::{TestDb, engines, fresh_store, records};
use serde_json::Value;

fn synthea_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir-samples/synthea");
    dir.is_dir().then_some(dir)
}

/// Bundles to load, batch (infrastructure) bundles first.
fn sample_bundles() -> Vec<Value> {
    let mut bundles: Vec<Value> = Vec::new();
    if let Some(dir) = synthea_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("samples")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            bundles.push(serde_json::from_slice(&std::fs::read(file).expect("read")).expect("json"));
        }
    }
    bundles.sort_by_key(|b| b["type"] != "batch");
    bundles
}

fn push_identifiers(patient: &Value, out: &mut Vec<String>) {
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
            _ => vec![],
        }
    };
    for name in patient["name"].as_array().into_iter().flatten() {
        out.extend(strings(&name["family"]));
        out.extend(strings(&name["given"]));
    }
    for id in patient["identifier"].as_array().into_iter().flatten() {
        out.extend(strings(&id["value"]));
    }
    for t in patient["telecom"].as_array().into_iter().flatten() {
        out.extend(strings(&t["value"]));
    }
    for a in patient["address"].as_array().into_iter().flatten() {
        out.extend(strings(&a["line"]));
    }
    if let Some(birth) = patient["birthDate"].as_str() {
        out.push(birth.to_owned());
        if let [y, m, d] = birth.split('-').collect::<Vec<_>>()[..] {
            out.push(format!("{m}/{d}/{y}"));
        }
    }
}

fn planted(bundles: &[Value]) -> Vec<String> {
    let mut out = phivault_demo::planted_identifiers();
    for bundle in bundles {
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            if entry["resource"]["resourceType"] == "Patient" {
                push_identifiers(&entry["resource"], &mut out);
            }
        }
    }
    // Random ciphertext matches any given 3-5 byte string by chance (tens of MB scanned), so
    // short values are sought in the form a plaintext leak would take: a JSON string.
    let mut out: Vec<String> =
        out.into_iter().filter(|s| !s.is_empty()).map(|s| if s.len() >= 6 { s } else { format!("\"{s}\"") }).collect();
    out.sort();
    out.dedup();
    out
}

async fn load(records: &Records, bundles: &[Value]) -> usize {
    let mut written = 0;
    for bundle in phivault_demo::fake_patient_bundles().into_iter().chain(bundles.iter().cloned()) {
        let outcome = records.process_bundle(bundle).await.expect("bundle loads");
        for entry in &outcome.entries {
            assert!(entry.is_ok(), "entry failed: {:?}", entry.as_ref().err().map(ToString::to_string));
        }
        written += outcome.entries.len();
    }
    written
}

fn raw_bytes(db: &TestDb, url: &str) -> Option<Vec<u8>> {
    match db {
        TestDb::Sqlite(dir) => {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(dir.path()).expect("dir").filter_map(Result::ok) {
                bytes.extend(std::fs::read(entry.path()).expect("read db file"));
            }
            Some(bytes)
        }
        TestDb::Postgres { .. } => {
            let output = std::process::Command::new("pg_dump").arg("--no-owner").arg(url).output().ok()?;
            assert!(output.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&output.stderr));
            Some(output.stdout)
        }
    }
}

/// Every needle found in `haystack` (one Aho-Corasick pass over tens of megabytes).
fn found<'a>(haystack: &[u8], needles: &'a [String]) -> Vec<&'a String> {
    let automaton = aho_corasick::AhoCorasick::new(needles).expect("automaton");
    let mut hits: Vec<&String> =
        automaton.find_overlapping_iter(haystack).map(|m| &needles[m.pattern().as_usize()]).collect();
    hits.sort();
    hits.dedup();
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_identifier_appears_in_raw_database_bytes() {
    let bundles = sample_bundles();
    let identifiers = planted(&bundles);
    assert!(identifiers.iter().any(|s| s == "\"Duck\"") && identifiers.iter().any(|s| s == "04/17/1937"));
    // The scanner finds these values in plaintext: most of them occur in the source JSON.
    let source: Vec<u8> = bundles
        .iter()
        .chain(phivault_demo::fake_patient_bundles().iter())
        .flat_map(|b| b.to_string().into_bytes())
        .collect();
    let in_source = found(&source, &identifiers).len();
    assert!(
        in_source * 2 > identifiers.len(),
        "only {in_source} of {} identifiers seen in the source",
        identifiers.len()
    );
    for engine in engines() {
        let (store, db, url) = fresh_store(engine).await;
        let records = records(store.clone());
        let written = load(&records, &bundles).await;
        assert!(written > 100, "{engine}: loaded {written}");
        // Searches still work through the blind index.
        let request =
            phivault_fhir::search::parse_search("Patient", &[("family".into(), "Duck".into())], true).expect("search");
        assert_eq!(records.search("Patient", &request, 0).await.expect("search").total, 1, "{engine}");
        // Scan while the pool is open, so SQLite's WAL is still on disk.
        let Some(bytes) = raw_bytes(&db, &url) else {
            eprintln!("pg_dump not found: skipping the PostgreSQL byte scan");
            continue;
        };
        assert!(bytes.len() > 100_000, "{engine}: scanned {} bytes", bytes.len());
        assert_eq!(found(&bytes, &["Patient".to_owned()]).len(), 1, "{engine}: the scan sees the database at all");
        let leaks = found(&bytes, &identifiers);
        assert!(leaks.is_empty(), "{engine}: plaintext identifiers at rest: {leaks:?}");
        store.close().await;
    }
}
