//! The front desk: register a patient, see their registration (masked to the front desk's
//! view: no SSN, no clinical record), assign the clinicians who care for them, and
//! schedule appointments. Registration and appointments go through the guarded service
//! (decided, and audited in the commit); care-team changes are decided by the policies'
//! `manage_care_teams` and recorded in the trail (`web.careteam.add|remove`), so a new
//! patient reaches their physician without a console command.
//!
//! Safeguards: 45 CFR 164.308(a)(4)(ii)(B)-(C) access authorization, establishment and
//! modification; 164.502(b) minimum necessary (the front desk's view).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use phivault_audit::Outcome;
use phivault_identity::Role;
use phivault_service::RecordError;
use phivault_service::access::{AssignmentKind, CareTeamChange, PatientChart};
use serde::Deserialize;
use serde_json::{Value, json};

use super::chart::record_trouble;
use super::fhir_view::{mrn, person_name, role_words};
use super::html::{error_line, escape};
use super::shell::{Signed, app_page, ensure_recorded, form_signed_in, signed_in, unavailable};
use crate::AppState;
use crate::client_ip::ClientIp;
use crate::middleware::RequestId;

/// The identifier type of a medical record number (HL7 v2 table 0203).
const MR_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
/// The system of the MRNs this clinic assigns at registration.
pub const MRN_SYSTEM: &str = "urn:phivault:mrn";
const SSN_SYSTEM: &str = "http://hl7.org/fhir/sid/us-ssn";

fn not_front_desk(signed: &Signed) -> Response {
    app_page(
        StatusCode::FORBIDDEN,
        signed,
        "Front desk",
        "<p class=\"error\" role=\"alert\">Registration and scheduling are the front desk's work.</p>",
    )
}

fn no_such_patient(signed: &Signed) -> Response {
    app_page(
        StatusCode::NOT_FOUND,
        signed,
        "No such patient",
        "<p class=\"error\" role=\"alert\">No registration you may see has this address.</p>\
         <p><a href=\"/patients\">Find a patient</a></p>",
    )
}

// ---- registration -----------------------------------------------------------------------

#[derive(Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    family: String,
    #[serde(default)]
    given: String,
    #[serde(default)]
    birthdate: String,
    #[serde(default)]
    sex: String,
    #[serde(default)]
    mrn: String,
    #[serde(default)]
    ssn: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    line: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    postal_code: String,
}

impl std::fmt::Debug for RegisterForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegisterForm(..)")
    }
}

const SEXES: [(&str, &str); 4] = [("female", "Female"), ("male", "Male"), ("other", "Other"), ("unknown", "Unknown")];

fn register_page(signed: &Signed, form: &RegisterForm, errors: &[String], status: StatusCode) -> Response {
    let field = |name: &str, label: &str, value: &str, extra: &str| {
        format!(
            "<label for=\"{name}\">{label}</label><input id=\"{name}\" name=\"{name}\" value=\"{}\" {extra}>",
            escape(value)
        )
    };
    let sexes: String = SEXES
        .iter()
        .map(|(code, label)| {
            let selected = if form.sex == *code { " selected" } else { "" };
            format!("<option value=\"{code}\"{selected}>{label}</option>")
        })
        .collect();
    let problems = if errors.is_empty() {
        String::new()
    } else {
        let items: String = errors.iter().map(|e| format!("<li>{}</li>", escape(e))).collect();
        format!("<div class=\"error\" role=\"alert\"><p>Please correct:</p><ul>{items}</ul></div>")
    };
    app_page(
        status,
        signed,
        "Register a patient",
        &format!(
            "{problems}<form method=\"post\" action=\"/desk/register\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <fieldset><legend>Who</legend>{}{}{}\
             <label for=\"sex\">Sex</label><select id=\"sex\" name=\"sex\" required>{sexes}</select></fieldset>\
             <fieldset><legend>Identifiers</legend>{}{}</fieldset>\
             <fieldset><legend>Contact</legend>{}{}{}{}{}{}</fieldset>\
             <button type=\"submit\">Register</button></form>",
            signed.csrf,
            field("family", "Family name", &form.family, "required autocomplete=\"off\""),
            field("given", "Given names", &form.given, "required autocomplete=\"off\""),
            field("birthdate", "Birth date", &form.birthdate, "type=\"date\" required"),
            field("mrn", "Medical record number (leave empty to assign one)", &form.mrn, "autocomplete=\"off\""),
            field("ssn", "Social Security number (optional)", &form.ssn, "autocomplete=\"off\" inputmode=\"numeric\""),
            field("phone", "Phone", &form.phone, "type=\"tel\" autocomplete=\"off\""),
            field("email", "Email", &form.email, "type=\"email\" autocomplete=\"off\""),
            field("line", "Street address", &form.line, "autocomplete=\"off\""),
            field("city", "City", &form.city, "autocomplete=\"off\""),
            field("state", "State", &form.state, "autocomplete=\"off\""),
            field("postal_code", "ZIP code", &form.postal_code, "autocomplete=\"off\" inputmode=\"numeric\""),
        ),
    )
}

