-- The operator API: keys the vendor's back office holds, what every call did, and the answers
-- of creations made with an Idempotency-Key.
--
-- A key is `tdo_<id>.<secret>`: the row is found by id, the secret compared with its SHA-256
-- (hex). Scopes are space-separated; allowed source networks a JSON array of CIDRs (empty:
-- any address). A key without expires_at does not expire; revoked_at ends it at once.
CREATE TABLE operator_keys (
    id            TEXT   PRIMARY KEY,
    name          TEXT   NOT NULL,
    secret_hash   TEXT   NOT NULL,
    scopes        TEXT   NOT NULL,
    allowed_cidrs TEXT   NOT NULL,
    expires_at    BIGINT,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);

-- One row per operator call: who (a key id, or `client:<client id>` for a client-credentials
-- token), what, on which company, from where.
CREATE TABLE operator_audit (
    id          TEXT   PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    tenant_id   TEXT,
    tenant_slug TEXT,
    status      BIGINT NOT NULL,
    ip          TEXT   NOT NULL,
    details     TEXT   NOT NULL
);
CREATE INDEX operator_audit_at ON operator_audit (at);

-- Idempotency-Key of a creation: the first request claims the key (the primary key makes
-- concurrent claims race safely), and its answer is kept for retries. status is NULL while
-- the first request is still working.
CREATE TABLE operator_idempotency (
    actor        TEXT   NOT NULL,
    idem_key     TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    status       BIGINT,
    response     TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (actor, idem_key)
);

-- Operator scopes a confidential client may obtain with the client-credentials grant
-- (space-separated; empty: none).
ALTER TABLE oidc_clients ADD COLUMN operator_scopes TEXT NOT NULL DEFAULT '';
