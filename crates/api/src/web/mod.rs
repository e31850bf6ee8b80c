//! Browser sign-in: password, second factor, first-login password change and TOTP
//! enrolment, account page and logout. Server-rendered forms, no scripts.
//!
//! Every POST checks that it comes from this site (`Origin`) and, once a session exists,
//! carries the session's CSRF token. Each step issues a new session id.

mod account;
mod audit_search;
mod chart;
pub use chart::CHART_QUERIES;
pub use shell::SignedInPage;
mod chart_forms;
mod desk;
mod fhir_view;
pub(crate) mod html;
mod patients;
mod people;
mod portal;
mod review;
mod shell;
mod trend;

use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use phivault_identity::{IdentityError, LoginStage, SessionGrant};
use serde::Deserialize;

use crate::AppState;
use crate::audit::{Origin, record};
use crate::auth::{cleared_session_cookie, csrf_matches, csrf_token, session_cookie, session_cookie_header};
use crate::client_ip::ClientIp;
use html::{error_line, escape, page};
use phivault_audit::Outcome;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/app.css", get(stylesheet))
        .route("/static/idle.js", get(idle_script))
        .route("/session/keepalive", axum::routing::post(keep_alive))
        .route("/login", get(login_form).post(login_submit))
        .route("/login/mfa", get(mfa_form).post(mfa_submit))
        .route("/login/password", get(password_form).post(password_submit))
        .route("/login/enrol", get(enrol_form).post(enrol_submit))
        .route("/account", get(account::account))
        .route("/account/password", axum::routing::post(account::change_password))
        .route("/account/sessions/end", axum::routing::post(account::end_sessions))
        .route("/logout", axum::routing::post(logout))
        .route("/patients", get(patients::my_patients))
        .route("/patients/search", axum::routing::post(patients::search))
        .route("/chart/{id}", get(chart::chart))
        .route("/chart/{id}/notes", axum::routing::post(chart_forms::write_note))
        .route("/chart/{id}/vitals", axum::routing::post(chart_forms::record_vitals))
        .route("/chart/{id}/break-glass", axum::routing::post(chart_forms::break_glass))
        .route("/desk/register", get(desk::register_form).post(desk::register))
        .route("/desk/patient/{id}", get(desk::registration))
        .route("/desk/patient/{id}/care-team", axum::routing::post(desk::change_care_team))
        .route("/desk/patient/{id}/appointments", axum::routing::post(desk::book))
        .route("/my-record", get(portal::my_record))
        .route("/my-record/download", get(portal::download))
        .route("/my-record/summary", get(portal::summary))
        .route("/my-record/access", get(portal::access))
        .route("/people", get(people::people))
        .route("/people/new", get(people::new_account).post(people::request_account))
        .route("/people/{id}", get(people::person))
        .route("/people/{id}/{verb}", axum::routing::post(people::verb))
        .route("/approvals", get(people::approvals))
        .route("/approvals/{request}/{decision}", axum::routing::post(people::decide))
        .route("/review", get(review::review_page))
        .route("/review/audit", get(audit_search::form).post(audit_search::search))
        .route("/review/alerts/{id}", axum::routing::post(review::review_alert))
        .route("/review/break-glass/{id}", axum::routing::post(review::review_grant))
}

async fn stylesheet() -> Response {
    let mut r = html::STYLESHEET.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r
}

/// The idle-logoff warning every signed-in page loads (no inline script: the CSP allows
/// only this site's files).
const IDLE_SCRIPT: &str = include_str!("static/idle.js");

async fn idle_script() -> Response {
    let mut r = IDLE_SCRIPT.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    r
}

