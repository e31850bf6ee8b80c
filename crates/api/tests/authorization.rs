//! Access decided by the default Cedar policies, through the HTTP API, as an attacker would
//! probe it: another patient's id, a search that could leak through its total or paging,
//! a sensitive label, a masked field, an address outside the network zones.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{BASE, Reply, TestApp, app_with, get, send_as_is, with_json};
use phivault_audit::{AuditEvent, AuditStore, Outcome};
use phivault_identity::Role;
use phivault_policy::{Policies, Zones};
use phivault_service::access::{AccessStore, Assignment, AssignmentKind};
use serde_json::{Value, json};

const SSN: &str = "http://hl7.org/fhir/sid/us-ssn";

struct Clinic {
    app: TestApp,
    _db: phivault_testkit::TestDb,
    /// On dr-daffy's care team.
    daffy: String,
    /// Nobody's.
    porky: String,
}

async fn as_user(app: &TestApp, token: &str, request: Request<Body>) -> Reply {
    let mut request = request;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    send_as_is(&app.router, request).await
}

async fn patient(app: &TestApp, family: &str, ssn: &str) -> String {
    let body = json!({
        "resourceType": "Patient",
        "identifier": [{"system": SSN, "value": ssn}, {"system": "urn:mrn", "value": "123456789"}],
        "name": [{"family": family, "given": ["Test"]}],
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">narrative</div>"}
    });
    app.records.create("Patient", body, None).await.expect("patient").resource.id
}

async fn observation(app: &TestApp, patient: &str, label: Option<&str>, text: &str) -> String {
    let mut body = json!({"resourceType": "Observation", "status": "final", "code": {"text": text},
        "subject": {"reference": format!("Patient/{patient}")}});
    if let Some(label) = label {
        body["meta"] =
            json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": label}]});
    }
    app.records.create("Observation", body, None).await.expect("observation").resource.id
}

async fn clinic_with(zones: Zones) -> Clinic {
    let (app, db) = app_with(1 << 20, Policies::defaults().expect("defaults"), zones).await;
    let daffy = patient(&app, "Duck", "999-00-0001").await;
    let porky = patient(&app, "Pig", "999-00-0002").await;
    let physician = app.identity.find_user("dr-daffy").await.expect("physician");
    app.store
        .assign(&Assignment {
            kind: AssignmentKind::CareTeam,
            user_id: physician.id,
            value: daffy.clone(),
            assigned_by: "test".into(),
            assigned_ms: 0,
        })
        .await
        .expect("assign");
    Clinic { app, _db: db, daffy, porky }
}

async fn clinic() -> Clinic {
    clinic_with(Zones::default()).await
}

async fn token(app: &TestApp, username: &str, roles: Vec<Role>, patient: Option<&str>) -> String {
    phivault_testkit::signed_in(&app.identity, username, roles, patient).await.expose().to_owned()
}

async fn trail(app: &TestApp) -> Vec<AuditEvent> {
    let entries = app.store.audit_entries(0, 10_000).await.expect("entries");
    entries.iter().map(|e| AuditEvent::from_canonical(&e.bytes).expect("canonical")).collect()
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries.iter().filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned)).collect::<Vec<_>>()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_physician_reads_their_patient_and_is_refused_another_patients_record_and_both_are_audited() {
    let c = clinic().await;
    let own = as_user(&c.app, &c.app.token, get(&format!("/fhir/Patient/{}", c.daffy))).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let other = as_user(&c.app, &c.app.token, get(&format!("/fhir/Patient/{}", c.porky))).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    // A conditional read of a record out of reach is refused like any read, never a 304.
    let mut conditional = get(&format!("/fhir/Patient/{}", c.porky));
    conditional.headers_mut().insert("if-none-match", "*".parse().expect("header"));
    assert_eq!(as_user(&c.app, &c.app.token, conditional).await.status, StatusCode::FORBIDDEN);
    assert_eq!(other.body["issue"][0]["code"], "forbidden");
    assert!(!other.text.contains("Pig") && !other.text.contains("default-deny"), "no detail leaks: {}", other.text);

    let events = trail(&c.app).await;
    let read = events.iter().find(|e| e.action == "read" && e.outcome == Outcome::Success).expect("allowed read");
    assert_eq!(read.policies, ["clinician-reads-care-team-patients"]);
    let refused = events.iter().find(|e| e.action == "read" && e.outcome == Outcome::Denied).expect("refusal");
    assert_eq!(refused.policies, ["default-deny"]);
    assert!(refused.resource_ids.contains(&format!("Patient/{}", c.porky)));
}

#[tokio::test]
async fn searches_never_count_or_page_past_what_a_direct_read_allows() {
    let c = clinic().await;
    for i in 0..3 {
        observation(&c.app, &c.daffy, None, &format!("weight {i}")).await;
        observation(&c.app, &c.porky, None, &format!("weight {i}")).await;
    }
    let psy = observation(&c.app, &c.daffy, Some("PSY"), "counselling").await;
    // Two per page: three visible observations, so two pages, whatever else is stored.
    let first = as_user(&c.app, &c.app.token, get("/fhir/Observation?_count=2")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["total"], 3, "only the care-team patient's unlabelled observations count");
    let next = first.body["link"].as_array().expect("links").iter().find(|l| l["relation"] == "next").cloned();
    let next = next.expect("a second page")["url"].as_str().expect("url").trim_start_matches(BASE).to_owned();
    let second = as_user(&c.app, &c.app.token, get(&next)).await;
    let mut seen = ids(&first.body);
    seen.extend(ids(&second.body));
    assert_eq!(seen.len(), 3);
    assert!(second.body["link"].as_array().expect("links").iter().all(|l| l["relation"] != "next"));
    assert!(!seen.contains(&psy), "a behavioural-health record stays out of search results");
    // Probing for the label itself finds nothing and counts nothing.
    let probe = as_user(&c.app, &c.app.token, get("/fhir/Observation?_security=PSY")).await;
    assert_eq!((probe.body["total"].as_u64(), ids(&probe.body).len()), (Some(0), 0));
    // Nor does asking for the other patient's compartment.
    let other = as_user(&c.app, &c.app.token, get(&format!("/fhir/Observation?subject=Patient/{}", c.porky))).await;
    assert_eq!((other.body["total"].as_u64(), ids(&other.body).len()), (Some(0), 0));
    // The direct read of the labelled record is refused too.
    let direct = as_user(&c.app, &c.app.token, get(&format!("/fhir/Observation/{psy}"))).await;
    assert_eq!(direct.status, StatusCode::FORBIDDEN);
    // Type history is scoped the same way.
    let history = as_user(&c.app, &c.app.token, get("/fhir/Patient/_history")).await;
    assert_eq!(ids(&history.body), vec![c.daffy.clone()]);
}

#[tokio::test]
async fn front_desk_sees_no_ssn_and_an_update_through_the_mask_keeps_it() {
    let c = clinic().await;
    let desk = token(&c.app, "desk-bugs", vec![Role::FrontDesk], None).await;
    let read = as_user(&c.app, &desk, get(&format!("/fhir/Patient/{}", c.porky))).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert!(!read.text.contains("999-00-0002") && !read.text.contains("narrative"), "{}", read.text);
    assert!(read.text.contains("123456789"), "the MRN is needed at the desk");
    assert!(read.body["meta"]["security"].as_array().expect("labels").iter().any(|l| l["code"] == "REDACTED"));
    let searched = as_user(&c.app, &desk, get("/fhir/Patient?family=Pig")).await;
    assert!(!searched.text.contains("999-00-0002"), "masked inside search results too");
    // The desk fixes the name on what it saw; the SSN it never saw survives.
    let mut edited = read.body.clone();
    edited["name"][0]["given"] = json!(["Porky"]);
    let version = edited["meta"]["versionId"].as_str().expect("version").to_owned();
    let etag = format!("W/\"{version}\"");
    let put = with_json("PUT", &format!("/fhir/Patient/{}", c.porky), &edited, &[("if-match", etag.as_str())]);
    let updated = as_user(&c.app, &desk, put).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let stored = c.app.records.read("Patient", &c.porky, None).await.expect("stored");
    let text = stored.body.to_string();
    assert!(text.contains("999-00-0002") && text.contains("Porky") && text.contains("narrative"), "{text}");
    assert!(!text.contains("REDACTED"), "the response label is not stored");
    // Clinical records are not the desk's business.
    let obs = observation(&c.app, &c.porky, None, "weight").await;
    assert_eq!(as_user(&c.app, &desk, get(&format!("/fhir/Observation/{obs}"))).await.status, StatusCode::NOT_FOUND);
}

