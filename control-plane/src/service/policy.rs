//! The password rules: 12 to 256 characters, not the email, not a common password. No
//! composition rules; any Unicode is allowed and nothing is trimmed or case-folded.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::error::ApiError;

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 256;

fn common() -> &'static HashSet<String> {
    static LIST: OnceLock<HashSet<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../../assets/common-passwords.txt")
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

/// Checks a new password for an account with this canonical email.
pub fn check(password: &str, email: &str) -> Result<(), ApiError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(ApiError::bad_request(
            "password_too_short",
            format!("Choose a password of at least {MIN_LEN} characters."),
        ));
    }
    if len > MAX_LEN {
        return Err(ApiError::bad_request(
            "password_too_long",
            format!("Choose a password of at most {MAX_LEN} characters."),
        ));
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or(email);
    if lower == email || lower == local || lower.trim() == email {
        return Err(ApiError::bad_request(
            "password_is_email",
            "Choose a password that is not your email address.",
        ));
    }
    let distinct: HashSet<char> = lower.chars().collect();
    if common().contains(&lower) || distinct.len() < 3 {
        return Err(ApiError::bad_request(
            "password_too_common",
            "This password is too common. Choose another.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let email = "ann@acme.test";
        let code = |p: &str| check(p, email).err().map(|e| e.code);
        assert_eq!(code("short"), Some("password_too_short"));
        assert_eq!(code(&"x1".repeat(129)), Some("password_too_long"));
        assert_eq!(code("ann@acme.test"), Some("password_is_email"));
        assert_eq!(code("Password1234"), Some("password_too_common"));
        assert_eq!(code("aaaaaaaaaaaaaaa"), Some("password_too_common"));
        assert_eq!(code("correct horse battery"), None);
        // Unicode and spaces are fine; nothing is trimmed.
        assert_eq!(code("  ünïcödé pässwörd  "), None);
        assert_eq!(code(&"é".repeat(256)), Some("password_too_common"));
        assert_eq!(code(&"éa1".repeat(85)), None);
    }
}
