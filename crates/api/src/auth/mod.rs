//! Who is calling: bearer tokens (OAuth access tokens) and browser session cookies, checked
//! against the database on every request so that a lock or deactivation applies at once.
//!
//! Safeguards: 45 CFR 164.312(d) person or entity authentication, (a)(2)(iii) automatic
//! logoff (idle sessions stop working), (a)(2)(i) unique user identification.

pub mod gate;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use phivault_crypto::{constant_time_eq, sha256};
use phivault_fhir::IssueType;
use phivault_identity::{BearerSecret, IdentityError, Principal};

use crate::AppState;
use crate::error::ApiError;

/// The session cookie. `__Host-` makes browsers insist on Secure, Path=/ and no Domain.
pub const SESSION_COOKIE: &str = "__Host-phivault-session";
/// Header carrying the CSRF token for cookie-authenticated API writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated caller of this request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub via_cookie: bool,
}

/// The token presented, from `Authorization: Bearer` first, else the session cookie.
pub fn presented_token(headers: &HeaderMap) -> Option<(BearerSecret, bool)> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
            .then(|| (BearerSecret::from_presented(token.trim()), false));
    }
    session_cookie(headers).map(|s| (s, true))
}

/// The session cookie's value, if sent.
pub fn session_cookie(headers: &HeaderMap) -> Option<BearerSecret> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| BearerSecret::from_presented(value))
}

/// `Set-Cookie` for a session: HttpOnly, Secure, SameSite=Strict, host-only.
pub fn session_cookie_header(secret: &BearerSecret) -> HeaderValue {
    HeaderValue::from_str(&format!("{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict", secret.expose()))
        .unwrap_or_else(|_| HeaderValue::from_static("__Host-phivault-session=; Path=/; Secure; HttpOnly; Max-Age=0"))
}

/// `Set-Cookie` that removes the session cookie.
pub fn cleared_session_cookie() -> HeaderValue {
    HeaderValue::from_static("__Host-phivault-session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The CSRF token of a session: derived from the session secret, which only the browser
/// holding the HttpOnly cookie and the server know; a cross-site page can read neither.
pub fn csrf_token(session: &BearerSecret) -> String {
    let digest = sha256(format!("phivault/csrf/v1/{}", session.expose()).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `presented` is the CSRF token of `session`.
pub fn csrf_matches(session: &BearerSecret, presented: &str) -> bool {
    constant_time_eq(csrf_token(session).as_bytes(), presented.as_bytes())
}

/// A 401 with `WWW-Authenticate` (RFC 6750), as an OperationOutcome.
pub fn unauthorized(token_presented: bool, message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, IssueType::Login, message).into_response();
    let challenge = if token_presented {
        "Bearer realm=\"phivault\", error=\"invalid_token\", error_description=\"the access token is invalid, expired or revoked\""
    } else {
        "Bearer realm=\"phivault\""
    };
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// A signed-out browser navigating to the API (a `GET` that accepts HTML, as an address
/// typed or followed does) goes to sign-in and back; apps keep their 401. The way back is
/// the path alone: a query (`?family=Duck`) may hold PHI and never rides along.
fn browser_to_sign_in(request: &Request) -> Option<Response> {
    if request.method() != Method::GET {
        return None;
    }
    let accept = request.headers().get(header::ACCEPT)?.to_str().ok()?;
    if !accept.split(',').any(|m| m.split(';').next().unwrap_or("").trim() == "text/html") {
        return None;
    }
    // Inside a nested router the URI has lost its prefix; the original one has not.
    let original = request.extensions().get::<axum::extract::OriginalUri>().map(|u| u.0.path().to_owned());
    let path = original.as_deref().unwrap_or_else(|| request.uri().path());
    let safe = path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-._$".contains(&b)) && !path.starts_with("//");
    let next = if safe { path } else { "/" };
    let encoded = crate::web::html::url_encode(next);
    Some(axum::response::Redirect::to(&format!("/login?next={encoded}")).into_response())
}

/// Middleware: requires a fully authenticated caller and puts [`Caller`] in the request.
pub async fn require_caller(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some((secret, via_cookie)) = presented_token(request.headers()) else {
        if let Some(to_login) = browser_to_sign_in(&request) {
            return to_login;
        }
        return unauthorized(false, "authentication is required");
    };
    let principal = match state.identity.authenticate(&secret).await {
        Ok(p) => p,
        Err(IdentityError::Unauthenticated) => {
            return unauthorized(true, "the access token or session is invalid, expired or ended");
        }
        Err(e) => return identity_error(e).into_response(),
    };
    if via_cookie && !matches!(*request.method(), Method::GET | Method::HEAD) {
        let presented = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !csrf_matches(&secret, presented) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                IssueType::Security,
                "a cookie-authenticated change needs the session's X-CSRF-Token header",
            )
            .into_response();
        }
    }
    let caller = Caller { principal, via_cookie };
    request.extensions_mut().insert(caller.clone());
    let mut response = next.run(request).await;
    // For the audit entry, written by the layer around this one.
    response.extensions_mut().insert(caller);
    response
}

/// Identity failures as API errors; messages never say which part of a login was wrong.
pub fn identity_error(e: IdentityError) -> ApiError {
    use StatusCode as S;
    let (status, issue) = match &e {
        IdentityError::BadCredentials | IdentityError::BadCode | IdentityError::Unauthenticated => {
            (S::UNAUTHORIZED, IssueType::Login)
        }
        IdentityError::Throttled { .. } | IdentityError::LockedOut => (S::TOO_MANY_REQUESTS, IssueType::Throttled),
        IdentityError::WrongStage | IdentityError::WrongCurrentPassword => (S::BAD_REQUEST, IssueType::Invalid),
        IdentityError::PasswordRejected(_) | IdentityError::Invalid(_) => (S::BAD_REQUEST, IssueType::Invalid),
        IdentityError::NoSuchUser | IdentityError::NoSuchClient => (S::NOT_FOUND, IssueType::NotFound),
        IdentityError::Conflict(_) => (S::CONFLICT, IssueType::Conflict),
        IdentityError::SeparationOfDuties(_) => (S::FORBIDDEN, IssueType::Forbidden),
        IdentityError::Store(_) => (S::SERVICE_UNAVAILABLE, IssueType::Exception),
        IdentityError::Crypto(_) => (S::INTERNAL_SERVER_ERROR, IssueType::Exception),
    };
    if status.is_server_error() {
        tracing::error!(error = %e, cause = ?std::error::Error::source(&e).map(ToString::to_string), "identity operation failed");
    }
    ApiError::new(status, issue, e.to_string())
}
