//! The real binaries: where `cargo build` put them, a clean environment to run them in, and a
//! `tenantd` child process with its output kept.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http::Person;

/// Where the running test or bench binary's own profile put the workspace binaries:
/// `target/debug` for the tests (`cargo build --workspace --bins`), `target/release` for the
/// benchmarks (`cargo build --release --bins`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<name>-<hash> → target/<profile>
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("target/<profile>").to_path_buf()
}

/// A workspace binary (`tenantd`, `tenantctl`), which must have been built.
pub fn binary(name: &str) -> PathBuf {
    let bin = bin_dir().join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` (scripts/test does; \
         `cargo build --release --bins` for benchmarks) first",
        bin.display()
    );
    bin
}

/// A command for a workspace binary without any `TENANTD_*` or `TENANTCTL_*` variable of the
/// caller's environment, and without stdin.
pub fn command(name: &str) -> Command {
    let mut cmd = Command::new(binary(name));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TENANTD_") || k.starts_with("TENANTCTL_") {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// A `tenantd` child process listening on a random loopback port. Its output is kept, and
/// printed if the test panics; dropping it kills the process.
pub struct Tenantd {
    /// Names the process in messages (a node id).
    pub name: String,
    /// `http://127.0.0.1:PORT`
    pub address: String,
    child: Option<Child>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Tenantd {
    /// Starts `tenantd --listen 127.0.0.1:0` with `env` (on top of `TENANTD_LOG=info`) and waits
    /// until it listens.
    pub fn start<K, V>(name: &str, env: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        Self::start_on(name, "127.0.0.1:0", env)
    }

    /// Starts `tenantd --listen LISTEN` with `env` and waits until it listens.
    pub fn start_on<K, V>(name: &str, listen: &str, env: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut cmd = command("tenantd");
        cmd.args(["--listen", listen])
            .env("TENANTD_LOG", "info")
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tenantd");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if line.contains("is listening on") {
                        let _ = tx.send(line.clone());
                    }
                    logs.lock().map(|mut l| l.push(line)).ok();
                }
            });
        }
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock().map(|mut l| l.push(line)).ok();
                }
            });
        }
        let mut server = Self {
            name: name.to_owned(),
            address: String::new(),
            child: Some(child),
            logs,
        };
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            panic!(
                "tenantd {name} did not start:\n{}",
                server.logs().join("\n")
            );
        };
        // "tenantd is listening on http://127.0.0.1:PORT (public URL ...)"
        server.address = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .expect("address in the listening line")
            .to_owned();
        server
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the process printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Kills the process (a crash, as far as anyone else can tell).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A new person with an empty cookie jar, talking to this process.
    pub fn person(&self) -> Person {
        Person::new(&self.address)
    }

    /// A person without a cookie jar whose every request carries this `Cookie` header.
    pub fn person_with_cookie(&self, cookie: &str) -> Person {
        Person::with_cookie(&self.address, cookie)
    }
}

impl Drop for Tenantd {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- tenantd {} output ----\n{}\n---- end of tenantd output ----",
                self.name,
                self.logs().join("\n")
            );
        }
    }
}
