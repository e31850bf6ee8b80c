//! Writing to a chart from the browser: a note (DocumentReference), vital signs
//! (Observations, one transaction so a set is saved whole or not at all) and the
//! break-glass request. Each form carries the session's CSRF token and must come from this
//! site; each write goes through the guarded service, which decides it and commits its
//! audit entry with it; success redirects (POST-redirect-GET) to the chart with a notice
//! whose address names only what was saved, never a value.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use phivault_audit::Outcome;
use phivault_service::RecordError;
use phivault_service::access::BreakGlassRequest;
use serde::Deserialize;
use serde_json::{Value, json};

use super::chart::{Notice, break_glass_page, open_chart, record_trouble};
use super::fhir_view::{LOINC, OBSERVATION_CATEGORY};
use super::html::escape;
use super::shell::{Signed, ensure_recorded, patient_form_signed_in};
use crate::AppState;
use crate::client_ip::ClientIp;
use crate::middleware::RequestId;

/// Longest note accepted from the form.
const MAX_NOTE_CHARS: usize = 20_000;

/// The kinds of note the form offers: LOINC document types.
const NOTE_KINDS: [(&str, &str); 4] = [
    ("11506-3", "Progress note"),
    ("34746-8", "Nursing note"),
    ("34748-4", "Telephone encounter note"),
    ("18842-5", "Discharge summary"),
];

/// The forms under a chart, refilled with what was typed when it was refused.
pub fn forms(signed: &Signed, patient_id: &str, notice: &Notice<'_>, note: bool, vitals: bool) -> String {
    let typed_note = match notice {
        Notice::NoteError(_, text) => *text,
        _ => "",
    };
    let empty = VitalsForm::default();
    let typed = match notice {
        Notice::VitalsError(_, form) => form,
        _ => &empty,
    };
    let kinds: String =
        NOTE_KINDS.iter().map(|(code, label)| format!("<option value=\"{code}\">{label}</option>")).collect();
    let id = escape(patient_id);
    let csrf = &signed.csrf;
    let input = |name: &str, label: &str, unit: &str, value: &str| {
        format!(
            "<div class=\"vital\"><label for=\"{name}\">{label} <span class=\"unit\">({unit})</span></label>\
             <input id=\"{name}\" name=\"{name}\" inputmode=\"decimal\" value=\"{}\" autocomplete=\"off\"></div>",
            escape(value)
        )
    };
    let mut out = String::new();
    if note {
        out.push_str(&format!(
        "<section aria-labelledby=\"write-note\"><h2 id=\"write-note\">Write a note</h2>\
         <form method=\"post\" action=\"/chart/{id}/notes\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"kind\">Kind of note</label><select id=\"kind\" name=\"kind\">{kinds}</select>\
         <label for=\"text\">Note</label><textarea id=\"text\" name=\"text\" rows=\"6\" maxlength=\"{MAX_NOTE_CHARS}\" required>{}</textarea>\
         <button type=\"submit\">Save note</button></form></section>",
        escape(typed_note)));
    }
    if vitals {
        out.push_str(&format!(
        "<section aria-labelledby=\"record-vitals\"><h2 id=\"record-vitals\">Record vital signs</h2>\
         <form method=\"post\" action=\"/chart/{id}/vitals\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <p class=\"note\">Fill in what you measured; leave the rest empty.</p><div class=\"vitals-grid\">{}{}{}{}{}{}{}</div>\
         <button type=\"submit\">Save vital signs</button></form></section>",
        input("systolic", "Systolic pressure", "mmHg", &typed.systolic),
        input("diastolic", "Diastolic pressure", "mmHg", &typed.diastolic),
        input("heart_rate", "Heart rate", "beats/min", &typed.heart_rate),
        input("respiratory_rate", "Respiratory rate", "breaths/min", &typed.respiratory_rate),
        input("temperature", "Temperature", "°C", &typed.temperature),
        input("oxygen_saturation", "Oxygen saturation", "%", &typed.oxygen_saturation),
        input("weight", "Weight", "kg", &typed.weight),
        ));
    }
    out
}

