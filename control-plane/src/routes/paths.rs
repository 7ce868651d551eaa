//! Every path the server answers, named once: the routers, the OpenAPI document and the
//! forwarding rules all take them from here.

/// The JSON API.
pub mod api {
    pub const LOGIN: &str = "/api/auth/login";
    pub const LOGOUT: &str = "/api/auth/logout";
    pub const LOGOUT_ALL: &str = "/api/auth/logout-all";
    pub const FORGOT: &str = "/api/auth/forgot";
    pub const RESET: &str = "/api/auth/reset";
    pub const ACCEPT_INVITE: &str = "/api/auth/accept-invite";
    pub const MFA: &str = "/api/auth/mfa";
    pub const MFA_TOTP: &str = "/api/auth/mfa/totp";
    pub const MFA_WEBAUTHN_OPTIONS: &str = "/api/auth/mfa/webauthn/options";
    pub const PASSKEY: &str = "/api/auth/passkey";
    pub const PASSKEY_OPTIONS: &str = "/api/auth/passkey/options";
    pub const FACTORS: &str = "/api/account/factors";
    pub const FACTOR: &str = "/api/account/factors/{id}";
    pub const FACTORS_TOTP: &str = "/api/account/factors/totp";
    pub const FACTOR_TOTP_CONFIRM: &str = "/api/account/factors/totp/{id}/confirm";
    pub const FACTORS_WEBAUTHN: &str = "/api/account/factors/webauthn";
    pub const FACTORS_WEBAUTHN_OPTIONS: &str = "/api/account/factors/webauthn/options";
    pub const RECOVERY_CODES: &str = "/api/account/recovery-codes";
    pub const USER_FACTORS: &str = "/api/admin/users/{id}/factors";
    pub const SESSION: &str = "/api/session";
    pub const SESSIONS: &str = "/api/sessions";
    pub const SESSION_BY_ID: &str = "/api/sessions/{id}";
    pub const ACCOUNT_PASSWORD: &str = "/api/account/password";
    pub const ACCOUNT: &str = "/api/account";
    pub const ACCOUNT_EMAIL_CONFIRM: &str = "/api/account/email/confirm";
    pub const USERS: &str = "/api/admin/users";
    pub const USERS_BULK: &str = "/api/admin/users/bulk";
    pub const USERS_EXPORT: &str = "/api/admin/users/export";
    pub const USER_EMAIL_CHANGE: &str = "/api/admin/users/{id}/email-change";
    pub const USER_SESSION: &str = "/api/admin/users/{id}/sessions/{sid}";
    pub const SETTINGS: &str = "/api/admin/settings";
    pub const POLICY: &str = "/api/admin/policy";
    pub const DOMAINS: &str = "/api/admin/domains";
    pub const DOMAIN: &str = "/api/admin/domains/{domain}";
    pub const DOMAIN_VERIFY: &str = "/api/admin/domains/{domain}/verify";
    pub const SSO_CONNECTIONS: &str = "/api/admin/sso/connections";
    pub const SSO_CONNECTION: &str = "/api/admin/sso/connections/{id}";
    pub const SSO_CONNECTION_TEST: &str = "/api/admin/sso/connections/{id}/test";
    pub const DISCOVER: &str = "/api/auth/discover";
    pub const USER: &str = "/api/admin/users/{id}";
    pub const USER_INVITATION: &str = "/api/admin/users/{id}/invitation";
    pub const USER_SESSIONS: &str = "/api/admin/users/{id}/sessions";
    pub const AUDIT: &str = "/api/admin/audit";
    pub const OPENAPI: &str = "/api/openapi.json";
}

/// The operator API: what `tenantctl` does, for the vendor's back office (operator keys only).
pub mod operator {
    pub const PREFIX: &str = "/api/operator/";
    pub const TENANTS: &str = "/api/operator/tenants";
    pub const TENANT: &str = "/api/operator/tenants/{slug}";
    pub const UNDELETE: &str = "/api/operator/tenants/{slug}/undelete";
    pub const DOMAINS: &str = "/api/operator/tenants/{slug}/domains";
    pub const DOMAIN: &str = "/api/operator/tenants/{slug}/domains/{domain}";
    pub const AUDIT: &str = "/api/operator/tenants/{slug}/audit";
    pub const BACKUP: &str = "/api/operator/tenants/{slug}/backup";
    pub const USERS: &str = "/api/operator/users";
}

