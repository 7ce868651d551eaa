//! The browser flows (`tests/e2e/*.mjs`, playwright-core driving Debian's Chromium), run from
//! the integration tests with their settings; screenshots go to an artifacts folder.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::process::bin_dir;

/// The repository root (where `node_modules` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// The folder for a flow's screenshots: `$artifacts_var`, else `target/e2e-artifacts/<name>`;
/// emptied of old screenshots.
pub fn artifacts_dir(artifacts_var: &str, name: &str) -> PathBuf {
    let dir = std::env::var_os(artifacts_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("../e2e-artifacts").join(name));
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "png") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    dir
}

/// Runs `node <script>` with `env` (and `E2E_ARTIFACTS_DIR = artifacts`), asserting that it
/// succeeded and printed `passed`; returns its standard output.
pub async fn run_flow(
    script: &str,
    artifacts: &std::path::Path,
    env: &[(&str, String)],
    passed: &str,
) -> String {
    let root = repo_root();
    assert!(
        root.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` at the repository root"
    );
    let child = tokio::process::Command::new("node")
        .arg(script)
        .current_dir(&root)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("E2E_ARTIFACTS_DIR", artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node (is Node.js installed?)");
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within 5 minutes"))
        .expect("node output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}); screenshots in {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status,
        artifacts.display()
    );
    assert!(stdout.contains(passed), "{stdout}");
    stdout
}