/// Minimum necessary that holds for every spelling: SSNs under HL7's OID, under identifier
/// type `SS` with a local system, or in another case with a trailing slash stay hidden from
/// the front desk, and the desk cannot search by an SSN (a match would confirm it), in any
/// spelling or as a bare value; its MRN search still works.
#[tokio::test]
async fn the_front_desk_neither_sees_nor_searches_by_an_ssn_however_it_is_spelled() {
    let c = clinic().await;
    let desk = token(&c.app, "desk-bugs", vec![Role::FrontDesk], None).await;
    let spelled = json!({"resourceType": "Patient", "name": [{"family": "Bunny", "given": ["Bugs"]}],
        "identifier": [
            {"system": "urn:oid:2.16.840.1.113883.4.1", "value": "999-31-0001"},
            {"system": "HTTP://HL7.ORG/FHIR/SID/US-SSN/", "value": "999-31-0002"},
            {"system": "urn:example:clinic-ids", "value": "999-31-0003",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}]}},
            {"system": "urn:mrn", "value": "555000111"}]});
    let bugs = c.app.records.create("Patient", spelled, None).await.expect("patient").resource.id;
    c.app
        .store
        .assign(&Assignment {
            kind: AssignmentKind::CareTeam,
            user_id: c.app.identity.find_user("desk-bugs").await.expect("desk").id,
            value: bugs.clone(),
            assigned_by: "test".into(),
            assigned_ms: 0,
        })
        .await
        .expect("assign");
    let read = as_user(&c.app, &desk, get(&format!("/fhir/Patient/{bugs}"))).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    for n in 1..=3 {
        assert!(!read.text.contains(&format!("999-31-000{n}")), "spelling {n} shown to the desk: {}", read.text);
    }
    assert!(read.text.contains("555000111"), "{}", read.text);
    for probe in [
        format!("identifier={SSN}|999-00-0002"),
        "identifier=urn:oid:2.16.840.1.113883.4.1|999-31-0001".to_owned(),
        "identifier=http://hl7.org/fhir/sid/us-ssn/|999-00-0002".to_owned(),
        "identifier=999-00-0002".to_owned(),
        "identifier=999-77-7777".to_owned(),
    ] {
        let r = as_user(&c.app, &desk, get(&format!("/fhir/Patient?{probe}"))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{probe}: {}", r.text);
        assert!(!r.text.contains("Pig") && !r.text.contains("Bunny"), "{probe}: {}", r.text);
    }
    let by_mrn = as_user(&c.app, &desk, get("/fhir/Patient?identifier=urn:mrn|555000111")).await;
    assert_eq!(by_mrn.status, StatusCode::OK, "{}", by_mrn.text);
    // Clinicians who see SSNs may search by them.
    let clinician = as_user(&c.app, &c.app.token, get(&format!("/fhir/Patient?identifier={SSN}|999-00-0002"))).await;
    assert_eq!(clinician.status, StatusCode::OK, "{}", clinician.text);
}

#[tokio::test]
async fn a_patient_reaches_only_their_own_compartment() {
    let c = clinic().await;
    let own_obs = observation(&c.app, &c.daffy, Some("ETH"), "own substance-use record").await;
    observation(&c.app, &c.porky, None, "someone else's").await;
    let patient = token(&c.app, "daffy-duck", vec![Role::Patient], Some(&c.daffy)).await;
    assert_eq!(as_user(&c.app, &patient, get(&format!("/fhir/Patient/{}", c.daffy))).await.status, StatusCode::OK);
    let other = as_user(&c.app, &patient, get(&format!("/fhir/Patient/{}", c.porky))).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "another patient's id");
    let search = as_user(&c.app, &patient, get("/fhir/Observation")).await;
    assert_eq!(ids(&search.body), vec![own_obs.clone()], "own records only, own sensitive ones included");
    let write = with_json(
        "POST",
        "/fhir/Observation",
        &json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "self-reported"}, "subject": {"reference": format!("Patient/{}", c.daffy)}}),
        &[],
    );
    assert_eq!(as_user(&c.app, &patient, write).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn administrators_and_privacy_officers_read_no_records() {
    let c = clinic().await;
    let vitals = observation(&c.app, &c.daffy, None, "pulse").await;
    for (name, role) in
        [("admin-elmer", Role::Admin), ("po-granny", Role::PrivacyOfficer), ("re-taz", Role::Researcher)]
    {
        let t = token(&c.app, name, vec![role], None).await;
        // (The privacy officer's review page alone reads a Patient, under a purpose of use
        // no request can declare: review_page.rs.) Not even with an operations purpose.
        let mut read = get(&format!("/fhir/Patient/{}", c.daffy));
        read.headers_mut().insert("x-purpose-of-use", "HOPERAT".parse().expect("header"));
        assert_eq!(as_user(&c.app, &t, read).await.status, StatusCode::NOT_FOUND, "{name}");
        for uri in [format!("/fhir/Patient/{}/_history/1", c.daffy), format!("/fhir/Patient/{}/$everything", c.daffy)] {
            assert_eq!(as_user(&c.app, &t, get(&uri)).await.status, StatusCode::NOT_FOUND, "{name} {uri}");
        }
        let clinical = as_user(&c.app, &t, get(&format!("/fhir/Observation/{vitals}"))).await;
        assert_eq!(clinical.status, StatusCode::NOT_FOUND, "{name}: no clinical record");
        let search = as_user(&c.app, &t, get("/fhir/Patient")).await;
        assert_eq!(search.status, StatusCode::FORBIDDEN, "{name}: no browsing by name: {}", search.text);
    }
}

#[tokio::test]
async fn clinicians_cannot_write_into_a_patient_they_do_not_care_for_nor_move_a_record_there() {
    let c = clinic().await;
    let foreign = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": format!("Patient/{}", c.porky)}});
    let post = as_user(&c.app, &c.app.token, with_json("POST", "/fhir/Observation", &foreign, &[])).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    // Move an observation of one's own patient into another patient's compartment.
    let own = observation(&c.app, &c.daffy, None, "weight").await;
    let mut moved = foreign.clone();
    moved["id"] = json!(own);
    let put = as_user(&c.app, &c.app.token, with_json("PUT", &format!("/fhir/Observation/{own}"), &moved, &[])).await;
    assert_eq!(put.status, StatusCode::FORBIDDEN);
    // A transaction that slips one foreign entry in writes nothing.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "ok"},
            "subject": {"reference": format!("Patient/{}", c.daffy)}}, "request": {"method": "POST", "url": "Observation"}},
        {"resource": foreign, "request": {"method": "POST", "url": "Observation"}}
    ]});
    let tx = as_user(&c.app, &c.app.token, with_json("POST", "/fhir", &bundle, &[])).await;
    assert_eq!(tx.status, StatusCode::FORBIDDEN, "{}", tx.text);
    let all = c
        .app
        .records
        .search("Observation", &phivault_fhir::search::parse_search("Observation", &[], false).expect("query"), 0)
        .await
        .expect("search");
    assert_eq!(all.total, 1, "nothing of the refused transaction was written");
}

#[tokio::test]
async fn nothing_is_allowed_from_outside_the_configured_network_zones() {
    let only = vec!["10.1.2.0/24".to_owned()];
    let c = clinic_with(Zones::new([("clinic", only.as_slice())]).expect("zones")).await;
    // In-process requests carry no client address: outside every zone.
    let read = as_user(&c.app, &c.app.token, get(&format!("/fhir/Patient/{}", c.daffy))).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "outside the zones nothing exists, not even break-glass");
    let events = trail(&c.app).await;
    let refused = events.iter().find(|e| e.action == "read").expect("audited");
    assert_eq!(refused.policies, ["nothing-from-outside-the-network-zones"]);
    // The client saw "not found"; the trail says what happened, and to whose record.
    assert_eq!(refused.outcome, phivault_audit::Outcome::Denied);
    assert_eq!(refused.patient_ids, std::slice::from_ref(&c.daffy));
}

