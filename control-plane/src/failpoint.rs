//! The crash switch of the crash tests: with `TENANTD_CRASH_AT=<step>` in the environment, the
//! server sends itself SIGKILL right after that step of an operation is durable.
//! Steps: [`INVITE_STEPS`], [`EMAIL_CHANGE_STEPS`], [`SECURITY_STEPS`]. Deliberately not a flag.

/// The durable steps of an invitation, in order.
pub const INVITE_STEPS: &[&str] = &["invite.reserved", "invite.written", "invite.confirmed"];

/// The durable steps of an email change's confirmation, in order (`service::profile`).
pub const EMAIL_CHANGE_STEPS: &[&str] = &[
    "email.reserved",
    "email.written",
    "email.confirmed",
    "email.released",
];

/// Points in the middle of a security write's transaction (nothing is committed yet): a crash
/// there must leave the change all-or-nothing.
pub const SECURITY_STEPS: &[&str] = &["reset.password_set", "block.status_set"];

/// Kills the process (SIGKILL) if the crash switch names `step`.
pub fn crash_point(step: &'static str) {
    if std::env::var_os("TENANTD_CRASH_AT").is_some_and(|v| v == step) {
        eprintln!("tenantd: TENANTD_CRASH_AT={step}: killing itself");
        die();
    }
}

/// Ends the process with SIGKILL: no destructor, no flush, no graceful anything.
pub fn die() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    std::process::abort()
}
