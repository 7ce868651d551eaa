//! TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of skew either way). The
//! secret is sealed with a key derived from the server key before it reaches the tenant file;
//! each factor remembers the last step it accepted, so a code works once.

use serde::Serialize;
use tenant_runtime::WriteTx;
use tenant_runtime::store::factors::{self, Kind};
use totp_rs::{Builder, Secret, Totp};

use crate::error::Fault;
use crate::keys::DerivedKey;
use crate::keys::jws;
use crate::state::AppState;

/// What a person needs to add the factor to their authenticator app; shown once.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolment {
    /// The factor's id (confirm it with a code).
    pub id: String,
    /// The secret in base32, for typing it in.
    pub secret: String,
    pub otpauth_uri: String,
    /// The `otpauth_uri` as a QR code, an SVG document made here.
    pub qr_svg: String,
    #[serde(skip)]
    pub(super) sealed: String,
}

pub fn key(state: &AppState) -> DerivedKey {
    state.keys.derive("totp-secret")
}

fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Result<Totp, Fault> {
    // The otpauth URI separates issuer and account with a colon: neither may hold one.
    let issuer = issuer.replace(':', " ");
    Builder::new()
        .with_secret(Secret::new(secret.into_boxed_slice()))
        .with_issuer(Some(issuer))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("totp: {e:?}")))
}

/// A new secret for `account` (an email) at `issuer` (the product's name).
pub fn generate(state: &AppState, issuer: &str, account: &str) -> Result<Enrolment, Fault> {
    let mut raw = vec![0u8; 20];
    getrandom::fill(&mut raw).map_err(|e| Fault::Unexpected(anyhow::anyhow!("rng: {e}")))?;
    let sealed = jws::seal(&key(state), &raw)
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("seal: {e}")))?;
    let t = totp(raw, issuer, account)?;
    let otpauth_uri = t
        .to_url()
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("totp uri: {e:?}")))?;
    Ok(Enrolment {
        id: uuid::Uuid::new_v4().simple().to_string(),
        secret: t.secret().to_base32(),
        qr_svg: qr_svg(&otpauth_uri)?,
        otpauth_uri,
        sealed,
    })
}

/// A QR code of `text` as an SVG element (no XML prolog, so it can sit in a page).
pub fn qr_svg(text: &str) -> Result<String, Fault> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("qr: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let svg = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => &svg,
    };
    Ok(svg.replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code of the key\" ",
        1,
    ))
}

/// Six digits, spaces allowed between them.
fn normalise(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The time step `code` matches for this sealed secret, if any.
fn matched_step(key: &DerivedKey, sealed: &str, code: &str, now: i64) -> Option<i64> {
    let code = normalise(code)?;
    let raw = jws::open(key, sealed).ok()?;
    let t = totp(raw, "x", "x").ok()?;
    let step = t.check(&code, u64::try_from(now).ok()?)?;
    i64::try_from(step).ok()
}

/// Checks `code` against the user's TOTP factor `only` (one being enrolled), or else against
/// each of their confirmed ones, and uses its step up. The factor that accepted it, if any.
pub fn use_code(
    tx: &WriteTx<'_>,
    key: &DerivedKey,
    user_id: &str,
    only: Option<&str>,
    code: &str,
    now: i64,
) -> tenant_runtime::Result<Option<String>> {
    let candidates = match only {
        Some(id) => factors::get(tx, user_id, id)?.into_iter().collect(),
        None => factors::list(tx, user_id)?,
    };
    for f in candidates.iter().filter(|f| f.factor.kind == Kind::Totp) {
        let Some(sealed) = &f.secret else { continue };
        if let Some(step) = matched_step(key, sealed, code, now)
            && factors::use_totp_step(tx, user_id, &f.factor.id, step, now)?
        {
            return Ok(Some(f.factor.id.clone()));
        }
    }
    Ok(None)
}
