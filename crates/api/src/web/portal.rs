//! The patient portal: a patient's own record in plain words, a download of it (FHIR JSON,
//! and a readable HTML summary), and "who has seen my record": the accounting of accesses
//! by people (name and role, when, what, why), not account ids. Everything goes through the
//! guarded service under the patient's own policy (`patient-reads-own-record`), and every
//! view and download is in the audit trail.
//!
//! Safeguards: 45 CFR 164.524 right of access (including an electronic copy);
//! 164.528 accounting of disclosures; 164.312(b) audit controls.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phivault_audit::{AuditEvent, Outcome};
use phivault_identity::Role;
use phivault_service::RecordError;
use phivault_service::access::{ChartQuery, PatientChart};
use serde_json::{Value, json};

use super::chart::{
    allergies, encounter_row, immunization_row, labs, list_section, medication_row, problem_row, procedure_row,
    record_trouble, vitals,
};
use super::fhir_view::role_words;
use super::html::escape;
use super::shell::{Signed, app_page, ensure_recorded, signed_in};
use crate::AppState;
use crate::client_ip::ClientIp;
use crate::middleware::RequestId;

/// What the record page reads, and so shows.
const RECORD_QUERIES: [ChartQuery<'static>; 8] = [
    ChartQuery::all("AllergyIntolerance", 100),
    ChartQuery::all("Condition", 100),
    ChartQuery::all("MedicationRequest", 100),
    ChartQuery { section: "vitals", resource_type: "Observation", params: &[("category", "vital-signs")], limit: 300 },
    ChartQuery { section: "labs", resource_type: "Observation", params: &[("category", "laboratory")], limit: 40 },
    ChartQuery::all("Encounter", 30),
    ChartQuery::all("Immunization", 50),
    ChartQuery::all("Procedure", 50),
];

fn not_a_patient(signed: &Signed) -> Response {
    app_page(
        StatusCode::FORBIDDEN,
        signed,
        "My record",
        "<p class=\"error\" role=\"alert\">These pages are for a patient's own account.</p>",
    )
}

/// The signed-in patient and their own Patient id.
async fn patient_of(
    state: &AppState,
    headers: &HeaderMap,
    ids: (Option<&ClientIp>, Option<&RequestId>),
    here: &str,
) -> Result<(Signed, String), Response> {
    let signed = signed_in(state, headers, ids.0, ids.1, here).await?;
    match (&signed.caller.principal.patient_id, signed.has(Role::Patient)) {
        (Some(own), true) => {
            let own = own.clone();
            Ok((signed, own))
        }
        _ => Err(not_a_patient(&signed)),
    }
}

async fn refused(state: &AppState, signed: &Signed, action: &str, error: RecordError) -> Response {
    match error {
        RecordError::Forbidden { .. }
        | RecordError::Refused { .. }
        | RecordError::NotFound { .. }
        | RecordError::Shredded { .. } => {
            if let Err(r) = ensure_recorded(state, signed, action, Outcome::Denied, "403", None).await {
                return r;
            }
            app_page(
                StatusCode::NOT_FOUND,
                signed,
                "My record",
                "<p class=\"error\" role=\"alert\">Your record could not be found. Please ask the clinic's front desk.</p>",
            )
        }
        e => record_trouble(state, signed, action, e).await,
    }
}

fn record_sections(chart: &PatientChart) -> String {
    let mut out = String::new();
    out.push_str(&allergies("Your allergies", chart.section("AllergyIntolerance")));
    out.push_str(&list_section("Your health problems", "problems", chart.section("Condition"), problem_row));
    out.push_str(&list_section("Your medicines", "medications", chart.section("MedicationRequest"), medication_row));
    // A page reads vital signs and results apart; a whole-record copy has one Observation
    // section holding both.
    let observations = chart.section("Observation");
    out.push_str(&vitals("Your measurements", chart.section("vitals").or(observations)));
    out.push_str(&labs("Your test results", chart.section("labs").or(observations)));
    out.push_str(&list_section("Your visits", "encounters", chart.section("Encounter"), encounter_row));
    out.push_str(&list_section("Your vaccines", "immunizations", chart.section("Immunization"), immunization_row));
    out.push_str(&list_section("Your procedures", "procedures", chart.section("Procedure"), procedure_row));
    out
}

/// `GET /my-record`.
pub async fn my_record(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let (signed, own) =
        match patient_of(&state, &headers, (client.as_deref(), request_id.as_deref()), "/my-record").await {
            Ok(p) => p,
            Err(r) => return r,
        };
    let chart = match state.records.patient_chart(&signed.accessor, &own, &RECORD_QUERIES).await {
        Ok(granted) => granted.value,
        Err(e) => return refused(&state, &signed, "chart", e).await,
    };
    let body = format!(
        "<p>This is your health record as the clinic keeps it. \
         <a href=\"/my-record/summary\" download>Download a readable copy</a> · \
         <a href=\"/my-record/download\" download>Download it for a health app (FHIR JSON)</a> · \
         <a href=\"/my-record/access\">Who has seen my record</a></p>{}",
        record_sections(&chart)
    );
    app_page(StatusCode::OK, &signed, "My health record", &body)
}

