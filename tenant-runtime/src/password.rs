//! Password hashing with argon2id at OWASP's parameters (m=19 MiB, t=2, p=1).
//!
//! These calls are CPU-heavy (tens of milliseconds): callers run them off async worker threads,
//! through a bounded pool.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

fn argon2() -> crate::Result<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| crate::Error::Unexpected(anyhow::anyhow!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

pub fn hash(password: &str) -> crate::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| crate::Error::Unexpected(anyhow::anyhow!("rng: {e}")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| crate::Error::Unexpected(anyhow::anyhow!("salt: {e}")))?;
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| crate::Error::Unexpected(anyhow::anyhow!("hash: {e}")))
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    let (Ok(h), Ok(argon2)) = (PasswordHash::new(stored), argon2()) else {
        return false;
    };
    argon2.verify_password(password.as_bytes(), &h).is_ok()
}

/// Whether a stored hash was made with weaker parameters than today's (rehash at next login).
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(h) = PasswordHash::new(stored) else {
        return true;
    };
    let Ok(p) = Params::try_from(&h) else {
        return true;
    };
    h.algorithm.as_str() != "argon2id"
        || p.m_cost() < MEMORY_KIB
        || p.t_cost() < ITERATIONS
        || p.p_cost() < PARALLELISM
}

/// A hash of a random password, verified against when an account does not exist so that every
/// failure path does the same work.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 24];
        let _ = getrandom::fill(&mut pw);
        hash(&hex::encode(pw)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_password_and_uses_argon2id() -> crate::Result<()> {
        let h = hash("correct horse battery")?;
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("correct horse battery", "not a hash"));
        assert!(!needs_rehash(&h));
        assert!(needs_rehash(
            "$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ));
        assert!(!verify("x", dummy_hash()));
        Ok(())
    }
}
