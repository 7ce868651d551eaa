//! A real SMTP server (Python's aiosmtpd) that stores every message in a maildir.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::mail::{Mail, read_maildir};
use crate::process::free_port;

/// A Python that can import aiosmtpd (Debian's python3-aiosmtpd; a pyenv shim may shadow it).
fn python() -> &'static Path {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Ok(p) = std::env::var("TEST_PYTHON") {
            candidates.push(p.into());
        }
        candidates.extend(["/usr/bin/python3".into(), "python3".into()]);
        candidates
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .args(["-c", "import aiosmtpd"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect("no python3 with aiosmtpd (apt-get install python3-aiosmtpd)")
    })
}

/// A real SMTP server that stores every message in a maildir.
pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    child: Child,
}

impl SmtpServer {
    pub fn start(maildir: PathBuf) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(python())
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn aiosmtpd");
            let deadline = Instant::now() + Duration::from_secs(15);
            let up = loop {
                if child.try_wait().ok().flatten().is_some() {
                    break false; // most likely the port was taken meanwhile
                }
                if smtp_banner(port) {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if up {
                return Self {
                    port,
                    maildir,
                    child,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("aiosmtpd did not start");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        read_maildir(&self.maildir)
    }
}

fn smtp_banner(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 3];
    let ok = s.read_exact(&mut buf).is_ok() && &buf == b"220";
    let _ = std::io::Write::write_all(&mut s, b"QUIT\r\n");
    ok
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
