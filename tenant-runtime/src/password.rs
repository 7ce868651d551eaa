//! Password hashing with argon2id at OWASP's parameters (m=19 MiB, t=2, p=1).
//!
//! These calls are CPU-heavy (tens of milliseconds): callers run them off async worker threads,
//! through a bounded pool.

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::cell::RefCell;
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

thread_local! {
    /// argon2's work area (19 MiB), kept by each thread that verifies instead of allocated for
    /// every check: allocations that size, freed and made again at a high rate, left glibc's
    /// arenas holding hundreds of MiB under sign-in load, and each fresh one is paged in.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Checks a password against a stored hash with the hash's own algorithm, version and
/// parameters; a malformed hash never matches. The outputs are compared in constant time.
pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(h) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(h.algorithm);
    let version = h.version.map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, Params::try_from(&h))
    else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let hashed = BLOCKS.with(|work| {
        let mut work = work.borrow_mut();
        if work.len() < blocks {
            work.resize(blocks, Block::new());
        }
        Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            &mut work[..blocks],
        )
    });
    // `Output`'s equality is constant-time.
    hashed.is_ok() && Output::new(&out).is_ok_and(|computed| computed == expected)
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

    /// Hashes made with other algorithms, versions, costs and lengths are checked with their
    /// own parameters, as argon2's own verifier does, on one thread reusing its work area.
    #[test]
    fn every_stored_hash_is_checked_with_its_own_parameters() -> crate::Result<()> {
        use argon2::password_hash::PasswordVerifier;
        let fail =
            |e: argon2::password_hash::Error| crate::Error::Unexpected(anyhow::anyhow!("{e}"));
        let salt = SaltString::encode_b64(b"0123456789abcdef").map_err(fail)?;
        let cases = [
            (Algorithm::Argon2id, Version::V0x13, 19 * 1024, 2, None),
            (Algorithm::Argon2id, Version::V0x13, 1024, 1, Some(16)),
            (Algorithm::Argon2i, Version::V0x10, 2048, 3, None),
            (Algorithm::Argon2d, Version::V0x13, 4096, 1, Some(64)),
            (Algorithm::Argon2id, Version::V0x13, 8, 1, None),
        ];
        for (algorithm, version, m, t, len) in cases {
            let params = Params::new(m, t, 1, len)
                .map_err(|e| crate::Error::Unexpected(anyhow::anyhow!("{e}")))?;
            let a = Argon2::new(algorithm, version, params);
            let stored = a
                .hash_password(b"pass phrase", &salt)
                .map_err(fail)?
                .to_string();
            let parsed = PasswordHash::new(&stored).map_err(fail)?;
            assert!(
                a.verify_password(b"pass phrase", &parsed).is_ok(),
                "{stored}"
            );
            assert!(verify("pass phrase", &stored), "{stored}");
            assert!(!verify("pass phrasE", &stored), "{stored}");
            // The output truncated or changed never matches.
            let cut = &stored[..stored.len() - 2];
            assert!(!verify("pass phrase", cut), "{cut}");
        }
        Ok(())
    }
}
