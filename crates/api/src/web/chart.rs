//! The chart (`/chart/{id}`): one patient's record as a clinician reads it, from one
//! guarded chart read (one decision pass, one audit entry naming everything shown). A
//! patient outside the caller's care answers as a record that does not exist, except to a
//! caller who may break the glass, who gets the emergency-access form; while a grant is
//! live every chart page of that patient says so, with the time left.
//!
//! Safeguards: 45 CFR 164.312(a)(1) access control, (a)(2)(ii) emergency access
//! procedure; 164.312(b) audit controls; 164.502(b) minimum necessary (masked fields show
//! as withheld).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use phivault_audit::Outcome;
use phivault_service::RecordError;
use phivault_service::access::{BREAK_GLASS_REASONS, ChartQuery, ChartSection, PatientChart};
use phivault_service::records::StoredResource;
use serde_json::Value;

use super::fhir_view::{
    LOINC, code_in, concept, date_of, in_category, mrn, non_empty, note_text, number, observation_value, person_name,
    quantity,
};
use super::html::escape;
use super::shell::{Signed, app_page, app_page_headed, ensure_recorded, signed_in, unavailable};
use super::trend::{Reading, sparkline};
use crate::AppState;
use crate::client_ip::ClientIp;
use crate::middleware::RequestId;

/// What a chart reads, and so shows: every resource read is on the page, so the audit
/// entry that names them says what the clinician saw.
pub const CHART_QUERIES: [ChartQuery<'static>; 9] = [
    ChartQuery::all("AllergyIntolerance", 100),
    ChartQuery::all("Condition", 100),
    ChartQuery::all("MedicationRequest", 100),
    ChartQuery { section: "vitals", resource_type: "Observation", params: &[("category", "vital-signs")], limit: 300 },
    ChartQuery { section: "labs", resource_type: "Observation", params: &[("category", "laboratory")], limit: 40 },
    ChartQuery::all("Encounter", 20),
    ChartQuery::all("DocumentReference", 20),
    ChartQuery::all("Immunization", 50),
    ChartQuery::all("Procedure", 50),
];

/// Vital signs charted, by LOINC code: label and unit as people write them. Blood
/// pressure is read from its panel's two components.
const VITALS: [(&str, &str, &str); 8] = [
    ("8480-6", "Systolic blood pressure", "mmHg"),
    ("8462-4", "Diastolic blood pressure", "mmHg"),
    ("8867-4", "Heart rate", "/min"),
    ("9279-1", "Respiratory rate", "/min"),
    ("8310-5", "Body temperature", "°C"),
    ("59408-5", "Oxygen saturation", "%"),
    ("29463-7", "Body weight", "kg"),
    ("39156-5", "Body mass index", "kg/m²"),
];

/// The page for a failure that is nobody's input: logged (ids only), audited, and told
/// in words that show nothing of the record.
pub async fn record_trouble(state: &AppState, signed: &Signed, action: &str, error: RecordError) -> Response {
    let (status, text) = match &error {
        RecordError::AuditUnavailable => return unavailable(),
        RecordError::ReadOnly => (
            StatusCode::SERVICE_UNAVAILABLE,
            "phivault is in emergency read-only mode: records can be read but not changed. Write it down and enter it later.",
        ),
        RecordError::Invalid(_) => {
            (StatusCode::BAD_REQUEST, "That request could not be understood. Go back and try again.")
        }
        _ => {
            tracing::error!(error = %error, action, "a page's record operation failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The record service is unavailable right now. Please try again in a moment.",
            )
        }
    };
    if let Err(r) = ensure_recorded(state, signed, action, Outcome::Failure, status.as_str(), None).await {
        return r;
    }
    app_page(status, signed, "Not available", &format!("<p class=\"error\" role=\"alert\">{}</p>", escape(text)))
}

/// A chart that the caller may not see, or that does not exist: the same words for both.
fn no_such_chart(signed: &Signed) -> Response {
    app_page(
        StatusCode::NOT_FOUND,
        signed,
        "No such chart",
        "<p class=\"error\" role=\"alert\">No patient record you may see has this address.</p>\
         <p><a href=\"/patients\">Back to my patients</a></p>",
    )
}

