//! A person's name and email address, changed by a company admin or by the person themself.
//!
//! An email change waits for the link mailed to the new address (the old address is told).
//! Its confirmation writes the directory and the tenant file in order, each step idempotent:
//! 1. reserve the new address in the directory's user index (`pending`; another company's
//!    address is refused here, at the last moment that matters);
//! 2. in the tenant file, in one transaction: use the link, change the address, end the
//!    person's other sessions and links;
//! 3. confirm the new index row; 4. release the old one.
//!
//! A crash between steps leaves a stale reservation (1), an unconfirmed row and an old row
//! without a user (2), or only the old row (3): `tenantctl doctor --repair` clears each, and a
//! link not yet used can simply be used again.

use serde::Serialize;
use serde_json::json;
use tenant_runtime::store::audit;
use tenant_runtime::store::email_changes::{self, Pending};
use tenant_runtime::store::sessions;
use tenant_runtime::store::tokens::{self, Purpose};
use tenant_runtime::store::users::{self, Status, User};
use tenant_runtime::{TenantId, email};

use super::admin::{AdminError, AdminResult, check_domain_rules, invitation_mail, parse_name};
use super::identity::{bearer, split_bearer};
use crate::directory::{DirectoryError, Tenant, TenantStatus};
use crate::mail;
use crate::state::AppState;

/// How long the link of an email change works. Longer than a reset link: a change an admin
/// makes reaches someone who is not waiting for the mail.
pub const EMAIL_CHANGE_TTL_SECS: i64 = 24 * 3600;

/// A change waiting for its link, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PendingEmail {
    pub email: String,
    pub expires_at: i64,
}

impl From<Pending> for PendingEmail {
    fn from(p: Pending) -> Self {
        Self {
            email: p.new_email,
            expires_at: p.expires_at,
        }
    }
}

/// Renames user `user_id` of `tenant_id`; `actor` is who asks (for the audit log).
pub async fn set_name(
    state: &AppState,
    tenant_id: &TenantId,
    actor: &str,
    user_id: &str,
    raw_name: &str,
) -> AdminResult<User> {
    let name = parse_name(Some(raw_name))?;
    let (actor, id, now) = (actor.to_owned(), user_id.to_owned(), state.now());
    state
        .tenants
        .write(tenant_id, move |tx| {
            let Some(before) = users::get(tx, &id)? else {
                return Ok(Err(AdminError::NotFound));
            };
            if before.name != name {
                users::set_name(tx, &id, &name, now)?;
                audit::record(
                    tx,
                    Some(&actor),
                    "user.name_changed",
                    Some(&id),
                    json!({"from": before.name, "to": name}),
                    now,
                )?;
            }
            Ok(users::get(tx, &id)?.ok_or(AdminError::NotFound))
        })
        .await?
}

/// The user's email change waiting for its link, if any.
pub async fn pending_email(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &str,
) -> AdminResult<Option<PendingEmail>> {
    let (id, now) = (user_id.to_owned(), state.now());
    Ok(state
        .tenants
        .read(tenant_id, move |c| email_changes::pending_for(c, &id, now))
        .await?
        .map(PendingEmail::from))
}

/// Starts moving user `user_id` of `tenant` to `raw_email`: records the change, mails its link
/// to the new address and a notice to the old one. Nothing changes until the link is used.
pub async fn request_email_change(
    state: &AppState,
    tenant: &Tenant,
    actor: &str,
    user_id: &str,
    raw_email: &str,
) -> AdminResult<PendingEmail> {
    if raw_email.len() > 320 {
        return Err(AdminError::InvalidEmail);
    }
    let new = email::parse(raw_email).ok_or(AdminError::InvalidEmail)?;
    let (id, probe) = (user_id.to_owned(), new.clone());
    let (user, taken_here) = state
        .tenants
        .read(&tenant.id, move |c| {
            let user = users::get(c, &id)?;
            let other = users::find_by_email(c, &probe)?;
            Ok((user, other))
        })
        .await?;
    let user = user.ok_or(AdminError::NotFound)?;
    if user.email == new {
        return Err(AdminError::EmailUnchanged);
    }
    if taken_here.is_some() {
        return Err(AdminError::UserExists);
    }
    check_domain_rules(state, &tenant.id, &new).await?;
    if let Some(other) = state.directory.lookup_email(&new).await?
        && other.tenant_id != tenant.id
    {
        return Err(AdminError::EmailTaken);
    }
    let (actor, id, to, now) = (actor.to_owned(), user.id.clone(), new.clone(), state.now());
    let (token, pending) = state
        .tenants
        .write(&tenant.id, move |tx| {
            let token = email_changes::issue(tx, &id, &to, &actor, EMAIL_CHANGE_TTL_SECS, now)?;
            audit::record(
                tx,
                Some(&actor),
                "email.change_requested",
                Some(&id),
                json!({"to": to}),
                now,
            )?;
            let pending = email_changes::pending_for(tx, &id, now)?;
            Ok((token, pending))
        })
        .await?;
    let link = state.config.link(&format!(
        "/account/email/confirm?token={}",
        bearer(&tenant.id, &token)
    ));
    let product = &state.config.product_name;
    mail::send_later(
        state.mailer.clone(),
        mail::templates::email_change_confirm(product, &tenant.name, &new, &link),
    );
    mail::send_later(
        state.mailer.clone(),
        mail::templates::email_change_notice(product, &tenant.name, &user.email, &new),
    );
    pending.map(PendingEmail::from).ok_or_else(|| {
        AdminError::Fault(crate::error::Fault::Unexpected(anyhow::anyhow!(
            "the email change vanished"
        )))
    })
}

