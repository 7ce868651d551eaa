//! What an operator does to companies, shared by `tenantctl` and the operator API: the same
//! functions and the same answers (`tenantctl --json` prints these types; the API sends them),
//! so a company made either way is the same company.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tenant_runtime::store::{audit, users};
use tenant_runtime::{TenantId, email};

use super::backchannel;
use super::fleet::{self, Checkpoint, Fleet, FleetError, FleetResult, TrashNote};
use super::provision::{self, Files, NewTenant};
use crate::directory::{DirectoryError, Tenant, TenantStatus};
use crate::mail::Mailer;

/// A company as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantInfo {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub schema_version: i64,
    pub node: String,
    pub auth_epoch: i64,
    pub domains: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TenantInfo {
    pub fn of(t: &Tenant, domains: &[String]) -> Self {
        Self {
            id: t.id.to_string(),
            slug: t.slug.clone(),
            name: t.name.clone(),
            status: t.status.as_str().to_owned(),
            schema_version: t.schema_version,
            node: t.node.clone(),
            auth_epoch: t.auth_epoch,
            domains: domains.to_vec(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// Which companies a list shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<TenantStatus>,
    /// A part of the slug or name (any case).
    pub search: Option<String>,
}

/// Every company matching `filter`, by slug.
pub async fn list(fleet: &Fleet, filter: &Filter) -> FleetResult<Vec<TenantInfo>> {
    let mut domains: std::collections::HashMap<TenantId, Vec<String>> = Default::default();
    for (t, d) in fleet.directory.all_domains().await? {
        domains.entry(t).or_default().push(d);
    }
    let search = filter.search.as_deref().map(str::to_lowercase);
    Ok(fleet
        .directory
        .tenants()
        .await?
        .iter()
        .filter(|t| filter.status.is_none_or(|s| t.status == s))
        .filter(|t| {
            search
                .as_deref()
                .is_none_or(|q| t.slug.contains(q) || t.name.to_lowercase().contains(q))
        })
        .map(|t| TenantInfo::of(t, domains.get(&t.id).map_or(&[][..], Vec::as_slice)))
        .collect())
}

/// An entry of the user index, as `tenant show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedEmail {
    pub email: String,
    pub tenant_id: String,
    pub user_id: String,
    pub state: String,
    pub created_at: i64,
}

/// One company with its indexed users and its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantDetail {
    #[serde(flatten)]
    pub tenant: TenantInfo,
    pub users: Vec<IndexedEmail>,
    pub file: PathBuf,
    pub file_size: Option<u64>,
}

pub async fn show(fleet: &Fleet, slug: &str) -> FleetResult<TenantDetail> {
    let t = fleet.tenant_by_slug(slug).await?;
    let domains = fleet.directory.domains_of(&t.id).await?;
    let users = fleet
        .directory
        .index_of(&t.id)
        .await?
        .into_iter()
        .map(|e| IndexedEmail {
            email: e.email,
            tenant_id: e.tenant_id.to_string(),
            user_id: e.user_id,
            state: e.state,
            created_at: e.created_at,
        })
        .collect();
    let file = fleet.router.path_of(&t.id);
    let file_size = std::fs::metadata(&file).map(|m| m.len()).ok();
    Ok(TenantDetail {
        tenant: TenantInfo::of(&t, &domains),
        users,
        file,
        file_size,
    })
}

/// The first admin of a created company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminInfo {
    pub id: String,
    pub email: String,
    pub status: String,
}

/// A created company, and its first admin's invitation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Created {
    pub tenant: TenantInfo,
    pub admin: AdminInfo,
    /// The invitation link: shown by `tenantctl` on the server, never sent by the API.
    pub invite_link: Option<String>,
    /// The company existed exactly as asked with its admin still invited: a new invitation
    /// was made (the earlier link stopped working).
    pub reinvited: bool,
    pub mail_sent: bool,
    /// Why mailing the invitation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_error: Option<String>,
}