fn attachment(body: Vec<u8>, content_type: &'static str, filename: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
    );
    response
}

/// Everything in a patient's record as one FHIR `collection` Bundle.
fn everything_bundle(chart: &PatientChart, base_url: &str) -> Value {
    let resources = std::iter::once(&chart.patient).chain(chart.sections.iter().flat_map(|s| s.resources.iter()));
    let entries: Vec<Value> = resources
        .map(|r| json!({"fullUrl": format!("{base_url}/fhir/{}/{}", r.resource_type, r.id), "resource": r.body}))
        .collect();
    json!({"resourceType": "Bundle", "type": "collection", "total": entries.len(), "entry": entries})
}

/// The signed-in patient's whole record, for either copy; refused with a page when it is
/// too large for one (a copy that silently lacks records would mislead whoever relies on it).
async fn whole_record(
    state: &AppState,
    headers: &HeaderMap,
    ids: (Option<&ClientIp>, Option<&RequestId>),
) -> Result<(Signed, PatientChart), Response> {
    let (signed, own) = patient_of(state, headers, ids, "/my-record").await?;
    match state.records.patient_everything(&signed.accessor, &own, &Default::default()).await {
        Ok(granted) => Ok((signed, granted.value)),
        // The service refuses a record larger than one copy carries, before it records
        // anything as shown: a copy that silently lacks records would mislead.
        Err(RecordError::Invalid(e)) if e.issue == phivault_fhir::IssueType::TooCostly => {
            ensure_recorded(state, &signed, "everything", Outcome::Failure, "too_large", None).await?;
            Err(app_page(
                StatusCode::SERVICE_UNAVAILABLE,
                &signed,
                "Download",
                "<p class=\"error\" role=\"alert\">Your record is too large to download here. \
                 Please ask the clinic for a complete electronic copy.</p>",
            ))
        }
        Err(e) => Err(refused(state, &signed, "everything", e).await),
    }
}

/// `GET /my-record/download`: the whole record as FHIR JSON.
pub async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let (_, chart) = match whole_record(&state, &headers, (client.as_deref(), request_id.as_deref())).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let bundle = everything_bundle(&chart, &state.config.base_url);
    let bytes = serde_json::to_vec_pretty(&bundle).unwrap_or_default();
    attachment(bytes, "application/fhir+json", "my-health-record.json")
}

/// `GET /my-record/summary`: the record as a standalone HTML page to keep or print.
pub async fn summary(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let (_, chart) = match whole_record(&state, &headers, (client.as_deref(), request_id.as_deref())).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let name = super::fhir_view::person_name(&chart.patient.body);
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Health record of {n}</title></head>\
         <body><h1>Health record of {n}</h1><p>Birth date: {}. Copy made {} UTC.</p>{}</body></html>",
        escape(chart.patient.body.get("birthDate").and_then(Value::as_str).unwrap_or("not recorded")),
        escape(&phivault_fhir::format_instant(state.identity.now_ms())[..16].replace('T', " ")),
        record_sections(&chart),
        n = escape(&name),
    );
    attachment(html.into_bytes(), "text/html; charset=utf-8", "my-health-record.html")
}

/// An action in the trail, as a patient reads it.
fn action_words(action: &str) -> &'static str {
    match action {
        "chart" => "opened your chart",
        "everything" => "copied your whole record",
        "read" | "vread" => "read part of your record",
        "search" => "found your record in a search",
        "history" => "read earlier versions of your record",
        "create" => "added to your record",
        "update" => "changed your record",
        "batch" => "added to or changed your record",
        "erase" => "erased your record",
        "export.patients" => "included your record in an export",
        a if a.starts_with("break_glass.request") => "asked for emergency access to your record",
        _ => "used your record",
    }
}

/// Why an access was allowed, from the deciding policies, in words.
fn why_words(event: &AuditEvent) -> String {
    if event.outcome != Outcome::Success {
        return "refused: they were not allowed".to_owned();
    }
    let words: Vec<&str> = event
        .policies
        .iter()
        .map(|p| match p.as_str() {
            "clinician-reads-care-team-patients" | "clinician-writes-care-team-records" => "caring for you (care team)",
            "clinician-reads-department-patients" | "clinician-writes-department-patient-records" => {
                "caring for you (the department you visited)"
            }
            "emergency-access-reads-one-patient" | "clinician-may-break-glass" => {
                "emergency access (break the glass), reviewed by the privacy officer"
            }
            "front-desk-registration-and-scheduling" => "registration and appointments",
            "billing-reads-what-payment-needs" | "billing-writes-billing-records" => "billing",
            "privacy-officer-erases" => "erasure on request or at the end of retention",
            "privacy-officer-identifies-patients-under-review" => {
                "the privacy officer, checking who accessed your record"
            }
            _ => "a clinic policy",
        })
        .collect();
    let mut unique: Vec<&str> = Vec::new();
    for w in words {
        if !unique.contains(&w) {
            unique.push(w);
        }
    }
    if unique.is_empty() { "a clinic policy".to_owned() } else { unique.join("; ") }
}