/// Cancels the user's pending email change; `NotFound` when there is none.
pub async fn cancel_email_change(
    state: &AppState,
    tenant_id: &TenantId,
    actor: &str,
    user_id: &str,
) -> AdminResult<()> {
    let (actor, id, now) = (actor.to_owned(), user_id.to_owned(), state.now());
    let n = state
        .tenants
        .write(tenant_id, move |tx| {
            let n = email_changes::cancel(tx, &id, now)?;
            if n > 0 {
                audit::record(
                    tx,
                    Some(&actor),
                    "email.change_cancelled",
                    Some(&id),
                    json!({}),
                    now,
                )?;
            }
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(AdminError::NotFound);
    }
    Ok(())
}

/// The tenant and pending change behind a live link, without using it up.
pub async fn peek_email_change(
    state: &AppState,
    token: &str,
) -> AdminResult<(Tenant, User, PendingEmail)> {
    let (tenant_id, secret) = split_bearer(token).ok_or(AdminError::InvalidToken)?;
    let tenant = state
        .directory
        .tenant(&tenant_id)
        .await?
        .filter(|t| t.status == TenantStatus::Active)
        .ok_or(AdminError::InvalidToken)?;
    state.check_placement(&tenant)?;
    let (secret, now) = (secret.to_owned(), state.now());
    let found = state
        .tenants
        .read(&tenant.id, move |c| {
            let Some(p) = email_changes::peek(c, &secret, now)? else {
                return Ok(None);
            };
            Ok(users::get(c, &p.user_id)?.map(|u| (u, p)))
        })
        .await?;
    let (user, pending) = found.ok_or(AdminError::InvalidToken)?;
    Ok((tenant, user, pending.into()))
}

/// Makes an email change take effect through its link (see the module's steps). `keep` is
/// the caller's own session when they confirm while signed in as that person: it stays, every
/// other session of the person ends.
pub async fn confirm_email_change(
    state: &AppState,
    token: &str,
    keep: Option<[u8; 32]>,
) -> AdminResult<User> {
    let (tenant, user, pending) = peek_email_change(state, token).await?;
    let new = pending.email;
    let tenant_id = tenant.id.clone();
    // Another company may have taken the domain or the address since the request.
    check_domain_rules(state, &tenant_id, &new).await?;
    let reserved = match state
        .directory
        .reserve_email(&new, &tenant_id, &user.id)
        .await
    {
        Err(DirectoryError::EmailTaken) => return Err(AdminError::EmailTaken),
        other => other?,
    };
    if let Some(existing) = reserved
        && existing.user_id != user.id
    {
        // The address is another user's of this company (or their invitation under way).
        return Err(AdminError::UserExists);
    }
    crate::failpoint::crash_point("email.reserved");
    let secret = split_bearer(token)
        .map(|(_, s)| s.to_owned())
        .unwrap_or_default();
    let (to, now) = (new.clone(), state.now());
    let written = state
        .tenants
        .write(&tenant_id, move |tx| {
            let Some(p) = email_changes::redeem(tx, &secret, now)? else {
                return Ok(Err(AdminError::InvalidToken));
            };
            let Some(before) = users::get(tx, &p.user_id)? else {
                return Ok(Err(AdminError::InvalidToken));
            };
            match users::set_email(tx, &p.user_id, &to, now) {
                Ok(_) => {}
                Err(tenant_runtime::Error::EmailTaken) => return Ok(Err(AdminError::UserExists)),
                Err(e) => return Err(e),
            }
            // Links mailed to the old address stop working; so does every other session.
            tokens::revoke(tx, &p.user_id, None, now)?;
            email_changes::cancel(tx, &p.user_id, now)?;
            sessions::revoke_all(tx, &p.user_id, keep.as_ref().map(|k| &k[..]))?;
            audit::record(
                tx,
                Some(&p.user_id),
                "email.changed",
                Some(&p.user_id),
                json!({"from": before.email, "to": to}),
                now,
            )?;
            // An invited person gets their invitation again, at the new address.
            let invite = if before.status == Status::Invited {
                Some(tokens::issue(
                    tx,
                    &p.user_id,
                    Purpose::Invite,
                    super::recovery::INVITE_TTL_SECS,
                    now,
                )?)
            } else {
                None
            };
            let after = users::get(tx, &p.user_id)?;
            Ok(after
                .map(|u| (before, u, invite))
                .ok_or(AdminError::InvalidToken))
        })
        .await;
    let (before, after, invite) = match written {
        Ok(Ok(done)) => done,
        refused => {
            // Nothing changed in the tenant: take the reservation back (doctor would too).
            if let Err(undo) = state
                .directory
                .remove_pending_email(&new, &tenant_id, &user.id)
                .await
            {
                tracing::warn!(error = %undo, "email change reservation left for doctor");
            }
            return Err(match refused {
                Ok(Err(e)) => e,
                Err(e) => e.into(),
                Ok(Ok(_)) => AdminError::InvalidToken,
            });
        }
    };
    crate::failpoint::crash_point("email.written");
    super::backchannel::kick(state, &tenant_id).await;
    state
        .directory
        .confirm_email(&new, &tenant_id, &after.id)
        .await?;
    crate::failpoint::crash_point("email.confirmed");
    state
        .directory
        .remove_email_of(&before.email, &tenant_id, &after.id)
        .await?;
    crate::failpoint::crash_point("email.released");
    // Proven through the new mailbox: whatever strangers did to its sign-in throttle is moot.
    state.throttles.login.clear(&after.email).await;
    if let Some(token) = invite {
        mail::send_later(
            state.mailer.clone(),
            invitation_mail(state, &tenant, &after, &token),
        );
    }
    Ok(after)
}
