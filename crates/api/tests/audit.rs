//! Every /fhir request leaves an audit entry with ids only, refusals included; if the trail
//! cannot be written the request fails closed.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app, daffy, get, send, send_as_is, with_json};
use phivault_audit::{AuditEvent, AuditStore, Checkpoint, Outcome, StoredEntry};
use phivault_service::StoreError;

async fn trail(app: &common::TestApp) -> Vec<AuditEvent> {
    app.store
        .audit_entries(0, 10_000)
        .await
        .expect("entries")
        .iter()
        .map(|e| AuditEvent::from_canonical(&e.bytes).expect("canonical"))
        .collect()
}

#[tokio::test]
async fn reads_searches_writes_and_refusals_are_recorded_without_phi() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[("user-agent", "curl/8.0")])).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let obs = serde_json::json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "Duck weight"}, "subject": {"reference": format!("Patient/{id}")}});
    send(&app, with_json("POST", "/fhir/Observation", &obs, &[])).await;
    send(&app, get(&format!("/fhir/Patient/{id}"))).await;
    send(&app, get("/fhir/Observation?code=29463-7")).await;
    send(&app, get(&format!("/fhir/Observation?subject=Patient/{id}"))).await;
    send_as_is(&app.router, get(&format!("/fhir/Patient/{id}"))).await;

    let events = trail(&app).await;
    let actions: Vec<(&str, Outcome)> = events.iter().map(|e| (e.action.as_str(), e.outcome)).collect();
    assert_eq!(
        actions,
        [
            ("create", Outcome::Success),
            ("create", Outcome::Success),
            ("read", Outcome::Success),
            ("search", Outcome::Success),
            ("search", Outcome::Success),
            ("read", Outcome::Denied),
        ]
    );
    let read = &events[2];
    assert_eq!(read.resource_ids, [format!("Patient/{id}")]);
    assert_eq!(read.patient_ids, std::slice::from_ref(&id));
    assert!(read.user_id.as_deref().is_some_and(|u| u.starts_with("user-")));
    assert_eq!(read.roles, ["physician"]);
    assert!(read.request_id.is_some() && read.grant_id.is_some());
    assert_eq!(events[0].user_agent.as_deref(), Some("curl/8.0"));
    let search = &events[4];
    assert_eq!(search.patient_ids, std::slice::from_ref(&id), "the patients a search returned");
    assert_eq!(search.resource_ids.len(), 1);
    assert!(events[5].user_id.is_none() && events[5].reason.as_deref() == Some("401"));

    let raw: Vec<u8> =
        app.store.audit_entries(0, 10_000).await.expect("entries").iter().flat_map(|e| e.bytes.clone()).collect();
    let text = String::from_utf8(raw).expect("utf8");
    for canary in ["Duck", "Daffy", "123456789", "555-0142", "1937", "29463-7", "weight"] {
        assert!(!text.contains(canary), "the audit trail holds {canary:?}");
    }
}

/// An audit store that always fails.
#[derive(Debug)]
struct Broken;

#[async_trait]
impl AuditStore for Broken {
    async fn append_audit(&self, _: &[(i64, Vec<u8>)], _: bool) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable("disk full".into()))
    }
    async fn audit_entries(&self, _: u64, _: u64) -> Result<Vec<StoredEntry>, StoreError> {
        Ok(Vec::new())
    }
    async fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        Ok((0, [0; 32]))
    }
    async fn insert_checkpoint(&self, _: &Checkpoint) -> Result<(), StoreError> {
        Ok(())
    }
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        Ok(Vec::new())
    }
    async fn archive_prefix(&self, _: u64) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable("broken".into()))
    }
}

/// The app's identity and stores behind `policy` text, with an audit trail that refuses
/// every append (and the bulk exporter when `with_exports`).
fn with_broken_audit(app: &common::TestApp, policy: &str, with_exports: bool) -> axum::Router {
    // One broken trail for the operations and for the HTTP layer, as the server wires one.
    let broken = phivault_audit::AuditLog::start(Arc::new(Broken), "broken");
    let guarded = phivault_service::access::GuardedRecords::new(
        app.records.clone(),
        Arc::new(phivault_service::access::LivePolicies::new(phivault_testkit::policies_with(policy))),
        Arc::new(app.store.clone()),
        broken.clone(),
    );
    let exports = with_exports.then(|| {
        phivault_service::bulk::Exporter::new(
            guarded.clone(),
            Arc::new(app.store.clone()),
            app.records.keys().clone(),
            Arc::new(phivault_service::SystemClock),
            3_600_000,
            0,
        )
    });
    phivault_api::router(phivault_api::AppState {
        records: guarded,
        identity: app.identity.clone(),
        audit: broken,
        notifier: None,
        alerts: Arc::new(app.store.clone()),
        exports,
        config: Arc::new(phivault_api::ApiConfig {
            base_url: common::BASE.into(),
            max_body_bytes: 1 << 20,
            request_timeout: std::time::Duration::from_secs(30),
            trusted_proxies: vec![],
            zones: phivault_policy::Zones::default(),
            cors_origins: Vec::new(),
            local_offset_minutes: 0,
        }),
    })
}

