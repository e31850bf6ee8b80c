//! A person's own account page: who they are, their roles, their password, and their own
//! sign-ins and app grants, which they can end (a lost laptop, a shared computer left
//! signed in). Every change is recorded (`account.password`, `account.end_session`).
//!
//! Safeguards: 45 CFR 164.312(a)(2)(iii) automatic logoff and session control;
//! 164.308(a)(5)(ii)(D) password management.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use phivault_audit::Outcome;
use phivault_identity::{IdentityError, LoginStage, Role};
use serde::Deserialize;

use super::fhir_view::role_words;
use super::html::{error_line, escape};
use super::shell::{Signed, app_page, form_signed_in, signed_in, unavailable};
use super::stage_path;
use crate::AppState;
use crate::audit::{Origin, record};
use crate::auth::session_cookie;
use crate::client_ip::ClientIp;
use crate::middleware::RequestId;

/// `GET /account`.
pub async fn account(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let Some(secret) = session_cookie(&headers) else { return Redirect::to("/login").into_response() };
    match state.identity.session(&secret).await {
        Ok(view) if view.token.stage != LoginStage::Complete => {
            return Redirect::to(stage_path(view.token.stage)).into_response();
        }
        Ok(_) => {}
        Err(_) => return Redirect::to("/login").into_response(),
    }
    let signed = match signed_in(&state, &headers, client.as_deref(), request_id.as_deref(), "/account").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    account_page(&state, &signed, StatusCode::OK, None, None).await
}

async fn account_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    notice: Option<&str>,
    password_error: Option<&str>,
) -> Response {
    let Some(user_id) = signed.caller.principal.user_id.as_deref() else { return unavailable() };
    let (Ok(user), Ok(sessions)) = (state.identity.find_user(user_id).await, state.identity.sessions(user_id).await)
    else {
        return unavailable();
    };
    let this_grant = &signed.caller.principal.grant_id;
    let end = |grant: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"/account/sessions/end\" class=\"actions\"><input type=\"hidden\" \
             name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"grant\" value=\"{}\"><button type=\"submit\">{label}</button></form>",
            signed.csrf,
            escape(grant)
        )
    };
    let rows: String = sessions
        .iter()
        .map(|g| {
            let what = match (g.kind, g.client_id.as_deref()) {
                ("session" | "sign-in", _) => "a browser sign-in".to_owned(),
                (_, Some(client)) => format!("the app <code>{}</code>", escape(client)),
                (kind, None) => escape(kind),
            };
            let action = if &g.grant == this_grant { "this browser".to_owned() } else { end(&g.grant, "End") };
            format!(
                "<tr><td>{what}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
                escape(&phivault_fhir::format_instant(g.started_ms)),
                escape(&phivault_fhir::format_instant(g.last_seen_ms)),
            )
        })
        .collect();
    let others = sessions.iter().filter(|g| &g.grant != this_grant).count();
    let start = if signed.clinician() {
        "<p><a href=\"/patients\">Go to my patients</a></p>"
    } else if signed.has(Role::PrivacyOfficer) {
        "<p><a href=\"/review\">Go to the review queue</a></p>"
    } else {
        ""
    };
    let body = format!(
        "{}<dl class=\"demographics\"><dt>Name</dt><dd>{}</dd><dt>Username</dt><dd><code>{}</code></dd>\
         <dt>Roles</dt><dd>{}</dd></dl>{start}\
         <h2>Where you are signed in</h2><table><caption>{} sign-ins and app grants</caption><thead><tr>\
         <th scope=\"col\">What</th><th scope=\"col\">Started</th><th scope=\"col\">Last used</th>\
         <th scope=\"col\"><span class=\"visually-hidden\">End</span></th></tr></thead><tbody>{rows}</tbody></table>{}\
         <h2>Change your password</h2>{}<form method=\"post\" action=\"/account/password\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"current\">Current password</label><input id=\"current\" name=\"current\" type=\"password\" \
         autocomplete=\"current-password\" required>\
         <label for=\"new\">New password (at least 12 characters)</label><input id=\"new\" name=\"new\" type=\"password\" \
         autocomplete=\"new-password\" required>\
         <label for=\"repeat\">New password again</label><input id=\"repeat\" name=\"repeat\" type=\"password\" \
         autocomplete=\"new-password\" required><button type=\"submit\">Change password</button></form>\
         <p>Changing the password ends every other sign-in and app grant of yours.</p>",
        notice.map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", escape(n))).unwrap_or_default(),
        escape(&user.display_name),
        escape(&user.username),
        escape(&role_words(&user.roles.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>())),
        sessions.len(),
        if others > 0 { end("all-others", "End every other sign-in") } else { String::new() },
        error_line(password_error),
        signed.csrf,
    );
    app_page(status, signed, "Your account", &body)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordForm(..)")
    }
}

