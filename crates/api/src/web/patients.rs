//! Finding a patient: the patients a clinician may see (their care team, department and
//! live emergency grants, as the policies' search scope has it) and a search by name, MRN
//! and birth date. The search form POSTs and its results are the answer to that POST, so
//! no search value is ever in an address, the history or a `Referer`; results link to the
//! chart by opaque id. Both go through the guarded search, which audits what it shows.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use phivault_audit::Outcome;
use phivault_service::records::StoredResource;
use serde::Deserialize;

use super::fhir_view::{family_name, mrn, non_empty, person_name};
use super::html::escape;
use super::shell::{Signed, app_page, ensure_recorded, form_signed_in, signed_in};
use crate::AppState;
use crate::client_ip::ClientIp;
use crate::middleware::RequestId;

/// How many patients the list shows; beyond that, the search finds them.
const LIST_LIMIT: usize = 200;

fn search_form(signed: &Signed, form: &SearchForm, error: Option<&str>) -> String {
    format!(
        "<section aria-labelledby=\"find\"><h2 id=\"find\">Find a patient</h2>{}\
         <form method=\"post\" action=\"/patients/search\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"name\">Name</label><input id=\"name\" name=\"name\" value=\"{}\" autocomplete=\"off\">\
         <label for=\"mrn\">Medical record number</label><input id=\"mrn\" name=\"mrn\" value=\"{}\" autocomplete=\"off\">\
         <label for=\"birthdate\">Birth date</label><input id=\"birthdate\" name=\"birthdate\" type=\"date\" value=\"{}\">\
         <button type=\"submit\">Search</button></form></section>",
        super::html::error_line(error),
        signed.csrf,
        escape(&form.name),
        escape(&form.mrn),
        escape(&form.birthdate),
    )
}

fn patient_table(signed: &Signed, patients: &[StoredResource], caption: &str) -> String {
    let base = patient_page(signed);
    if patients.is_empty() {
        return format!("<p>{}</p>", escape(caption));
    }
    let rows: String = patients
        .iter()
        .map(|p| {
            format!(
                "<tr><td><a href=\"{base}/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&p.id),
                escape(&non_empty(person_name(&p.body), "(no name)")),
                escape(p.body.get("birthDate").and_then(|v| v.as_str()).unwrap_or("")),
                escape(p.body.get("gender").and_then(|v| v.as_str()).unwrap_or("")),
                escape(&mrn(&p.body).unwrap_or_default()),
            )
        })
        .collect();
    format!(
        "<table><caption>{}</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Birth date</th>\
         <th scope=\"col\">Sex</th><th scope=\"col\">MRN</th></tr></thead><tbody>{rows}</tbody></table>",
        escape(caption)
    )
}

/// Where a patient opens for this person: the chart for clinicians, the registration
/// page for the front desk.
fn patient_page(signed: &Signed) -> &'static str {
    if signed.clinician() { "/chart" } else { "/desk/patient" }
}

/// Whether this person's work starts from finding a patient.
fn finds_patients(signed: &Signed) -> bool {
    signed.clinician() || signed.has(phivault_identity::Role::FrontDesk)
}

/// A page for people whose role has no patient list.
fn not_clinical(signed: &Signed) -> Response {
    app_page(
        StatusCode::FORBIDDEN,
        signed,
        "Patients",
        "<p class=\"error\" role=\"alert\">Your role does not work with patients' charts.</p>",
    )
}

/// `GET /patients`: the patients this clinician may see, and the search form.
pub async fn my_patients(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let signed = match signed_in(&state, &headers, client.as_deref(), request_id.as_deref(), "/patients").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !finds_patients(&signed) {
        return not_clinical(&signed);
    }
    if !signed.clinician() {
        // The front desk registers and schedules everyone: a list of all would be the
        // whole clinic; they search.
        let form = SearchForm::default();
        return app_page(
            StatusCode::OK,
            &signed,
            "Patients",
            &format!(
                "{}<p><a href=\"/desk/register\">Register a new patient</a></p>",
                search_form(&signed, &form, None)
            ),
        );
    }
    // The most recently updated first, so the list says which ones it holds.
    let query = [("_count".to_owned(), LIST_LIMIT.to_string()), ("_sort".to_owned(), "-_lastUpdated".to_owned())];
    let listed = match phivault_fhir::search::parse_search("Patient", &query, true) {
        Ok(request) => state.records.search(&signed.accessor, "Patient", &request, 0).await,
        Err(e) => Err(e.into()),
    };
    let body = match listed {
        Ok(page) => {
            let mut patients = page.value.resources;
            patients.sort_by_key(|p| (family_name(&p.body), person_name(&p.body)));
            let caption = if page.value.has_more {
                format!(
                    "{LIST_LIMIT} of the patients you may see (the most recently updated), sorted by name: search to find the others."
                )
            } else if patients.is_empty() {
                "No patient is assigned to you yet. The front desk assigns care teams.".to_owned()
            } else {
                format!("Patients you may see ({})", patients.len())
            };
            patient_table(&signed, &patients, &caption)
        }
        Err(phivault_service::RecordError::Forbidden { .. }) => "<p>Your role does not list patients.</p>".to_owned(),
        Err(e) => return super::chart::record_trouble(&state, &signed, "search", e).await,
    };
    if let Err(r) = ensure_recorded(&state, &signed, "search", Outcome::Denied, "403", None).await {
        return r;
    }
    let form = SearchForm::default();
    app_page(
        StatusCode::OK,
        &signed,
        "My patients",
        &format!("{}<h2>My patients</h2>{body}", search_form(&signed, &form, None)),
    )
}