/// The pages.
pub mod pages {
    pub const ROOT: &str = "/";
    pub const LOGIN: &str = "/login";
    pub const LOGIN_MFA: &str = "/login/mfa";
    pub const LOGIN_MFA_TOTP: &str = "/login/mfa/totp";
    pub const LOGIN_PASSKEY: &str = "/login/passkey";
    pub const LOGOUT: &str = "/logout";
    pub const FORGOT: &str = "/forgot";
    pub const RESET: &str = "/reset";
    pub const INVITE: &str = "/invite";
    pub const ACCOUNT: &str = "/account";
    pub const ACCOUNT_PASSWORD: &str = "/account/password";
    pub const ACCOUNT_NAME: &str = "/account/name";
    pub const ACCOUNT_EMAIL: &str = "/account/email";
    pub const ACCOUNT_EMAIL_CANCEL: &str = "/account/email/cancel";
    pub const ACCOUNT_EMAIL_CONFIRM: &str = "/account/email/confirm";
    pub const ACCOUNT_SESSION_END: &str = "/account/sessions/{sid}/end";
    pub const ACCOUNT_SESSIONS_END_OTHERS: &str = "/account/sessions/end-others";
    pub const ACCOUNT_FACTORS_TOTP: &str = "/account/factors/totp";
    pub const ACCOUNT_FACTOR_TOTP_CONFIRM: &str = "/account/factors/totp/{id}/confirm";
    pub const ACCOUNT_FACTOR_REMOVE: &str = "/account/factors/{id}/remove";
    pub const ACCOUNT_RECOVERY_CODES: &str = "/account/recovery-codes";
    pub const ACCOUNT_FACTORS_WEBAUTHN: &str = "/account/factors/webauthn";
    pub const ADMIN_FACTORS_RESET: &str = "/admin/users/{id}/factors/reset";
    pub const ADMIN_MFA_POLICY: &str = "/admin/settings/mfa";
    pub const ADMIN: &str = "/admin";
    pub const ADMIN_USER: &str = "/admin/users/{id}";
    pub const ADMIN_NAME: &str = "/admin/users/{id}/name";
    pub const ADMIN_EMAIL: &str = "/admin/users/{id}/email";
    pub const ADMIN_EMAIL_CANCEL: &str = "/admin/users/{id}/email/cancel";
    pub const ADMIN_SESSION_END: &str = "/admin/users/{id}/sessions/{sid}/end";
    pub const ADMIN_SESSIONS_END_ALL: &str = "/admin/users/{id}/sessions/end-all";
    pub const ADMIN_BULK: &str = "/admin/bulk";
    pub const ADMIN_BULK_SEND: &str = "/admin/bulk/send";
    pub const ADMIN_AUDIT: &str = "/admin/audit";
    pub const ADMIN_SETTINGS: &str = "/admin/settings";
    pub const ADMIN_INVITE: &str = "/admin/invite";
    pub const ADMIN_ROLE: &str = "/admin/users/{id}/role";
    pub const ADMIN_BLOCK: &str = "/admin/users/{id}/block";
    pub const ADMIN_UNBLOCK: &str = "/admin/users/{id}/unblock";
    pub const ADMIN_DELETE: &str = "/admin/users/{id}/delete";
    pub const ADMIN_RESEND: &str = "/admin/users/{id}/resend";
    pub const ADMIN_REVOKE: &str = "/admin/users/{id}/revoke";
    /// Signing in through a company's identity provider or a social provider.
    pub const SSO_START: &str = "/sso/start";
    pub const SSO_SOCIAL: &str = "/sso/social/{name}";
    pub const SSO_CALLBACK: &str = "/sso/callback";
    pub const SSO_ERROR: &str = "/sso/error";
    /// SAML: our metadata and Assertion Consumer Service per connection
    /// (`<tenant-id>.<connection-id>`), and where the browser ends the sign-in.
    pub const SAML_METADATA: &str = "/saml/{connection}/metadata";
    pub const SAML_ACS: &str = "/saml/{connection}/acs";
    pub const SAML_FINISH: &str = crate::service::sso::saml_settings::FINISH_PATH;
    pub const ADMIN_SSO: &str = "/admin/sso";
    pub const ADMIN_SSO_ACTION: &str = "/admin/sso/{action}";
    /// OpenID provider: the browser's endpoints.
    pub const OIDC_AUTHORIZE: &str = "/oauth2/authorize";
    pub const OIDC_LOGOUT: &str = "/oauth2/logout";
    pub const CSS: &str = "/assets/app.css";
    pub const ICON: &str = "/assets/icon.svg";
    pub const PASSKEY_JS: &str = "/assets/passkey.js";
}

/// The OpenID provider's endpoints for apps (server to server, or with CORS for web origins).
pub mod oidc {
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    pub const JWKS: &str = "/oauth2/jwks";
    pub const TOKEN: &str = "/oauth2/token";
    pub const USERINFO: &str = "/oauth2/userinfo";
    pub const REVOKE: &str = "/oauth2/revoke";
    pub const INTROSPECT: &str = "/oauth2/introspect";
}