/// `POST /session/keepalive` (the warning's "Stay signed in"): counts as activity on the
/// session, from this site with the session's CSRF header; 204, or 401 once it has ended.
async fn keep_alive(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(secret) = session_cookie(&headers) else { return StatusCode::UNAUTHORIZED.into_response() };
    let presented = headers.get(crate::auth::CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !same_origin(&state, &headers) || !csrf_matches(&secret, presented) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match state.identity.authenticate(&secret).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// Where to continue after sign-in: a local path only (no open redirects).
fn safe_next(next: Option<&str>) -> String {
    // Browsers drop tabs and newlines from URLs and read `\` as `/`, so `/\t/evil.example`
    // would become `//evil.example`: only visible ASCII, and never a second leading slash.
    let local = |n: &str| {
        n.starts_with('/') && !n.starts_with("//") && n.bytes().all(|b| b.is_ascii_graphic()) && !n.contains('\\')
    };
    match next {
        Some(n) if local(n) => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// `/`: where each person's work starts (the sign-in page when signed out).
async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<crate::RequestId>>,
) -> Response {
    let Some(secret) = session_cookie(&headers) else { return Redirect::to("/login").into_response() };
    if let Ok(view) = state.identity.session(&secret).await
        && view.token.stage != LoginStage::Complete
    {
        return Redirect::to(stage_path(view.token.stage)).into_response();
    }
    let signed = match shell::signed_in(&state, &headers, client.as_deref(), request_id.as_deref(), "/").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let start = if signed.clinician() || signed.has(phivault_identity::Role::FrontDesk) {
        "/patients"
    } else if signed.has(phivault_identity::Role::PrivacyOfficer) {
        "/review"
    } else if signed.has(phivault_identity::Role::Admin) {
        "/people"
    } else if signed.has(phivault_identity::Role::Patient) {
        "/my-record"
    } else {
        "/account"
    };
    Redirect::to(start).into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn continuation_targets_stay_on_this_site() {
        assert_eq!(safe_next(Some("/oauth/authorize?client_id=x&state=y")), "/oauth/authorize?client_id=x&state=y");
        for hostile in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/ /evil.example",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}

fn hidden_next(next: &str) -> String {
    format!("<input type=\"hidden\" name=\"next\" value=\"{}\">", escape(next))
}

fn hidden_csrf(headers: &HeaderMap) -> String {
    session_cookie(headers)
        .map(|s| format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", csrf_token(&s)))
        .unwrap_or_default()
}

/// Refuses a form posted from another site (login CSRF, session riding).
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin.trim_end_matches('/') == state.config.base_url.trim_end_matches('/'),
        // Browsers send Origin on every POST; its absence means a non-browser client,
        // which carries no ambient cookies to abuse.
        None => true,
    }
}

fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Refused",
        "<p>This form did not come from this site, or the page is stale. <a href=\"/login\">Start again</a>.</p>",
    )
}

fn stage_path(stage: LoginStage) -> &'static str {
    match stage {
        LoginStage::NeedsMfa => "/login/mfa",
        LoginStage::NeedsPasswordChange => "/login/password",
        LoginStage::NeedsEnrolment => "/login/enrol",
        LoginStage::Complete => "/",
    }
}

/// Sets the new session cookie and moves on to the next step.
fn continue_to(grant: &SessionGrant, next: &str) -> Response {
    let target = match grant.stage {
        LoginStage::Complete => next.to_owned(),
        stage => format!("{}?next={}", stage_path(stage), html::url_encode(next)),
    };
    let mut response = Redirect::to(&target).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie_header(&grant.secret));
    response
}

#[derive(Debug, Deserialize)]
struct NextParam {
    next: Option<String>,
}

// ---- password ---------------------------------------------------------------------------

fn login_page(next: &str, error: Option<&str>, status: StatusCode) -> Response {
    page(
        status,
        "Sign in",
        &format!(
            "{}<form method=\"post\" action=\"/login\">{}\
             <label for=\"username\">Username</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in</button></form>",
            error_line(error),
            hidden_next(next)
        ),
    )
}

async fn login_form(Query(q): Query<NextParam>) -> Response {
    login_page(&safe_next(q.next.as_deref()), None, StatusCode::OK)
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginForm(..)")
    }
}

