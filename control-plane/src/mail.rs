//! Outgoing mail: SMTP through lettre, or `.eml` files in the outbox when no server is set.

use std::path::PathBuf;
use std::sync::Arc;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One message, with a text and an HTML part.
#[derive(Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The action link of the message (outbox mode logs it, so a developer can click it).
    pub link: Option<String>,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    async fn send(&self, mail: Mail) -> anyhow::Result<()>;
}

/// Builds the MIME message; recipients are parsed, so no header can be injected through them.
pub fn build(from: &str, mail: &Mail) -> anyhow::Result<Message> {
    let from: Mailbox = from.parse()?;
    let to: Mailbox = mail.to.parse()?;
    Ok(Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.replace(['\r', '\n'], " "))
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))?)
}

pub struct SmtpMailer {
    from: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    /// `smtp://host:port` (plain, or `?tls=required` for STARTTLS), `smtps://host:port` (TLS).
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        Ok(Self {
            from: from.to_owned(),
            transport,
        })
    }
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport knows the server's password: name only the sender.
        f.debug_struct("SmtpMailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let msg = build(&self.from, &mail)?;
        self.transport.send(msg).await?;
        Ok(())
    }
}

/// Writes each message to `<outbox>/<time>-<id>.eml`.
#[derive(Debug)]
pub struct OutboxMailer {
    from: String,
    dir: PathBuf,
    clock: Arc<dyn tenant_runtime::Clock>,
    /// Development only: log each message's link (a live token) so a developer can click it.
    log_links: bool,
}

impl OutboxMailer {
    pub fn new(
        dir: PathBuf,
        from: &str,
        clock: Arc<dyn tenant_runtime::Clock>,
        log_links: bool,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            from: from.to_owned(),
            dir,
            clock,
            log_links,
        })
    }
}

#[async_trait::async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let msg = build(&self.from, &mail)?;
        let name = format!("{}-{}.eml", self.clock.now(), uuid::Uuid::new_v4().simple());
        let path = self.dir.join(name);
        tokio::fs::write(&path, msg.formatted()).await?;
        // Development mode only: with no mail server, the log is how the link reaches a person.
        if self.log_links {
            tracing::info!(target: "outbox", path = %path.display(), link = mail.link.as_deref().unwrap_or(""), "mail written to the outbox");
        } else {
            tracing::info!(target: "outbox", path = %path.display(), "mail written to the outbox");
        }
        Ok(())
    }
}

/// Keeps messages in memory (in-process tests).
#[derive(Debug, Default, Clone)]
pub struct MemoryMailer {
    pub sent: Arc<parking_lot::Mutex<Vec<Mail>>>,
}

#[async_trait::async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        build("test <test@localhost>", &mail)?;
        self.sent.lock().push(mail);
        Ok(())
    }
}

/// Sends in the background with a few retries, so neither the answer nor its timing depends on
/// the mail server.
pub fn send_later(mailer: Arc<dyn Mailer>, mail: Mail) {
    tokio::spawn(send_with_retries(mailer, mail));
}

/// Messages of one batch (a bulk invitation) in flight at once, across every batch of this
/// server: a batch of hundreds goes out at the pace the mail server takes, without hundreds
/// of connections at once.
const PACED_AT_ONCE: usize = 4;

/// Sends a batch in the background, a few at a time (see [`PACED_AT_ONCE`]), each with the
/// retries of [`send_later`].
pub fn send_paced(mailer: Arc<dyn Mailer>, mails: Vec<Mail>) {
    static GATE: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    let gate = GATE
        .get_or_init(|| Arc::new(tokio::sync::Semaphore::new(PACED_AT_ONCE)))
        .clone();
    tokio::spawn(async move {
        for mail in mails {
            let Ok(permit) = gate.clone().acquire_owned().await else {
                return;
            };
            let mailer = mailer.clone();
            tokio::spawn(async move {
                send_with_retries(mailer, mail).await;
                drop(permit);
            });
        }
    });
}

async fn send_with_retries(mailer: Arc<dyn Mailer>, mail: Mail) {
    let mut delay = std::time::Duration::from_millis(500);
    for attempt in 1..=4 {
        match mailer.send(mail.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(attempt, error = %e, subject = %mail.subject, "mail not sent");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
    tracing::error!(subject = %mail.subject, "mail given up after retries");
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The invitation and reset messages.
pub mod templates {
    use super::{Mail, escape};

    fn wrap(
        product: &str,
        title: &str,
        body_text: &str,
        link: &str,
        button: &str,
        note: &str,
    ) -> (String, String) {
        let text = format!("{title}\n\n{body_text}\n\n{link}\n\n{note}\n\n— {product}\n");
        let html = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\">\
             <h2>{t}</h2><p>{b}</p>\
             <p><a href=\"{l}\" style=\"background:#2456d3;color:#fff;padding:10px 16px;border-radius:4px;text-decoration:none\">{btn}</a></p>\
             <p style=\"color:#555\">Or open this link: {l}</p><p style=\"color:#555\">{n}</p><p>— {p}</p></body></html>",
            t = escape(title),
            b = escape(body_text),
            l = escape(link),
            btn = escape(button),
            n = escape(note),
            p = escape(product)
        );
        (text, html)
    }

    pub fn invitation(product: &str, company: &str, to: &str, link: &str) -> Mail {
        let title = format!("You are invited to {company} on {product}");
        let (text, html) = wrap(
            product,
            &title,
            &format!("{company} invited you to sign in to {product}. Choose a password to accept."),
            link,
            "Accept the invitation",
            "The link works once and expires in 7 days.",
        );
        Mail {
            to: to.to_owned(),
            subject: title,
            text,
            html,
            link: Some(link.to_owned()),
        }
    }

    pub fn password_reset(product: &str, to: &str, link: &str) -> Mail {
        let title = format!("Reset your {product} password");
        let (text, html) = wrap(
            product,
            &title,
            "Someone asked to reset the password of this account. If it was you, choose a new password.",
            link,
            "Choose a new password",
            "The link works once and expires in 30 minutes. If you did not ask for it, ignore this message.",
        );
        Mail {
            to: to.to_owned(),
            subject: title,
            text,
            html,
            link: Some(link.to_owned()),
        }
    }

    /// To the new address of an email change: the link that makes it take effect.
    pub fn email_change_confirm(product: &str, company: &str, to: &str, link: &str) -> Mail {
        let title = format!("Confirm your new email address for {company}");
        let (text, html) = wrap(
            product,
            &title,
            &format!(
                "Your {company} account on {product} is moving to this address. Confirm it to make the change take effect."
            ),
            link,
            "Confirm the new address",
            "The link works once and expires in 24 hours. If you did not expect this, ignore this message: nothing changes.",
        );
        Mail {
            to: to.to_owned(),
            subject: title,
            text,
            html,
            link: Some(link.to_owned()),
        }
    }

    /// To the old address of an email change: what is about to happen, and no link.
    pub fn email_change_notice(product: &str, company: &str, to: &str, new: &str) -> Mail {
        let title = format!("Your {company} sign-in address is being changed");
        let body = format!(
            "A change of the email address of your {company} account on {product} to {new} was requested. It takes effect when the link sent to that address is used. If this is not what you want, tell your company's administrator at once."
        );
        let text = format!("{title}\n\n{body}\n\n— {product}\n");
        let html = format!(
            "<!doctype html><html><body><h2>{}</h2><p>{}</p><p>— {}</p></body></html>",
            escape(&title),
            escape(&body),
            escape(product)
        );
        Mail {
            to: to.to_owned(),
            subject: title,
            text,
            html,
            link: None,
        }
    }
}
