//! `phivault-bench chart [sqlite|postgres] [patients]`: the server's time to show the chart
//! of a patient holding 500 resources (goal: under 20 ms), among `patients` others, to a
//! physician on the care team: the guarded chart read alone (decisions, decryption, one
//! audit entry), and the whole page (`GET /chart/{id}`: session check, chart read, HTML)
//! over one HTTPS keep-alive connection through the real listener.

use std::sync::Arc;
use std::time::Instant;

use phivault_policy::Policies;
use phivault_service::access::{AccessStore, Assignment, AssignmentKind, GuardedRecords};
use phivault_testkit::{fresh_store, records_with_ring, test_ring};
use serde_json::{Value, json};

use crate::https::{Connection, Server, cpu_seconds};
use crate::workload::load_patients;

fn about(patient: &str) -> Value {
    json!({"reference": format!("Patient/{patient}")})
}

fn day(i: usize) -> String {
    format!("20{:02}-{:02}-{:02}", 10 + i / 300 % 15, 1 + i / 28 % 12, 1 + i % 28)
}

/// The chart patient's 500 resources: what a patient with a few years of primary care holds.
fn chart_resources(patient: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut add = |t: &str, body: Value| out.push((t.to_owned(), body));
    for i in 0..15 {
        add(
            "AllergyIntolerance",
            json!({"resourceType": "AllergyIntolerance", "patient": about(patient),
            "code": {"text": format!("Allergy {i}")}, "criticality": "low",
            "reaction": [{"manifestation": [{"text": "Hives"}]}]}),
        );
    }
    for i in 0..40 {
        add(
            "Condition",
            json!({"resourceType": "Condition", "subject": about(patient),
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": if i % 3 == 0 { "active" } else { "resolved" }}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": format!("{}", 38_341_003 + i), "display": format!("Condition {i}")}]},
            "onsetDateTime": day(i)}),
        );
    }
    for i in 0..45 {
        add(
            "MedicationRequest",
            json!({"resourceType": "MedicationRequest", "status": if i % 4 == 0 { "active" } else { "completed" },
            "intent": "order", "subject": about(patient), "authoredOn": day(i),
            "medicationCodeableConcept": {"text": format!("Medication {i} 10 MG Oral Tablet")},
            "dosageInstruction": [{"text": "Take 1 tablet by mouth once daily"}]}),
        );
    }
    let vital_signs = [
        ("8867-4", "/min", 72.0),
        ("9279-1", "/min", 16.0),
        ("8310-5", "Cel", 36.8),
        ("29463-7", "kg", 80.0),
        ("39156-5", "kg/m2", 24.5),
    ];
    for i in 0..250 {
        let (code, unit, base) = vital_signs[i % vital_signs.len()];
        add(
            "Observation",
            json!({"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "subject": about(patient),
            "effectiveDateTime": day(i), "valueQuantity": {"value": base + (i % 7) as f64, "unit": unit}}),
        );
    }
    for i in 0..80 {
        add(
            "Observation",
            json!({"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]}, "subject": about(patient),
            "effectiveDateTime": day(i), "valueQuantity": {"value": 90 + i % 30, "unit": "mg/dL"}}),
        );
    }
    for i in 0..30 {
        add(
            "Encounter",
            json!({"resourceType": "Encounter", "status": "finished", "subject": about(patient),
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"text": "General examination"}], "period": {"start": format!("{}T09:00:00Z", day(i))}}),
        );
    }
    for i in 0..20 {
        use base64::Engine as _;
        let text = format!("Progress note {i}. ").repeat(60);
        add(
            "DocumentReference",
            json!({"resourceType": "DocumentReference", "status": "current", "subject": about(patient),
            "type": {"text": "Progress note"}, "date": format!("{}T10:00:00Z", day(i)),
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                "data": base64::engine::general_purpose::STANDARD.encode(text)}}]}),
        );
    }
    for i in 0..10 {
        add(
            "Immunization",
            json!({"resourceType": "Immunization", "status": "completed", "patient": about(patient),
            "vaccineCode": {"text": "Influenza, seasonal"}, "occurrenceDateTime": day(i)}),
        );
        add(
            "Procedure",
            json!({"resourceType": "Procedure", "status": "completed", "subject": about(patient),
            "code": {"text": "Screening"}, "performedDateTime": day(i)}),
        );
    }
    out
}