async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<crate::RequestId>>,
    Form(form): Form<LoginForm>,
) -> Response {
    if !same_origin(&state, &headers) {
        return forbidden();
    }
    let next = safe_next(form.next.as_deref());
    let source = client.as_ref().map_or_else(|| "unknown".to_owned(), |c| c.0.0.to_string());
    let origin = Origin::of(&headers, client.as_ref().map(|c| &c.0), request_id.as_ref().map(|r| &r.0));
    let (result, subject) = state.identity.login_with_subject(&form.username, &form.password, &source).await;
    // The typed username is never recorded (it could be anything); the account id is, when
    // the attempt was against an existing account.
    let (outcome, reason) = match &result {
        Ok(g) => (Outcome::Success, g.stage.as_str().to_owned()),
        Err(IdentityError::Throttled { .. }) => (Outcome::Denied, "throttled".to_owned()),
        // The account's own refusal (deactivated, locked) goes to the trail for log-in
        // monitoring; the client is told the same as for a wrong password.
        Err(IdentityError::BadCredentials) => {
            (Outcome::Denied, subject.as_ref().and_then(|s| s.account_refusal).unwrap_or("bad_credentials").to_owned())
        }
        Err(_) => (Outcome::Failure, "error".to_owned()),
    };
    let subject = subject.map(|s| s.user_id);
    if let Err(refused) =
        record(&state, &origin, "login.password", outcome, Some(&reason), subject.as_deref(), None).await
    {
        if let Ok(grant) = &result {
            let _ = state.identity.logout(&grant.secret).await;
        }
        return refused;
    }
    match result {
        Ok(grant) => {
            // A session presented before login is ended: a fixed session id is worthless.
            if let Some(old) = session_cookie(&headers) {
                let _ = state.identity.logout(&old).await;
            }
            continue_to(&grant, &next)
        }
        Err(e @ IdentityError::Throttled { .. }) => {
            login_page(&next, Some(&e.to_string()), StatusCode::TOO_MANY_REQUESTS)
        }
        Err(IdentityError::BadCredentials) => {
            // One message for a wrong password, an unknown account and a paused one, so it
            // says nothing about whether the account exists, yet tells a locked-out person
            // what to do.
            login_page(
                &next,
                Some(
                    "Invalid username or password. After repeated failed attempts sign-in is paused for a while: try again later.",
                ),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => server_trouble(e),
    }
}

fn server_trouble(e: IdentityError) -> Response {
    tracing::error!(error = %e, "sign-in failed");
    page(StatusCode::SERVICE_UNAVAILABLE, "Try again", "<p>Sign-in is unavailable right now. Please try again.</p>")
}

// ---- second factor ----------------------------------------------------------------------

/// The session for a sign-in step, or a redirect to where the session actually is.
async fn step_session(
    state: &AppState,
    headers: &HeaderMap,
    stage: LoginStage,
) -> Result<phivault_identity::SessionView, Response> {
    let Some(secret) = session_cookie(headers) else { return Err(Redirect::to("/login").into_response()) };
    match state.identity.session(&secret).await {
        Ok(view) if view.token.stage == stage => Ok(view),
        Ok(view) => Err(Redirect::to(stage_path(view.token.stage)).into_response()),
        Err(_) => Err(Redirect::to("/login").into_response()),
    }
}

fn mfa_page(headers: &HeaderMap, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    page(
        status,
        "Second factor",
        &format!(
            "{}<form method=\"post\" action=\"/login/mfa\">{}{}\
             <label for=\"code\">6-digit code from your authenticator app, or a recovery code</label>\
             <input id=\"code\" name=\"code\" autocomplete=\"one-time-code\" inputmode=\"numeric\" required autofocus>\
             <button type=\"submit\">Verify</button></form>",
            error_line(error),
            hidden_csrf(headers),
            hidden_next(next)
        ),
    )
}

async fn mfa_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<NextParam>) -> Response {
    if let Err(r) = step_session(&state, &headers, LoginStage::NeedsMfa).await {
        return r;
    }
    mfa_page(&headers, &safe_next(q.next.as_deref()), None, StatusCode::OK)
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
    csrf: String,
    next: Option<String>,
}

impl std::fmt::Debug for CodeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeForm(..)")
    }
}

async fn mfa_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<crate::RequestId>>,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(secret) = session_cookie(&headers) else { return Redirect::to("/login").into_response() };
    if !same_origin(&state, &headers) || !csrf_matches(&secret, &form.csrf) {
        return forbidden();
    }
    let next = safe_next(form.next.as_deref());
    let origin = Origin::of(&headers, client.as_ref().map(|c| &c.0), request_id.as_ref().map(|r| &r.0));
    let source = client.as_ref().map_or_else(|| "unknown".to_owned(), |c| c.0.0.to_string());
    let user_id = state.identity.session(&secret).await.ok().map(|v| v.user.id);
    let result = state.identity.verify_mfa(&secret, &form.code, &source).await;
    let (outcome, reason) = match &result {
        Ok(_) => (Outcome::Success, None),
        Err(IdentityError::BadCode) => (Outcome::Denied, Some("bad_code")),
        Err(IdentityError::LockedOut) => (Outcome::Denied, Some("locked_out")),
        Err(IdentityError::Throttled { .. }) => (Outcome::Denied, Some("throttled")),
        Err(_) => (Outcome::Denied, None),
    };
    if let Err(refused) = record(&state, &origin, "login.mfa", outcome, reason, user_id.as_deref(), None).await {
        if let Ok(grant) = &result {
            let _ = state.identity.logout(&grant.secret).await;
        }
        return refused;
    }
    match result {
        Ok(grant) => continue_to(&grant, &next),
        Err(IdentityError::BadCode) => {
            mfa_page(&headers, &next, Some("That code is wrong, expired or already used."), StatusCode::UNAUTHORIZED)
        }
        Err(e @ IdentityError::Throttled { .. }) => {
            mfa_page(&headers, &next, Some(&e.to_string()), StatusCode::TOO_MANY_REQUESTS)
        }
        Err(IdentityError::LockedOut) => page(
            StatusCode::TOO_MANY_REQUESTS,
            "Sign-in paused",
            "<p>Too many wrong codes. Sign-in to this account is paused for a while; try again later, \
             or ask your administrator if you have lost your authenticator and recovery codes.</p>\
             <p><a href=\"/login\">Back to sign-in</a></p>",
        ),
        Err(IdentityError::Unauthenticated | IdentityError::WrongStage) => Redirect::to("/login").into_response(),
        Err(e) => server_trouble(e),
    }
}

