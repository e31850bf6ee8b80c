//! SMART on FHIR OAuth endpoints: discovery, authorize (with the consent page), token,
//! revoke, introspect and the id_token JWKS. The rules live in `phivault_identity::oauth`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use phivault_identity::LoginStage;
use phivault_identity::oauth::{AuthorizationRequest, AuthorizeFailure, OAuthError, OAuthUrls};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{csrf_matches, csrf_token, presented_token, session_cookie};
use crate::web::html::{escape, page};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/authorize", get(authorize).post(authorize_decision))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/oauth/introspect", post(introspect))
        .route("/oauth/jwks", get(jwks))
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .route("/fhir/.well-known/smart-configuration", get(smart_configuration))
}

pub fn urls(state: &AppState) -> OAuthUrls {
    let base = state.config.base_url.trim_end_matches('/');
    OAuthUrls {
        issuer: base.to_owned(),
        fhir_base: format!("{base}/fhir"),
        token_endpoint: format!("{base}/oauth/token"),
    }
}

async fn smart_configuration(State(state): State<AppState>) -> Response {
    let base = state.config.base_url.trim_end_matches('/');
    Json(json!({
        "issuer": base,
        "jwks_uri": format!("{base}/oauth/jwks"),
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "fhirUser", "launch/patient", "offline_access", "online_access",
            "patient/*.rs", "user/*.cruds", "user/*.rs", "system/*.rs"],
        "capabilities": ["launch-standalone", "client-public", "client-confidential-asymmetric",
            "context-standalone-patient", "permission-offline", "permission-online", "permission-patient",
            "permission-user", "permission-v1", "permission-v2", "sso-openid-connect", "authorize-post"],
    }))
    .into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    match state.identity.id_token_signer().await {
        Ok(signer) => Json(json!({ "keys": [signer.public_jwk()] })).into_response(),
        Err(e) => oauth_error(StatusCode::SERVICE_UNAVAILABLE, &OAuthError::from(e)),
    }
}

fn oauth_error(status: StatusCode, e: &OAuthError) -> Response {
    (status, Json(json!({ "error": e.error, "error_description": e.description }))).into_response()
}

fn redirect_with(uri: &str, params: &[(&str, &str)]) -> Response {
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", crate::web::html::url_encode(v))).collect();
    let sep = if uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{uri}{sep}{}", query.join("&"))).into_response()
}

fn failure_response(failure: AuthorizeFailure) -> Response {
    match failure {
        AuthorizeFailure::ShowUser(message) => page(
            StatusCode::BAD_REQUEST,
            "Authorization refused",
            &format!(
                "<p>{}</p><p>The application that sent you here is misconfigured; nothing was shared with it.</p>",
                escape(&message)
            ),
        ),
        AuthorizeFailure::Redirect { redirect_uri, state, error } => {
            let mut params = vec![("error", error.error), ("error_description", error.description.as_str())];
            if let Some(s) = &state {
                params.push(("state", s.as_str()));
            }
            redirect_with(&redirect_uri, &params)
        }
    }
}

