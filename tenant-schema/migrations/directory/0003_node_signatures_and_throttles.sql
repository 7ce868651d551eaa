-- Signatures of node-to-node requests already seen: a signature is accepted once, on any node,
-- within its validity window (replay protection).
CREATE TABLE seen_signatures (
    nonce      TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX seen_signatures_expiry ON seen_signatures (expires_at);

-- Throttle counters shared by every node of a deployment (a single node keeps them in memory).
-- One row per lane of an account: strangers (lane '') or a known device.
CREATE TABLE throttle_lanes (
    kind         TEXT             NOT NULL,
    account      TEXT             NOT NULL,
    lane         TEXT             NOT NULL,
    failures     DOUBLE PRECISION NOT NULL,
    last_at      BIGINT           NOT NULL,
    locked_until BIGINT           NOT NULL,
    PRIMARY KEY (kind, account, lane)
);
CREATE INDEX throttle_lanes_last ON throttle_lanes (last_at);

-- Attempts per client address per window.
CREATE TABLE throttle_windows (
    kind         TEXT    NOT NULL,
    address      TEXT    NOT NULL,
    window_start BIGINT  NOT NULL,
    attempts     BIGINT  NOT NULL,
    PRIMARY KEY (kind, address)
);
CREATE INDEX throttle_windows_start ON throttle_windows (window_start);
