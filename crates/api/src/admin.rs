//! The admin API: the same account verbs as `phivault user`, for administrators signed in
//! with a second factor. JSON in and out; errors are OperationOutcomes.
//!
//! Safeguards: 45 CFR 164.308(a)(3)(ii)(C) termination procedures, (a)(4) information
//! access management; 164.312(a)(2)(i) unique user identification.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use phivault_fhir::IssueType;
use phivault_identity::{CredentialChange, NewAccount, Role, UserSummary, parse_roles};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::audit::AuditTarget;
use crate::auth::{Caller, identity_error};
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{user}", get(show))
        .route("/users/{user}/lock", post(lock))
        .route("/users/{user}/unlock", post(unlock))
        .route("/users/{user}/deactivate", post(deactivate))
        .route("/users/{user}/reset-password", post(reset_password))
        .route("/users/{user}/reset-mfa", post(reset_mfa))
        .route("/users/{user}/roles", put(set_roles))
        .route("/users/{user}/sessions", get(sessions))
        .route("/users/{user}/sessions/end-all", post(end_all_sessions))
        .route("/users/{user}/sessions/{grant}/end", post(end_session))
        .route("/users/{user}/credential-requests", get(approvals::of_user))
        .route("/approvals", get(approvals::list))
        .route("/approvals/{request}/approve", post(approvals::approve))
        .route("/approvals/{request}/refuse", post(approvals::refuse))
        .route("/care-teams", get(memberships::list).post(memberships::add))
        .route("/care-teams/remove", post(memberships::remove))
        .route("/departments", get(memberships::list).post(memberships::add))
        .route("/departments/remove", post(memberships::remove))
}

/// Middleware after `require_caller`: a session whose user the policies allow to
/// `manage_users` (by default administrators), with MFA. OAuth tokens are refused: account
/// management is not delegated to apps.
pub async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>() else {
        return ApiError::new(StatusCode::UNAUTHORIZED, IssueType::Login, "authentication is required").into_response();
    };
    let p = &caller.principal;
    let client = request.extensions().get::<crate::client_ip::ClientIp>().map(|c| c.0);
    let who = crate::auth::gate::accessor(&state, caller, client, crate::auth::gate::ScopeReach::Unnarrowed);
    // Approving another administrator's credential change is the second person's act, and
    // the policies name who that is (by default the privacy officer, not administrators).
    let relative = request.uri().path().strip_prefix("/admin").unwrap_or(request.uri().path());
    let (action, refusal) = if relative.trim_start_matches('/').starts_with("approvals") {
        (
            phivault_policy::Action::ApproveCredentials,
            "only a second person the policies name may approve credential changes",
        )
    } else {
        (phivault_policy::Action::ManageUsers, "only administrators' own sessions may manage accounts")
    };
    let allowed = p.scopes.is_none() && p.user_id.is_some() && state.records.may(&who, action).await.is_ok();
    if !allowed {
        return ApiError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, refusal).into_response();
    }
    if !p.mfa {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            IssueType::Forbidden,
            "account management requires a second factor",
        )
        .into_response();
    }
    next.run(request).await
}

type Reply = Result<Response, ApiError>;

fn user_json(user: &UserSummary) -> Response {
    Json(user).into_response()
}

async fn list(State(state): State<AppState>) -> Reply {
    let users = state.identity.list_users().await.map_err(identity_error)?;
    Ok(Json(json!({ "users": users })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    username: String,
    display_name: String,
    roles: Vec<String>,
    #[serde(default)]
    patient_id: Option<String>,
}

fn roles_from(list: &[String]) -> Result<Vec<Role>, ApiError> {
    parse_roles(&list.join(",")).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, e.to_string()))
}

/// The signed-in administrator's account id (`require_admin` let only such callers in).
fn acting_user(caller: &Caller) -> Result<&str, ApiError> {
    caller
        .principal
        .user_id
        .as_deref()
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, IssueType::Login, "authentication is required"))
}