/// Creates a company with its first admin (or finishes one a crash left unfinished, or makes
/// a new invitation when the same creation is asked again) and mails the invitation. The
/// company's file is written by `files` on `node`.
#[allow(
    clippy::too_many_arguments,
    reason = "each is one piece of the creation"
)]
pub async fn create(
    fleet: &Fleet,
    files: Files<'_>,
    node: &str,
    mailer: &dyn Mailer,
    req: &NewTenant,
    now: i64,
    checkpoint: Checkpoint<'_>,
) -> FleetResult<Created> {
    if !fleet::valid_slug(&req.slug) {
        return Err(FleetError::InvalidSlug(req.slug.clone()));
    }
    let _lock = fleet::lock(&fleet.config, &req.slug)?;
    let placed = provision::create_tenant_placed(
        &fleet.directory,
        files,
        node,
        &fleet.config,
        req,
        now,
        checkpoint,
    )
    .await;
    let (p, reinvited) = match placed {
        Ok(p) => (p, false),
        Err(FleetError::SlugTaken(slug)) => {
            match provision::reinvite_if_same(
                &fleet.directory,
                &fleet.router,
                &fleet.config,
                req,
                now,
            )
            .await?
            {
                Some(p) => (p, true),
                None => return Err(FleetError::SlugTaken(slug)),
            }
        }
        Err(e) => return Err(e),
    };
    let domains = fleet.directory.domains_of(&p.tenant.id).await?;
    let admin_email = p.mail.to.clone();
    let sent = mailer.send(p.mail.clone()).await;
    if sent.is_ok() {
        checkpoint("mail_sent");
    }
    if fleet.via.is_some() {
        fleet
            .audit(&p.tenant, "tenant.created_via_api", json!({}))
            .await;
    }
    Ok(Created {
        tenant: TenantInfo::of(&p.tenant, &domains),
        admin: AdminInfo {
            id: p.admin_user_id,
            email: admin_email,
            status: "invited".to_owned(),
        },
        invite_link: Some(p.invite_link),
        reinvited,
        mail_sent: sent.is_ok(),
        mail_error: sent.err().map(|e| format!("{e:#}")),
    })
}

/// A suspension or resumption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub slug: String,
    pub id: String,
    pub status: String,
    pub changed: bool,
}

/// Suspends (its users are refused within a second, its apps' sessions end) or resumes a
/// company.
pub async fn set_status(fleet: &Fleet, slug: &str, suspend: bool) -> FleetResult<StatusChange> {
    let t = fleet.tenant_by_slug(slug).await?;
    if t.status == TenantStatus::Provisioning {
        return Err(FleetError::Provisioning(t.slug));
    }
    let status = if suspend {
        TenantStatus::Suspended
    } else {
        TenantStatus::Active
    };
    let changed = t.status != status;
    if changed {
        fleet.directory.set_tenant_status(&t.id, status).await?;
        let action = if suspend {
            "tenant.suspended"
        } else {
            "tenant.resumed"
        };
        fleet.audit(&t, action, json!({})).await;
        if suspend {
            // The apps' sessions end with the company's: they are told by back-channel logout.
            backchannel::end_all_grants(
                &fleet.directory,
                &fleet.router,
                &t.id,
                Vec::new(),
                fleet.clock.now(),
            )
            .await?;
        }
    }
    Ok(StatusChange {
        slug: t.slug,
        id: t.id.to_string(),
        status: status.as_str().to_owned(),
        changed,
    })
}

/// Renames a company (what its users see).
pub async fn rename(fleet: &Fleet, slug: &str, name: &str) -> FleetResult<bool> {
    let t = fleet.tenant_by_slug(slug).await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(FleetError::InvalidName);
    }
    if t.name == name {
        return Ok(false);
    }
    fleet.directory.set_tenant_name(&t.id, name).await?;
    fleet
        .audit(&t, "tenant.renamed", json!({"from": t.name, "to": name}))
        .await;
    Ok(true)
}

/// A deletion: where the copy in the trash is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deleted {
    pub slug: String,
    pub id: String,
    pub deleted: bool,
    pub trash: PathBuf,
    pub note: TrashNote,
}

/// Deletes a company to the trash (30 days).
pub async fn delete(
    fleet: &Fleet,
    slug: &str,
    now: i64,
    checkpoint: Checkpoint<'_>,
) -> FleetResult<Deleted> {
    let t = fleet.tenant_by_slug(slug).await?;
    let entry = fleet::delete(fleet, &t.slug, now, checkpoint).await?;
    Ok(Deleted {
        slug: t.slug,
        id: t.id.to_string(),
        deleted: true,
        trash: entry.path,
        note: entry.note,
    })
}

/// A company brought back from the trash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Undeleted {
    pub tenant: TenantInfo,
    pub users: usize,
}

pub async fn undelete(
    fleet: &Fleet,
    slug: &str,
    now: i64,
    checkpoint: Checkpoint<'_>,
) -> FleetResult<Undeleted> {
    let t = fleet::undelete(fleet, slug, now, checkpoint).await?;
    let domains = fleet.directory.domains_of(&t.id).await?;
    let users = fleet.directory.index_of(&t.id).await?.len();
    Ok(Undeleted {
        tenant: TenantInfo::of(&t, &domains),
        users,
    })
}

/// A domain mapped (or already mapped) to a company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainAdded {
    pub slug: String,
    pub domain: String,
    pub added: bool,
}

