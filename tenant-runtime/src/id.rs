//! Internal tenant ids: the only input that ever becomes a tenant file name.

use std::fmt;

/// A validated tenant id: 1 to 64 of `a-z`, `0-9`, `-` and `_`, starting with a letter or digit.
/// No separators, dots or other characters can reach a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> crate::Result<Self> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'-' || b == b'_'))
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(crate::Error::InvalidTenantId)
        }
    }

    /// A fresh random id (128 bits), never derived from anything a user typed.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for TenantId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|_| serde::de::Error::custom("invalid tenant id"))
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_anything_that_could_escape_the_tenant_folder() {
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "a.db",
            "A",
            "-a",
            "_a",
            "a b",
            "a\0",
            "é",
            &"a".repeat(65),
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "acme-1", "0f3c", "a_b", &"a".repeat(64)] {
            assert!(TenantId::parse(good).is_ok(), "{good:?}");
        }
        assert!(TenantId::parse(TenantId::generate().as_str()).is_ok());
    }
}