/// `GET /oauth/authorize`: sign in if needed, then ask for consent.
async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(req): Query<AuthorizationRequest>,
) -> Response {
    let auth = match state.identity.validate_authorization(&req, &urls(&state)).await {
        Ok(a) => a,
        Err(f) => return failure_response(f),
    };
    let here = uri.path_and_query().map_or("/oauth/authorize", |p| p.as_str());
    let session = match session_cookie(&headers) {
        Some(secret) => match state.identity.session(&secret).await {
            Ok(view) if view.token.stage == LoginStage::Complete => Some((secret, view)),
            _ => None,
        },
        None => None,
    };
    let Some((secret, view)) = session else {
        return Redirect::to(&format!("/login?next={}", crate::web::html::url_encode(here))).into_response();
    };
    let grantable = state.identity.grantable(&view, &auth);
    let scopes: String = grantable
        .to_string()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let hidden: String = [
        ("response_type", req.response_type.as_deref()),
        ("client_id", req.client_id.as_deref()),
        ("redirect_uri", Some(auth.redirect_uri.as_str())),
        ("scope", req.scope.as_deref()),
        ("state", req.state.as_deref()),
        ("aud", req.aud.as_deref()),
        ("code_challenge", req.code_challenge.as_deref()),
        ("code_challenge_method", req.code_challenge_method.as_deref()),
        ("nonce", req.nonce.as_deref()),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|v| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", escape(v))))
    .collect();
    let mut response = page(
        StatusCode::OK,
        "Allow access?",
        &format!(
            "<p><strong>{}</strong> asks to act as {} with:</p><ul>{scopes}</ul>\
             <p>It will receive these rights for at most the session's lifetime, and never more than your role allows.</p>\
             <form method=\"post\" action=\"/oauth/authorize\">{hidden}<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> \
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
            escape(&auth.client.name),
            escape(&view.user.display_name),
            csrf_token(&secret)
        ),
    );
    // Browsers apply form-action to the redirect that follows the form: allow the client's
    // registered redirect origin, and nothing else.
    let origin: String = auth.redirect_uri.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    if let Ok(csp) = axum::http::HeaderValue::from_str(&format!(
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self' {origin}"
    )) {
        response.headers_mut().insert(axum::http::header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// `POST /oauth/authorize`: the user's decision.
async fn authorize_decision(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(secret) = session_cookie(&headers) else { return Redirect::to("/login").into_response() };
    let origin_ok = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|o| o.trim_end_matches('/') == state.config.base_url.trim_end_matches('/'));
    if !origin_ok || !csrf_matches(&secret, form.get("csrf").map_or("", String::as_str)) {
        return page(StatusCode::FORBIDDEN, "Refused", "<p>This form did not come from this site.</p>");
    }
    let field = |k: &str| form.get(k).cloned();
    let req = AuthorizationRequest {
        response_type: field("response_type"),
        client_id: field("client_id"),
        redirect_uri: field("redirect_uri"),
        scope: field("scope"),
        state: field("state"),
        aud: field("aud"),
        code_challenge: field("code_challenge"),
        code_challenge_method: field("code_challenge_method"),
        nonce: field("nonce"),
    };
    let auth = match state.identity.validate_authorization(&req, &urls(&state)).await {
        Ok(a) => a,
        Err(f) => return failure_response(f),
    };
    let view = match state.identity.session(&secret).await {
        Ok(v) if v.token.stage == LoginStage::Complete => v,
        _ => return Redirect::to("/login").into_response(),
    };
    let mut params: Vec<(&str, String)> = Vec::new();
    if form.get("decision").map(String::as_str) == Some("allow") {
        match state.identity.issue_code(&view, &auth).await {
            Ok(code) => params.push(("code", code)),
            Err(e) => return oauth_error(StatusCode::SERVICE_UNAVAILABLE, &OAuthError::from(e)),
        }
    } else {
        params.push(("error", "access_denied".into()));
        params.push(("error_description", "the user denied access".into()));
    }
    if let Some(s) = &auth.state {
        params.push(("state", s.clone()));
    }
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    redirect_with(&auth.redirect_uri, &borrowed)
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `POST /oauth/token`. Each attempt is audited (client, grant type, outcome).
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<crate::ClientIp>>,
    request_id: Option<axum::Extension<crate::RequestId>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let response = issue_token(&state, &form).await;
    let origin = crate::audit::Origin::of(&headers, client.as_ref().map(|c| &c.0), request_id.as_ref().map(|r| &r.0));
    let outcome =
        if response.status().is_success() { phivault_audit::Outcome::Success } else { phivault_audit::Outcome::Denied };
    // The client id is registered data, not client free text, only when it exists.
    let client_id = form.get("client_id").filter(|c| c.starts_with("client-") && c.len() <= 64).cloned();
    let action = format!(
        "oauth.token.{}",
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => "authorization_code",
            Some("refresh_token") => "refresh_token",
            Some("client_credentials") => "client_credentials",
            _ => "other",
        }
    );
    let reason = response.status().as_u16().to_string();
    match crate::audit::record(
        &state,
        &origin,
        &action,
        outcome,
        Some(&reason),
        None,
        client_id.map(|c| format!("client:{c}")),
    )
    .await
    {
        Ok(()) => response,
        Err(refused) => refused,
    }
}

async fn issue_token(state: &AppState, form: &HashMap<String, String>) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str);
    let urls = urls(state);
    let missing = |what: &str| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            &OAuthError { error: "invalid_request", description: format!("{what} is required") },
        )
    };
    let result = match get("grant_type") {
        Some("authorization_code") => {
            let (Some(client_id), Some(code), Some(verifier)) = (get("client_id"), get("code"), get("code_verifier"))
            else {
                return missing("client_id, code and code_verifier");
            };
            state.identity.exchange_code(client_id, code, get("redirect_uri"), verifier, &urls).await
        }
        Some("refresh_token") => {
            let (Some(client_id), Some(refresh)) = (get("client_id"), get("refresh_token")) else {
                return missing("client_id and refresh_token");
            };
            state.identity.refresh(client_id, refresh, &urls).await
        }
        Some("client_credentials") => {
            if get("client_assertion_type") != Some(JWT_BEARER) {
                return missing(&format!("client_assertion_type={JWT_BEARER}"));
            }
            let Some(assertion) = get("client_assertion") else { return missing("client_assertion") };
            state.identity.client_credentials(assertion, get("scope"), &urls).await
        }
        Some(_) => Err(OAuthError {
            error: "unsupported_grant_type",
            description: "use authorization_code, refresh_token or client_credentials".into(),
        }),
        None => return missing("grant_type"),
    };
    match result {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) if e.error == "invalid_client" => oauth_error(StatusCode::UNAUTHORIZED, &e),
        Err(e) if e.error == "server_error" => oauth_error(StatusCode::SERVICE_UNAVAILABLE, &e),
        Err(e) => oauth_error(StatusCode::BAD_REQUEST, &e),
    }
}

/// `POST /oauth/revoke` (RFC 7009): always 200 for a well-formed request.
async fn revoke(State(state): State<AppState>, Form(form): Form<HashMap<String, String>>) -> Response {
    let Some(token) = form.get("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            &OAuthError { error: "invalid_request", description: "token is required".into() },
        );
    };
    match state.identity.revoke(token).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => oauth_error(StatusCode::SERVICE_UNAVAILABLE, &OAuthError::from(e)),
    }
}

/// `POST /oauth/introspect` (RFC 7662). The caller must itself hold a valid token.
async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let authorized = match presented_token(&headers) {
        Some((secret, false)) => state.identity.authenticate(&secret).await.is_ok(),
        _ => false,
    };
    if !authorized {
        let mut r = oauth_error(
            StatusCode::UNAUTHORIZED,
            &OAuthError { error: "invalid_client", description: "introspection needs a valid bearer token".into() },
        );
        r.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"phivault\""),
        );
        return r;
    }
    let Some(token) = form.get("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            &OAuthError { error: "invalid_request", description: "token is required".into() },
        );
    };
    match state.identity.introspect(token, &urls(&state)).await {
        Ok(v) => Json::<Value>(v).into_response(),
        Err(e) => oauth_error(StatusCode::SERVICE_UNAVAILABLE, &OAuthError::from(e)),
    }
}