/// A domain no longer mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRemoved {
    pub slug: String,
    pub domain: String,
    pub removed: bool,
}

fn parse_domain(raw: &str) -> FleetResult<String> {
    email::parse_domain(raw).ok_or_else(|| FleetError::InvalidDomain(raw.to_owned()))
}

async fn owner_slug(fleet: &Fleet, id: Option<TenantId>) -> FleetResult<String> {
    let Some(id) = id else {
        return Ok("another tenant".to_owned());
    };
    Ok(match fleet.directory.tenant(&id).await? {
        Some(o) => o.slug,
        None => id.to_string(),
    })
}

pub async fn add_domain(fleet: &Fleet, slug: &str, raw: &str) -> FleetResult<DomainAdded> {
    let domain = parse_domain(raw)?;
    let t = fleet.tenant_by_slug(slug).await?;
    let added = match fleet.directory.domain_owner(&domain).await? {
        Some(owner) if owner == t.id => false,
        Some(owner) => {
            return Err(FleetError::DomainTaken {
                domain,
                owner: owner_slug(fleet, Some(owner)).await?,
            });
        }
        None => match fleet.directory.add_domain(&t.id, &domain).await {
            Ok(()) => true,
            Err(DirectoryError::DomainTaken) => {
                let owner = fleet.directory.domain_owner(&domain).await?;
                return Err(FleetError::DomainTaken {
                    domain,
                    owner: owner_slug(fleet, owner).await?,
                });
            }
            Err(e) => return Err(e.into()),
        },
    };
    if added {
        fleet
            .audit(&t, "domain.added", json!({"domain": domain}))
            .await;
    }
    Ok(DomainAdded {
        slug: t.slug,
        domain,
        added,
    })
}

pub async fn remove_domain(fleet: &Fleet, slug: &str, raw: &str) -> FleetResult<DomainRemoved> {
    let domain = parse_domain(raw)?;
    let t = fleet.tenant_by_slug(slug).await?;
    if !fleet.directory.remove_domain(&t.id, &domain).await? {
        return Err(FleetError::DomainNotMapped {
            domain,
            slug: t.slug,
        });
    }
    fleet
        .audit(&t, "domain.removed", json!({"domain": domain}))
        .await;
    Ok(DomainRemoved {
        slug: t.slug,
        domain,
        removed: true,
    })
}

/// The company of a found user, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantBrief {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub status: String,
}

/// A user as support sees them: never a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBrief {
    pub id: String,
    pub name: String,
    pub status: String,
    pub role: String,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// Who has an email address, across every company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundUser {
    pub email: String,
    pub tenant: TenantBrief,
    pub index_state: String,
    /// `None` when the index names a user the company's file does not have (doctor repairs).
    pub user: Option<UserBrief>,
}

/// Finds the company, status and role of the user with an email address.
pub async fn find_user(fleet: &Fleet, raw: &str) -> FleetResult<(Tenant, FoundUser)> {
    let email = email::parse(raw).ok_or_else(|| FleetError::InvalidEmail(raw.to_owned()))?;
    let entry = fleet
        .directory
        .lookup_email(&email)
        .await?
        .ok_or_else(|| FleetError::UnknownUser(email.clone()))?;
    let tenant = fleet
        .directory
        .tenant(&entry.tenant_id)
        .await?
        .ok_or_else(|| FleetError::IndexedToNothing(email.clone()))?;
    let e = email.clone();
    let user = fleet
        .router
        .read(&tenant.id, move |c| users::find_by_email(c, &e))
        .await
        .map_err(|e| FleetError::TenantUnreadable {
            email: email.clone(),
            slug: tenant.slug.clone(),
            cause: e.to_string(),
        })?;
    let found = FoundUser {
        email,
        tenant: TenantBrief {
            id: tenant.id.to_string(),
            slug: tenant.slug.clone(),
            name: tenant.name.clone(),
            status: tenant.status.as_str().to_owned(),
        },
        index_state: entry.state,
        user: user.map(|u| UserBrief {
            id: u.id,
            name: u.name,
            status: u.status.as_str().to_owned(),
            role: u.role.as_str().to_owned(),
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }),
    };
    Ok((tenant, found))
}

/// A page of a company's own audit log, newest first.
pub async fn audit_log(
    fleet: &Fleet,
    slug: &str,
    filter: audit::Filter,
) -> FleetResult<(Tenant, Vec<audit::Entry>)> {
    let t = fleet.tenant_by_slug(slug).await?;
    let id = t.id.clone();
    let entries = fleet
        .router
        .read(&id, move |c| audit::list(c, &filter))
        .await?;
    Ok((t, entries))
}