/// What each node serves for itself.
pub mod node {
    pub const HEALTHZ: &str = "/healthz";
    pub const LIVEZ: &str = "/livez";
    pub const METRICS: &str = "/metrics";
    /// Prefix of the static files.
    pub const ASSETS: &str = "/assets/";
}

/// The endpoints nodes and `tenantctl` call on a node.
pub mod internal {
    pub const PREFIX: &str = "/internal/";
    pub const FREEZE: &str = "/internal/tenants/{id}/freeze";
    pub const THAW: &str = "/internal/tenants/{id}/thaw";
    pub const SNAPSHOT: &str = "/internal/tenants/{id}/snapshot";
    pub const RELEASE: &str = "/internal/tenants/{id}/release";
    pub const REFRESH: &str = "/internal/tenants/{id}/refresh";
    pub const PROVISION: &str = "/internal/tenants/{id}/provision";
    pub const RECOVER: &str = "/internal/tenants/{id}/recover";
}

/// Where in a request its tenant is named, for forwarding it to the tenant's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantField {
    /// The `email` of a sign-in or reset request: routed through the directory.
    Email,
    /// A `token` (`<tenant-id>.<secret>`) of a reset or an invitation.
    Token,
    /// A `code`, `refresh_token` or `token` sent by an app to the OpenID provider: a
    /// `<tenant-id>.<secret>`, or an access token naming its company.
    Grant,
}

/// The body field that names the tenant of a `POST` to `path`, if any.
pub fn tenant_field(path: &str) -> Option<TenantField> {
    match path {
        api::LOGIN
        | api::FORGOT
        | api::PASSKEY_OPTIONS
        | api::DISCOVER
        | pages::LOGIN
        | pages::FORGOT => Some(TenantField::Email),
        api::RESET
        | api::ACCEPT_INVITE
        | api::ACCOUNT_EMAIL_CONFIRM
        | api::MFA
        | api::MFA_TOTP
        | api::MFA_WEBAUTHN_OPTIONS
        | pages::LOGIN_MFA
        | pages::LOGIN_MFA_TOTP
        | pages::RESET
        | pages::INVITE
        | pages::ACCOUNT_EMAIL_CONFIRM => Some(TenantField::Token),
        oidc::TOKEN | oidc::REVOKE | oidc::INTROSPECT => Some(TenantField::Grant),
        _ => None,
    }
}

/// Paths that never concern one tenant: served by the node they reach.
pub fn node_local(path: &str) -> bool {
    path.starts_with(internal::PREFIX)
        || path.starts_with(node::ASSETS)
        || matches!(
            path,
            node::METRICS
                | node::HEALTHZ
                | node::LIVEZ
                | api::OPENAPI
                | oidc::DISCOVERY
                | oidc::JWKS
        )
}

/// The query parameter of a sign-in through a provider that names its company
/// (`<tenant-id>.…`): the connection to start with, or the `state` coming back.
pub fn sso_tenant_param(path: &str) -> Option<&'static str> {
    match path {
        pages::SSO_START => Some("connection"),
        pages::SSO_CALLBACK => Some("state"),
        pages::SAML_FINISH => Some("token"),
        _ => None,
    }
}

/// Whether a path is the operator API's: cookies mean nothing there.
pub fn is_operator(path: &str) -> bool {
    path.starts_with(operator::PREFIX)
}

/// The slug an operator API path names (`/api/operator/tenants/{slug}…`), if any.
pub fn operator_slug(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(operator::TENANTS)?.strip_prefix('/')?;
    let slug = rest.split('/').next().unwrap_or(rest);
    (!slug.is_empty()).then_some(slug)
}

/// Reset requests answer the same whether or not the account (or its node) exists.
pub fn is_forgot(path: &str) -> bool {
    matches!(path, api::FORGOT | pages::FORGOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_is_named_by_the_fields_of_sign_in_and_links() {
        assert_eq!(tenant_field(api::LOGIN), Some(TenantField::Email));
        assert_eq!(tenant_field(pages::INVITE), Some(TenantField::Token));
        assert_eq!(tenant_field(api::USERS), None);
        assert!(node_local("/internal/tenants/x/freeze"));
        assert!(node_local(node::METRICS));
        assert!(!node_local(api::SESSION));
        assert_eq!(operator_slug("/api/operator/tenants/acme"), Some("acme"));
        assert_eq!(
            operator_slug("/api/operator/tenants/acme/audit"),
            Some("acme")
        );
        assert_eq!(operator_slug(operator::TENANTS), None);
        assert_eq!(operator_slug("/api/operator/tenants/"), None);
        assert_eq!(operator_slug("/api/operator/tenantsx"), None);
        assert!(is_operator(operator::USERS) && !is_operator(api::USERS));
    }
}
