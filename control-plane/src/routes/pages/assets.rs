//! The stylesheet and the icon, compiled into the binary. Pages link them with a content hash
//! in the query, so they can be cached for a year and still change with a new release.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::routes::paths::pages as paths;

const CSS: &str = include_str!("../../../assets/app.css");
const ICON: &str = include_str!("../../../assets/icon.svg");
const PASSKEY_JS: &str = include_str!("../../../assets/passkey.js");

const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";

/// `/assets/app.css?v=<hash of the content>`.
pub(super) fn css_href() -> &'static str {
    static HREF: OnceLock<String> = OnceLock::new();
    HREF.get_or_init(|| {
        let digest = Sha256::digest(CSS.as_bytes());
        format!("{}?v={}", paths::CSS, hex::encode(&digest[..6]))
    })
}

pub(super) async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE_FOREVER),
        ],
        CSS,
    )
        .into_response()
}

/// `/assets/passkey.js?v=<hash of the content>`.
pub(super) fn passkey_js_href() -> &'static str {
    static HREF: OnceLock<String> = OnceLock::new();
    HREF.get_or_init(|| {
        let digest = Sha256::digest(PASSKEY_JS.as_bytes());
        format!("{}?v={}", paths::PASSKEY_JS, hex::encode(&digest[..6]))
    })
}

pub(super) async fn passkey_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE_FOREVER),
        ],
        PASSKEY_JS,
    )
        .into_response()
}

pub(super) async fn icon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ICON,
    )
        .into_response()
}
