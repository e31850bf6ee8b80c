//! The administrator's pages: the workforce and patient accounts, one account's sign-ins,
//! and the verbs of termination and access management (lock, unlock, deactivate, end
//! sign-ins), plus requests for new accounts and credential resets, which wait for a second
//! person (`/approvals`, the privacy officer's page). The same identity service and the
//! same policies (`manage_users`, `approve_credentials`, with a second factor) decide as for
//! the admin API; every page and verb is recorded (`web.admin.*`). No page shows an
//! administrator a password: with separation of duties, only the approver sees one.
//!
//! Safeguards: 45 CFR 164.308(a)(3)(ii)(C) termination procedures, (a)(4) information
//! access management; 164.312(a)(2)(i) unique user identification.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use phivault_audit::Outcome;
use phivault_identity::{CredentialChange, IdentityError, NewAccount, UserSummary, parse_roles};
use phivault_policy::Action;
use serde::Deserialize;

use super::fhir_view::role_words;
use super::html::{error_line, escape};
use super::shell::{Signed, app_page, form_signed_in, signed_in, unavailable};
use crate::AppState;
use crate::client_ip::ClientIp;
use crate::middleware::RequestId;

type Ids<'a> = (Option<&'a ClientIp>, Option<&'a RequestId>);

/// The signed-in person, if the policies let them `action` (with a second factor); the
/// refusal page otherwise (recorded, as every refused page is).
async fn allowed(state: &AppState, signed: Signed, action: Action, page: &str) -> Result<Signed, Response> {
    if super::shell::may(state, &signed, action).await {
        return Ok(signed);
    }
    record(state, &signed, page, Outcome::Denied, None, "403").await?;
    Err(app_page(
        StatusCode::FORBIDDEN,
        &signed,
        "Not available",
        "<p class=\"error\" role=\"alert\">This page is for the people the access policies name for it \
         (administrators for accounts, the privacy officer for approvals), signed in with a second factor.</p>",
    ))
}

/// [`signed_in`] then [`allowed`]: a page of administration or approval, for whom the
/// policies name (`what` names the refusal's entry).
async fn signed_for(
    state: &AppState,
    headers: &HeaderMap,
    ids: Ids<'_>,
    here: &str,
    action: Action,
    what: &str,
) -> Result<Signed, Response> {
    let signed = signed_in(state, headers, ids.0, ids.1, here).await?;
    allowed(state, signed, action, what).await
}

/// Writes the page's entry: `web.admin.<what>`, naming the account (`user:<id>`) it concerned.
async fn record(
    state: &AppState,
    signed: &Signed,
    what: &str,
    outcome: Outcome,
    target: Option<String>,
    reason: &str,
) -> Result<(), Response> {
    let action = format!("web.admin.{what}");
    let mut event = crate::audit::caller_event(state, &signed.caller, signed.origin.clone(), &action, outcome);
    event.reason = Some(reason.to_owned());
    event.target = target;
    crate::audit::write(state, &event).await.map_err(|_| unavailable())
}

fn status_words(user: &UserSummary) -> String {
    let mut words = match user.status.as_str() {
        "active" => "active".to_owned(),
        "locked" => "locked by an administrator".to_owned(),
        "deactivated" => "deactivated".to_owned(),
        other => other.replace('_', " "),
    };
    if user.locked_until_ms.is_some() {
        words.push_str(", locked out after failed sign-ins");
    }
    words
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "never".to_owned(), phivault_fhir::format_instant)
}

/// `GET /people`: every account.
pub async fn people(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match signed_for(&state, &headers, ids, "/people", Action::ManageUsers, "user.list").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(users) = state.identity.list_users().await else { return unavailable() };
    if let Err(r) = record(&state, &signed, "user.list", Outcome::Success, None, "200").await {
        return r;
    }
    let rows: String = users
        .iter()
        .map(|u| {
            format!(
                "<tr><td><a href=\"/people/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&u.id),
                escape(&u.display_name),
                escape(&u.username),
                escape(&role_words(&u.roles)),
                escape(&status_words(u)),
                if u.mfa_enrolled { "enrolled" } else { "not yet" },
                escape(&when(u.last_login_ms)),
            )
        })
        .collect();
    let body = format!(
        "<p><a href=\"/people/new\">Request a new account</a></p>\
         <table><caption>{} accounts</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Username</th>\
         <th scope=\"col\">Roles</th><th scope=\"col\">Status</th><th scope=\"col\">Second factor</th>\
         <th scope=\"col\">Last sign-in</th></tr></thead><tbody>{rows}</tbody></table>",
        users.len()
    );
    app_page(StatusCode::OK, &signed, "People", &body)
}

