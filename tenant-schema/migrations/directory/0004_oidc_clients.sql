-- The vendor's apps that sign users in through tenantd (OpenID Connect clients). They belong to
-- the vendor, not to a company: one app serves every company. A confidential client's secret is
-- stored as its SHA-256 only; a public client has none. URI lists are JSON arrays.
CREATE TABLE oidc_clients (
    id                        TEXT   PRIMARY KEY,
    name                      TEXT   NOT NULL,
    secret_hash               TEXT,
    redirect_uris             TEXT   NOT NULL,
    post_logout_redirect_uris TEXT   NOT NULL,
    backchannel_logout_uri    TEXT,
    web_origins               TEXT   NOT NULL,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);
