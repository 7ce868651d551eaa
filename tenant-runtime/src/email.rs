//! The one email canonicalisation used by login, invitations, resets, the directory and the CLI.
//!
//! Look-alikes are the danger: an address that renders like another must not be a different
//! account. So the domain is compared in its ASCII form (IDNA/UTS 46, which also folds
//! full-width letters), and addresses with invisible characters (Unicode format and
//! default-ignorable code points such as U+200B) or compatibility forms in the local part
//! (full-width letters, ligatures) are refused.

use unicode_normalization::UnicodeNormalization;

/// Longest address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Trims, applies Unicode NFC and lower-cases; the domain becomes its ASCII (punycode) form.
pub fn canonicalize(raw: &str) -> String {
    let email = raw.trim().nfc().collect::<String>().to_lowercase();
    match email.rsplit_once('@') {
        Some((local, domain)) if !domain.is_ascii() => match idna::domain_to_ascii(domain) {
            Ok(ascii) if !ascii.is_empty() => format!("{local}@{ascii}"),
            _ => email,
        },
        _ => email,
    }
}

/// Code points that render as nothing (or change how neighbours render): Unicode's format
/// characters (category Cf) and default-ignorable code points.
fn invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Canonicalises and checks the shape of an address: one `@`, a non-empty local part, a domain
/// with a dot, no whitespace or control characters (which could inject mail headers or log lines).
pub fn parse(raw: &str) -> Option<String> {
    if raw.chars().any(invisible) {
        return None;
    }
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
    // Full-width letters, ligatures and other compatibility forms look like plain ones.
    if local.nfkc().collect::<String>() != local {
        return None;
    }
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
    fn look_alikes_are_refused_or_folded_to_one_address() {
        // Invisible characters: refused, wherever they are.
        for bad in [
            "eve\u{200b}@acme.test",
            "ceo@beta\u{200b}.test",
            "ann\u{ad}@acme.test",
            "ann@acme.test\u{feff}",
            "\u{202e}ann@acme.test",
            "ann\u{2060}@acme.test",
            "ann@ac\u{e0041}me.test",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        // Full-width letters in the local part: refused; in the domain: folded to ASCII.
        assert_eq!(parse("\u{ff41}dmin@acme.test"), None);
        assert_eq!(
            parse("ceo@\u{ff42}\u{ff45}\u{ff54}\u{ff41}.test"),
            Some("ceo@beta.test".into())
        );
        // Internationalised domains: compared in punycode.
        assert_eq!(
            parse("Ana@Bücher.Example"),
            Some("ana@xn--bcher-kva.example".into())
        );
        assert_eq!(
            parse_domain("BÜCHER.example"),
            Some("xn--bcher-kva.example".into())
        );
        assert_eq!(
            canonicalize("ana@bücher.example"),
            canonicalize("ana@xn--bcher-kva.example")
        );
        // Non-ASCII local parts that are not look-alikes stay allowed.
        assert_eq!(parse("renée@acme.test"), Some("renée@acme.test".into()));
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
