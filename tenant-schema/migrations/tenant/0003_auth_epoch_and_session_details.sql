-- The auth epoch is raised on restore: sessions and tokens of an older epoch stop working.
ALTER TABLE tenant_meta ADD COLUMN auth_epoch INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tokens ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sessions ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN ip TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_log_actor ON audit_log (actor, id);