/// The refusal page for an account verb the identity service turned down.
fn identity_refusal(signed: &Signed, error: &IdentityError) -> Response {
    let (status, text) = match error {
        IdentityError::NoSuchUser => (StatusCode::NOT_FOUND, "No account has this address.".to_owned()),
        other => (StatusCode::CONFLICT, other.to_string()),
    };
    app_page(
        status,
        signed,
        "Not done",
        &format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/people\">Back to people</a></p>",
            escape(&text)
        ),
    )
}

/// `GET /people/{id}`: one account, its live sign-ins, and what may be done to it.
pub async fn person(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let here = if phivault_fhir::is_valid_id(&id) { format!("/people/{id}") } else { "/people".to_owned() };
    let signed = match signed_for(&state, &headers, ids, &here, Action::ManageUsers, "user.show").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    person_page(&state, &signed, &id, None).await
}

async fn person_page(state: &AppState, signed: &Signed, id: &str, notice: Option<&str>) -> Response {
    // By id only: a username typed into an address is not looked up.
    let found = match state.identity.find_user(id).await {
        Ok(user) if user.id == id => Ok(user),
        Ok(_) => Err(IdentityError::NoSuchUser),
        Err(e) => Err(e),
    };
    let user = match found {
        Ok(user) => user.summary(state.identity.now_ms()),
        Err(e) => {
            if let Err(r) = record(state, signed, "user.show", Outcome::Failure, None, "404").await {
                return r;
            }
            return identity_refusal(signed, &e);
        }
    };
    let Ok(sessions) = state.identity.sessions(&user.id).await else { return unavailable() };
    if let Err(r) = record(state, signed, "user.show", Outcome::Success, Some(format!("user:{}", user.id)), "200").await
    {
        return r;
    }
    let form = |verb: &str, label: &str, extra: &str| {
        format!(
            "<form method=\"post\" action=\"/people/{}/{verb}\" class=\"actions\"><input type=\"hidden\" name=\"csrf\" \
             value=\"{}\">{extra}<button type=\"submit\">{label}</button></form>",
            escape(&user.id),
            signed.csrf
        )
    };
    let mut verbs = String::new();
    if user.status == "active" {
        verbs.push_str(&form("lock", "Lock the account", ""));
    } else if user.status == "locked" || user.locked_until_ms.is_some() {
        verbs.push_str(&form("unlock", "Unlock the account", ""));
    }
    if user.status != "deactivated" {
        verbs.push_str(&form(
            "deactivate",
            "Deactivate (ends every sign-in at once)",
            "<label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> This person has left or no \
             longer needs access</label>",
        ));
        verbs.push_str(&form("reset-password", "Request a password reset", ""));
        verbs.push_str(&form("reset-mfa", "Request a new second factor", ""));
    }
    let session_rows: String = sessions
        .iter()
        .map(|g| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(g.kind),
                escape(&phivault_fhir::format_instant(g.started_ms)),
                escape(&phivault_fhir::format_instant(g.last_seen_ms)),
                if g.mfa { "yes" } else { "no" },
                form(
                    "end-session",
                    "End",
                    &format!("<input type=\"hidden\" name=\"grant\" value=\"{}\">", escape(&g.grant))
                )
            )
        })
        .collect();
    let sessions_html = if sessions.is_empty() {
        "<p>No live sign-ins or app grants.</p>".to_owned()
    } else {
        format!(
            "<table><caption>{} live sign-ins and app grants</caption><thead><tr><th scope=\"col\">Kind</th>\
             <th scope=\"col\">Started</th><th scope=\"col\">Last seen</th><th scope=\"col\">Second factor</th>\
             <th scope=\"col\"><span class=\"visually-hidden\">End</span></th></tr></thead><tbody>{session_rows}\
             </tbody></table>{}",
            sessions.len(),
            form("end-sessions", "End all of them", "")
        )
    };
    let body = format!(
        "{}<dl class=\"demographics\"><dt>Username</dt><dd>{}</dd><dt>Roles</dt><dd>{}</dd><dt>Status</dt><dd>{}</dd>\
         <dt>Second factor</dt><dd>{}</dd><dt>Last sign-in</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd></dl>\
         <h2>Sign-ins</h2>{sessions_html}<h2>Actions</h2>{verbs}\
         <p>Password and second-factor resets wait for the privacy officer's approval; the person receives the \
         new password from them, in person.</p><p><a href=\"/people\">Back to people</a></p>",
        notice.map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", escape(n))).unwrap_or_default(),
        escape(&user.username),
        escape(&role_words(&user.roles)),
        escape(&status_words(&user)),
        if user.mfa_enrolled { "enrolled" } else { "not yet enrolled" },
        escape(&when(user.last_login_ms)),
        escape(&phivault_fhir::format_instant(user.created_ms)),
    );
    // The name in the heading only: titles stay in the browser's history.
    super::shell::app_page_headed(StatusCode::OK, signed, "Account", &user.display_name, &body)
}

