//! Hashes of high-entropy secrets (session and OAuth tokens, recovery codes), and the
//! HOTP function that TOTP second factors are built on.

use aws_lc_rs::{digest, hmac};

/// SHA-256 of `bytes`. Used to store random tokens of 128+ bits: the database holds only
/// the digest, so a copy of it does not let anyone present a live token.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// HOTP (RFC 4226) value for `counter`, reduced to `digits` decimal digits. HMAC-SHA-1 is
/// what RFC 6238 authenticator apps implement; it is used here only as that PRF.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // Dynamic truncation, RFC 4226 section 5.3.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    binary % 10u32.pow(digits)
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotp_matches_rfc4226_appendix_d() {
        let secret = b"12345678901234567890";
        let expected = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64, 6), *want, "counter {counter}");
        }
    }

    #[test]
    fn totp_matches_rfc6238_appendix_b_sha1() {
        let secret = b"12345678901234567890";
        for (time, want) in [(59u64, 94287082), (1111111109, 7081804), (1234567890, 89005924), (20000000000, 65353130)]
        {
            assert_eq!(hotp(secret, time / 30, 8), want, "t={time}");
        }
    }

    #[test]
    fn sha256_and_comparison() {
        let d = sha256(b"abc");
        assert_eq!(d[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
