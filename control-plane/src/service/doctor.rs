//! Finds drift between the directory and the tenant files, and repairs what can be repaired.
//!
//! Every state a crash can leave behind (see [`super::fleet`]) is one of these findings, and
//! each repair is idempotent, so running `doctor --repair` again after a crash in the middle of
//! a repair finishes it. Work of a live operation is left alone: tenants whose operation lock is
//! held, and pending rows or provisioning tenants younger than the grace period.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;
use tenant_runtime::{TenantId, ops};

use super::fleet::{
    Fleet, FleetResult, TRASH_RETENTION_SECS, TrashKind, TrashSource, is_locked, trash_list,
    trash_put,
};
use crate::directory::{Tenant, TenantStatus};

/// How doctor runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub repair: bool,
    /// Pending index rows, provisioning tenants and temporary files younger than this may belong
    /// to an operation still under way (for example an invitation on a running server).
    pub grace_secs: i64,
}

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable name of the kind of drift, e.g. `index_without_user`.
    pub kind: &'static str,
    pub slug: Option<String>,
    pub tenant_id: Option<TenantId>,
    pub detail: String,
    /// What `--repair` does, or what the operator has to do when it cannot.
    pub action: String,
    pub repairable: bool,
    pub repaired: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    fix: Option<Fix>,
}

#[derive(Debug, Clone)]
enum Fix {
    RollBack(Tenant),
    RemoveIndex {
        email: String,
        tenant_id: TenantId,
    },
    ConfirmIndex {
        email: String,
        tenant_id: TenantId,
        user_id: String,
    },
    SetSchemaVersion {
        tenant_id: TenantId,
        version: i64,
    },
    RaiseEpoch {
        tenant_id: TenantId,
        epoch: i64,
    },
    Migrate(TenantId),
    TrashOrphan {
        id: TenantId,
        has_copy: bool,
    },
    UndoDelete {
        entry: PathBuf,
        tenant_id: TenantId,
        status: String,
    },
    RemovePath(PathBuf),
}

fn finding(kind: &'static str, t: Option<&Tenant>, detail: String) -> Finding {
    Finding {
        kind,
        slug: t.map(|t| t.slug.clone()),
        tenant_id: t.map(|t| t.id.clone()),
        detail,
        action: String::new(),
        repairable: false,
        repaired: false,
        error: None,
        fix: None,
    }
}

impl Finding {
    fn repair(mut self, action: impl Into<String>, fix: Fix) -> Self {
        self.action = action.into();
        self.repairable = true;
        self.fix = Some(fix);
        self
    }

    fn manual(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }
}

/// Checks every tenant, file and trash entry; with `repair`, fixes what can be fixed.
pub async fn run(fleet: &Fleet, opts: Options, now: i64) -> FleetResult<Vec<Finding>> {
    let mut found = check(fleet, opts, now).await?;
    if opts.repair {
        for f in &mut found {
            let Some(fix) = f.fix.clone() else { continue };
            match apply(fleet, fix, now).await {
                Ok(()) => f.repaired = true,
                Err(e) => f.error = Some(e.to_string()),
            }
        }
    }
    Ok(found)
}

