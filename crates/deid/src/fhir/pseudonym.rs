//! Keyed pseudonyms: HMAC-SHA-256 under the project key.
//!
//! A keyed hash, not a plain one, because ids and record numbers come from
//! small or guessable spaces (an MRN has nine digits): anyone could hash
//! them all and reverse a plain hash. Without the key the pseudonyms are
//! unlinkable to the source values and across projects; with the same key
//! they are stable, so exports of one project join.

use aws_lc_rs::hmac;

/// Labels that separate the uses of the key, so that a resource id and an
/// identifier value that happen to be equal get unrelated pseudonyms, and a
/// date-shift offset reveals nothing about an id pseudonym.
const ID_DOMAIN: &[u8] = b"phivault-deid/id/v1";
const IDENTIFIER_DOMAIN: &[u8] = b"phivault-deid/identifier/v1";
const SHIFT_DOMAIN: &[u8] = b"phivault-deid/date-shift/v1";

/// The largest date shift, in days, either way.
pub(crate) const MAX_SHIFT_DAYS: i64 = 365;

/// The project key, ready to sign.
pub(crate) struct Keyed {
    key: hmac::Key,
}

impl std::fmt::Debug for Keyed {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyed(..)")
    }
}

impl Keyed {
    /// Wraps the project key.
    pub(crate) fn new(project_key: &[u8]) -> Keyed {
        Keyed { key: hmac::Key::new(hmac::HMAC_SHA256, project_key) }
    }

    fn mac(&self, domain: &[u8], parts: &[&str]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(domain);
        for p in parts {
            // Length-prefixed parts, so ("ab","c") and ("a","bc") differ.
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p.as_bytes());
        }
        ctx.sign()
    }

    /// The pseudonym of a resource id, shaped as a UUID (version 8, the
    /// RFC 9562 "custom" version) so it is both a valid FHIR `id` and a
    /// valid `urn:uuid:` reference. It does not depend on the resource type
    /// because `urn:uuid:` references do not carry one.
    pub(crate) fn id(&self, id: &str) -> String {
        let tag = self.mac(ID_DOMAIN, &[id]);
        let mut b = [0u8; 16];
        b.copy_from_slice(&tag.as_ref()[..16]);
        b[6] = (b[6] & 0x0f) | 0x80;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex(&b);
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }

    /// The pseudonym of an `Identifier` value within its system: 128 bits
    /// as 32 hex digits.
    pub(crate) fn identifier(&self, system: &str, value: &str) -> String {
        let tag = self.mac(IDENTIFIER_DOMAIN, &[system, value]);
        hex(&tag.as_ref()[..16])
    }

    /// The patient's date shift in days, in `-MAX_SHIFT_DAYS..=MAX_SHIFT_DAYS`
    /// and never 0 (a zero shift would publish the real dates).
    pub(crate) fn shift_days(&self, patient_id: &str) -> i64 {
        let tag = self.mac(SHIFT_DOMAIN, &[patient_id]);
        let mut b = [0u8; 8];
        b.copy_from_slice(&tag.as_ref()[..8]);
        let n = u64::from_be_bytes(b) % (2 * MAX_SHIFT_DAYS as u64);
        // 0..730 → -365..=-1 and 1..=365.
        let d = n as i64 - MAX_SHIFT_DAYS;
        if d >= 0 { d + 1 } else { d }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}
