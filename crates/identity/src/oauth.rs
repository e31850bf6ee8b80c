//! The OAuth 2.0 authorization server behind SMART App Launch 2.x (authorization code with
//! PKCE S256 for user-facing apps) and SMART Backend Services (client_credentials with a
//! signed JWT assertion). Tokens are opaque, random and stored as digests; access tokens
//! live minutes, refresh tokens rotate, and a replayed code or refresh token revokes its
//! whole grant. Scopes only ever narrow what the user's role allows.
//!
//! Safeguards: 45 CFR 164.312(d) person or entity authentication, (a)(1) access control;
//! ONC 170.315(g)(10) standardized API (SMART App Launch, Backend Services).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use phivault_crypto::{IdTokenSigner, constant_time_eq, random_token, sha256, verify_client_assertion};
use serde::Serialize;
use serde_json::{Value, json};

use crate::scopes::ScopeSet;
use crate::{
    BearerSecret, ClientKind, ClientRecord, Identity, IdentityError, LoginStage, Role, SessionView, Spent, TokenKind,
    TokenRecord, UserStatus,
};

/// An OAuth error response (RFC 6749 section 5.2); `description` names no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into() }
    }
}

impl From<IdentityError> for OAuthError {
    fn from(e: IdentityError) -> Self {
        tracing::error!(error = %e, "oauth operation failed");
        OAuthError::new("server_error", "the authorization server failed; try again")
    }
}

impl From<phivault_ports::StoreError> for OAuthError {
    fn from(e: phivault_ports::StoreError) -> Self {
        IdentityError::from(e).into()
    }
}

/// Where the server lives (from configuration): the issuer and the FHIR base URL that
/// tokens are for (`aud`).
#[derive(Debug, Clone)]
pub struct OAuthUrls {
    pub issuer: String,
    pub fhir_base: String,
    pub token_endpoint: String,
}

/// `GET /authorize` parameters.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuthorizationRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub aud: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
}

/// A request that passed validation: safe to show a consent page for.
#[derive(Debug, Clone)]
pub struct ValidatedAuthorization {
    pub client: ClientRecord,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub requested: ScopeSet,
    pub code_challenge: String,
    pub nonce: Option<String>,
}

/// Where an authorization error goes: shown to the user when the client or redirect URI
/// cannot be trusted (never redirect to an unregistered URI), else back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeFailure {
    ShowUser(String),
    Redirect { redirect_uri: String, state: Option<String>, error: OAuthError },
}

/// A successful token response (RFC 6749 5.1, with SMART's context fields).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
}

const VERIFIER_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// What a user's roles allow an app to be granted at most.
fn role_allowance(roles: &[Role]) -> ScopeSet {
    let clinical = roles.iter().any(|r| matches!(r, Role::Physician | Role::Nurse | Role::FrontDesk | Role::Billing));
    let text = if clinical {
        "openid fhirUser offline_access online_access user/*.cruds"
    } else if roles.contains(&Role::Patient) {
        "openid fhirUser launch/patient offline_access online_access patient/*.rs"
    } else {
        "openid"
    };
    ScopeSet::parse(text)
}

impl Identity {
    // ---- clients ------------------------------------------------------------------------

