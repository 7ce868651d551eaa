-- Second factors of the company's people. A TOTP factor keeps its secret sealed with a key
-- from outside the database and the last time step it accepted (a code works once); a passkey
-- keeps its public key (webauthn-rs's JSON) and its credential id, to find it at sign-in.
-- A factor counts only once confirmed (TOTP: one right code).
CREATE TABLE factors (
    id              TEXT    PRIMARY KEY,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL CHECK (kind IN ('totp', 'webauthn')),
    name            TEXT    NOT NULL,
    secret          TEXT,
    credential      TEXT,
    credential_id   BLOB    UNIQUE,
    confirmed       INTEGER NOT NULL DEFAULT 0,
    last_step       INTEGER,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX factors_by_user ON factors (user_id);

-- Recovery codes: SHA-256 of each, single use; a new set replaces the old one.
CREATE TABLE recovery_codes (
    hash        BLOB    PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);

-- Sign-ins halfway: the first proof was right, a second step (or enrolling a first factor)
-- must follow. The bearer secret `<tenant-id>.<secret>` is stored as SHA-256, lives five
-- minutes, is used up by the step that succeeds, and dies with the auth epoch. `amr` is the
-- first proof's; `factor_id` the TOTP factor being enrolled; `ceremony` the WebAuthn state
-- (sealed) of a passkey challenge handed out with this token.
CREATE TABLE mfa_tokens (
    hash        BLOB    PRIMARY KEY,
    user_id     TEXT    REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT    NOT NULL CHECK (purpose IN ('verify', 'enrol', 'passkey', 'register')),
    amr         TEXT    NOT NULL DEFAULT '[]',
    via         TEXT    NOT NULL DEFAULT 'password',
    factor_id   TEXT,
    ceremony    TEXT,
    epoch       INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX mfa_tokens_by_expiry ON mfa_tokens (expires_at);