#[derive(Debug, Deserialize)]
pub struct VerbForm {
    csrf: String,
    #[serde(default)]
    grant: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /people/{id}/{verb}`: lock, unlock, deactivate, end-session, end-sessions,
/// reset-password, reset-mfa.
pub async fn verb(
    State(state): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Form(form): Form<VerbForm>,
) -> Response {
    let ids: Ids<'_> = (client.as_deref(), request_id.as_deref());
    let signed = match form_signed_in(&state, &headers, ids.0, ids.1, "/people", &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(verb) = Verb::from_path(&verb) else {
        return super::html::page(StatusCode::NOT_FOUND, "Not found", "<p>No such page.</p>");
    };
    let name = verb.audit_name();
    let signed = match allowed(&state, signed, Action::ManageUsers, name).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let user = match state.identity.find_user(&id).await {
        Ok(user) if user.id == id => user,
        _ => {
            if let Err(r) = record(&state, &signed, name, Outcome::Failure, None, "404").await {
                return r;
            }
            return identity_refusal(&signed, &IdentityError::NoSuchUser);
        }
    };
    let requester = signed.caller.principal.user_id.clone().unwrap_or_default();
    let target = Some(format!("user:{}", user.id));
    // What cannot change anything is recorded as such and goes no further.
    let no_op = match verb {
        Verb::Deactivate if form.confirm.as_deref() != Some("yes") => {
            Some("Nothing was changed: tick the box to confirm the deactivation.")
        }
        Verb::EndSession if form.grant.is_none() => Some("Nothing was changed: no sign-in was named."),
        Verb::Reset(_) if !state.identity.policy().second_person_approval => Some(
            "Nothing was changed: without second-person approval, resets are made at the console \
             (phivault user reset-password), where the password is handed over.",
        ),
        _ => None,
    };
    if let Some(notice) = no_op {
        if let Err(r) = record(&state, &signed, name, Outcome::Failure, target, "unchanged").await {
            return r;
        }
        return person_page(&state, &signed, &user.id, Some(notice)).await;
    }
    // Recorded before the change, so no change is ever left without its entry (a trail that
    // cannot be written stops it here); an attempt that then changes nothing or fails is
    // followed by a failure entry.
    if let Err(r) = record(&state, &signed, name, Outcome::Success, target.clone(), "200").await {
        return r;
    }
    // What happened, and whether anything changed (what did not is recorded as a failure
    // with the reason `unchanged`, never as a success).
    let done: Result<(String, bool), IdentityError> = match verb {
        Verb::Lock => state.identity.lock(&user.id).await.map(|_| ("The account is locked.".to_owned(), true)),
        Verb::Unlock => state.identity.unlock(&user.id).await.map(|_| ("The account is unlocked.".to_owned(), true)),
        Verb::Deactivate => state
            .identity
            .deactivate(&user.id)
            .await
            .map(|_| ("The account is deactivated and every sign-in of it has ended.".to_owned(), true)),
        Verb::EndSession => match form.grant.as_deref() {
            Some(grant) => state.identity.end_session(&user.id, grant).await.map(|ended| {
                if ended {
                    ("That sign-in has ended.".to_owned(), true)
                } else {
                    ("That sign-in had already ended.".to_owned(), false)
                }
            }),
            None => Ok(("Nothing was changed: no sign-in was named.".to_owned(), false)),
        },
        Verb::EndSessions => state
            .identity
            .end_all_sessions(&user.id)
            .await
            .map(|n| (format!("{n} sign-ins and app grants ended."), n > 0)),
        Verb::Reset(change) => state
            .identity
            .request_credential_change(&user.id, change, &requester)
            .await
            .map(|_| ("Requested: the change waits for the privacy officer's approval.".to_owned(), true)),
    };
    match done {
        Ok((notice, changed)) => {
            if !changed && let Err(r) = record(&state, &signed, name, Outcome::Failure, target, "unchanged").await {
                return r;
            }
            person_page(&state, &signed, &user.id, Some(&notice)).await
        }
        Err(e) => {
            if let Err(r) = record(&state, &signed, name, Outcome::Failure, target, "409").await {
                return r;
            }
            identity_refusal(&signed, &e)
        }
    }
}

/// What a form on an account's page asks for.
#[derive(Debug, Clone, Copy)]
enum Verb {
    Lock,
    Unlock,
    Deactivate,
    EndSession,
    EndSessions,
    Reset(CredentialChange),
}

impl Verb {
    fn from_path(verb: &str) -> Option<Self> {
        Some(match verb {
            "lock" => Verb::Lock,
            "unlock" => Verb::Unlock,
            "deactivate" => Verb::Deactivate,
            "end-session" => Verb::EndSession,
            "end-sessions" => Verb::EndSessions,
            "reset-password" => Verb::Reset(CredentialChange::ResetPassword),
            "reset-mfa" => Verb::Reset(CredentialChange::ResetMfa),
            _ => return None,
        })
    }

    /// The trail's name for it, after `web.admin.`.
    fn audit_name(self) -> &'static str {
        match self {
            Verb::Lock => "user.lock",
            Verb::Unlock => "user.unlock",
            Verb::Deactivate => "user.deactivate",
            Verb::EndSession => "user.end_session",
            Verb::EndSessions => "user.end_all_sessions",
            Verb::Reset(CredentialChange::ResetMfa) => "user.reset_mfa",
            Verb::Reset(_) => "user.reset_password",
        }
    }
}

/// The roles a new account may be given on the page, with their words.
const ROLES: [(&str, &str); 8] = [
    ("physician", "Physician"),
    ("nurse", "Nurse"),
    ("front_desk", "Front desk"),
    ("billing", "Billing"),
    ("privacy_officer", "Privacy officer"),
    ("admin", "Administrator"),
    ("researcher", "Researcher"),
    ("patient", "Patient (give the Patient record's id)"),
];

fn new_account_form(signed: &Signed, error: Option<&str>, typed: Option<&NewAccountForm>) -> String {
    let value = |f: fn(&NewAccountForm) -> &str| typed.map(|t| escape(f(t))).unwrap_or_default();
    let checked = |role: &str| typed.is_some_and(|t| t.roles().iter().any(|r| r == role));
    let boxes: String = ROLES
        .iter()
        .map(|(role, label)| {
            format!(
                "<label class=\"check\"><input type=\"checkbox\" name=\"role\" value=\"{role}\"{}> {label}</label>",
                if checked(role) { " checked" } else { "" }
            )
        })
        .collect();
    format!(
        "{}<form method=\"post\" action=\"/people/new\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"display_name\">Full name</label><input id=\"display_name\" name=\"display_name\" required \
         autocomplete=\"off\" value=\"{}\">\
         <label for=\"username\">Username</label><input id=\"username\" name=\"username\" required autocomplete=\"off\" \
         value=\"{}\"><fieldset><legend>Roles</legend>{boxes}</fieldset>\
         <label for=\"patient_id\">Patient record id (patients only)</label><input id=\"patient_id\" name=\"patient_id\" \
         autocomplete=\"off\" value=\"{}\"><button type=\"submit\">Request the account</button></form>\
         <p>The account is made with no password anyone knows. It becomes usable once the privacy officer approves it; \
         they give the person the first password in person.</p>",
        error_line(error),
        signed.csrf,
        value(|t| &t.display_name),
        value(|t| &t.username),
        value(|t| &t.patient_id),
    )
}

/// `GET /people/new`.
pub async fn new_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match signed_for(&state, &headers, ids, "/people/new", Action::ManageUsers, "user.new").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = record(&state, &signed, "user.new", Outcome::Success, None, "200").await {
        return r;
    }
    app_page(StatusCode::OK, &signed, "Request a new account", &new_account_form(&signed, None, None))
}

/// The new-account form as posted (`role` repeats, one per ticked box).
#[derive(Debug, Default)]
pub struct NewAccountForm {
    csrf: String,
    display_name: String,
    username: String,
    patient_id: String,
    roles: Vec<String>,
}

impl NewAccountForm {
    fn roles(&self) -> &[String] {
        &self.roles
    }

    fn from_body(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (key, value) in phivault_fhir::parse_query_string(&String::from_utf8_lossy(body)) {
            match key.as_str() {
                "csrf" => form.csrf = value,
                "display_name" => form.display_name = value.trim().to_owned(),
                "username" => form.username = value.trim().to_owned(),
                "patient_id" => form.patient_id = value.trim().to_owned(),
                "role" => form.roles.push(value),
                _ => {}
            }
        }
        form
    }
}

/// `POST /people/new`: a credential request for a second person (separation of duties);
/// without it configured, accounts are made at the console, where the password is handed
/// over, never on this page.
pub async fn request_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    body: axum::body::Bytes,
) -> Response {
    let form = NewAccountForm::from_body(&body);
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match form_signed_in(&state, &headers, ids.0, ids.1, "/people/new", &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let signed = match allowed(&state, signed, Action::ManageUsers, "user.create").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let again = |error: &str| {
        app_page(
            StatusCode::BAD_REQUEST,
            &signed,
            "Request a new account",
            &new_account_form(&signed, Some(error), Some(&form)),
        )
    };
    let refusal = if !state.identity.policy().second_person_approval {
        Some("Accounts are made at the console (phivault user add) while second-person approval is off.")
    } else {
        None
    };
    let roles = parse_roles(&form.roles.join(",")).ok().filter(|r| !r.is_empty());
    if let Some(why) = refusal.or(roles.is_none().then_some("Tick at least one role.")) {
        if let Err(r) = record(&state, &signed, "user.create", Outcome::Failure, None, "400").await {
            return r;
        }
        return again(why);
    }
    let roles = roles.unwrap_or_default();
    let account = NewAccount {
        username: form.username.clone(),
        display_name: form.display_name.clone(),
        roles,
        patient_id: Some(form.patient_id.clone()).filter(|p| !p.is_empty()),
        password: None,
    };
    let requester = signed.caller.principal.user_id.clone().unwrap_or_default();
    match state.identity.create_user_for_approval(account, &requester).await {
        Ok((user, request)) => {
            let target = Some(format!("user:{} request:{}", user.id, request.id));
            if let Err(r) = record(&state, &signed, "user.create", Outcome::Success, target, "201").await {
                return r;
            }
            Redirect::to(&format!("/people/{}", user.id)).into_response()
        }
        Err(e) => {
            if let Err(r) = record(&state, &signed, "user.create", Outcome::Failure, None, "400").await {
                return r;
            }
            again(&e.to_string())
        }
    }
}

/// `GET /approvals`: the credential changes waiting for a second person.
pub async fn approvals(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed =
        match signed_for(&state, &headers, ids, "/approvals", Action::ApproveCredentials, "approval.list").await {
            Ok(s) => s,
            Err(r) => return r,
        };
    approvals_page(&state, &signed, None).await
}

async fn approvals_page(state: &AppState, signed: &Signed, notice: Option<&str>) -> Response {
    let now = state.identity.now_ms();
    let (Ok(requests), Ok(users)) = (state.identity.credential_requests(None).await, state.identity.list_users().await)
    else {
        return unavailable();
    };
    if let Err(r) = record(state, signed, "approval.list", Outcome::Success, None, "200").await {
        return r;
    }
    let name = |id: &str| {
        users.iter().find(|u| u.id == id).map_or_else(
            || "an account no longer listed".to_owned(),
            |u| format!("{} ({})", u.display_name, u.username),
        )
    };
    let pending: Vec<_> = requests.iter().map(|r| r.summary(now)).filter(|r| r.state == "pending").collect();
    let change_words = |change: &str| match change {
        "activate" => "a new account's first password",
        "reset_password" => "a new temporary password",
        "reset_mfa" => "a new second factor",
        _ => "a credential change",
    };
    let items: String = pending
        .iter()
        .map(|r| {
            let form = |verb: &str, label: &str| {
                format!(
                    "<form method=\"post\" action=\"/approvals/{}/{verb}\" class=\"actions\"><input type=\"hidden\" \
                     name=\"csrf\" value=\"{}\"><button type=\"submit\">{label}</button></form>",
                    escape(&r.id),
                    signed.csrf
                )
            };
            // What the approval opens: the account's roles, and for a patient the record
            // it is linked to, so nothing is approved unseen.
            let account = users.iter().find(|u| u.id == r.user_id);
            let roles = account.map(|u| role_words(&u.roles)).unwrap_or_default();
            let linked = account
                .and_then(|u| u.patient_id.as_deref())
                .map(|p| format!("; linked to the Patient record <code>{}</code>", escape(p)))
                .unwrap_or_default();
            format!(
                "<section class=\"item\"><p><strong>{}</strong> for {} — roles: {}{linked}</p><p>Asked by {} at {}; expires {}.</p>{}{}</section>",
                change_words(r.change),
                escape(&name(&r.user_id)),
                escape(&roles),
                escape(&name(&r.requested_by)),
                escape(&phivault_fhir::format_instant(r.requested_ms)),
                escape(&phivault_fhir::format_instant(r.expires_ms)),
                form("approve", "Approve"),
                form("refuse", "Refuse"),
            )
        })
        .collect();
    let body = format!(
        "{}<p>Each change takes effect only when a second person approves it. Approve only what you have checked \
         with the person it is for; you will see a new password once, to give them in person.</p>\
         <h2>Waiting ({})</h2>{}",
        notice.map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", escape(n))).unwrap_or_default(),
        pending.len(),
        if items.is_empty() { "<p>Nothing is waiting.</p>".to_owned() } else { items }
    );
    app_page(StatusCode::OK, signed, "Approvals", &body)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /approvals/{request}/{approve|refuse}`. The approver alone sees an issued
/// password, on this answer only (pages are never cached).
pub async fn decide(
    State(state): State<AppState>,
    Path((request, decision)): Path<(String, String)>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match form_signed_in(&state, &headers, ids.0, ids.1, "/approvals", &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (name, approve) = match decision.as_str() {
        "approve" => ("approval.approve", true),
        "refuse" => ("approval.refuse", false),
        _ => return super::html::page(StatusCode::NOT_FOUND, "Not found", "<p>No such page.</p>"),
    };
    let signed = match allowed(&state, signed, Action::ApproveCredentials, name).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let approver = signed.caller.principal.user_id.clone().unwrap_or_default();
    let decided = if approve {
        state.identity.approve_credential_change(&request, &approver).await.map(|a| (a.request, a.temporary_password))
    } else {
        state.identity.refuse_credential_change(&request, &approver).await.map(|r| (r, None))
    };
    let (decided, password) = match decided {
        Ok(done) => done,
        Err(e) => {
            if let Err(r) = record(&state, &signed, name, Outcome::Denied, None, "403").await {
                return r;
            }
            // The service says why (the asker or the holder cannot approve, already decided).
            let text = e.to_string();
            return app_page(
                StatusCode::FORBIDDEN,
                &signed,
                "Not done",
                &format!(
                    "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/approvals\">Back</a></p>",
                    escape(&text)
                ),
            );
        }
    };
    let target = Some(format!("user:{} request:{}", decided.user_id, decided.id));
    if let Err(r) = record(&state, &signed, name, Outcome::Success, target, "200").await {
        // The decision is made but not recorded: no password leaves unrecorded, and the page
        // says what happened rather than that nothing did.
        if !approve {
            return r;
        }
        return app_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &signed,
            "Not recorded",
            "<p class=\"error\" role=\"alert\">The approval took effect, but the audit trail could not record \
             it, so its password is not shown. Ask the administrator for a new reset once the trail is back, and \
             tell the security officer.</p>",
        );
    }
    let Some(password) = password else {
        let notice = if approve { "Approved: the change has taken effect." } else { "Refused: nothing was changed." };
        return approvals_page(&state, &signed, Some(notice)).await;
    };
    let holder = state.identity.find_user(&decided.user_id).await.map(|u| u.username).unwrap_or_default();
    let hours = state.identity.policy().temporary_password_ms / 3_600_000;
    let body = format!(
        "<p>Give this password to <strong>{}</strong> in person. It is shown only now, must be replaced at the \
         first sign-in (when the second factor is enrolled), and stops working after {hours} hours.</p>\
         <p class=\"secret\"><code>{}</code></p><p><a href=\"/approvals\">Back to approvals</a></p>",
        escape(&holder),
        escape(&password)
    );
    app_page(StatusCode::OK, &signed, "Approved", &body)
}
