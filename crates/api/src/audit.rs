//! Every `/fhir` request leaves an audit entry: who, what, which records, from where, and
//! the outcome, including refusals (401, 403). The guarded operations write their own
//! entries (a write's in its own transaction, a read's before the records leave, a refused
//! read's with its patient); this layer writes one only for a request no operation
//! recorded: refused before any record was reached (401, a scope, bad input), or failed.
//! Fail closed: the response is released only once its entry is durable; if the trail
//! cannot be written, the caller gets 503 and none of the records.
//!
//! Safeguards: 45 CFR 164.312(b) audit controls; ONC 170.315(d)(2), (d)(10).

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use phivault_audit::{AuditEvent, Outcome, clip};
use phivault_fhir::IssueType;
use phivault_service::StoredResource;
use phivault_service::access::{Origin as TrailOrigin, Trail};
use tokio::sync::oneshot;

use crate::AppState;
use crate::auth::Caller;
use crate::client_ip::ClientIp;
use crate::error::{ApiError, PolicyTrace};
use crate::middleware::RequestId;

/// Work a handler may start only once its request's audit entry is durable (a bulk export
/// job): [`audit_fhir`] releases it after writing the entry, and drops it unreleased when
/// the entry cannot be written, so the work never starts unrecorded.
#[derive(Debug, Clone)]
pub struct ReleaseAfterAudit(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl ReleaseAfterAudit {
    /// The handle for the response's extensions, and what the work awaits: `Ok` once the
    /// entry is durable, `Err` when it is not (or the response never reached the trail).
    pub fn new() -> (Self, oneshot::Receiver<()>) {
        let (sender, receiver) = oneshot::channel();
        (Self(Arc::new(Mutex::new(Some(sender)))), receiver)
    }

    fn release(&self) {
        let sender = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(sender) = sender {
            let _ = sender.send(());
        }
    }
}

/// Resources a handler returned or wrote, put in the response's extensions for the audit
/// entry (ids only).
#[derive(Debug, Clone, Default)]
pub struct Touched {
    pub resource_ids: Vec<String>,
    pub patient_ids: Vec<String>,
}

impl Touched {
    pub fn of<'a>(resources: impl IntoIterator<Item = &'a StoredResource>) -> Self {
        let mut t = Touched::default();
        for r in resources {
            t.resource_ids.push(format!("{}/{}", r.resource_type, r.id));
            if let Some(p) = phivault_fhir::patient_compartment(&r.resource_type, &r.id, &r.body)
                && !t.patient_ids.contains(&p)
            {
                t.patient_ids.push(p);
            }
        }
        t
    }
}

pub async fn audit_fhir(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let relative = path.strip_prefix("/fhir").unwrap_or(&path).to_owned();
    let source_ip = request.extensions().get::<ClientIp>().map(|c| c.0.to_string());
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone());
    let user_agent = request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|v| clip(v, 200));
    // Only a recognised purpose is recorded (an unknown one is refused by the gate).
    let purpose = crate::auth::gate::declared_purpose(request.headers()).ok().flatten();
    // The same classification the access gate applies: one reading of the request, and the
    // one place action names come from.
    let action = crate::auth::gate::classify(&method, &relative).map_or("other", |a| a.action);
    // Writes record their own entries, committed with the change (see
    // `phivault_service::access::Trail`); this layer records the request only if none did.
    let trail = Trail::new(TrailOrigin {
        action: action.to_owned(),
        source_ip: source_ip.clone(),
        user_agent: user_agent.clone(),
        request_id: request_id.clone(),
        purpose_of_use: purpose.map(str::to_owned),
        ..TrailOrigin::default()
    });
    let mut request = request;
    request.extensions_mut().insert(trail.clone());
    let mut response = next.run(request).await;
    if trail.recorded() {
        if let Some(release) = response.extensions_mut().remove::<ReleaseAfterAudit>() {
            release.release();
        }
        return response;
    }

    let status = response.status();
    let outcome = match status.as_u16() {
        200..=399 => Outcome::Success,
        401 | 403 => Outcome::Denied,
        _ => Outcome::Failure,
    };
    let mut event = AuditEvent::new(state.identity.now_ms(), action, outcome, state.audit.node());
    event.reason = Some(status.as_u16().to_string());
    event.source_ip = source_ip;
    event.user_agent = user_agent;
    event.request_id = request_id;
    event.purpose_of_use = purpose.map(str::to_owned);
    let segments: Vec<&str> = relative.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    // Only names FHIR defines go into the trail from the path; anything else is client text.
    if let Some(t) = segments.first().filter(|t| phivault_fhir::is_resource_type(t)) {
        event.resource_type = Some((*t).to_owned());
        if let Some(id) = segments.get(1).filter(|s| !s.starts_with('_')) {
            // Client text that is not a valid id is never stored as given (it could be an
            // SSN typed into the URL): a marker only, no digest (a digest of an SSN can be
            // reversed by trying every number).
            if phivault_fhir::is_valid_id(id) {
                event.resource_ids.push(format!("{t}/{id}"));
            } else {
                event.resource_ids.push(format!("{t}/(invalid id)"));
            }
        }
    }
    if let Some(caller) = response.extensions().get::<Caller>() {
        let p = &caller.principal;
        event.user_id = p.user_id.clone();
        event.roles = p.roles.iter().map(|r| r.as_str().to_owned()).collect();
        event.client_id = p.client_id.clone();
        event.grant_id = Some(p.grant_id.clone());
    }
    if let Some(PolicyTrace(policies)) = response.extensions_mut().remove::<PolicyTrace>() {
        event.policies = policies;
    }
    if let Some(touched) = response.extensions_mut().remove::<Touched>() {
        for id in touched.resource_ids {
            if !event.resource_ids.contains(&id) {
                event.resource_ids.push(id);
            }
        }
        event.patient_ids = touched.patient_ids;
    }
    let release = response.extensions_mut().remove::<ReleaseAfterAudit>();
    match state.audit.record(&event).await {
        Ok(_) => {
            if let Some(release) = release {
                release.release();
            }
            response
        }
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueType::Exception,
            "the audit trail is unavailable, so the request was not completed",
        )
        .into_response(),
    }
}

