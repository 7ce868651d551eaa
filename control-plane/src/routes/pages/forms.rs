//! Form bodies and the CSRF defence every form POST passes (CSRF-02, CSRF-03).
//!
//! Two layers:
//! 1. Fetch metadata: a POST that the browser marks as not same-origin (`Sec-Fetch-Site`), or,
//!    from browsers without it, whose `Origin` names another host, is refused.
//! 2. Double-submit token: every page with a form sets a random `tenantd_csrf` cookie
//!    (HttpOnly, SameSite=Strict, `__Host-` on https) and puts the same value in a hidden field;
//!    a POST must carry both, equal (compared in constant time). Sign-in, invitation acceptance
//!    and sign-out replace the token, so a token seen before sign-in is useless after it.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::html;
use crate::routes::error::ApiError;
use crate::routes::extract::{CSRF_COOKIE, cookie, cookie_name, same_site, set_cookie};
use crate::state::AppState;

/// Length of a token: 32 random bytes, base64url without padding.
const TOKEN_LEN: usize = 43;

/// The CSRF token of the page being rendered, and the cookie that carries it.
pub(super) struct Csrf {
    pub token: String,
    pub cookie: String,
}

fn well_formed(t: &str) -> bool {
    t.len() == TOKEN_LEN
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn new_token() -> Result<String, ApiError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| ApiError::internal(format_args!("rng: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

fn make(state: &AppState, token: String) -> Csrf {
    let cookie = set_cookie(
        state,
        &cookie_name(state, CSRF_COOKIE),
        &token,
        state.server.session_absolute_secs,
        "Strict",
    );
    Csrf { token, cookie }
}

/// The request's token if it has a well-formed one, a new one otherwise. The cookie is set
/// again either way, so it lasts as long as pages are being used.
pub(super) fn for_page(state: &AppState, headers: &HeaderMap) -> Result<Csrf, ApiError> {
    match cookie(headers, &cookie_name(state, CSRF_COOKIE)).filter(|t| well_formed(t)) {
        Some(t) => Ok(make(state, t)),
        None => Ok(make(state, new_token()?)),
    }
}

/// A new token, for answers that change who is signed in.
pub(super) fn fresh(state: &AppState) -> Result<Csrf, ApiError> {
    Ok(make(state, new_token()?))
}

/// Why a POST was refused before its handler ran.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    CrossSite,
    NoCookie,
    BadToken,
    NotAForm,
    TooLarge,
    Duplicate,
    NotText,
}

/// Whether the browser says this request comes from our own pages.
pub(super) fn check_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    // "null" proves nothing either way; the form's token decides.
    if same_site(headers, true) {
        Ok(())
    } else {
        Err(Refusal::CrossSite)
    }
}

/// A submitted form whose CSRF token matched. Every field appears at most once.
pub(super) struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field's value, or "" when it is missing.
    pub(super) fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
}

/// Parses `application/x-www-form-urlencoded`; a repeated field is refused.
pub(super) fn parse(body: &[u8]) -> Result<Vec<(String, String)>, Refusal> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.iter().any(|(seen, _)| *seen == k) {
            return Err(Refusal::Duplicate);
        }
        fields.push((k.into_owned(), v.into_owned()));
    }
    Ok(fields)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The boundary of a `multipart/form-data` body (forms with a file), if that is the type.
fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mut parts = v.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses `multipart/form-data`: each part's name and its content as text (a file's too; a
/// part that is not UTF-8 is refused). A repeated field is refused.
pub(super) fn parse_multipart(
    body: &[u8],
    boundary: &str,
) -> Result<Vec<(String, String)>, Refusal> {
    let delimiter = format!("--{boundary}");
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut rest = body;
    let start = find(rest, delimiter.as_bytes()).ok_or(Refusal::NotAForm)?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(fields);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or(Refusal::NotAForm)?;
        let head_end = find(rest, b"\r\n\r\n").ok_or(Refusal::NotAForm)?;
        let head = std::str::from_utf8(&rest[..head_end]).map_err(|_| Refusal::NotAForm)?;
        rest = &rest[head_end + 4..];
        let end = find(rest, format!("\r\n{delimiter}").as_bytes()).ok_or(Refusal::NotAForm)?;
        let content = &rest[..end];
        rest = &rest[end + 2 + delimiter.len()..];
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .and_then(|l| {
                l.split(';').find_map(|p| {
                    p.trim()
                        .strip_prefix("name=")
                        .map(|n| n.trim_matches('"').to_owned())
                })
            })
            .ok_or(Refusal::NotAForm)?;
        let value = String::from_utf8(content.to_vec()).map_err(|_| Refusal::NotText)?;
        if fields.iter().any(|(seen, _)| *seen == name) {
            return Err(Refusal::Duplicate);
        }
        fields.push((name, value));
    }
}