/// `POST /admin/users`. With separation of duties (the default) the account is made with no
/// password anyone knows, and its activation waits for a second person, who alone sees the
/// first password; otherwise the administrator gets it, to hand over.
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<CreateUser>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let Json(body) = body.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, format!("bad request body: {}", e.body_text()))
    })?;
    let account = NewAccount {
        username: body.username,
        display_name: body.display_name,
        roles: roles_from(&body.roles)?,
        patient_id: body.patient_id,
        password: None,
    };
    if state.identity.policy().second_person_approval {
        let requester = acting_user(&caller)?;
        let (user, request) =
            state.identity.create_user_for_approval(account, requester).await.map_err(identity_error)?;
        let summary = request.summary(state.identity.now_ms());
        let mut response =
            (StatusCode::CREATED, Json(json!({ "user": user, "credential_request": summary }))).into_response();
        response.extensions_mut().insert(AuditTarget(format!("user:{} request:{}", user.id, summary.id)));
        return Ok(response);
    }
    let (user, password) = state.identity.create_user(account).await.map_err(identity_error)?;
    let mut response =
        (StatusCode::CREATED, Json(json!({ "user": user, "temporary_password": password }))).into_response();
    response.extensions_mut().insert(AuditTarget(format!("user:{}", user.id)));
    Ok(response)
}

async fn show(State(state): State<AppState>, Path(user): Path<String>) -> Reply {
    let record = state.identity.find_user(&user).await.map_err(identity_error)?;
    Ok(user_json(&record.summary(state.identity.now_ms())))
}

async fn lock(State(state): State<AppState>, Path(user): Path<String>) -> Reply {
    Ok(user_json(&state.identity.lock(&user).await.map_err(identity_error)?))
}

async fn unlock(State(state): State<AppState>, Path(user): Path<String>) -> Reply {
    Ok(user_json(&state.identity.unlock(&user).await.map_err(identity_error)?))
}

async fn deactivate(State(state): State<AppState>, Path(user): Path<String>) -> Reply {
    Ok(user_json(&state.identity.deactivate(&user).await.map_err(identity_error)?))
}

/// `POST /admin/users/{user}/reset-password`: with separation of duties, a request for a
/// second person's approval (202, nothing changed yet); otherwise the new temporary password.
async fn reset_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
) -> Reply {
    if state.identity.policy().second_person_approval {
        return approvals::requested(&state, &caller, &user, CredentialChange::ResetPassword).await;
    }
    let password = state.identity.reset_password(&user).await.map_err(identity_error)?;
    Ok(Json(json!({ "temporary_password": password })).into_response())
}

/// `GET /admin/users/{user}/sessions`: the account's live sign-ins and app grants.
async fn sessions(State(state): State<AppState>, Path(user): Path<String>) -> Reply {
    let sessions = state.identity.sessions(&user).await.map_err(identity_error)?;
    let listed: Vec<serde_json::Value> = sessions
        .iter()
        .map(|g| {
            json!({
                "grant": g.grant,
                "kind": g.kind,
                "client_id": g.client_id,
                "started": phivault_fhir::format_instant(g.started_ms),
                "last_seen": phivault_fhir::format_instant(g.last_seen_ms),
                "expires": phivault_fhir::format_instant(g.expires_ms),
                "mfa": g.mfa,
            })
        })
        .collect();
    Ok(Json(json!({ "sessions": listed })).into_response())
}

/// `POST /admin/users/{user}/sessions/{grant}/end`: ends one sign-in or app grant.
async fn end_session(State(state): State<AppState>, Path((user, grant)): Path<(String, String)>) -> Reply {
    if !state.identity.end_session(&user, &grant).await.map_err(identity_error)? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, IssueType::NotFound, "the account holds no such grant"));
    }
    Ok(Json(json!({ "ended": grant })).into_response())
}

/// `POST /admin/users/{user}/sessions/end-all`: ends every sign-in and app grant.
async fn end_all_sessions(State(state): State<AppState>, Path(user): Path<String>) -> Reply {
    let ended = state.identity.end_all_sessions(&user).await.map_err(identity_error)?;
    Ok(Json(json!({ "ended": ended })).into_response())
}

/// `POST /admin/users/{user}/reset-mfa`: like a password reset, waits for a second person.
async fn reset_mfa(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
) -> Reply {
    if state.identity.policy().second_person_approval {
        return approvals::requested(&state, &caller, &user, CredentialChange::ResetMfa).await;
    }
    Ok(user_json(&state.identity.reset_mfa(&user).await.map_err(identity_error)?))
}