/// The chart's address after a save, naming what was saved (never a value).
fn saved(patient_id: &str, what: &str) -> Response {
    Redirect::to(&format!("/chart/{patient_id}?saved={what}")).into_response()
}

/// A write the policies refused: the chart is answered as the chart would be (not found,
/// or the break-glass form), so a form cannot probe what a read would hide.
async fn refused_write(state: &AppState, signed: &Signed, patient_id: &str, action: &str) -> Response {
    if let Err(r) = ensure_recorded(state, signed, action, Outcome::Denied, "403", Some(patient_id)).await {
        return r;
    }
    let refusal = "This was not saved: your access to this chart does not include writing to it.";
    open_chart(state, signed, patient_id, Notice::Refused(refusal)).await
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    text: String,
}

impl std::fmt::Debug for NoteForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NoteForm(..)")
    }
}

/// A DocumentReference for the note, or what the author should correct.
fn note_resource(patient_id: &str, kind: &str, text: &str, now: &str) -> Result<Value, &'static str> {
    use base64::Engine as _;
    let text = text.trim();
    if text.is_empty() {
        return Err("The note is empty. Write the note, then save it.");
    }
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err("The note is longer than 20,000 characters. Split it into two notes.");
    }
    let Some((code, label)) = NOTE_KINDS.iter().find(|(code, _)| *code == kind) else {
        return Err("Choose the kind of note from the list.");
    };
    Ok(json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": code, "display": label}], "text": label},
        "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "code": "clinical-note", "display": "Clinical Note"}]}],
        "subject": {"reference": format!("Patient/{patient_id}")},
        "date": now,
        "content": [{"attachment": {
            "contentType": "text/plain; charset=utf-8",
            "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
            "creation": now
        }}]
    }))
}

/// `POST /chart/{id}/notes`.
pub async fn write_note(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Path(patient_id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match patient_form_signed_in(&state, &headers, ids, "/chart", &patient_id, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = phivault_fhir::format_instant(state.identity.now_ms());
    let note = match note_resource(&patient_id, &form.kind, &form.text, &now) {
        Ok(note) => note,
        Err(message) => {
            if let Err(r) = ensure_recorded(&state, &signed, "create", Outcome::Failure, "400", Some(&patient_id)).await
            {
                return r;
            }
            return open_chart(&state, &signed, &patient_id, Notice::NoteError(message, &form.text)).await;
        }
    };
    match state.records.create(&signed.accessor, "DocumentReference", note, None).await {
        Ok(_) => saved(&patient_id, "note"),
        Err(RecordError::Forbidden { .. } | RecordError::Refused { .. }) => {
            refused_write(&state, &signed, &patient_id, "create").await
        }
        Err(e) => record_trouble(&state, &signed, "create", e).await,
    }
}

#[derive(Default, Deserialize)]
pub struct VitalsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub systolic: String,
    #[serde(default)]
    pub diastolic: String,
    #[serde(default)]
    pub heart_rate: String,
    #[serde(default)]
    pub respiratory_rate: String,
    #[serde(default)]
    pub temperature: String,
    #[serde(default)]
    pub oxygen_saturation: String,
    #[serde(default)]
    pub weight: String,
}

impl std::fmt::Debug for VitalsForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VitalsForm(..)")
    }
}

/// One measurement the form takes: its field, words, LOINC code, UCUM unit and the range
/// a real measurement falls in (outside it, a typing slip is far likelier).
struct Measure {
    label: &'static str,
    loinc: &'static str,
    display: &'static str,
    unit: &'static str,
    ucum: &'static str,
    range: (f64, f64),
}