/// The refusal a clinician who may break the glass gets: what emergency access is, its
/// rules, and the form that asks for it.
pub fn break_glass_page(
    signed: &Signed,
    patient_id: &str,
    minutes: u32,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let reasons: String = BREAK_GLASS_REASONS
        .iter()
        .map(|r| format!("<option value=\"{r}\">{}</option>", escape(&reason_words(r))))
        .collect();
    app_page(
        status,
        signed,
        "Not in your care",
        &format!(
            "<p>This patient is not on your care team, so their chart is closed to you.</p>\
             <section class=\"glass\" aria-labelledby=\"bg\"><h2 id=\"bg\">Emergency access (break the glass)</h2>\
             <p>If you need this chart to treat the patient now, you can open it for {minutes} minutes. \
             The rules:</p><ul><li>Use it only for this patient's care, now.</li>\
             <li>Your reason, every page you open and everything you change are recorded.</li>\
             <li>The privacy officer is told at once and reviews every use; unjustified access is a violation of policy.</li></ul>\
             {}<form method=\"post\" action=\"/chart/{}/break-glass\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"reason\">Reason</label><select id=\"reason\" name=\"reason\" required>{reasons}</select>\
             <label for=\"note\">What is happening (at least 10 characters; seen by the privacy officer)</label>\
             <textarea id=\"note\" name=\"note\" rows=\"3\" required minlength=\"10\" maxlength=\"2000\"></textarea>\
             <button type=\"submit\">Open the chart for {minutes} minutes</button></form></section>\
             <p><a href=\"/patients\">Back to my patients</a></p>",
            super::html::error_line(error),
            escape(patient_id),
            signed.csrf,
        ),
    )
}

/// A break-glass reason code in words.
pub fn reason_words(code: &str) -> String {
    match code {
        "emergency-treatment" => "Emergency treatment".to_owned(),
        "patient-unable-to-consent" => "Patient unable to consent".to_owned(),
        "urgent-consultation" => "Urgent consultation".to_owned(),
        "covering-colleague" => "Covering for a colleague".to_owned(),
        "other" => "Other (explain below)".to_owned(),
        other => other.replace('-', " "),
    }
}

/// `GET /chart/{id}`.
pub async fn chart(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Path(id): Path<String>,
    Query(after): Query<AfterSave>,
) -> Response {
    let valid = phivault_fhir::is_valid_id(&id);
    // Only a valid id is ever put back into an address (sign-in's way back).
    let here = if valid { format!("/chart/{id}") } else { "/patients".to_owned() };
    let signed = match signed_in(&state, &headers, client.as_deref(), request_id.as_deref(), &here).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !valid {
        if let Err(r) = ensure_recorded(&state, &signed, "chart", Outcome::Failure, "404", None).await {
            return r;
        }
        return no_such_chart(&signed);
    }
    let notice = match after.saved.as_deref() {
        Some("note") => Notice::Saved("Note saved."),
        Some("vitals") => Notice::Saved("Vital signs saved."),
        _ => Notice::None,
    };
    open_chart(&state, &signed, &id, notice).await
}

/// What a form just saved (`?saved=note`): a word, never a value.
#[derive(Debug, serde::Deserialize)]
pub struct AfterSave {
    saved: Option<String>,
}

