//! SMART on FHIR OAuth over HTTP: authorization code with PKCE, refresh rotation, replay,
//! revocation, introspection, backend services, and the ways a client could cheat.

mod common;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{BASE, TestApp, app, daffy, send, send_as_is, with_json};
use phivault_identity::{ClientKind, Role};
use phivault_testkit::signed_in;
use serde_json::{Value, json};

const REDIRECT: &str = "https://app.example/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk0123456789";

fn challenge() -> String {
    B64.encode(phivault_crypto::sha256(VERIFIER.as_bytes()))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect::<Vec<_>>().join("&")
}

fn post_form(uri: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post(uri).header("content-type", "application/x-www-form-urlencoded").header("origin", BASE);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(Body::from(form_body(fields))).expect("request")
}

fn query_of(location: &str) -> HashMap<String, String> {
    let query = location.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let bytes = v.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).expect("hex"));
                    i += 3;
                } else {
                    out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                    i += 1;
                }
            }
            (k.to_owned(), String::from_utf8(out).expect("utf8"))
        })
        .collect()
}

struct Client {
    id: String,
}

async fn public_client(app: &TestApp, scopes: &str) -> Client {
    let client = app
        .identity
        .register_client("Looney Charts", ClientKind::Public, vec![REDIRECT.into()], scopes, None)
        .await
        .expect("client");
    Client { id: client.id }
}

fn authorize_uri(client: &Client, scope: &str, challenge: &str, redirect: &str) -> String {
    format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=xyz&aud={}&code_challenge={}&code_challenge_method=S256",
        client.id,
        enc(redirect),
        enc(scope),
        enc(&format!("{BASE}/fhir")),
        challenge
    )
}

