//! SMART Backend Services client assertions (JWS) and OAuth form bodies with their scopes.

use std::collections::HashMap;
use std::sync::OnceLock;

use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use phivault_crypto::verify_client_assertion;
use phivault_identity::scopes::{Permissions, ScopeContext, ScopeSet};
use serde_json::{Value, json};

/// A client's registered key set: one P-384 key whose private half this process discards.
fn registered_keys() -> &'static Value {
    static KEYS: OnceLock<Value> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).expect("key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).expect("key");
        let point = key.public_key().as_ref();
        json!({"keys": [
            {"kty": "EC", "crv": "P-384", "kid": "k1", "alg": "ES384", "x": B64.encode(&point[1..49]), "y": B64.encode(&point[49..97])},
            {"kty": "RSA", "kid": "k2", "alg": "RS384", "n": B64.encode([0xc5u8; 256]), "e": "AQAB"}
        ]})
    })
}

/// A `client_assertion` against the registered keys (which must refuse it: nobody here
/// holds their private halves), then against a key set the input brings itself.
pub fn jwt_assertion(data: &[u8]) {
    let (token, jwks) = crate::split_nul(data);
    let Ok(token) = std::str::from_utf8(token) else { return };
    assert!(verify_client_assertion(token, registered_keys()).is_err(), "a forged client assertion verified");
    if let Some(jwks) = jwks.and_then(|j| serde_json::from_slice::<Value>(j).ok()) {
        let _ = verify_client_assertion(token, &jwks);
    }
}

const CONTEXTS: [ScopeContext; 3] = [ScopeContext::Patient, ScopeContext::User, ScopeContext::System];
const TYPES: [&str; 4] = ["Patient", "Observation", "DocumentReference", "AuditEvent"];
const NEEDS: [Permissions; 5] =
    [Permissions::CREATE, Permissions::READ, Permissions::UPDATE, Permissions::DELETE, Permissions::SEARCH];

/// An authorize or token form as axum decodes it, and its `scope`: narrowing to what a
/// client was registered for never grants what either side lacks, and the scope string
/// read back from the narrowed set means the same set.
pub fn oauth_form(data: &[u8]) {
    let Ok(form) = serde_urlencoded::from_bytes::<HashMap<String, String>>(data) else { return };
    let requested = ScopeSet::parse(form.get("scope").map_or("", String::as_str));
    let registered =
        ScopeSet::parse(form.get("registered").map_or("patient/*.rs user/Observation.cru", String::as_str));
    let granted = requested.narrow_to(&registered);
    for context in CONTEXTS {
        for kind in TYPES {
            for need in NEEDS {
                if granted.allows(context, kind, need) {
                    assert!(requested.allows(context, kind, need), "narrowing granted what was not asked");
                    assert!(registered.allows(context, kind, need), "narrowing granted what was not registered");
                }
            }
        }
    }
    let reread = ScopeSet::parse(&granted.to_string());
    for context in CONTEXTS {
        for kind in TYPES {
            for need in NEEDS {
                assert_eq!(reread.allows(context, kind, need), granted.allows(context, kind, need), "{granted}");
            }
        }
    }
}
