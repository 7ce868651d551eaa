//! Creating a company: directory rows, its database file and its first admin.
//!
//! The directory and the tenant file cannot share a transaction, so the steps are ordered and
//! each is idempotent: the tenant row is written first as `provisioning` (never routed to), then
//! domains and the admin's email reservation, then the file and the admin user, and the tenant
//! turns `active` last. Running the same creation again resumes where a crash left it.

use serde_json::json;
use tenant_runtime::store::audit;
use tenant_runtime::store::tokens::{self, Purpose};
use tenant_runtime::store::users::{self, NewUser, Role, Status};
use tenant_runtime::{TenantId, TenantRouter, email};

use super::admin::parse_name;
use super::fleet::{Checkpoint, FleetError, valid_slug};
use super::identity::bearer;
use super::recovery::INVITE_TTL_SECS;
use crate::cluster::client::{FirstAdmin, NodeClient, Provisioned as FileWritten};
use crate::config::Config;
use crate::directory::{Directory, DirectoryError, Tenant, TenantStatus};
use crate::mail::{self, Mail};

type Result<T, E = FleetError> = std::result::Result<T, E>;

/// What the operator asks for.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    pub domains: Vec<String>,
    pub admin_email: String,
    pub admin_name: Option<String>,
}

/// A created company and its first admin's invitation.
#[derive(Debug)]
pub struct Provisioned {
    pub tenant: Tenant,
    pub admin_user_id: String,
    pub invite_link: String,
    pub mail: Mail,
}

/// Creates a tenant, or finishes one that a crash left `provisioning`.
pub async fn create_tenant(
    directory: &Directory,
    router: &TenantRouter,
    config: &Config,
    req: &NewTenant,
    now: i64,
) -> Result<Provisioned> {
    create_tenant_with(directory, router, config, req, now, &|_| {}).await
}

/// The steps of [`create_tenant_with`], in order.
pub const CREATE_STEPS: &[&str] = &[
    "tenant_row",
    "domains",
    "email_reserved",
    "file_created",
    "admin_written",
    "email_confirmed",
    "schema_version",
    "activated",
];

/// Where a new tenant's file is written.
#[derive(Debug, Clone, Copy)]
pub enum Files<'a> {
    /// The tenants folder of this process.
    Local(&'a TenantRouter),
    /// Another node's, through its internal API (`POST /internal/tenants/{id}/provision`).
    Remote {
        client: &'a NodeClient,
        url: &'a str,
    },
}

/// [`create_tenant`], calling `checkpoint` after each step of [`CREATE_STEPS`].
pub async fn create_tenant_with(
    directory: &Directory,
    router: &TenantRouter,
    config: &Config,
    req: &NewTenant,
    now: i64,
    checkpoint: Checkpoint<'_>,
) -> Result<Provisioned> {
    create_tenant_placed(
        directory,
        Files::Local(router),
        "local",
        config,
        req,
        now,
        checkpoint,
    )
    .await
}