const HEART_RATE: Measure = Measure {
    label: "Heart rate",
    loinc: "8867-4",
    display: "Heart rate",
    unit: "beats/min",
    ucum: "/min",
    range: (20.0, 250.0),
};
const RESPIRATORY_RATE: Measure = Measure {
    label: "Respiratory rate",
    loinc: "9279-1",
    display: "Respiratory rate",
    unit: "breaths/min",
    ucum: "/min",
    range: (4.0, 70.0),
};
const TEMPERATURE: Measure = Measure {
    label: "Temperature",
    loinc: "8310-5",
    display: "Body temperature",
    unit: "°C",
    ucum: "Cel",
    range: (30.0, 45.0),
};
const OXYGEN: Measure = Measure {
    label: "Oxygen saturation",
    loinc: "59408-5",
    display: "Oxygen saturation in Arterial blood by Pulse oximetry",
    unit: "%",
    ucum: "%",
    range: (50.0, 100.0),
};
const WEIGHT: Measure =
    Measure { label: "Weight", loinc: "29463-7", display: "Body weight", unit: "kg", ucum: "kg", range: (0.2, 400.0) };
const SYSTOLIC: Measure = Measure {
    label: "Systolic pressure",
    loinc: "8480-6",
    display: "Systolic blood pressure",
    unit: "mmHg",
    ucum: "mm[Hg]",
    range: (40.0, 300.0),
};
const DIASTOLIC: Measure = Measure {
    label: "Diastolic pressure",
    loinc: "8462-4",
    display: "Diastolic blood pressure",
    unit: "mmHg",
    ucum: "mm[Hg]",
    range: (20.0, 200.0),
};

/// A typed number, kept exactly as written (`36.60` stays `36.60`), or a correction in
/// words. A decimal comma is read as a point.
fn measured(measure: &Measure, typed: &str) -> Result<Option<(serde_json::Number, f64)>, String> {
    let typed = typed.trim().replace(',', ".");
    if typed.is_empty() {
        return Ok(None);
    }
    let digits_and_point = typed.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && typed.bytes().filter(|b| *b == b'.').count() <= 1
        && !typed.starts_with('.')
        && !typed.ends_with('.')
        && typed.len() <= 8;
    let (lo, hi) = measure.range;
    let words = || {
        format!(
            "{} must be a number from {} to {} {}.",
            measure.label,
            super::fhir_view::number(lo),
            super::fhir_view::number(hi),
            measure.unit
        )
    };
    if !digits_and_point {
        return Err(words());
    }
    let value: f64 = typed.parse().map_err(|_| words())?;
    if !(lo..=hi).contains(&value) {
        return Err(words());
    }
    let number: serde_json::Number = typed.parse().map_err(|_| words())?;
    Ok(Some((number, value)))
}

fn quantity(measure: &Measure, value: &serde_json::Number) -> Value {
    json!({"value": value, "unit": measure.ucum, "system": "http://unitsofmeasure.org", "code": measure.ucum})
}

fn observation(patient_id: &str, now: &str, code: Value, value: (&str, Value)) -> Value {
    let mut o = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
        "code": code,
        "subject": {"reference": format!("Patient/{patient_id}")},
        "effectiveDateTime": now,
    });
    o[value.0] = value.1;
    o
}

fn loinc(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": LOINC, "code": code, "display": display}], "text": display})
}

