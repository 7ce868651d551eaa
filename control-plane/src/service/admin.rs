//! What a company admin can do: every operation acts on the admin's own tenant, which comes
//! from their session. Only a [`TenantAdmin`] value opens these operations.

use serde_json::json;
use tenant_runtime::store::tokens::{self, Purpose};
use tenant_runtime::store::users::{self, NewUser, Role, Status, User};
use tenant_runtime::store::{audit, meta, sessions};
use tenant_runtime::{TenantId, email};

use super::AdminUserView;
use super::auth::Signed;
use super::identity::bearer;
use super::recovery::INVITE_TTL_SECS;
use crate::directory::{DirectoryError, Tenant};
use crate::error::Fault;
use crate::mail;
use crate::state::AppState;

pub const MAX_NAME_LEN: usize = 100;

/// Why an admin's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Not an active admin of this company.
    #[error("not an admin")]
    Forbidden,
    /// No such user in the admin's own company (also for ids of other companies).
    #[error("no such user")]
    NotFound,
    #[error("the company must keep at least one active admin")]
    LastAdmin,
    #[error("already a user of this company")]
    UserExists,
    /// The address cannot be invited: its domain belongs to another company, or another
    /// company's user has it. One answer for both, naming no company.
    #[error("this email cannot be invited")]
    EmailTaken,
    /// Resending an invitation to someone who accepted or is blocked.
    #[error("already accepted or blocked")]
    AlreadyAccepted,
    /// Revoking an invitation that is not pending.
    #[error("no pending invitation")]
    NoPendingInvitation,
    #[error("not a valid email address")]
    InvalidEmail,
    #[error("the role must be admin or member")]
    InvalidRole,
    #[error("a name has at most {MAX_NAME_LEN} characters and no control characters")]
    InvalidName,
    /// The company accepts only addresses in its own domains.
    #[error("the address is not in one of the company's domains")]
    EmailOutsideDomains,
    /// An email change to the address the person already has.
    #[error("this is already the address")]
    EmailUnchanged,
    /// An email change link that is unknown, used or expired.
    #[error("invalid or expired link")]
    InvalidToken,
    #[error("invalid cursor")]
    InvalidCursor,
    /// A search, filter or sort the list does not know.
    #[error("invalid filter")]
    InvalidFilter,
    /// A bulk invitation longer than the most lines of one batch.
    #[error("too many lines")]
    TooManyLines,
    #[error("no lines")]
    EmptyBatch,
    /// The same address twice in one bulk invitation.
    #[error("duplicate address")]
    Duplicate,
    /// Requiring SSO while no connection with a verified domain exists would lock everyone out.
    #[error("no identity provider connection with a verified domain")]
    NoWorkingConnection,
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(AdminError);

pub type AdminResult<T> = Result<T, AdminError>;

/// The capability to administer one tenant: an active admin's session.
#[derive(Debug, Clone)]
pub struct TenantAdmin(Signed);

impl TenantAdmin {
    pub fn new(signed: Signed) -> AdminResult<Self> {
        if signed.user.role == Role::Admin && signed.user.status == Status::Active {
            Ok(Self(signed))
        } else {
            Err(AdminError::Forbidden)
        }
    }

    pub fn signed(&self) -> &Signed {
        &self.0
    }

    pub(super) fn actor(&self) -> String {
        self.0.user.id.clone()
    }
}

/// A change an admin asks for.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub blocked: Option<bool>,
}

pub fn parse_role(s: &str) -> AdminResult<Role> {
    Role::parse(s).ok_or(AdminError::InvalidRole)
}

pub fn parse_name(name: Option<&str>) -> AdminResult<String> {
    let name = name.unwrap_or("").trim();
    if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(AdminError::InvalidName);
    }
    Ok(name.to_owned())
}

pub async fn list_users(
    state: &AppState,
    admin: &TenantAdmin,
    offset: u32,
    limit: u32,
) -> AdminResult<(Vec<AdminUserView>, u64)> {
    let (users, total) = state
        .tenants
        .read(&admin.0.tenant.id, move |c| users::list(c, offset, limit))
        .await?;
    Ok((users.iter().map(AdminUserView::from).collect(), total))
}

pub async fn get_user(
    state: &AppState,
    admin: &TenantAdmin,
    id: &str,
) -> AdminResult<AdminUserView> {
    let id = id.to_owned();
    state
        .tenants
        .read(&admin.0.tenant.id, move |c| users::get(c, &id))
        .await?
        .as_ref()
        .map(AdminUserView::from)
        .ok_or(AdminError::NotFound)
}