/// `GET path` with the session cookie on `stream`; the body's length. Panics unless 200.
async fn get_page(stream: &mut Connection, path: &str, cookie: &str) -> usize {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: __Host-phivault-session={cookie}\r\n\r\n");
    crate::https::exchange(stream, &request).await
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn run(engine: &str, patients: usize) {
    let (store, _db, _url) = fresh_store(engine).await;
    let ring = test_ring();
    let records = records_with_ring(store.clone(), ring.clone());
    load_patients(&records, 0, patients).await;
    let patient = records
        .create("Patient", json!({"resourceType": "Patient", "name": [{"family": "Duck", "given": ["Daffy"]}], "birthDate": "1937-04-17"}), None)
        .await
        .expect("patient")
        .resource
        .id;
    let resources = chart_resources(&patient);
    let count = resources.len() + 1;
    for (t, body) in resources {
        records.create(&t, body, None).await.expect("resource");
    }
    let identity = phivault_testkit::system_identity(store.clone(), ring.clone());
    let token =
        phivault_testkit::signed_in(&identity, "bench-physician", vec![phivault_identity::Role::Physician], None).await;
    let user_id = identity.find_user("bench-physician").await.expect("physician").id;
    store
        .assign(&Assignment {
            kind: AssignmentKind::CareTeam,
            user_id: user_id.clone(),
            value: patient.clone(),
            assigned_by: "bench".into(),
            assigned_ms: 0,
        })
        .await
        .expect("assign");
    let policies = Arc::new(phivault_service::access::LivePolicies::new(Policies::defaults().expect("defaults")));
    let audit = phivault_audit::AuditLog::start(Arc::new(store.clone()), "bench");
    let guarded = GuardedRecords::new(records.clone(), policies, Arc::new(store.clone()), audit.clone());
    let accessor = crate::policy::physician_accessor(&user_id);

    let rounds = 200;
    let mut service_ms = Vec::with_capacity(rounds);
    let mut shown = 0;
    let cpu = cpu_seconds();
    for _ in 0..rounds {
        let started = Instant::now();
        let chart = guarded.patient_chart(&accessor, &patient, &phivault_api::CHART_QUERIES).await.expect("chart");
        service_ms.push(started.elapsed().as_secs_f64() * 1e3);
        shown = chart.value.sections.iter().map(|s| s.resources.len()).sum::<usize>() + 1;
    }
    let service_cpu = (cpu_seconds() - cpu) * 1e3 / rounds as f64;

    let server = Server::start(guarded.clone(), identity.clone(), audit.clone(), Arc::new(store.clone())).await;
    let mut connection = server.connect().await;
    let path = format!("/chart/{patient}");
    let bytes = get_page(&mut connection, &path, token.expose()).await;
    let mut page_ms = Vec::with_capacity(rounds);
    let cpu = cpu_seconds();
    for _ in 0..rounds {
        let started = Instant::now();
        get_page(&mut connection, &path, token.expose()).await;
        page_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let page_cpu = (cpu_seconds() - cpu) * 1e3 / rounds as f64;
    drop(connection);
    server.stop().await;

    service_ms.sort_by(f64::total_cmp);
    page_ms.sort_by(f64::total_cmp);
    println!("| engine | patient | shown | measure | median | p95 | CPU per request |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {engine} | {count} resources (among {patients} patients) | {shown} | guarded chart read (one audit entry) | {:.2} ms | {:.2} ms | {service_cpu:.2} ms |",
        percentile(&service_ms, 0.5),
        percentile(&service_ms, 0.95)
    );
    println!(
        "| {engine} | {count} resources | {shown} ({} KiB of HTML) | `GET /chart/{{id}}` over HTTPS keep-alive | {:.2} ms | {:.2} ms | {page_cpu:.2} ms (server and client) |",
        bytes / 1024,
        percentile(&page_ms, 0.5),
        percentile(&page_ms, 0.95)
    );
}