// ---- first-login password change ----------------------------------------------------------

fn password_page(headers: &HeaderMap, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    page(
        status,
        "Choose a new password",
        &format!(
            "<p>At least 12 characters. Spaces and any printable characters are welcome; a few unrelated words make a good password.</p>\
             {}<form method=\"post\" action=\"/login/password\">{}{}\
             <label for=\"current\">Current (temporary) password</label><input id=\"current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\
             <label for=\"new\">New password</label><input id=\"new\" name=\"new\" type=\"password\" autocomplete=\"new-password\" required>\
             <label for=\"repeat\">New password again</label><input id=\"repeat\" name=\"repeat\" type=\"password\" autocomplete=\"new-password\" required>\
             <button type=\"submit\">Change password</button></form>",
            error_line(error),
            hidden_csrf(headers),
            hidden_next(next)
        ),
    )
}

async fn password_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<NextParam>) -> Response {
    if let Err(r) = step_session(&state, &headers, LoginStage::NeedsPasswordChange).await {
        return r;
    }
    password_page(&headers, &safe_next(q.next.as_deref()), None, StatusCode::OK)
}

#[derive(Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
    repeat: String,
    csrf: String,
    next: Option<String>,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordForm(..)")
    }
}

/// The outcome of an account change for its audit entry: refusals of the user's input are
/// `denied`, anything else that failed is `failure`.
fn change_outcome<T>(result: &Result<T, IdentityError>) -> (Outcome, Option<&'static str>) {
    match result {
        Ok(_) => (Outcome::Success, None),
        Err(IdentityError::PasswordRejected(_)) => (Outcome::Denied, Some("password_rejected")),
        Err(IdentityError::WrongCurrentPassword) => (Outcome::Denied, Some("wrong_current_password")),
        Err(IdentityError::LockedOut) => (Outcome::Denied, Some("locked_out")),
        Err(IdentityError::BadCode) => (Outcome::Denied, Some("bad_code")),
        Err(IdentityError::Unauthenticated | IdentityError::WrongStage) => (Outcome::Denied, Some("no_session")),
        Err(_) => (Outcome::Failure, Some("error")),
    }
}

async fn password_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<crate::RequestId>>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let Some(secret) = session_cookie(&headers) else { return Redirect::to("/login").into_response() };
    if !same_origin(&state, &headers) || !csrf_matches(&secret, &form.csrf) {
        return forbidden();
    }
    let next = safe_next(form.next.as_deref());
    if form.new != form.repeat {
        return password_page(&headers, &next, Some("The two new passwords differ."), StatusCode::BAD_REQUEST);
    }
    let origin = Origin::of(&headers, client.as_ref().map(|c| &c.0), request_id.as_ref().map(|r| &r.0));
    let user_id = state.identity.session(&secret).await.ok().map(|v| v.user.id);
    let result = state.identity.change_password(&secret, &form.current, &form.new).await;
    let (outcome, reason) = change_outcome(&result);
    if let Err(refused) = record(&state, &origin, "account.password", outcome, reason, user_id.as_deref(), None).await {
        return refused;
    }
    match result {
        Ok(grant) => continue_to(&grant, &next),
        Err(e @ (IdentityError::PasswordRejected(_) | IdentityError::WrongCurrentPassword)) => {
            password_page(&headers, &next, Some(&e.to_string()), StatusCode::BAD_REQUEST)
        }
        // Locked out (too many wrong current passwords): this sign-in has ended.
        Err(IdentityError::Unauthenticated | IdentityError::WrongStage | IdentityError::LockedOut) => {
            Redirect::to("/login").into_response()
        }
        Err(e) => server_trouble(e),
    }
}