/// Credential changes awaiting a second person (separation of duties), and that person's
/// approval or refusal. The approver alone sees an issued password, once.
mod approvals {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::{Extension, Json};
    use phivault_identity::{CredentialChange, CredentialRequest};
    use serde_json::json;

    use super::{Reply, acting_user};
    use crate::AppState;
    use crate::audit::AuditTarget;
    use crate::auth::{Caller, identity_error};

    fn listed(state: &AppState, requests: &[CredentialRequest]) -> Response {
        let now = state.identity.now_ms();
        let listed: Vec<_> = requests.iter().map(|r| r.summary(now)).collect();
        Json(json!({ "credential_requests": listed })).into_response()
    }

    pub(super) async fn requested(state: &AppState, caller: &Caller, user: &str, change: CredentialChange) -> Reply {
        let requester = acting_user(caller)?;
        let request =
            state.identity.request_credential_change(user, change, requester).await.map_err(identity_error)?;
        let summary = request.summary(state.identity.now_ms());
        let mut response = (StatusCode::ACCEPTED, Json(json!({ "credential_request": summary }))).into_response();
        response.extensions_mut().insert(AuditTarget(format!("user:{} request:{}", request.user_id, request.id)));
        Ok(response)
    }

    /// `GET /admin/approvals`: every account's requests, newest first.
    pub(super) async fn list(State(state): State<AppState>) -> Reply {
        let requests = state.identity.credential_requests(None).await.map_err(identity_error)?;
        Ok(listed(&state, &requests))
    }

    /// `GET /admin/users/{user}/credential-requests`: one account's, for its administrator.
    pub(super) async fn of_user(State(state): State<AppState>, Path(user): Path<String>) -> Reply {
        let requests = state.identity.credential_requests(Some(&user)).await.map_err(identity_error)?;
        Ok(listed(&state, &requests))
    }

    /// `POST /admin/approvals/{request}/approve`.
    pub(super) async fn approve(
        State(state): State<AppState>,
        Extension(caller): Extension<Caller>,
        Path(request): Path<String>,
    ) -> Reply {
        let approver = acting_user(&caller)?;
        let approved = state.identity.approve_credential_change(&request, approver).await.map_err(identity_error)?;
        let now = state.identity.now_ms();
        let holder = state.identity.find_user(&approved.request.user_id).await.map_err(identity_error)?;
        let mut body = json!({ "credential_request": approved.request.summary(now) });
        if let Some(password) = approved.temporary_password {
            let hours = state.identity.policy().temporary_password_ms / 3_600_000;
            body["temporary_password"] = json!(password);
            body["hand_over"] = json!(format!(
                "Give this password to {} in person. It is shown only now, must be replaced at the first \
                 sign-in (when the second factor is enrolled), and stops working after {hours} hours.",
                holder.username
            ));
        }
        let mut response = Json(body).into_response();
        response
            .extensions_mut()
            .insert(AuditTarget(format!("user:{} request:{}", approved.request.user_id, approved.request.id)));
        Ok(response)
    }

    /// `POST /admin/approvals/{request}/refuse`.
    pub(super) async fn refuse(
        State(state): State<AppState>,
        Extension(caller): Extension<Caller>,
        Path(request): Path<String>,
    ) -> Reply {
        let approver = acting_user(&caller)?;
        let refused = state.identity.refuse_credential_change(&request, approver).await.map_err(identity_error)?;
        let mut response =
            Json(json!({ "credential_request": refused.summary(state.identity.now_ms()) })).into_response();
        response.extensions_mut().insert(AuditTarget(format!("user:{} request:{}", refused.user_id, refused.id)));
        Ok(response)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRoles {
    roles: Vec<String>,
}

async fn set_roles(
    State(state): State<AppState>,
    Path(user): Path<String>,
    body: Result<Json<SetRoles>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let Json(body) = body.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, format!("bad request body: {}", e.body_text()))
    })?;
    let roles = roles_from(&body.roles)?;
    Ok(user_json(&state.identity.set_roles(&user, roles).await.map_err(identity_error)?))
}

/// Care-team and department memberships through the admin API. Gated like the account
/// verbs, and additionally by the policies' `manage_care_teams`.
mod memberships {
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::{Extension, Json};
    use phivault_fhir::IssueType;
    use phivault_service::access::AssignmentKind;
    use serde::Deserialize;
    use serde_json::json;