    /// Registers a client. Public clients need https (or loopback http) redirect URIs;
    /// backend clients need a JWK Set with at least one RS384/ES384-capable key.
    pub async fn register_client(
        &self,
        name: &str,
        kind: ClientKind,
        redirect_uris: Vec<String>,
        allowed_scopes: &str,
        jwks: Option<Value>,
    ) -> Result<ClientRecord, IdentityError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(IdentityError::Invalid("a client name is 1 to 200 characters".into()));
        }
        let scopes = ScopeSet::parse(allowed_scopes);
        if scopes.to_string().is_empty() {
            return Err(IdentityError::Invalid("give the scopes the client may be granted, e.g. user/*.rs".into()));
        }
        match kind {
            ClientKind::Public => {
                if redirect_uris.is_empty() {
                    return Err(IdentityError::Invalid("a public client needs at least one redirect URI".into()));
                }
                for uri in &redirect_uris {
                    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                        .iter()
                        .any(|p| uri.starts_with(&format!("{p}:")) || uri.starts_with(&format!("{p}/")));
                    if !(uri.starts_with("https://") || loopback)
                        || uri.contains('#')
                        || uri.chars().any(char::is_whitespace)
                    {
                        return Err(IdentityError::Invalid(format!(
                            "redirect URI {uri:?} must be https:// (or http:// on loopback) without a fragment"
                        )));
                    }
                }
                if scopes.contexts().contains(&crate::scopes::ScopeContext::System) {
                    return Err(IdentityError::Invalid("system/ scopes are for backend clients".into()));
                }
            }
            ClientKind::Backend => {
                let keys = jwks.as_ref().and_then(|j| j.get("keys")).and_then(Value::as_array);
                if keys.is_none_or(Vec::is_empty) {
                    return Err(IdentityError::Invalid("a backend client needs a JWK Set with its public key".into()));
                }
                if keys.into_iter().flatten().any(|k| k.get("d").is_some()) {
                    return Err(IdentityError::Invalid(
                        "the JWK Set holds a private key; register public keys only".into(),
                    ));
                }
                if scopes.contexts().iter().any(|c| *c != crate::scopes::ScopeContext::System) {
                    return Err(IdentityError::Invalid("backend clients act through system/ scopes only".into()));
                }
            }
        }
        let client = ClientRecord {
            id: format!("client-{}", random_token(12)?),
            name: name.to_owned(),
            kind,
            redirect_uris,
            jwks: jwks.map(|j| j.to_string()),
            allowed_scopes: scopes.to_string(),
            active: true,
            created_ms: self.now_ms(),
        };
        self.store().insert_client(&client).await?;
        Ok(client)
    }

    // ---- authorization code + PKCE ------------------------------------------------------

    /// Checks an authorization request before anything is shown to the user.
    pub async fn validate_authorization(
        &self,
        req: &AuthorizationRequest,
        urls: &OAuthUrls,
    ) -> Result<ValidatedAuthorization, AuthorizeFailure> {
        let show = |m: &str| AuthorizeFailure::ShowUser(m.to_owned());
        let client_id = req.client_id.as_deref().ok_or_else(|| show("the request names no client_id"))?;
        let client = self
            .store()
            .client(client_id)
            .await
            .map_err(|_| show("the authorization server failed; try again"))?
            .filter(|c| c.active && c.kind == ClientKind::Public)
            .ok_or_else(|| show("unknown or disabled client"))?;
        let redirect_uri = match req.redirect_uri.as_deref() {
            Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
            Some(_) => return Err(show("the redirect_uri is not registered for this client")),
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return Err(show("the request names no redirect_uri")),
        };
        let fail = |error: &'static str, description: &str| AuthorizeFailure::Redirect {
            redirect_uri: redirect_uri.clone(),
            state: req.state.clone(),
            error: OAuthError::new(error, description),
        };
        if req.response_type.as_deref() != Some("code") {
            return Err(fail("unsupported_response_type", "only response_type=code is supported"));
        }
        if req.code_challenge_method.as_deref() != Some("S256") {
            return Err(fail("invalid_request", "PKCE with code_challenge_method=S256 is required"));
        }
        let challenge = req.code_challenge.clone().unwrap_or_default();
        if challenge.len() != 43 || !challenge.bytes().all(|b| VERIFIER_CHARS.contains(&b)) {
            return Err(fail("invalid_request", "code_challenge must be a base64url SHA-256 digest"));
        }
        let aud = req.aud.as_deref().map(|a| a.trim_end_matches('/'));
        if aud != Some(urls.fhir_base.trim_end_matches('/')) {
            return Err(fail("invalid_request", "aud must be this server's FHIR base URL"));
        }
        let requested =
            ScopeSet::parse(req.scope.as_deref().unwrap_or("")).narrow_to(&ScopeSet::parse(&client.allowed_scopes));
        if requested.clinical.is_empty() && !requested.openid {
            return Err(fail("invalid_scope", "none of the requested scopes can be granted to this client"));
        }
        Ok(ValidatedAuthorization {
            client,
            redirect_uri,
            state: req.state.clone(),
            requested,
            code_challenge: challenge,
            nonce: req.nonce.clone().filter(|n| n.len() <= 256),
        })
    }

    /// What the user would grant (requested ∩ client ∩ role), for the consent page.
    pub fn grantable(&self, session: &SessionView, auth: &ValidatedAuthorization) -> ScopeSet {
        let mut granted = auth.requested.narrow_to(&role_allowance(&session.user.roles));
        // fhirUser and a patient context exist only for patient accounts (staff have no
        // FHIR resource of their own here).
        if session.user.patient_id.is_none() {
            granted.fhir_user = false;
            granted.launch_patient = false;
        }
        granted
    }

    /// Issues a single-use authorization code after the user consented.
    pub async fn issue_code(
        &self,
        session: &SessionView,
        auth: &ValidatedAuthorization,
    ) -> Result<String, IdentityError> {
        if session.token.stage != LoginStage::Complete {
            return Err(IdentityError::WrongStage);
        }
        let granted = self.grantable(session, auth);
        let code = BearerSecret::generate()?;
        let now = self.now_ms();
        let patient = if granted.launch_patient { session.user.patient_id.clone() } else { None };
        let data = json!({
            "redirect_uri": auth.redirect_uri,
            "code_challenge": auth.code_challenge,
            "patient": patient,
            "nonce": auth.nonce,
        });
        self.store()
            .insert_token(&TokenRecord {
                digest: code.digest(),
                kind: TokenKind::AuthCode,
                grant_id: format!("grant-{}", random_token(12)?),
                user_id: Some(session.user.id.clone()),
                client_id: Some(auth.client.id.clone()),
                scopes: granted.to_string(),
                stage: LoginStage::Complete,
                mfa: session.token.mfa,
                authenticated_ms: session.token.authenticated_ms,
                created_ms: now,
                last_seen_ms: now,
                idle_ms: 0,
                expires_ms: now + self.policy().auth_code_ms,
                data: Some(data.to_string()),
                consumed: false,
            })
            .await?;
        Ok(code.expose().to_owned())
    }

    /// `grant_type=authorization_code`.
    pub async fn exchange_code(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: &str,
        urls: &OAuthUrls,
    ) -> Result<TokenResponse, OAuthError> {
        let bad =
            || OAuthError::new("invalid_grant", "the code is invalid, expired, already used, or not for this client");
        let digest = BearerSecret::from_presented(code).digest();
        let token = match self.store().spend_token(&digest, TokenKind::AuthCode).await? {
            Spent::Fresh(t) => t,
            Spent::Replayed(t) => {
                // RFC 6749 4.1.2: a code used twice revokes what was issued with it.
                self.store().revoke_grant(&t.grant_id).await?;
                // The stored client id, not the request's: request text never reaches a log.
                tracing::warn!(
                    client_id = t.client_id.as_deref().unwrap_or("-"),
                    "authorization code replayed; grant revoked"
                );
                return Err(bad());
            }
            Spent::Missing => return Err(bad()),
        };
        let now = self.now_ms();
        if !token.live_at(now) || token.client_id.as_deref() != Some(client_id) {
            return Err(bad());
        }
        let data: Value = token.data.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null);
        let registered_uri = data["redirect_uri"].as_str().unwrap_or_default();
        if redirect_uri.is_some_and(|r| r != registered_uri) {
            return Err(bad());
        }
        if verifier.len() < 43 || verifier.len() > 128 || !verifier.bytes().all(|b| VERIFIER_CHARS.contains(&b)) {
            return Err(OAuthError::new("invalid_grant", "code_verifier is malformed"));
        }
        let challenge = B64.encode(sha256(verifier.as_bytes()));
        if !constant_time_eq(challenge.as_bytes(), data["code_challenge"].as_str().unwrap_or_default().as_bytes()) {
            return Err(OAuthError::new("invalid_grant", "code_verifier does not match the code_challenge"));
        }
        let user = self.active_user(token.user_id.as_deref()).await?.ok_or_else(bad)?;
        let patient = data["patient"].as_str().map(str::to_owned);
        let nonce = data["nonce"].as_str().map(str::to_owned);
        self.issue_tokens(&token, &user, patient, nonce, urls).await
    }

    async fn active_user(&self, user_id: Option<&str>) -> Result<Option<crate::UserRecord>, OAuthError> {
        let Some(id) = user_id else { return Ok(None) };
        let now = self.now_ms();
        Ok(self.store().user_by_id(id).await?.filter(|u| u.status == UserStatus::Active && u.locked_until_ms <= now))
    }

    /// Issues an access token (and a refresh token when the grant allows one) under the
    /// grant of `from`.
    async fn issue_tokens(
        &self,
        from: &TokenRecord,
        user: &crate::UserRecord,
        patient: Option<String>,
        nonce: Option<String>,
        urls: &OAuthUrls,
    ) -> Result<TokenResponse, OAuthError> {
        let now = self.now_ms();
        let policy = self.policy();
        let scopes = ScopeSet::parse(&from.scopes);
        let data = patient.as_ref().map(|p| json!({ "patient": p }).to_string());
        let access = BearerSecret::generate().map_err(IdentityError::from)?;
        let base = TokenRecord {
            digest: access.digest(),
            kind: TokenKind::Access,
            grant_id: from.grant_id.clone(),
            user_id: Some(user.id.clone()),
            client_id: from.client_id.clone(),
            scopes: from.scopes.clone(),
            stage: LoginStage::Complete,
            mfa: from.mfa,
            authenticated_ms: from.authenticated_ms,
            created_ms: now,
            last_seen_ms: now,
            idle_ms: 0,
            expires_ms: now + policy.access_token_ms,
            data: data.clone(),
            consumed: false,
        };
        self.store().insert_token(&base).await?;
        let refresh_token = if scopes.offline_access || scopes.online_access {
            let refresh = BearerSecret::generate().map_err(IdentityError::from)?;
            // A rotated refresh token keeps the grant's original deadline.
            let deadline =
                if from.kind == TokenKind::Refresh { from.expires_ms } else { now + policy.refresh_token_ms };
            self.store()
                .insert_token(&TokenRecord {
                    digest: refresh.digest(),
                    kind: TokenKind::Refresh,
                    expires_ms: deadline,
                    ..base.clone()
                })
                .await?;
            Some(refresh.expose().to_owned())
        } else {
            None
        };
        let id_token = if scopes.openid {
            let signer = self.id_token_signer().await?;
            let mut claims = json!({
                "iss": urls.issuer,
                "sub": user.id,
                "aud": from.client_id,
                "iat": now / 1000,
                "exp": now / 1000 + policy.access_token_ms / 1000,
                "auth_time": from.authenticated_ms / 1000,
            });
            if let Some(n) = nonce {
                claims["nonce"] = Value::String(n);
            }
            if scopes.fhir_user
                && let Some(p) = &user.patient_id
            {
                claims["fhirUser"] = Value::String(format!("{}/Patient/{p}", urls.fhir_base.trim_end_matches('/')));
            }
            Some(signer.sign(&claims).map_err(IdentityError::from)?)
        } else {
            None
        };
        Ok(TokenResponse {
            access_token: access.expose().to_owned(),
            token_type: "Bearer",
            expires_in: policy.access_token_ms / 1000,
            scope: scopes.to_string(),
            refresh_token,
            id_token,
            patient,
        })
    }

    /// `grant_type=refresh_token`: spends the refresh token and issues a new pair. A spent
    /// token presented again revokes the whole grant (it was stolen or leaked).
    pub async fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
        urls: &OAuthUrls,
    ) -> Result<TokenResponse, OAuthError> {
        let bad = || OAuthError::new("invalid_grant", "the refresh token is invalid, expired or revoked");
        let digest = BearerSecret::from_presented(refresh_token).digest();
        let token = match self.store().spend_token(&digest, TokenKind::Refresh).await? {
            Spent::Fresh(t) => t,
            Spent::Replayed(t) => {
                self.store().revoke_grant(&t.grant_id).await?;
                tracing::warn!(
                    client_id = t.client_id.as_deref().unwrap_or("-"),
                    "refresh token replayed; grant revoked"
                );
                return Err(bad());
            }
            Spent::Missing => return Err(bad()),
        };
        if !token.live_at(self.now_ms()) || token.client_id.as_deref() != Some(client_id) {
            return Err(bad());
        }
        if !self.store().client(client_id).await?.is_some_and(|c| c.active) {
            return Err(OAuthError::new("invalid_client", "unknown or disabled client"));
        }
        let user = self.active_user(token.user_id.as_deref()).await?.ok_or_else(bad)?;
        let patient = token
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
            .and_then(|d| d["patient"].as_str().map(str::to_owned));
        // The user's roles may have narrowed since: re-apply them.
        let mut narrowed = token.clone();
        narrowed.scopes = ScopeSet::parse(&token.scopes).narrow_to(&role_allowance(&user.roles)).to_string();
        self.issue_tokens(&narrowed, &user, patient, None, urls).await
    }

    // ---- backend services -----------------------------------------------------------------

    /// `grant_type=client_credentials` with `client_assertion_type=...jwt-bearer`: the
    /// client proves itself with a JWT signed by a key in its registered JWK Set. A request
    /// without `scope` gets the scopes registered for the client (RFC 6749 section 3.3
    /// allows a predefined default; some clients, such as Medplum's CLI, send none).
    pub async fn client_credentials(
        &self,
        assertion: &str,
        scope: Option<&str>,
        urls: &OAuthUrls,
    ) -> Result<TokenResponse, OAuthError> {
        let invalid = |d: &str| OAuthError::new("invalid_client", d);
        // Read the claimed issuer before verifying, only to find the keys to verify with.
        let claimed = assertion
            .split('.')
            .nth(1)
            .and_then(|p| B64.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|c| c["iss"].as_str().map(str::to_owned))
            .ok_or_else(|| invalid("the client assertion is malformed"))?;
        let client = self
            .store()
            .client(&claimed)
            .await?
            .filter(|c| c.active && c.kind == ClientKind::Backend)
            .ok_or_else(|| invalid("unknown or disabled backend client"))?;
        let jwks: Value = client.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()).unwrap_or(Value::Null);
        let (_, claims) = verify_client_assertion(assertion, &jwks).map_err(|e| invalid(&e.to_string()))?;
        let now_s = self.now_ms() / 1000;
        let exp = claims["exp"].as_i64().unwrap_or(0);
        let audience_ok = match &claims["aud"] {
            Value::String(a) => a == &urls.token_endpoint,
            Value::Array(list) => list.iter().any(|a| a.as_str() == Some(&urls.token_endpoint)),
            _ => false,
        };
        if claims["iss"] != claims["sub"] || claims["sub"].as_str() != Some(&client.id) {
            return Err(invalid("iss and sub must both be the client id"));
        }
        if !audience_ok {
            return Err(invalid("aud must be the token endpoint URL"));
        }
        // SMART: exp no more than five minutes ahead.
        if exp <= now_s || exp > now_s + 300 {
            return Err(invalid("the assertion has expired or lives longer than five minutes"));
        }
        let jti = claims["jti"]
            .as_str()
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| invalid("the assertion needs a jti"))?;
        if !self.store().note_assertion_jti(&client.id, jti, exp * 1000, now_s * 1000).await? {
            return Err(invalid("this assertion was used before"));
        }
        let registered = ScopeSet::parse(&client.allowed_scopes);
        let granted = scope.map_or_else(|| registered.clone(), |asked| ScopeSet::parse(asked).narrow_to(&registered));
        if granted.clinical.is_empty() {
            return Err(OAuthError::new("invalid_scope", "none of the requested scopes is registered for this client"));
        }
        let access = BearerSecret::generate().map_err(IdentityError::from)?;
        let now = self.now_ms();
        self.store()
            .insert_token(&TokenRecord {
                digest: access.digest(),
                kind: TokenKind::Access,
                grant_id: format!("grant-{}", random_token(12).map_err(IdentityError::from)?),
                user_id: None,
                client_id: Some(client.id.clone()),
                scopes: granted.to_string(),
                stage: LoginStage::Complete,
                mfa: false,
                authenticated_ms: now,
                created_ms: now,
                last_seen_ms: now,
                idle_ms: 0,
                expires_ms: now + self.policy().access_token_ms,
                data: None,
                consumed: false,
            })
            .await?;
        Ok(TokenResponse {
            access_token: access.expose().to_owned(),
            token_type: "Bearer",
            expires_in: self.policy().access_token_ms / 1000,
            scope: granted.to_string(),
            refresh_token: None,
            id_token: None,
            patient: None,
        })
    }

    // ---- revocation and introspection -----------------------------------------------------

    /// RFC 7009: revokes an access or refresh token and the rest of its grant. Unknown
    /// tokens are not an error (the client must not learn which tokens exist).
    pub async fn revoke(&self, token: &str) -> Result<(), IdentityError> {
        let digest = BearerSecret::from_presented(token).digest();
        if let Some((t, _)) = self.store().token(&digest).await?
            && matches!(t.kind, TokenKind::Access | TokenKind::Refresh)
        {
            self.store().revoke_grant(&t.grant_id).await?;
        }
        Ok(())
    }

    /// RFC 7662: whether a token is active, and what it carries.
    pub async fn introspect(&self, token: &str, urls: &OAuthUrls) -> Result<Value, IdentityError> {
        let secret = BearerSecret::from_presented(token);
        let Some((t, _)) = self.store().token(&secret.digest()).await? else { return Ok(json!({"active": false})) };
        if t.kind != TokenKind::Access {
            return Ok(json!({"active": false}));
        }
        let Ok(principal) = self.authenticate(&secret).await else { return Ok(json!({"active": false})) };
        let mut out = json!({
            "active": true,
            "scope": t.scopes,
            "client_id": t.client_id,
            "token_type": "Bearer",
            "exp": t.expires_ms / 1000,
            "iat": t.created_ms / 1000,
            "iss": urls.issuer,
            "aud": urls.fhir_base,
        });
        if let Some(sub) = principal.user_id {
            out["sub"] = Value::String(sub);
        }
        if let Some(u) = principal.username {
            out["username"] = Value::String(u);
        }
        if let Some(p) = principal.launch_patient {
            out["patient"] = Value::String(p);
        }
        Ok(out)
    }

    /// The id_token signing key: loaded from the store, or created once for all processes.
    pub async fn id_token_signer(&self) -> Result<std::sync::Arc<IdTokenSigner>, IdentityError> {
        self.signer_cell()
            .get_or_try_init(|| async {
                let purpose = "oauth-signing-key/v1";
                if let Some((_, sealed)) = self.store().signing_key().await? {
                    let pkcs8 = self.key_ring().open_token(purpose, &sealed)?;
                    return Ok(std::sync::Arc::new(IdTokenSigner::from_pkcs8(&pkcs8)?));
                }
                let (signer, pkcs8) = IdTokenSigner::generate()?;
                let sealed = self.key_ring().seal_token(purpose, &pkcs8)?;
                self.store().insert_signing_key(signer.kid(), &sealed, self.now_ms()).await?;
                // Another process may have stored one first: everyone uses the oldest.
                let (_, sealed) =
                    self.store().signing_key().await?.ok_or(IdentityError::Conflict("signing key vanished"))?;
                let pkcs8 = self.key_ring().open_token(purpose, &sealed)?;
                Ok(std::sync::Arc::new(IdTokenSigner::from_pkcs8(&pkcs8)?))
            })
            .await
            .cloned()
    }
}