/// The account or client an administrative request applied to, when its path does not
/// name it (a JSON body did); read by [`audit_admin`].
#[derive(Debug, Clone)]
pub struct AuditTarget(pub String);

/// What an audited non-FHIR request carries: where it came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Origin {
    pub fn of(headers: &axum::http::HeaderMap, client: Option<&ClientIp>, request_id: Option<&RequestId>) -> Self {
        Self {
            source_ip: client.map(|c| c.0.to_string()),
            user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|v| clip(v, 200)),
            request_id: request_id.map(|r| r.0.clone()),
        }
    }
}

impl Origin {
    /// Gives `accessor` this origin for the entries its operations commit themselves.
    pub fn onto(&self, accessor: &mut phivault_service::access::Accessor) {
        let trail = &mut accessor.trail.origin;
        trail.source_ip.clone_from(&self.source_ip);
        trail.user_agent.clone_from(&self.user_agent);
        trail.request_id.clone_from(&self.request_id);
    }
}

/// An entry for something a signed-in caller did outside `/fhir`: who (account, roles,
/// grant) and from where, for the caller to complete with what was touched.
pub fn caller_event(state: &AppState, caller: &Caller, origin: Origin, action: &str, outcome: Outcome) -> AuditEvent {
    let mut event = AuditEvent::new(state.identity.now_ms(), action, outcome, state.audit.node());
    event.user_id = caller.principal.user_id.clone();
    event.roles = caller.principal.roles.iter().map(|r| r.as_str().to_owned()).collect();
    event.client_id = caller.principal.client_id.clone();
    event.grant_id = Some(caller.principal.grant_id.clone());
    event.source_ip = origin.source_ip;
    event.user_agent = origin.user_agent;
    event.request_id = origin.request_id;
    event
}

/// Writes `event` durably; the 503 to answer when it cannot be (fail closed).
pub async fn write(state: &AppState, event: &AuditEvent) -> Result<(), ApiError> {
    state.audit.record(event).await.map(|_| ()).map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueType::Exception,
            "the audit trail is unavailable, so the request was not completed",
        )
    })
}

/// Records a sign-in, OAuth or administration event; `Err` is the 503 to answer instead
/// (fail closed: an action whose entry cannot be written is not reported as done).
#[allow(clippy::result_large_err, reason = "the error is the response itself")]
pub async fn record(
    state: &AppState,
    origin: &Origin,
    action: &str,
    outcome: Outcome,
    reason: Option<&str>,
    user_id: Option<&str>,
    target: Option<String>,
) -> Result<(), Response> {
    let mut event = AuditEvent::new(state.identity.now_ms(), action, outcome, state.audit.node());
    event.reason = reason.map(str::to_owned);
    event.user_id = user_id.map(str::to_owned);
    event.target = target;
    event.source_ip = origin.source_ip.clone();
    event.user_agent = origin.user_agent.clone();
    event.request_id = origin.request_id.clone();
    state.audit.record(&event).await.map(|_| ()).map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueType::Exception,
            "the audit trail is unavailable, so the request was not completed",
        )
        .into_response()
    })
}

