//! The one email canonicalisation used by login, invitations, resets, the directory and the CLI.

use unicode_normalization::UnicodeNormalization;

/// Longest address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Trims, applies Unicode NFC and lower-cases.
pub fn canonicalize(raw: &str) -> String {
    raw.trim().nfc().collect::<String>().to_lowercase()
}

/// Canonicalises and checks the shape of an address: one `@`, a non-empty local part, a domain
/// with a dot, no whitespace or control characters (which could inject mail headers or log lines).
pub fn parse(raw: &str) -> Option<String> {
    let email = canonicalize(raw);
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return None;
    }
    if email.chars().any(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"' | '\\')
    }) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && domain.len() <= 253
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
    (!local.is_empty() && local.len() <= 64 && domain_ok).then_some(email)
}

/// The domain part of a canonical address.
pub fn domain_of(email: &str) -> Option<&str> {
    email.rsplit_once('@').map(|(_, d)| d)
}

/// Canonicalises a bare domain name as [`parse`] would the domain of an address.
pub fn parse_domain(raw: &str) -> Option<String> {
    parse(&format!("x@{}", raw.trim())).map(|e| e[2..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_trimmed_nfc_lowercase() {
        assert_eq!(canonicalize("  Alice@Example.COM \n"), "alice@example.com");
        // "é" composed vs decomposed is one address.
        assert_eq!(
            canonicalize("Ren\u{65}\u{301}@x.io"),
            canonicalize("REN\u{e9}@X.IO")
        );
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "a",
            "a@",
            "@b.c",
            "a@b",
            "a@@b.c",
            "a b@c.d",
            "a@b.c\r\nBcc: x@y.z",
            "a@-b.c",
            "a@b..c",
            "<a@b.c>",
            "a,b@c.d",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse(" Bob@Acme.Test "), Some("bob@acme.test".into()));
        assert_eq!(parse_domain(" Acme.TEST "), Some("acme.test".into()));
        assert_eq!(parse_domain("a@b.c"), None);
        assert_eq!(domain_of("x@acme.test"), Some("acme.test"));
    }
}
