-- Keys that sign ID tokens, access tokens and logout tokens (RS256). Every node signs with the
-- same keys: the private key is stored here, sealed (AES-256-GCM) with a key derived from the
-- installation's server key. A key is in the JWKS from `created_at`, signs from `signs_from`,
-- and leaves the JWKS once its successor has signed for longer than any token lives.
CREATE TABLE signing_keys (
    kid         TEXT   PRIMARY KEY,
    alg         TEXT   NOT NULL,
    public_jwk  TEXT   NOT NULL,
    sealed_key  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    signs_from  BIGINT NOT NULL
);

-- Companies whose file holds back-channel logouts still to deliver, so the node that serves
-- them finds them without opening every file (also after a restart).
CREATE TABLE logout_pending (
    tenant_id  TEXT   PRIMARY KEY,
    since      BIGINT NOT NULL
);
