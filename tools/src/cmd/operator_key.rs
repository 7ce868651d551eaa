//! `tenantctl operator-key …`: keys of the operator API for the vendor's back office.

use clap::{Args, Subcommand};
use control_plane::service::operator::{self, KeyView, NewKey};
use serde_json::json;

use super::{Ctx, Report, coded, table};

#[derive(Debug, Subcommand)]
pub enum OperatorKeyCommand {
    /// Make a key for the operator API. Prints it once (only its SHA-256 is kept); send it as
    /// `Authorization: Bearer <key>`.
    Create(CreateKeyArgs),
    /// List the keys (never their secrets).
    List,
    /// Revoke a key: every node refuses it from its next call.
    Revoke {
        /// The key's id (as `list` shows it).
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    /// What the key is for, e.g. "billing system".
    #[arg(long)]
    pub name: String,
    /// What the key may do, comma-separated: tenants:read, tenants:write, users:read,
    /// audit:read, backups:write.
    #[arg(long, value_name = "SCOPES", default_value = "tenants:read")]
    pub scope: String,
    /// How long the key works: e.g. 90d, 12h, 2w, or `never`.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub expires_in: String,
    /// Accept the key only from these source networks (CIDR or address; repeatable). Default:
    /// any address.
    #[arg(long = "allow-from", value_name = "CIDR")]
    pub allow_from: Vec<String>,
}

fn text_of(k: &KeyView) -> String {
    format!(
        "id:         {}\nname:       {}\nscopes:     {}\nallow from: {}\nexpires:    {}\n",
        k.id,
        k.name,
        k.scopes.join(", "),
        if k.allow_from.is_empty() {
            "anywhere".to_owned()
        } else {
            k.allow_from.join(", ")
        },
        k.expires_at
            .map_or_else(|| "never".to_owned(), |e| format!("{e} (unix time)"))
    )
}

fn state_of(k: &KeyView, now: i64) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

pub(crate) async fn run(ctx: &Ctx, command: OperatorKeyCommand) -> anyhow::Result<Report> {
    let dir = ctx.fleet().await?.directory;
    match command {
        OperatorKeyCommand::Create(a) => {
            let new = NewKey {
                name: a.name,
                scopes: a.scope,
                expires_in: a.expires_in,
                allow_from: a.allow_from,
            };
            let (key, secret) = operator::create_key(&dir, &new, ctx.now()).await?;
            let mut text = text_of(&key);
            text.push_str(&format!(
                "key:        {}\n(shown once: keep it in the back office's configuration)\n",
                secret.0
            ));
            Ok(Report::new(
                text,
                json!({"id": key.id, "key": secret.0, "operator_key": key}),
            ))
        }
        OperatorKeyCommand::List => {
            let now = ctx.now();
            let all = operator::list_keys(&dir).await?;
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        state_of(k, now).to_owned(),
                        k.scopes.join(","),
                        k.last_used_at.map_or("-".to_owned(), |t| t.to_string()),
                        k.name.clone(),
                    ]
                })
                .collect();
            let text = if all.is_empty() {
                "No operator keys yet. Make one with `tenantctl operator-key create`.\n".to_owned()
            } else {
                table(&["ID", "STATE", "SCOPES", "LAST USED", "NAME"], &rows)
            };
            Ok(Report::new(text, json!({"operator_keys": all})))
        }
        OperatorKeyCommand::Revoke { id } => {
            let key = operator::revoke_key(&dir, &id).await.map_err(|e| match e {
                operator::OperatorError::UnknownKey(_) => coded(e.code(), e.to_string()),
                other => other.into(),
            })?;
            Ok(Report::new(
                format!("Revoked operator key {} ({}).\n", key.id, key.name),
                json!({"id": key.id, "revoked": true, "operator_key": key}),
            ))
        }
    }
}
