//! The privacy officer's search of the audit trail (`/review/audit`): by person, patient,
//! action, outcome and dates, as a form that POSTs, so no searched value ever sits in an
//! address, the history or a Referer. The same decision (`read_audit`) and the same
//! `audit.search` entry as `GET /audit/entries`; workforce members are named, patients
//! appear by record id only (a patient's name is not the reviewer's to see here).
//!
//! Safeguards: 45 CFR 164.308(a)(1)(ii)(D) information system activity review;
//! 164.312(b) audit controls; ONC 170.315(d)(3) audit reports.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use phivault_audit::{AuditEvent, AuditQuery, Outcome};
use phivault_policy::Action;

use super::fhir_view::role_words;
use super::html::{error_line, escape};
use super::shell::{Signed, app_page, ensure_recorded, form_signed_in, may, signed_in, unavailable};
use crate::AppState;
use crate::client_ip::ClientIp;
use crate::middleware::RequestId;

/// Most entries one page shows; a search with more says so.
const PAGE_LIMIT: usize = 500;

/// The form as typed (kept on the page when the search is refused or shown).
#[derive(Debug, Default, Clone)]
struct Filters {
    user: String,
    patient: String,
    action: String,
    outcome: String,
    since: String,
    until: String,
}

impl Filters {
    fn from_body(body: &[u8]) -> (Self, String) {
        let mut filters = Self::default();
        let mut csrf = String::new();
        for (key, value) in phivault_fhir::parse_query_string(&String::from_utf8_lossy(body)) {
            let value = value.trim().to_owned();
            match key.as_str() {
                "csrf" => csrf = value,
                "user" => filters.user = value,
                "patient" => filters.patient = value,
                "action" => filters.action = value,
                "outcome" => filters.outcome = value,
                "since" => filters.since = value,
                "until" => filters.until = value,
                _ => {}
            }
        }
        (filters, csrf)
    }

    /// The query, or what is wrong with the form in words.
    fn query(&self) -> Result<AuditQuery, &'static str> {
        let day = |text: &str, end: bool| -> Result<Option<i64>, &'static str> {
            if text.is_empty() {
                return Ok(None);
            }
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let date = time::Date::parse(text, &format).map_err(|_| "Dates are written as 2026-11-25.")?;
            let start = date.midnight().assume_utc().unix_timestamp() * 1000;
            Ok(Some(if end { start + 86_400_000 } else { start }))
        };
        let outcome = match self.outcome.as_str() {
            "" => None,
            "success" => Some(Outcome::Success),
            "denied" => Some(Outcome::Denied),
            "failure" => Some(Outcome::Failure),
            _ => return Err("Choose an outcome from the list."),
        };
        if !self.patient.is_empty() && !phivault_fhir::is_valid_id(&self.patient) {
            return Err("A patient is searched by the record id shown on their pages.");
        }
        let some = |text: &str| Some(text.to_owned()).filter(|t| !t.is_empty());
        Ok(AuditQuery {
            user_id: some(&self.user),
            patient_id: some(&self.patient),
            action: some(&self.action),
            outcome,
            since_ms: day(&self.since, false)?,
            until_ms: day(&self.until, true)?,
        })
    }
}

/// Who an entry names, in words: a workforce member by name and role.
fn actor(people: &[phivault_identity::UserSummary], user_id: Option<&str>) -> String {
    let Some(id) = user_id else { return "-".to_owned() };
    match people.iter().find(|u| u.id == id) {
        Some(u) if u.roles.iter().any(|r| r == "patient") => "a patient (their own account)".to_owned(),
        Some(u) => format!("{} ({})", escape(&u.display_name), escape(&role_words(&u.roles))),
        None => format!("<code>{}</code>", escape(id)),
    }
}

fn form_html(
    signed: &Signed,
    people: &[phivault_identity::UserSummary],
    typed: &Filters,
    error: Option<&str>,
) -> String {
    let options: String = people
        .iter()
        .filter(|u| !u.roles.iter().any(|r| r == "patient"))
        .map(|u| {
            format!(
                "<option value=\"{}\"{}>{} ({})</option>",
                escape(&u.id),
                if typed.user == u.id { " selected" } else { "" },
                escape(&u.display_name),
                escape(&role_words(&u.roles))
            )
        })
        .collect();
    let outcome = |value: &str, label: &str| {
        format!("<option value=\"{value}\"{}>{label}</option>", if typed.outcome == value { " selected" } else { "" })
    };
    format!(
        "{}<form method=\"post\" action=\"/review/audit\" class=\"vitals-grid\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <div><label for=\"user\">Person</label><select id=\"user\" name=\"user\"><option value=\"\">anyone</option>{options}</select></div>\
         <div><label for=\"patient\">Patient record id</label><input id=\"patient\" name=\"patient\" autocomplete=\"off\" value=\"{}\"></div>\
         <div><label for=\"action\">Action</label><input id=\"action\" name=\"action\" autocomplete=\"off\" value=\"{}\" \
         placeholder=\"read, chart, break_glass.request…\"></div>\
         <div><label for=\"outcome\">Outcome</label><select id=\"outcome\" name=\"outcome\">{}{}{}{}</select></div>\
         <div><label for=\"since\">From (UTC day)</label><input id=\"since\" name=\"since\" type=\"date\" value=\"{}\"></div>\
         <div><label for=\"until\">To (UTC day, included)</label><input id=\"until\" name=\"until\" type=\"date\" value=\"{}\"></div>\
         <div><button type=\"submit\">Search the trail</button></div></form>",
        error_line(error),
        signed.csrf,
        escape(&typed.patient),
        escape(&typed.action),
        outcome("", "any"),
        outcome("success", "success"),
        outcome("denied", "refused"),
        outcome("failure", "failed"),
        escape(&typed.since),
        escape(&typed.until),
    )
}

