//! The crash switch of the crash tests: with `TENANTD_CRASH_AT=<step>` in the environment, the
//! server aborts (as abruptly as `kill -9`) right after that step of an operation is durable.
//! Steps: [`INVITE_STEPS`], [`SECURITY_STEPS`]. Deliberately not a flag.

/// The durable steps of an invitation, in order.
pub const INVITE_STEPS: &[&str] = &["invite.reserved", "invite.written", "invite.confirmed"];

/// Points in the middle of a security write's transaction (nothing is committed yet): a crash
/// there must leave the change all-or-nothing.
pub const SECURITY_STEPS: &[&str] = &["reset.password_set", "block.status_set"];

/// Aborts the process if the crash switch names `step`.
pub fn crash_point(step: &'static str) {
    if std::env::var_os("TENANTD_CRASH_AT").is_some_and(|v| v == step) {
        eprintln!("tenantd: TENANTD_CRASH_AT={step}: aborting");
        std::process::abort();
    }
}