/// `GET /desk/register`.
pub async fn register_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let signed = match signed_in(&state, &headers, client.as_deref(), request_id.as_deref(), "/desk/register").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !signed.has(Role::FrontDesk) {
        return not_front_desk(&signed);
    }
    register_page(&signed, &RegisterForm::default(), &[], StatusCode::OK)
}

fn text_ok(value: &str, max: usize) -> bool {
    value.chars().count() <= max && !value.chars().any(char::is_control)
}

/// The Patient a registration form describes, or every correction to make.
fn patient_resource(form: &RegisterForm, today: time::Date, assigned_mrn: &str) -> Result<Value, Vec<String>> {
    let mut errors = Vec::new();
    let family = form.family.trim();
    let given: Vec<&str> = form.given.split_whitespace().collect();
    if family.is_empty() || !text_ok(family, 100) {
        errors.push("Family name: required, at most 100 characters.".to_owned());
    }
    if given.is_empty() || !text_ok(&form.given, 100) {
        errors.push("Given names: required, at most 100 characters.".to_owned());
    }
    let birth = time::Date::parse(form.birthdate.trim(), time::macros::format_description!("[year]-[month]-[day]"));
    match birth {
        Ok(d) if d <= today && d.year() >= 1880 => {}
        Ok(_) => errors.push("Birth date: not in the future, and after 1880.".to_owned()),
        Err(_) => errors.push("Birth date: year-month-day, for example 1990-04-17.".to_owned()),
    }
    if !SEXES.iter().any(|(code, _)| *code == form.sex) {
        errors.push("Sex: choose one from the list.".to_owned());
    }
    let mrn = form.mrn.trim();
    let mrn = if mrn.is_empty() { assigned_mrn } else { mrn };
    if mrn.len() > 32 || !mrn.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        errors.push("Medical record number: letters, digits and dashes, at most 32.".to_owned());
    }
    let ssn: String = form.ssn.chars().filter(|c| !c.is_whitespace()).collect();
    let ssn_digits: String = ssn.chars().filter(char::is_ascii_digit).collect();
    if !ssn.is_empty() && (ssn_digits.len() != 9 || !ssn.chars().all(|c| c.is_ascii_digit() || c == '-')) {
        errors.push("Social Security number: nine digits, as 123-45-6789.".to_owned());
    }
    let phone = form.phone.trim();
    if !phone.is_empty() && (!text_ok(phone, 32) || !phone.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)))
    {
        errors.push("Phone: digits, spaces, + - ( ) only.".to_owned());
    }
    let email = form.email.trim();
    if !email.is_empty() && (!text_ok(email, 200) || !email.contains('@') || email.contains(' ')) {
        errors.push("Email: an address such as name@example.org.".to_owned());
    }
    for (value, label) in [(&form.line, "Street address"), (&form.city, "City"), (&form.state, "State")] {
        if !text_ok(value.trim(), 200) {
            errors.push(format!("{label}: at most 200 characters."));
        }
    }
    let postal = form.postal_code.trim();
    if !postal.is_empty() && (postal.len() > 10 || !postal.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')) {
        errors.push("ZIP code: at most 10 letters, digits or dashes.".to_owned());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut identifiers = vec![json!({
        "use": "usual",
        "type": {"coding": [{"system": MR_TYPE, "code": "MR", "display": "Medical record number"}]},
        "system": MRN_SYSTEM,
        "value": mrn,
    })];
    if !ssn.is_empty() {
        let formatted = format!("{}-{}-{}", &ssn_digits[..3], &ssn_digits[3..5], &ssn_digits[5..]);
        identifiers.push(json!({"system": SSN_SYSTEM, "value": formatted}));
    }
    let mut patient = json!({
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [{"use": "official", "family": family, "given": given}],
        "gender": form.sex,
        "birthDate": form.birthdate.trim(),
    });
    let mut telecom = Vec::new();
    if !phone.is_empty() {
        telecom.push(json!({"system": "phone", "value": phone}));
    }
    if !email.is_empty() {
        telecom.push(json!({"system": "email", "value": email}));
    }
    if !telecom.is_empty() {
        patient["telecom"] = Value::Array(telecom);
    }
    let mut address = serde_json::Map::new();
    if !form.line.trim().is_empty() {
        address.insert("line".into(), json!([form.line.trim()]));
    }
    for (key, value) in [("city", &form.city), ("state", &form.state), ("postalCode", &form.postal_code)] {
        if !value.trim().is_empty() {
            address.insert(key.into(), json!(value.trim()));
        }
    }
    if !address.is_empty() {
        patient["address"] = json!([Value::Object(address)]);
    }
    Ok(patient)
}

