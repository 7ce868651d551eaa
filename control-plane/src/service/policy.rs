//! The password rules: 12 to 256 characters, not the email, not a common password. No
//! composition rules; any Unicode is allowed and nothing is trimmed or case-folded.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Why a new password was refused; the message tells the person what to choose instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    #[error("Choose a password of at least {MIN_LEN} characters.")]
    TooShort,
    #[error("Choose a password of at most {MAX_LEN} characters.")]
    TooLong,
    #[error("Choose a password that is not your email address.")]
    IsEmail,
    #[error("This password is too common. Choose another.")]
    TooCommon,
}

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
pub fn check(password: &str, email: &str) -> Result<(), PasswordRejected> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(PasswordRejected::TooShort);
    }
    if len > MAX_LEN {
        return Err(PasswordRejected::TooLong);
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or(email);
    if lower == email || lower == local || lower.trim() == email {
        return Err(PasswordRejected::IsEmail);
    }
    let distinct: HashSet<char> = lower.chars().collect();
    if common().contains(&lower) || distinct.len() < 3 {
        return Err(PasswordRejected::TooCommon);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let email = "ann@acme.test";
        use PasswordRejected as R;
        let code = |p: &str| check(p, email).err();
        assert_eq!(code("short"), Some(R::TooShort));
        assert_eq!(code(&"x1".repeat(129)), Some(R::TooLong));
        assert_eq!(code("ann@acme.test"), Some(R::IsEmail));
        assert_eq!(code("Password1234"), Some(R::TooCommon));
        assert_eq!(code("aaaaaaaaaaaaaaa"), Some(R::TooCommon));
        assert_eq!(code("correct horse battery"), None);
        // Unicode and spaces are fine; nothing is trimmed.
        assert_eq!(code("  ünïcödé pässwörd  "), None);
        assert_eq!(code(&"é".repeat(256)), Some(R::TooCommon));
        assert_eq!(code(&"éa1".repeat(85)), None);
    }
}
