//! [`TestApp`]: a real `tenantd` child process on a random port with its own data directory and
//! a real SMTP server (aiosmtpd) writing to a maildir; companies are created with the real
//! `tenantctl`, and each simulated person is an HTTP client with its own cookie jar.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::ctl::Ctl;
use crate::http::{Person, Reply};
use crate::mail::Mail;
use crate::process::{Tenantd, free_port};
use crate::smtp::SmtpServer;
use crate::{MAIL_WAIT, PASSWORD};

/// How a test server is set up.
#[derive(Debug, Clone)]
pub struct Options {
    pub public_url: String,
    pub env: Vec<(String, String)>,
    /// Listen on this loopback port instead of a random one.
    pub port: Option<u16>,
}

impl Options {
    /// A server whose public URL is its own address (`http://127.0.0.1:PORT`), as OpenID
    /// relying parties and browsers must reach the issuer at the URL it advertises.
    pub fn at_own_address() -> Self {
        let port = free_port();
        Self {
            public_url: format!("http://127.0.0.1:{port}"),
            env: Vec::new(),
            port: Some(port),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            public_url: "http://login.tenantd.test:8080".to_owned(),
            env: Vec::new(),
            port: None,
        }
    }
}

/// A running `tenantd` with its own data directory and SMTP server.
pub struct TestApp {
    // Declared first: the server is killed before its mail server and data go.
    server: Tenantd,
    env: Vec<(String, String)>,
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub public_url: String,
    pub smtp: SmtpServer,
    seen_mail: Mutex<HashSet<String>>,
    pub data: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let smtp = SmtpServer::start(data.path().join("maildir"));
        let mut env = vec![
            (
                "TENANTD_DATA_DIR".to_owned(),
                data.path().join("data").to_string_lossy().into_owned(),
            ),
            ("TENANTD_PUBLIC_URL".to_owned(), opts.public_url.clone()),
            ("TENANTD_SMTP_URL".to_owned(), smtp.url()),
        ];
        env.extend(opts.env);
        let listen = format!("127.0.0.1:{}", opts.port.unwrap_or(0));
        let server = Tenantd::start_on("", &listen, env.clone());
        Self {
            address: server.address.clone(),
            server,
            env,
            public_url: opts.public_url,
            smtp,
            seen_mail: Mutex::new(HashSet::new()),
            data,
        }
    }

    /// Kills the server (a crash) and starts it again on the same address and data.
    pub fn restart(&mut self) {
        self.server.stop();
        let listen = self.address.trim_start_matches("http://").to_owned();
        self.server = Tenantd::start_on("", &listen, self.env.clone());
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// `tenantctl` with the server's settings (data directory, mail, public URL).
    pub fn ctl(&self) -> Ctl {
        Ctl::new(&self.data_dir())
            .with_env("TENANTD_SMTP_URL", &self.smtp.url())
            .with_env("TENANTD_PUBLIC_URL", &self.public_url)
    }

    /// A new person with an empty cookie jar.
    pub fn person(&self) -> Person {
        self.server.person()
    }

    /// A person without a cookie jar whose every request carries this `Cookie` header.
    pub fn person_with_cookie(&self, cookie: &str) -> Person {
        self.server.person_with_cookie(cookie)
    }

    // ---- companies -------------------------------------------------------------------------

    /// Creates a company whose first admin is invited by mail (the operator's step).
    pub fn tenant_create(&self, slug: &str, name: &str, domain: &str, admin_email: &str) {
        self.ctl()
            .tenant_create(slug, name, Some(domain), admin_email, &[]);
    }

    /// Suspends or resumes a company (the operator's switch, with `tenantctl`).
    pub fn set_tenant_status(&self, slug: &str, suspended: bool) {
        let verb = if suspended { "suspend" } else { "resume" };
        self.ctl().json(&["tenant", verb, slug]);
    }

    /// Creates a company and takes its first admin through the invitation: the admin is
    /// signed in on the returned person.
    pub async fn company(&self, slug: &str) -> Company {
        let admin_email = format!("admin@{slug}.test");
        let name = format!("Company {slug}");
        self.tenant_create(slug, &name, &format!("{slug}.test"), &admin_email);
        let mail = self.wait_for_mail(&admin_email, MAIL_WAIT).await;
        let admin = self.person();
        let r = admin
            .accept_invite_named(&mail.token, PASSWORD, "Ada Admin")
            .await;
        assert_eq!(r.status, 200, "accept first admin invitation: {}", r.body);
        let v = r.json();
        Company {
            slug: slug.to_owned(),
            name,
            tenant_id: v["tenant"]["id"].as_str().expect("tenant id").to_owned(),
            admin_email,
            admin_id: v["user"]["id"].as_str().expect("user id").to_owned(),
            admin,
        }
    }

    /// Invites a person into the admin's company; returns the new user's id.
    pub async fn invite(&self, admin: &Person, email: &str, role: &str) -> String {
        let r = admin.invite(email, role).await;
        assert_eq!(r.status, 201, "invite {email}: {}", r.body);
        r.json()["id"].as_str().expect("id").to_owned()
    }

    /// Invites a person and accepts the invitation from the mailed link: they are signed in.
    pub async fn add_user(&self, admin: &Person, email: &str, role: &str) -> Member {
        let id = self.invite(admin, email, role).await;
        let mail = self.wait_for_mail(email, MAIL_WAIT).await;
        let person = self.person();
        let r = person.accept_invite(&mail.token, PASSWORD).await;
        assert_eq!(r.status, 200, "accept invitation of {email}: {}", r.body);
        Member {
            id,
            email: email.to_owned(),
            person,
        }
    }

    /// Signs in a new person; returns them with the answer.
    pub async fn try_login(&self, email: &str, password: &str) -> (Person, Reply) {
        let p = self.person();
        let r = p.login(email, password).await;
        (p, r)
    }

    /// Signs in a new person, asserting success.
    pub async fn login(&self, email: &str, password: &str) -> Person {
        let (p, r) = self.try_login(email, password).await;
        assert_eq!(r.status, 200, "login {email}: {}", r.body);
        p
    }

    // ---- mail --------------------------------------------------------------------------------

    /// Every message received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        self.smtp.mails()
    }

    /// Every message received so far for one address.
    pub fn mails_to(&self, to: &str) -> Vec<Mail> {
        let to = to.to_lowercase();
        self.mails().into_iter().filter(|m| m.to == to).collect()
    }

    /// The oldest message to `to` not returned before; waits for it up to `deadline`.
    pub async fn wait_for_mail(&self, to: &str, deadline: Duration) -> Mail {
        crate::poll(deadline, &format!("no mail to {to}"), || async {
            let mut seen = self.seen_mail.lock().expect("seen lock");
            let m = self
                .mails_to(to)
                .into_iter()
                .find(|m| !seen.contains(&m.file))
                .ok_or_else(String::new)?;
            seen.insert(m.file.clone());
            Ok(m)
        })
        .await
    }

    /// Waits until all mail sent before now has arrived: asks a reset for `sentinel` (an active
    /// user) and waits for that mail. Mail is handed to the sender when its request is answered,
    /// so anything an earlier request triggered has arrived by then (or never comes).
    /// Side effects: the sentinel gets a fresh reset link (older ones stop working), and the
    /// reset throttle allows about three of these per sentinel address per minute.
    pub async fn mail_barrier(&self, sentinel: &str) -> Mail {
        let r = self.person().forgot(sentinel).await;
        assert_eq!(r.status, 202);
        let m = self.wait_for_mail(sentinel, MAIL_WAIT).await;
        assert!(m.subject.contains("Reset"), "sentinel mail: {}", m.subject);
        m
    }
}

/// A created company with its first admin signed in.
pub struct Company {
    pub slug: String,
    pub name: String,
    pub tenant_id: String,
    pub admin_email: String,
    pub admin_id: String,
    pub admin: Person,
}

/// A user added through an accepted invitation, signed in.
pub struct Member {
    pub id: String,
    pub email: String,
    pub person: Person,
}