/// A new MRN: nine random digits (collisions are caught by the conditional create).
fn new_mrn() -> Result<String, RecordError> {
    let bytes: [u8; 8] = phivault_crypto::random_bytes().map_err(RecordError::Keys)?;
    Ok(format!("{:09}", u64::from_le_bytes(bytes) % 1_000_000_000))
}

/// `POST /desk/register`: creates the Patient unless one with this MRN exists.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Form(form): Form<RegisterForm>,
) -> Response {
    let signed =
        match form_signed_in(&state, &headers, client.as_deref(), request_id.as_deref(), "/desk/register", &form.csrf)
            .await
        {
            Ok(s) => s,
            Err(r) => return r,
        };
    if !signed.has(Role::FrontDesk) {
        return not_front_desk(&signed);
    }
    let assigned = match new_mrn() {
        Ok(m) => m,
        Err(e) => return record_trouble(&state, &signed, "create", e).await,
    };
    let offset = time::UtcOffset::from_whole_seconds(state.config.local_offset_minutes.saturating_mul(60))
        .unwrap_or(time::UtcOffset::UTC);
    let today = time::OffsetDateTime::from_unix_timestamp(state.identity.now_ms().div_euclid(1000))
        .map(|t| t.to_offset(offset).date())
        .unwrap_or(time::Date::MIN);
    let patient = match patient_resource(&form, today, &assigned) {
        Ok(p) => p,
        Err(errors) => {
            if let Err(r) = ensure_recorded(&state, &signed, "create", Outcome::Failure, "400", None).await {
                return r;
            }
            return register_page(&signed, &form, &errors, StatusCode::BAD_REQUEST);
        }
    };
    let mrn_value = patient.pointer("/identifier/0/value").and_then(Value::as_str).unwrap_or_default().to_owned();
    let condition = [("identifier".to_owned(), format!("{MRN_SYSTEM}|{mrn_value}"))];
    match state.records.create(&signed.accessor, "Patient", patient, Some(&condition)).await {
        Ok(granted) if granted.value.created => {
            Redirect::to(&format!("/desk/patient/{}?saved=registered", granted.value.resource.id)).into_response()
        }
        Ok(granted) => {
            let existing = &granted.value.resource.id;
            register_page(
                &signed,
                &form,
                &[format!(
                    "A patient with this medical record number is already registered: open their registration below, or \
                     leave the number empty to assign a new one. Existing registration: /desk/patient/{existing}"
                )],
                StatusCode::CONFLICT,
            )
        }
        Err(RecordError::Forbidden { .. } | RecordError::Refused { .. }) => {
            if let Err(r) = ensure_recorded(&state, &signed, "create", Outcome::Denied, "403", None).await {
                return r;
            }
            not_front_desk(&signed)
        }
        Err(RecordError::MultipleMatches) => register_page(
            &signed,
            &form,
            &["Several patients already carry this medical record number; ask the privacy officer to merge them."
                .to_owned()],
            StatusCode::CONFLICT,
        ),
        Err(e) => record_trouble(&state, &signed, "create", e).await,
    }
}

// ---- a registration: care team and appointments ------------------------------------------

