//! A vendor's web app that signs its users in through tenantd with OpenID Connect: the code flow
//! with PKCE, tenantd's company claims, an access token on tenantd's API, RP-initiated logout and
//! back-channel logout. One file to copy from; see "Integrate your app" in the README.
//!
//! ```sh
//! VENDOR_APP_CLIENT_ID=… VENDOR_APP_CLIENT_SECRET=… cargo run -p control-plane --example vendor-app
//! ```
//!
//! Also `VENDOR_APP_ISSUER` (tenantd's public URL, default `http://127.0.0.1:8080`),
//! `VENDOR_APP_LISTEN` (default `127.0.0.1:3000`) and `VENDOR_APP_URL` (this app's public URL,
//! default `http://<listen address>`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use openidconnect::core::*;
use openidconnect::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// tenantd's claims beyond the standard ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Company {
    org_id: String,
    org_slug: String,
    org_name: String,
    role: String,
    sid: String,
}
impl AdditionalClaims for Company {}

// The crate's `Core*` types, with `Company` in place of `EmptyAdditionalClaims`.
#[rustfmt::skip]
type TenantdIdToken = IdToken<Company, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
#[rustfmt::skip]
type Tokens = StandardTokenResponse<IdTokenFields<Company, EmptyExtraTokenFields, CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>, CoreTokenType>;
#[rustfmt::skip]
type TenantdClient = Client<Company, CoreAuthDisplay, CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm, CoreJsonWebKey, CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>, Tokens, CoreTokenIntrospectionResponse,
    CoreRevocableToken, CoreRevocationErrorResponse,
    // What discovery sets: authorization always, token and userinfo when advertised.
    EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

type Params = HashMap<String, String>;
const COOKIE: &str = "vendor_app_session";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

struct App {
    issuer: String,
    client_id: String,
    client_secret: String,
    url: String,
    http: reqwest::Client,
    /// By the cookie's id. In memory: one process, gone at restart (a real app has a store).
    sessions: Mutex<HashMap<String, Session>>,
}

enum Session {
    /// Between `/login` and `/callback`.
    SigningIn(CsrfToken, Nonce, PkceCodeVerifier),
    SignedIn(Box<Person>),
    /// Sent to tenantd's logout with this state, which comes back on `/`.
    SigningOut(CsrfToken),
}

#[derive(Clone)]
struct Person {
    sub: String,
    name: String,
    email: String,
    company: Company,
    id_token: TenantdIdToken,
    access: AccessToken,
    refresh: Option<RefreshToken>,
    access_until: Instant,
}

/// An error shown as a page, with its causes.
struct Failure(StatusCode, String);
type Page = Result<Response, Failure>;

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        let (mut text, mut source) = (e.to_string(), e.source());
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        Self(StatusCode::BAD_GATEWAY, text)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = format!("<h1>Something went wrong</h1><p>{}</p>", esc(&self.1));
        (
            self.0,
            page(&format!("{body}<p><a href=\"/\">Back</a></p>")),
        )
            .into_response()
    }
}

impl App {
    /// Discovery and keys, fetched for each use so that `tenantctl keys rotate` is picked up
    /// (a busy app would cache them for a few minutes).
    async fn provider(&self) -> Result<(ProviderMetadataWithLogout, TenantdClient), Failure> {
        let issuer = IssuerUrl::new(self.issuer.clone())?;
        let meta = ProviderMetadataWithLogout::discover_async(issuer, &self.http).await?;
        let id = ClientId::new(self.client_id.clone());
        let secret = ClientSecret::new(self.client_secret.clone());
        let client = TenantdClient::from_provider_metadata(meta.clone(), id, Some(secret))
            .set_redirect_uri(RedirectUrl::new(format!("{}/callback", self.url))?);
        Ok((meta, client))
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The signed-in person of this session, or what to tell someone signed out.
    fn person(&self, id: &str, state: Option<&String>) -> Result<Box<Person>, &'static str> {
        let mut all = self.sessions();
        match all.get(id) {
            Some(Session::SignedIn(p)) => Ok(p.clone()),
            // Back from tenantd's logout: our state proves it was this browser's sign-out.
            Some(Session::SigningOut(ours)) if state == Some(ours.secret()) => {
                all.remove(id);
                Err("<p role=\"status\">You are signed out.</p>")
            }
            _ => Err(""),
        }
    }

