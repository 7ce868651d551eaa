-- A change of a user's email address waits here until the link mailed to the new address is
-- used; only the SHA-256 of the link's secret is stored. One pending change per user.
CREATE TABLE email_changes (
    hash          BLOB    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    new_email     TEXT    NOT NULL,
    requested_by  TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    epoch         INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX email_changes_user ON email_changes (user_id);

-- The company's rule for addresses: when set, people may only be invited or moved to
-- addresses in the company's own (verified) domains.
ALTER TABLE tenant_meta ADD COLUMN email_domains_only INTEGER NOT NULL DEFAULT 0;

-- The people list sorts by these, with the id as tiebreak (keyset paging).
CREATE INDEX users_name ON users (name COLLATE NOCASE, id);
CREATE INDEX users_created ON users (created_at, id);
CREATE INDEX users_last_login ON users (coalesce(last_login_at, 0), id);
-- The audit page filters by time.
CREATE INDEX audit_log_at ON audit_log (at, id);