/// A notice shown at the top of a chart after a form was handled.
pub enum Notice<'a> {
    None,
    Saved(&'a str),
    NoteError(&'a str, &'a str),
    VitalsError(&'a str, &'a super::chart_forms::VitalsForm),
    /// A write the policies refused, on a chart the caller may still read.
    Refused(&'a str),
}

/// Reads and renders `id`'s chart for `signed`, with `notice`.
pub async fn open_chart(state: &AppState, signed: &Signed, id: &str, notice: Notice<'_>) -> Response {
    match state.records.patient_chart(&signed.accessor, id, &CHART_QUERIES).await {
        Ok(granted) => {
            let status = match notice {
                Notice::NoteError(..) | Notice::VitalsError(..) => StatusCode::BAD_REQUEST,
                Notice::Refused(_) => StatusCode::FORBIDDEN,
                Notice::None | Notice::Saved(_) => StatusCode::OK,
            };
            let chart = granted.value;
            let heading = non_empty(person_name(&chart.patient.body), "Patient");
            let now_ms = state.identity.now_ms();
            app_page_headed(status, signed, "Chart", &heading, &render_chart(signed, &chart, now_ms, &notice))
        }
        Err(RecordError::Refused { break_glass: true, .. }) => {
            break_glass_page(signed, id, state.records.break_glass_minutes(), None, StatusCode::FORBIDDEN)
        }
        Err(RecordError::Refused { .. }) => no_such_chart(signed),
        // An id no record has is recorded too: probing for ids leaves a trace.
        Err(RecordError::NotFound { .. } | RecordError::Shredded { .. }) => {
            if let Err(r) = ensure_recorded(state, signed, "chart", Outcome::Failure, "404", Some(id)).await {
                return r;
            }
            no_such_chart(signed)
        }
        Err(RecordError::Forbidden { .. }) => {
            if let Err(r) = ensure_recorded(state, signed, "chart", Outcome::Denied, "403", Some(id)).await {
                return r;
            }
            no_such_chart(signed)
        }
        Err(e) => record_trouble(state, signed, "chart", e).await,
    }
}

/// Text for a field, or "withheld" when a mask removed what the record holds.
fn field(body: &Value, name: &str) -> String {
    match body.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(_) | None => String::new(),
    }
}

fn render_chart(signed: &Signed, chart: &PatientChart, now_ms: i64, notice: &Notice<'_>) -> String {
    let p = &chart.patient.body;
    let mut out = String::new();
    if let Some(until) = chart.emergency_until_ms {
        let minutes_left = ((until - now_ms).max(0) + 59_999) / 60_000;
        out.push_str(&format!(
            "<p class=\"banner glass\" role=\"status\"><strong>Emergency access</strong>: this chart is open to you \
             through break-glass until {} UTC ({minutes_left} min left). Every view is recorded and reviewed.</p>",
            escape(&phivault_fhir::format_instant(until)[11..16]),
        ));
    }
    match notice {
        Notice::Saved(what) => out.push_str(&format!("<p class=\"saved\" role=\"status\">{}</p>", escape(what))),
        Notice::NoteError(message, _) | Notice::VitalsError(message, _) | Notice::Refused(message) => {
            out.push_str(&super::html::error_line(Some(message)));
        }
        Notice::None => {}
    }
    let masked = p.pointer("/meta/security").and_then(Value::as_array).is_some_and(|s| {
        s.iter().any(|c| c.get("code").and_then(Value::as_str) == Some(phivault_policy::REDACTED_CODE))
    });
    out.push_str(&format!(
        "<dl class=\"demographics\"><dt>Birth date</dt><dd>{}</dd><dt>Sex</dt><dd>{}</dd><dt>MRN</dt><dd>{}</dd>\
         <dt>Address</dt><dd>{}</dd><dt>Phone</dt><dd>{}</dd></dl>{}",
        escape(&or_withheld(field(p, "birthDate"), masked)),
        escape(&or_withheld(field(p, "gender"), masked)),
        escape(&or_withheld(mrn(p).unwrap_or_default(), masked)),
        escape(&or_withheld(address(p), masked)),
        escape(&or_withheld(phone(p), masked)),
        if masked { "<p class=\"note\">Some details are withheld from your role (minimum necessary).</p>" } else { "" },
    ));
    out.push_str(&allergies("Allergies", chart.section("AllergyIntolerance")));
    out.push_str(&list_section("Problems", "problems", chart.section("Condition"), problem_row));
    out.push_str(&list_section("Medications", "medications", chart.section("MedicationRequest"), medication_row));
    out.push_str(&vitals("Vital signs", chart.section("vitals")));
    out.push_str(&labs("Recent results", chart.section("labs")));
    out.push_str(&list_section("Encounters", "encounters", chart.section("Encounter"), encounter_row));
    out.push_str(&notes(chart.section("DocumentReference")));
    out.push_str(&list_section("Immunizations", "immunizations", chart.section("Immunization"), immunization_row));
    out.push_str(&list_section("Procedures", "procedures", chart.section("Procedure"), procedure_row));
    out.push_str(&super::chart_forms::forms(
        signed,
        &chart.patient.id,
        notice,
        chart.may_create("DocumentReference"),
        chart.may_create("Observation"),
    ));
    if chart.emergency_until_ms.is_some() && chart.writable.is_empty() {
        out.push_str("<p class=\"note\">Emergency access reads the chart; it does not write to it.</p>");
    }
    out
}

