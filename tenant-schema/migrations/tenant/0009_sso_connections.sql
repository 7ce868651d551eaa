-- The company's own identity providers. `kind` names the protocol ('oidc' now); what only one
-- kind needs goes in `settings` (JSON), so another kind adds no column.
CREATE TABLE sso_connections (
    id                    TEXT    PRIMARY KEY,
    kind                  TEXT    NOT NULL,
    name                  TEXT    NOT NULL,
    issuer                TEXT    NOT NULL DEFAULT '',
    client_id             TEXT    NOT NULL DEFAULT '',
    -- AES-256-GCM under a key derived from the server key; never returned.
    client_secret_sealed  TEXT    NOT NULL DEFAULT '',
    client_secret_last4   TEXT    NOT NULL DEFAULT '',
    scopes                TEXT    NOT NULL DEFAULT 'openid email profile',
    -- JSON array of the email domains (ASCII form) this provider signs in.
    domains               TEXT    NOT NULL DEFAULT '[]',
    jit_enabled           INTEGER NOT NULL DEFAULT 0,
    jit_role              TEXT    NOT NULL DEFAULT 'member' CHECK (jit_role IN ('member', 'admin')),
    settings              TEXT    NOT NULL DEFAULT '{}',
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

-- A person as the provider names them (`sub`), once linked.
CREATE TABLE sso_links (
    connection_id  TEXT    NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
    subject        TEXT    NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (connection_id, subject)
);
CREATE INDEX sso_links_user ON sso_links (user_id);

-- Sign-ins sent to a provider and not yet back: the `state` secret's SHA-256, bound to the
-- connection, the browser (a cookie's hash), the nonce and the PKCE verifier. Used once.
CREATE TABLE sso_attempts (
    hash           BLOB    PRIMARY KEY,
    connection_id  TEXT    NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
    browser        BLOB    NOT NULL,
    nonce          TEXT    NOT NULL,
    verifier       TEXT    NOT NULL,
    -- The vendor app's signed authorization request to resume afterwards, if any.
    pending        TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