#[derive(Debug, Deserialize)]
pub struct AfterSave {
    saved: Option<String>,
}

/// Physicians and nurses (active accounts), by display name: who can join a care team.
async fn clinicians(state: &AppState) -> Result<Vec<phivault_identity::UserSummary>, Response> {
    let mut users = state.identity.list_users().await.map_err(|_| unavailable())?;
    users.retain(|u| u.status == "active" && u.roles.iter().any(|r| r == "physician" || r == "nurse"));
    users.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    Ok(users)
}

/// A local date and time (`2026-12-10`, `09:30`) as an instant with the clinic's offset.
fn local_instant(date: &str, clock: &str, offset_minutes: i32) -> Option<(String, i64)> {
    let date = time::Date::parse(date.trim(), time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    let clock = time::Time::parse(clock.trim(), time::macros::format_description!("[hour]:[minute]")).ok()?;
    let offset = time::UtcOffset::from_whole_seconds(offset_minutes.checked_mul(60)?).ok()?;
    let at = time::PrimitiveDateTime::new(date, clock).assume_offset(offset);
    let text = at.format(&time::format_description::well_known::Rfc3339).ok()?;
    Some((text, at.unix_timestamp().checked_mul(1000)?))
}

/// An instant as the clinic reads it: `2026-12-10 09:30`.
fn local_text(instant: &str, offset_minutes: i32) -> String {
    let Ok(at) = time::OffsetDateTime::parse(instant, &time::format_description::well_known::Rfc3339) else {
        return instant.to_owned();
    };
    let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap_or(time::UtcOffset::UTC);
    at.to_offset(offset)
        .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]"))
        .unwrap_or_else(|_| instant.to_owned())
}

