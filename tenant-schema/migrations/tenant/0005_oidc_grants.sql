-- What the vendor's apps were granted through OpenID Connect. A grant is made by one
-- authorization in one session and ends with it: deleting the session deletes its grants, their
-- codes and refresh tokens (cascade), and queues a back-channel logout for every app that held
-- a grant from it (trigger), whichever code path ended the session.
CREATE TABLE oidc_grants (
    id            TEXT    PRIMARY KEY,
    session_hash  BLOB    NOT NULL REFERENCES sessions (hash) ON DELETE CASCADE,
    -- The session's public id, the `sid` claim.
    sid           TEXT    NOT NULL,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id     TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    nonce         TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX oidc_grants_session ON oidc_grants (session_hash);
CREATE INDEX oidc_grants_user ON oidc_grants (user_id);

-- Authorization codes: SHA-256 only, single use, short-lived; a used code is kept until it
-- expires so a second use can be recognised (and revoke the grant).
CREATE TABLE oidc_codes (
    hash            BLOB    PRIMARY KEY,
    grant_id        TEXT    NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    redirect_uri    TEXT    NOT NULL,
    code_challenge  TEXT    NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER
);
CREATE INDEX oidc_codes_grant ON oidc_codes (grant_id);

-- Refresh tokens: SHA-256 only; each use marks the token used and issues the next. A used one
-- presented again revokes the grant (the whole family).
CREATE TABLE oidc_refresh_tokens (
    hash        BLOB    PRIMARY KEY,
    grant_id    TEXT    NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX oidc_refresh_tokens_grant ON oidc_refresh_tokens (grant_id);

-- Back-channel logouts still to deliver; kept here so they survive a restart.
CREATE TABLE logout_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id   TEXT    NOT NULL,
    sub         TEXT    NOT NULL,
    sid         TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (client_id, sid)
);

-- Deleting a user cascades to their grants and sessions in no set order: queue first.
CREATE TRIGGER users_end_grants BEFORE DELETE ON users
BEGIN
    INSERT OR IGNORE INTO logout_outbox (client_id, sub, sid, created_at)
        SELECT DISTINCT client_id, user_id, sid, unixepoch() FROM oidc_grants
        WHERE user_id = OLD.id;
END;

CREATE TRIGGER sessions_end_grants BEFORE DELETE ON sessions
BEGIN
    INSERT OR IGNORE INTO logout_outbox (client_id, sub, sid, created_at)
        SELECT DISTINCT client_id, user_id, sid, unixepoch() FROM oidc_grants
        WHERE session_hash = OLD.hash;
END;
