//! `tenantctl social …`: the social providers people may sign in with ("Continue with …"),
//! any OpenID Connect provider. Each company decides whether its people may use them
//! (`social_login` in its sign-in policy).

use clap::{Args, Subcommand};
use control_plane::keys::ServerKey;
use control_plane::service::sso::social::{self, SocialError};
use serde_json::json;

use super::{Ctx, Report, coded, table};

#[derive(Debug, Subcommand)]
pub enum SocialCommand {
    /// Add a provider. Register `<public URL>/sso/callback` as its redirect URI.
    Add(AddSocialArgs),
    /// List the providers (never their secrets).
    List,
    /// Remove a provider: its button leaves the login page.
    Remove {
        /// The provider's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AddSocialArgs {
    /// A short name, e.g. google (lower-case letters, digits, dashes).
    #[arg(long)]
    pub name: String,
    /// The provider's issuer URL, e.g. https://accounts.google.com.
    #[arg(long)]
    pub issuer: String,
    #[arg(long)]
    pub client_id: String,
    /// Stored encrypted with the server key.
    #[arg(long)]
    pub client_secret: String,
    /// What the button says after "Continue with" (default: the name, capitalised).
    #[arg(long)]
    pub label: Option<String>,
}

fn coded_error(e: SocialError) -> anyhow::Error {
    match e {
        SocialError::Invalid(why) => coded("invalid_argument", why),
        SocialError::Exists => coded("already_exists", "a social provider of that name exists"),
        SocialError::NotFound => coded("not_found", "no such social provider"),
        SocialError::Fault(f) => anyhow::anyhow!(f),
    }
}

pub(crate) async fn run(ctx: &Ctx, command: SocialCommand) -> anyhow::Result<Report> {
    let dir = ctx.fleet().await?.directory;
    match command {
        SocialCommand::Add(a) => {
            let key = ServerKey::load(&ctx.config)?;
            let p = social::add(
                &dir,
                &key,
                &a.name,
                a.label.as_deref(),
                &a.issuer,
                &a.client_id,
                &a.client_secret,
            )
            .await
            .map_err(coded_error)?;
            Ok(Report::new(
                format!(
                    "Added {} (\"Continue with {}\"), issuer {}.\n",
                    p.name, p.label, p.issuer
                ),
                json!({"provider": p}),
            ))
        }
        SocialCommand::List => {
            let all = social::list(&dir).await.map_err(coded_error)?;
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.label.clone(),
                        p.issuer.clone(),
                        p.client_id.clone(),
                    ]
                })
                .collect();
            let text = if all.is_empty() {
                "No social provider.\n".to_owned()
            } else {
                table(&["NAME", "LABEL", "ISSUER", "CLIENT_ID"], &rows)
            };
            Ok(Report::new(text, json!({"providers": all})))
        }
        SocialCommand::Remove { name } => {
            social::remove(&dir, &name).await.map_err(coded_error)?;
            Ok(Report::new(
                format!("Removed {name}.\n"),
                json!({"removed": name}),
            ))
        }
    }
}
