-- SAML assertions accepted, remembered until they could no longer be replayed: a response is
-- accepted once, on whichever node it arrives. `digest` is the hex SHA-256 of the connection
-- (`<tenant-id>.<connection-id>`) and the assertion's ID. `finished` turns 1 when the browser
-- comes back to end the sign-in, which it does once.
CREATE TABLE saml_assertions (
    digest      TEXT   PRIMARY KEY,
    expires_at  BIGINT NOT NULL,
    finished    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX saml_assertions_expiry ON saml_assertions (expires_at);
