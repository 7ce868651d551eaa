-- The company's rules for signing in, one row. Each rule is enforced where its way in is
-- handled (password, the company's identity providers, social providers, second factors).
CREATE TABLE sign_in_policy (
    id                          INTEGER PRIMARY KEY CHECK (id = 1),
    sso_required                INTEGER NOT NULL DEFAULT 0,
    sso_required_except_admins  INTEGER NOT NULL DEFAULT 0,
    social_login                INTEGER NOT NULL DEFAULT 0,
    mfa_required                TEXT    NOT NULL DEFAULT 'off'
                                CHECK (mfa_required IN ('off', 'admins', 'all')),
    trust_idp_mfa               INTEGER NOT NULL DEFAULT 0,
    updated_at                  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO sign_in_policy (id) VALUES (1);

-- How the person proved who they are when the session began (RFC 8176 values, a JSON array):
-- the `amr` of the tokens issued from it. Sessions from before this step were password ones.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '["pwd"]';
