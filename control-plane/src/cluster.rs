//! Several nodes sharing one directory (PostgreSQL): each tenant is placed on one node, which
//! alone opens its file; a request that reaches another node is forwarded to the owner.
//!
//! - **Placement** ([`placement`]). `tenants.node` names the owner and
//!   `tenants.placement_epoch` counts its moves. A node serves a tenant only when the directory
//!   places it there and it has not released that tenant at that epoch ([`Cluster::holds`]).
//! - **Signing** ([`signing`]) and **the node client** ([`client`]): internal calls and
//!   forwarded requests carry an HMAC over a shared secret.
//! - **Forwarding** (`routes::forward`) finds the tenant of a request cheaply (the tenant part
//!   of the session cookie or of a `token`, or the email of a sign-in or reset request through
//!   the directory) and, when another node holds it, proxies the whole request there and
//!   streams the answer back. Nodes authenticate each other with HMAC-SHA256 over a shared
//!   secret (`TENANTD_NODE_SECRET`); a forwarded request is never forwarded again. An owner
//!   that cannot be reached gives 503 `tenant_unavailable` for its tenants only.
//! - **Moves** (`service::moves`, `tenantctl tenant move`): the source freezes the tenant's
//!   writes (in-flight ones finish, new ones wait), sends a `VACUUM INTO` snapshot, the target
//!   checks and installs it, the directory flips node and epoch in one transaction, and the
//!   source releases the tenant: waiting writes then go to the new owner. Reads go on
//!   throughout.

pub mod client;
pub mod placement;
pub mod signing;

pub use placement::Cluster;
