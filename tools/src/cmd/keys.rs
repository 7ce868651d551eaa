//! `tenantctl keys …`: the keys that sign the tokens of the OpenID provider.

use clap::Subcommand;
use control_plane::keys::ServerKey;
use control_plane::service::oidc::signing::{self, KeyView};
use serde_json::json;

use super::{Ctx, Report, table};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys: the one signing now, the next, and retiring ones still published.
    List,
    /// Publish a new signing key now; it signs once relying parties have had time to fetch it.
    ///
    /// The old key stays in the JWKS until every token it signed has expired (one hour after
    /// the new key starts signing), then leaves it.
    Rotate {
        /// How long after publication the new key starts signing, e.g. 1h, 30m, 0s.
        #[arg(long, default_value = "1h", value_parser = parse_secs)]
        sign_after: i64,
    },
}

/// `90s`, `30m`, `1h`, `2d`, or plain seconds.
fn parse_secs(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 1h, 30m or 0s"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?} is not a duration such as 1h, 30m or 0s")),
    };
    n.checked_mul(mult)
        .filter(|v| *v <= 30 * 86_400)
        .ok_or_else(|| format!("{s:?} is too long (at most 30d)"))
}

fn rows(keys: &[KeyView]) -> Vec<Vec<String>> {
    keys.iter()
        .map(|k| {
            vec![
                k.kid.clone(),
                k.alg.clone(),
                k.state.to_owned(),
                k.signs_from.to_string(),
            ]
        })
        .collect()
}

pub(crate) async fn run(ctx: &Ctx, command: KeysCommand) -> anyhow::Result<Report> {
    let dir = ctx.fleet().await?.directory;
    match command {
        KeysCommand::List => {
            let keys = signing::list(&dir, ctx.now()).await?;
            let text = if keys.is_empty() {
                "No signing key yet: tenantd makes one when an app first needs a token.\n"
                    .to_owned()
            } else {
                table(&["KID", "ALG", "STATE", "SIGNS_FROM"], &rows(&keys))
            };
            Ok(Report::new(text, json!({"keys": keys})))
        }
        KeysCommand::Rotate { sign_after } => {
            let server = ServerKey::load(&ctx.config)?;
            let key = signing::rotate(&dir, &server, ctx.now(), sign_after).await?;
            Ok(Report::new(
                format!(
                    "Published key {} (in the JWKS now); it signs from {} ({} s from now).\n",
                    key.kid, key.signs_from, sign_after
                ),
                json!({"key": key}),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(super::parse_secs("0s"), Ok(0));
        assert_eq!(super::parse_secs("90"), Ok(90));
        assert_eq!(super::parse_secs("30m"), Ok(1800));
        assert_eq!(super::parse_secs("1h"), Ok(3600));
        assert!(super::parse_secs("1y").is_err());
        assert!(super::parse_secs("h").is_err());
        assert!(super::parse_secs("99d").is_err());
    }
}
