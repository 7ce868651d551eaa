//! The write transaction of one tenant: the only way to call a store function that changes data.

use std::ops::Deref;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::Result;

/// A `BEGIN IMMEDIATE` transaction on one tenant's file, holding that tenant's write lock.
///
/// Only tenant-runtime makes one: [`crate::TenantRouter::write`] (and `write_blocking`,
/// `write_if_open`) hand it to their closure, and [`crate::ops`] uses one for its own steps.
/// Every store function that writes takes `&WriteTx`, while read closures get a plain
/// `&Connection`, so a write inside a read does not compile. It derefs to the connection, so
/// the read functions work inside a write too. The router commits it when the closure returns
/// `Ok`; otherwise it is dropped, which rolls it back.
///
/// ```
/// # use tenant_runtime::{Result, TenantId, TenantRouter, store::users};
/// fn block(router: &TenantRouter, id: &TenantId, user: &str) -> Result<bool> {
///     router.write_blocking(id, |tx| users::set_status(tx, user, users::Status::Blocked, 0))
/// }
/// ```
///
/// A read closure gets no `WriteTx`, so it cannot write:
///
/// ```compile_fail
/// # use tenant_runtime::{Result, TenantId, TenantRouter, store::users};
/// fn block(router: &TenantRouter, id: &TenantId, user: &str) -> Result<bool> {
///     router.read_blocking(id, |conn| users::set_status(conn, user, users::Status::Blocked, 0))
/// }
/// ```
pub struct WriteTx<'a> {
    tx: Transaction<'a>,
}

impl<'a> WriteTx<'a> {
    /// Starts a `BEGIN IMMEDIATE` transaction: the write lock is taken now, not at the first
    /// write, so a read-then-write never fails half way with `SQLITE_BUSY`.
    pub(crate) fn begin(conn: &'a mut Connection) -> Result<Self> {
        Ok(Self {
            tx: conn.transaction_with_behavior(TransactionBehavior::Immediate)?,
        })
    }

    pub(crate) fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}

impl Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.tx
    }
}

impl std::fmt::Debug for WriteTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx").finish_non_exhaustive()
    }
}