/// Runs authorize + consent as a signed-in user; returns the code.
async fn authorize(app: &TestApp, cookie: &str, client: &Client, scope: &str) -> String {
    let consent = send_as_is(
        &app.router,
        Request::get(authorize_uri(client, scope, &challenge(), REDIRECT))
            .header("cookie", cookie)
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text);
    assert!(consent.text.contains("Looney Charts"));
    assert!(
        consent.headers["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("form-action 'self' https://app.example")
    );
    let mut fields: Vec<(String, String)> = Vec::new();
    for chunk in consent.text.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = chunk.split_once("\" value=\"").expect("value");
        let value =
            rest.split('"').next().expect("end").replace("&amp;", "&").replace("&#39;", "'").replace("&quot;", "\"");
        fields.push((name.to_owned(), value));
    }
    fields.push(("decision".into(), "allow".into()));
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = send_as_is(&app.router, post_form("/oauth/authorize", Some(cookie), &borrowed)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let location = r.headers["location"].to_str().expect("ascii").to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let q = query_of(&location);
    assert_eq!(q.get("state").map(String::as_str), Some("xyz"));
    q.get("code").cloned().expect("code")
}

async fn token(app: &TestApp, fields: &[(&str, &str)]) -> common::Reply {
    send_as_is(&app.router, post_form("/oauth/token", None, fields)).await
}

fn bearer(method: &str, uri: &str, token: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("req")
}

async fn nurse_cookie(app: &TestApp) -> String {
    let session = signed_in(&app.identity, "nurse-bugs", vec![Role::Nurse], None).await;
    format!("__Host-phivault-session={}", session.expose())
}

#[tokio::test]
async fn authorization_code_with_pkce_end_to_end_and_scopes_narrow() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let patient_id = created.body["id"].as_str().expect("id").to_owned();
    let discovery = send_as_is(&app.router, common::get("/fhir/.well-known/smart-configuration")).await;
    assert_eq!(discovery.body["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(discovery.body["token_endpoint"], format!("{BASE}/oauth/token"));

    let client = public_client(&app, "openid fhirUser offline_access user/*.rs").await;
    let cookie = nurse_cookie(&app).await;
    // The app asks for more than its registration (writes): it gets only reads.
    let code = authorize(&app, &cookie, &client, "openid fhirUser offline_access user/Patient.cruds").await;
    let r = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client.id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["scope"], "openid offline_access user/Patient.rs", "narrowed; no fhirUser for staff");
    let access = r.body["access_token"].as_str().expect("access").to_owned();
    assert!(r.body["refresh_token"].is_string());
    let id_token = r.body["id_token"].as_str().expect("id_token");
    let claims: Value =
        serde_json::from_slice(&B64.decode(id_token.split('.').nth(1).expect("payload")).expect("b64")).expect("json");
    assert_eq!(claims["aud"], client.id.as_str());
    assert_eq!(claims["iss"], BASE);
    let jwks = send_as_is(&app.router, common::get("/oauth/jwks")).await;
    assert_eq!(
        jwks.body["keys"][0]["kid"],
        serde_json::from_slice::<Value>(&B64.decode(id_token.split('.').next().expect("h")).expect("b64"))
            .expect("json")["kid"]
    );

    let read = send_as_is(&app.router, bearer("GET", &format!("/fhir/Patient/{patient_id}"), &access)).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    let write = with_json("POST", "/fhir/Patient", &daffy(), &[("authorization", &format!("Bearer {access}"))]);
    let refused = send_as_is(&app.router, write).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "the token has no write scope");
    assert!(refused.headers["www-authenticate"].to_str().expect("ascii").contains("insufficient_scope"));
    let other_type = send_as_is(&app.router, bearer("GET", "/fhir/Observation", &access)).await;
    assert_eq!(other_type.status, StatusCode::FORBIDDEN);

    // The same code twice: refused, and everything issued from it is revoked.
    let again = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client.id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.body["error"], "invalid_grant");
    assert_eq!(
        send_as_is(&app.router, bearer("GET", &format!("/fhir/Patient/{patient_id}"), &access)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn pkce_and_redirect_and_audience_are_enforced() {
    let (app, _db) = app().await;
    let client = public_client(&app, "user/*.rs").await;
    let cookie = nurse_cookie(&app).await;
    let code = authorize(&app, &cookie, &client, "user/Patient.rs").await;
    let wrong = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client.id),
            ("code_verifier", &"x".repeat(43)),
        ],
    )
    .await;
    assert_eq!(wrong.body["error"], "invalid_grant", "{}", wrong.text);
    // The failed attempt spent the code: the right verifier is now too late.
    let late = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client.id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(late.body["error"], "invalid_grant");

    let other = public_client(&app, "user/*.rs").await;
    let code = authorize(&app, &cookie, &client, "user/Patient.rs").await;
    let stolen = token(
        &app,
        &[("grant_type", "authorization_code"), ("code", &code), ("client_id", &other.id), ("code_verifier", VERIFIER)],
    )
    .await;
    assert_eq!(stolen.body["error"], "invalid_grant", "a code is bound to its client");

    // An unregistered redirect URI is shown to the user, never redirected to.
    let evil = send_as_is(
        &app.router,
        Request::get(authorize_uri(&client, "user/Patient.rs", &challenge(), "https://evil.example/cb"))
            .header("cookie", &cookie)
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(evil.status, StatusCode::BAD_REQUEST);
    assert!(!evil.headers.contains_key("location"));
    // No PKCE, or the wrong audience: an error sent back to the registered URI.
    let no_pkce = authorize_uri(&client, "user/Patient.rs", &challenge(), REDIRECT)
        .replace("&code_challenge_method=S256", "&code_challenge_method=plain");
    let r = send_as_is(&app.router, Request::get(no_pkce).header("cookie", &cookie).body(Body::empty()).expect("req"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        query_of(r.headers["location"].to_str().expect("ascii")).get("error").map(String::as_str),
        Some("invalid_request")
    );
    let wrong_aud = authorize_uri(&client, "user/Patient.rs", &challenge(), REDIRECT)
        .replace(&enc(&format!("{BASE}/fhir")), &enc("https://other.example/fhir"));
    let r =
        send_as_is(&app.router, Request::get(wrong_aud).header("cookie", &cookie).body(Body::empty()).expect("req"))
            .await;
    assert_eq!(
        query_of(r.headers["location"].to_str().expect("ascii")).get("error").map(String::as_str),
        Some("invalid_request")
    );
    // Not signed in: off to the login page, coming back afterwards.
    let anonymous =
        send_as_is(&app.router, common::get(&authorize_uri(&client, "user/Patient.rs", &challenge(), REDIRECT))).await;
    assert!(anonymous.headers["location"].to_str().expect("ascii").starts_with("/login?next=%2Foauth%2Fauthorize"));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replay_revokes_the_grant() {
    let (app, _db) = app().await;
    let client = public_client(&app, "offline_access user/*.rs").await;
    let cookie = nurse_cookie(&app).await;
    let code = authorize(&app, &cookie, &client, "offline_access user/Patient.rs").await;
    let first = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client.id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    let refresh1 = first.body["refresh_token"].as_str().expect("refresh").to_owned();
    let second =
        token(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh1), ("client_id", &client.id)]).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let refresh2 = second.body["refresh_token"].as_str().expect("rotated").to_owned();
    assert_ne!(refresh1, refresh2);
    let access2 = second.body["access_token"].as_str().expect("access").to_owned();
    assert_eq!(send_as_is(&app.router, bearer("GET", "/fhir/Patient", &access2)).await.status, StatusCode::OK);

    // An attacker replays the first refresh token: refused, and the whole grant dies.
    let replay =
        token(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh1), ("client_id", &client.id)]).await;
    assert_eq!(replay.body["error"], "invalid_grant");
    assert_eq!(
        send_as_is(&app.router, bearer("GET", "/fhir/Patient", &access2)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let after =
        token(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh2), ("client_id", &client.id)]).await;
    assert_eq!(after.body["error"], "invalid_grant");
}

