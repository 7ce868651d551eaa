CREATE TABLE tenants (
    id               TEXT   PRIMARY KEY,
    slug             TEXT   NOT NULL UNIQUE,
    name             TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    schema_version   BIGINT NOT NULL DEFAULT 0,
    node             TEXT   NOT NULL DEFAULT 'local',
    placement_epoch  BIGINT NOT NULL DEFAULT 1,
    auth_epoch       BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE domains (
    domain      TEXT   PRIMARY KEY,
    tenant_id   TEXT   NOT NULL REFERENCES tenants (id),
    created_at  BIGINT NOT NULL
);
CREATE INDEX domains_tenant ON domains (tenant_id);

-- Routing index, derived from the tenant files: a `pending` row reserves an email before the
-- tenant database is written, and is confirmed (`active`) after, so a crash never misroutes.
CREATE TABLE user_index (
    email       TEXT   PRIMARY KEY,
    tenant_id   TEXT   NOT NULL REFERENCES tenants (id),
    user_id     TEXT   NOT NULL,
    state       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX user_index_tenant ON user_index (tenant_id);