impl FromRequest<AppState> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        check_origin(&headers).map_err(|r| refused(state, &r))?;
        let boundary = multipart_boundary(&headers);
        if !is_form(&headers) && boundary.is_none() {
            return Err(refused(state, &Refusal::NotAForm));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| refused(state, &Refusal::TooLarge))?;
        let fields = match &boundary {
            Some(b) => parse_multipart(&body, b),
            None => parse(&body),
        }
        .map_err(|r| refused(state, &r))?;
        let form = Self { fields };
        let Some(expected) =
            cookie(&headers, &cookie_name(state, CSRF_COOKIE)).filter(|t| well_formed(t))
        else {
            return Err(refused(state, &Refusal::NoCookie));
        };
        let sent = form.text("csrf");
        if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(refused(state, &Refusal::BadToken));
        }
        Ok(form)
    }
}

/// The page for a refused POST. It carries no form, so nothing is re-submitted from it.
pub(super) fn refused(state: &AppState, why: &Refusal) -> Response {
    let (status, title, message) = match why {
        Refusal::CrossSite => (
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form was sent from another website, so it was refused. Open the page here and send it again.",
        ),
        Refusal::NoCookie => (
            StatusCode::FORBIDDEN,
            "Cookies are needed",
            "Your browser did not send the security cookie of this site. Allow cookies for this site, reload the page and send the form again.",
        ),
        Refusal::BadToken => (
            StatusCode::FORBIDDEN,
            "The form has expired",
            "This form is out of date or was not sent from this site. Go back, reload the page and send it again.",
        ),
        Refusal::NotAForm => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported form",
            "Send this form from the page itself (application/x-www-form-urlencoded).",
        ),
        Refusal::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too much data",
            "The form is too large to be accepted.",
        ),
        Refusal::Duplicate => (
            StatusCode::BAD_REQUEST,
            "Please check your input",
            "A field of the form was sent more than once.",
        ),
        Refusal::NotText => (
            StatusCode::BAD_REQUEST,
            "Please check your input",
            "The file is not text. Save the list as CSV (UTF-8) and upload it again.",
        ),
    };
    html::message_page(state, status, title, message, ("/", "Start again"), &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn fetch_metadata_and_origin() {
        let ok = |p: &[(&'static str, &'static str)]| check_origin(&headers(p)).is_ok();
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        assert!(ok(&[("sec-fetch-site", "none")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[("sec-fetch-site", "same-site")]));
        // Sec-Fetch-Site wins over a matching Origin.
        assert!(!ok(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://a.test"),
            ("host", "a.test")
        ]));
        assert!(ok(&[
            ("origin", "http://a.test:8080"),
            ("host", "a.test:8080")
        ]));
        assert!(!ok(&[("origin", "https://evil.test"), ("host", "a.test")]));
        assert!(!ok(&[("origin", "http://a.test.evil"), ("host", "a.test")]));
        assert!(ok(&[("origin", "null"), ("host", "a.test")]));
        assert!(ok(&[("host", "a.test")]));
    }

    #[test]
    fn repeated_fields_are_refused() {
        assert_eq!(
            parse(b"role=member&role=admin").err(),
            Some(Refusal::Duplicate)
        );
        let f = parse(b"email=a%40b.test&password=x+y").unwrap_or_default();
        assert_eq!(f[0], ("email".to_owned(), "a@b.test".to_owned()));
        assert_eq!(f[1], ("password".to_owned(), "x y".to_owned()));
    }

    #[test]
    fn multipart_forms_give_their_fields_and_files_as_text() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\nemail\r\na@b.test\r\n--XyZ--\r\n";
        let f = parse_multipart(body, "XyZ").unwrap_or_default();
        assert_eq!(f[0], ("csrf".to_owned(), "tok".to_owned()));
        assert_eq!(f[1], ("file".to_owned(), "email\r\na@b.test".to_owned()));
        assert_eq!(parse_multipart(b"garbage", "XyZ"), Err(Refusal::NotAForm));
    }

    #[test]
    fn tokens_are_well_formed_and_distinct() {
        let (a, b) = (new_token().ok(), new_token().ok());
        assert!(a.as_deref().is_some_and(well_formed));
        assert_ne!(a, b);
        assert!(!well_formed("short"));
        assert!(!well_formed(&format!("{}=", "a".repeat(42))));
    }
}
