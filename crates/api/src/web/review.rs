//! The privacy officer's review page (`/review`): open activity-review alerts and pending
//! break-glass grants, each with the buttons that record a finding. Server-rendered HTML in
//! the signed-in session; forms carry the session's CSRF token and must come from this site.
//! The same policies (`read_audit`, `review_break_glass`) decide, and every read and finding
//! is audited, exactly as through the JSON API.
//!
//! Safeguards: 45 CFR 164.308(a)(1)(ii)(D) activity review; 164.312(a)(2)(ii) emergency
//! access review.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use phivault_audit::alerts::AlertStatus;
use phivault_fhir::format_instant;
use serde::Deserialize;

use super::html::{escape, page};
use super::{forbidden, same_origin};
use crate::AppState;
use crate::auth::{Caller, csrf_matches, csrf_token, session_cookie};
use crate::client_ip::ClientIp;
use crate::error::ApiError;

/// At most this many patients are named on one review page (each is a guarded read).
const MAX_NAMED_PATIENTS: usize = 50;

/// The signed-in caller of a page, or the redirect to sign in.
async fn page_caller(state: &AppState, headers: &HeaderMap) -> Result<(Caller, String), Response> {
    let to_login = || Redirect::to("/login?next=/review").into_response();
    let Some(secret) = session_cookie(headers) else { return Err(to_login()) };
    match state.identity.authenticate(&secret).await {
        Ok(principal) => Ok((Caller { principal, via_cookie: true }, csrf_token(&secret))),
        Err(_) => Err(to_login()),
    }
}

/// The caller of a posted form: signed in, the form from this site, with the session's
/// CSRF token.
async fn form_caller(state: &AppState, headers: &HeaderMap, csrf: &str) -> Result<Caller, Response> {
    let (caller, _) = page_caller(state, headers).await?;
    let Some(secret) = session_cookie(headers) else { return Err(forbidden()) };
    if !same_origin(state, headers) || !csrf_matches(&secret, csrf) {
        return Err(forbidden());
    }
    Ok(caller)
}

fn refused_page(error: &ApiError) -> Response {
    let status = error.status;
    let text = match status {
        StatusCode::FORBIDDEN => "Your role does not review activity.",
        StatusCode::NOT_FOUND => "That alert or grant does not exist.",
        StatusCode::CONFLICT => "That finding was already recorded.",
        _ => "The review queue is not available right now.",
    };
    page(status, "Review", &format!("<p class=\"error\" role=\"alert\">{text}</p><p><a href=\"/review\">Back</a></p>"))
}

fn finding_form(action: &str, csrf: &str, field: &str, choices: &[(&str, &str)]) -> String {
    let buttons: String = choices
        .iter()
        .map(|(value, label)| format!("<button type=\"submit\" name=\"{field}\" value=\"{value}\">{label}</button> "))
        .collect();
    format!(
        "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{buttons}</form>",
        escape(action)
    )
}