/// The Observations for the typed vital signs, or every correction the nurse should make.
fn vitals_resources(patient_id: &str, form: &VitalsForm, now: &str) -> Result<Vec<Value>, Vec<String>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut take = |measure: &Measure, typed: &str| match measured(measure, typed) {
        Ok(v) => v,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let systolic = take(&SYSTOLIC, &form.systolic);
    let diastolic = take(&DIASTOLIC, &form.diastolic);
    let singles = [
        (&HEART_RATE, take(&HEART_RATE, &form.heart_rate)),
        (&RESPIRATORY_RATE, take(&RESPIRATORY_RATE, &form.respiratory_rate)),
        (&TEMPERATURE, take(&TEMPERATURE, &form.temperature)),
        (&OXYGEN, take(&OXYGEN, &form.oxygen_saturation)),
        (&WEIGHT, take(&WEIGHT, &form.weight)),
    ];
    match (&systolic, &diastolic) {
        (Some((s, sv)), Some((d, dv))) => {
            if sv <= dv {
                errors.push("Systolic pressure must be higher than diastolic pressure.".to_owned());
            } else {
                let mut panel = observation(
                    patient_id,
                    now,
                    loinc("85354-9", "Blood pressure panel with all children optional"),
                    ("component", Value::Null),
                );
                panel["component"] = json!([
                    {"code": loinc(SYSTOLIC.loinc, SYSTOLIC.display), "valueQuantity": quantity(&SYSTOLIC, s)},
                    {"code": loinc(DIASTOLIC.loinc, DIASTOLIC.display), "valueQuantity": quantity(&DIASTOLIC, d)},
                ]);
                out.push(panel);
            }
        }
        (None, None) => {}
        _ => errors.push("Blood pressure needs both numbers, systolic and diastolic.".to_owned()),
    }
    for (measure, value) in singles {
        if let Some((value, _)) = value {
            out.push(observation(
                patient_id,
                now,
                loinc(measure.loinc, measure.display),
                ("valueQuantity", quantity(measure, &value)),
            ));
        }
    }
    if errors.is_empty() && out.is_empty() {
        errors.push("Nothing to save: fill in at least one vital sign.".to_owned());
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// `POST /chart/{id}/vitals`: every typed vital sign in one transaction.
pub async fn record_vitals(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Path(patient_id): Path<String>,
    Form(form): Form<VitalsForm>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match patient_form_signed_in(&state, &headers, ids, "/chart", &patient_id, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = phivault_fhir::format_instant(state.identity.now_ms());
    let observations = match vitals_resources(&patient_id, &form, &now) {
        Ok(o) => o,
        Err(errors) => {
            if let Err(r) = ensure_recorded(&state, &signed, "batch", Outcome::Failure, "400", Some(&patient_id)).await
            {
                return r;
            }
            let message = errors.join(" ");
            return open_chart(&state, &signed, &patient_id, Notice::VitalsError(&message, &form)).await;
        }
    };
    let entries: Vec<Value> = observations
        .into_iter()
        .map(|resource| json!({"resource": resource, "request": {"method": "POST", "url": "Observation"}}))
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    match state.records.process_bundle(&signed.accessor, bundle).await {
        Ok(granted) => match granted.value.entries.into_iter().find_map(Result::err) {
            // A transaction either wrote every entry or none; an entry error means none.
            Some(RecordError::Forbidden { .. } | RecordError::Refused { .. }) => {
                refused_write(&state, &signed, &patient_id, "batch").await
            }
            Some(e) => record_trouble(&state, &signed, "batch", e).await,
            None => saved(&patient_id, "vitals"),
        },
        Err(RecordError::Forbidden { .. } | RecordError::Refused { .. }) => {
            refused_write(&state, &signed, &patient_id, "batch").await
        }
        Err(e) => record_trouble(&state, &signed, "batch", e).await,
    }
}

#[derive(Deserialize)]
pub struct BreakGlassForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

impl std::fmt::Debug for BreakGlassForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BreakGlassForm(..)")
    }
}

/// `POST /chart/{id}/break-glass`: emergency access to this patient, then the chart.
pub async fn break_glass(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Path(patient_id): Path<String>,
    Form(form): Form<BreakGlassForm>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match patient_form_signed_in(&state, &headers, ids, "/chart", &patient_id, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let asked = BreakGlassRequest { patient_id: patient_id.clone(), reason: form.reason.clone(), note: form.note };
    match state.records.break_glass(&signed.accessor, &asked).await {
        Ok(granted) => {
            crate::break_glass::notify(&state, &granted.value).await;
            Redirect::to(&format!("/chart/{patient_id}")).into_response()
        }
        Err(RecordError::Invalid(e)) => {
            if let Err(r) =
                ensure_recorded(&state, &signed, "break_glass.request", Outcome::Failure, "400", Some(&patient_id))
                    .await
            {
                return r;
            }
            let minutes = state.records.break_glass_minutes();
            break_glass_page(&signed, &patient_id, minutes, Some(&sentence(&e.to_string())), StatusCode::BAD_REQUEST)
        }
        // Not allowed to ask, or no such patient: the same page as an unknown chart.
        Err(RecordError::Forbidden { .. } | RecordError::NotFound { .. } | RecordError::Shredded { .. }) => {
            if let Err(r) =
                ensure_recorded(&state, &signed, "break_glass.request", Outcome::Denied, "403", Some(&patient_id)).await
            {
                return r;
            }
            open_chart(&state, &signed, &patient_id, Notice::None).await
        }
        Err(e) => record_trouble(&state, &signed, "break_glass.request", e).await,
    }
}

/// A service message as a sentence: capitalised, with a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vitals(pairs: &[(&str, &str)]) -> VitalsForm {
        let mut form = VitalsForm::default();
        for (k, v) in pairs {
            let v = (*v).to_owned();
            match *k {
                "systolic" => form.systolic = v,
                "diastolic" => form.diastolic = v,
                "heart_rate" => form.heart_rate = v,
                "temperature" => form.temperature = v,
                "weight" => form.weight = v,
                _ => unreachable!("test field"),
            }
        }
        form
    }

    #[test]
    fn vital_signs_are_kept_as_typed_and_refused_in_words() {
        let saved = vitals_resources(
            "p1",
            &vitals(&[("temperature", "36,60"), ("systolic", "120"), ("diastolic", "80")]),
            "2026-12-03T10:00:00Z",
        )
        .expect("valid");
        assert_eq!(saved.len(), 2);
        let temperature = serde_json::to_string(&saved[1]["valueQuantity"]["value"]).expect("json");
        assert_eq!(temperature, "36.60", "the precision typed is the precision stored");
        assert_eq!(saved[0]["component"][0]["valueQuantity"]["value"], json!(120));
        assert_eq!(saved[0]["subject"]["reference"], "Patient/p1");

        let refused =
            vitals_resources("p1", &vitals(&[("heart_rate", "7200"), ("systolic", "80"), ("diastolic", "120")]), "t")
                .expect_err("refused");
        assert!(refused.iter().any(|e| e == "Heart rate must be a number from 20 to 250 beats/min."), "{refused:?}");
        assert!(refused.iter().any(|e| e.contains("higher than diastolic")), "{refused:?}");
        for typo in ["12o", "-5", "1e3", "37.", "NaN", "inf", "36..6"] {
            assert!(vitals_resources("p1", &vitals(&[("temperature", typo)]), "t").is_err(), "{typo}");
        }
        assert!(vitals_resources("p1", &vitals(&[("systolic", "120")]), "t").is_err(), "half a blood pressure");
        assert!(vitals_resources("p1", &VitalsForm::default(), "t").is_err(), "an empty form saves nothing");
    }

    #[test]
    fn a_note_needs_text_and_a_listed_kind() {
        let note = note_resource("p1", "11506-3", "  Quacks less. \n", "2026-12-03T10:00:00Z").expect("valid");
        assert_eq!(note["content"][0]["attachment"]["data"], "UXVhY2tzIGxlc3Mu");
        assert_eq!(note["type"]["text"], "Progress note");
        assert!(note_resource("p1", "11506-3", "   ", "t").is_err());
        assert!(note_resource("p1", "<script>", "text", "t").is_err());
        assert!(note_resource("p1", "11506-3", &"x".repeat(MAX_NOTE_CHARS + 1), "t").is_err());
    }
}