/// A resource type as a patient reads it.
fn kind_words(resource_type: &str) -> &str {
    match resource_type {
        "Patient" => "your details",
        "AllergyIntolerance" => "allergies",
        "Condition" => "health problems",
        "MedicationRequest" | "MedicationStatement" | "MedicationAdministration" | "MedicationDispense" => "medicines",
        "Observation" => "measurements and test results",
        "DiagnosticReport" => "test reports",
        "Encounter" => "visits",
        "Appointment" => "appointments",
        "DocumentReference" | "Composition" => "notes",
        "Immunization" => "vaccines",
        "Procedure" => "procedures",
        "Claim" | "ExplanationOfBenefit" | "Coverage" => "billing and insurance",
        "CarePlan" | "Goal" => "care plans",
        other => other,
    }
}

/// What kinds of record an entry names (`Observation/…` → measurements and test results).
fn what_words(event: &AuditEvent) -> String {
    let mut kinds: Vec<&str> = event.resource_ids.iter().filter_map(|r| r.split('/').next()).map(kind_words).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds.join(", ")
}

/// `GET /my-record/access`: who has seen the record.
pub async fn access(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let (signed, own) =
        match patient_of(&state, &headers, (client.as_deref(), request_id.as_deref()), "/my-record/access").await {
            Ok(p) => p,
            Err(r) => return r,
        };
    let events = match crate::review::accesses_of(&state, &signed.caller, signed.origin.clone(), &own).await {
        Ok(events) => events,
        Err(_) => return super::shell::unavailable(),
    };
    let people: HashMap<String, String> = match state.identity.list_users().await {
        // A patient account's name is never shown to another patient: only workforce names.
        Ok(users) => users
            .into_iter()
            .filter(|u| !u.roles.iter().any(|r| r == "patient"))
            .map(|u| (u.id, u.display_name))
            .collect(),
        Err(_) => return super::shell::unavailable(),
    };
    let rows: String = events
        .iter()
        .rev()
        .take(500)
        .map(|e| {
            let who = match (&e.user_id, &e.client_id) {
                (Some(user), _) => people.get(user).cloned().unwrap_or_else(|| "a former member of staff".to_owned()),
                (None, Some(_)) => "a connected system".to_owned(),
                (None, None) => "phivault".to_owned(),
            };
            let via_app = if e.client_id.is_some() && e.user_id.is_some() { " (through an app)" } else { "" };
            format!(
                "<tr><td class=\"when\">{}</td><td>{}{via_app}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&phivault_fhir::format_instant(e.time_ms)[..16].replace('T', " ")),
                escape(&who),
                escape(&role_words(&e.roles)),
                escape(action_words(&e.action)),
                escape(&what_words(e)),
                escape(&why_words(e)),
            )
        })
        .collect();
    let body = if rows.is_empty() {
        "<p>Nobody but you has opened your record.</p>".to_owned()
    } else {
        format!(
            "<p>Every time someone at the clinic opened, searched or changed your record, newest first \
             (times in UTC). Questions: ask the clinic's privacy officer.</p>\
             <table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">Role</th>\
             <th scope=\"col\">What they did</th><th scope=\"col\">Which records</th><th scope=\"col\">Why</th></tr></thead>\
             <tbody>{rows}</tbody></table>"
        )
    };
    app_page(StatusCode::OK, &signed, "Who has seen my record", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_is_told_in_a_patients_words() {
        let mut e = AuditEvent::new(0, "chart", Outcome::Success, "n");
        e.policies = vec!["emergency-access-reads-one-patient".into(), "clinician-reads-care-team-patients".into()];
        e.resource_ids = vec!["Patient/p1".into(), "Observation/o1".into(), "Observation/o2".into()];
        assert_eq!(action_words(&e.action), "opened your chart");
        assert_eq!(
            why_words(&e),
            "emergency access (break the glass), reviewed by the privacy officer; caring for you (care team)"
        );
        assert_eq!(what_words(&e), "measurements and test results, your details");
        e.outcome = Outcome::Denied;
        assert_eq!(why_words(&e), "refused: they were not allowed");
        assert_eq!(role_words(&["front_desk".into(), "physician".into()]), "front desk, physician");
    }
}