fn offset_words(offset_minutes: i32) -> String {
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let m = offset_minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

#[allow(clippy::too_many_arguments, reason = "one page's parts")]
fn registration_page(
    state: &AppState,
    signed: &Signed,
    chart: &PatientChart,
    team: &[(String, String, String)],
    clinicians: &[phivault_identity::UserSummary],
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let p = &chart.patient.body;
    let id = escape(&chart.patient.id);
    let csrf = &signed.csrf;
    let offset = state.config.local_offset_minutes;
    let masked = |v: String| if v.is_empty() { "withheld or not recorded".to_owned() } else { v };
    let mut body = String::new();
    if let Some(notice) = notice {
        body.push_str(&format!("<p class=\"saved\" role=\"status\">{}</p>", escape(notice)));
    }
    body.push_str(&error_line(error));
    body.push_str(&format!(
        "<dl class=\"demographics\"><dt>Birth date</dt><dd>{}</dd><dt>Sex</dt><dd>{}</dd><dt>MRN</dt><dd>{}</dd></dl>",
        escape(&masked(p.get("birthDate").and_then(Value::as_str).unwrap_or("").to_owned())),
        escape(&masked(p.get("gender").and_then(Value::as_str).unwrap_or("").to_owned())),
        escape(&masked(mrn(p).unwrap_or_default())),
    ));
    // Care team.
    let members: String = team
        .iter()
        .map(|(user_id, name, roles)| {
            format!(
                "<tr><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/desk/patient/{id}/care-team\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"user\" value=\"{}\">\
                 <input type=\"hidden\" name=\"change\" value=\"remove\">\
                 <button type=\"submit\" aria-label=\"Remove {} from the care team\">Remove</button></form></td></tr>",
                escape(name),
                escape(roles),
                escape(user_id),
                escape(name),
            )
        })
        .collect();
    let choices: String = clinicians
        .iter()
        .filter(|c| !team.iter().any(|(id, _, _)| *id == c.id))
        .map(|c| {
            format!(
                "<option value=\"{}\">{} ({})</option>",
                escape(&c.id),
                escape(&c.display_name),
                role_words(&c.roles)
            )
        })
        .collect();
    let add_form = if choices.is_empty() {
        "<p class=\"note\">Every physician and nurse is on this care team.</p>".to_owned()
    } else {
        format!(
            "<form method=\"post\" action=\"/desk/patient/{id}/care-team\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"change\" value=\"add\">\
             <label for=\"user\">Add a clinician</label><select id=\"user\" name=\"user\" required>{choices}</select>\
             <button type=\"submit\">Add to the care team</button></form>"
        )
    };
    body.push_str(&format!(
        "<section aria-labelledby=\"team\"><h2 id=\"team\">Care team</h2>{}{add_form}</section>",
        if team.is_empty() {
            "<p>Nobody yet: no clinician can open this patient's chart until one is added.</p>".to_owned()
        } else {
            format!("<table><tbody>{members}</tbody></table>")
        }
    ));
    // Appointments.
    let mut appointments: Vec<&Value> =
        chart.section("Appointment").map(|s| s.resources.iter().map(|r| &r.body).collect()).unwrap_or_default();
    appointments.sort_by(|a, b| {
        a.get("start").and_then(Value::as_str).unwrap_or("").cmp(b.get("start").and_then(Value::as_str).unwrap_or(""))
    });
    let rows: String = appointments
        .iter()
        .map(|a| {
            let with = a
                .get("participant")
                .and_then(Value::as_array)
                .and_then(|p| p.iter().find_map(|p| p.pointer("/actor/display").and_then(Value::as_str)))
                .unwrap_or("");
            format!(
                "<tr><td class=\"when\">{}</td><td>{} min</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&local_text(a.get("start").and_then(Value::as_str).unwrap_or(""), offset)),
                a.get("minutesDuration").and_then(Value::as_u64).unwrap_or(0),
                escape(with),
                escape(a.get("description").and_then(Value::as_str).unwrap_or("")),
                escape(a.get("status").and_then(Value::as_str).unwrap_or("")),
            )
        })
        .collect();
    let with_choices: String = clinicians
        .iter()
        .map(|c| format!("<option value=\"{}\">{}</option>", escape(&c.id), escape(&c.display_name)))
        .collect();
    body.push_str(&format!(
        "<section aria-labelledby=\"appointments\"><h2 id=\"appointments\">Appointments</h2>{}\
         <form method=\"post\" action=\"/desk/patient/{id}/appointments\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <div class=\"vitals-grid\"><div><label for=\"date\">Date</label><input id=\"date\" name=\"date\" type=\"date\" required></div>\
         <div><label for=\"time\">Time ({})</label><input id=\"time\" name=\"time\" type=\"time\" required></div>\
         <div><label for=\"minutes\">Length</label><select id=\"minutes\" name=\"minutes\">\
         <option value=\"15\">15 minutes</option><option value=\"20\" selected>20 minutes</option><option value=\"30\">30 minutes</option>\
         <option value=\"45\">45 minutes</option><option value=\"60\">60 minutes</option></select></div>\
         <div><label for=\"with\">With</label><select id=\"with\" name=\"with\"><option value=\"\">Anyone</option>{with_choices}</select></div></div>\
         <label for=\"description\">Reason for the visit (a few words; optional)</label>\
         <input id=\"description\" name=\"description\" maxlength=\"200\" autocomplete=\"off\">\
         <button type=\"submit\">Book the appointment</button></form></section>",
        if rows.is_empty() {
            "<p>No appointments.</p>".to_owned()
        } else {
            format!(
                "<table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Length</th><th scope=\"col\">With</th>\
                 <th scope=\"col\">Reason</th><th scope=\"col\">Status</th></tr></thead><tbody>{rows}</tbody></table>"
            )
        },
        offset_words(offset),
    ));
    let heading = person_name(p);
    let heading = if heading.trim().is_empty() { "Registration" } else { heading.as_str() };
    super::shell::app_page_headed(status, signed, "Registration", heading, &body)
}

/// Reads the registration (the Patient and appointments, in the front desk's view) and
/// the care team, and renders the page.
async fn open_registration(
    state: &AppState,
    signed: &Signed,
    patient_id: &str,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let queries = [phivault_service::access::ChartQuery::all("Appointment", 100)];
    let chart = match state.records.patient_chart(&signed.accessor, patient_id, &queries).await {
        Ok(granted) => granted.value,
        Err(RecordError::Refused { .. }) => return no_such_patient(signed),
        Err(RecordError::NotFound { .. } | RecordError::Shredded { .. }) => {
            if let Err(r) = ensure_recorded(state, signed, "chart", Outcome::Failure, "404", Some(patient_id)).await {
                return r;
            }
            return no_such_patient(signed);
        }
        Err(RecordError::Forbidden { .. }) => {
            if let Err(r) = ensure_recorded(state, signed, "chart", Outcome::Denied, "403", Some(patient_id)).await {
                return r;
            }
            return no_such_patient(signed);
        }
        Err(e) => return record_trouble(state, signed, "chart", e).await,
    };
    if state.records.may(&signed.accessor, phivault_policy::Action::ManageCareTeams).await.is_err() {
        return registration_page(state, signed, &chart, &[], &[], notice, error, status);
    }
    let clinicians = match clinicians(state).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let names: HashMap<&str, &phivault_identity::UserSummary> = clinicians.iter().map(|c| (c.id.as_str(), c)).collect();
    let team = match state.records.memberships(AssignmentKind::CareTeam, None, Some(patient_id)).await {
        Ok(rows) => rows
            .iter()
            .map(|a| {
                let (name, roles) =
                    names.get(a.user_id.as_str()).map_or(("(inactive account)".to_owned(), String::new()), |u| {
                        (u.display_name.clone(), role_words(&u.roles))
                    });
                (a.user_id.clone(), name, roles)
            })
            .collect::<Vec<_>>(),
        Err(e) => return record_trouble(state, signed, "careteam.list", e).await,
    };
    registration_page(state, signed, &chart, &team, &clinicians, notice, error, status)
}

/// `GET /desk/patient/{id}`.
pub async fn registration(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Path(id): Path<String>,
    Query(after): Query<AfterSave>,
) -> Response {
    let valid = phivault_fhir::is_valid_id(&id);
    let here = if valid { format!("/desk/patient/{id}") } else { "/patients".to_owned() };
    let signed = match signed_in(&state, &headers, client.as_deref(), request_id.as_deref(), &here).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !signed.has(Role::FrontDesk) {
        return not_front_desk(&signed);
    }
    if !valid {
        return no_such_patient(&signed);
    }
    let notice = match after.saved.as_deref() {
        Some("registered") => Some("Patient registered. Add the clinicians who will care for them."),
        Some("careteam") => Some("Care team updated."),
        Some("appointment") => Some("Appointment booked."),
        _ => None,
    };
    open_registration(&state, &signed, &id, notice, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct CareTeamForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    change: String,
}

impl std::fmt::Debug for CareTeamForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CareTeamForm(..)")
    }
}