fn results_html(people: &[phivault_identity::UserSummary], found: &[(u64, AuditEvent)]) -> String {
    if found.is_empty() {
        return "<p>No entry matches.</p>".to_owned();
    }
    let shown = &found[..found.len().min(PAGE_LIMIT)];
    let rows: String = shown
        .iter()
        .map(|(seq, e)| {
            let outcome = match e.outcome {
                Outcome::Success => "success",
                Outcome::Denied => "refused",
                Outcome::Failure => "failed",
            };
            let records = match e.resource_ids.len() {
                0 => "-".to_owned(),
                n if n <= 3 => e.resource_ids.iter().map(|r| format!("<code>{}</code>", escape(r))).collect::<Vec<_>>().join(" "),
                n => format!("{n} records"),
            };
            format!(
                "<tr><td class=\"when\">{}</td><td>{}</td><td><code>{}</code></td><td>{outcome}</td><td>{}</td><td>{records}</td>\
                 <td>{}</td><td>#{seq}</td></tr>",
                escape(&phivault_fhir::format_instant(e.time_ms)),
                actor(people, e.user_id.as_deref()),
                escape(&e.action),
                e.patient_ids.iter().map(|p| format!("<code>{}</code>", escape(p))).collect::<Vec<_>>().join(" "),
                e.source_ip.as_deref().map(escape).unwrap_or_default(),
            )
        })
        .collect();
    let more = if found.len() > PAGE_LIMIT {
        format!(
            "<p class=\"note\">More than {PAGE_LIMIT} entries match: the first {PAGE_LIMIT} are shown; narrow the dates.</p>"
        )
    } else {
        String::new()
    };
    format!(
        "{more}<table><caption>{} entries, oldest first</caption><thead><tr><th scope=\"col\">When (UTC)</th>\
         <th scope=\"col\">Who</th><th scope=\"col\">Action</th><th scope=\"col\">Outcome</th><th scope=\"col\">Patients</th>\
         <th scope=\"col\">Records</th><th scope=\"col\">From</th><th scope=\"col\">Entry</th></tr></thead><tbody>{rows}</tbody></table>",
        shown.len()
    )
}

/// The page's refusal: recorded, in words.
async fn refused(state: &AppState, signed: &Signed) -> Response {
    if let Err(r) = ensure_recorded(state, signed, "audit.search", Outcome::Denied, "403", None).await {
        return r;
    }
    app_page(
        StatusCode::FORBIDDEN,
        signed,
        "Audit trail",
        "<p class=\"error\" role=\"alert\">Your role does not review the audit trail.</p>",
    )
}

/// `GET /review/audit`: the search form.
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match signed_in(&state, &headers, ids.0, ids.1, "/review/audit").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !may(&state, &signed, Action::ReadAudit).await {
        return refused(&state, &signed).await;
    }
    let Ok(people) = state.identity.list_users().await else { return unavailable() };
    app_page(StatusCode::OK, &signed, "Audit trail", &form_html(&signed, &people, &Filters::default(), None))
}

/// `POST /review/audit`: the search, recorded as `audit.search` before anything is shown.
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    body: axum::body::Bytes,
) -> Response {
    let (filters, csrf) = Filters::from_body(&body);
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match form_signed_in(&state, &headers, ids.0, ids.1, "/review/audit", &csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Decided before anything is shown, even the form again (its list names the workforce).
    if !may(&state, &signed, Action::ReadAudit).await {
        return refused(&state, &signed).await;
    }
    let Ok(people) = state.identity.list_users().await else { return unavailable() };
    let query = match filters.query() {
        Ok(query) => query,
        Err(why) => {
            if let Err(r) =
                ensure_recorded(&state, &signed, "audit.search", Outcome::Failure, "invalid_filter", None).await
            {
                return r;
            }
            return app_page(
                StatusCode::BAD_REQUEST,
                &signed,
                "Audit trail",
                &form_html(&signed, &people, &filters, Some(why)),
            );
        }
    };
    let found =
        crate::review::search_trail(&state, &signed.caller, ids.0, signed.origin.clone(), &query, PAGE_LIMIT + 1).await;
    signed.accessor.trail.mark_recorded();
    let found = match found {
        Ok(found) => found,
        Err(e) if e.status == StatusCode::FORBIDDEN => {
            return app_page(
                StatusCode::FORBIDDEN,
                &signed,
                "Audit trail",
                "<p class=\"error\" role=\"alert\">Your role does not review the audit trail.</p>",
            );
        }
        Err(_) => return unavailable(),
    };
    let body = format!("{}{}", form_html(&signed, &people, &filters, None), results_html(&people, &found));
    app_page(StatusCode::OK, &signed, "Audit trail", &body)
}
