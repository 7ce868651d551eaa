//! Mail as the tests read it: the messages a real SMTP server stored in its maildir, or a
//! server without SMTP wrote to its outbox, parsed into [`Mail`] (unfolded headers, decoded
//! text part, the first link with a token).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine;

/// One received message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// File name in the maildir.
    pub file: String,
    pub to: String,
    pub subject: String,
    /// The decoded text/plain part.
    pub text: String,
    /// The first link with a token in the text part, or empty.
    pub link: String,
    /// The `token` query value of that link, or empty.
    pub token: String,
}

/// Every message in `dir` (one file each), oldest first.
pub fn read_mails(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(SystemTime, String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (t, e.file_name().to_string_lossy().into_owned(), e.path())
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, name, path)| {
            let raw = std::fs::read(&path).ok()?;
            Some(parse_mail(name, &String::from_utf8_lossy(&raw)))
        })
        .collect()
}

/// Every message an SMTP server stored in the maildir `dir`, oldest first.
pub fn read_maildir(dir: &Path) -> Vec<Mail> {
    read_mails(&dir.join("new"))
}

/// The newest message to `to` whose link's path starts with `path` (e.g. "/invite?token="),
/// in the outbox of the data directory `data` (a server without SMTP writes mail there).
pub fn outbox_mail(data: &Path, to: &str, path: &str) -> Option<Mail> {
    let to = to.to_lowercase();
    read_mails(&data.join("outbox"))
        .into_iter()
        .rev()
        .find(|m| m.to == to && link_path(&m.link).starts_with(path))
}

/// The path and query of a link (what follows its host).
fn link_path(link: &str) -> &str {
    let rest = link.split_once("://").map_or(link, |(_, r)| r);
    rest.find('/').map_or("", |i| &rest[i..])
}

/// The `token` query value of a link.
pub fn token_of(link: &str) -> String {
    link.split("token=").nth(1).expect("token").to_owned()
}

/// Splits a message (or part) into unfolded headers and body.
fn split_headers(raw: &str) -> (Vec<(String, String)>, String) {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
        }
    }
    (headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn decode_body(body: &str, encoding: Option<&str>) -> String {
    match encoding.map(str::to_lowercase).as_deref() {
        Some("base64") => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("base64 body");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Some("quoted-printable") => decode_qp(body),
        _ => body.to_owned(),
    }
}

fn decode_qp(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let Some(hex) = s.get(i + 1..i + 3)
                && let Ok(v) = u8::from_str_radix(hex, 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`).
fn decode_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let between = &rest[..start];
        if !(last_was_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        let after = &rest[start + 2..];
        let parts: Vec<&str> = after.splitn(3, '?').collect();
        let Some(end) = parts.get(2).and_then(|p| p.find("?=")) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let (enc, text) = (parts[1], &parts[2][..end]);
        let decoded = if enc.eq_ignore_ascii_case("b") {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        } else {
            decode_qp(&text.replace('_', " "))
        };
        out.push_str(&decoded);
        let consumed = 2 + parts[0].len() + 1 + parts[1].len() + 1 + end + 2;
        rest = &rest[start + consumed..];
        last_was_word = true;
    }
    out.push_str(rest);
    out
}

/// The text/plain content of a message or part, descending into multiparts.
fn text_part(headers: &[(String, String)], body: &str) -> Option<String> {
    let ctype = header(headers, "content-type").unwrap_or("text/plain");
    let lower = ctype.to_lowercase();
    if lower.starts_with("multipart/") {
        let boundary = format!("--{}", param(ctype, "boundary")?);
        for part in body.split(&boundary).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix('\n').unwrap_or(part);
            let (h, b) = split_headers(part);
            if let Some(t) = text_part(&h, &b) {
                return Some(t);
            }
        }
        None
    } else if lower.starts_with("text/plain") {
        Some(decode_body(
            body,
            header(headers, "content-transfer-encoding"),
        ))
    } else {
        None
    }
}

fn address_of(to: &str) -> String {
    let to = to.trim();
    match (to.rfind('<'), to.rfind('>')) {
        (Some(a), Some(b)) if a < b => to[a + 1..b].to_lowercase(),
        _ => to.to_lowercase(),
    }
}

pub fn parse_mail(file: String, raw: &str) -> Mail {
    let (headers, body) = split_headers(raw);
    let to = header(&headers, "x-rcptto")
        .or_else(|| header(&headers, "to"))
        .map(address_of)
        .unwrap_or_default();
    let subject = decode_words(header(&headers, "subject").unwrap_or(""));
    let text = text_part(&headers, &body).unwrap_or_default();
    let link = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http") && l.contains("token="))
        .unwrap_or("")
        .to_owned();
    let token = link
        .split_once("token=")
        .map(|(_, t)| {
            t.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect()
        })
        .unwrap_or_default();
    Mail {
        file,
        to,
        subject,
        text,
        link,
        token,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_mail;

    #[test]
    fn parses_a_quoted_printable_multipart_message() {
        let raw = "To: ann@acme.test\r\nSubject: =?utf-8?b?UmVzZXQg?= =?utf-8?b?eW91cg==?=\r\n\
                   Content-Type: multipart/alternative;\r\n boundary=\"XX\"\r\n\r\n--XX\r\n\
                   Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
                   Hi\r\n\r\nhttp://x.test/reset?token=3Dabc.def-_=\r\nghi\r\n\r\n=E2=80=94 p\r\n--XX\r\n\
                   Content-Type: text/html\r\n\r\n<p>x</p>\r\n--XX--\r\n";
        let m = parse_mail("f".into(), raw);
        assert_eq!(m.to, "ann@acme.test");
        assert_eq!(m.subject, "Reset your");
        assert_eq!(m.link, "http://x.test/reset?token=abc.def-_ghi");
        assert_eq!(m.token, "abc.def-_ghi");
        assert!(m.text.contains("— p"));
    }
}
