//! One conformance suite for every storage engine: SQLite always, PostgreSQL when
//! `PHIVAULT_TEST_POSTGRES_URL` is set. Tests drive the record service, as the server does.

use phivault_fhir::search::parse_search;
use phivault_service::{RecordError, Records};
use phivault_testkit::{engines, fresh_store, records};
use serde_json::{Value, json};
use sqlx::{Connection, Row};

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn daffy() -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:mrn", "value": "123456789"}],
        "name": [{"family": "Duck", "given": ["Daffy"]}],
        "gender": "male",
        "birthDate": "1937-04-17"
    })
}

async fn search_ids(records: &Records, rtype: &str, pairs: &[(&str, &str)]) -> Vec<String> {
    let request = parse_search(rtype, &q(pairs), true).expect("valid search");
    records.search(rtype, &request, 0).await.expect("search").resources.into_iter().map(|r| r.id).collect()
}

async fn raw(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.expect("raw connection")
}

#[tokio::test]
async fn create_read_update_vread_and_history() {
    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let records = records(store);
        let created = records.create("Patient", daffy(), None).await.expect("create");
        assert!(created.created);
        let id = created.resource.id.clone();
        let read = records.read("Patient", &id, None).await.expect("read");
        assert_eq!(read.body["name"][0]["family"], "Duck", "{engine}");
        assert_eq!(read.body["meta"]["versionId"], "1");

        let mut changed = read.body.clone();
        changed["gender"] = json!("other");
        let updated = records.update("Patient", &id, changed.clone(), Some(1)).await.expect("update");
        assert_eq!(updated.resource.version, 2);
        assert!(
            matches!(records.update("Patient", &id, changed, Some(1)).await, Err(RecordError::VersionMismatch)),
            "stale If-Match"
        );

        assert_eq!(records.read("Patient", &id, Some(1)).await.expect("vread").body["gender"], "male");
        let history = records.history("Patient", Some(&id), 0, 10).await.expect("history");
        assert_eq!(history.total, 2);
        assert_eq!(history.versions[0].version, 2, "newest first");
        assert!(matches!(records.read("Patient", "no-such-id", None).await, Err(RecordError::NotFound { .. })));
        assert!(matches!(records.read("Patient", &id, Some(9)).await, Err(RecordError::NotFound { .. })));
    }
}

#[tokio::test]
async fn search_by_blind_index_dates_and_paging() {
    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let records = records(store);
        let daffy_id = records.create("Patient", daffy(), None).await.expect("daffy").resource.id;
        let mut donald = daffy();
        donald["name"] = json!([{"family": "Duckworth", "given": ["Donald"]}]);
        donald["identifier"] = json!([{"system": "urn:mrn", "value": "987654321"}]);
        donald["birthDate"] = json!("1980-06-09");
        donald["gender"] = json!("female");
        let donald_id = records.create("Patient", donald, None).await.expect("donald").resource.id;

        assert_eq!(search_ids(&records, "Patient", &[("family", "duck")]).await.len(), 2, "{engine}: prefix");
        assert_eq!(search_ids(&records, "Patient", &[("family", "duckw")]).await, vec![donald_id.clone()]);
        assert_eq!(search_ids(&records, "Patient", &[("name", "Daffy Duck")]).await, vec![daffy_id.clone()]);
        assert_eq!(
            search_ids(&records, "Patient", &[("identifier", "urn:mrn|123456789")]).await,
            vec![daffy_id.clone()]
        );
        assert_eq!(search_ids(&records, "Patient", &[("identifier", "123456789")]).await, vec![daffy_id.clone()]);
        assert!(search_ids(&records, "Patient", &[("identifier", "urn:other|123456789")]).await.is_empty());
        assert_eq!(search_ids(&records, "Patient", &[("birthdate", "1937-04-17")]).await, vec![daffy_id.clone()]);
        assert_eq!(search_ids(&records, "Patient", &[("birthdate", "lt1950")]).await, vec![daffy_id.clone()]);
        assert_eq!(search_ids(&records, "Patient", &[("birthdate", "ge1980-06-09")]).await, vec![donald_id.clone()]);
        assert_eq!(search_ids(&records, "Patient", &[("birthdate", "gt1980-06-09")]).await, Vec::<String>::new());
        assert_eq!(search_ids(&records, "Patient", &[("gender", "female")]).await, vec![donald_id.clone()]);
        assert_eq!(search_ids(&records, "Patient", &[("_id", &daffy_id)]).await, vec![daffy_id.clone()]);

        for (i, day) in ["2024-01-05", "2024-02-10", "2024-03-15"].iter().enumerate() {
            let obs = json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": format!("Patient/{}", if i == 2 { &donald_id } else { &daffy_id })},
                "effectiveDateTime": format!("{day}T10:00:00Z")});
            records.create("Observation", obs, None).await.expect("obs");
        }
        assert_eq!(search_ids(&records, "Observation", &[("patient", &daffy_id)]).await.len(), 2);
        assert_eq!(search_ids(&records, "Observation", &[("subject", &format!("Patient/{donald_id}"))]).await.len(), 1);
        assert_eq!(
            search_ids(&records, "Observation", &[("code", "http://loinc.org|8867-4"), ("date", "ge2024-02")])
                .await
                .len(),
            2
        );
        assert_eq!(search_ids(&records, "Observation", &[("date", "2024-01")]).await.len(), 1);

        let request = parse_search("Observation", &q(&[("_sort", "-date"), ("_count", "2")]), true).expect("sort");
        let page1 = records.search("Observation", &request, 0).await.expect("page 1");
        assert_eq!(page1.total, 3);
        assert_eq!(page1.resources.len(), 2);
        assert!(
            page1.resources[0].body["effectiveDateTime"].as_str().expect("date").starts_with("2024-03"),
            "{engine}: newest first"
        );
        let page2 = records.search("Observation", &request, 2).await.expect("page 2");
        assert_eq!(page2.resources.len(), 1);
        assert!(page2.resources[0].body["effectiveDateTime"].as_str().expect("date").starts_with("2024-01"));
    }
}