/// A small deterministic generator (no external crate): xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[tokio::test]
async fn property_every_search_result_is_directly_readable_and_masked_fields_never_appear() {
    let c = clinic().await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut patients = vec![c.daffy.clone(), c.porky.clone()];
    for i in 0..6 {
        patients.push(patient(&c.app, &format!("Fake{i}"), &format!("999-10-{i:04}")).await);
    }
    let labels = [None, None, None, Some("PSY"), Some("ETH"), Some("HIV"), Some("R")];
    for i in 0..40 {
        let p = patients[rng.below(patients.len())].clone();
        observation(&c.app, &p, labels[rng.below(labels.len())], &format!("obs {i}")).await;
    }
    // Users of every role, with random care teams and clearances.
    let roles = [Role::Physician, Role::Nurse, Role::FrontDesk, Role::Billing, Role::Patient, Role::Admin];
    let mut users = Vec::new();
    for u in 0..8 {
        let role = roles[u % roles.len()];
        let own = (role == Role::Patient).then(|| patients[rng.below(patients.len())].clone());
        let name = format!("user-{u}");
        let t = token(&c.app, &name, vec![role], own.as_deref()).await;
        let account = c.app.identity.find_user(&name).await.expect("user");
        for p in &patients {
            if rng.below(3) == 0 {
                let a = Assignment {
                    kind: AssignmentKind::CareTeam,
                    user_id: account.id.clone(),
                    value: p.clone(),
                    assigned_by: "test".into(),
                    assigned_ms: 0,
                };
                c.app.store.assign(&a).await.expect("assign");
            }
        }
        if rng.below(2) == 0 {
            let a = Assignment {
                kind: AssignmentKind::Clearance,
                user_id: account.id.clone(),
                value: "behavioral_health".into(),
                assigned_by: "test".into(),
                assigned_ms: 0,
            };
            c.app.store.assign(&a).await.expect("clear");
        }
        users.push((name, t));
    }
    let searches = ["/fhir/Observation", "/fhir/Patient", "/fhir/Observation/_history", "/fhir/Patient/_history"];
    let mut checked = 0;
    for _ in 0..40 {
        let (name, t) = &users[rng.below(users.len())];
        let base = searches[rng.below(searches.len())];
        let count = 1 + rng.below(5);
        let mut url = format!("{base}?_count={count}");
        let mut pages = 0;
        loop {
            let reply = as_user(&c.app, t, get(&url)).await;
            if reply.status == StatusCode::FORBIDDEN {
                break;
            }
            assert_eq!(reply.status, StatusCode::OK, "{name} {url}: {}", reply.text);
            assert!(
                !reply.text.contains("999-00-") && !reply.text.contains("999-10-") || name_sees_ssn(name),
                "{name}: a masked SSN appeared"
            );
            for entry in reply.body["entry"].as_array().into_iter().flatten() {
                let r = &entry["resource"];
                let (t_, id) = (r["resourceType"].as_str().expect("type"), r["id"].as_str().expect("id"));
                let direct = as_user(&c.app, t, get(&format!("/fhir/{t_}/{id}"))).await;
                assert_eq!(direct.status, StatusCode::OK, "{name} saw {t_}/{id} in {url} but may not read it");
                checked += 1;
            }
            let next = reply.body["link"].as_array().into_iter().flatten().find(|l| l["relation"] == "next");
            match next.and_then(|l| l["url"].as_str()) {
                Some(next) if pages < 10 => {
                    url = next.trim_start_matches(BASE).to_owned();
                    pages += 1;
                }
                _ => break,
            }
        }
    }
    assert!(checked > 20, "the property was exercised ({checked} results checked)");
}

/// Physicians, nurses, billing and patients see SSNs; the front desk view hides them.
fn name_sees_ssn(name: &str) -> bool {
    let u: usize = name.trim_start_matches("user-").parse().expect("index");
    matches!(u % 6, 0 | 1 | 3 | 4)
}

/// Collects the notices a notifier was asked to send.
#[derive(Debug, Default)]
struct Outbox(std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl phivault_service::access::Notifier for Outbox {
    async fn notify(&self, subject: &str, body: &str) -> Result<(), String> {
        self.0.lock().expect("lock").push(format!("{subject}\n{body}"));
        Ok(())
    }
}

fn break_glass(patient: &str, reason: &str, note: &str) -> Request<Body> {
    with_json("POST", "/access/break-glass", &json!({"patient": patient, "reason": reason, "note": note}), &[])
}

#[tokio::test]
async fn break_glass_grants_one_patient_for_a_time_notifies_and_waits_for_review() {
    let outbox = std::sync::Arc::new(Outbox::default());
    let (app, _db) = common::app_notifying(
        1 << 20,
        Policies::defaults().expect("defaults"),
        Zones::default(),
        Some(outbox.clone() as std::sync::Arc<dyn phivault_service::access::Notifier>),
    )
    .await;
    let porky = patient(&app, "Pig", "999-00-0002").await;
    let petunia = patient(&app, "Pig", "999-00-0003").await;
    let nurse = token(&app, "nurse-tweety", vec![Role::Nurse], None).await;
    let read = |who: String, id: String| {
        let app = app.clone();
        async move { as_user(&app, &who, get(&format!("/fhir/Patient/{id}"))).await.status }
    };
    assert_eq!(read(nurse.clone(), porky.clone()).await, StatusCode::FORBIDDEN, "no relationship yet");

    // Bad requests: no note, an unlisted reason, a patient that does not exist.
    let short = as_user(&app, &nurse, break_glass(&porky, "emergency-treatment", "")).await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.text);
    let unlisted = as_user(&app, &nurse, break_glass(&porky, "curiosity", "I wanted to see the chart")).await;
    assert_eq!(unlisted.status, StatusCode::BAD_REQUEST);
    let ghost =
        as_user(&app, &nurse, break_glass("no-such-patient", "emergency-treatment", "collapsed in lobby")).await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND);
    // The front desk may not break glass at all.
    let desk = token(&app, "desk-sylvester", vec![Role::FrontDesk], None).await;
    let refused = as_user(&app, &desk, break_glass(&porky, "emergency-treatment", "collapsed in the lobby")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(outbox.0.lock().expect("lock").is_empty(), "refusals notify nobody");

    let note = "Unresponsive in the waiting room; allergy history needed now";
    let granted = as_user(&app, &nurse, break_glass(&porky, "patient-unable-to-consent", note)).await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.text);
    let grant = granted.body["grant"].as_str().expect("grant id").to_owned();
    assert_eq!(read(nurse.clone(), porky.clone()).await, StatusCode::OK, "the grant opens that patient");
    let banner = as_user(&app, &nurse, get(&format!("/fhir/Patient/{porky}"))).await;
    assert_eq!(banner.headers["x-phivault-break-glass"], "active", "clients show the emergency banner");
    assert_eq!(read(nurse.clone(), petunia.clone()).await, StatusCode::FORBIDDEN, "and no other");
    let write =
        with_json("PUT", &format!("/fhir/Patient/{porky}"), &json!({"resourceType": "Patient", "id": porky}), &[]);
    assert_eq!(as_user(&app, &nurse, write).await.status, StatusCode::FORBIDDEN, "reading only");

    // The privacy officer is told (ids and the reason code, not the note) ...
    let sent = outbox.0.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains(&porky) && sent[0].contains("patient-unable-to-consent"), "{}", sent[0]);
    assert!(!sent[0].contains("waiting room"), "the note stays behind sign-in");
    // ... and reviews it in the queue, where the note is opened.
    let officer = token(&app, "po-granny", vec![Role::PrivacyOfficer], None).await;
    assert_eq!(as_user(&app, &nurse, get("/access/break-glass?pending=true")).await.status, StatusCode::FORBIDDEN);
    let queue = as_user(&app, &officer, get("/access/break-glass?pending=true")).await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.text);
    assert_eq!(queue.body["grants"][0]["id"], grant.as_str());
    assert_eq!(queue.body["grants"][0]["note"], note);
    let review = |justified: bool| {
        with_json("POST", &format!("/access/break-glass/{grant}/review"), &json!({"justified": justified}), &[])
    };
    assert_eq!(as_user(&app, &officer, review(false)).await.status, StatusCode::OK);
    assert_eq!(as_user(&app, &officer, review(true)).await.status, StatusCode::NOT_FOUND, "reviewed once");
    let pending = as_user(&app, &officer, get("/access/break-glass?pending=true")).await;
    assert_eq!(pending.body["grants"].as_array().map(Vec::len), Some(0));

    // The note is sealed at rest.
    let grants = app.store.break_glass_grants(false, 10).await.expect("grants");
    assert!(!String::from_utf8_lossy(&grants[0].reason_sealed).contains("waiting room"));
    // An expired grant opens nothing.
    let nurse_id = app.identity.find_user("nurse-tweety").await.expect("nurse").id;
    let later = grants[0].expires_ms + 1;
    let relationships = app.store.relationships(&nurse_id, later).await.expect("relationships");
    assert!(relationships.emergency_access.is_empty(), "expired");

    let events = trail(&app).await;
    let request = events.iter().find(|e| e.action == "break_glass.request" && e.outcome == Outcome::Success);
    let request = request.expect("the grant is audited");
    assert_eq!(request.patient_ids, vec![porky.clone()]);
    assert_eq!(request.policies, ["clinician-may-break-glass"]);
    let emergency_read =
        events.iter().find(|e| e.action == "read" && e.policies == ["emergency-access-reads-one-patient"]);
    assert!(emergency_read.is_some(), "reads under the grant name the emergency policy");
    assert!(events.iter().any(|e| e.action == "break_glass.review.unjustified"));
    assert!(events.iter().any(|e| e.action == "break_glass.notify" && e.outcome == Outcome::Success));
    assert!(
        events.iter().all(|e| !serde_json::to_string(e).expect("json").contains("waiting room")),
        "no note in the trail"
    );
}