/// Invites a person: reserves the email in the directory, writes the user and the invitation
/// in the tenant, confirms the reservation, then mails the link.
pub async fn invite(
    state: &AppState,
    admin: &TenantAdmin,
    raw_email: &str,
    role: Role,
    name: Option<&str>,
) -> AdminResult<AdminUserView> {
    let (user, token) = invite_quiet(state, admin, raw_email, role, name).await?;
    send_invitation(state, admin, &user, &token);
    Ok(AdminUserView::from(&user))
}

/// Whether `email` may join `tenant_id` as far as domains go: a domain another company owns
/// stays theirs (its addresses sign in there), and a company that accepts only its own domains
/// gets only those.
pub async fn check_domain_rules(
    state: &AppState,
    tenant_id: &TenantId,
    email: &str,
) -> AdminResult<()> {
    let domain = email::domain_of(email);
    if let Some(domain) = domain
        && let Some(owner) = state.directory.domain_owner(domain).await?
        && owner != *tenant_id
    {
        return Err(AdminError::EmailTaken);
    }
    let only_own = state
        .tenants
        .read(tenant_id, meta::email_domains_only)
        .await?;
    if only_own {
        let own = state.directory.domains_of(tenant_id).await?;
        if !domain.is_some_and(|d| own.iter().any(|o| o == d)) {
            return Err(AdminError::EmailOutsideDomains);
        }
    }
    Ok(())
}

/// [`invite`] without the mail: the user and the invitation's secret.
pub(super) async fn invite_quiet(
    state: &AppState,
    admin: &TenantAdmin,
    raw_email: &str,
    role: Role,
    name: Option<&str>,
) -> AdminResult<(User, String)> {
    let email = email::parse(raw_email).ok_or(AdminError::InvalidEmail)?;
    let name = parse_name(name)?;
    let tenant_id = admin.0.tenant.id.clone();
    check_domain_rules(state, &tenant_id, &email).await?;
    let mut user_id = uuid::Uuid::new_v4().to_string();
    let reserved = match state
        .directory
        .reserve_email(&email, &tenant_id, &user_id)
        .await
    {
        Err(DirectoryError::EmailTaken) => return Err(AdminError::EmailTaken),
        other => other?,
    };
    if let Some(existing) = reserved {
        // Already indexed for this tenant: a user, or the leftover of an interrupted invitation.
        let e = email.clone();
        if state
            .tenants
            .read(&tenant_id, move |c| users::find_by_email(c, &e))
            .await?
            .is_some()
        {
            return Err(AdminError::UserExists);
        }
        user_id = existing.user_id;
    }
    crate::failpoint::crash_point("invite.reserved");
    let now = state.now();
    let actor = admin.actor();
    let (e, uid) = (email.clone(), user_id.clone());
    let written = state
        .tenants
        .write(&tenant_id, move |tx| {
            let new = NewUser {
                email: &e,
                name: &name,
                role,
                status: Status::Invited,
                password_hash: None,
            };
            let user = match users::insert_with_id(tx, &uid, &new, now) {
                Ok(u) => u,
                Err(tenant_runtime::Error::EmailTaken) => return Ok(None),
                Err(e) => return Err(e),
            };
            let token = tokens::issue(tx, &user.id, Purpose::Invite, INVITE_TTL_SECS, now)?;
            audit::record(
                tx,
                Some(&actor),
                "invitation.sent",
                Some(&user.id),
                json!({"email": user.email, "role": role.as_str()}),
                now,
            )?;
            Ok(Some((user, token)))
        })
        .await;
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            // The tenant refused the write (e.g. disk full): take the reservation back, so
            // nothing half-done is left (doctor would also clear it later).
            if let Err(undo) = state
                .directory
                .remove_pending_email(&email, &tenant_id, &user_id)
                .await
            {
                tracing::warn!(error = %undo, "invitation reservation left for doctor");
            }
            return Err(e.into());
        }
    };
    let Some((user, token)) = written else {
        return Err(AdminError::UserExists);
    };
    crate::failpoint::crash_point("invite.written");
    state
        .directory
        .confirm_email(&email, &tenant_id, &user.id)
        .await?;
    crate::failpoint::crash_point("invite.confirmed");
    Ok((user, token))
}

fn send_invitation(state: &AppState, admin: &TenantAdmin, user: &User, token: &str) {
    mail::send_later(
        state.mailer.clone(),
        invitation_mail(state, &admin.0.tenant, user, token),
    );
}

