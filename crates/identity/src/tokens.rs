//! Bearer secrets: browser sessions, OAuth authorization codes, access and refresh tokens.
//! Each is 256 random bits handed to the client once; the database keeps only its SHA-256,
//! so a stolen copy of the database holds no usable session.

use base64::Engine;
use phivault_crypto::{CryptoError, random_bytes, sha256};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A browser session (cookie).
    Session,
    /// An OAuth authorization code (single use, minutes).
    AuthCode,
    /// An OAuth access token (bearer, minutes).
    Access,
    /// An OAuth refresh token (single use: each refresh issues a new one).
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::AuthCode => "code",
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "session" => Some(TokenKind::Session),
            "code" => Some(TokenKind::AuthCode),
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

/// How far a browser login has got. Only `Complete` sessions reach PHI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStage {
    /// Password accepted; a TOTP or recovery code is due.
    NeedsMfa,
    /// The password must be changed (first login, administrator reset).
    NeedsPasswordChange,
    /// The role requires MFA and none is enrolled yet.
    NeedsEnrolment,
    Complete,
}

impl LoginStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginStage::NeedsMfa => "needs_mfa",
            LoginStage::NeedsPasswordChange => "needs_password_change",
            LoginStage::NeedsEnrolment => "needs_enrolment",
            LoginStage::Complete => "complete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "needs_mfa" => Some(LoginStage::NeedsMfa),
            "needs_password_change" => Some(LoginStage::NeedsPasswordChange),
            "needs_enrolment" => Some(LoginStage::NeedsEnrolment),
            "complete" => Some(LoginStage::Complete),
            _ => None,
        }
    }
}

/// A token as the client holds it. `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerSecret(String);

impl std::fmt::Debug for BearerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerSecret(..)")
    }
}

impl BearerSecret {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)))
    }

    pub fn from_presented(value: &str) -> Self {
        Self(value.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database stores and looks up.
    pub fn digest(&self) -> [u8; 32] {
        sha256(self.0.as_bytes())
    }
}

/// One stored token row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub digest: [u8; 32],
    pub kind: TokenKind,
    /// Everything issued from one login or one authorization shares a grant id, so that
    /// reuse of a spent code or refresh token can revoke the whole family.
    pub grant_id: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// Space-separated OAuth scopes (empty for browser sessions).
    pub scopes: String,
    pub stage: LoginStage,
    /// Whether a second factor was verified in this login.
    pub mfa: bool,
    pub authenticated_ms: i64,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    /// Inactivity after which the token stops working (automatic logoff); 0 for none.
    pub idle_ms: i64,
    pub expires_ms: i64,
    /// Kind-specific JSON (an authorization code's redirect URI and PKCE challenge, the
    /// launch patient of a SMART grant).
    pub data: Option<String>,
    pub consumed: bool,
}

impl TokenRecord {
    /// Whether the token is usable at `now` (not expired, not idle too long, not spent).
    pub fn live_at(&self, now_ms: i64) -> bool {
        !self.consumed && now_ms < self.expires_ms && (self.idle_ms == 0 || now_ms - self.last_seen_ms < self.idle_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_stored_only_as_digests() {
        let a = BearerSecret::generate().expect("rng");
        let b = BearerSecret::generate().expect("rng");
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert_eq!(BearerSecret::from_presented(a.expose()).digest(), a.digest());
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn idle_and_absolute_expiry() {
        let t = TokenRecord {
            digest: [0; 32],
            kind: TokenKind::Session,
            grant_id: "g".into(),
            user_id: Some("u".into()),
            client_id: None,
            scopes: String::new(),
            stage: LoginStage::Complete,
            mfa: true,
            authenticated_ms: 0,
            created_ms: 0,
            last_seen_ms: 1_000,
            idle_ms: 900_000,
            expires_ms: 43_200_000,
            data: None,
            consumed: false,
        };
        assert!(t.live_at(900_999));
        assert!(!t.live_at(901_000), "idle timeout");
        let busy = TokenRecord { last_seen_ms: 43_000_000, ..t.clone() };
        assert!(!busy.live_at(43_200_000), "absolute lifetime");
        assert!(!TokenRecord { consumed: true, ..t }.live_at(2_000));
    }
}
