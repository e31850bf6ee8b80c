//! The gate in front of `/fhir`: classifies the request, checks an OAuth token's scopes
//! (which only ever narrow), and hands the access layer the caller as an [`Accessor`]. The
//! decision itself (role, relationship, labels, zone) is the policies', in
//! `phivault_service::access`.
//!
//! Safeguards: 45 CFR 164.312(a)(1) access control; 164.502(b) minimum necessary.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use phivault_fhir::IssueType;
use phivault_identity::scopes::{Permissions, ScopeContext, ScopeSet};
use phivault_identity::{Principal, Role};
use phivault_policy::RequestFacts;
use phivault_service::access::{Accessor, Requester, Trail};
use std::net::IpAddr;

use super::Caller;
use crate::AppState;
use crate::client_ip::ClientIp;
use crate::error::ApiError;

/// What a `/fhir` request does, read from its method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirAccess {
    /// `None` for a batch or transaction Bundle posted to the base.
    pub resource_type: Option<String>,
    pub id: Option<String>,
    pub needs: Permissions,
    /// The audit trail's name for it: `read`, `vread`, `search`, `history`, `create`,
    /// `update`, `batch`.
    pub action: &'static str,
}

/// Classifies `method` on `path` (relative to `/fhir`). `None` for what the router
/// answers without touching records (unknown paths, `metadata`).
pub fn classify(method: &Method, path: &str) -> Option<FhirAccess> {
    // HEAD runs the GET handler (headers such as ETag and Content-Length included).
    let method = if method == Method::HEAD { &Method::GET } else { method };
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let owned = |s: &str| Some(s.to_owned());
    const BUNDLE: Permissions =
        Permissions::CREATE.union(Permissions::READ).union(Permissions::UPDATE).union(Permissions::SEARCH);
    // Bulk export reaches every type: only wildcard scopes (`system/*.rs`, `user/*.rs`) cover it.
    const EXPORT: Permissions = Permissions::READ.union(Permissions::SEARCH);
    let (resource_type, id, needs, action) = match (method, segments.as_slice()) {
        // Kick-off: GET, or POST with a Parameters body (Bulk Data IG 2.0).
        (&Method::GET | &Method::POST, ["$export"]) => (None, None, EXPORT, "export"),
        (&Method::GET | &Method::POST, ["Patient", "$export"]) => (None, None, EXPORT, "export"),
        (&Method::GET | &Method::POST, ["Group", id, "$export"]) => (None, owned(id), EXPORT, "export"),
        // The whole compartment: every type, so only wildcard scopes cover it (with
        // patient-level scopes, only for the launch patient).
        (&Method::GET | &Method::POST, ["Patient", id, "$everything"]) => (None, owned(id), EXPORT, "everything"),
        // Compartment search: a search of the type, within the patient's compartment.
        (&Method::GET, ["Patient", _, t]) if phivault_fhir::patient_compartment_types().any(|c| c == *t) => {
            (owned(t), None, Permissions::SEARCH, "search")
        }
        (&Method::GET, ["$export-status", _]) => (None, None, EXPORT, "export.status"),
        (&Method::DELETE, ["$export-status", _]) => (None, None, EXPORT, "export.cancel"),
        (&Method::GET, ["$export-file", _, _]) => (None, None, EXPORT, "export.download"),
        (_, [first, ..]) if first.starts_with('$') => return None,
        (_, [_, second, ..]) if second.starts_with('$') => return None,
        (_, [_, _, third, ..]) if third.starts_with('$') => return None,
        (&Method::POST, []) => (None, None, BUNDLE, "batch"),
        (&Method::GET, [t]) => (owned(t), None, Permissions::SEARCH, "search"),
        (&Method::POST, [t]) => (owned(t), None, Permissions::CREATE, "create"),
        (&Method::POST, [t, "_search"]) => (owned(t), None, Permissions::SEARCH, "search"),
        (&Method::GET, [t, "_history"]) => (owned(t), None, Permissions::SEARCH, "history"),
        (&Method::GET, [t, id]) => (owned(t), owned(id), Permissions::READ, "read"),
        (&Method::GET, [t, id, "_history"]) => (owned(t), owned(id), Permissions::READ, "history"),
        (&Method::GET, [t, id, "_history", _]) => (owned(t), owned(id), Permissions::READ, "vread"),
        (&Method::PUT, [t, id]) => (owned(t), owned(id), Permissions::UPDATE, "update"),
        _ => return None,
    };
    Some(FhirAccess { resource_type, id, needs, action })
}

