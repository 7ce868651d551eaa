//! The last step of every way in. Password, the company's identity provider, a social
//! provider, a passkey: each proves who the person is in its own way, then hands a [`Proof`]
//! to [`finish`], the one place a session is started, so every rule about sessions (the
//! account still active, the company's sign-in policy, audit) holds for all of them alike.

use serde_json::json;
use tenant_runtime::store::audit;
use tenant_runtime::store::sessions::{self, Amr, Origin};
use tenant_runtime::store::users::{self, Status, User};

use super::identity::{AuthError, AuthResult, bearer};
use super::{SessionView, TenantView, UserView};
use crate::directory::Tenant;
use crate::state::AppState;

/// How the person proved who they are.
#[derive(Debug, Clone)]
pub struct Proof {
    pub amr: Amr,
    /// The way in, for the audit log: `password`, `sso`, `social`, `passkey`, ...
    pub via: &'static str,
    /// A new hash of the password just verified, when the stored one uses old parameters.
    pub rehash: Option<String>,
}

impl Proof {
    pub fn password(rehash: Option<String>) -> Self {
        Self {
            amr: Amr::password(),
            via: "password",
            rehash,
        }
    }
}

/// Where a proof leads.
#[derive(Debug)]
pub enum Finished {
    /// A session was started: the cookie value (`<tenant-id>.<secret>`) and what to show.
    SignedIn { cookie: String, view: SessionView },
}

/// Starts a session for `user` of `tenant` after `proof`. The user is re-read under the
/// tenant's write lock: one blocked meanwhile gets `InvalidCredentials`, as if never there.
pub async fn finish(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    proof: Proof,
    origin: Origin,
) -> AuthResult<Finished> {
    let now = state.now();
    let lifetimes = state.server.session_lifetimes();
    let user_id = user.id.clone();
    let secret = state
        .tenants
        .write(&tenant.id, move |tx| {
            match users::get(tx, &user_id)? {
                Some(u) if u.status == Status::Active => {}
                _ => return Ok(None),
            }
            if let Some(h) = &proof.rehash {
                users::set_password_hash(tx, &user_id, h, now)?;
            }
            users::record_login(tx, &user_id, now)?;
            let secret = sessions::create(tx, &user_id, lifetimes, &origin, &proof.amr, now)?;
            audit::record(
                tx,
                Some(&user_id),
                "login.succeeded",
                Some(&user_id),
                json!({"ip": origin.ip, "via": proof.via, "amr": proof.amr.values()}),
                now,
            )?;
            Ok(Some(secret))
        })
        .await?
        .ok_or(AuthError::InvalidCredentials)?;
    Ok(Finished::SignedIn {
        cookie: bearer(&tenant.id, &secret),
        view: SessionView {
            user: UserView::from(user),
            tenant: TenantView::from(tenant),
        },
    })
}