fn or_withheld(text: String, masked: bool) -> String {
    match (text.is_empty(), masked) {
        (false, _) => text,
        (true, true) => "withheld".to_owned(),
        (true, false) => "not recorded".to_owned(),
    }
}

fn address(patient: &Value) -> String {
    let Some(a) = patient.pointer("/address/0") else { return String::new() };
    let mut parts: Vec<String> = a
        .get("line")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    for key in ["city", "state", "postalCode"] {
        if let Some(v) = a.get(key).and_then(Value::as_str) {
            parts.push(v.to_owned());
        }
    }
    parts.join(", ")
}

fn phone(patient: &Value) -> String {
    patient
        .get("telecom")
        .and_then(Value::as_array)
        .and_then(|t| t.iter().find(|c| c.get("system").and_then(Value::as_str) == Some("phone")))
        .and_then(|c| c.get("value").and_then(Value::as_str))
        .unwrap_or("")
        .to_owned()
}

/// What a section says when the caller's role may not see it or it holds nothing.
fn empty_words(section: Option<&ChartSection>, nothing: &str) -> Option<String> {
    match section {
        None => Some(String::new()),
        Some(s) if s.withheld => Some("<p class=\"note\">Not shown to your role.</p>".to_owned()),
        Some(s) if s.resources.is_empty() => Some(format!("<p>{}</p>", escape(nothing))),
        Some(_) => None,
    }
}

fn more_line(section: &ChartSection, shown: usize) -> String {
    if section.more { format!("<p class=\"note\">The newest {shown} are shown.</p>") } else { String::new() }
}

pub(super) fn allergies(title: &str, section: Option<&ChartSection>) -> String {
    let body = empty_words(section, "No allergies recorded.").unwrap_or_else(|| {
        let items: String = section
            .map(|s| s.resources.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|a| {
                let b = &a.body;
                let reactions: Vec<String> = b
                    .get("reaction")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .flat_map(|r| r.get("manifestation").and_then(Value::as_array).cloned().unwrap_or_default())
                            .map(|m| concept(Some(&m)))
                            .filter(|m| !m.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                let criticality = b.get("criticality").and_then(Value::as_str).unwrap_or("");
                format!(
                    "<li><strong>{}</strong>{}{}</li>",
                    escape(&non_empty(concept(b.get("code")), "(unnamed allergy)")),
                    if criticality.is_empty() {
                        String::new()
                    } else {
                        format!(" · criticality {}", escape(criticality))
                    },
                    if reactions.is_empty() { String::new() } else { format!(" · {}", escape(&reactions.join(", "))) },
                )
            })
            .collect();
        format!("<ul>{items}</ul>")
    });
    format!(
        "<section class=\"allergies\" aria-labelledby=\"allergies\"><h2 id=\"allergies\">{}</h2>{body}</section>",
        escape(title)
    )
}

pub(super) fn list_section(
    title: &str,
    anchor: &str,
    section: Option<&ChartSection>,
    row: fn(&StoredResource) -> (bool, String),
) -> String {
    let body = empty_words(section, &format!("No {} recorded.", title.to_lowercase())).unwrap_or_else(|| {
        let Some(section) = section else { return String::new() };
        // Active first, each group newest first (the order the chart read them in).
        let mut rows: Vec<(bool, String)> = section.resources.iter().map(row).collect();
        rows.sort_by_key(|(active, _)| !*active);
        let rows: String = rows.into_iter().map(|(_, r)| r).collect();
        format!("<table><tbody>{rows}</tbody></table>{}", more_line(section, section.resources.len()))
    });
    format!("<section aria-labelledby=\"{anchor}\"><h2 id=\"{anchor}\">{}</h2>{body}</section>", escape(title))
}

fn status_of(body: &Value, field: &str) -> String {
    match body.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => concept(Some(v)),
        None => String::new(),
    }
}

