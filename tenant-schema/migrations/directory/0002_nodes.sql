-- The nodes of a multi-node installation: each node registers its address at start and
-- heartbeats; tenants.node names the node holding a tenant's file. A single node is 'local'.
CREATE TABLE nodes (
    id            TEXT   PRIMARY KEY,
    url           TEXT   NOT NULL,
    registered_at BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);
CREATE INDEX tenants_node ON tenants (node);
