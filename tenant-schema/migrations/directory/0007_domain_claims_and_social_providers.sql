-- Domains a company claims and has not proven yet: the TXT value to publish at
-- `_tenantd-challenge.<domain>`. A proven domain moves to `domains` (where operator-added
-- ones are, verified by definition); several companies may claim, the first to prove wins.
CREATE TABLE domain_claims (
    domain      TEXT   NOT NULL,
    tenant_id   TEXT   NOT NULL REFERENCES tenants (id),
    txt_value   TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (domain, tenant_id)
);
CREATE INDEX domain_claims_tenant ON domain_claims (tenant_id);

-- The operator's social providers (`tenantctl social add`): any OpenID Connect provider.
CREATE TABLE social_providers (
    name                  TEXT   PRIMARY KEY,
    label                 TEXT   NOT NULL,
    issuer                TEXT   NOT NULL,
    client_id             TEXT   NOT NULL,
    client_secret_sealed  TEXT   NOT NULL,
    created_at            BIGINT NOT NULL
);

-- Social sign-ins sent to a provider and not yet back (the company is known only after).
CREATE TABLE social_attempts (
    hash        TEXT   PRIMARY KEY,
    provider    TEXT   NOT NULL,
    browser     TEXT   NOT NULL,
    nonce       TEXT   NOT NULL,
    verifier    TEXT   NOT NULL,
    pending     TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