/// The caller of a registration form for a valid patient id.
async fn desk_form_caller(
    state: &AppState,
    headers: &HeaderMap,
    ids: (Option<&ClientIp>, Option<&RequestId>),
    patient_id: &str,
    csrf: &str,
) -> Result<Signed, Response> {
    let signed = super::shell::patient_form_signed_in(state, headers, ids, "/desk/patient", patient_id, csrf).await?;
    if !signed.has(Role::FrontDesk) {
        return Err(not_front_desk(&signed));
    }
    Ok(signed)
}

/// `POST /desk/patient/{id}/care-team`: adds or removes one clinician.
pub async fn change_care_team(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Path(patient_id): Path<String>,
    Form(form): Form<CareTeamForm>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match desk_form_caller(&state, &headers, ids, &patient_id, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let adding = match form.change.as_str() {
        "add" => true,
        "remove" => false,
        _ => {
            let error = "Choose to add or remove a clinician.";
            return open_registration(&state, &signed, &patient_id, None, Some(error), StatusCode::BAD_REQUEST).await;
        }
    };
    let action = if adding { "web.careteam.add" } else { "web.careteam.remove" };
    // The member: an active physician or nurse to add; to remove, whoever is on the team
    // now (an account since deactivated included).
    let member_roles = if adding {
        let clinicians = match clinicians(&state).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        match clinicians.into_iter().find(|c| c.id == form.user) {
            Some(member) => member.roles,
            None => {
                let error = "Choose a clinician from the list.";
                return open_registration(&state, &signed, &patient_id, None, Some(error), StatusCode::BAD_REQUEST)
                    .await;
            }
        }
    } else {
        Vec::new()
    };
    let change =
        CareTeamChange { add: adding, member_id: form.user.clone(), member_roles, patient_id: patient_id.clone() };
    match state.records.change_care_team(&signed.accessor, &change, action).await {
        Ok(_) => Redirect::to(&format!("/desk/patient/{patient_id}?saved=careteam")).into_response(),
        Err(RecordError::Forbidden { policy_ids }) => {
            if let Err(r) = record_change(&state, &signed, action, Outcome::Denied, &change, policy_ids).await {
                return r;
            }
            if change.member_id == signed.caller.principal.user_id.clone().unwrap_or_default() {
                let error = "You cannot change your own care-team membership: ask a colleague at the desk.";
                return open_registration(&state, &signed, &patient_id, None, Some(error), StatusCode::FORBIDDEN).await;
            }
            not_front_desk(&signed)
        }
        Err(RecordError::NotFound { .. } | RecordError::Shredded { .. } | RecordError::Refused { .. }) => {
            if let Err(r) = ensure_recorded(&state, &signed, action, Outcome::Failure, "404", Some(&patient_id)).await {
                return r;
            }
            no_such_patient(&signed)
        }
        Err(RecordError::Invalid(e)) => {
            let error = e.to_string();
            open_registration(&state, &signed, &patient_id, None, Some(&error), StatusCode::BAD_REQUEST).await
        }
        Err(e) => record_trouble(&state, &signed, action, e).await,
    }
}

/// The entry for a care-team change: who changed it, whose membership, which patient.
/// The entry for a refused care-team change (an allowed one commits its own with it).
async fn record_change(
    state: &AppState,
    signed: &Signed,
    action: &str,
    outcome: Outcome,
    change: &CareTeamChange,
    policies: Vec<String>,
) -> Result<(), Response> {
    let mut event = crate::audit::caller_event(state, &signed.caller, signed.origin.clone(), action, outcome);
    if phivault_fhir::is_valid_id(&change.member_id) {
        event.target = Some(format!("user:{}", change.member_id));
    }
    event.patient_ids.push(change.patient_id.clone());
    event.resource_ids.push(format!("Patient/{}", change.patient_id));
    event.policies = policies;
    crate::audit::write(state, &event).await.map_err(|_| unavailable())?;
    signed.accessor.trail.mark_recorded();
    Ok(())
}

#[derive(Deserialize)]
pub struct AppointmentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    time: String,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    with: String,
    #[serde(default)]
    description: String,
}

