//! TOTP second factor (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps), the settings every
//! authenticator app understands, and single-use recovery codes.
//!
//! Safeguard: 45 CFR 164.312(d) person or entity authentication; ONC 170.315(d)(13).

use phivault_crypto::{constant_time_eq, hotp, random_bytes, sha256};

pub const TOTP_DIGITS: u32 = 6;
pub const TOTP_STEP_SECONDS: i64 = 30;
/// Steps accepted either side of now, for clock drift between phone and server.
pub const TOTP_SKEW_STEPS: i64 = 1;
pub const RECOVERY_CODE_COUNT: usize = 10;

/// A TOTP shared secret (160 bits, as RFC 4226 recommends). Stored only sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    pub fn generate() -> Result<Self, phivault_crypto::CryptoError> {
        Ok(Self(random_bytes::<20>()?.to_vec()))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Decodes the base32 form (as shown at enrolment; case and spaces ignored).
    pub fn from_base32(text: &str) -> Option<Self> {
        let mut out = Vec::new();
        let mut buffer: u32 = 0;
        let mut bits = 0u32;
        for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
            let value = BASE32_ALPHABET.iter().position(|&a| char::from(a) == c.to_ascii_uppercase())?;
            buffer = (buffer << 5) | value as u32;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        Some(Self(out))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, as authenticator apps take it.
    pub fn base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The `otpauth://` URI an authenticator app scans (Key Uri Format).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer_enc = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer_enc}:{}?secret={}&issuer={issuer_enc}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECONDS}",
            percent_encode(account),
            self.base32()
        )
    }

    /// The code for the step containing `unix_seconds`.
    pub fn code_at(&self, unix_seconds: i64) -> String {
        self.code_for_step(unix_seconds.div_euclid(TOTP_STEP_SECONDS))
    }

    fn code_for_step(&self, step: i64) -> String {
        format!("{:0width$}", hotp(&self.0, step as u64, TOTP_DIGITS), width = TOTP_DIGITS as usize)
    }

    /// The time step `code` belongs to, if it matches now or a neighbouring step. The
    /// caller must still refuse a step at or before the last one accepted (replay).
    pub fn matching_step(&self, code: &str, unix_seconds: i64) -> Option<i64> {
        let code = code.trim();
        if code.len() != TOTP_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = unix_seconds.div_euclid(TOTP_STEP_SECONDS);
        // Check every candidate (no early exit) so timing does not reveal which matched.
        let mut found = None;
        for step in (now - TOTP_SKEW_STEPS)..=(now + TOTP_SKEW_STEPS) {
            if constant_time_eq(self.code_for_step(step).as_bytes(), code.as_bytes()) && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

/// Ten fresh recovery codes (80 bits each, `XXXX-XXXX-XXXX-XXXX` in base32) and the
/// digests to store. 80 random bits make a plain SHA-256 digest safe against guessing.
pub fn generate_recovery_codes() -> Result<Vec<(String, [u8; 32])>, phivault_crypto::CryptoError> {
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let raw = base32_encode(&random_bytes::<10>()?);
            let code = raw.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>();
            let code = code.join("-");
            let digest = recovery_code_digest(&code);
            Ok((code, digest))
        })
        .collect()
}

/// The stored digest of a recovery code as typed (case, spaces and dashes ignored).
pub fn recovery_code_digest(typed: &str) -> [u8; 32] {
    let normalized: String =
        typed.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
    sha256(normalized.as_bytes())
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32_ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        for (input, want) in
            [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("foobar", "MZXW6YTBOI")]
        {
            assert_eq!(base32_encode(input.as_bytes()), want);
            assert_eq!(TotpSecret::from_base32(want).map(|s| s.0), Some(input.as_bytes().to_vec()));
        }
        assert!(TotpSecret::from_base32("not base32!").is_none());
    }

    #[test]
    fn codes_match_within_one_step_only() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let t = 1_111_111_109;
        assert_eq!(secret.code_at(t), "081804");
        assert_eq!(secret.matching_step("081804", t), Some(t / 30));
        assert_eq!(secret.matching_step("081804", t + 30), Some(t / 30), "previous step accepted");
        assert_eq!(secret.matching_step("081804", t - 30), Some(t / 30), "next step accepted");
        assert_eq!(secret.matching_step("081804", t + 61), None, "two steps late is refused");
        assert_eq!(secret.matching_step("81804", t), None);
        assert_eq!(secret.matching_step("08180a", t), None);
    }

    #[test]
    fn otpauth_uri_has_the_interoperable_settings() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let uri = secret.otpauth_uri("phivault clinic", "daffy");
        assert_eq!(
            uri,
            "otpauth://totp/phivault%20clinic:daffy?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=phivault%20clinic&algorithm=SHA1&digits=6&period=30"
        );
        assert!(format!("{secret:?}").contains(".."), "Debug hides the secret");
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalized() {
        let codes = generate_recovery_codes().expect("rng");
        assert_eq!(codes.len(), 10);
        let mut plain: Vec<&String> = codes.iter().map(|(c, _)| c).collect();
        plain.dedup();
        assert_eq!(plain.len(), 10);
        let (code, digest) = &codes[0];
        assert_eq!(code.len(), 19);
        assert_eq!(recovery_code_digest(&code.to_lowercase().replace('-', " ")), *digest);
    }
}