#[derive(Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    mrn: String,
    #[serde(default)]
    birthdate: String,
}

impl std::fmt::Debug for SearchForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchForm(..)")
    }
}

/// The search parameters a form asks for, or what a person should correct.
fn search_query(form: &SearchForm) -> Result<Vec<(String, String)>, &'static str> {
    let mut query = Vec::new();
    let name = form.name.trim();
    if !name.is_empty() {
        if name.chars().count() > 100 {
            return Err("A name is at most 100 characters.");
        }
        query.push(("name".to_owned(), name.to_owned()));
    }
    let mrn = form.mrn.trim();
    if !mrn.is_empty() {
        if mrn.len() > 64 || mrn.contains(['|', ',', '$']) {
            return Err("A record number is letters, digits and dashes only.");
        }
        query.push(("identifier".to_owned(), mrn.to_owned()));
    }
    let birthdate = form.birthdate.trim();
    if !birthdate.is_empty() {
        let valid = birthdate.len() == 10
            && time::Date::parse(birthdate, time::macros::format_description!("[year]-[month]-[day]")).is_ok();
        if !valid {
            return Err("Write the birth date as year-month-day, for example 1990-04-17.");
        }
        query.push(("birthdate".to_owned(), birthdate.to_owned()));
    }
    if query.is_empty() {
        return Err("Enter a name, a record number or a birth date.");
    }
    query.push(("_count".to_owned(), "50".to_owned()));
    Ok(query)
}

/// `POST /patients/search`: the matches among the patients this clinician may see.
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Form(form): Form<SearchForm>,
) -> Response {
    let signed =
        match form_signed_in(&state, &headers, client.as_deref(), request_id.as_deref(), "/patients", &form.csrf).await
        {
            Ok(s) => s,
            Err(r) => return r,
        };
    if !finds_patients(&signed) {
        return not_clinical(&signed);
    }
    let query = match search_query(&form) {
        Ok(q) => q,
        Err(message) => {
            if let Err(r) = ensure_recorded(&state, &signed, "search", Outcome::Failure, "400", None).await {
                return r;
            }
            return app_page(
                StatusCode::BAD_REQUEST,
                &signed,
                "Find a patient",
                &search_form(&signed, &form, Some(message)),
            );
        }
    };
    let found = match phivault_fhir::search::parse_search("Patient", &query, true) {
        Ok(request) => state.records.search(&signed.accessor, "Patient", &request, 0).await,
        Err(e) => Err(e.into()),
    };
    let results = match found {
        Ok(page) => {
            let mut patients = page.value.resources;
            patients.sort_by_key(|p| (family_name(&p.body), person_name(&p.body)));
            let caption = if patients.is_empty() {
                "No patient you may see matches. A patient outside your care appears only once the front desk assigns you, \
                 or through emergency access from their chart."
                    .to_owned()
            } else if page.value.has_more {
                "The first 50 matches: add a birth date or record number to narrow them.".to_owned()
            } else {
                format!("Matches ({})", patients.len())
            };
            patient_table(&signed, &patients, &caption)
        }
        Err(phivault_service::RecordError::Forbidden { .. }) => {
            "<p class=\"error\" role=\"alert\">Your role may not search patients this way.</p>".to_owned()
        }
        Err(e) => return super::chart::record_trouble(&state, &signed, "search", e).await,
    };
    if let Err(r) = ensure_recorded(&state, &signed, "search", Outcome::Denied, "403", None).await {
        return r;
    }
    app_page(
        StatusCode::OK,
        &signed,
        "Find a patient",
        &format!("{}<h2>Results</h2>{results}", search_form(&signed, &form, None)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(name: &str, mrn: &str, birthdate: &str) -> SearchForm {
        SearchForm { csrf: String::new(), name: name.into(), mrn: mrn.into(), birthdate: birthdate.into() }
    }

    #[test]
    fn a_search_form_becomes_exact_parameters_or_a_readable_correction() {
        let q = search_query(&form(" Duck ", "123456789", "1937-04-17")).expect("valid");
        assert_eq!(q[0], ("name".into(), "Duck".into()));
        assert_eq!(q[1], ("identifier".into(), "123456789".into()));
        assert_eq!(q[2], ("birthdate".into(), "1937-04-17".into()));
        assert!(search_query(&form("", "", "")).is_err(), "an empty search lists nobody");
        assert!(search_query(&form("", "", "17/04/1937")).is_err());
        assert!(search_query(&form("", "", "1937-02-30")).is_err());
        // A value that would change the parameter's meaning (another system, a list, a
        // modifier) is refused, not passed through.
        assert!(search_query(&form("", "urn:x|1,2", "")).is_err());
    }
}