pub(super) fn problem_row(r: &StoredResource) -> (bool, String) {
    let status = status_of(&r.body, "clinicalStatus");
    let active = matches!(status.as_str(), "active" | "recurrence" | "relapse");
    (
        active,
        format!(
            "<tr><td>{}</td><td>{}</td><td class=\"when\">{}</td></tr>",
            escape(&non_empty(concept(r.body.get("code")), "(unnamed)")),
            escape(&status),
            escape(&date_of(&r.body, &["onsetDateTime", "onsetPeriod", "recordedDate"])),
        ),
    )
}

pub(super) fn medication_row(r: &StoredResource) -> (bool, String) {
    let status = status_of(&r.body, "status");
    let dosage = r.body.pointer("/dosageInstruction/0/text").and_then(Value::as_str).unwrap_or("");
    (
        status == "active",
        format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"when\">{}</td></tr>",
            escape(&non_empty(concept(r.body.get("medicationCodeableConcept")), "(medication)")),
            escape(dosage),
            escape(&status),
            escape(&date_of(&r.body, &["authoredOn"])),
        ),
    )
}

pub(super) fn encounter_row(r: &StoredResource) -> (bool, String) {
    let kind = r.body.get("type").and_then(Value::as_array).and_then(|t| t.first()).map(|t| concept(Some(t)));
    (
        false,
        format!(
            "<tr><td class=\"when\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&date_of(&r.body, &["period"])),
            escape(&non_empty(kind.unwrap_or_default(), "Encounter")),
            escape(&status_of(&r.body, "status")),
        ),
    )
}

pub(super) fn immunization_row(r: &StoredResource) -> (bool, String) {
    (
        false,
        format!(
            "<tr><td class=\"when\">{}</td><td>{}</td></tr>",
            escape(&date_of(&r.body, &["occurrenceDateTime"])),
            escape(&non_empty(concept(r.body.get("vaccineCode")), "(vaccine)")),
        ),
    )
}

pub(super) fn procedure_row(r: &StoredResource) -> (bool, String) {
    (
        false,
        format!(
            "<tr><td class=\"when\">{}</td><td>{}</td></tr>",
            escape(&date_of(&r.body, &["performedDateTime", "performedPeriod"])),
            escape(&non_empty(concept(r.body.get("code")), "(procedure)")),
        ),
    )
}

/// The readings of one vital sign, oldest first.
fn readings(observations: &[&StoredResource], loinc: &str) -> Vec<Reading> {
    let mut out: Vec<Reading> = observations
        .iter()
        .filter_map(|o| {
            let b = &o.body;
            let date = date_of(b, &["effectiveDateTime", "effectivePeriod", "effectiveInstant"]);
            if code_in(b.get("code"), LOINC).as_deref() == Some(loinc) {
                return quantity(b.get("valueQuantity")).map(|(value, _)| Reading { date, value });
            }
            // A blood-pressure panel carries systolic and diastolic as components.
            b.get("component").and_then(Value::as_array)?.iter().find_map(|c| {
                (code_in(c.get("code"), LOINC).as_deref() == Some(loinc))
                    .then(|| quantity(c.get("valueQuantity")).map(|(value, _)| Reading { date: date.clone(), value }))
                    .flatten()
            })
        })
        .collect();
    out.sort_by(|a, b| a.date.cmp(&b.date));
    out
}