impl std::fmt::Debug for AppointmentForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppointmentForm(..)")
    }
}

/// The Appointment a booking form describes, or what to correct.
fn appointment_resource(
    patient_id: &str,
    form: &AppointmentForm,
    offset_minutes: i32,
    now_ms: i64,
    with: Option<&phivault_identity::UserSummary>,
) -> Result<Value, &'static str> {
    let Some((start, start_ms)) = local_instant(&form.date, &form.time, offset_minutes) else {
        return Err("Give the date (year-month-day) and the time (hours:minutes) of the appointment.");
    };
    if start_ms < now_ms - 60_000 {
        return Err("That time has passed: appointments are booked ahead.");
    }
    let minutes: i64 = match form.minutes.as_str() {
        "15" => 15,
        "20" => 20,
        "30" => 30,
        "45" => 45,
        "60" => 60,
        _ => return Err("Choose the length from the list."),
    };
    let description = form.description.trim();
    if !text_ok(description, 200) {
        return Err("The reason for the visit is at most 200 characters.");
    }
    let end_ms = start_ms + minutes * 60_000;
    let end = time::OffsetDateTime::from_unix_timestamp(end_ms / 1000)
        .ok()
        .and_then(|t| {
            let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).ok()?;
            t.to_offset(offset).format(&time::format_description::well_known::Rfc3339).ok()
        })
        .ok_or("Give the date (year-month-day) and the time (hours:minutes) of the appointment.")?;
    let mut participants = vec![json!({"actor": {"reference": format!("Patient/{patient_id}")}, "status": "accepted"})];
    if let Some(clinician) = with {
        participants.push(json!({"actor": {"display": clinician.display_name}, "status": "needs-action"}));
    }
    let mut appointment = json!({
        "resourceType": "Appointment",
        "status": "booked",
        "start": start,
        "end": end,
        "minutesDuration": minutes,
        "participant": participants,
    });
    if !description.is_empty() {
        appointment["description"] = json!(description);
    }
    Ok(appointment)
}

