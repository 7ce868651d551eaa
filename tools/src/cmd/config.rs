use std::sync::Arc;

use anyhow::Context;
use control_plane::directory::Backend;
use control_plane::mail::{Mail, Mailer, OutboxMailer, SmtpMailer};
use serde_json::json;
use tenant_runtime::email;

use super::{Ctx, Report, coded, redact};

/// The mailer tenantd would use, and a description of it for messages.
pub(crate) fn mailer(ctx: &Ctx) -> anyhow::Result<(Arc<dyn Mailer>, String)> {
    let config = &ctx.config;
    match &config.smtp_url {
        Some(url) => {
            let url = url.expose();
            let m = SmtpMailer::new(url, &config.mail_from).with_context(|| {
                format!(
                    "invalid mail server URL {}; see `tenantctl --help` for TENANTD_SMTP_URL",
                    redact(url)
                )
            })?;
            Ok((Arc::new(m), format!("via {}", redact(url))))
        }
        None => {
            let dir = config.outbox_dir();
            // tenantctl prints the links it makes itself; it never logs them.
            let m = OutboxMailer::new(dir.clone(), &config.mail_from, ctx.clock.clone(), false)
                .with_context(|| format!("cannot create the outbox {}", dir.display()))?;
            Ok((
                Arc::new(m),
                format!("written to {} (TENANTD_SMTP_URL is not set)", dir.display()),
            ))
        }
    }
}

pub(crate) async fn configtest(ctx: &Ctx) -> anyhow::Result<Report> {
    let c = &ctx.config;
    let url = c.directory_url();
    if c.directory_url.is_none() && !c.data_dir.join("directory.db").is_file() {
        return Err(coded(
            "no_directory",
            format!(
                "no directory database in {}; check --data-dir / TENANTD_DATA_DIR (it is created by the first tenantd or tenantctl run)",
                c.data_dir.display()
            ),
        ));
    }
    let directory = ctx.directory_unmigrated().await?;
    let version = directory
        .version()
        .await
        .with_context(|| format!("the directory {} cannot be read", redact(&url)))?;
    let tenants = directory.tenants().await.map(|t| t.len()).unwrap_or(0);
    directory.close().await;
    let latest = i64::from(tenant_schema::DIRECTORY_LATEST);
    let (_, mail) = mailer(ctx)?;
    let tenants_dir = c.tenants_dir();
    let mut problems = Vec::new();
    if version > latest {
        problems.push(format!(
            "the directory has schema {version}, newer than this tenantctl ({latest}): upgrade tenantctl"
        ));
    }
    if !tenants_dir.is_dir() {
        problems.push(format!(
            "the tenants folder {} is missing",
            tenants_dir.display()
        ));
    }
    let backend = match directory.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let text = format!(
        "data dir:    {}\ndirectory:   {} ({backend}, schema {version} of {latest}, {tenants} tenants)\ntenants:     {}\npublic URL:  {}\nmail:        {mail}\n{}",
        c.data_dir.display(),
        redact(&url),
        tenants_dir.display(),
        c.public_url,
        if problems.is_empty() {
            "Configuration OK.\n".to_owned()
        } else {
            String::new()
        }
    );
    let report = Report::new(
        text,
        json!({
            "data_dir": c.data_dir,
            "directory": {"url": redact(&url), "backend": backend, "schema_version": version, "latest": latest, "tenants": tenants},
            "tenants_dir": tenants_dir,
            "public_url": c.public_url.as_str(),
            "mail": mail,
            "ok": problems.is_empty(),
            "problems": problems,
        }),
    );
    Ok(if problems.is_empty() {
        report
    } else {
        report.failed("config_problem", problems.join("; "))
    })
}

pub(crate) async fn send_test_email(ctx: &Ctx, raw: &str) -> anyhow::Result<Report> {
    let to = email::parse(raw).ok_or_else(|| {
        coded(
            "invalid_email",
            format!("{raw:?} is not an email address; give one like ann@acme.example"),
        )
    })?;
    let (mailer, via) = mailer(ctx)?;
    let product = &ctx.config.product_name;
    let text = format!(
        "This is a test message from {product}'s tenantctl.\n\nMail settings work: invitations and password resets will arrive like this one.\n"
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p>This is a test message from {}'s tenantctl.</p><p>Mail settings work: invitations and password resets will arrive like this one.</p></body></html>",
        control_plane::mail::escape(product)
    );
    mailer
        .send(Mail {
            to: to.clone(),
            subject: format!("{product} test message"),
            text,
            html,
            link: None,
        })
        .await
        .with_context(|| format!("the test message to {to} was not sent; check TENANTD_SMTP_URL and TENANTD_MAIL_FROM"))?;
    Ok(Report::new(
        format!("Test message to {to} sent ({via}).\n"),
        json!({"to": to, "sent": true, "via": via}),
    ))
}