#[tokio::test]
async fn without_a_durable_audit_entry_no_record_is_released() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let broken = with_broken_audit(&app, phivault_testkit::CLINICIANS_SEE_ALL, false);
    let request = Request::get(format!("/fhir/Patient/{id}"))
        .header("authorization", format!("Bearer {}", app.token))
        .body(Body::empty())
        .expect("request");
    // The same request through the working app succeeds: only the audit trail differs.
    let fine = send(&app, get(&format!("/fhir/Patient/{id}"))).await;
    assert_eq!(fine.status, StatusCode::OK);
    let r = send_as_is(&broken, request).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!r.text.contains("Duck") && !r.text.contains("123456789"), "{}", r.text);
    assert_eq!(r.body["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn sign_in_and_administration_are_recorded_without_typed_usernames() {
    let (app, _db) = app().await;
    let (user, _) = app
        .identity
        .create_user(phivault_identity::NewAccount {
            username: "nurse-tweety".into(),
            display_name: "Nurse Tweety".into(),
            roles: vec![phivault_identity::Role::Nurse],
            patient_id: None,
            password: Some("tweety pie is a bird".into()),
        })
        .await
        .expect("user");
    let login = |username: &str, password: &str| {
        Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("username={username}&password={}", password.replace(' ', "+"))))
            .expect("request")
    };
    send_as_is(&app.router, login("nurse-tweety", "wrong password here")).await;
    send_as_is(&app.router, login("sylvester-the-typo", "wrong password here")).await;
    let ok = send_as_is(&app.router, login("nurse-tweety", "tweety pie is a bird")).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let admin = phivault_testkit::signed_in(&app.identity, "root", vec![phivault_identity::Role::Admin], None).await;
    let off = Request::post("/admin/users/nurse-tweety/deactivate")
        .header("authorization", format!("Bearer {}", admin.expose()))
        .body(Body::empty())
        .expect("request");
    assert_eq!(send_as_is(&app.router, off).await.status, StatusCode::OK);

    let events = trail(&app).await;
    let logins: Vec<(Outcome, Option<&str>, Option<&str>)> = events
        .iter()
        .filter(|e| e.action == "login.password")
        .map(|e| (e.outcome, e.user_id.as_deref(), e.reason.as_deref()))
        .collect();
    assert_eq!(
        logins,
        [
            (Outcome::Denied, Some(user.id.as_str()), Some("bad_credentials")),
            (Outcome::Denied, None, Some("bad_credentials")),
            (Outcome::Success, Some(user.id.as_str()), Some("needs_password_change")),
        ]
    );
    let deactivation = events
        .iter()
        .find(|e| e.action == "admin.user.deactivate")
        .unwrap_or_else(|| panic!("{:?}", events.iter().map(|e| (&e.action, &e.reason)).collect::<Vec<_>>()));
    assert_eq!(deactivation.outcome, Outcome::Success);
    assert_eq!(deactivation.target.as_deref(), Some("user:nurse-tweety"));
    assert!(deactivation.user_id.is_some());
    let raw: Vec<u8> =
        app.store.audit_entries(0, 10_000).await.expect("entries").iter().flat_map(|e| e.bytes.clone()).collect();
    let text = String::from_utf8(raw).expect("utf8");
    assert!(!text.contains("sylvester"), "typed usernames stay out of the trail");
    assert!(!text.contains("tweety pie"), "passwords stay out of the trail");
}

