//! Workloads on the record service.

use std::path::PathBuf;
use std::time::Instant;

use phivault_crypto::{AssociatedData, BlindIndex, DataKey, SecretKey, open, seal};
use phivault_fhir::search::parse_search;
use phivault_service::Records;
use serde_json::{Value, json};

const BATCH: usize = 1000;

/// Synthetic patient `i`: ten patients share each family name, so a family search returns
/// the same number of matches at every database size.
pub fn patient(i: usize) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": format!("MRN{i:09}")}],
        "name": [{"use": "official", "family": format!("Fam{:07}", i / 10), "given": ["Bench", format!("G{i}")]}],
        "telecom": [{"system": "phone", "value": format!("555-01{:02}", i % 100)}, {"system": "email", "value": format!("p{i}@example.org")}],
        "gender": if i.is_multiple_of(2) { "female" } else { "male" },
        "birthDate": format!("{}-{:02}-{:02}", 1930 + i % 90, 1 + i % 12, 1 + i % 28),
        "address": [{"line": [format!("{i} Benchmark Way")], "city": "Toontown", "state": "CA", "postalCode": "00000"}]
    })
}

/// The id of the `i`-th benchmark patient.
pub fn ids_for(i: usize) -> String {
    format!("bench-{i}")
}

/// Loads patients `from..to` in batch bundles of 1000, with fixed ids (PUT) so reads can find them.
pub async fn load_patients(records: &Records, from: usize, to: usize) {
    let mut start = from;
    while start < to {
        let end = (start + BATCH).min(to);
        let entries: Vec<Value> = (start..end)
            .map(|i| {
                let mut p = patient(i);
                p["id"] = json!(ids_for(i));
                json!({"resource": p, "request": {"method": "PUT", "url": format!("Patient/{}", ids_for(i))}})
            })
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        let outcome = records.process_bundle(bundle).await.expect("batch");
        assert!(outcome.entries.iter().all(Result::is_ok), "batch entries failed");
        start = end;
    }
}

/// Mean µs of a read by id over 2000 reads spread over the loaded patients.
pub async fn read_by_id(records: &Records, loaded: usize) -> f64 {
    let n = 2000;
    let started = Instant::now();
    for k in 0..n {
        let i = (k * 7919) % loaded;
        records.read("Patient", &ids_for(i), None).await.expect("read");
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Mean µs of a family-name search (10 matches) over 300 searches.
pub async fn search_family(records: &Records, loaded: usize) -> f64 {
    let n = 300;
    let started = Instant::now();
    for k in 0..n {
        let family = format!("Fam{:07}", ((k * 7919) % loaded) / 10);
        let request =
            parse_search("Patient", &[("family".into(), family), ("_count".into(), "10".into())], true).expect("query");
        let page = records.search("Patient", &request, 0).await.expect("search");
        assert!(page.total >= 1);
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Mean µs of the store part of a family search (no decryption), to separate the layers.
pub async fn search_family_store_only(
    store: &phivault_store::SqlStore,
    ring: &phivault_crypto::KeyRing,
    loaded: usize,
) -> f64 {
    use phivault_service::{Filter, RecordStore, StoreQuery};
    let n = 300;
    let index = ring.blind_index();
    let started = Instant::now();
    for k in 0..n {
        let family = format!("p:fam{:07}", ((k * 7919) % loaded) / 10);
        let query = StoreQuery {
            resource_type: "Patient".into(),
            filters: vec![Filter::Terms { param: "family", any_of: vec![vec![index.term("family", &family)]] }],
            sort: phivault_fhir::search::Sort::LastUpdated { descending: false },
            offset: 0,
            limit: 10,
            count_total: true,
        };
        let (rows, total) = store.search(&query).await.expect("search");
        assert!(total >= 1 && !rows.is_empty());
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Mean ms of creating one Patient (each its own transaction and fsync).
pub async fn create_one(records: &Records, loaded: usize) -> f64 {
    let n = 100;
    let started = Instant::now();
    for k in 0..n {
        records.create("Patient", patient(loaded + 1_000_000 + k), None).await.expect("create");
    }
    started.elapsed().as_secs_f64() * 1e3 / n as f64
}

/// (µs per AEAD open of a patient body, µs of the HMACs a family query needs).
pub fn crypto_costs() -> (f64, f64) {
    let key = DataKey::generate("dk-bench").expect("rng");
    let body = serde_json::to_vec(&patient(42)).expect("json");
    let ad = AssociatedData { resource_type: "Patient", id: "bench-42", version: 1 };
    let sealed = seal(&key, ad, &body).expect("seal");
    let n = 20_000;
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(open(&key, ad, &sealed).expect("open"));
    }
    let aead = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let index = BlindIndex::new(&SecretKey::generate().expect("rng"));
    let started = Instant::now();
    for i in 0..n {
        std::hint::black_box(index.term("family", &format!("p:fam{i:07}")));
    }
    let hmac = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    (aead, hmac)
}

/// Imports the Synthea samples (batch bundles first) if they are present.
pub async fn import_synthea(records: &Records) -> (usize, f64) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir-samples/synthea");
    let Ok(listing) = std::fs::read_dir(&dir) else { return (0, 0.0) };
    let mut files: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut bundles: Vec<Value> =
        files.iter().map(|f| serde_json::from_slice(&std::fs::read(f).expect("read")).expect("json")).collect();
    bundles.sort_by_key(|b| b["type"] != "batch");
    let started = Instant::now();
    let mut written = 0;
    for bundle in bundles {
        let outcome = records.process_bundle(bundle).await.expect("bundle");
        written += outcome.entries.iter().filter(|e| e.is_ok()).count();
    }
    (written, started.elapsed().as_secs_f64())
}