/// A privacy officer's session whose second factor was used `age_ms` ago.
async fn officer_session(app: &TestApp, username: &str, age_ms: i64) -> String {
    use phivault_identity::{BearerSecret, LoginStage, TokenKind, TokenRecord};
    token(app, username, vec![Role::PrivacyOfficer], None).await;
    let user = app.identity.find_user(username).await.expect("officer");
    let secret = BearerSecret::generate().expect("rng");
    let now = app.identity.now_ms();
    let record = TokenRecord {
        digest: secret.digest(),
        kind: TokenKind::Session,
        grant_id: format!("grant-old-{username}"),
        user_id: Some(user.id),
        client_id: None,
        scopes: String::new(),
        stage: LoginStage::Complete,
        mfa: true,
        authenticated_ms: now - age_ms,
        created_ms: now - age_ms,
        last_seen_ms: now,
        idle_ms: 15 * 60_000,
        expires_ms: now + 3_600_000,
        data: None,
        consumed: false,
    };
    app.identity.store().insert_token(&record).await.expect("session");
    secret.expose().to_owned()
}

fn erase(patient: &str) -> Request<Body> {
    with_json("POST", "/access/erase", &json!({"patient": patient}), &[])
}

#[tokio::test]
async fn erasure_needs_the_privacy_officer_a_fresh_second_factor_and_an_ended_retention_period() {
    // Under the default retention (years), a record written today cannot be erased.
    let c = clinic().await;
    let officer = officer_session(&c.app, "po-granny", 0).await;
    let kept = as_user(&c.app, &officer, erase(&c.daffy)).await;
    assert_eq!(kept.status, StatusCode::CONFLICT, "{}", kept.text);
    assert!(kept.text.contains("retention"), "{}", kept.text);
    assert_eq!(as_user(&c.app, &c.app.token, erase(&c.daffy)).await.status, StatusCode::FORBIDDEN, "a physician");

    // With a retention period that has ended (0 years here), the officer erases.
    let ended = phivault_policy::Retention::parse("default_years = 0").expect("retention");
    let (app, _db) =
        app_with(1 << 20, Policies::defaults().expect("defaults").with_retention(ended), Zones::default()).await;
    let porky = patient(&app, "Pig", "999-00-0002").await;
    observation(&app, &porky, None, "weight").await;
    let stale = officer_session(&app, "po-stale", 2 * 3_600_000).await;
    let refused = as_user(&app, &stale, erase(&porky)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "a second factor used two hours ago is not fresh");
    let fresh = officer_session(&app, "po-fresh", 60_000).await;
    let done = as_user(&app, &fresh, erase(&porky)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(matches!(
        app.records.read("Patient", &porky, None).await,
        Err(phivault_service::RecordError::Shredded { .. })
    ));
    let events = trail(&app).await;
    let erased = events.iter().find(|e| e.action == "erase" && e.outcome == Outcome::Success).expect("audited");
    assert_eq!(erased.patient_ids, vec![porky.clone()]);
    assert_eq!(erased.policies, ["privacy-officer-erases-with-fresh-mfa"]);
    assert_eq!(erased.target.as_deref(), Some(format!("Patient/{porky}").as_str()));
    assert_eq!(events.iter().filter(|e| e.action == "erase" && e.outcome == Outcome::Success).count(), 1);
    // Afterwards the record is gone for the officer, and to anyone else it never existed.
    let gone = as_user(&app, &fresh, get(&format!("/fhir/Patient/{porky}"))).await;
    assert_eq!(gone.status, StatusCode::GONE, "{}", gone.text);
    let physician = as_user(&app, &app.token, get(&format!("/fhir/Patient/{porky}"))).await;
    let made_up = as_user(&app, &app.token, get("/fhir/Patient/00000000-0000-4000-8000-000000000000")).await;
    assert_eq!(physician.status, StatusCode::NOT_FOUND, "{}", physician.text);
    assert_eq!(
        physician.text.replace(&porky, "ID"),
        made_up.text.replace("00000000-0000-4000-8000-000000000000", "ID")
    );
    assert!(events.iter().any(|e| e.action == "erase" && e.outcome == Outcome::Denied));
}

/// Shredding and break-glass are irreversible acts: each is recorded in the transaction
/// that performs it, so when the database refuses the entry the act does not happen.
#[tokio::test]
async fn an_erasure_or_break_glass_whose_entry_cannot_be_stored_does_not_happen() {
    let ended = phivault_policy::Retention::parse("default_years = 0").expect("retention");
    let (app, _db) =
        app_with(1 << 20, Policies::defaults().expect("defaults").with_retention(ended), Zones::default()).await;
    let porky = patient(&app, "Pig", "999-00-0002").await;
    let officer = officer_session(&app, "po-fresh", 60_000).await;
    let nurse = token(&app, "nurse-tweety", vec![Role::Nurse], None).await;
    let raw = phivault_testkit::raw_pool(&app.url).await;
    sqlx::raw_sql("CREATE TRIGGER no_room BEFORE INSERT ON audit_pending BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        .execute(&raw)
        .await
        .expect("trigger");
    let refused = as_user(&app, &officer, erase(&porky)).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.text);
    assert!(app.records.read("Patient", &porky, None).await.is_ok(), "the key was not destroyed");
    let asked = as_user(&app, &nurse, break_glass(&porky, "emergency-treatment", "collapsed in the lobby")).await;
    assert_eq!(asked.status, StatusCode::SERVICE_UNAVAILABLE, "{}", asked.text);
    let grants: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM break_glass_grants").fetch_one(&raw).await.expect("count");
    assert_eq!(grants, 0, "no grant exists unrecorded");
    assert_eq!(read_status(&app, &nurse, &porky).await, StatusCode::FORBIDDEN);

    sqlx::raw_sql("DROP TRIGGER no_room").execute(&raw).await.expect("drop");
    let granted = as_user(&app, &nurse, break_glass(&porky, "emergency-treatment", "collapsed in the lobby")).await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.text);
    let grant = granted.body["grant"].as_str().expect("grant id");
    let events = trail(&app).await;
    let entry =
        events.iter().find(|e| e.action == "break_glass.request" && e.outcome == Outcome::Success).expect("entry");
    assert_eq!(entry.target.as_deref(), Some(format!("grant:{grant}").as_str()), "it names the break-glass grant");
    assert_eq!(entry.patient_ids, vec![porky.clone()]);
    assert_eq!(entry.reason.as_deref(), Some("emergency-treatment"));
}

async fn read_status(app: &TestApp, who: &str, patient: &str) -> StatusCode {
    as_user(app, who, get(&format!("/fhir/Patient/{patient}"))).await.status
}

