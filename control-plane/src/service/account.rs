//! A signed-in person's own account: their sessions and their password.

use serde_json::json;
use tenant_runtime::store::audit;
use tenant_runtime::store::sessions;
use tenant_runtime::store::tokens::{self, Purpose};
use tenant_runtime::store::users;

use super::auth::Signed;
use super::identity::{AuthError, AuthResult};
use super::policy;
use crate::state::AppState;

/// A session as its owner sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionSummary {
    #[serde(flatten)]
    pub session: sessions::Summary,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// The caller's live sessions.
pub async fn sessions_of(state: &AppState, signed: &Signed) -> AuthResult<Vec<SessionSummary>> {
    let (user_id, idle, now) = (
        signed.user.id.clone(),
        state.server.session_idle_secs,
        state.now(),
    );
    let list = state
        .tenants
        .read(&signed.tenant.id, move |c| {
            sessions::list(c, &user_id, idle, now)
        })
        .await?;
    Ok(list
        .into_iter()
        .map(|s| SessionSummary {
            current: s.id == signed.session_id,
            session: s,
        })
        .collect())
}

/// Ends one of the caller's own sessions (404 for any other id).
pub async fn end_session(state: &AppState, signed: &Signed, id: &str) -> AuthResult<()> {
    let (user_id, id, now) = (signed.user.id.clone(), id.to_owned(), state.now());
    let ended = state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            let ended = sessions::revoke_by_id(tx, &user_id, &id)?;
            if ended {
                audit::record(
                    tx,
                    Some(&user_id),
                    "session.revoked",
                    Some(&user_id),
                    json!({"session": id}),
                    now,
                )?;
            }
            Ok(ended)
        })
        .await?;
    super::backchannel::kick(state, &signed.tenant.id).await;
    if ended {
        Ok(())
    } else {
        Err(AuthError::NotFound)
    }
}

/// Signs the caller out everywhere, this session included.
pub async fn end_all_sessions(state: &AppState, signed: &Signed) -> AuthResult<usize> {
    end_sessions(state, signed, false).await
}

/// Ends the caller's sessions, all of them or all but this one; apps holding grants from them
/// are told.
async fn end_sessions(state: &AppState, signed: &Signed, keep_this: bool) -> AuthResult<usize> {
    let (user_id, now) = (signed.user.id.clone(), state.now());
    let keep = keep_this.then_some(signed.session_hash);
    let action = if keep_this {
        "session.revoked_others"
    } else {
        "session.revoked_all"
    };
    let n = state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            let n = sessions::revoke_all(tx, &user_id, keep.as_ref().map(|k| &k[..]))?;
            audit::record(
                tx,
                Some(&user_id),
                action,
                Some(&user_id),
                json!({"count": n}),
                now,
            )?;
            Ok(n)
        })
        .await?;
    super::backchannel::kick(state, &signed.tenant.id).await;
    Ok(n)
}

/// Changes the caller's password: needs the current one, ends every other session.
pub async fn change_password(
    state: &AppState,
    signed: &Signed,
    current: &str,
    new: &str,
    ip: &str,
) -> AuthResult<()> {
    let key = signed.user.email.clone();
    // The session is this client's proof: strangers' failures on the account do not count here.
    let lane = format!("session:{}", signed.session_id);
    state
        .throttles
        .login
        .begin(&key, Some(&lane), ip, state.now())
        .await?;
    let stored = signed.user.password_hash.clone().unwrap_or_default();
    if current.chars().count() > policy::MAX_SIGN_IN_LEN
        || !state.hasher.verify(current, &stored).await?
    {
        return Err(AuthError::WrongPassword);
    }
    state.throttles.login.succeeded(&key, Some(&lane), ip).await;
    policy::check(new, &signed.user.email, &signed.tenant.name)?;
    super::pwned::check(state, new).await?;
    let hash = state.hasher.hash(new).await?;
    let (user_id, keep, now) = (signed.user.id.clone(), signed.session_hash, state.now());
    state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            users::set_password_hash(tx, &user_id, &hash, now)?;
            sessions::revoke_all(tx, &user_id, Some(&keep))?;
            tokens::revoke(tx, &user_id, Some(Purpose::Reset), now)?;
            audit::record(
                tx,
                Some(&user_id),
                "password.changed",
                Some(&user_id),
                json!({}),
                now,
            )?;
            Ok(())
        })
        .await?;
    super::backchannel::kick(state, &signed.tenant.id).await;
    Ok(())
}

/// Signs the caller out of every session but this one.
pub async fn end_other_sessions(state: &AppState, signed: &Signed) -> AuthResult<usize> {
    end_sessions(state, signed, true).await
}