    /// Takes a session out for good (its next step replaces it).
    fn take(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers)?;
        self.sessions().remove(&id).map(|s| (id, s))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let var = |name, default: &str| {
        let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
        value.trim_end_matches('/').to_owned()
    };
    let listen = var("VENDOR_APP_LISTEN", "127.0.0.1:3000");
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .context("VENDOR_APP_LISTEN")?;
    let addr = listener.local_addr()?;
    let app = App {
        issuer: var("VENDOR_APP_ISSUER", "http://127.0.0.1:8080"),
        client_id: std::env::var("VENDOR_APP_CLIENT_ID").context("VENDOR_APP_CLIENT_ID")?,
        client_secret: std::env::var("VENDOR_APP_CLIENT_SECRET")
            .context("VENDOR_APP_CLIENT_SECRET")?,
        url: var("VENDOR_APP_URL", &format!("http://{addr}")),
        // Not following redirects: nobody can point this client elsewhere (SSRF).
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?,
        sessions: Mutex::default(),
    };
    let router = axum::Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route("/backchannel-logout", post(backchannel_logout))
        .with_state(Arc::new(app));
    println!("vendor-app is listening on http://{addr}");
    axum::serve(listener, router).await?;
    Ok(())
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<Params>) -> Page {
    let id = cookie(&headers).unwrap_or_default();
    let mut person = match app.person(&id, q.get("state")) {
        Ok(p) => p,
        Err(notice) => return Ok(signed_out(notice)),
    };
    if person.access_until <= Instant::now() + Duration::from_secs(30) {
        // A refresh that fails means the grant has ended: signed out.
        if refresh(&app, &mut person).await.is_err() {
            app.sessions().remove(&id);
            return Ok(signed_out("<p role=\"status\">Your session has ended.</p>"));
        }
        // Unless a back-channel logout ended the session meanwhile.
        if let Some(Session::SignedIn(p)) = app.sessions().get_mut(&id) {
            *p = person.clone();
        }
    }
    let users = company_users(&app, &person.access).await;
    let c = &person.company;
    let facts: String = [
        ("name", "Name", &person.name),
        ("email", "Email", &person.email),
        ("company", "Company", &c.org_name),
        ("slug", "Company slug", &c.org_slug),
        ("org-id", "Company id", &c.org_id),
        ("role", "Role", &c.role),
        ("sid", "Session (sid)", &c.sid),
    ]
    .map(|(id, label, v)| format!("<dt>{label}</dt><dd id=\"{id}\">{}</dd>", esc(v)))
    .concat();
    let shown = if person.name.is_empty() {
        &person.email
    } else {
        &person.name
    };
    let (name, org) = (esc(shown), esc(&c.org_name));
    Ok(page(&format!(
        "<h1>Signed in as {name}</h1><dl>{facts}</dl>\
         <h2>Users of {org} (tenantd's API, with the access token)</h2>{users}\
         <form method=\"post\" action=\"/logout\"><button>Sign out</button></form>"
    ))
    .into_response())
}

async fn refresh(app: &App, person: &mut Person) -> Result<(), Failure> {
    let token = person.refresh.as_ref();
    let token =
        token.ok_or_else(|| Failure(StatusCode::UNAUTHORIZED, "no refresh token".into()))?;
    let (_, client) = app.provider().await?;
    let tokens = client
        .exchange_refresh_token(token)?
        .request_async(&app.http)
        .await?;
    person.access = tokens.access_token().clone();
    // Refresh tokens rotate: the one just used is spent.
    person.refresh = tokens.refresh_token().cloned();
    person.access_until = expiry(&tokens);
    Ok(())
}

/// The admin API answers admins only; a member's access token gets 403, as their cookie would.
async fn company_users(app: &App, access: &AccessToken) -> String {
    let url = format!("{}/api/admin/users", app.issuer);
    let res = match app.http.get(url).bearer_auth(access.secret()).send().await {
        Ok(res) if res.status() == StatusCode::OK => res,
        Ok(res) => return format!("<p id=\"api\">tenantd's API answered {}.</p>", res.status()),
        Err(e) => return format!("<p id=\"api\">tenantd's API: {}</p>", esc(&e.to_string())),
    };
    let list: Value = res.json().await.unwrap_or_default();
    let row = |u: &Value| {
        let cells = ["name", "email", "role", "status"].map(|k| esc(u[k].as_str().unwrap_or("")));
        format!("<tr><td>{}</td></tr>", cells.join("</td><td>"))
    };
    let rows: String = list["users"]
        .as_array()
        .into_iter()
        .flatten()
        .map(row)
        .collect();
    format!(
        "<table id=\"users\"><tr><th>Name</th><th>Email</th><th>Role</th><th>Status</th></tr>\
         {rows}</table>"
    )
}