#[tokio::test]
async fn a_departments_clinicians_reach_patients_with_a_recent_encounter_there() {
    let c = clinic().await;
    let cardiology = c
        .app
        .records
        .create("Organization", json!({"resourceType": "Organization", "name": "Cardiology (fake)"}), None)
        .await
        .expect("department")
        .resource
        .id;
    let petunia = patient(&c.app, "Pig", "999-00-0003").await;
    let now = phivault_fhir::format_instant(c.app.identity.now_ms());
    // An ongoing encounter (no end yet) and one that ended years ago.
    let periods = [json!({"start": now}), json!({"start": "2021-03-01T10:00:00Z", "end": "2021-03-01T11:00:00Z"})];
    for (who, period) in [(&c.porky, &periods[0]), (&petunia, &periods[1])] {
        let encounter = json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{who}")},
            "serviceProvider": {"reference": format!("Organization/{cardiology}")},
            "period": period});
        c.app.records.create("Encounter", encounter, None).await.expect("encounter");
    }
    let cardiologist = token(&c.app, "dr-sylvester", vec![Role::Physician], None).await;
    let account = c.app.identity.find_user("dr-sylvester").await.expect("user");
    let before = as_user(&c.app, &cardiologist, get(&format!("/fhir/Patient/{}", c.porky))).await;
    assert_eq!(before.status, StatusCode::FORBIDDEN, "not yet in the department");
    c.app
        .store
        .assign(&Assignment {
            kind: AssignmentKind::Department,
            user_id: account.id,
            value: cardiology,
            assigned_by: "test".into(),
            assigned_ms: 0,
        })
        .await
        .expect("assign");
    assert_eq!(as_user(&c.app, &cardiologist, get(&format!("/fhir/Patient/{}", c.porky))).await.status, StatusCode::OK);
    let old = as_user(&c.app, &cardiologist, get(&format!("/fhir/Patient/{petunia}"))).await;
    assert_eq!(old.status, StatusCode::FORBIDDEN, "an encounter years ago does not count");
    let search = as_user(&c.app, &cardiologist, get("/fhir/Patient")).await;
    assert_eq!(ids(&search.body), vec![c.porky.clone()]);
    let events = trail(&c.app).await;
    assert!(events.iter().any(|e| e.policies == ["clinician-reads-department-patients"]));
}

#[tokio::test]
async fn a_patient_sees_who_accessed_their_record_and_the_privacy_officer_searches_the_trail() {
    let c = clinic().await;
    let desk = token(&c.app, "desk-bugs", vec![Role::FrontDesk], None).await;
    let daffy = token(&c.app, "daffy-duck", vec![Role::Patient], Some(&c.daffy)).await;
    let porky_account = token(&c.app, "porky-pig", vec![Role::Patient], Some(&c.porky)).await;
    as_user(&c.app, &c.app.token, get(&format!("/fhir/Patient/{}", c.daffy))).await;
    as_user(&c.app, &desk, get(&format!("/fhir/Patient/{}", c.daffy))).await;
    as_user(&c.app, &daffy, get(&format!("/fhir/Patient/{}", c.daffy))).await;
    as_user(&c.app, &desk, get(&format!("/fhir/Patient/{}", c.porky))).await;

    let accounting = as_user(&c.app, &daffy, get("/access/accounting")).await;
    assert_eq!(accounting.status, StatusCode::OK, "{}", accounting.text);
    let accesses = accounting.body["accesses"].as_array().expect("accesses").clone();
    let why: Vec<&str> = accesses.iter().filter_map(|a| a["why"][0].as_str()).collect();
    assert_eq!(
        why,
        ["clinician-reads-care-team-patients", "front-desk-registration-and-scheduling"],
        "the physician and the desk, not daffy's own reads: {accesses:?}"
    );
    let porky_sees = as_user(&c.app, &porky_account, get("/access/accounting")).await;
    assert!(!porky_sees.text.contains(&c.daffy), "only one's own record");
    assert_eq!(as_user(&c.app, &desk, get("/access/accounting")).await.status, StatusCode::FORBIDDEN, "staff");

    let officer = token(&c.app, "po-granny", vec![Role::PrivacyOfficer], None).await;
    let search = as_user(&c.app, &officer, get(&format!("/audit/entries?patient={}&action=read", c.daffy))).await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.text);
    assert_eq!(search.body["entries"].as_array().map(Vec::len), Some(3));
    let refused = as_user(&c.app, &c.app.token, get("/audit/entries")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "clinicians do not read the trail");
    let bad = as_user(&c.app, &officer, get("/audit/entries?outcome=maybe")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let events = trail(&c.app).await;
    assert!(events.iter().any(|e| e.action == "audit.search" && e.policies == ["privacy-officer-reviews-activity"]));
    assert!(events.iter().any(|e| e.action == "audit.search" && e.outcome == Outcome::Denied));
    assert!(events.iter().any(|e| e.action == "accounting" && e.patient_ids == [c.daffy.clone()]));
}

#[tokio::test]
async fn a_conditional_create_does_not_reveal_records_the_caller_may_not_read() {
    let c = clinic().await;
    let tagged = |patient: &str| {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "lab"},
            "identifier": [{"system": "urn:lab", "value": "L-0001"}],
            "subject": {"reference": format!("Patient/{patient}")}})
    };
    // The same lab identifier exists in another patient's compartment.
    c.app.records.create("Observation", tagged(&c.porky), None).await.expect("hidden");
    let condition = [("if-none-exist", "identifier=urn:lab|L-0001")];
    let post = with_json("POST", "/fhir/Observation", &tagged(&c.daffy), &condition);
    let first = as_user(&c.app, &c.app.token, post).await;
    assert_eq!(first.status, StatusCode::CREATED, "the hidden match neither blocks nor shows: {}", first.text);
    assert!(!first.text.contains(&c.porky));
    // A match the caller may read is returned as the conditional create's answer.
    let again = with_json("POST", "/fhir/Observation", &tagged(&c.daffy), &condition);
    let second = as_user(&c.app, &c.app.token, again).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(second.body["id"], first.body["id"]);
}

#[tokio::test]
async fn administrators_assign_care_teams_through_the_admin_api_and_each_change_is_audited() {
    let c = clinic().await;
    let admin = token(&c.app, "admin-elmer", vec![Role::Admin], None).await;
    let assign = |user: &str, id: &str| with_json("POST", "/admin/care-teams", &json!({"user": user, "id": id}), &[]);
    let read_porky = || get(&format!("/fhir/Patient/{}", c.porky));
    assert_eq!(as_user(&c.app, &c.app.token, read_porky()).await.status, StatusCode::FORBIDDEN);
    let added = as_user(&c.app, &admin, assign("dr-daffy", &c.porky)).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(as_user(&c.app, &c.app.token, read_porky()).await.status, StatusCode::OK, "effective at once");

    assert_eq!(as_user(&c.app, &c.app.token, assign("dr-daffy", &c.porky)).await.status, StatusCode::FORBIDDEN);
    let made_up = as_user(&c.app, &admin, assign("dr-daffy", "no-such-patient")).await;
    assert_eq!(made_up.status, StatusCode::NOT_FOUND, "{}", made_up.text);
    token(&c.app, "desk-bugs", vec![Role::FrontDesk], None).await;
    assert_eq!(as_user(&c.app, &admin, assign("desk-bugs", &c.porky)).await.status, StatusCode::CONFLICT);

    let listed = as_user(&c.app, &admin, get(&format!("/admin/care-teams?id={}", c.porky))).await;
    assert_eq!(listed.body["memberships"].as_array().map(Vec::len), Some(1), "{}", listed.text);
    let remove = with_json("POST", "/admin/care-teams/remove", &json!({"user": "dr-daffy", "id": c.porky}), &[]);
    assert_eq!(as_user(&c.app, &admin, remove).await.status, StatusCode::OK);
    assert_eq!(as_user(&c.app, &c.app.token, read_porky()).await.status, StatusCode::FORBIDDEN, "removed at once");

    let events = trail(&c.app).await;
    let add = events.iter().find(|e| e.action == "admin.careteam.add" && e.outcome == Outcome::Success);
    let add = add.expect("audited");
    assert_eq!(add.patient_ids, vec![c.porky.clone()]);
    assert!(add.target.as_deref().is_some_and(|t| t.starts_with("user:")));
    assert!(events.iter().any(|e| e.action == "admin.careteam.remove"));
}