    use crate::AppState;
    use crate::audit::Touched;
    use crate::auth::gate::{ScopeReach, accessor};
    use crate::auth::{Caller, identity_error};
    use crate::error::ApiError;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Membership {
        user: String,
        /// A Patient id (care teams) or an Organization id (departments).
        id: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Filter {
        user: Option<String>,
        id: Option<String>,
    }

    fn kind(path: &str) -> AssignmentKind {
        if path.contains("/departments") { AssignmentKind::Department } else { AssignmentKind::CareTeam }
    }

    async fn allowed(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
        let who = accessor(state, caller, None, ScopeReach::Unnarrowed);
        state.records.may(&who, phivault_policy::Action::ManageCareTeams).await.map(|_| ()).map_err(ApiError::from)
    }

    fn bad_body(e: axum::extract::rejection::JsonRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, format!("bad request body: {}", e.body_text()))
    }

    /// The audit entry names the account and, for a care team, the patient.
    fn touched(response: &mut Response, kind: AssignmentKind, user_id: &str, id: &str) {
        let patient_ids = if kind == AssignmentKind::CareTeam { vec![id.to_owned()] } else { Vec::new() };
        response.extensions_mut().insert(Touched { resource_ids: Vec::new(), patient_ids });
        response.extensions_mut().insert(crate::audit::AuditTarget(format!("user:{user_id}")));
    }

    /// `POST /admin/care-teams` or `/admin/departments` `{"user", "id"}`.
    pub(super) async fn add(
        State(state): State<AppState>,
        Extension(caller): Extension<Caller>,
        uri: axum::http::Uri,
        body: Result<Json<Membership>, axum::extract::rejection::JsonRejection>,
    ) -> Result<Response, ApiError> {
        allowed(&state, &caller).await?;
        let Json(body) = body.map_err(bad_body)?;
        let account = state.identity.find_user(&body.user).await.map_err(identity_error)?;
        let roles: Vec<String> = account.roles.iter().map(|r| r.as_str().to_owned()).collect();
        let actor = caller.principal.user_id.clone().unwrap_or_default();
        let kind = kind(uri.path());
        let added = state.records.add_membership(kind, &account.id, &roles, &body.id, &actor).await?;
        let status = if added { StatusCode::CREATED } else { StatusCode::OK };
        let mut response = (status, Json(json!({"user": account.id, "id": body.id, "added": added}))).into_response();
        touched(&mut response, kind, &account.id, &body.id);
        Ok(response)
    }

    /// `POST /admin/care-teams/remove` or `/admin/departments/remove` `{"user", "id"}`.
    pub(super) async fn remove(
        State(state): State<AppState>,
        Extension(caller): Extension<Caller>,
        uri: axum::http::Uri,
        body: Result<Json<Membership>, axum::extract::rejection::JsonRejection>,
    ) -> Result<Response, ApiError> {
        allowed(&state, &caller).await?;
        let Json(body) = body.map_err(bad_body)?;
        let account = state.identity.find_user(&body.user).await.map_err(identity_error)?;
        let kind = kind(uri.path());
        let removed = state.records.remove_membership(kind, &account.id, &body.id).await?;
        let mut response = Json(json!({"user": account.id, "id": body.id, "removed": removed})).into_response();
        touched(&mut response, kind, &account.id, &body.id);
        Ok(response)
    }

    /// `GET /admin/care-teams?user=&id=` or `/admin/departments?...`.
    pub(super) async fn list(
        State(state): State<AppState>,
        Extension(caller): Extension<Caller>,
        uri: axum::http::Uri,
        Query(filter): Query<Filter>,
    ) -> Result<Response, ApiError> {
        allowed(&state, &caller).await?;
        let user_id = match &filter.user {
            Some(u) => Some(state.identity.find_user(u).await.map_err(identity_error)?.id),
            None => None,
        };
        let rows = state.records.memberships(kind(uri.path()), user_id.as_deref(), filter.id.as_deref()).await?;
        let rows: Vec<_> = rows
            .iter()
            .map(|r| json!({"user": r.user_id, "id": r.value, "by": r.assigned_by, "since_ms": r.assigned_ms}))
            .collect();
        Ok(Json(json!({"memberships": rows})).into_response())
    }
}