#[tokio::test]
async fn last_updated_searches_are_as_precise_as_their_value() {
    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let records = records(store);
        // Two records updated within one second, at different milliseconds (a few tries:
        // a pair may straddle a second boundary).
        let (first, second) = loop {
            let a = records.create("Patient", daffy(), None).await.expect("create").resource;
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            let b = records.create("Patient", daffy(), None).await.expect("create").resource;
            if a.last_updated_ms / 1000 == b.last_updated_ms / 1000 && a.last_updated_ms < b.last_updated_ms {
                break (a, b);
            }
        };
        let at = phivault_fhir::format_instant(first.last_updated_ms);
        // "Changed after the last one I saw", as a syncing client asks: the second record,
        // though in the same second (it used to be lost).
        let after = search_ids(&records, "Patient", &[("_lastUpdated", &format!("gt{at}"))]).await;
        assert!(after.contains(&second.id) && !after.contains(&first.id), "{engine}: {after:?}");
        let until = search_ids(&records, "Patient", &[("_lastUpdated", &format!("le{at}"))]).await;
        assert!(until.contains(&first.id) && !until.contains(&second.id), "{engine}: {until:?}");
        // A value written to the second still covers its whole second.
        let whole = &at[..19];
        let in_second = search_ids(&records, "Patient", &[("_lastUpdated", whole)]).await;
        assert!(in_second.contains(&first.id) && in_second.contains(&second.id), "{engine}: {in_second:?}");
    }
}

#[tokio::test]
async fn transaction_is_atomic_and_resolves_references() {
    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let records = records(store);
        let org = json!({"resourceType": "Organization", "identifier": [{"system": "urn:org", "value": "acme"}], "name": "Acme Clinic"});
        records.create("Organization", org, None).await.expect("org");

        let good = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": daffy(), "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222", "resource": {"resourceType": "Encounter", "status": "finished",
                "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
                "serviceProvider": {"reference": "Organization?identifier=urn:org|acme"}}, "request": {"method": "POST", "url": "Encounter"}}
        ]});
        let done = records.process_bundle(good).await.expect("transaction");
        let encounter = done.entries[1].as_ref().expect("entry").resource.body.clone();
        let patient_id = done.entries[0].as_ref().expect("entry").resource.id.clone();
        assert_eq!(encounter["subject"]["reference"], format!("Patient/{patient_id}"), "{engine}");
        assert!(encounter["serviceProvider"]["reference"].as_str().expect("ref").starts_with("Organization/"));

        let before = search_ids(&records, "Patient", &[]).await.len();
        let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:33333333-3333-4333-8333-333333333333", "resource": daffy(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "effectiveDateTime": "2024-02-30"}, "request": {"method": "POST", "url": "Observation"}}
        ]});
        let err = records.process_bundle(bad).await.expect_err("bad entry refuses the whole transaction");
        assert!(err.to_string().contains("entry 1"), "{err}");
        assert_eq!(search_ids(&records, "Patient", &[]).await.len(), before, "{engine}: nothing written");

        let conditional = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Organization", "identifier": [{"system": "urn:org", "value": "acme"}]},
             "request": {"method": "POST", "url": "Organization", "ifNoneExist": "identifier=urn:org|acme"}}
        ]});
        let outcome = records.process_bundle(conditional).await.expect("batch");
        assert!(!outcome.entries[0].as_ref().expect("entry").created, "existing match returned, not created");
    }
}