/// `GET /review`.
pub async fn review_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<crate::RequestId>>,
) -> Response {
    let (caller, csrf) = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(redirect) => return redirect,
    };
    let ids = (client.as_deref(), request_id.as_deref());
    let alerts = match crate::alerts::open_alerts(&state, &caller, &headers, ids).await {
        Ok(alerts) => alerts,
        Err(e) => return refused_page(&e),
    };
    // A reviewer of activity who may not review emergency access still sees the alerts.
    let grants = crate::break_glass::pending_grants(&state, &caller, &headers, ids).await.unwrap_or_default();
    // Workforce accounts by name and role (patient accounts keep their id: a patient's name
    // is not the reviewer's to see here).
    let people: std::collections::HashMap<String, String> = state
        .identity
        .list_users()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|u| !u.roles.iter().any(|r| r == "patient"))
        .map(|u| (u.id.clone(), format!("{} ({})", u.display_name, super::fhir_view::role_words(&u.roles))))
        .collect();
    // Patients by name, each through the guarded read the policies allow the privacy officer
    // (`privacy-officer-identifies-patients-under-review`: a Patient by id, in a view that
    // identifies and nothing more); each read is recorded and shows in the patient's own
    // accounting. A patient the officer may not read (or no longer on record) keeps its id.
    let mut patient_ids: Vec<&str> = alerts.iter().flat_map(|a| a.patient_ids.iter().map(String::as_str)).collect();
    patient_ids.extend(grants.iter().map(|g| g.patient_id.as_str()));
    patient_ids.sort_unstable();
    patient_ids.dedup();
    let mut accessor =
        crate::auth::gate::accessor(&state, &caller, ids.0.map(|c| c.0), crate::auth::gate::ScopeReach::Unnarrowed);
    crate::audit::Origin::of(&headers, ids.0, ids.1).onto(&mut accessor);
    // The purpose only this page declares: the one the policy that lets the privacy officer
    // read a Patient asks for.
    accessor.request.purpose_of_use = "privacy_review".to_owned();
    let mut patients: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for id in patient_ids.into_iter().filter(|id| phivault_fhir::is_valid_id(id)).take(MAX_NAMED_PATIENTS) {
        if let Ok(granted) = state.records.read(&accessor, "Patient", id, None).await {
            let name = super::fhir_view::person_name(&granted.value.body);
            let born = granted.value.body.get("birthDate").and_then(serde_json::Value::as_str).unwrap_or("");
            let words = match (name.is_empty(), born.is_empty()) {
                (false, false) => format!("{name} (born {born})"),
                (false, true) => name,
                _ => continue,
            };
            patients.insert(id.to_owned(), words);
        }
    }
    let patient = |id: &str| match patients.get(id) {
        Some(name) => format!("{} <code>{}</code>", escape(name), escape(id)),
        None => format!("<code>{}</code>", escape(id)),
    };
    let who = |id: Option<&str>| match id {
        Some(id) => match people.get(id) {
            Some(name) => format!("{} <code>{}</code>", escape(name), escape(id)),
            None => format!("<code>{}</code>", escape(id)),
        },
        None => "-".to_owned(),
    };
    let mut body = format!("<h2>Open alerts ({})</h2>", alerts.len());
    if alerts.is_empty() {
        body.push_str("<p>No open alerts.</p>");
    }
    for alert in &alerts {
        let action = format!("/review/alerts/{}", alert.id);
        body.push_str(&format!(
            "<section class=\"item\"><p><strong>{}</strong> at {}: {}</p><p>Who: {}{}{} · audit entries {}</p>{}</section>",
            escape(alert.kind.code()),
            escape(&format_instant(alert.time_ms)),
            escape(&alert.detail),
            who(alert.user_id.as_deref()),
            alert.source_ip.as_deref().map(|ip| format!(" · address <code>{}</code>", escape(ip))).unwrap_or_default(),
            if alert.patient_ids.is_empty() {
                String::new()
            } else {
                format!(" · patients {}", alert.patient_ids.iter().map(|p| patient(p)).collect::<Vec<_>>().join(", "))
            },
            escape(&alert.seqs.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
            finding_form(&action, &csrf, "finding", &[("benign", "Benign"), ("violation", "Violation")]),
        ));
    }
    body.push_str(&format!("<h2>Emergency access to review ({})</h2>", grants.len()));
    if grants.is_empty() {
        body.push_str("<p>No grants waiting for review.</p>");
    }
    for grant in &grants {
        let action = format!("/review/break-glass/{}", grant.id);
        body.push_str(&format!(
            "<section class=\"item\"><p><strong>{}</strong> · by {} · patient {}</p>\
             <p>{} to {}</p><blockquote>{}</blockquote>{}</section>",
            escape(&grant.reason),
            who(Some(&grant.user_id)),
            patient(&grant.patient_id),
            escape(&format_instant(grant.started_ms)),
            escape(&format_instant(grant.expires_ms)),
            escape(&grant.note),
            finding_form(&action, &csrf, "justified", &[("yes", "Justified"), ("no", "Not justified")]),
        ));
    }
    super::shell::signed_in_page(page(StatusCode::OK, "Review", &body))
}

#[derive(Debug, Deserialize)]
pub struct AlertFinding {
    csrf: String,
    finding: String,
}

#[derive(Debug, Deserialize)]
pub struct GrantFinding {
    csrf: String,
    justified: String,
}

/// `POST /review/alerts/{id}`.
pub async fn review_alert(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<crate::RequestId>>,
    Path(id): Path<String>,
    Form(form): Form<AlertFinding>,
) -> Response {
    let caller = match form_caller(&state, &headers, &form.csrf).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let finding = match AlertStatus::parse(&form.finding) {
        Some(f @ (AlertStatus::Benign | AlertStatus::Violation)) => f,
        _ => return page(StatusCode::BAD_REQUEST, "Review", "<p class=\"error\">Choose benign or violation.</p>"),
    };
    let ids = (client.as_deref(), request_id.as_deref());
    match crate::alerts::record_finding(&state, &caller, &headers, ids, &id, finding).await {
        Ok(()) => Redirect::to("/review").into_response(),
        Err(e) => refused_page(&e),
    }
}

/// `POST /review/break-glass/{id}`.
pub async fn review_grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<crate::RequestId>>,
    Path(id): Path<String>,
    Form(form): Form<GrantFinding>,
) -> Response {
    let caller = match form_caller(&state, &headers, &form.csrf).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let justified = match form.justified.as_str() {
        "yes" => true,
        "no" => false,
        _ => return page(StatusCode::BAD_REQUEST, "Review", "<p class=\"error\">Choose justified or not.</p>"),
    };
    let ids = (client.as_deref(), request_id.as_deref());
    match crate::break_glass::record_review(&state, &caller, &headers, ids, &id, justified).await {
        Ok(_) => Redirect::to("/review").into_response(),
        Err(e) => refused_page(&e),
    }
}