async fn login(State(app): State<Arc<App>>) -> Page {
    let (_, client) = app.provider().await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let flow = CoreAuthenticationFlow::AuthorizationCode;
    let (url, state, nonce) = client
        .authorize_url(flow, CsrfToken::new_random, Nonce::new_random)
        .add_scopes(["profile", "email", "offline_access"].map(|s| Scope::new(s.to_owned())))
        .set_pkce_challenge(challenge)
        .url();
    // A new session id for every sign-in: nobody can plant one on the browser beforehand.
    let id = CsrfToken::new_random().into_secret();
    let cookie = set_cookie(&app, &id);
    app.sessions()
        .insert(id, Session::SigningIn(state, nonce, verifier));
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(url.as_str())).into_response())
}

async fn callback(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Page {
    let bad = |m: &str| Failure(StatusCode::BAD_REQUEST, m.to_owned());
    let Some((_, Session::SigningIn(state, nonce, pkce))) = app.take(&headers) else {
        return Err(bad(
            "This sign-in did not start here, or is already over. Sign in again.",
        ));
    };
    if q.get("state") != Some(state.secret()) {
        return Err(bad("The state does not match this sign-in."));
    }
    if let Some(error) = q.get("error") {
        let about = q.get("error_description").map_or("", String::as_str);
        return Err(bad(&format!("tenantd answered {error}: {about}")));
    }
    // RFC 9207: the answer names its issuer, so it cannot come from another provider.
    if q.get("iss") != Some(&app.issuer) {
        return Err(bad("The answer does not come from our issuer."));
    }
    let code = q.get("code").ok_or_else(|| bad("No code in the answer."))?;
    let (_, client) = app.provider().await?;
    // client_secret_basic: the crate's default for a client with a secret.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))?
        .set_pkce_verifier(pkce)
        .request_async(&app.http)
        .await?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| bad("No ID token in the answer."))?;
    // Signature (JWKS), iss, aud, exp and nonce.
    let claims = id_token.claims(&client.id_token_verifier(), &nonce)?;
    let person = Person {
        sub: claims.subject().to_string(),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .unwrap_or_default(),
        email: claims.email().map(|e| e.to_string()).unwrap_or_default(),
        company: claims.additional_claims().clone(),
        id_token: id_token.clone(),
        access: tokens.access_token().clone(),
        refresh: tokens.refresh_token().cloned(),
        access_until: expiry(&tokens),
    };
    let c = &person.company;
    println!(
        "vendor-app: signed in sub={} sid={} role={}",
        person.sub, c.sid, c.role
    );
    let id = CsrfToken::new_random().into_secret();
    let cookie = set_cookie(&app, &id);
    app.sessions()
        .insert(id, Session::SignedIn(Box::new(person)));
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

/// RP-initiated logout: tenantd ends its session too, then sends the browser back to `/`.
async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Page {
    let Some((id, Session::SignedIn(person))) = app.take(&headers) else {
        return Ok(Redirect::to("/").into_response());
    };
    let (meta, _) = app.provider().await?;
    let Some(end) = meta.additional_metadata().end_session_endpoint.clone() else {
        return Ok(Redirect::to("/").into_response());
    };
    let state = CsrfToken::new_random();
    let url = LogoutRequest::from(end)
        .set_id_token_hint(&person.id_token)
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(format!("{}/", app.url))?)
        .set_state(state.clone())
        .http_get_url();
    app.sessions().insert(id, Session::SigningOut(state));
    Ok(Redirect::to(url.as_str()).into_response())
}