/// The invitation message of `user` into `tenant`, with the link of `token`.
pub(super) fn invitation_mail(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    token: &str,
) -> mail::Mail {
    let link = state
        .config
        .link(&format!("/invite?token={}", bearer(&tenant.id, token)));
    mail::templates::invitation(&state.config.product_name, &tenant.name, &user.email, &link)
}

fn is_active_admin(u: &User) -> bool {
    u.role == Role::Admin && u.status == Status::Active
}

/// Changes a user's role or blocks/unblocks them. Either ends their sessions at once. The last
/// active admin can be neither demoted nor blocked; the check and the change share one
/// `BEGIN IMMEDIATE` transaction, so two admins acting on each other cannot both pass it.
pub async fn update_user(
    state: &AppState,
    admin: &TenantAdmin,
    id: &str,
    change: UserChange,
) -> AdminResult<AdminUserView> {
    let now = state.now();
    let actor = admin.actor();
    let id = id.to_owned();
    let o = state
        .tenants
        .write(&admin.0.tenant.id, move |tx| {
            let Some(before) = users::get(tx, &id)? else {
                return Ok(Err(AdminError::NotFound));
            };
            let mut after = before.clone();
            if let Some(role) = change.role {
                after.role = role;
            }
            match change.blocked {
                Some(true) => after.status = Status::Blocked,
                Some(false) if before.status == Status::Blocked => {
                    after.status = if before.password_hash.is_some() {
                        Status::Active
                    } else {
                        Status::Invited
                    };
                }
                _ => {}
            }
            if is_active_admin(&before)
                && !is_active_admin(&after)
                && users::count_active_admins(tx)? <= 1
            {
                return Ok(Err(AdminError::LastAdmin));
            }
            let audit = |action: &str, details: serde_json::Value| {
                audit::record(tx, Some(&actor), action, Some(&before.id), details, now)
            };
            if after.role != before.role {
                users::set_role(tx, &id, after.role, now)?;
                audit(
                    "user.role_changed",
                    json!({"from": before.role.as_str(), "to": after.role.as_str()}),
                )?;
            }
            if after.status != before.status {
                users::set_status(tx, &id, after.status, now)?;
                crate::failpoint::crash_point("block.status_set");
                if after.status == Status::Blocked {
                    tokens::revoke(tx, &id, None, now)?;
                    audit("user.blocked", json!({}))?;
                } else {
                    audit("user.unblocked", json!({}))?;
                }
            }
            if after.role != before.role || after.status != before.status {
                sessions::revoke_all(tx, &id, None)?;
            }
            Ok(users::get(tx, &id)?.ok_or(AdminError::NotFound))
        })
        .await?;
    super::backchannel::kick(state, &admin.0.tenant.id).await;
    o.map(|u| AdminUserView::from(&u))
}

/// Deletes a user: the tenant row first (with their sessions and tokens), then the directory
/// index row, so a crash in between leaves a dangling index row that only fails sign-in.
pub async fn delete_user(state: &AppState, admin: &TenantAdmin, id: &str) -> AdminResult<()> {
    let now = state.now();
    let actor = admin.actor();
    let id = id.to_owned();
    let o = state
        .tenants
        .write(&admin.0.tenant.id, move |tx| {
            let Some(user) = users::get(tx, &id)? else {
                return Ok(Err(AdminError::NotFound));
            };
            if is_active_admin(&user) && users::count_active_admins(tx)? <= 1 {
                return Ok(Err(AdminError::LastAdmin));
            }
            users::delete(tx, &id)?;
            audit::record(
                tx,
                Some(&actor),
                "user.deleted",
                Some(&id),
                json!({"email": user.email}),
                now,
            )?;
            Ok(Ok(user))
        })
        .await?;
    let user = o?;
    super::backchannel::kick(state, &admin.0.tenant.id).await;
    state
        .directory
        .remove_email(&user.email, &admin.0.tenant.id)
        .await?;
    Ok(())
}

/// The invited user `id`, or why an invitation action does not apply: no such user, or
/// `otherwise` when they accepted or are blocked.
fn invitee(
    tx: &rusqlite::Connection,
    id: &str,
    otherwise: AdminError,
) -> tenant_runtime::Result<AdminResult<User>> {
    Ok(match users::get(tx, id)? {
        None => Err(AdminError::NotFound),
        Some(u) if u.status != Status::Invited => Err(otherwise),
        Some(u) => Ok(u),
    })
}