/// `POST /desk/patient/{id}/appointments`.
pub async fn book(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Path(patient_id): Path<String>,
    Form(form): Form<AppointmentForm>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match desk_form_caller(&state, &headers, ids, &patient_id, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // The patient must be one the desk may see: no appointment for an invented id.
    match state.records.read(&signed.accessor, "Patient", &patient_id, None).await {
        Ok(_) => {}
        Err(RecordError::Refused { .. } | RecordError::NotFound { .. } | RecordError::Shredded { .. }) => {
            if let Err(r) = ensure_recorded(&state, &signed, "read", Outcome::Failure, "404", Some(&patient_id)).await {
                return r;
            }
            return no_such_patient(&signed);
        }
        Err(e) => return record_trouble(&state, &signed, "read", e).await,
    }
    let clinicians = match clinicians(&state).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let with = clinicians.iter().find(|c| !form.with.is_empty() && c.id == form.with);
    let offset = state.config.local_offset_minutes;
    let appointment = match appointment_resource(&patient_id, &form, offset, state.identity.now_ms(), with) {
        Ok(a) => a,
        Err(error) => {
            if let Err(r) = ensure_recorded(&state, &signed, "create", Outcome::Failure, "400", Some(&patient_id)).await
            {
                return r;
            }
            return open_registration(&state, &signed, &patient_id, None, Some(error), StatusCode::BAD_REQUEST).await;
        }
    };
    match state.records.create(&signed.accessor, "Appointment", appointment, None).await {
        Ok(_) => Redirect::to(&format!("/desk/patient/{patient_id}?saved=appointment")).into_response(),
        Err(RecordError::Forbidden { .. } | RecordError::Refused { .. }) => {
            if let Err(r) = ensure_recorded(&state, &signed, "create", Outcome::Denied, "403", Some(&patient_id)).await
            {
                return r;
            }
            no_such_patient(&signed)
        }
        Err(e) => record_trouble(&state, &signed, "create", e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> RegisterForm {
        RegisterForm {
            family: "Duck".into(),
            given: "Daffy  Dumas".into(),
            birthdate: "1937-04-17".into(),
            sex: "male".into(),
            ssn: "123 45 6789".into(),
            phone: "555-0142".into(),
            ..RegisterForm::default()
        }
    }

    #[test]
    fn a_registration_becomes_a_patient_or_every_correction_in_words() {
        let today = time::macros::date!(2026 - 12 - 03);
        let p = patient_resource(&form(), today, "000000042").expect("valid");
        assert_eq!(p["name"][0]["given"], json!(["Daffy", "Dumas"]));
        assert_eq!(p["identifier"][0]["value"], "000000042", "an MRN is assigned when none is typed");
        assert_eq!(p["identifier"][1]["value"], "123-45-6789", "the SSN in its one written form");
        assert_eq!(p["telecom"][0]["value"], "555-0142");
        assert!(p.get("address").is_none(), "no empty address");

        let mut bad = form();
        bad.birthdate = "2027-01-01".into();
        bad.ssn = "12-345".into();
        bad.sex = "duck".into();
        bad.family = "\u{0}".into();
        let errors = patient_resource(&bad, today, "1").expect_err("refused");
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("Birth date")));
    }

    #[test]
    fn appointments_are_booked_in_the_clinics_time() {
        let (text, ms) = local_instant("2026-12-10", "09:30", -300).expect("valid");
        assert_eq!(text, "2026-12-10T09:30:00-05:00");
        assert_eq!(local_text(&text, -300), "2026-12-10 09:30");
        assert_eq!(local_text(&text, 0), "2026-12-10 14:30");
        assert_eq!(offset_words(-300), "UTC-05:00");
        let form = AppointmentForm {
            csrf: String::new(),
            date: "2026-12-10".into(),
            time: "09:30".into(),
            minutes: "30".into(),
            with: String::new(),
            description: "Lisp".into(),
        };
        let a = appointment_resource("p1", &form, -300, ms - 86_400_000, None).expect("valid");
        assert_eq!(a["end"], "2026-12-10T10:00:00-05:00");
        assert_eq!(a["participant"][0]["actor"]["reference"], "Patient/p1");
        assert!(appointment_resource("p1", &form, -300, ms + 3_600_000, None).is_err(), "not in the past");
        let odd = AppointmentForm { minutes: "7".into(), ..form };
        assert!(appointment_resource("p1", &odd, 0, 0, None).is_err());
    }
}
