//! The signed-in part of the browser application: who is at the keyboard (from the session
//! cookie, checked on every page so a lock or deactivation applies at once), the accessor
//! the guarded record service decides for, and the page frame with the navigation their
//! roles use. Pages never read the store: they call the same guarded service as `/fhir`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use phivault_audit::Outcome;
use phivault_identity::Role;
use phivault_service::access::Accessor;

use super::html::{escape, url_encode};
use super::same_origin;
use crate::AppState;
use crate::audit::Origin;
use crate::auth::gate::{ScopeReach, accessor};
use crate::auth::{Caller, csrf_matches, csrf_token, session_cookie};
use crate::client_ip::ClientIp;
use crate::middleware::RequestId;

/// A person signed in to a page: their session, the CSRF token its forms carry, and the
/// accessor for the record service (its trail names this request's origin).
pub struct Signed {
    pub caller: Caller,
    pub csrf: String,
    pub accessor: Accessor,
    pub origin: Origin,
    pub display_name: String,
    /// The session's idle timeout, for the page's logoff warning.
    pub idle_seconds: i64,
}

impl Signed {
    pub fn has(&self, role: Role) -> bool {
        self.caller.principal.roles.contains(&role)
    }

    /// Whether this person treats patients (the clinical pages are theirs).
    pub fn clinician(&self) -> bool {
        self.has(Role::Physician) || self.has(Role::Nurse)
    }
}

/// The request's origin (address, agent, request id) for the trail.
pub fn origin_of(headers: &HeaderMap, client: Option<&ClientIp>, request_id: Option<&RequestId>) -> Origin {
    Origin::of(headers, client, request_id)
}

/// The person signed in, or the redirect to sign in and come back to `here` (a path of
/// opaque ids only: no search value is ever part of a page's address).
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<&ClientIp>,
    request_id: Option<&RequestId>,
    here: &str,
) -> Result<Signed, Response> {
    let to_login = || Redirect::to(&format!("/login?next={}", url_encode(here))).into_response();
    let Some(secret) = session_cookie(headers) else { return Err(to_login()) };
    // Counts as activity; fails (and so logs off) after the idle timeout.
    let principal = match state.identity.authenticate(&secret).await {
        Ok(principal) => principal,
        Err(_) => return Err(to_login()),
    };
    let (display_name, idle_seconds) = match state.identity.session(&secret).await {
        Ok(view) => (view.user.display_name, view.token.idle_ms / 1000),
        Err(_) => return Err(to_login()),
    };
    let caller = Caller { principal, via_cookie: true };
    let origin = origin_of(headers, client, request_id);
    let mut accessor = accessor(state, &caller, client.map(|c| c.0), ScopeReach::Unnarrowed);
    origin.onto(&mut accessor);
    Ok(Signed { caller, csrf: csrf_token(&secret), accessor, origin, display_name, idle_seconds })
}

/// Whether the policies let this person `action` on the system, in a session signed in
/// with a second factor: the check every page of administration and review makes.
pub async fn may(state: &AppState, signed: &Signed, action: phivault_policy::Action) -> bool {
    signed.caller.principal.mfa && state.records.may(&signed.accessor, action).await.is_ok()
}

/// [`signed_in`] for a posted form: it must come from this site and carry the session's
/// CSRF token.
pub async fn form_signed_in(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<&ClientIp>,
    request_id: Option<&RequestId>,
    here: &str,
    csrf: &str,
) -> Result<Signed, Response> {
    // Checked before the session is touched: a forged cross-site post must not even keep
    // an idle session alive.
    let Some(secret) = session_cookie(headers) else {
        return signed_in(state, headers, client, request_id, here).await;
    };
    if !same_origin(state, headers) || !csrf_matches(&secret, csrf) {
        return Err(super::forbidden());
    }
    signed_in(state, headers, client, request_id, here).await
}

/// [`form_signed_in`] for a form posted about one patient, under `page` (`/chart`): an id
/// that is not a valid id never reaches the service or an address.
pub async fn patient_form_signed_in(
    state: &AppState,
    headers: &HeaderMap,
    ids: (Option<&ClientIp>, Option<&RequestId>),
    page: &str,
    patient_id: &str,
    csrf: &str,
) -> Result<Signed, Response> {
    if !phivault_fhir::is_valid_id(patient_id) {
        return Err(super::html::page(
            StatusCode::NOT_FOUND,
            "No such patient",
            "<p>No patient record has this address.</p>",
        ));
    }
    form_signed_in(state, headers, ids.0, ids.1, &format!("{page}/{patient_id}"), csrf).await
}

