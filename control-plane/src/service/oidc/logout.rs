//! RP-Initiated Logout 1.0: an app sends the person here to end their session. The session
//! ends at once when the app's `id_token_hint` names the person signed in; otherwise the person
//! confirms. The browser goes back only to a post-logout URI the app registered.

use serde_json::Value;

use super::claims;
use crate::directory::ClientRow;
use crate::error::Fault;
use crate::service::auth::{self, Signed};
use crate::service::identity::AuthError;
use crate::state::AppState;

/// What the app sent.
#[derive(Debug, Default, Clone)]
pub struct LogoutRequest {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
    /// The person confirmed on our page (a CSRF-checked form).
    pub confirmed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("the id_token_hint is not an ID token issued here")]
    BadHint,
    #[error("the client_id does not match the id_token_hint")]
    ClientMismatch,
    #[error("the post_logout_redirect_uri is not one the app registered")]
    BadRedirect,
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(LogoutError);

/// Where the browser goes next.
#[derive(Debug)]
pub enum LoggedOut {
    /// Back to the app's post-logout URI (with `state`).
    Redirect(String),
    /// Signed out (or nobody was): say so.
    Done,
    /// Ask the person first.
    Confirm,
}

fn audience(claims: &serde_json::Map<String, Value>) -> Option<String> {
    match claims.get("aud")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => a.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

pub async fn end_session(
    state: &AppState,
    req: &LogoutRequest,
    signed: Option<Signed>,
) -> Result<LoggedOut, LogoutError> {
    let hint = match &req.id_token_hint {
        Some(h) => Some(
            claims::id_token_hint(state, h)
                .await?
                .ok_or(LogoutError::BadHint)?,
        ),
        None => None,
    };
    let hinted_client = hint.as_ref().and_then(audience);
    let client_id = match (&req.client_id, hinted_client) {
        (Some(a), Some(b)) if *a != b => return Err(LogoutError::ClientMismatch),
        (Some(a), _) => Some(a.clone()),
        (None, b) => b,
    };
    let client: Option<ClientRow> = match &client_id {
        Some(id) => state.directory.client(id).await?,
        None => None,
    };
    let back = match &req.post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri));
            if !registered {
                return Err(LogoutError::BadRedirect);
            }
            let mut url = url::Url::parse(uri).map_err(|_| LogoutError::BadRedirect)?;
            if let Some(s) = &req.state {
                url.query_pairs_mut().append_pair("state", s);
            }
            Some(String::from(url))
        }
    };
    if let Some(signed) = signed {
        let sub = hint
            .as_ref()
            .and_then(|h| h.get("sub"))
            .and_then(Value::as_str);
        if sub != Some(signed.user.id.as_str()) && !req.confirmed {
            return Ok(LoggedOut::Confirm);
        }
        match auth::end_session(state, &signed).await {
            Ok(()) => {}
            Err(AuthError::Fault(f)) => return Err(f.into()),
            Err(_) => {}
        }
    }
    Ok(back.map_or(LoggedOut::Done, LoggedOut::Redirect))
}
