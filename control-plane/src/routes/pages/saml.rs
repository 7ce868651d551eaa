//! The browser's and the IdP's side of SAML sign-in: `/saml/{connection}/metadata` (our
//! service-provider metadata, for the company's IdP), `/saml/{connection}/acs` (the Assertion
//! Consumer Service, HTTP-POST binding) and `/saml/finish` (where the browser ends the sign-in
//! with the binding cookie the cross-site POST could not carry).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Query;
use super::forms::{self, Refusal};
use super::html;
use super::sso::{BROWSER_COOKIE, refused, signed_in};
use crate::routes::extract::{ClientOrigin, cookie, cookie_name};
use crate::service::sso::saml_flow::{self, Posted};
use crate::state::AppState;

pub(super) async fn metadata(
    State(state): State<AppState>,
    Path(connection): Path<String>,
) -> Response {
    match saml_flow::sp_metadata(&state, &connection).await {
        Some(xml) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/samlmetadata+xml"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            xml,
        )
            .into_response(),
        None => html::not_found(&state.config.product_name),
    }
}

/// The IdP's answer, posted by the browser from the IdP's site: no CSRF token can be there
/// (the response's signature and the RelayState bound to the attempt stand in for it).
pub(super) async fn acs(
    State(state): State<AppState>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return forms::refused(&state, &Refusal::TooLarge);
    };
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let q = Query::parse(form.then(|| std::str::from_utf8(&body).ok()).flatten());
    let posted = Posted {
        saml_response: q.get("SAMLResponse"),
        relay_state: q.get("RelayState"),
    };
    match saml_flow::acs(&state, &connection, &posted).await {
        Ok(to) => html::see_other(&to, &[]),
        Err(failed) => refused(&state, failed),
    }
}

pub(super) async fn finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let bound = cookie(&headers, &cookie_name(&state, BROWSER_COOKIE));
    match saml_flow::finish(
        &state,
        q.get("token").unwrap_or(""),
        bound.as_deref(),
        origin,
    )
    .await
    {
        Ok(done) => signed_in(&state, &headers, done).await,
        Err(failed) => refused(&state, failed),
    }
}