#[tokio::test]
async fn tampered_or_swapped_ciphertext_fails_integrity_check() {
    for engine in engines() {
        let (store, _db, url) = fresh_store(engine).await;
        let records = records(store);
        let a = records.create("Patient", daffy(), None).await.expect("a").resource.id;
        let b = records.create("Patient", daffy(), None).await.expect("b").resource.id;
        let mut conn = raw(&url).await;
        let rows = sqlx::query("SELECT id, body FROM resources WHERE resource_type = 'Patient' ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .expect("rows");
        let bodies: Vec<(String, Vec<u8>)> =
            rows.iter().map(|r| (r.try_get("id").expect("id"), r.try_get("body").expect("body"))).collect();

        // Swap the two rows' ciphertexts: each must now refuse to open.
        for (id, body) in [(&bodies[0].0, &bodies[1].1), (&bodies[1].0, &bodies[0].1)] {
            sqlx::query("UPDATE resources SET body = $1 WHERE id = $2")
                .bind(body.clone())
                .bind(id.clone())
                .execute(&mut conn)
                .await
                .expect("swap");
        }
        for id in [&a, &b] {
            assert!(
                matches!(records.read("Patient", id, None).await, Err(RecordError::Integrity { .. })),
                "{engine}: swapped row opened"
            );
        }
        // Restore one row, then flip a single byte in it.
        let mut flipped = bodies[0].1.clone();
        flipped[20] ^= 0x01;
        sqlx::query("UPDATE resources SET body = $1 WHERE id = $2")
            .bind(flipped)
            .bind(bodies[0].0.clone())
            .execute(&mut conn)
            .await
            .expect("flip");
        assert!(
            matches!(records.read("Patient", &bodies[0].0, None).await, Err(RecordError::Integrity { .. })),
            "{engine}: flipped byte"
        );
        sqlx::query("UPDATE resources SET body = $1 WHERE id = $2")
            .bind(bodies[0].1.clone())
            .bind(bodies[0].0.clone())
            .execute(&mut conn)
            .await
            .expect("restore");
        assert!(records.read("Patient", &bodies[0].0, None).await.is_ok(), "restored row opens again");
    }
}

#[tokio::test]
async fn shredding_a_patient_makes_every_version_unrecoverable() {
    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let records = records(store);
        let id = records.create("Patient", daffy(), None).await.expect("create").resource.id;
        let current = records.read("Patient", &id, None).await.expect("read").body;
        records.update("Patient", &id, current, None).await.expect("v2");
        let obs = json!({"resourceType": "Observation", "status": "final", "subject": {"reference": format!("Patient/{id}")}});
        let obs_id = records.create("Observation", obs, None).await.expect("obs").resource.id;
        let other = records.create("Patient", daffy(), None).await.expect("other").resource.id;

        assert!(records.shred_patient(&id, None).await.expect("shred"));
        for version in [None, Some(1), Some(2)] {
            assert!(
                matches!(records.read("Patient", &id, version).await, Err(RecordError::Shredded { .. })),
                "{engine}: {version:?}"
            );
        }
        assert!(matches!(records.read("Observation", &obs_id, None).await, Err(RecordError::Shredded { .. })));
        assert_eq!(
            search_ids(&records, "Patient", &[("family", "duck")]).await,
            vec![other.clone()],
            "index rows gone"
        );
        assert!(records.read("Patient", &other, None).await.is_ok(), "other patients untouched");
        assert!(
            search_ids(&records, "Observation", &[]).await.is_empty(),
            "{engine}: shredded resources leave listings"
        );
        assert_eq!(search_ids(&records, "Patient", &[]).await, vec![other.clone()], "{engine}: and do not break them");
        let type_history = records.history("Patient", None, 0, 10).await.expect("type history");
        assert_eq!(type_history.total, 1, "{engine}: type history skips shredded versions");
        assert!(!records.shred_patient(&id, None).await.expect("again"), "second shred is a no-op");
        let write = records.create("Observation", json!({"resourceType": "Observation", "status": "final", "subject": {"reference": format!("Patient/{id}")}}), None).await;
        assert!(matches!(write, Err(RecordError::Shredded { .. })), "no new data under a shredded patient");
    }
}

