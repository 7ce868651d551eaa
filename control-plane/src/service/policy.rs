//! The password rules for a new password: 15 to 128 characters (OWASP ASVS 5 and NIST 800-63B
//! for passwords used without a second factor), not containing the email's local part or the
//! company's name, not a common password. No composition rules; any Unicode is allowed and
//! nothing is trimmed or case-folded.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Why a new password was refused; the message tells the person what to choose instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    #[error("Choose a password of at least {MIN_LEN} characters.")]
    TooShort,
    #[error("Choose a password of at most {MAX_LEN} characters.")]
    TooLong,
    #[error("Choose a password that does not contain your email address.")]
    IsEmail,
    #[error("Choose a password that does not contain your company's name.")]
    HasCompanyName,
    #[error("This password is too common. Choose another.")]
    TooCommon,
    #[error(
        "This password has appeared in a data breach, so attackers try it first. Choose another, for example three or four random words."
    )]
    Breached,
    #[error("New passwords cannot be checked right now. Try again in a few minutes.")]
    BreachCheckUnavailable,
}

pub const MIN_LEN: usize = 15;
pub const MAX_LEN: usize = 128;
/// Longest password accepted at sign-in: passwords set under earlier rules may be longer.
pub const MAX_SIGN_IN_LEN: usize = 256;
/// Names and local parts shorter than this are too common a substring to refuse.
const MIN_CONTAINED: usize = 4;

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

/// Checks a new password for an account with this canonical email, in this company.
pub fn check(password: &str, email: &str, company: &str) -> Result<(), PasswordRejected> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(PasswordRejected::TooShort);
    }
    if len > MAX_LEN {
        return Err(PasswordRejected::TooLong);
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or(email);
    let contains = |part: &str| {
        let part = part.trim().to_lowercase();
        part.chars().count() >= MIN_CONTAINED && lower.contains(&part)
    };
    if lower.contains(email) || contains(local) {
        return Err(PasswordRejected::IsEmail);
    }
    if contains(company) {
        return Err(PasswordRejected::HasCompanyName);
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
        use PasswordRejected as R;
        let code = |p: &str| check(p, "annabel@acme.test", "Acme Industries").err();
        assert_eq!(code("short"), Some(R::TooShort));
        assert_eq!(code("fourteen chars"), Some(R::TooShort));
        assert_eq!(code(&"x1".repeat(65)), Some(R::TooLong));
        assert_eq!(code("annabel@acme.test"), Some(R::IsEmail));
        assert_eq!(code("my name is ANNABEL, ok"), Some(R::IsEmail));
        assert_eq!(
            check("al@x.test is my login", "al@x.test", "Ox").err(),
            Some(R::IsEmail)
        );
        assert_eq!(code("acme industries rocks"), Some(R::HasCompanyName));
        assert_eq!(code("QwertyuiopAsdfgh"), Some(R::TooCommon));
        assert_eq!(code("aaaaaaaaaaaaaaa"), Some(R::TooCommon));
        assert_eq!(code("correct horse battery"), None);
        // A short company name or local part is no reason to refuse.
        assert_eq!(
            check("zebra-lantern-orchard", "al@x.test", "Ox").err(),
            None
        );
        // Unicode and spaces are fine; nothing is trimmed.
        assert_eq!(code("  ünïcödé pässwörd  "), None);
        assert_eq!(code(&"é".repeat(128)), Some(R::TooCommon));
        assert_eq!(code(&"éa1".repeat(42)), None);
    }
}