/// Why a request is refused, in words safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Scope,
}

/// What an OAuth token's scopes leave open: everything the policies allow, or (with
/// patient-level scopes only) the launch patient's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeReach {
    Unnarrowed,
    LaunchPatient(String),
}

/// Decides whether `principal`'s scopes cover `access`. Roles and relationships are the
/// policies' business (in the access layer); scopes only ever narrow them.
pub fn check(principal: &Principal, access: &FhirAccess) -> Result<ScopeReach, Refusal> {
    let Some(scopes) = &principal.scopes else {
        // A browser session: the role's rights, unnarrowed.
        return if principal.user_id.is_some() { Ok(ScopeReach::Unnarrowed) } else { Err(Refusal::Scope) };
    };
    let scopes = ScopeSet::parse(scopes);
    let types: Vec<&str> = match &access.resource_type {
        Some(t) => vec![t.as_str()],
        // A Bundle may touch any type: only wildcard scopes can cover it.
        None => vec!["*"],
    };
    let granted = |context: ScopeContext| {
        types.iter().all(|t| {
            if *t == "*" {
                scopes
                    .clinical
                    .iter()
                    .any(|s| s.context == context && s.resource_type.is_none() && s.permissions.contains(access.needs))
            } else {
                scopes.allows(context, t, access.needs)
            }
        })
    };
    if principal.user_id.is_none() {
        return if granted(ScopeContext::System) { Ok(ScopeReach::Unnarrowed) } else { Err(Refusal::Scope) };
    }
    if granted(ScopeContext::User) {
        return Ok(ScopeReach::Unnarrowed);
    }
    match &principal.launch_patient {
        // Patient-level scopes reach the launch patient's compartment only.
        Some(patient) if granted(ScopeContext::Patient) => Ok(ScopeReach::LaunchPatient(patient.clone())),
        _ => Err(Refusal::Scope),
    }
}

/// The header in which a client declares why it asks (HL7 v3 PurposeOfUse).
pub const PURPOSE_HEADER: &str = "x-purpose-of-use";

/// A purpose of use that is not one phivault knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPurpose;

/// The declared purpose of use, in the policies' words: HL7 v3 PurposeOfUse codes or the
/// words themselves. `Ok(None)` when none is declared (the policies then see `treatment`);
/// `Err` for anything else, which is refused rather than guessed.
pub fn declared_purpose(headers: &axum::http::HeaderMap) -> Result<Option<&'static str>, UnknownPurpose> {
    let Some(value) = headers.get(PURPOSE_HEADER) else { return Ok(None) };
    let value = value.to_str().map_err(|_| UnknownPurpose)?.trim();
    let purpose = match value.to_ascii_uppercase().as_str() {
        "TREAT" | "TREATMENT" => "treatment",
        "ETREAT" | "EMERGENCY" => "emergency",
        "HPAYMT" | "PAYMENT" => "payment",
        "HOPERAT" | "OPERATIONS" => "operations",
        "PUBHLTH" | "PUBLIC_HEALTH" => "public_health",
        "HRESCH" | "RESEARCH" => "research",
        "PATRQT" | "PATIENT_REQUEST" => "patient_request",
        _ => return Err(UnknownPurpose),
    };
    Ok(Some(purpose))
}