#[tokio::test]
async fn key_rotation_while_serving_loses_nothing() {
    use phivault_crypto::{KeyRing, SecretKey};
    use phivault_service::{StaticKeySource, SystemClock, keys};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let old_kek = SecretKey::generate().expect("rng");
        let index = SecretKey::generate().expect("rng");
        let ring_v1 =
            KeyRing::new(BTreeMap::from([("kek-1".to_owned(), old_kek.clone())]), "kek-1".into(), index.clone())
                .expect("ring");
        let records_v1 = phivault_testkit::records_with_ring(store.clone(), ring_v1);
        let mut ids = Vec::new();
        for _ in 0..40 {
            ids.push(records_v1.create("Patient", daffy(), None).await.expect("create").resource.id);
        }
        // The rotating process knows old and new KEKs; the serving one learns of kek-2 later.
        let ring_v2 = KeyRing::new(
            BTreeMap::from([("kek-1".to_owned(), old_kek), ("kek-2".to_owned(), SecretKey::generate().expect("rng"))]),
            "kek-2".into(),
            index,
        )
        .expect("ring");
        let source = Arc::new(StaticKeySource(Arc::new(ring_v2)));
        let serving = Records::new(Arc::new(store.clone()), source.clone(), Arc::new(SystemClock));
        let reader = {
            let serving = serving.clone();
            let ids = ids.clone();
            tokio::spawn(async move {
                for round in 0..5 {
                    for id in &ids {
                        serving
                            .read("Patient", id, None)
                            .await
                            .unwrap_or_else(|e| panic!("read failed in round {round}: {e}"));
                    }
                }
            })
        };
        let mut progress = Vec::new();
        let rewrapped = keys::rewrap_all(&store, source.as_ref(), &mut |n| progress.push(n)).await.expect("rotate");
        reader.await.expect("reader");
        assert_eq!(rewrapped, 40, "{engine}: one data key per patient");
        let usage = keys::key_usage(&store, source.as_ref()).await.expect("usage");
        assert_eq!(usage.pending_rewrap(), 0);
        assert_eq!(usage.data_keys_per_kek, vec![("kek-2".to_owned(), 40)]);
        for id in &ids {
            serving.read("Patient", id, None).await.expect("readable after rotation");
        }
        assert_eq!(keys::rewrap_all(&store, source.as_ref(), &mut |_| {}).await.expect("rerun"), 0, "rerun is a no-op");
    }
}

#[tokio::test]
async fn a_data_key_created_concurrently_elsewhere_makes_the_commit_a_conflict() {
    use phivault_crypto::WrappedDataKey;
    use phivault_service::{RecordStore, StoreError, StoredDataKey};

    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let key = |id: &str| StoredDataKey {
            key_id: id.into(),
            scope: "type/Organization".into(),
            wrapped: Some(WrappedDataKey { kek_id: "kek-test".into(), wrapped: vec![1; 60] }),
            created_ms: 1,
        };
        store.commit(&[key("dk-first")], &[], None).await.expect("first key");
        let lost = store.commit(&[key("dk-second")], &[], None).await;
        assert!(
            matches!(lost, Err(StoreError::Conflict)),
            "{engine}: the second process must re-seal under the first key"
        );
        assert_eq!(store.data_key("type/Organization").await.expect("read").expect("key").key_id, "dk-first");
        store.commit(&[key("dk-first")], &[], None).await.expect("re-sending one's own key is harmless");
    }
}

#[tokio::test]
async fn batch_conditional_creates_match_existing_duplicates_and_ambiguity() {
    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let records = records(store);
        let org = |v: &str| json!({"resourceType": "Organization", "identifier": [{"system": "urn:org", "value": v}]});
        records.create("Organization", org("twice"), None).await.expect("first");
        records.create("Organization", org("twice"), None).await.expect("second");
        let existing = records.create("Organization", org("once"), None).await.expect("once").resource.id;
        let entry = |v: &str| json!({"resource": org(v), "request": {"method": "POST", "url": "Organization", "ifNoneExist": format!("identifier=urn:org|{v}")}});
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [entry("once"), entry("new"), entry("new"), entry("twice")]});
        let outcome = records.process_bundle(bundle).await.expect("batch");
        let first = outcome.entries[0].as_ref().expect("existing match");
        assert!(!first.created && first.resource.id == existing, "{engine}");
        let created = outcome.entries[1].as_ref().expect("created");
        assert!(created.created);
        let duplicate = outcome.entries[2].as_ref().expect("in-batch duplicate");
        assert!(
            !duplicate.created && duplicate.resource.id == created.resource.id,
            "{engine}: same condition twice creates once"
        );
        assert!(matches!(outcome.entries[3], Err(RecordError::MultipleMatches)), "{engine}");
        assert_eq!(search_ids(&records, "Organization", &[("identifier", "urn:org|new")]).await.len(), 1);
    }
}