#[tokio::test]
async fn revocation_and_introspection() {
    let (app, _db) = app().await;
    let client = public_client(&app, "user/*.rs").await;
    let cookie = nurse_cookie(&app).await;
    let code = authorize(&app, &cookie, &client, "user/Patient.rs").await;
    let t = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client.id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    let access = t.body["access_token"].as_str().expect("access").to_owned();
    let introspect = |tok: &str| {
        let mut req = post_form("/oauth/introspect", None, &[("token", tok)]);
        req.headers_mut().insert("authorization", format!("Bearer {}", app.token).parse().expect("header"));
        req
    };
    let r = send_as_is(&app.router, introspect(&access)).await;
    assert_eq!(r.body["active"], true, "{}", r.text);
    assert_eq!(r.body["scope"], "user/Patient.rs");
    let anonymous = send_as_is(&app.router, post_form("/oauth/introspect", None, &[("token", &access)])).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "introspection is not public");
    assert_eq!(
        send_as_is(&app.router, post_form("/oauth/revoke", None, &[("token", &access)])).await.status,
        StatusCode::OK
    );
    assert_eq!(send_as_is(&app.router, introspect(&access)).await.body["active"], false);
    assert_eq!(send_as_is(&app.router, bearer("GET", "/fhir/Patient", &access)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send_as_is(&app.router, post_form("/oauth/revoke", None, &[("token", "unknown")])).await.status,
        StatusCode::OK
    );
    let garbage = token(&app, &[("grant_type", "password"), ("username", "x")]).await;
    assert_eq!(garbage.body["error"], "unsupported_grant_type");
}

fn es384_client() -> (aws_lc_rs::signature::EcdsaKeyPair, Value) {
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).expect("key");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).expect("key");
    let point = key.public_key().as_ref().to_vec();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-384", "kid": "backend-1", "x": B64.encode(&point[1..49]), "y": B64.encode(&point[49..97])}]});
    (key, jwks)
}

fn assertion(key: &aws_lc_rs::signature::EcdsaKeyPair, client_id: &str, jti: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let header = json!({"alg": "ES384", "kid": "backend-1", "typ": "JWT"});
    let claims =
        json!({"iss": client_id, "sub": client_id, "aud": format!("{BASE}/oauth/token"), "exp": now + 240, "jti": jti});
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let sig = key.sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes()).expect("sign");
    format!("{input}.{}", B64.encode(sig.as_ref()))
}

#[tokio::test]
async fn backend_services_authenticate_with_signed_assertions_once() {
    let (app, _db) = app().await;
    let (key, jwks) = es384_client();
    let client = app
        .identity
        .register_client("Nightly exporter", ClientKind::Backend, vec![], "system/Patient.rs", Some(jwks))
        .await
        .expect("backend client");
    let jwt = assertion(&key, &client.id, "jti-1");
    let fields = |a: &str| {
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
            ("client_assertion", a.to_owned()),
            ("scope", "system/Patient.rs system/Observation.rs".to_owned()),
        ]
    };
    let owned = fields(&jwt);
    let borrowed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = token(&app, &borrowed).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["scope"], "system/Patient.rs", "only registered scopes");
    let access = r.body["access_token"].as_str().expect("access").to_owned();
    assert_eq!(send_as_is(&app.router, bearer("GET", "/fhir/Patient", &access)).await.status, StatusCode::OK);
    assert_eq!(
        send_as_is(&app.router, bearer("GET", "/fhir/Observation", &access)).await.status,
        StatusCode::FORBIDDEN
    );

    let replay = token(&app, &borrowed).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "a jti works once");
    let (other_key, _) = es384_client();
    let forged = fields(&assertion(&other_key, &client.id, "jti-2"));
    let borrowed: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(token(&app, &borrowed).await.body["error"], "invalid_client", "signed by another key");

    // Without `scope` the client gets what it was registered for (RFC 6749 section 3.3),
    // never more; a scope that names nothing registered is still refused.
    let mut omitted = fields(&assertion(&key, &client.id, "jti-3"));
    omitted.retain(|(k, _)| *k != "scope");
    let borrowed: Vec<(&str, &str)> = omitted.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let defaulted = token(&app, &borrowed).await;
    assert_eq!(defaulted.status, StatusCode::OK, "{}", defaulted.text);
    assert_eq!(defaulted.body["scope"], "system/Patient.rs");
    let mut outside = fields(&assertion(&key, &client.id, "jti-4"));
    outside.retain(|(k, _)| *k != "scope");
    outside.push(("scope", "system/Observation.rs".to_owned()));
    let borrowed: Vec<(&str, &str)> = outside.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(token(&app, &borrowed).await.body["error"], "invalid_scope");

    // Disabling the client stops its token at once.
    app.identity.store().set_client_active(&client.id, false).await.expect("disable");
    assert_eq!(send_as_is(&app.router, bearer("GET", "/fhir/Patient", &access)).await.status, StatusCode::UNAUTHORIZED);
}