/// Sends a fresh invitation; the previous link stops working.
pub async fn resend_invitation(
    state: &AppState,
    admin: &TenantAdmin,
    id: &str,
) -> AdminResult<AdminUserView> {
    let (now, actor, id) = (state.now(), admin.actor(), id.to_owned());
    let (user, token) = state
        .tenants
        .write(&admin.0.tenant.id, move |tx| {
            let user = match invitee(tx, &id, AdminError::AlreadyAccepted)? {
                Ok(u) => u,
                Err(e) => return Ok(Err(e)),
            };
            let token = tokens::issue(tx, &id, Purpose::Invite, INVITE_TTL_SECS, now)?;
            audit::record(
                tx,
                Some(&actor),
                "invitation.sent",
                Some(&id),
                json!({"email": user.email, "resent": true}),
                now,
            )?;
            Ok(Ok((user, token)))
        })
        .await??;
    send_invitation(state, admin, &user, &token);
    Ok(AdminUserView::from(&user))
}

/// Revokes a pending invitation; the link stops working.
pub async fn revoke_invitation(
    state: &AppState,
    admin: &TenantAdmin,
    id: &str,
) -> AdminResult<AdminUserView> {
    let (now, actor, id) = (state.now(), admin.actor(), id.to_owned());
    let user = state
        .tenants
        .write(&admin.0.tenant.id, move |tx| {
            let user = match invitee(tx, &id, AdminError::NoPendingInvitation)? {
                Ok(u) => u,
                Err(e) => return Ok(Err(e)),
            };
            tokens::revoke(tx, &id, Some(Purpose::Invite), now)?;
            audit::record(
                tx,
                Some(&actor),
                "invitation.revoked",
                Some(&id),
                json!({}),
                now,
            )?;
            Ok(Ok(user))
        })
        .await??;
    Ok(AdminUserView::from(&user))
}

pub async fn audit_log(
    state: &AppState,
    admin: &TenantAdmin,
    filter: audit::Filter,
) -> AdminResult<Vec<audit::Entry>> {
    Ok(state
        .tenants
        .read(&admin.0.tenant.id, move |c| audit::list(c, &filter))
        .await?)
}

/// A user's live sessions.
pub async fn user_sessions(
    state: &AppState,
    admin: &TenantAdmin,
    id: &str,
) -> AdminResult<Vec<sessions::Summary>> {
    let (id, idle, now) = (id.to_owned(), state.server.session_idle_secs, state.now());
    state
        .tenants
        .read(&admin.0.tenant.id, move |c| {
            if users::get(c, &id)?.is_none() {
                return Ok(None);
            }
            sessions::list(c, &id, idle, now).map(Some)
        })
        .await?
        .ok_or(AdminError::NotFound)
}

/// Signs a user out everywhere.
pub async fn end_user_sessions(
    state: &AppState,
    admin: &TenantAdmin,
    id: &str,
) -> AdminResult<usize> {
    let (id, actor, now) = (id.to_owned(), admin.actor(), state.now());
    let ended = state
        .tenants
        .write(&admin.0.tenant.id, move |tx| {
            if users::get(tx, &id)?.is_none() {
                return Ok(None);
            }
            let n = sessions::revoke_all(tx, &id, None)?;
            audit::record(
                tx,
                Some(&actor),
                "session.revoked_all",
                Some(&id),
                json!({"count": n}),
                now,
            )?;
            Ok(Some(n))
        })
        .await?;
    super::backchannel::kick(state, &admin.0.tenant.id).await;
    ended.ok_or(AdminError::NotFound)
}

/// Ends one session of a user (by its public id).
pub async fn end_user_session(
    state: &AppState,
    admin: &TenantAdmin,
    id: &str,
    session: &str,
) -> AdminResult<()> {
    let (id, session, actor, now) = (
        id.to_owned(),
        session.to_owned(),
        admin.actor(),
        state.now(),
    );
    let ended = state
        .tenants
        .write(&admin.0.tenant.id, move |tx| {
            if users::get(tx, &id)?.is_none() || !sessions::revoke_by_id(tx, &id, &session)? {
                return Ok(false);
            }
            audit::record(
                tx,
                Some(&actor),
                "session.revoked",
                Some(&id),
                json!({"session": session}),
                now,
            )?;
            Ok(true)
        })
        .await?;
    super::backchannel::kick(state, &admin.0.tenant.id).await;
    if ended {
        Ok(())
    } else {
        Err(AdminError::NotFound)
    }
}