#[tokio::test]
async fn an_export_whose_kick_off_cannot_be_recorded_never_runs() {
    let (app, db) = app().await;
    send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let exports_everything = format!(
        "{}\n{}",
        phivault_testkit::CLINICIANS_SEE_ALL,
        r#"@id("test-physicians-export")
permit (principal in PhiVault::Role::"physician", action == PhiVault::Action::"export", resource is PhiVault::Record);"#
    );
    let broken = with_broken_audit(&app, &exports_everything, true);
    let kick_off = Request::get("/fhir/Patient/$export")
        .header("authorization", format!("Bearer {}", app.token))
        .header("prefer", "respond-async")
        .body(Body::empty())
        .expect("request");
    let r = send_as_is(&broken, kick_off).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert!(!r.headers.contains_key("content-location"), "no status URL for an unrecorded export");

    // The job was stored by the kick-off, but it must end failed with nothing written.
    let phivault_testkit::TestDb::Sqlite(dir) = &db else { panic!("the HTTP tests run on SQLite") };
    let url = format!("sqlite://{}", dir.path().join("phivault.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("raw");
    let mut statuses: Vec<String> = Vec::new();
    for _ in 0..100 {
        statuses = sqlx::query_scalar("SELECT status FROM export_jobs").fetch_all(&pool).await.expect("jobs");
        if !statuses.is_empty() && statuses.iter().all(|s| s != "running") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(statuses, ["failed"], "the job never ran");
    // Failed before it ran, not after (a job that ran would fail later, at its own
    // export.complete entry, having read every record first).
    let job: String = sqlx::query_scalar("SELECT job FROM export_jobs").fetch_one(&pool).await.expect("job");
    assert!(job.contains("kick-off could not be recorded"), "{job}");
    let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM export_chunks").fetch_one(&pool).await.expect("count");
    assert_eq!(chunks, 0, "nothing was written");
}

fn observation_for(patient: &str) -> serde_json::Value {
    serde_json::json!({"resourceType": "Observation", "status": "final", "code": {"text": "audit test"},
        "subject": {"reference": format!("Patient/{patient}")}})
}

/// Ids of every stored Observation (all versions' resources).
async fn stored_observations(app: &common::TestApp) -> Vec<String> {
    let raw = phivault_testkit::raw_pool(&app.url).await;
    sqlx::query_scalar("SELECT DISTINCT id FROM resources WHERE resource_type = 'Observation'")
        .fetch_all(&raw)
        .await
        .expect("stored")
}

/// The review found that Bundle writes were recorded with no resource and no patient ids,
/// so a patient's accounting missed every transaction. The entry now comes from the
/// versions the commit stores.
#[tokio::test]
async fn a_transaction_entry_names_every_written_resource_and_patient_and_reaches_the_accounting() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let daffy_id = created.body["id"].as_str().expect("id").to_owned();
    let bundle = serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b7e1a8c-3f4e-4d2a-9c1b-000000000001",
         "resource": {"resourceType": "Patient", "name": [{"family": "Pig", "given": ["Porky"]}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                      "subject": {"reference": "urn:uuid:0b7e1a8c-3f4e-4d2a-9c1b-000000000001"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": observation_for(&daffy_id), "request": {"method": "POST", "url": "Observation"}}
    ]});
    let r = send(&app, with_json("POST", "/fhir", &bundle, &[])).await;
    let request_id = r.headers["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let written: Vec<String> = r.body["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let location = e["response"]["location"].as_str().expect("location");
            location.split("/_history").next().expect("type/id").to_owned()
        })
        .collect();
    let porky_id = written[0].strip_prefix("Patient/").expect("patient").to_owned();
    let events = trail(&app).await;
    let entry =
        events.iter().find(|e| e.request_id.as_deref() == Some(request_id.as_str())).expect("the bundle's entry");
    assert_eq!(entry.action, "batch");
    assert_eq!(entry.outcome, Outcome::Success);
    let mut named = entry.resource_ids.clone();
    named.sort();
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(named, expected, "every written resource, and nothing else");
    let mut patients = entry.patient_ids.clone();
    patients.sort();
    let mut both = vec![daffy_id.clone(), porky_id];
    both.sort();
    assert_eq!(patients, both, "every patient whose compartment holds a written version");
    assert!(!entry.policies.is_empty(), "the deciding policies");
    assert_eq!(
        events.iter().filter(|e| e.request_id.as_deref() == Some(request_id.as_str())).count(),
        1,
        "one entry for the request, not one from the operation and another from the HTTP layer"
    );

    // Daffy's own accounting shows the transaction.
    let daffy_account = phivault_testkit::signed_in(
        &app.identity,
        "daffy-himself",
        vec![phivault_identity::Role::Patient],
        Some(&daffy_id),
    )
    .await;
    let request = Request::get("/access/accounting")
        .header("authorization", format!("Bearer {}", daffy_account.expose()))
        .body(Body::empty())
        .expect("request");
    let accounting = send_as_is(&app.router, request).await;
    assert_eq!(accounting.status, StatusCode::OK, "{}", accounting.text);
    let actions: Vec<&str> =
        accounting.body["accesses"].as_array().expect("accesses").iter().filter_map(|a| a["action"].as_str()).collect();
    assert!(actions.contains(&"batch"), "{actions:?}");
}

/// A transaction that reveals an existing record (a conditional reference's match) carries
/// it in the commit's one entry: durable with the writes, so no failure after the commit can
/// turn a Bundle that happened into a 503.
#[tokio::test]
async fn a_transactions_revealed_match_rides_in_its_commit_entry() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let daffy_id = created.body["id"].as_str().expect("id").to_owned();
    let bundle = serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                      "subject": {"reference": "Patient?identifier=urn:mrn|123456789"}},
         "request": {"method": "POST", "url": "Observation"}}]});
    let r = send(&app, with_json("POST", "/fhir", &bundle, &[])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let request_id = r.headers["x-request-id"].to_str().expect("ascii").to_owned();
    let observation = r.body["entry"][0]["response"]["location"].as_str().expect("location");
    let observation = observation.split("/_history").next().expect("type/id").to_owned();
    let events = trail(&app).await;
    let mine: Vec<&AuditEvent> =
        events.iter().filter(|e| e.request_id.as_deref() == Some(request_id.as_str())).collect();
    assert_eq!(mine.len(), 1, "one entry: {mine:?}");
    let mut named = mine[0].resource_ids.clone();
    named.sort();
    let mut expected = vec![observation, format!("Patient/{daffy_id}")];
    expected.sort();
    assert_eq!(named, expected, "the write and the revealed match");
}

