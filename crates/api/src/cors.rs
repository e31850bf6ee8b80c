//! CORS for browser apps (SMART apps running in a page on another origin): only the origins
//! the operator lists may read responses, on the API's paths only (never the sign-in pages or
//! administration). A preflight is answered here, before authentication, since browsers send
//! it without credentials. No origin is ever told it may send cookies: apps use bearer tokens,
//! and the session cookie stays with phivault's own pages.

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

const METHODS: &str = "GET, POST, PUT, DELETE";
const REQUEST_HEADERS: &str =
    "authorization, content-type, accept, prefer, if-match, if-none-match, if-none-exist, if-modified-since";
const EXPOSED: &str = "location, content-location, etag, last-modified, x-phivault-break-glass";

/// The paths a browser app calls: the FHIR API, the token, revocation and discovery endpoints.
fn is_api_path(path: &str) -> bool {
    path == "/fhir"
        || path.starts_with("/fhir/")
        || matches!(path, "/oauth/token" | "/oauth/revoke" | "/oauth/jwks" | "/.well-known/smart-configuration")
}

fn allowed_origin<'a>(headers: &'a HeaderMap, allowed: &[String]) -> Option<&'a HeaderValue> {
    let origin = headers.get(ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed.iter().any(|a| a == text).then_some(origin)
}

pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !is_api_path(path) {
        return next.run(request).await;
    }
    let origin = allowed_origin(request.headers(), &state.config.cors_origins).cloned();
    let preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        // An origin not on the list gets no permission headers: the browser then refuses.
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.append(VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = origin {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if preflight {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(METHODS));
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(REQUEST_HEADERS));
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        } else {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
        }
    }
    response
}