/// [`create_tenant_with`] placing the tenant on `node`, whose tenants folder `files` writes
/// to. A creation resumed after a crash stays on the node it started on.
pub async fn create_tenant_placed(
    directory: &Directory,
    files: Files<'_>,
    node: &str,
    config: &Config,
    req: &NewTenant,
    now: i64,
    checkpoint: Checkpoint<'_>,
) -> Result<Provisioned> {
    // Check everything before writing anything, so bad input changes nothing.
    if !valid_slug(&req.slug) {
        return Err(FleetError::InvalidSlug(req.slug.clone()));
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(FleetError::InvalidName);
    }
    let admin_email = email::parse(&req.admin_email)
        .ok_or_else(|| FleetError::InvalidEmail(req.admin_email.clone()))?;
    let admin_name = parse_name(req.admin_name.as_deref()).map_err(|_| FleetError::InvalidName)?;
    let mut domains = Vec::new();
    for d in &req.domains {
        let d = email::parse_domain(d).ok_or_else(|| FleetError::InvalidDomain(d.clone()))?;
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    let existing = directory.tenant_by_slug(&req.slug).await?;
    let resuming = match &existing {
        Some(t) if t.status == TenantStatus::Provisioning && t.node != node => {
            return Err(FleetError::OtherNode {
                slug: t.slug.clone(),
                node: t.node.clone(),
            });
        }
        Some(t) if t.status == TenantStatus::Provisioning => Some(t.id.clone()),
        Some(_) => return Err(FleetError::SlugTaken(req.slug.clone())),
        None => None,
    };
    for d in &domains {
        match directory.domain_owner(d).await? {
            Some(owner) if Some(&owner) != resuming.as_ref() => {
                return Err(domain_taken(directory, d, &owner).await);
            }
            _ => {}
        }
    }
    if let Some(entry) = directory.lookup_email(&admin_email).await?
        && Some(&entry.tenant_id) != resuming.as_ref()
    {
        return Err(FleetError::EmailTaken(admin_email));
    }

    // 1. The tenant row, never routed to while provisioning.
    let tenant_id = match resuming {
        Some(id) => id,
        None => {
            let id = TenantId::generate();
            match directory.insert_tenant(&id, &req.slug, name, node).await {
                Ok(_) => id,
                Err(DirectoryError::SlugTaken) => {
                    return Err(FleetError::SlugTaken(req.slug.clone()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    checkpoint("tenant_row");
    // 2. Domains and the admin's email reservation.
    for d in &domains {
        match directory.add_domain(&tenant_id, d).await {
            Ok(()) => {}
            Err(DirectoryError::DomainTaken) => match directory.domain_owner(d).await? {
                Some(owner) if owner == tenant_id => {}
                Some(owner) => return Err(domain_taken(directory, d, &owner).await),
                None => {
                    return Err(FleetError::DomainTaken {
                        domain: d.clone(),
                        owner: "another tenant".to_owned(),
                    });
                }
            },
            Err(e) => return Err(e.into()),
        }
    }
    checkpoint("domains");
    let mut admin_id = uuid::Uuid::new_v4().to_string();
    match directory
        .reserve_email(&admin_email, &tenant_id, &admin_id)
        .await
    {
        Ok(Some(existing)) => admin_id = existing.user_id,
        Ok(None) => {}
        Err(DirectoryError::EmailTaken) => return Err(FleetError::EmailTaken(admin_email)),
        Err(e) => return Err(e.into()),
    }
    checkpoint("email_reserved");
    // 3. The database file and the first admin, invited.
    // The invitation's secret is made here and never leaves this process; the file (wherever
    // it is written) gets its hash.
    let secret = tenant_runtime::secret::generate()?;
    let token = secret.token.clone();
    let first = FirstAdmin {
        email: admin_email.clone(),
        user_id: admin_id,
        name: admin_name,
        now,
        invite_hash: hex::encode(secret.hash),
    };
    let FileWritten { admin_id } = match files {
        Files::Local(router) => {
            create_file(router, &tenant_id, now).await?;
            checkpoint("file_created");
            write_first_admin(router, &tenant_id, &first).await?
        }
        Files::Remote { client, url } => {
            let done = client.provision(url, &tenant_id, &first).await?;
            checkpoint("file_created");
            done
        }
    };
    checkpoint("admin_written");
    directory
        .confirm_email(&admin_email, &tenant_id, &admin_id)
        .await?;
    checkpoint("email_confirmed");
    // 4. Open for business.
    directory
        .set_schema_version(&tenant_id, i64::from(tenant_schema::TENANT_LATEST))
        .await?;
    checkpoint("schema_version");
    directory
        .set_tenant_status(&tenant_id, TenantStatus::Active)
        .await?;
    checkpoint("activated");
    let tenant = directory
        .tenant(&tenant_id)
        .await?
        .ok_or_else(|| FleetError::UnknownTenant(req.slug.clone()))?;
    let invite_link = config.link(&format!("/invite?token={}", bearer(&tenant_id, &token)));
    let mail = mail::templates::invitation(
        &config.product_name,
        &tenant.name,
        &admin_email,
        &invite_link,
    );
    Ok(Provisioned {
        tenant,
        admin_user_id: admin_id,
        invite_link,
        mail,
    })
}

/// Creates a tenant's file unless it exists (step 3 of a creation).
pub async fn create_file(router: &TenantRouter, tenant_id: &TenantId, now: i64) -> Result<()> {
    if !router.exists(tenant_id) {
        match router.create_tenant(tenant_id, now).await {
            Ok(()) | Err(tenant_runtime::Error::TenantExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes the first admin (invited) into a new tenant's file, or finds them there, and stores
/// the invitation whose hash `first` carries (earlier ones stop working).
pub async fn write_first_admin(
    router: &TenantRouter,
    tenant_id: &TenantId,
    first: &FirstAdmin,
) -> Result<FileWritten> {
    let (e, uid, admin_name, now) = (
        first.email.clone(),
        first.user_id.clone(),
        first.name.clone(),
        first.now,
    );
    let hash: [u8; 32] = hex::decode(&first.invite_hash)
        .ok()
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| FleetError::Other(anyhow::anyhow!("invitation hash is not SHA-256")))?;
    Ok(router
        .write(tenant_id, move |tx| {
            let user = match users::find_by_email(tx, &e)? {
                Some(u) => u,
                None => users::insert_with_id(
                    tx,
                    &uid,
                    &NewUser {
                        email: &e,
                        name: &admin_name,
                        role: Role::Admin,
                        status: Status::Invited,
                        password_hash: None,
                    },
                    now,
                )?,
            };
            tokens::issue_hashed(tx, &user.id, Purpose::Invite, &hash, INVITE_TTL_SECS, now)?;
            audit::record(
                tx,
                Some("operator"),
                "tenant.created",
                Some(&user.id),
                json!({"admin_email": user.email}),
                now,
            )?;
            Ok(FileWritten { admin_id: user.id })
        })
        .await?)
}

/// When `req` repeats the creation of a tenant that exists exactly as asked (same slug, name
/// and domains) and whose first admin has not accepted yet, issues a fresh invitation (the
/// earlier link stops working): re-running an interrupted `tenantctl tenant create` then
/// succeeds. `Ok(None)` when the tenant differs, so the slug is really taken.
pub async fn reinvite_if_same(
    directory: &Directory,
    router: &TenantRouter,
    config: &Config,
    req: &NewTenant,
    now: i64,
) -> Result<Option<Provisioned>> {
    let Some(tenant) = directory.tenant_by_slug(&req.slug).await? else {
        return Ok(None);
    };
    if tenant.status == TenantStatus::Provisioning || tenant.name != req.name.trim() {
        return Ok(None);
    }
    let mut wanted = Vec::new();
    for d in &req.domains {
        let d = email::parse_domain(d).ok_or_else(|| FleetError::InvalidDomain(d.clone()))?;
        if !wanted.contains(&d) {
            wanted.push(d);
        }
    }
    wanted.sort();
    if directory.domains_of(&tenant.id).await? != wanted {
        return Ok(None);
    }
    let admin_email = email::parse(&req.admin_email)
        .ok_or_else(|| FleetError::InvalidEmail(req.admin_email.clone()))?;
    match directory.lookup_email(&admin_email).await? {
        Some(e) if e.tenant_id == tenant.id && e.state == "active" => {}
        _ => return Ok(None),
    }
    let tenant_id = tenant.id.clone();
    let e = admin_email.clone();
    let issued = router
        .write(&tenant_id, move |tx| {
            let Some(user) = users::find_by_email(tx, &e)? else {
                return Ok(None);
            };
            if user.role != Role::Admin || user.status != Status::Invited {
                return Ok(None);
            }
            let token = tokens::issue(tx, &user.id, Purpose::Invite, INVITE_TTL_SECS, now)?;
            audit::record(
                tx,
                Some("operator"),
                "invitation.resent",
                Some(&user.id),
                json!({}),
                now,
            )?;
            Ok(Some((user.id, token)))
        })
        .await?;
    let Some((admin_user_id, token)) = issued else {
        return Ok(None);
    };
    let invite_link = config.link(&format!("/invite?token={}", bearer(&tenant_id, &token)));
    let mail = mail::templates::invitation(
        &config.product_name,
        &tenant.name,
        &admin_email,
        &invite_link,
    );
    Ok(Some(Provisioned {
        tenant,
        admin_user_id,
        invite_link,
        mail,
    }))
}

/// [`FleetError::DomainTaken`], naming the tenant that holds the domain by its slug.
async fn domain_taken(directory: &Directory, domain: &str, owner: &TenantId) -> FleetError {
    let owner = match directory.tenant(owner).await {
        Ok(Some(t)) => t.slug,
        _ => owner.to_string(),
    };
    FleetError::DomainTaken {
        domain: domain.to_owned(),
        owner,
    }
}
