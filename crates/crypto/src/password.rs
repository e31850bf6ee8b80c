//! Argon2id password hashing in PHC string format (used for user passwords).

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::{CryptoError, random_bytes};

/// Argon2id cost parameters. The default is OWASP's minimum (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for PasswordParams {
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

/// Hashes and verifies passwords with Argon2id.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: PasswordParams,
}

impl PasswordHasher {
    /// A hasher with `params`; refuses parameters below OWASP's minimum.
    pub fn new(params: PasswordParams) -> Result<Self, CryptoError> {
        if params.memory_kib < 19 * 1024 || params.iterations < 2 || params.parallelism < 1 {
            return Err(CryptoError::PasswordHash("argon2 parameters below OWASP minimum (19 MiB, t=2, p=1)"));
        }
        Ok(Self { params })
    }

    fn argon2(&self) -> Result<Argon2<'static>, CryptoError> {
        let params = Params::new(self.params.memory_kib, self.params.iterations, self.params.parallelism, None)
            .map_err(|_| CryptoError::PasswordHash("invalid argon2 parameters"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// A PHC string (`$argon2id$v=19$m=...`) with a fresh 16-byte salt.
    pub fn hash(&self, password: &str) -> Result<String, CryptoError> {
        let salt = random_bytes::<16>()?;
        let hash = self
            .argon2()?
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(|_| CryptoError::PasswordHash("hashing failed"))?;
        Ok(hash.to_string())
    }

    /// The parameters new hashes use.
    pub fn params(&self) -> PasswordParams {
        self.params
    }

    /// Whether `phc` was made with weaker (or merely different) parameters than the
    /// current ones, so that a successful login should store a fresh hash.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = argon2::password_hash::phc::PasswordHash::new(phc) else { return true };
        let Ok(params) = Params::try_from(&parsed) else { return true };
        parsed.algorithm != argon2::ARGON2ID_IDENT
            || params.m_cost() != self.params.memory_kib
            || params.t_cost() != self.params.iterations
            || params.p_cost() != self.params.parallelism
    }

    /// Whether `password` matches `phc`. A malformed hash counts as no match.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        self.argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), phc).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_and_rejects_wrong_password() {
        let hasher = PasswordHasher::new(PasswordParams::default()).expect("params");
        let phc = hasher.hash("correct horse battery staple").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify("correct horse battery staple", &phc));
        assert!(!hasher.verify("correct horse battery stapl", &phc));
        assert!(!hasher.verify("x", "not a phc string"));
    }

    #[test]
    fn raised_parameters_call_for_a_rehash() {
        let old = PasswordHasher::new(PasswordParams::default()).expect("params");
        let phc = old.hash("correct horse battery staple").expect("hash");
        assert!(!old.needs_rehash(&phc));
        let raised =
            PasswordHasher::new(PasswordParams { memory_kib: 32 * 1024, iterations: 3, parallelism: 1 }).expect("p");
        assert!(raised.needs_rehash(&phc));
        assert!(raised.verify("correct horse battery staple", &phc), "old hashes still verify");
        assert!(raised.needs_rehash("garbage"));
    }

    #[test]
    fn weak_parameters_are_refused() {
        assert!(PasswordHasher::new(PasswordParams { memory_kib: 4096, iterations: 2, parallelism: 1 }).is_err());
        assert!(PasswordHasher::new(PasswordParams { memory_kib: 19456, iterations: 1, parallelism: 1 }).is_err());
    }
}
