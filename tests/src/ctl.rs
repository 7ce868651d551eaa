//! The real `tenantctl`, pointed at one data directory with nothing of the caller's
//! environment, and what it printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::process::command;

/// `tenantctl` pointed at one data directory (public URL `http://login.tenantd.test:8080`
/// unless an env says otherwise).
#[derive(Clone)]
pub struct Ctl {
    data: PathBuf,
    env: Vec<(String, String)>,
}

/// What one run printed, and how it ended (`code` is `None` when killed by a signal).
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.stdout, self.stderr)
        })
    }

    /// Everything printed, stdout then stderr.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts the documented failure shape: exit 1, one line on stderr, a stable code.
    pub fn assert_fails_with(&self, code: &str) {
        assert_eq!(
            self.code,
            Some(1),
            "expected exit 1 with {code}: {}\n{}",
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {:?}", self.stderr);
        assert!(lines[0].starts_with("tenantctl: "), "{:?}", lines[0]);
        assert_eq!(self.json()["error"], code, "{}", self.stdout);
    }

    /// Asserts that the run died by a signal (a `TENANTCTL_CRASH_AT` step).
    pub fn assert_crashed(&self, step: &str) {
        assert_eq!(
            self.code, None,
            "TENANTCTL_CRASH_AT={step} should die by a signal: {}\n{}",
            self.stdout, self.stderr
        );
    }
}

/// The arguments of `tenant create --slug … --name … [--domain …] --admin-email …`.
pub fn create_args<'a>(
    slug: &'a str,
    name: &'a str,
    domain: Option<&'a str>,
    admin: &'a str,
) -> Vec<&'a str> {
    let mut args = vec!["tenant", "create", "--slug", slug, "--name", name];
    if let Some(d) = domain {
        args.extend(["--domain", d]);
    }
    args.extend(["--admin-email", admin]);
    args
}

impl Ctl {
    pub fn new(data: &Path) -> Self {
        Self {
            data: data.to_owned(),
            env: Vec::new(),
        }
    }

    pub fn with_env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = command("tenantctl");
        cmd.env("TENANTD_DATA_DIR", &self.data)
            .env("TENANTD_PUBLIC_URL", "http://login.tenantd.test:8080")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Out {
        let out = self
            .command(args)
            .output()
            .expect("run tenantctl (cargo build --workspace --bins first)");
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs with `--json`, asserting success.
    pub fn json(&self, args: &[&str]) -> Value {
        self.timed_json(args).1
    }

    /// Runs with `--json`, asserting success; also returns the wall time in seconds.
    pub fn timed_json(&self, args: &[&str]) -> (f64, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let start = Instant::now();
        let out = self.run(&all);
        let secs = start.elapsed().as_secs_f64();
        assert!(
            out.ok(),
            "tenantctl {args:?} failed: {}\n{}",
            out.stdout,
            out.stderr
        );
        (secs, out.json())
    }

    /// Runs with `--json`, expecting a failure with this code.
    pub fn fails(&self, args: &[&str], code: &str) -> Out {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        out.assert_fails_with(code);
        out
    }

    /// `tenant create` of a company named `name` whose first admin ("First Admin") is invited;
    /// `extra` arguments are added (e.g. `--node n2`). Returns the JSON report.
    pub fn tenant_create(
        &self,
        slug: &str,
        name: &str,
        domain: Option<&str>,
        admin: &str,
        extra: &[&str],
    ) -> Value {
        let mut args = create_args(slug, name, domain, admin);
        args.extend(["--admin-name", "First Admin"]);
        args.extend_from_slice(extra);
        self.json(&args)
    }

    /// `tenant create` of a company named after its slug.
    pub fn create(&self, slug: &str, domain: Option<&str>, admin: &str) -> Value {
        self.tenant_create(slug, slug, domain, admin, &[])
    }

    /// `doctor --grace 0` (with `--repair`): its output and findings.
    pub fn doctor(&self, repair: bool) -> (Out, Vec<Value>) {
        let mut args = vec!["--json", "doctor", "--grace", "0"];
        if repair {
            args.push("--repair");
        }
        let out = self.run(&args);
        let findings = out.json()["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (out, findings)
    }

    /// Asserts that doctor finds nothing.
    pub fn assert_clean(&self) {
        let (out, findings) = self.doctor(false);
        assert!(
            out.ok() && findings.is_empty(),
            "doctor should find nothing: {findings:#?}\n{}",
            out.stderr
        );
    }

    /// Runs `doctor --repair`, asserting that every finding was repaired and that nothing is
    /// left; `what` names the case in messages.
    pub fn assert_repaired(&self, what: &str) {
        let (_, findings) = self.doctor(true);
        assert!(
            findings.iter().all(|f| f["repaired"] == true),
            "{what}: {findings:#?}"
        );
        self.assert_clean();
    }
}