// ---- TOTP enrolment ---------------------------------------------------------------------

fn qr_svg(uri: &str) -> String {
    qrcode::QrCode::new(uri.as_bytes())
        .map(|code| code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build())
        .unwrap_or_default()
}

async fn enrol_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<NextParam>) -> Response {
    if let Err(r) = step_session(&state, &headers, LoginStage::NeedsEnrolment).await {
        return r;
    }
    let Some(secret) = session_cookie(&headers) else { return Redirect::to("/login").into_response() };
    // Showing the page creates a new, unconfirmed secret; the old one, if any, is replaced.
    let enrolment = match state.identity.begin_enrolment(&secret).await {
        Ok(e) => e,
        Err(e) => return server_trouble(e),
    };
    enrol_page(&headers, &safe_next(q.next.as_deref()), Some(&enrolment), None, StatusCode::OK)
}

fn enrol_page(
    headers: &HeaderMap,
    next: &str,
    enrolment: Option<&phivault_identity::Enrolment>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let setup = enrolment.map_or_else(String::new, |e| {
        format!(
            "<p>Scan this code with an authenticator app (FreeOTP, Aegis, Google or Microsoft Authenticator, 1Password…), \
             or type the key <code>{}</code>.</p><div class=\"qr\">{}</div>",
            escape(&e.secret_base32),
            qr_svg(&e.otpauth_uri)
        )
    });
    page(
        status,
        "Set up two-step sign-in",
        &format!(
            "{}{setup}<form method=\"post\" action=\"/login/enrol\">{}{}\
             <label for=\"code\">Enter the 6-digit code the app shows</label>\
             <input id=\"code\" name=\"code\" autocomplete=\"one-time-code\" inputmode=\"numeric\" required>\
             <button type=\"submit\">Confirm</button></form>",
            error_line(error),
            hidden_csrf(headers),
            hidden_next(next)
        ),
    )
}

async fn enrol_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<crate::RequestId>>,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(secret) = session_cookie(&headers) else { return Redirect::to("/login").into_response() };
    if !same_origin(&state, &headers) || !csrf_matches(&secret, &form.csrf) {
        return forbidden();
    }
    let next = safe_next(form.next.as_deref());
    let origin = Origin::of(&headers, client.as_ref().map(|c| &c.0), request_id.as_ref().map(|r| &r.0));
    let user_id = state.identity.session(&secret).await.ok().map(|v| v.user.id);
    let result = state.identity.confirm_enrolment(&secret, &form.code).await;
    let (outcome, reason) = change_outcome(&result);
    if let Err(refused) = record(&state, &origin, "account.mfa_enrol", outcome, reason, user_id.as_deref(), None).await
    {
        return refused;
    }
    match result {
        Ok((grant, codes)) => {
            let list: String = codes.iter().map(|c| format!("<li>{}</li>", escape(c))).collect();
            let mut response = page(
                StatusCode::OK,
                "Recovery codes",
                &format!(
                    "<p>Two-step sign-in is on. Keep these ten recovery codes somewhere safe: each works once if you lose your phone. \
                     They are shown only now.</p><ol class=\"codes\">{list}</ol><p><a href=\"{}\">Continue</a></p>",
                    escape(&next)
                ),
            );
            response.headers_mut().insert(header::SET_COOKIE, session_cookie_header(&grant.secret));
            response
        }
        Err(IdentityError::BadCode) => enrol_page(
            &headers,
            &next,
            None,
            Some("That code did not match. Reload the page to start again with a new key, or try the next code."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(IdentityError::Unauthenticated | IdentityError::WrongStage) => Redirect::to("/login").into_response(),
        Err(e) => server_trouble(e),
    }
}

// ---- account and logout -----------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<crate::RequestId>>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(secret) = session_cookie(&headers) else { return Redirect::to("/login").into_response() };
    if !same_origin(&state, &headers) || !csrf_matches(&secret, &form.csrf) {
        return forbidden();
    }
    let user_id = state.identity.session(&secret).await.ok().map(|v| v.user.id);
    let _ = state.identity.logout(&secret).await;
    let origin = Origin::of(&headers, client.as_ref().map(|c| &c.0), request_id.as_ref().map(|r| &r.0));
    if let Err(refused) = record(&state, &origin, "logout", Outcome::Success, None, user_id.as_deref(), None).await {
        return refused;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(header::SET_COOKIE, cleared_session_cookie());
    response
}