/// The access layer's view of the caller of this request.
pub fn accessor(state: &AppState, caller: &Caller, client: Option<IpAddr>, reach: ScopeReach) -> Accessor {
    let p = &caller.principal;
    let requester = match &p.user_id {
        Some(user_id) => Requester::User {
            user_id: user_id.clone(),
            roles: p.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            own_patient: p.patient_id.clone().filter(|_| p.roles.contains(&Role::Patient)),
            mfa: p.mfa,
            authenticated_ms: p.authenticated_ms,
            via_app: p.client_id.is_some(),
        },
        None => Requester::Client { client_id: p.client_id.clone().unwrap_or_default() },
    };
    let now_secs = state.identity.now_ms().div_euclid(1000);
    let request = RequestFacts {
        zone: state.config.zones.zone_of(client).to_owned(),
        hour: now_secs.rem_euclid(86_400) / 3600,
        purpose_of_use: "treatment".to_owned(),
    };
    // The context the token's scopes were granted in for this request (what `check` found).
    let context = match (&reach, &p.user_id) {
        (ScopeReach::LaunchPatient(_), _) => ScopeContext::Patient,
        (ScopeReach::Unnarrowed, Some(_)) => ScopeContext::User,
        (ScopeReach::Unnarrowed, None) => ScopeContext::System,
    };
    let scopes = p.scopes.as_deref().map(ScopeSet::parse);
    let readable_types = scopes.as_ref().and_then(|s| scoped_types(s, context, Permissions::READ));
    let searchable_types = scopes.as_ref().and_then(|s| scoped_types(s, context, Permissions::SEARCH));
    let launch_patient = match reach {
        ScopeReach::Unnarrowed => None,
        ScopeReach::LaunchPatient(p) => Some(p),
    };
    let mut trail = Trail::default();
    trail.origin.grant_id = Some(p.grant_id.clone());
    trail.origin.client_id = p.client_id.clone();
    Accessor { requester, request, launch_patient, readable_types, searchable_types, trail }
}

/// The types a token's scopes let it `needed` (read, or search) in `context`: `None` when a
/// wildcard scope (`patient/*.rs`) covers every type.
fn scoped_types(scopes: &ScopeSet, context: ScopeContext, needed: Permissions) -> Option<Vec<String>> {
    let reading = scopes.clinical.iter().filter(|s| s.context == context && s.permissions.contains(needed));
    let mut types = Vec::new();
    for scope in reading {
        match &scope.resource_type {
            None => return None,
            Some(t) if !types.contains(t) => types.push(t.clone()),
            Some(_) => {}
        }
    }
    Some(types)
}

/// Middleware after [`super::require_caller`]: refuses what the caller's role or scopes
/// do not allow, with 403 and (for scopes) an RFC 6750 `insufficient_scope` challenge.
/// Whether the client accepts the one format served, JSON (NDJSON for Bulk Data files): `_format` (R4's override of
/// `Accept`) must name JSON if given, and an `Accept` header must allow it. A client asking
/// for XML gets 406, not JSON it cannot read under a 200.
fn json_acceptable(request: &Request) -> bool {
    let is_json = |media: &str| {
        let media = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        matches!(
            media.as_str(),
            "json"
                | "application/json"
                | "application/fhir+json"
                | "application/fhir+ndjson"
                | "application/ndjson"
                | "ndjson"
                | "*/*"
                | "application/*"
        )
    };
    // Runs on every FHIR request: the query is decoded only when it can name `_format`
    // (`%5F` included).
    let format =
        request.uri().query().filter(|q| q.contains("format")).and_then(|q| {
            phivault_fhir::parse_query_string(q).into_iter().find(|(k, _)| k == "_format").map(|(_, v)| v)
        });
    if let Some(format) = format {
        return is_json(&format);
    }
    match request.headers().get(axum::http::header::ACCEPT).map(|v| v.to_str()) {
        None => true,
        Some(Ok(accept)) => accept.trim().is_empty() || accept.split(',').any(is_json),
        Some(Err(_)) => false,
    }
}