/// `POST /account/password`: a new password; every other sign-in ends, this one goes on
/// under a new cookie.
pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match form_signed_in(&state, &headers, ids.0, ids.1, "/account", &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(secret) = session_cookie(&headers) else { return Redirect::to("/login").into_response() };
    if form.new != form.repeat {
        return account_page(&state, &signed, StatusCode::BAD_REQUEST, None, Some("The two new passwords differ."))
            .await;
    }
    let origin = Origin::of(&headers, ids.0, ids.1);
    let user_id = signed.caller.principal.user_id.clone();
    let result = state.identity.change_password(&secret, &form.current, &form.new).await;
    let (outcome, reason) = super::change_outcome(&result);
    if let Err(refused) = record(&state, &origin, "account.password", outcome, reason, user_id.as_deref(), None).await {
        return refused;
    }
    match result {
        // Back to the account page, or to the sign-in step still due (the new session is
        // issued at the stage the account is at).
        Ok(grant) => super::continue_to(&grant, "/account"),
        Err(e @ (IdentityError::PasswordRejected(_) | IdentityError::WrongCurrentPassword)) => {
            account_page(&state, &signed, StatusCode::BAD_REQUEST, None, Some(&e.to_string())).await
        }
        // Too many wrong current passwords: the account is locked for a while and this
        // sign-in has ended.
        Err(IdentityError::LockedOut) => Redirect::to("/login").into_response(),
        Err(_) => unavailable(),
    }
}

#[derive(Debug, Deserialize)]
pub struct EndForm {
    csrf: String,
    grant: String,
}

/// `POST /account/sessions/end`: one of the person's own other sign-ins or app grants, or
/// (`all-others`) every one but this browser's.
pub async fn end_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientIp>>,
    request_id: Option<axum::Extension<RequestId>>,
    Form(form): Form<EndForm>,
) -> Response {
    let ids = (client.as_deref(), request_id.as_deref());
    let signed = match form_signed_in(&state, &headers, ids.0, ids.1, "/account", &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(user_id) = signed.caller.principal.user_id.clone() else { return unavailable() };
    let this_grant = signed.caller.principal.grant_id.clone();
    let Ok(sessions) = state.identity.sessions(&user_id).await else { return unavailable() };
    // Only the person's own grants, never this browser's (that is "Sign out").
    let chosen: Vec<String> = sessions
        .into_iter()
        .map(|g| g.grant)
        .filter(|g| *g != this_grant && (form.grant == "all-others" || *g == form.grant))
        .collect();
    let mut ended = 0;
    let mut failed = false;
    for grant in &chosen {
        match state.identity.end_session(&user_id, grant).await {
            Ok(true) => ended += 1,
            Ok(false) => {}
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    // Recorded whatever happened: what ended before a failure has ended. Nothing ended is
    // a failure, not a success.
    let origin = Origin::of(&headers, ids.0, ids.1);
    let reason = format!("ended {ended}");
    let target = (chosen.len() == 1).then(|| format!("grant:{}", chosen[0]));
    let outcome = if failed || ended == 0 { Outcome::Failure } else { Outcome::Success };
    if let Err(r) = record(&state, &origin, "account.end_session", outcome, Some(&reason), Some(&user_id), target).await
    {
        return r;
    }
    if failed {
        return unavailable();
    }
    let notice = match ended {
        0 => "Nothing was ended (that sign-in had already ended).".to_owned(),
        1 => "That sign-in has ended.".to_owned(),
        n => format!("{n} sign-ins and app grants have ended."),
    };
    account_page(&state, &signed, StatusCode::OK, Some(&notice), None).await
}