#[tokio::test]
async fn a_clinician_is_told_that_emergency_access_exists_and_nobody_learns_more_than_a_made_up_id_would_say() {
    let c = clinic().await;
    // The physician may break the glass for a patient outside the team: a 403 that says so.
    let other = as_user(&c.app, &c.app.token, get(&format!("/fhir/Patient/{}", c.porky))).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(other.text.contains("break-glass"), "{}", other.text);
    // Everyone else: vread and instance history of a real record answer like a made-up id.
    let made_up = "0d1e2a6b-0000-4000-8000-000000000000";
    let desk = token(&c.app, "desk-bugs", vec![Role::FrontDesk], None).await;
    let patient = token(&c.app, "porky-pig", vec![Role::Patient], Some(&c.porky)).await;
    let obs = observation(&c.app, &c.daffy, None, "weight").await;
    for (who, t) in [("front desk", &desk), ("another patient", &patient)] {
        for (real, fake) in [
            (format!("/fhir/Observation/{obs}"), format!("/fhir/Observation/{made_up}")),
            (format!("/fhir/Observation/{obs}/_history/1"), format!("/fhir/Observation/{made_up}/_history/1")),
            (format!("/fhir/Observation/{obs}/_history"), format!("/fhir/Observation/{made_up}/_history")),
        ] {
            let seen = as_user(&c.app, t, get(&real)).await;
            let absent = as_user(&c.app, t, get(&fake)).await;
            assert_eq!(seen.status, StatusCode::NOT_FOUND, "{who} {real}: {}", seen.text);
            assert_eq!((seen.status, seen.text.replace(&obs, made_up)), (absent.status, absent.text), "{who} {real}");
        }
    }
    // The trail records the hidden refusals as refusals of that patient's record.
    let events = trail(&c.app).await;
    let hidden: Vec<&AuditEvent> =
        events.iter().filter(|e| e.outcome == Outcome::Denied && e.patient_ids.contains(&c.daffy)).collect();
    assert_eq!(hidden.len(), 6, "three probes by each of two callers");
}

#[tokio::test]
async fn a_label_added_in_a_later_version_closes_the_earlier_versions_too() {
    let c = clinic().await;
    let obs = observation(&c.app, &c.daffy, None, "screening").await;
    let v1 = as_user(&c.app, &c.app.token, get(&format!("/fhir/Observation/{obs}/_history/1"))).await;
    assert_eq!(v1.status, StatusCode::OK, "readable before the label: {}", v1.text);
    // Version 2 carries an HIV label; the physician is not cleared for it.
    let mut labelled = c.app.records.read("Observation", &obs, None).await.expect("stored").body;
    labelled["meta"] =
        json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]});
    c.app.records.update("Observation", &obs, labelled, None).await.expect("v2");
    let v1 = as_user(&c.app, &c.app.token, get(&format!("/fhir/Observation/{obs}/_history/1"))).await;
    assert_ne!(v1.status, StatusCode::OK, "version 1 must not stay readable: {}", v1.text);
    assert!(!v1.text.contains("screening"));
    let instance = as_user(&c.app, &c.app.token, get(&format!("/fhir/Observation/{obs}/_history"))).await;
    assert_ne!(instance.status, StatusCode::OK);
    let typed = as_user(&c.app, &c.app.token, get("/fhir/Observation/_history")).await;
    assert_eq!(typed.status, StatusCode::OK, "{}", typed.text);
    assert!(
        !typed.text.contains(&obs) && !typed.text.contains("screening"),
        "type history lists no version: {}",
        typed.text
    );
}

#[tokio::test]
async fn a_large_care_team_is_searched_by_join_and_still_only_the_team_is_found() {
    let c = clinic().await;
    let physician = c.app.identity.find_user("dr-daffy").await.expect("physician");
    // 1,200 more patients on the team (ids of records that exist), one Observation each
    // for three of them; porky stays outside.
    let mut team = Vec::new();
    for k in 0..1200 {
        let id = patient(&c.app, "Duck", &format!("999-20-{k:04}")).await;
        c.app
            .store
            .assign(&Assignment {
                kind: AssignmentKind::CareTeam,
                user_id: physician.id.clone(),
                value: id.clone(),
                assigned_by: "test".into(),
                assigned_ms: 0,
            })
            .await
            .expect("assign");
        team.push(id);
    }
    let mut expected = Vec::new();
    for p in team.iter().step_by(500) {
        expected.push(observation(&c.app, p, None, "weight").await);
    }
    observation(&c.app, &c.porky, None, "not on the team").await;
    let found = as_user(&c.app, &c.app.token, get("/fhir/Observation?_count=50")).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let mut seen = ids(&found.body);
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(found.body["total"], expected.len());
    let patients = as_user(&c.app, &c.app.token, get("/fhir/Patient?_summary=count")).await;
    let page = as_user(&c.app, &c.app.token, get("/fhir/Patient?_count=1")).await;
    assert_eq!(page.body["total"], 1201, "the whole team and nobody else: {}", patients.text);
}

#[tokio::test]
async fn a_transaction_cannot_probe_for_an_ssn_or_a_record_outside_the_callers_reach() {
    let c = clinic().await;
    let hiv = observation(&c.app, &c.porky, Some("HIV"), "HIV-1 antibody").await;
    let desk = token(&c.app, "desk-bugs", vec![Role::FrontDesk], None).await;
    let callers = [
        ("physician off porky's team", c.app.token.clone()),
        ("another patient", token(&c.app, "daffy-duck", vec![Role::Patient], Some(&c.daffy)).await),
        ("researcher", token(&c.app, "re-taz", vec![Role::Researcher], None).await),
        ("administrator", token(&c.app, "admin-elmer", vec![Role::Admin], None).await),
        ("privacy officer", token(&c.app, "po-granny", vec![Role::PrivacyOfficer], None).await),
    ];
    let by_reference = |ssn: &str| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "probe"},
                "subject": {"reference": format!("Patient?identifier={SSN}|{ssn}")}},
             "request": {"method": "POST", "url": "Observation"}}]})
    };
    let by_condition = |condition: &str| {
        json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "probe"},
                "subject": {"reference": format!("Patient/{}", c.daffy)}},
             "request": {"method": "POST", "url": "Observation", "ifNoneExist": condition}}]})
    };
    let real_ssn = "999-00-0002";
    let absent_ssn = "999-77-7777";
    for (who, t) in &callers {
        for (exists, absent) in [
            (by_reference(real_ssn), by_reference(absent_ssn)),
            (by_condition(&format!("_id={hiv}")), by_condition("_id=0d1e2a6b-0000-4000-8000-000000000000")),
        ] {
            let seen = as_user(&c.app, t, with_json("POST", "/fhir", &exists, &[])).await;
            let not = as_user(&c.app, t, with_json("POST", "/fhir", &absent, &[])).await;
            assert_eq!((seen.status, &seen.body["issue"]), (not.status, &not.body["issue"]), "{who}: {}", seen.text);
            assert!(!seen.text.contains(&hiv) && !seen.text.contains("Pig"), "{who}: {}", seen.text);
        }
    }
    // The front desk, who may read demographics, may resolve the reference (and is then
    // refused the clinical write on its own terms).
    let desk_reply = as_user(&c.app, &desk, with_json("POST", "/fhir", &by_reference(real_ssn), &[])).await;
    assert_eq!(desk_reply.status, StatusCode::FORBIDDEN, "{}", desk_reply.text);
}

#[tokio::test]
async fn a_bundle_if_match_answers_the_same_for_the_right_and_the_wrong_version_of_a_record_out_of_reach() {
    let c = clinic().await;
    let obs = observation(&c.app, &c.porky, None, "weight").await;
    let put = |version: &str| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Observation", "id": obs, "status": "final", "code": {"text": "x"},
                "subject": {"reference": format!("Patient/{}", c.daffy)}},
             "request": {"method": "PUT", "url": format!("Observation/{obs}"), "ifMatch": format!("W/\"{version}\"")}}]})
    };
    let right = as_user(&c.app, &c.app.token, with_json("POST", "/fhir", &put("1"), &[])).await;
    let wrong = as_user(&c.app, &c.app.token, with_json("POST", "/fhir", &put("7"), &[])).await;
    assert_eq!(right.status, StatusCode::FORBIDDEN, "{}", right.text);
    assert_eq!((right.status, &right.body["issue"]), (wrong.status, &wrong.body["issue"]));
}

