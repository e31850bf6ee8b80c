//! Password rules after NIST SP 800-63B: length, not a known breached password, not the
//! username, no reuse; composition rules only when an organization turns them on.
//!
//! Safeguard: 45 CFR 164.308(a)(5)(ii)(D) password management.

use phivault_crypto::sha256;

/// The shipped list of common breached passwords, as sorted 32-bit SHA-256 prefixes of the
/// lowercased passwords (see `data/COMMON-PASSWORDS-SOURCE.md`).
static COMMON_PASSWORDS: &[u8] = include_bytes!("../data/common-passwords.bin");
const COMMON_MAGIC: &[u8; 8] = b"PVPWL001";

/// The organization's password rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Shortest accepted length, in characters (NIST: at least 8; phivault: 12).
    pub min_length: usize,
    /// Longest accepted length, in characters (NIST: at least 64).
    pub max_length: usize,
    /// Demand upper and lower case letters, a digit and a symbol. Off by default: NIST
    /// advises against composition rules; some organizations' written policies require it.
    pub require_composition: bool,
    /// How many previous passwords may not be reused.
    pub history: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 12, max_length: 128, require_composition: false, history: 5 }
    }
}

/// Why a new password was refused. Messages name the rule, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    #[error("the password must be at least {0} characters long")]
    TooShort(usize),
    #[error("the password must be at most {0} characters long")]
    TooLong(usize),
    #[error("the password may contain only printable characters and spaces")]
    NotPrintable,
    #[error("the password must contain an upper-case letter, a lower-case letter, a digit and a symbol")]
    Composition,
    #[error("the password is on a list of commonly used or breached passwords; choose another")]
    Common,
    #[error("the password must not contain the username")]
    ContainsUsername,
    #[error("the password was used recently; choose one not among the last {0}")]
    Reused(usize),
}

impl PasswordPolicy {
    /// Checks everything that does not need the stored history.
    pub fn check(&self, password: &str, username: &str) -> Result<(), PasswordRejection> {
        let length = password.chars().count();
        if length < self.min_length {
            return Err(PasswordRejection::TooShort(self.min_length));
        }
        if length > self.max_length {
            return Err(PasswordRejection::TooLong(self.max_length));
        }
        if password.chars().any(char::is_control) {
            return Err(PasswordRejection::NotPrintable);
        }
        if self.require_composition {
            let has = |f: fn(char) -> bool| password.chars().any(f);
            if !(has(char::is_uppercase)
                && has(char::is_lowercase)
                && has(|c| c.is_ascii_digit())
                && has(|c| !c.is_alphanumeric()))
            {
                return Err(PasswordRejection::Composition);
            }
        }
        let lowered = password.to_lowercase();
        let username = username.trim().to_lowercase();
        if username.chars().count() >= 3 && lowered.contains(&username) {
            return Err(PasswordRejection::ContainsUsername);
        }
        if is_common_password(password) {
            return Err(PasswordRejection::Common);
        }
        Ok(())
    }
}

/// Whether `password` (compared case-insensitively) is on the shipped breached list.
pub fn is_common_password(password: &str) -> bool {
    let digest = sha256(password.to_lowercase().as_bytes());
    let wanted = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let entries = common_entries();
    let mut lo = 0usize;
    let mut hi = entries.len() / 4;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at =
            u32::from_be_bytes([entries[mid * 4], entries[mid * 4 + 1], entries[mid * 4 + 2], entries[mid * 4 + 3]]);
        match at.cmp(&wanted) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
        }
    }
    false
}

/// The sorted entries, after checking the header (a corrupt list fails the tests below,
/// and at run time yields an empty slice rather than out-of-bounds reads).
fn common_entries() -> &'static [u8] {
    let Some((header, rest)) = COMMON_PASSWORDS.split_at_checked(12) else { return &[] };
    if &header[..8] != COMMON_MAGIC {
        return &[];
    }
    let count = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    rest.get(..count * 4).unwrap_or(&[])
}

/// How many entries the shipped list holds.
pub fn common_password_count() -> usize {
    common_entries().len() / 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_is_large_and_sorted() {
        assert!(common_password_count() >= 100_000, "{}", common_password_count());
        let e = common_entries();
        let values: Vec<u32> = e.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "entries must be strictly ascending");
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        let policy = PasswordPolicy { min_length: 6, ..PasswordPolicy::default() };
        for pw in ["password", "123456", "qwerty", "iloveyou", "PASSWORD", "Password123", "qwertyuiop"] {
            assert!(is_common_password(pw), "{pw} should be on the list");
        }
        assert_eq!(policy.check("iloveyou", "daffy"), Err(PasswordRejection::Common));
        assert!(!is_common_password("daffy-duck-quacks-at-midnight-42"));
    }

    #[test]
    fn nist_defaults() {
        let p = PasswordPolicy::default();
        assert_eq!(p.check("short pass", "daffy"), Err(PasswordRejection::TooShort(12)));
        assert_eq!(p.check(&"x".repeat(129), "daffy"), Err(PasswordRejection::TooLong(128)));
        assert!(p.check(&"ab c".repeat(16), "daffy").is_ok(), "64 characters with spaces are fine");
        assert_eq!(p.check("tab\there is not printable", "daffy"), Err(PasswordRejection::NotPrintable));
        assert!(p.check("all lower case words are fine", "daffy").is_ok(), "no composition rule by default");
        assert!(p.check("ünïcödé pässwörd 😀 ok", "daffy").is_ok(), "every printable character is allowed");
        assert_eq!(p.check("I am DAFFY the duck!", "daffy"), Err(PasswordRejection::ContainsUsername));
    }

    #[test]
    fn composition_rule_when_configured() {
        let p = PasswordPolicy { require_composition: true, ..PasswordPolicy::default() };
        assert_eq!(p.check("all lower case words", "daffy"), Err(PasswordRejection::Composition));
        assert!(p.check("Quacking-At-Dawn-1937", "daffy").is_ok());
    }
}
