//! What the product does, shared by the JSON API, the pages and `tenantctl`. Handlers only
//! translate HTTP to these calls. Each service speaks its own error enum (domain variants plus
//! a [`crate::error::Fault`]); `routes::error` alone maps them to HTTP.

/// A signed-in person's own sessions and password.
pub mod account;
/// What a company admin does to the users of their own company.
pub mod admin;
/// Signing in and out; the session behind a cookie.
pub mod auth;
/// Telling the vendor's apps that a session ended (back-channel logout), durably.
pub mod backchannel;
/// Online backups and restores (`tenantctl backup`, `restore`).
pub mod backup;
/// The vendor's apps that sign users in through tenantd (OpenID Connect clients).
pub mod clients;
/// CSV in and out of the console (bulk invitations, exports).
pub mod csv;
/// What `tenantd` prints at start, and the `--demo` company.
pub mod demo;
/// Drift between the directory and the tenant files (`tenantctl doctor`).
pub mod doctor;
/// A person's second factors (TOTP, passkeys, recovery codes), from their account.
pub mod factors;
/// Recovering a tenant from its replica onto another node, both sides.
pub mod failover;
/// Operation locks, the trash, delete and undelete (`tenantctl`); the operators' error type.
pub mod fleet;
/// What every way in shares: sign-in errors, bearer secrets, email routing, device cookies.
pub mod identity;
/// The second step of a sign-in: who needs one, and checking it.
pub mod mfa;
/// Moving a tenant between nodes, both sides.
pub mod moves;
/// Registering this node, heartbeats, housekeeping.
pub mod nodes;
/// The OpenID provider for the vendor's apps: authorization, tokens, keys, claims.
pub mod oidc;
/// Who may call the operator API: keys, client-credentials apps, scopes, rate, audit,
/// idempotent creations.
pub mod operator;
/// Signing in with a passkey alone.
pub mod passkeys;
/// The admin console's people list, export, bulk invitations and address rule.
pub mod people;
/// The password rules.
pub mod policy;
/// A person's name and email address (changed by an admin or by themself).
pub mod profile;
/// Creating a company with its first admin.
pub mod provision;
/// Breached passwords: a range API (k-anonymity) or a local list.
pub mod pwned;
/// Reset links and invitations.
pub mod recovery;
/// Continuous replication with Litestream: starting it, its status, restoring in place.
pub mod replication;
/// SAML 2.0 service provider: metadata, AuthnRequests, and the check of responses.
pub mod saml;
/// The company's sign-in rules: identity provider required, social sign-in, second factors.
pub mod sign_in_policy;
/// The last step of every way in: a proof of who the person is becomes a session.
pub mod signin;
/// Companies' own identity providers: verified domains, connections, SSO and social sign-in.
pub mod sso;
/// What operators do to companies, shared by `tenantctl` and the operator API.
pub mod tenants;

use serde::Serialize;
use tenant_runtime::store::users::{Role, Status, User};

use crate::directory::Tenant;

/// A user as the API shows it: never the hash.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role,
        }
    }
}

/// A user as a company admin sees them.
#[derive(Debug, Clone, Serialize)]
pub struct AdminUserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: Status,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

impl From<&User> for AdminUserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role,
            status: u.status,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_login_at: u.last_login_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantView {
    pub id: String,
    pub slug: String,
    pub name: String,
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            slug: t.slug.clone(),
            name: t.name.clone(),
        }
    }
}

/// The login shape: who is signed in, and to which company.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub user: UserView,
    pub tenant: TenantView,
}