async fn check(fleet: &Fleet, opts: Options, now: i64) -> FleetResult<Vec<Finding>> {
    let dir = &fleet.directory;
    let tenants = dir.tenants().await?;
    let listing = fleet.blocking(|r| Ok(ops::list(r)?)).await?;
    let super::fleet::Trash {
        entries: trash,
        partial,
    } = trash_list(&fleet.config)?;
    let files: HashSet<&str> = listing.tenants.iter().map(TenantId::as_str).collect();
    let known: HashMap<&str, &Tenant> = tenants.iter().map(|t| (t.id.as_str(), t)).collect();
    let domain_owner: HashMap<String, TenantId> = dir
        .all_domains()
        .await?
        .into_iter()
        .map(|(id, d)| (d, id))
        .collect();
    let young = |at: i64| now - at < opts.grace_secs;
    let mut out = Vec::new();

    for t in &tenants {
        if t.status == TenantStatus::Provisioning {
            if is_locked(&fleet.config, &t.slug) || young(t.updated_at) {
                continue;
            }
            out.push(
                finding(
                    "unfinished_provisioning",
                    Some(t),
                    format!("tenant {} was never finished (status provisioning)", t.slug),
                )
                .repair(
                    "roll back: its file goes to the trash and its directory rows are removed, so the same create can run again",
                    Fix::RollBack(t.clone()),
                ),
            );
            continue;
        }
        if !files.contains(t.id.as_str()) {
            out.push(finding("missing_file", Some(t), format!("tenant {} has no database file", t.slug)).manual(format!(
                "restore it (`tenantctl restore --from <backup> --tenant {s}`) or delete it (`tenantctl tenant delete {s} --yes`)",
                s = t.slug
            )));
            continue;
        }
        let id = t.id.clone();
        let probe = id.clone();
        let insp = match fleet.blocking(move |r| Ok(ops::inspect(r, &probe)?)).await {
            Ok(i) => i,
            Err(e) => {
                out.push(
                    finding("unreadable_file", Some(t), format!("cannot read the file of {}: {e}", t.slug)).manual(format!(
                        "restore it from a backup (`tenantctl restore --from <backup> --tenant {}`)",
                        t.slug
                    )),
                );
                continue;
            }
        };
        if insp.tenant_id.as_deref() != Some(t.id.as_str()) {
            out.push(
                finding(
                    "foreign_file",
                    Some(t),
                    format!(
                        "the file of {} records tenant {:?}",
                        t.slug,
                        insp.tenant_id.as_deref().unwrap_or("none")
                    ),
                )
                .manual(format!(
                    "restore it from a backup (`tenantctl restore --from <backup> --tenant {}`)",
                    t.slug
                )),
            );
            continue;
        }
        if i64::from(insp.version) != t.schema_version {
            out.push(
                finding(
                    "schema_version_mismatch",
                    Some(t),
                    format!(
                        "directory says schema {} for {}, the file has {}",
                        t.schema_version, t.slug, insp.version
                    ),
                )
                .repair(
                    "record the file's version in the directory",
                    Fix::SetSchemaVersion {
                        tenant_id: t.id.clone(),
                        version: i64::from(insp.version),
                    },
                ),
            );
        }
        if insp.auth_epoch > t.auth_epoch {
            out.push(
                finding(
                    "auth_epoch_behind",
                    Some(t),
                    format!(
                        "directory auth epoch {} of {} is below the file's {}",
                        t.auth_epoch, t.slug, insp.auth_epoch
                    ),
                )
                .repair(
                    "raise the directory's auth epoch (an interrupted restore)",
                    Fix::RaiseEpoch {
                        tenant_id: t.id.clone(),
                        epoch: insp.auth_epoch,
                    },
                ),
            );
        }
        if insp.version < tenant_schema::TENANT_LATEST {
            out.push(
                finding(
                    "outdated_schema",
                    Some(t),
                    format!(
                        "the file of {} has schema {}, the newest is {}",
                        t.slug,
                        insp.version,
                        tenant_schema::TENANT_LATEST
                    ),
                )
                .repair(
                    "migrate it (as `tenantctl migrate` does)",
                    Fix::Migrate(id.clone()),
                ),
            );
        }
        let users: HashMap<&str, &str> = insp
            .users
            .iter()
            .map(|(uid, email)| (email.as_str(), uid.as_str()))
            .collect();
        let index = dir.index_of(&t.id).await?;
        let indexed: HashSet<&str> = index.iter().map(|e| e.email.as_str()).collect();
        for e in &index {
            // A user whose address is in another company's domain: sign-ins and resets of
            // that address go here, not to the company that owns the domain.
            let owner =
                tenant_runtime::email::domain_of(&e.email).and_then(|d| domain_owner.get(d));
            if let Some(owner) = owner.filter(|o| **o != t.id) {
                let owner = known
                    .get(owner.as_str())
                    .map_or_else(|| owner.to_string(), |o| o.slug.clone());
                out.push(
                    finding(
                        "foreign_domain_user",
                        Some(t),
                        format!("user {} of {} is in the domain of tenant {owner}", e.email, t.slug),
                    )
                    .manual(format!(
                        "decide with both companies: delete the user from {} (`tenantctl user find {}`) and invite them in {owner}, or remove the domain from {owner}",
                        t.slug, e.email
                    )),
                );
            }
        }
        for e in &index {
            match users.get(e.email.as_str()) {
                None if e.state == "pending" => {
                    if young(e.created_at) {
                        continue;
                    }
                    out.push(
                        finding(
                            "stale_pending_index",
                            Some(t),
                            format!("pending index row {} of {} has no user", e.email, t.slug),
                        )
                        .repair(
                            "remove the row (an invitation that never reached the tenant)",
                            Fix::RemoveIndex {
                                email: e.email.clone(),
                                tenant_id: t.id.clone(),
                            },
                        ),
                    );
                }
                None => out.push(
                    finding(
                        "index_without_user",
                        Some(t),
                        format!("index row {} points at no user of {}", e.email, t.slug),
                    )
                    .repair(
                        "remove the row",
                        Fix::RemoveIndex {
                            email: e.email.clone(),
                            tenant_id: t.id.clone(),
                        },
                    ),
                ),
                Some(uid) if e.state != "active" || e.user_id != *uid => out.push(
                    finding(
                        if e.state == "active" {
                            "index_user_mismatch"
                        } else {
                            "unconfirmed_index"
                        },
                        Some(t),
                        format!(
                            "index row {} of {} is {} for user {}, the file has user {uid}",
                            e.email, t.slug, e.state, e.user_id
                        ),
                    )
                    .repair(
                        "confirm the row for the user in the file",
                        Fix::ConfirmIndex {
                            email: e.email.clone(),
                            tenant_id: t.id.clone(),
                            user_id: (*uid).to_owned(),
                        },
                    ),
                ),
                Some(_) => {}
            }
        }
        for (uid, email) in &insp.users {
            if indexed.contains(email.as_str()) {
                continue;
            }
            match dir.lookup_email(email).await? {
                Some(other) => {
                    let owner = known
                        .get(other.tenant_id.as_str())
                        .map_or_else(|| other.tenant_id.to_string(), |o| o.slug.clone());
                    out.push(
                        finding(
                            "email_conflict",
                            Some(t),
                            format!("user {email} of {} is indexed to tenant {owner}", t.slug),
                        )
                        .manual(format!(
                            "the user cannot sign in to {}; delete one of the two accounts",
                            t.slug
                        )),
                    );
                }
                None => out.push(
                    finding(
                        "user_not_indexed",
                        Some(t),
                        format!("user {email} of {} is missing from the index", t.slug),
                    )
                    .repair(
                        "add a confirmed index row",
                        Fix::ConfirmIndex {
                            email: email.clone(),
                            tenant_id: t.id.clone(),
                            user_id: uid.clone(),
                        },
                    ),
                ),
            }
        }
    }

    for id in &listing.tenants {
        if known.contains_key(id.as_str()) {
            continue;
        }
        let has_copy = trash.iter().any(|e| {
            e.note.kind == TrashKind::Deleted
                && e.note.tenant_id == id.as_str()
                && e.note.file.is_some()
        });
        let mut f = finding(
            "orphan_file",
            None,
            format!("file {id}.db has no tenant in the directory"),
        );
        f.tenant_id = Some(id.clone());
        out.push(if has_copy {
            f.repair(
                "remove it (a deleted tenant's leftover; its copy is in the trash)",
                Fix::TrashOrphan {
                    id: id.clone(),
                    has_copy,
                },
            )
        } else {
            f.repair(
                "move it to the trash",
                Fix::TrashOrphan {
                    id: id.clone(),
                    has_copy,
                },
            )
        });
    }

    let grace = u64::try_from(opts.grace_secs.max(0)).unwrap_or(0);
    for (path, age) in listing.temporary.iter().chain(partial.iter()) {
        if *age < grace {
            continue;
        }
        out.push(
            finding(
                "stray_temporary",
                None,
                format!("{} is left from an interrupted operation", path.display()),
            )
            .repair("remove it", Fix::RemovePath(path.clone())),
        );
    }

    for e in &trash {
        if e.note.kind == TrashKind::Deleted
            && let Some(t) = known.get(e.note.tenant_id.as_str())
        {
            out.push(
                finding(
                    "interrupted_delete",
                    Some(t),
                    format!("tenant {} has a trash copy but was not removed", t.slug),
                )
                .repair(
                    format!(
                        "cancel the delete: drop the copy and set the status back to {}",
                        e.note.status
                    ),
                    Fix::UndoDelete {
                        entry: e.path.clone(),
                        tenant_id: t.id.clone(),
                        status: e.note.status.clone(),
                    },
                ),
            );
            continue;
        }
        if now - e.note.deleted_at > TRASH_RETENTION_SECS {
            out.push(
                finding(
                    "expired_trash",
                    None,
                    format!("{} is past the 30-day retention", e.path.display()),
                )
                .repair("purge it", Fix::RemovePath(e.path.clone())),
            );
        }
    }
    Ok(out)
}