pub async fn fhir_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>() else {
        return ApiError::new(StatusCode::UNAUTHORIZED, IssueType::Login, "authentication is required").into_response();
    };
    if !json_acceptable(&request) {
        return ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            IssueType::NotSupported,
            "this server answers in FHIR JSON only (application/fhir+json); ask for _format=json",
        )
        .into_response();
    }
    let path = request.uri().path();
    let path = path.strip_prefix("/fhir").unwrap_or(path);
    let Some(access) = classify(request.method(), path) else {
        // An interaction that does not exist on an endpoint that does (POST to an instance,
        // PUT to a type): 405 naming the methods it takes, as HTTP says.
        let allowed: Vec<&str> = [Method::GET, Method::POST, Method::PUT]
            .iter()
            .filter(|m| classify(m, path).is_some())
            .map(Method::as_str)
            .collect();
        if !allowed.is_empty() {
            let mut response = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                IssueType::NotSupported,
                format!("this endpoint takes {}", allowed.join(", ")),
            )
            .into_response();
            if let Ok(value) = axum::http::HeaderValue::from_str(&allowed.join(", ")) {
                response.headers_mut().insert(axum::http::header::ALLOW, value);
            }
            return response;
        }
        // Fail closed: a method the FHIR routes serve, on a path not classified above,
        // is refused; other methods fall through to the router's 405.
        if [Method::GET, Method::HEAD, Method::POST, Method::PUT].contains(request.method()) {
            return ApiError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, "this request is not allowed")
                .into_response();
        }
        return next.run(request).await;
    };
    let Ok(purpose) = declared_purpose(request.headers()) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            IssueType::Invalid,
            "X-Purpose-Of-Use must be an HL7 PurposeOfUse code: TREAT, ETREAT, HPAYMT, HOPERAT, PUBHLTH, HRESCH or PATRQT",
        )
        .into_response();
    };
    match check(&caller.principal, &access) {
        Ok(reach) => {
            let client = request.extensions().get::<ClientIp>().map(|c| c.0);
            let mut accessor = accessor(&state, caller, client, reach);
            if let Some(purpose) = purpose {
                accessor.request.purpose_of_use = purpose.to_owned();
            }
            // The request's place in the trail, opened by `audit_fhir` around this layer:
            // an operation that records its own entry marks it there.
            if let Some(trail) = request.extensions().get::<Trail>() {
                let origin = std::mem::take(&mut accessor.trail.origin);
                accessor.trail = trail.clone();
                accessor.trail.origin.grant_id = origin.grant_id;
                accessor.trail.origin.client_id = origin.client_id;
            }
            let mut request = request;
            request.extensions_mut().insert(accessor);
            next.run(request).await
        }
        Err(Refusal::Scope) => {
            let mut response = ApiError::new(
                StatusCode::FORBIDDEN,
                IssueType::Forbidden,
                "the access token's scopes do not allow this request",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"phivault\", error=\"insufficient_scope\""),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phivault_identity::TokenKind;

    fn principal(roles: Vec<Role>, scopes: Option<&str>) -> Principal {
        Principal {
            user_id: Some("user-1".into()),
            username: Some("daffy".into()),
            roles,
            patient_id: None,
            client_id: None,
            scopes: scopes.map(str::to_owned),
            launch_patient: None,
            mfa: true,
            authenticated_ms: 0,
            grant_id: "g".into(),
            kind: TokenKind::Access,
        }
    }

    fn access(method: Method, path: &str) -> FhirAccess {
        classify(&method, path).expect("classified")
    }

    #[test]
    fn scoped_types_follow_the_tokens_scopes_in_its_context() {
        let scopes = ScopeSet::parse("patient/Observation.r patient/Patient.rs user/Condition.rs");
        let types = |needed| scoped_types(&scopes, ScopeContext::Patient, needed);
        assert_eq!(types(Permissions::READ), Some(vec!["Observation".to_owned(), "Patient".to_owned()]));
        assert_eq!(types(Permissions::SEARCH), Some(vec!["Patient".to_owned()]), "Observation.r does not search");
        assert_eq!(scoped_types(&ScopeSet::parse("patient/*.rs"), ScopeContext::Patient, Permissions::SEARCH), None);
        assert_eq!(scoped_types(&ScopeSet::parse("patient/*.rs"), ScopeContext::User, Permissions::READ), Some(vec![]));
    }

    #[test]
    fn classifies_interactions() {
        assert_eq!(access(Method::GET, "/Patient/p1").needs, Permissions::READ);
        assert_eq!(access(Method::HEAD, "/Patient/p1"), access(Method::GET, "/Patient/p1"), "HEAD is a read");
        assert_eq!(access(Method::GET, "/Patient/p1/_history/2").needs, Permissions::READ);
        assert_eq!(access(Method::GET, "/Patient").needs, Permissions::SEARCH);
        assert_eq!(access(Method::POST, "/Patient/_search").needs, Permissions::SEARCH);
        assert_eq!(access(Method::POST, "/Patient").needs, Permissions::CREATE);
        assert_eq!(access(Method::PUT, "/Patient/p1").needs, Permissions::UPDATE);
        assert_eq!(access(Method::POST, "/").resource_type, None);
        let actions: Vec<&str> = [
            (Method::GET, "/Patient/p1"),
            (Method::GET, "/Patient/p1/_history/2"),
            (Method::GET, "/Patient/p1/_history"),
            (Method::GET, "/Patient/_history"),
            (Method::POST, "/Patient/_search"),
            (Method::PUT, "/Patient/p1"),
            (Method::POST, "/"),
        ]
        .iter()
        .map(|(m, p)| access(m.clone(), p).action)
        .collect();
        assert_eq!(actions, ["read", "vread", "history", "history", "search", "update", "batch"]);
        assert!(classify(&Method::GET, "/Patient/p1/_history/2/extra").is_none());
        assert!(classify(&Method::DELETE, "/Patient/p1").is_none(), "the router refuses it");
    }

    #[test]
    fn scopes_narrow_and_never_widen() {
        let read = access(Method::GET, "/Observation/o1");
        assert_eq!(
            check(&principal(vec![Role::Nurse], Some("user/Observation.rs")), &read),
            Ok(ScopeReach::Unnarrowed)
        );
        assert_eq!(check(&principal(vec![Role::Nurse], Some("user/Patient.rs")), &read), Err(Refusal::Scope));
        let write = access(Method::PUT, "/Observation/o1");
        assert_eq!(check(&principal(vec![Role::Nurse], Some("user/Observation.rs")), &write), Err(Refusal::Scope));
        // Patient scopes: the launch patient's compartment only (the access layer holds
        // every read, search and write to it); other types need their own scope.
        let mut launched = principal(vec![Role::Physician], Some("launch/patient patient/Patient.rs"));
        launched.launch_patient = Some("p1".into());
        let reach = check(&launched, &access(Method::GET, "/Patient/p2"));
        assert_eq!(reach, Ok(ScopeReach::LaunchPatient("p1".into())));
        assert_eq!(check(&launched, &access(Method::GET, "/Patient")), Ok(ScopeReach::LaunchPatient("p1".into())));
        assert_eq!(check(&launched, &access(Method::GET, "/Observation")), Err(Refusal::Scope));
        launched.launch_patient = None;
        assert_eq!(check(&launched, &access(Method::GET, "/Patient/p1")), Err(Refusal::Scope), "no launch patient");
        // Bundles need wildcard scopes.
        let bundle = access(Method::POST, "/");
        assert_eq!(check(&principal(vec![Role::Nurse], Some("user/Patient.cruds")), &bundle), Err(Refusal::Scope));
        assert!(check(&principal(vec![Role::Nurse], Some("user/*.cruds")), &bundle).is_ok());
        // A backend service acts only through system scopes.
        let mut system = principal(vec![], Some("system/Patient.rs"));
        system.user_id = None;
        assert!(check(&system, &access(Method::GET, "/Patient/p1")).is_ok());
        assert_eq!(check(&system, &access(Method::GET, "/Observation/o1")), Err(Refusal::Scope));
    }
}
