-- Set for every user by `tenantctl restore --require-password-reset`: a restored backup brings
-- back passwords changed since; such a user must choose a new password (by emailed link)
-- before signing in again.
ALTER TABLE users ADD COLUMN password_reset_required INTEGER NOT NULL DEFAULT 0;
