//! The crash switch of the crash tests: with `TENANTCTL_CRASH_AT=<step>` in the environment,
//! the process sends itself SIGKILL (no destructor, no flush) right after that step
//! of an operation is durable. Step names are listed by
//! `control_plane::service::provision::CREATE_STEPS`, `fleet::DELETE_STEPS`,
//! `fleet::UNDELETE_STEPS` and `backup::RESTORE_STEPS`, plus `mail_sent` after `tenant create`
//! mailed its invitation. Deliberately not in `--help`.

/// Kills the process (SIGKILL) if the crash switch names `step`.
pub(crate) fn crash_point(step: &'static str) {
    if std::env::var_os("TENANTCTL_CRASH_AT").is_some_and(|v| v == step) {
        eprintln!("tenantctl: TENANTCTL_CRASH_AT={step}: killing itself");
        control_plane::failpoint::die();
    }
}