#[tokio::test]
async fn appointments_belong_to_their_patient_and_a_record_cannot_name_two_patients() {
    let c = clinic().await;
    let appointment = |patient: &str| {
        json!({"resourceType": "Appointment", "status": "booked",
            "participant": [{"actor": {"reference": "Practitioner/dr-daffy"}, "status": "accepted"},
                            {"actor": {"reference": format!("Patient/{patient}")}, "status": "accepted"}]})
    };
    let made = as_user(&c.app, &c.app.token, with_json("POST", "/fhir/Appointment", &appointment(&c.daffy), &[])).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let id = made.body["id"].as_str().expect("id").to_owned();
    let read = as_user(&c.app, &c.app.token, get(&format!("/fhir/Appointment/{id}"))).await;
    assert_eq!(read.status, StatusCode::OK, "the team reads its patient's appointment: {}", read.text);
    let own = token(&c.app, "daffy-duck", vec![Role::Patient], Some(&c.daffy)).await;
    assert_eq!(as_user(&c.app, &own, get(&format!("/fhir/Appointment/{id}"))).await.status, StatusCode::OK);
    let other = token(&c.app, "porky-pig", vec![Role::Patient], Some(&c.porky)).await;
    assert_eq!(as_user(&c.app, &other, get(&format!("/fhir/Appointment/{id}"))).await.status, StatusCode::NOT_FOUND);
    let foreign =
        as_user(&c.app, &c.app.token, with_json("POST", "/fhir/Appointment", &appointment(&c.porky), &[])).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN, "not the physician's patient");

    // Stated under one patient, filed under another: refused, whichever element says it.
    let two = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": format!("Patient/{}", c.daffy)},
        "performer": [{"reference": format!("Patient/{}", c.porky)}]});
    let smuggled = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": format!("Patient/{}", c.daffy)},
        "patient": {"reference": format!("Patient/{}", c.porky)}});
    for body in [&two, &smuggled] {
        let reply = as_user(&c.app, &c.app.token, with_json("POST", "/fhir/Observation", body, &[])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert_eq!(reply.body["resourceType"], "OperationOutcome");
        let bundle = json!({"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": body, "request": {"method": "POST", "url": "Observation"}}]});
        let tx = as_user(&c.app, &c.app.token, with_json("POST", "/fhir", &bundle, &[])).await;
        assert_eq!(tx.status, StatusCode::BAD_REQUEST, "{}", tx.text);
    }
}

async fn free_put_text(c: &Clinic, token: &str, id: &str) -> String {
    let body = json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "weight"},
        "subject": {"reference": format!("Patient/{}", c.porky)}});
    as_user(&c.app, token, with_json("PUT", &format!("/fhir/Observation/{id}"), &body, &[]))
        .await
        .text
        .replace(id, "ID")
}

/// A PUT is not a probe: to an existing record out of reach and to an id that was never
/// used, the answer is the same, word for word, directly and inside a Bundle. Update-as-create
/// is refused (records come in by POST), which is what closes it: a PUT that created would
/// answer 201 for a free id and something else for a taken one.
#[tokio::test]
async fn a_put_tells_nobody_which_ids_exist() {
    let c = clinic().await;
    let desk = token(&c.app, "desk-bugs", vec![Role::FrontDesk], None).await;
    let physician = c.app.token.clone();
    let hidden = observation(&c.app, &c.porky, None, "weight").await;
    let made_up = "0d3b2c4e-5a6f-4b7c-8d9e-000000000042";
    let body = |id: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "weight"},
            "subject": {"reference": format!("Patient/{}", c.porky)}})
    };
    let put = |id: &str| with_json("PUT", &format!("/fhir/Observation/{id}"), &body(id), &[]);
    let existing = as_user(&c.app, &desk, put(&hidden)).await;
    let free = as_user(&c.app, &desk, put(made_up)).await;
    assert_eq!((existing.status, free.status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND), "{}", existing.text);
    assert_eq!(existing.text.replace(&hidden, "ID"), free.text.replace(made_up, "ID"), "word for word");
    let stored = c.app.records.read("Observation", made_up, None).await;
    assert!(stored.is_err(), "nothing was created at the made-up id");

    // The same inside a transaction and a batch.
    let bundle = |kind: &str, id: &str| {
        json!({"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": body(id), "request": {"method": "PUT", "url": format!("Observation/{id}")}}]})
    };
    for kind in ["transaction", "batch"] {
        let send_bundle = |id: &str| with_json("POST", "/fhir", &bundle(kind, id), &[]);
        let existing = as_user(&c.app, &desk, send_bundle(&hidden)).await;
        let free = as_user(&c.app, &desk, send_bundle(made_up)).await;
        assert_eq!(existing.status, free.status, "{kind}: {}", existing.text);
        assert_eq!(existing.text.replace(&hidden, "ID"), free.text.replace(made_up, "ID"), "{kind}");
        assert!(!existing.text.contains("weight"), "{kind}: {}", existing.text);
    }

    // A body that would be refused on its own merits (two patients) is not looked at before
    // the id: hidden and made-up still answer alike.
    let two_patients = |id: &str| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {
            "resourceType": "Observation", "id": id, "status": "final", "code": {"text": "weight"},
            "subject": {"reference": format!("Patient/{}", c.porky)},
            "performer": [{"reference": format!("Patient/{}", c.daffy)}]},
            "request": {"method": "PUT", "url": format!("Observation/{id}")}}]})
    };
    let existing = as_user(&c.app, &desk, with_json("POST", "/fhir", &two_patients(&hidden), &[])).await;
    let free = as_user(&c.app, &desk, with_json("POST", "/fhir", &two_patients(made_up), &[])).await;
    assert_eq!((existing.status, free.status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND), "{}", existing.text);
    assert_eq!(existing.text.replace(&hidden, "ID"), free.text.replace(made_up, "ID"));

    // A destroyed record's id answers as a made-up one too, to whoever may not erase it.
    let tweety = patient(&c.app, "Bird", "999-00-0003").await;
    let destroyed = observation(&c.app, &tweety, None, "weight").await;
    assert!(c.app.records.shred_patient(&tweety, None).await.expect("shred"));
    let gone = as_user(&c.app, &desk, put(&destroyed)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.text);
    assert_eq!(gone.text.replace(&destroyed, "ID"), free_put_text(&c, &desk, made_up).await);
    let in_bundle = as_user(&c.app, &desk, with_json("POST", "/fhir", &bundle("batch", &destroyed), &[])).await;
    // (The status, not the text: a random id can hold the digits 410.)
    let status = in_bundle.body["entry"][0]["response"]["status"].as_str().unwrap_or_default().to_owned();
    assert!(!in_bundle.text.contains("destroyed") && !status.starts_with("410"), "{}", in_bundle.text);

    // Even a caller who may write the patient's records creates by POST, not by PUT.
    let own = json!({"resourceType": "Observation", "id": made_up, "status": "final", "code": {"text": "pulse"},
        "subject": {"reference": format!("Patient/{}", c.daffy)}});
    let refused =
        as_user(&c.app, &physician, with_json("PUT", &format!("/fhir/Observation/{made_up}"), &own, &[])).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);
    let created = as_user(&c.app, &physician, with_json("POST", "/fhir/Observation", &own, &[])).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);

    // The refused PUT is in the trail with the patient it concerned.
    let denied: Vec<AuditEvent> =
        trail(&c.app).await.into_iter().filter(|e| e.action == "update" && e.outcome == Outcome::Denied).collect();
    assert!(denied.iter().any(|e| e.patient_ids.contains(&c.porky)), "{denied:?}");
    let metadata = send_as_is(&c.app.router, get("/fhir/metadata")).await;
    assert!(metadata.text.contains("\"updateCreate\":false"), "the capability statement says so");
}

/// In a batch, an entry the policies refuse fails alone: that refusal is in the trail too,
/// with the patient it concerned (it used to leave no entry), and a refused transaction
/// entry likewise, with nothing written.
#[tokio::test]
async fn refused_bundle_entries_are_recorded_as_denied_with_their_patient() {
    let c = clinic().await;
    let obs = |patient: &str, text: &str| {
        json!({"resource": {"resourceType": "Observation", "status": "final", "code": {"text": text},
            "subject": {"reference": format!("Patient/{patient}")}}, "request": {"method": "POST", "url": "Observation"}})
    };
    let batch = json!({"resourceType": "Bundle", "type": "batch",
        "entry": [obs(&c.daffy, "pulse"), obs(&c.porky, "pulse")]});
    let done = as_user(&c.app, &c.app.token, with_json("POST", "/fhir", &batch, &[])).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.body["entry"][0]["response"]["status"].as_str().expect("s").starts_with("201"));
    assert!(done.body["entry"][1]["response"]["status"].as_str().expect("s").starts_with("403"), "{}", done.text);
    let denied = |events: &[AuditEvent]| -> Vec<AuditEvent> {
        events.iter().filter(|e| e.action == "batch" && e.outcome == Outcome::Denied).cloned().collect()
    };
    let events = trail(&c.app).await;
    let refusals = denied(&events);
    assert_eq!(refusals.len(), 1, "{events:?}");
    assert_eq!(
        refusals[0].patient_ids,
        std::slice::from_ref(&c.porky),
        "the refused entry's patient, not the allowed one's"
    );
    assert!(!refusals[0].policies.is_empty(), "with the deciding policies");
    assert!(
        events.iter().any(|e| e.action == "batch" && e.outcome == Outcome::Success && e.patient_ids.contains(&c.daffy)),
        "the allowed write has its own entry"
    );

    let transaction = json!({"resourceType": "Bundle", "type": "transaction",
        "entry": [obs(&c.daffy, "weight"), obs(&c.porky, "weight")]});
    let refused = as_user(&c.app, &c.app.token, with_json("POST", "/fhir", &transaction, &[])).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let events = trail(&c.app).await;
    let refusals = denied(&events);
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert_eq!(refusals[1].patient_ids, std::slice::from_ref(&c.porky));
    let all = c
        .app
        .records
        .search("Observation", &phivault_fhir::search::parse_search("Observation", &[], true).expect("query"), 0)
        .await
        .expect("search");
    assert_eq!(all.total, 1, "only the batch's allowed write: the transaction wrote nothing");
}