/// A write whose entry cannot be stored must not happen: the entry goes in the write's own
/// transaction, so when the database refuses the entry it refuses the change.
#[tokio::test]
async fn a_write_whose_entry_cannot_be_stored_leaves_no_change() {
    for engine in phivault_testkit::engines() {
        let (app, _db) = common::app_on(
            engine,
            1 << 20,
            phivault_testkit::policies_with(phivault_testkit::CLINICIANS_SEE_ALL),
            phivault_policy::Zones::default(),
            None,
        )
        .await;
        let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
        let daffy_id = created.body["id"].as_str().expect("id").to_owned();
        let raw = phivault_testkit::raw_pool(&app.url).await;
        let refuse = match engine {
            "sqlite" => vec![
                "CREATE TRIGGER no_room BEFORE INSERT ON audit_pending BEGIN SELECT RAISE(ABORT, 'disk full'); END",
            ],
            _ => vec![
                "CREATE FUNCTION no_room() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER no_room BEFORE INSERT ON audit_pending FOR EACH ROW EXECUTE FUNCTION no_room()",
            ],
        };
        for statement in refuse {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&raw).await.expect("trigger");
        }
        let r = send(&app, with_json("POST", "/fhir/Observation", &observation_for(&daffy_id), &[])).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{engine}: {}", r.text);
        let update = send(
            &app,
            with_json(
                "PUT",
                &format!("/fhir/Patient/{daffy_id}"),
                &{
                    let mut d = daffy();
                    d["id"] = daffy_id.clone().into();
                    d["gender"] = "unknown".into();
                    d
                },
                &[],
            ),
        )
        .await;
        assert_eq!(update.status, StatusCode::SERVICE_UNAVAILABLE, "{engine}: {}", update.text);
        let bundle = serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": observation_for(&daffy_id), "request": {"method": "POST", "url": "Observation"}}]});
        let r = send(&app, with_json("POST", "/fhir", &bundle, &[])).await;
        assert_ne!(r.status, StatusCode::OK, "{engine}: {}", r.text);
        assert!(stored_observations(&app).await.is_empty(), "{engine}: nothing was stored");
        let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM resources WHERE resource_type = 'Patient'")
            .fetch_one(&raw)
            .await
            .expect("count");
        assert_eq!(versions, 1, "{engine}: the update left no version");
    }
}

/// A client that gives up mid-request (a disconnect, a timeout) cancels the request's
/// future at any point: before the commit nothing happened, after it the entry is already
/// in the same transaction. Cut at forty different moments, no stored record lacks its
/// entry once the trail has chained what waits.
#[tokio::test]
async fn a_client_cutting_a_write_short_cannot_separate_the_change_from_its_entry() {
    use tower::ServiceExt;
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let daffy_id = created.body["id"].as_str().expect("id").to_owned();
    let mut cut = 0;
    for k in 0..40u64 {
        let mut request = with_json("POST", "/fhir/Observation", &observation_for(&daffy_id), &[]);
        request.headers_mut().insert("authorization", format!("Bearer {}", app.token).parse().expect("header"));
        let call = app.router.clone().oneshot(request);
        if tokio::time::timeout(std::time::Duration::from_micros(100 * k), call).await.is_err() {
            cut += 1;
        }
    }
    assert!(cut > 0, "some requests were cut short");
    phivault_audit::AuditLog::start(Arc::new(app.store.clone()), "after").settle().await.expect("settle");
    let named: std::collections::HashSet<String> = trail(&app)
        .await
        .into_iter()
        .filter(|e| e.action == "create" && e.outcome == Outcome::Success)
        .flat_map(|e| e.resource_ids)
        .collect();
    let stored = stored_observations(&app).await;
    let unrecorded: Vec<&String> = stored.iter().filter(|id| !named.contains(&format!("Observation/{id}"))).collect();
    assert!(
        unrecorded.is_empty(),
        "{} of {} stored without an entry ({cut} cut short)",
        unrecorded.len(),
        stored.len()
    );
}