async fn apply(fleet: &Fleet, fix: Fix, now: i64) -> FleetResult<()> {
    let dir = &fleet.directory;
    match fix {
        Fix::RollBack(t) => {
            let _lock = super::fleet::lock(&fleet.config, &t.slug)?;
            let src = TrashSource::of(dir, &t).await?;
            let id = src.tenant_id.clone();
            let config = fleet.config.clone();
            fleet
                .blocking(move |r| {
                    if r.exists(&src.tenant_id) {
                        trash_put(r, &config, &src, TrashKind::RolledBack, now)?;
                    }
                    Ok(())
                })
                .await?;
            dir.delete_tenant(&t.id).await?;
            fleet.blocking(move |r| Ok(ops::remove(r, &id)?)).await?;
        }
        Fix::RemoveIndex { email, tenant_id } => {
            dir.remove_email(&email, &tenant_id).await?;
        }
        Fix::ConfirmIndex {
            email,
            tenant_id,
            user_id,
        } => dir.upsert_email(&email, &tenant_id, &user_id).await?,
        Fix::SetSchemaVersion { tenant_id, version } => {
            dir.set_schema_version(&tenant_id, version).await?;
        }
        Fix::RaiseEpoch { tenant_id, epoch } => {
            dir.raise_auth_epoch_to(&tenant_id, epoch).await?;
        }
        Fix::Migrate(id) => {
            let tid = id.clone();
            let m = fleet
                .blocking(move |r| Ok(ops::migrate(r, &tid, now)?))
                .await?;
            dir.set_schema_version(&id, i64::from(m.to)).await?;
        }
        Fix::TrashOrphan { id, has_copy } => {
            let config = fleet.config.clone();
            fleet
                .blocking(move |r| {
                    if !has_copy {
                        trash_put(
                            r,
                            &config,
                            &TrashSource::orphan(id.clone()),
                            TrashKind::Orphan,
                            now,
                        )?;
                    }
                    Ok(ops::remove(r, &id)?)
                })
                .await?;
        }
        Fix::UndoDelete {
            entry,
            tenant_id,
            status,
        } => {
            let status = match status.as_str() {
                "active" => Some(TenantStatus::Active),
                "suspended" => Some(TenantStatus::Suspended),
                _ => None,
            };
            if let Some(status) = status {
                dir.set_tenant_status(&tenant_id, status).await?;
            }
            std::fs::remove_dir_all(&entry)?;
        }
        Fix::RemovePath(path) => {
            let r = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