/// Two stores on one database stand for two server processes: every write is checked in
/// the database, so concurrent updates never lose or duplicate a version, and concurrent
/// first writes to a new data-key scope both succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_neither_lose_nor_duplicate_versions() {
    use std::sync::Arc;

    use phivault_service::{StaticKeySource, SystemClock};
    use phivault_store::SqlStore;

    for engine in engines() {
        let (store_a, _db, url) = fresh_store(engine).await;
        let store_b = SqlStore::connect(&url).await.expect("second node");
        let ring = Arc::new(StaticKeySource(Arc::new(phivault_testkit::test_ring())));
        let node = |store: SqlStore| Records::new(Arc::new(store), ring.clone(), Arc::new(SystemClock));
        let (a, b) = (node(store_a), node(store_b));

        // First writes to a fresh type scope from both nodes at once.
        let org = json!({"resourceType": "Organization", "name": "Acme"});
        let (ra, rb) = tokio::join!(a.create("Organization", org.clone(), None), b.create("Organization", org, None));
        assert!(ra.is_ok() && rb.is_ok(), "{engine}: {:?} {:?}", ra.err(), rb.err());
        assert!(a.read("Organization", &rb.expect("b").resource.id, None).await.is_ok(), "one shared type key");

        // Racing read-modify-write updates of one patient from both nodes.
        let id = a.create("Patient", daffy(), None).await.expect("create").resource.id;
        let mut tasks = Vec::new();
        for (n, records) in [a.clone(), b.clone(), a.clone(), b.clone()].into_iter().enumerate() {
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                let mut won = 0;
                for round in 0..10 {
                    let current = records.read("Patient", &id, None).await.expect("read");
                    let mut body = current.body.clone();
                    body["gender"] = json!(if (n + round) % 2 == 0 { "male" } else { "female" });
                    match records.update("Patient", &id, body, Some(current.version)).await {
                        Ok(_) => won += 1,
                        Err(RecordError::VersionMismatch | RecordError::Conflict) => {}
                        Err(e) => panic!("unexpected: {e}"),
                    }
                }
                won
            }));
        }
        let mut successes = 0;
        for task in tasks {
            successes += task.await.expect("task");
        }
        let history = a.history("Patient", Some(&id), 0, 100).await.expect("history");
        assert_eq!(history.total, successes + 1, "{engine}: every acknowledged update is one version");
        let mut versions: Vec<i64> = history.versions.iter().map(|v| v.version).collect();
        versions.sort_unstable();
        assert_eq!(
            versions,
            (1..=i64::try_from(successes + 1).expect("small")).collect::<Vec<_>>(),
            "{engine}: no gaps or duplicates"
        );
        assert_eq!(
            a.read("Patient", &id, None).await.expect("head").version,
            i64::try_from(successes + 1).expect("small")
        );
    }
}

/// Standing facts (clearances, departments) are cached per process under the revocation
/// stamp: a clearance withdrawn by another process on the same database must take effect on
/// the next request, not when a cache expires.
#[tokio::test]
async fn a_withdrawn_clearance_takes_effect_at_once_in_every_process() {
    use phivault_service::access::{AccessStore, Assignment, AssignmentKind};
    for engine in engines() {
        let (store, _db, url) = fresh_store(engine).await;
        let other = phivault_store::SqlStore::connect(&url).await.expect("a second process");
        let clearance = |value: &str| Assignment {
            kind: AssignmentKind::Clearance,
            user_id: "user-daffy".into(),
            value: value.into(),
            assigned_by: "test".into(),
            assigned_ms: 0,
        };
        store.assign(&clearance("hiv")).await.expect("assign");
        assert_eq!(store.standing("user-daffy").await.expect("standing").clearances, ["hiv"], "{engine}");
        // Read again: now from the cache on SQLite.
        assert_eq!(store.standing("user-daffy").await.expect("standing").clearances, ["hiv"], "{engine}");
        assert!(other.unassign(AssignmentKind::Clearance, "user-daffy", "hiv").await.expect("unassign"));
        assert!(
            store.standing("user-daffy").await.expect("standing").clearances.is_empty(),
            "{engine}: withdrawn at once"
        );
        other.assign(&clearance("psy")).await.expect("assign elsewhere");
        assert_eq!(store.standing("user-daffy").await.expect("standing").clearances, ["psy"], "{engine}");
    }
}