/// Client text that failed validation never reaches the trail as given: an "id" that is an
/// SSN typed into the URL is recorded as a marker.
#[tokio::test]
async fn an_invalid_id_in_a_url_is_not_stored_in_the_trail() {
    let (app, _db) = app().await;
    let r = send(&app, get("/fhir/Patient/999-11-2233!")).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    let r = send(&app, get("/fhir/Patient/999-11-2233%20x")).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    let raw: Vec<u8> =
        app.store.audit_entries(0, 1000).await.expect("entries").iter().flat_map(|e| e.bytes.clone()).collect();
    let text = String::from_utf8(raw).expect("utf8");
    assert!(!text.contains("999-11-2233"), "{text}");
    assert!(text.contains("Patient/(invalid id)"), "{text}");
}

/// A thousand AND-ed parameters are the client's fault: 400 naming the limit, never a 503
/// that blames the database.
#[tokio::test]
async fn a_search_with_a_thousand_parameters_is_refused_as_bad_input() {
    let (app, _db) = app().await;
    let query: Vec<String> = (0..1000).map(|i| format!("family=Duck{i}")).collect();
    let r = send(&app, get(&format!("/fhir/Patient?{}", query.join("&")))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("at most 64 parameters"), "{}", r.text);
    let many: Vec<String> = (0..1500).map(|i| format!("Duck{i}")).collect();
    let r = send(&app, get(&format!("/fhir/Patient?family={}", many.join(",")))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

/// Reads are recorded by the operation that returns the records, with everything the HTTP
/// layer knows about the request (address, agent, request id, grant): exactly one entry per
/// request, for a read, a search and a history alike.
#[tokio::test]
async fn a_read_is_recorded_once_by_the_operation_with_the_requests_origin() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    for uri in
        [format!("/fhir/Patient/{id}"), "/fhir/Patient?family=Duck".to_owned(), format!("/fhir/Patient/{id}/_history")]
    {
        let mut request = get(&uri);
        request.headers_mut().insert("user-agent", "fake-agent/1.0".parse().expect("header"));
        let r = send(&app, request).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
        let request_id = r.headers["x-request-id"].to_str().expect("ascii").to_owned();
        let events: Vec<AuditEvent> =
            trail(&app).await.into_iter().filter(|e| e.request_id.as_deref() == Some(request_id.as_str())).collect();
        assert_eq!(events.len(), 1, "{uri}: one entry per request: {events:?}");
        let e = &events[0];
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.reason.as_deref(), Some("200"));
        assert_eq!(e.patient_ids, vec![id.clone()], "{uri}");
        assert!(e.resource_ids.contains(&format!("Patient/{id}")), "{uri}: {:?}", e.resource_ids);
        assert!(!e.policies.is_empty() && e.grant_id.is_some() && e.user_id.is_some(), "{uri}: {e:?}");
        assert_eq!(e.user_agent.as_deref(), Some("fake-agent/1.0"));
    }
}

/// Emergency mode is recorded before it takes effect: with a trail that cannot be written,
/// the privacy officer's switch answers 503 and the mode stays off.
#[tokio::test]
async fn an_emergency_switch_whose_entry_cannot_be_written_does_not_happen() {
    let (app, _db) = app().await;
    let broken = with_broken_audit(&app, "", false);
    let officer =
        phivault_testkit::signed_in(&app.identity, "po-granny", vec![phivault_identity::Role::PrivacyOfficer], None)
            .await;
    let request = Request::post("/emergency-mode")
        .header("authorization", format!("Bearer {}", officer.expose()))
        .header("content-type", "application/json")
        .body(Body::from(serde_json::json!({"readOnly": true, "reason": "drill"}).to_string()))
        .expect("request");
    let reply = send_as_is(&broken, request).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text);
    let mode = phivault_service::RecordStore::emergency_mode(&app.store).await.expect("mode");
    assert!(mode.is_none(), "the mode did not change unrecorded");
}
