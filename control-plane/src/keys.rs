//! The server's secret key, from which every key tenantd needs is derived (device cookies,
//! sealing the token-signing keys of [`jws`], signed authorization requests). It comes from `TENANTD_SECRET_KEY`, or from `<data dir>/secret.key`, made with 256
//! random bits at first start and readable by its owner only. Every node (and `tenantctl`) of
//! an installation must use the same key.

pub mod jws;
pub mod remote;

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest;

use crate::config::Config;

type HmacSha256 = Hmac<sha2_hmac::Sha256>;

/// The root key; never printed.
#[derive(Clone)]
pub struct ServerKey([u8; 32]);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

/// The name of the key file in the data directory.
pub const KEY_FILE: &str = "secret.key";

impl ServerKey {
    /// The configured key, or the key file's (made now if missing).
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        match &config.secret_key {
            Some(s) => Self::from_setting(s.expose()),
            None => Self::from_file(&config.data_dir.join(KEY_FILE)),
        }
    }

    /// A setting of at least 32 characters (e.g. `openssl rand -hex 32`), hashed to 256 bits.
    pub fn from_setting(value: &str) -> anyhow::Result<Self> {
        if value.trim().len() < 32 {
            anyhow::bail!("TENANTD_SECRET_KEY is too short: use at least 32 random characters");
        }
        Ok(Self(sha2::Sha256::digest(value.trim().as_bytes()).into()))
    }

    fn from_file(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                restrict(path)?;
                let bytes = hex::decode(text.trim())
                    .map_err(|_| anyhow::anyhow!("{} is not a key file", path.display()))?;
                let key: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("{} is not a key file", path.display()))?;
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    fn create(path: &Path) -> anyhow::Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("rng: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut f) => {
                f.write_all(hex::encode(key).as_bytes())?;
                f.sync_all()?;
                Ok(Self(key))
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::from_file(path),
            Err(e) => Err(anyhow::anyhow!("cannot create {}: {e}", path.display())),
        }
    }

    /// A key for one purpose, independent of the keys for any other.
    pub fn derive(&self, purpose: &str) -> DerivedKey {
        DerivedKey(mac(&self.0, purpose.as_bytes()))
    }
}

/// A key derived for one purpose; never printed.
#[derive(Clone)]
pub struct DerivedKey([u8; 32]);

impl std::fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedKey(..)")
    }
}

impl DerivedKey {
    /// HMAC-SHA256 of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 32] {
        mac(&self.0, msg)
    }

    /// Whether `tag` is (a prefix of at least 16 bytes of) the HMAC of `msg`, in constant time.
    pub fn verify(&self, msg: &[u8], tag: &[u8]) -> bool {
        let full = self.sign(msg);
        tag.len() >= 16
            && tag.len() <= full.len()
            && bool::from(subtle::ConstantTimeEq::ct_eq(&full[..tag.len()], tag))
    }
}

fn mac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut m = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => <HmacSha256 as KeyInit>::new(&Default::default()),
    };
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// Makes a secret file readable by its owner only.
fn restrict(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "key file was readable by others; made it 0600");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let a = ServerKey::from_file(&path).unwrap();
        let b = ServerKey::from_file(&path).unwrap();
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{a:?}"), "ServerKey(..)");
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_verify_only_their_own_tags() {
        let k = ServerKey::from_setting(&"k".repeat(40)).unwrap();
        let (d1, d2) = (k.derive("device"), k.derive("other"));
        let tag = d1.sign(b"msg");
        assert!(d1.verify(b"msg", &tag[..16]));
        assert!(!d2.verify(b"msg", &tag[..16]));
        assert!(!d1.verify(b"msg2", &tag[..16]));
        assert!(!d1.verify(b"msg", &tag[..8]));
        assert!(ServerKey::from_setting("short").is_err());
    }
}