pub(super) fn vitals(title: &str, section: Option<&ChartSection>) -> String {
    let body = empty_words(section, "No vital signs recorded.").unwrap_or_else(|| {
        let observations: Vec<&StoredResource> = section
            .map(|s| s.resources.iter().filter(|o| in_category(&o.body, "vital-signs")).collect())
            .unwrap_or_default();
        let row = |label: &str, unit: &str, series: &[Reading]| {
            series.last().map(|latest| {
                format!(
                    "<tr><th scope=\"row\">{}</th><td>{} {}</td><td class=\"when\">{}</td><td>{}</td></tr>",
                    escape(label),
                    escape(&number(latest.value)),
                    escape(unit),
                    escape(&latest.date),
                    sparkline(label, unit, series),
                )
            })
        };
        let mut rows: String =
            VITALS.iter().filter_map(|(code, label, unit)| row(label, unit, &readings(&observations, code))).collect();
        // Every other vital sign the chart read is shown too (height, pain score, head
        // circumference...): the audit entry names them, so the page shows them.
        let mut others: Vec<(String, String, String)> = Vec::new();
        for o in &observations {
            let code = code_in(o.body.get("code"), LOINC).unwrap_or_default();
            let known = VITALS.iter().any(|(c, _, _)| *c == code) || o.body.get("component").is_some();
            if known || others.iter().any(|(c, _, _)| *c == code) {
                continue;
            }
            let unit = quantity(o.body.get("valueQuantity")).map(|(_, u)| u).unwrap_or_default();
            others.push((code, non_empty(concept(o.body.get("code")), "(measurement)"), unit));
        }
        for (code, label, unit) in &others {
            let series = readings(&observations, code);
            match row(label, unit, &series) {
                Some(r) => rows.push_str(&r),
                None => {
                    // A reading without a number (a coded or text value): the newest one.
                    let newest =
                        observations.iter().find(|o| code_in(o.body.get("code"), LOINC).as_deref() == Some(code));
                    if let Some(o) = newest {
                        rows.push_str(&format!(
                            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td></td></tr>",
                            escape(label),
                            escape(&observation_value(&o.body)),
                            escape(&date_of(&o.body, &["effectiveDateTime", "effectivePeriod", "effectiveInstant"])),
                        ));
                    }
                }
            }
        }
        if rows.is_empty() {
            "<p>No vital signs recorded.</p>".to_owned()
        } else {
            format!(
                "<table class=\"vitals\"><thead><tr><th scope=\"col\">Vital sign</th><th scope=\"col\">Latest</th>\
                 <th scope=\"col\">Taken</th><th scope=\"col\">Trend</th></tr></thead><tbody>{rows}</tbody></table>{}",
                section.map(|s| more_line(s, s.resources.len())).unwrap_or_default()
            )
        }
    });
    format!("<section aria-labelledby=\"vitals\"><h2 id=\"vitals\">{}</h2>{body}</section>", escape(title))
}

pub(super) fn labs(title: &str, section: Option<&ChartSection>) -> String {
    let body = empty_words(section, "No results recorded.").unwrap_or_else(|| {
        let rows: String = section
            .map(|s| s.resources.as_slice())
            .unwrap_or_default()
            .iter()
            // Everything but vital signs: laboratory results in a chart (which reads only
            // those), every other observation in a whole-record copy.
            .filter(|o| !in_category(&o.body, "vital-signs"))
            .map(|o| {
                format!(
                    "<tr><td class=\"when\">{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&date_of(&o.body, &["effectiveDateTime", "effectivePeriod", "issued"])),
                    escape(&non_empty(concept(o.body.get("code")), "(test)")),
                    escape(&observation_value(&o.body)),
                )
            })
            .collect();
        if rows.is_empty() {
            "<p>No results recorded.</p>".to_owned()
        } else {
            format!(
                "<table><thead><tr><th scope=\"col\">Date</th><th scope=\"col\">Test</th><th scope=\"col\">Result</th></tr></thead>\
                 <tbody>{rows}</tbody></table>{}",
                section.map(|s| more_line(s, s.resources.len())).unwrap_or_default()
            )
        }
    });
    format!("<section aria-labelledby=\"labs\"><h2 id=\"labs\">{}</h2>{body}</section>", escape(title))
}

fn notes(section: Option<&ChartSection>) -> String {
    let body = empty_words(section, "No notes recorded.").unwrap_or_else(|| {
        let Some(section) = section else { return String::new() };
        let items: String = section
            .resources
            .iter()
            .map(|d| {
                let title = non_empty(concept(d.body.get("type")), "Note");
                let text = note_text(&d.body, 4000).unwrap_or_else(|| "(no readable text)".to_owned());
                format!(
                    "<details><summary>{} · {}</summary><pre class=\"note-text\">{}</pre></details>",
                    escape(&date_of(&d.body, &["date"])),
                    escape(&title),
                    escape(&text),
                )
            })
            .collect();
        format!("{items}{}", more_line(section, section.resources.len()))
    });
    format!("<section aria-labelledby=\"notes\"><h2 id=\"notes\">Notes</h2>{body}</section>")
}
