//! The last step of every way in. Password, the company's identity provider, a social
//! provider, a passkey: each proves who the person is in its own way, then hands a [`Proof`]
//! to [`finish`], the one place a session is started, so every rule about sessions (the
//! account still active, the company's sign-in policy, audit) holds for all of them alike.
//! Before a session starts, [`super::mfa::gate`] decides whether a second step (or enrolling
//! a first factor) must come first; [`second_step`] ends it with the combined methods.

use serde_json::json;
use tenant_runtime::store::audit;
use tenant_runtime::store::sessions::{self, Amr, Origin};
use tenant_runtime::store::users::{self, Status, User};

use super::identity::{AuthError, AuthResult, MfaToken, bearer};
use super::mfa::{self, Answer, Gate};
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
    /// No session yet: a second step with one of `methods` must follow
    /// ([`second_step`] with `mfa_token`).
    SecondStep {
        mfa_token: MfaToken,
        methods: Vec<&'static str>,
    },
    /// No session yet: the company requires a second factor the person has none of; they
    /// enrol one with `mfa_token`, and its first code is their second step.
    EnrolmentNeeded { mfa_token: MfaToken },
}

impl Finished {
    /// The session, or the step still missing as the error a sign-in answers with.
    pub fn signed_in(self) -> AuthResult<(String, SessionView)> {
        match self {
            Self::SignedIn { cookie, view } => Ok((cookie, view)),
            Self::SecondStep { mfa_token, methods } => Err(AuthError::MfaRequired {
                token: mfa_token,
                methods,
            }),
            Self::EnrolmentNeeded { mfa_token } => {
                Err(AuthError::MfaEnrollmentRequired { token: mfa_token })
            }
        }
    }
}

/// Leads `user` of `tenant` on from `proof`: to a session, or first to a second step when
/// the person has a factor or the company's policy requires one.
pub async fn finish(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    proof: Proof,
    origin: Origin,
) -> AuthResult<Finished> {
    match mfa::gate(state, &tenant.id, user, &proof.amr, proof.via).await? {
        Gate::Pass => start(state, tenant, user, proof, origin).await,
        Gate::Verify { token, methods } => Ok(Finished::SecondStep {
            mfa_token: token,
            methods,
        }),
        Gate::Enrol { token } => Ok(Finished::EnrolmentNeeded { mfa_token: token }),
    }
}

/// Ends a sign-in halfway through: the second factor in `answer` is checked against the
/// person the token was issued for, then the session starts with both proofs' methods.
pub async fn second_step(
    state: &AppState,
    token: &str,
    answer: Answer,
    origin: Origin,
) -> AuthResult<Finished> {
    let passed = mfa::verify(state, token, answer, &origin.ip).await?;
    let proof = Proof {
        amr: passed.amr,
        via: passed.via,
        rehash: None,
    };
    start(state, &passed.tenant, &passed.user, proof, origin).await
}

/// Starts a session for `user` of `tenant` after `proof`. The user is re-read under the
/// tenant's write lock: one blocked meanwhile gets `InvalidCredentials`, as if never there.
async fn start(
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