async fn everything(app: &TestApp, who: &str, patient: &str, query: &str) -> Reply {
    as_user(app, who, get(&format!("/fhir/Patient/{patient}/$everything{query}"))).await
}

/// `Patient/{id}/$everything` and the compartment search `Patient/{id}/{type}` run on the
/// guarded path: what the caller may read of that one patient, nothing of another (the
/// answer to a patient out of reach is the answer a direct read gives), labels the caller
/// is not cleared for left out, narrowing by `_type` and `_since`, anything else refused
/// without echoing it, and one `everything` entry naming every resource returned.
#[tokio::test]
async fn everything_and_compartment_search_return_one_patients_readable_record_and_nothing_more() {
    let c = clinic().await;
    let vitals = observation(&c.app, &c.daffy, None, "heart rate").await;
    let hiv = observation(&c.app, &c.daffy, Some("HIV"), "hiv test").await;
    let others = observation(&c.app, &c.porky, None, "someone else's").await;
    let physician = &c.app.token;

    let all = everything(&c.app, physician, &c.daffy, "").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!((all.body["type"].as_str(), all.body["total"].as_u64()), (Some("searchset"), Some(2)), "{}", all.text);
    assert_eq!(ids(&all.body), vec![c.daffy.clone(), vitals.clone()], "no HIV-labelled record, nobody else's");
    let entries = trail(&c.app).await;
    let entry = entries.iter().rev().find(|e| e.action == "everything").expect("recorded");
    assert_eq!(entry.outcome, Outcome::Success);
    assert_eq!(entry.patient_ids, vec![c.daffy.clone()]);
    let mut named = entry.resource_ids.clone();
    named.sort();
    let mut returned = vec![format!("Patient/{}", c.daffy), format!("Observation/{vitals}")];
    returned.sort();
    assert_eq!(named, returned, "the entry names exactly what was returned");

    // Narrowed: one type; nothing changed since a future date (the Patient, its subject, stays).
    let typed = everything(&c.app, physician, &c.daffy, "?_type=Observation").await;
    assert_eq!(ids(&typed.body), vec![c.daffy.clone(), vitals.clone()], "{}", typed.text);
    let conditions = everything(&c.app, physician, &c.daffy, "?_type=Condition").await;
    assert_eq!(ids(&conditions.body), vec![c.daffy.clone()], "{}", conditions.text);
    let since = everything(&c.app, physician, &c.daffy, "?_since=2999-01-01T00:00:00Z").await;
    assert_eq!(ids(&since.body), vec![c.daffy.clone()], "{}", since.text);
    for bad in ["?_since=not-a-date", "?_type=NotAType", "?_count=5", "?family=Duck"] {
        let refused = everything(&c.app, physician, &c.daffy, bad).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}: {}", refused.text);
        assert!(
            !refused.text.contains("not-a-date")
                && !refused.text.contains("NotAType")
                && !refused.text.contains("Duck")
        );
    }

    // A patient out of reach, and an id no record has: each answered as a direct read is.
    for patient in [c.porky.as_str(), "made-up-id"] {
        let read = as_user(&c.app, physician, get(&format!("/fhir/Patient/{patient}"))).await;
        let whole = everything(&c.app, physician, patient, "").await;
        assert_eq!(whole.status, read.status, "{patient}: {}", whole.text);
        assert!(!whole.text.contains(&others) && !whole.text.contains("Pig"), "{}", whole.text);
        let compartment = as_user(&c.app, physician, get(&format!("/fhir/Patient/{patient}/Observation"))).await;
        assert_eq!(compartment.status, StatusCode::OK, "{}", compartment.text);
        assert!(ids(&compartment.body).is_empty(), "{}", compartment.text);
    }

    // The compartment search: this patient's records of the type, as a search of it.
    let compartment = as_user(&c.app, physician, get(&format!("/fhir/Patient/{}/Observation", c.daffy))).await;
    assert_eq!(ids(&compartment.body), vec![vitals.clone()], "{}", compartment.text);
    let unknown = as_user(&c.app, physician, get(&format!("/fhir/Patient/{}/Observation?nonsense=1", c.daffy))).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "strict, as every search: {}", unknown.text);

    // The patient: their own record, their own labelled records included; nobody else's.
    let patient = token(&c.app, "daffy-duck", vec![Role::Patient], Some(&c.daffy)).await;
    let own = everything(&c.app, &patient, &c.daffy, "").await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let mut own_ids = ids(&own.body);
    own_ids.sort();
    let mut expected = vec![c.daffy.clone(), vitals.clone(), hiv.clone()];
    expected.sort();
    assert_eq!(own_ids, expected);
    assert_eq!(everything(&c.app, &patient, &c.porky, "").await.status, StatusCode::NOT_FOUND);
    let theirs = as_user(&c.app, &patient, get(&format!("/fhir/Patient/{}/Observation", c.porky))).await;
    assert!(ids(&theirs.body).is_empty(), "{}", theirs.text);
}

/// `_include` / `_revinclude` over HTTP: included records come back as `include` entries,
/// only those the caller may read; an include phivault cannot follow is refused by
/// position, never ignored and never echoed.
#[tokio::test]
async fn included_records_are_entries_of_their_own_and_unsupported_includes_are_refused() {
    let c = clinic().await;
    let vitals = observation(&c.app, &c.daffy, None, "heart rate").await;
    let hiv = observation(&c.app, &c.daffy, Some("HIV"), "hiv test").await;
    let porkys = observation(&c.app, &c.porky, None, "someone else's").await;
    let physician = &c.app.token;
    let uri = format!("/fhir/Patient?_id={},{}&_revinclude=Observation:patient", c.daffy, c.porky);
    let page = as_user(&c.app, physician, get(&uri)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let modes: Vec<(String, String)> = page.body["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["resource"]["id"].as_str().unwrap_or("").to_owned(),
                e["search"]["mode"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        modes,
        vec![(c.daffy.clone(), "match".to_owned()), (vitals.clone(), "include".to_owned())],
        "{}",
        page.text
    );
    assert_eq!(page.body["total"], 1, "total counts matches only");
    assert!(!page.text.contains(&hiv) && !page.text.contains(&porkys) && !page.text.contains("Pig"));
    // A record of Daffy's naming one of Porky's (loaded by the operator): following it
    // brings in nothing, exactly as a reference to a record that does not exist.
    let mut pointing = Vec::new();
    for target in [porkys.as_str(), "no-such-record"] {
        let body = json!({"resourceType": "Observation", "status": "final", "code": {"text": "derived"},
            "subject": {"reference": format!("Patient/{}", c.daffy)}, "derivedFrom": [{"reference": format!("Observation/{target}")}]});
        let id = c.app.records.create("Observation", body, None).await.expect("observation").resource.id;
        let uri = format!("/fhir/Observation?_id={id}&_include=Observation:derived-from");
        let reply = as_user(&c.app, physician, get(&uri)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert!(!ids(&reply.body).contains(&porkys), "{}", reply.text);
        pointing.push((ids(&reply.body).len(), reply.body["total"].clone()));
    }
    assert_eq!(pointing, vec![(1, json!(1)), (1, json!(1))], "indistinguishable");
    for bad in [
        "_include=Observation:code",
        "_revinclude=Observation:performer",
        "_include=Daffy:Duck",
        "_include:recurse=Patient:organization",
    ] {
        let refused = as_user(&c.app, physician, get(&format!("/fhir/Patient?{bad}"))).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}: {}", refused.text);
        assert!(refused.text.contains("query parameter 1") && !refused.text.contains("Daffy"), "{}", refused.text);
    }
}
