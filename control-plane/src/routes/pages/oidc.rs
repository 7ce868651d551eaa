//! The browser's side of the OpenID provider: `/oauth2/authorize` (on to the login page or
//! back to the app) and `/oauth2/logout` (RP-initiated logout, with a confirmation page when the
//! app did not say who is signing out).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::forms::{self, Form};
use super::html::{self, e};
use super::signed;
use crate::routes::error::ApiError;
use crate::routes::extract::{FormTargets, clear_session_cookie};
use crate::routes::paths::pages as p;
use crate::service::oidc::authorize::{self, AuthRequest, AuthorizeError, Authorized};
use crate::service::oidc::logout::{self, LoggedOut, LogoutError, LogoutRequest};
use crate::state::AppState;

fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn refused_page(state: &AppState, message: &str) -> Response {
    html::message_page(
        state,
        StatusCode::BAD_REQUEST,
        "Cannot sign in to this app",
        message,
        ("/login", "Go to the sign-in page"),
        &[],
    )
}

/// `GET /oauth2/authorize`: a new request from an app, or one resumed after the login page.
pub(super) async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = pairs(raw.as_deref());
    let resumed = pairs.iter().find(|(k, _)| k == "pending").map(|(_, v)| v);
    let req = match resumed {
        Some(pending) => match authorize::unseal(&state, pending) {
            Some(r) => r,
            None => return refused_page(&state, &AuthorizeError::BadPending.to_string()),
        },
        None => AuthRequest::from_query(&pairs, state.now()),
    };
    let signed = signed(&state, &headers).await;
    match authorize::authorize(&state, req, signed).await {
        // The app's registered redirect URI, or our login page with the signed request.
        Ok(Authorized::Redirect(to)) => html::see_other(&to, &[]),
        Ok(Authorized::SignIn { pending, .. }) => {
            let to = format!("{}?pending={pending}", p::LOGIN);
            html::see_other(&to, &[])
        }
        Err(AuthorizeError::Fault(f)) => {
            html::error_page(&state, &ApiError::from(f), ("/login", "Try again"))
        }
        Err(err) => refused_page(&state, &err.to_string()),
    }
}

fn logout_request(fields: &[(String, String)], confirmed: bool) -> LogoutRequest {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    LogoutRequest {
        id_token_hint: get("id_token_hint"),
        post_logout_redirect_uri: get("post_logout_redirect_uri"),
        state: get("state"),
        client_id: get("client_id"),
        confirmed,
    }
}

async fn end_session(state: &AppState, headers: &HeaderMap, req: LogoutRequest) -> Response {
    let current = signed(state, headers).await.ok().flatten();
    let company = current.as_ref().map(|s| s.tenant.name.clone());
    match logout::end_session(state, &req, current).await {
        Ok(LoggedOut::Redirect(to)) => html::see_other(&to, &[clear_session_cookie(state)]),
        Ok(LoggedOut::Done) => html::message_page(
            state,
            StatusCode::OK,
            "You are signed out",
            "You can close this window, or sign in again.",
            ("/login", "Sign in"),
            &[clear_session_cookie(state)],
        ),
        Ok(LoggedOut::Confirm) => confirm_page(state, headers, &req, company.as_deref()),
        Err(LogoutError::Fault(f)) => {
            html::error_page(state, &ApiError::from(f), ("/account", "Back"))
        }
        Err(err) => html::message_page(
            state,
            StatusCode::BAD_REQUEST,
            "Cannot sign out from this app",
            &err.to_string(),
            ("/account", "Your account"),
            &[],
        ),
    }
}

fn confirm_page(
    state: &AppState,
    headers: &HeaderMap,
    req: &LogoutRequest,
    company: Option<&str>,
) -> Response {
    let csrf = match forms::for_page(state, headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(state, &err, ("/account", "Back")),
    };
    let keep = [
        ("id_token_hint", &req.id_token_hint),
        ("post_logout_redirect_uri", &req.post_logout_redirect_uri),
        ("state", &req.state),
        ("client_id", &req.client_id),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| html::hidden(k, v)))
    .collect::<String>();
    let main = format!(
        "<h1>Sign out?</h1>\n\
<p class=\"lead\">An app asked to sign you out of {company}.</p>\n\
<form method=\"post\" action=\"{action}\">\n{csrf}{keep}\n\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Sign out</button>\n\
</form>\n\
<p class=\"links\"><a href=\"/account\">Stay signed in</a></p>\n",
        company = e(company.unwrap_or("your account")),
        action = p::OIDC_LOGOUT,
        csrf = html::csrf_field(&csrf.token),
    );
    let page = html::document(
        &state.config.product_name,
        "Sign out?",
        html::Width::Narrow,
        "",
        &main,
    );
    let mut res = html::respond(StatusCode::OK, std::slice::from_ref(&csrf.cookie), page);
    // The confirmed sign-out goes back to the app's (registered) post-logout URI.
    if let Some(t) = req
        .post_logout_redirect_uri
        .as_deref()
        .and_then(FormTargets::of)
    {
        res.extensions_mut().insert(t);
    }
    res
}

/// `GET /oauth2/logout`: RP-initiated logout.
pub(super) async fn logout_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let req = logout_request(&pairs(raw.as_deref()), false);
    end_session(&state, &headers, req).await
}

/// `POST /oauth2/logout`: the person confirmed on our page (the form checks CSRF).
pub(super) async fn logout_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let fields: Vec<(String, String)> = [
        "id_token_hint",
        "post_logout_redirect_uri",
        "state",
        "client_id",
    ]
    .iter()
    .filter_map(|k| form.get(k).map(|v| ((*k).to_owned(), v.to_owned())))
    .collect();
    end_session(&state, &headers, logout_request(&fields, true)).await
}