/// Back-channel logout: tenantd says a session has ended (signed out elsewhere, blocked, …).
async fn backchannel_logout(State(app): State<Arc<App>>, Form(form): Form<Params>) -> Response {
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    let token = form.get("logout_token").map_or("", String::as_str);
    let verified = match app.provider().await {
        Ok((meta, _)) => verify_logout_token(token, meta.jwks(), &app),
        Err(Failure(_, e)) => Err(e),
    };
    let (sid, sub) = match verified {
        Ok(ids) => ids,
        Err(e) => {
            println!("vendor-app: refused a back-channel logout: {e}");
            let body = serde_json::json!({"error": "invalid_request", "error_description": e});
            return (StatusCode::BAD_REQUEST, no_store, axum::Json(body)).into_response();
        }
    };
    let mut ended = 0;
    app.sessions().retain(|_, s| {
        let Session::SignedIn(p) = s else { return true };
        let hit = sid.as_ref().is_none_or(|sid| *sid == p.company.sid)
            && sub.as_ref().is_none_or(|sub| *sub == p.sub);
        ended += usize::from(hit);
        !hit
    });
    let (sid, sub) = (sid.unwrap_or_default(), sub.unwrap_or_default());
    println!("vendor-app: back-channel logout sid={sid} sub={sub}: {ended} session(s) ended");
    (StatusCode::OK, no_store).into_response()
}

/// Checks a logout token as Back-Channel Logout 1.0 §2.6 says; returns its `sid` and `sub`.
fn verify_logout_token(
    token: &str,
    jwks: &CoreJsonWebKeySet,
    app: &App,
) -> Result<(Option<String>, Option<String>), String> {
    let b64 = |part| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| format!("base64url: {e}"))
    };
    let json = |part| -> Result<Value, String> {
        serde_json::from_slice(&b64(part)?).map_err(|e| format!("JSON: {e}"))
    };
    let [head, body, signature] = token.split('.').collect::<Vec<_>>()[..] else {
        return Err("not a signed JWT".to_owned());
    };
    let header = json(head)?;
    // RS256 only: a token must not choose its own (weaker, or "none") algorithm.
    if header["alg"] != "RS256" || header["typ"] != "logout+jwt" {
        return Err(format!("unexpected header {header}"));
    }
    let (kid, input, signature) = (
        header["kid"].as_str(),
        format!("{head}.{body}"),
        b64(signature)?,
    );
    let rs256 = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
    let verifies = |k: &CoreJsonWebKey| k.verify_signature(&rs256, input.as_bytes(), &signature);
    let signed = jwks
        .keys()
        .iter()
        .any(|k| (kid.is_none() || k.key_id().map(|id| id.as_str()) == kid) && verifies(k).is_ok());
    if !signed {
        return Err("the signature does not verify with the provider's keys".to_owned());
    }
    let c = json(body)?;
    let (now, skew) = (time::OffsetDateTime::now_utc().unix_timestamp(), 60);
    let aud = app.client_id.as_str();
    let audiences = c["aud"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![c["aud"].clone()]);
    let checks = [
        (c["iss"] == app.issuer.as_str(), "iss"),
        (audiences.iter().any(|a| *a == aud), "aud"),
        (c["iat"].as_i64().is_some_and(|t| t <= now + skew), "iat"),
        (c["exp"].as_i64().is_some_and(|t| t > now - skew), "exp"),
        (c["events"][BACKCHANNEL_EVENT].is_object(), "events"),
        (c["sid"].is_string() || c["sub"].is_string(), "sid or sub"),
        (c.get("nonce").is_none(), "no nonce"),
    ];
    if let Some((_, claim)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(format!("claim {claim} is not valid in {c}"));
    }
    let text = |k: &str| c[k].as_str().map(str::to_owned);
    Ok((text("sid"), text("sub")))
}

fn expiry(tokens: &Tokens) -> Instant {
    Instant::now() + tokens.expires_in().unwrap_or(Duration::from_secs(60))
}

fn signed_out(notice: &str) -> Response {
    page(&format!(
        "<h1>Vendor app</h1>{notice}<p><a href=\"/login\">Sign in</a></p>"
    ))
    .into_response()
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Vendor app</title>\
         <style>body{{font:16px system-ui;margin:2rem auto;max-width:46rem}}dt{{font-weight:600}}\
         td,th{{padding:.2rem .8rem;text-align:left}}</style></head><body><main>{body}</main></body></html>"
    ))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    let all = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let mut pairs = all.flat_map(|v| v.split(';')).map(str::trim);
    pairs.find_map(|kv| Some(kv.strip_prefix(COOKIE)?.strip_prefix('=')?.to_owned()))
}

/// HttpOnly: scripts cannot read it. Lax: it comes along on the redirect back from tenantd.
fn set_cookie(app: &App, id: &str) -> String {
    let secure = app.url.starts_with("https://").then_some("; Secure");
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        secure.unwrap_or("")
    )
}
