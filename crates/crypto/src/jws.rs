//! JSON Web Signatures (RFC 7515 compact form) for OAuth: signing OpenID Connect id_tokens
//! with RS256, and verifying SMART Backend Services client assertions signed with RS384 or
//! ES384 against the client's registered JWK Set. Signatures are aws-lc-rs primitives;
//! only the JOSE framing is written here, and it accepts exactly those algorithms (no
//! `none`, no HMAC, no algorithm chosen by the token alone).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::{CryptoError, sha256};

/// An RS256 signing key for id_tokens.
pub struct IdTokenSigner {
    key: RsaKeyPair,
    kid: String,
}

impl std::fmt::Debug for IdTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenSigner").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl IdTokenSigner {
    /// A fresh 2048-bit RSA key; returns it and its PKCS#8 form (to be stored sealed).
    pub fn generate() -> Result<(Self, Vec<u8>), CryptoError> {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| CryptoError::Primitive)?;
        let pkcs8 = key.as_der().map_err(|_| CryptoError::Primitive)?.as_ref().to_vec();
        Ok((Self::from_pkcs8(&pkcs8)?, pkcs8))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| CryptoError::Primitive)?;
        let public = key.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        // The key id is a digest of the modulus: stable, and different for every key.
        let kid = B64.encode(&sha256(&n)[..12]);
        Ok(Self { key, kid })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (for the JWKS endpoint).
    pub fn public_jwk(&self) -> Value {
        let public = self.key.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
            "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// `claims` as a compact RS256 JWS.
    pub fn sign(&self, claims: &Value) -> Result<String, CryptoError> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.key
            .sign(&signature::RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut sig)
            .map_err(|_| CryptoError::Primitive)?;
        Ok(format!("{signing_input}.{}", B64.encode(sig)))
    }
}

/// Why a client assertion was refused (safe to return to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("the assertion is not a compact JWS")]
    Malformed,
    #[error("the assertion's algorithm must be RS384 or ES384")]
    Algorithm,
    #[error("no registered key matches the assertion's kid and algorithm")]
    NoKey,
    #[error("the assertion's signature does not verify")]
    BadSignature,
}

/// Verifies a compact JWS against a JWK Set; returns its header and claims.
pub fn verify_client_assertion(token: &str, jwks: &Value) -> Result<(Value, Value), JwsError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwsError::Malformed);
    };
    let decode = |part: &str| B64.decode(part).map_err(|_| JwsError::Malformed);
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| JwsError::Malformed)?;
    let claims: Value = serde_json::from_slice(&decode(p)?).map_err(|_| JwsError::Malformed)?;
    let sig = decode(s)?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or(JwsError::Malformed)?;
    let kty = match alg {
        "RS384" => "RSA",
        "ES384" => "EC",
        _ => return Err(JwsError::Algorithm),
    };
    let kid = header.get("kid").and_then(Value::as_str);
    let keys = jwks.get("keys").and_then(Value::as_array).ok_or(JwsError::NoKey)?;
    let candidates = keys.iter().filter(|k| {
        k.get("kty").and_then(Value::as_str) == Some(kty)
            && kid.is_none_or(|kid| k.get("kid").and_then(Value::as_str) == Some(kid))
            && k.get("alg").and_then(Value::as_str).is_none_or(|a| a == alg)
    });
    let message = format!("{h}.{p}");
    let mut any = false;
    for key in candidates {
        any = true;
        let field = |name: &str| key.get(name).and_then(Value::as_str).and_then(|v| B64.decode(v).ok());
        let ok = match alg {
            "RS384" => match (field("n"), field("e")) {
                (Some(n), Some(e)) => signature::RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(&signature::RSA_PKCS1_2048_8192_SHA384, message.as_bytes(), &sig)
                    .is_ok(),
                _ => false,
            },
            _ => match (key.get("crv").and_then(Value::as_str), field("x"), field("y")) {
                (Some("P-384"), Some(x), Some(y)) if x.len() == 48 && y.len() == 48 => {
                    let mut point = vec![4u8];
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                        .verify(message.as_bytes(), &sig)
                        .is_ok()
                }
                _ => false,
            },
        };
        if ok {
            return Ok((header, claims));
        }
    }
    Err(if any { JwsError::BadSignature } else { JwsError::NoKey })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    fn es384_client() -> (EcdsaKeyPair, Value) {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).expect("ec key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).expect("ec key");
        let point = key.public_key().as_ref().to_vec();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", "x": B64.encode(&point[1..49]), "y": B64.encode(&point[49..97])}]});
        (key, jwks)
    }

    fn es384_sign(key: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = key.sign(&rng, input.as_bytes()).expect("sign");
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    #[test]
    fn es384_assertions_verify_and_tampering_is_caught() {
        let (key, jwks) = es384_client();
        let header = json!({"alg": "ES384", "kid": "k1", "typ": "JWT"});
        let claims = json!({"iss": "client-1", "sub": "client-1", "jti": "abc"});
        let token = es384_sign(&key, &header, &claims);
        let (_, got) = verify_client_assertion(&token, &jwks).expect("valid");
        assert_eq!(got["iss"], "client-1");

        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = B64.encode(json!({"iss": "client-2", "sub": "client-1", "jti": "abc"}).to_string());
        assert_eq!(verify_client_assertion(&parts.join("."), &jwks), Err(JwsError::BadSignature));

        let (other_key, _) = es384_client();
        let forged = es384_sign(&other_key, &header, &claims);
        assert_eq!(verify_client_assertion(&forged, &jwks), Err(JwsError::BadSignature), "another key's signature");

        let none = format!("{}.{}.", B64.encode(json!({"alg": "none"}).to_string()), B64.encode(claims.to_string()));
        assert_eq!(verify_client_assertion(&none, &jwks), Err(JwsError::Algorithm));
        let hs = format!("{}.{}.AAAA", B64.encode(json!({"alg": "HS384"}).to_string()), B64.encode(claims.to_string()));
        assert_eq!(verify_client_assertion(&hs, &jwks), Err(JwsError::Algorithm), "no HMAC with a public key");
        let rs = es384_sign(&key, &json!({"alg": "RS384", "kid": "k1"}), &claims);
        assert_eq!(verify_client_assertion(&rs, &jwks), Err(JwsError::NoKey), "alg must match the key type");
        assert_eq!(verify_client_assertion("a.b", &jwks), Err(JwsError::Malformed));
    }

    #[test]
    fn id_tokens_verify_with_the_published_key() {
        let (signer, pkcs8) = IdTokenSigner::generate().expect("rsa");
        let again = IdTokenSigner::from_pkcs8(&pkcs8).expect("reload");
        assert_eq!(signer.kid(), again.kid());
        let token = signer.sign(&json!({"sub": "user-1"})).expect("sign");
        let jwk = signer.public_jwk();
        let (n, e) = (
            B64.decode(jwk["n"].as_str().expect("n")).expect("b64"),
            B64.decode(jwk["e"].as_str().expect("e")).expect("b64"),
        );
        let (input, sig) = token.rsplit_once('.').expect("jws");
        signature::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &B64.decode(sig).expect("b64"))
            .expect("verifies");
    }
}
