//! Bearer secrets (sessions, invitations, resets): 256 random bits shown once, stored as SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A newly made secret and the hash to store for it.
pub struct NewSecret {
    /// Shown to its holder once; never stored or logged.
    pub token: String,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSecret(..)")
    }
}

pub fn generate() -> crate::Result<NewSecret> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| crate::Error::Unexpected(anyhow::anyhow!("rng: {e}")))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    Ok(NewSecret { token, hash })
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_unique_and_hash_to_what_is_stored() -> crate::Result<()> {
        let a = super::generate()?;
        let b = super::generate()?;
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 43);
        assert_eq!(super::hash(&a.token), a.hash);
        assert_ne!(super::hash(&b.token), a.hash);
        Ok(())
    }
}
