//! `tenantctl client …`: the vendor's apps that sign users in through tenantd.

use clap::{Args, Subcommand};
use control_plane::service::clients::{self, ClientView, NewClient};
use serde_json::json;

use super::{Ctx, Report, coded, table};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register an app. Prints its client_id and, for a confidential client, its client_secret
    /// (shown once: only its SHA-256 is kept).
    Create(CreateClientArgs),
    /// List the registered apps.
    List,
    /// Show one app (never its secret).
    Show {
        /// The app's client_id.
        id: String,
    },
    /// Delete an app: it can no longer sign anyone in.
    Delete {
        /// The app's client_id.
        id: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Give a confidential app a new secret (shown once); the old one stops working at once.
    RotateSecret {
        /// The app's client_id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateClientArgs {
    /// The app's name, shown to people signing in.
    #[arg(long)]
    pub name: String,
    /// Where the app receives the result of a sign-in; compared exactly (no wildcards).
    /// https, or http for loopback hosts only. Repeat for several.
    /// Not needed by an app that only uses the operator API (--operator-scope).
    #[arg(
        long = "redirect-uri",
        value_name = "URI",
        required_unless_present = "operator_scope"
    )]
    pub redirect_uris: Vec<String>,
    /// Where the app may send people after signing out. Repeat for several.
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where tenantd posts a signed logout token when a session of this app's users ends.
    #[arg(long = "backchannel-logout-uri", value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// An origin whose pages may call the API with bearer tokens (CORS). Repeat for several.
    #[arg(long = "web-origin", value_name = "ORIGIN")]
    pub web_origins: Vec<String>,
    /// A public client (single-page or native app): no secret, PKCE only.
    #[arg(long)]
    pub public: bool,
    /// Operator scopes this (confidential) app may obtain with the client-credentials grant
    /// for the operator API, comma-separated: tenants:read, tenants:write, users:read,
    /// audit:read, backups:write.
    #[arg(long, value_name = "SCOPES")]
    pub operator_scope: Option<String>,
}

fn text_of(c: &ClientView) -> String {
    let mut t = format!(
        "client_id:  {}\nname:       {}\nkind:       {}\nredirects:  {}\n",
        c.client_id,
        c.name,
        c.kind,
        c.redirect_uris.join(", ")
    );
    if !c.post_logout_redirect_uris.is_empty() {
        t.push_str(&format!(
            "after logout: {}\n",
            c.post_logout_redirect_uris.join(", ")
        ));
    }
    if let Some(b) = &c.backchannel_logout_uri {
        t.push_str(&format!("back-channel logout: {b}\n"));
    }
    if !c.web_origins.is_empty() {
        t.push_str(&format!("web origins: {}\n", c.web_origins.join(", ")));
    }
    if !c.operator_scopes.is_empty() {
        t.push_str(&format!(
            "operator scopes: {}\n",
            c.operator_scopes.join(", ")
        ));
    }
    t
}

pub(crate) async fn run(ctx: &Ctx, command: ClientCommand) -> anyhow::Result<Report> {
    let dir = ctx.fleet().await?.directory;
    match command {
        ClientCommand::Create(a) => {
            let new = NewClient {
                name: a.name,
                redirect_uris: a.redirect_uris,
                post_logout_redirect_uris: a.post_logout_redirect_uris,
                backchannel_logout_uri: a.backchannel_logout_uri,
                web_origins: a.web_origins,
                public: a.public,
                operator_scopes: a.operator_scope.unwrap_or_default(),
            };
            let (client, secret) = clients::create(&dir, &new, ctx.now()).await?;
            let mut text = text_of(&client);
            let mut out = json!({"client_id": client.client_id, "client": client});
            if let Some(s) = secret {
                text.push_str(&format!(
                    "client_secret: {}\n(shown once: keep it in the app's configuration)\n",
                    s.0
                ));
                out["client_secret"] = json!(s.0);
            }
            Ok(Report::new(text, out))
        }
        ClientCommand::List => {
            let all = clients::list(&dir).await?;
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|c| {
                    vec![
                        c.client_id.clone(),
                        c.kind.to_owned(),
                        c.name.clone(),
                        c.redirect_uris.join(","),
                    ]
                })
                .collect();
            let text = if all.is_empty() {
                "No apps yet. Register one with `tenantctl client create`.\n".to_owned()
            } else {
                table(&["CLIENT_ID", "KIND", "NAME", "REDIRECT URIS"], &rows)
            };
            Ok(Report::new(text, json!({"clients": all})))
        }
        ClientCommand::Show { id } => {
            let c = clients::show(&dir, &id).await?;
            Ok(Report::new(text_of(&c), json!({"client": c})))
        }
        ClientCommand::Delete { id, yes } => {
            if !yes {
                return Err(coded(
                    "confirmation_required",
                    format!("deleting app {id} signs nobody in through it any more; add --yes"),
                ));
            }
            clients::delete(&dir, &id).await?;
            Ok(Report::new(
                format!("Deleted app {id}.\n"),
                json!({"client_id": id, "deleted": true}),
            ))
        }
        ClientCommand::RotateSecret { id } => {
            let secret = clients::rotate_secret(&dir, &id).await?;
            Ok(Report::new(
                format!(
                    "client_secret: {}\n(shown once; the previous secret no longer works)\n",
                    secret.0
                ),
                json!({"client_id": id, "client_secret": secret.0}),
            ))
        }
    }
}