/// Every admin API request leaves an entry (`admin.<verb>`, the target account, outcome),
/// and its response waits for it, as for `/fhir`.
pub async fn audit_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let origin =
        Origin::of(request.headers(), request.extensions().get::<ClientIp>(), request.extensions().get::<RequestId>());
    let response = next.run(request).await;
    // Inside the nested router the path may arrive without its `/admin` prefix.
    let relative = path.strip_prefix("/admin").unwrap_or(&path);
    let segments: Vec<&str> = relative.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    // users, users/{user}, users/{user}/{verb}
    let (verb, target) = match (method.as_str(), segments.as_slice()) {
        ("GET", ["users"]) => ("admin.user.list", None),
        ("POST", ["users"]) => ("admin.user.create", None),
        ("GET", ["users", u]) => ("admin.user.show", Some(*u)),
        ("PUT", ["users", u, "roles"]) => ("admin.user.set_roles", Some(*u)),
        ("POST", ["users", u, "lock"]) => ("admin.user.lock", Some(*u)),
        ("POST", ["users", u, "unlock"]) => ("admin.user.unlock", Some(*u)),
        ("POST", ["users", u, "deactivate"]) => ("admin.user.deactivate", Some(*u)),
        ("POST", ["users", u, "reset-password"]) => ("admin.user.reset_password", Some(*u)),
        ("POST", ["users", u, "reset-mfa"]) => ("admin.user.reset_mfa", Some(*u)),
        ("GET", ["users", u, "sessions"]) => ("admin.user.sessions", Some(*u)),
        ("POST", ["users", u, "sessions", "end-all"]) => ("admin.user.end_all_sessions", Some(*u)),
        ("POST", ["users", u, "sessions", _, "end"]) => ("admin.user.end_session", Some(*u)),
        ("GET", ["users", u, "credential-requests"]) => ("admin.user.credential_requests", Some(*u)),
        ("GET", ["approvals"]) => ("admin.approval.list", None),
        ("POST", ["approvals", _, "approve"]) => ("admin.approval.approve", None),
        ("POST", ["approvals", _, "refuse"]) => ("admin.approval.refuse", None),
        ("GET", ["care-teams"]) => ("admin.careteam.list", None),
        ("POST", ["care-teams"]) => ("admin.careteam.add", None),
        ("POST", ["care-teams", "remove"]) => ("admin.careteam.remove", None),
        ("GET", ["departments"]) => ("admin.department.list", None),
        ("POST", ["departments"]) => ("admin.department.add", None),
        ("POST", ["departments", "remove"]) => ("admin.department.remove", None),
        _ => ("admin.other", None),
    };
    let status = response.status();
    let outcome = match status.as_u16() {
        200..=399 => Outcome::Success,
        401 | 403 => Outcome::Denied,
        _ => Outcome::Failure,
    };
    let mut response = response;
    let mut event = AuditEvent::new(state.identity.now_ms(), verb, outcome, state.audit.node());
    event.reason = Some(status.as_u16().to_string());
    event.user_id = response.extensions().get::<Caller>().and_then(|c| c.principal.user_id.clone());
    event.source_ip = origin.source_ip;
    event.user_agent = origin.user_agent;
    event.request_id = origin.request_id;
    event.target = match (target, response.extensions_mut().remove::<AuditTarget>()) {
        // What the handler resolved (account and request ids) beats the path's text.
        (_, Some(AuditTarget(t))) => Some(clip(&t, 128)),
        // Ending one grant names it too (`user:<id> grant:<id>`).
        // The grant is client text from the path: recorded only if it has the shape of a
        // grant id (random URL-safe characters), else as a marker.
        (Some(t), _) if verb == "admin.user.end_session" => {
            let grant = segments.get(3).copied().unwrap_or_default();
            let shaped = !grant.is_empty()
                && grant.len() <= 48
                && grant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            Some(format!("user:{} grant:{}", clip(t, 64), if shaped { grant } else { "(invalid id)" }))
        }
        (Some(t), _) => Some(format!("user:{}", clip(t, 64))),
        (None, None) => None,
    };
    if let Some(touched) = response.extensions_mut().remove::<Touched>() {
        event.patient_ids = touched.patient_ids.iter().map(|p| clip(p, 64)).collect();
    }
    match write(&state, &event).await {
        Ok(()) => response,
        Err(refused) => refused.into_response(),
    }
}