/// Records what a page did when the record service wrote no entry of its own (a refusal
/// before any record was reached, input refused): every clinical page leaves one.
pub async fn ensure_recorded(
    state: &AppState,
    signed: &Signed,
    action: &str,
    outcome: Outcome,
    reason: &str,
    patient: Option<&str>,
) -> Result<(), Response> {
    if signed.accessor.trail.recorded() {
        return Ok(());
    }
    let mut event = crate::audit::caller_event(state, &signed.caller, signed.origin.clone(), action, outcome);
    event.reason = Some(reason.to_owned());
    if let Some(patient) = patient.filter(|p| phivault_fhir::is_valid_id(p)) {
        event.patient_ids.push(patient.to_owned());
        event.resource_ids.push(format!("Patient/{patient}"));
    }
    crate::audit::write(state, &event).await.map_err(|_| unavailable())?;
    signed.accessor.trail.mark_recorded();
    Ok(())
}

/// The page for a request whose audit entry could not be written: nothing was shown.
pub fn unavailable() -> Response {
    app_page_anonymous(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "<p class=\"error\" role=\"alert\">The record service is unavailable right now, so nothing was shown or saved. \
         Please try again in a moment.</p>",
    )
}

/// The navigation a person's roles use.
fn nav(signed: &Signed) -> String {
    let mut links: Vec<(&str, &str)> = Vec::new();
    if signed.clinician() {
        links.push(("/patients", "My patients"));
    }
    if signed.has(Role::FrontDesk) && !signed.clinician() {
        links.push(("/patients", "Find a patient"));
        links.push(("/desk/register", "Register a patient"));
    }
    if signed.has(Role::PrivacyOfficer) {
        links.push(("/review", "Review"));
        links.push(("/review/audit", "Audit trail"));
        links.push(("/approvals", "Approvals"));
    }
    if signed.has(Role::Admin) {
        links.push(("/people", "People"));
    }
    if signed.has(Role::Patient) {
        links.push(("/my-record", "My record"));
        links.push(("/my-record/access", "Who has seen my record"));
    }
    links.push(("/account", "Account"));
    let items: String = links.iter().map(|(href, label)| format!("<li><a href=\"{href}\">{label}</a></li>")).collect();
    format!(
        "<header class=\"bar\"><nav aria-label=\"Main\"><ul>{items}</ul></nav>\
         <form method=\"post\" action=\"/logout\" class=\"signout\"><span>{}</span>\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form></header>",
        escape(&signed.display_name),
        signed.csrf
    )
}

/// A page of the signed-in application. `body` must already be escaped HTML.
pub fn app_page(status: StatusCode, signed: &Signed, title: &str, body: &str) -> Response {
    app_page_headed(status, signed, title, title, body)
}

/// [`app_page`] whose heading differs from its window title: a page about a patient puts
/// their name in the heading only, since titles live on in the browser's history, tab
/// lists and session restore.
pub fn app_page_headed(status: StatusCode, signed: &Signed, title: &str, heading: &str, body: &str) -> Response {
    signed_in_page(html_response(
        status,
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{} · phivault</title><link rel=\"stylesheet\" href=\"/static/app.css\">\
             <script src=\"/static/idle.js\" defer></script></head>\
             <body class=\"app\" data-idle-seconds=\"{}\">{}<main><h1>{}</h1>{body}</main></body></html>",
            escape(title),
            signed.idle_seconds,
            nav(signed),
            escape(heading)
        ),
    ))
}

/// Marks a page as shown to someone signed in: only such pages (and authenticated API
/// answers) say that emergency mode is on (`crate::emergency::mark_responses`).
#[derive(Debug, Clone, Copy)]
pub struct SignedInPage;

pub fn signed_in_page(mut response: Response) -> Response {
    response.extensions_mut().insert(SignedInPage);
    response
}

/// A page in the application's wide frame with no navigation (nobody known to show it to).
pub fn app_page_anonymous(status: StatusCode, title: &str, body: &str) -> Response {
    html_response(
        status,
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{} · phivault</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
             <body class=\"app\"><main><h1>{}</h1>{body}</main></body></html>",
            escape(title),
            escape(title)
        ),
    )
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}
