//! The second step of a sign-in in the browser: after a right password (or an accepted
//! invitation), `/login/mfa` asks for a code, a passkey or a recovery code — or, when the
//! company requires a second factor the person has none of, leads them through setting up an
//! authenticator app first. `/login/passkey` signs in with a passkey alone. An app's pending
//! authorization request travels along and is resumed after, as after a password.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::forms::{self, Csrf, Form};
use super::html::{self, Input, e};
use super::{MAX_FIELD, destination, safe_next};
use crate::routes::error::ApiError;
use crate::routes::extract::{ClientOrigin, FormTargets, KnownRoute, sign_in_cookies};
use crate::routes::paths::pages;
use crate::service::identity::{AuthError, EmailRoute, SignedIn};
use crate::service::mfa::{self, Answer};
use crate::service::oidc::authorize;
use crate::service::{passkeys, signin};
use crate::state::AppState;

/// The `<script>` of pages with a passkey form: our file, nothing inline.
pub(super) fn passkey_script() -> String {
    format!(
        "<script src=\"{}\" defer></script>\n",
        super::assets::passkey_js_href()
    )
}

/// A form the passkey script completes: `kind` is `create` or `get`; `fields` are its other
/// (trusted) inputs.
pub(super) fn passkey_form(
    action: &str,
    kind: &str,
    options: &Value,
    fields: &str,
    button: &str,
) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\" data-webauthn=\"{kind}\" data-options=\"{options}\">\n\
{fields}<input type=\"hidden\" name=\"credential\" value=\"\">\n\
<p class=\"alert alert-error\" role=\"alert\" data-webauthn-error hidden></p>\n\
<button type=\"submit\" class=\"btn btn-block\">{button}</button>\n</form>\n",
        action = e(action),
        kind = e(kind),
        options = e(&options.to_string()),
        button = e(button),
    )
}

/// Where the person was going: `next` and an app's `pending` request, carried along.
#[derive(Default, Clone, Copy)]
struct Onward<'a> {
    next: Option<&'static str>,
    pending: Option<&'a str>,
}

impl Onward<'_> {
    fn fields(&self) -> String {
        let next = self
            .next
            .map(|n| html::hidden("next", n))
            .unwrap_or_default();
        let pending = self
            .pending
            .map(|p| html::hidden("pending", p))
            .unwrap_or_default();
        format!("{next}{pending}")
    }
}

/// After a first step: the second step's page when the answer was that one is needed.
pub(super) async fn after_first_step(
    state: &AppState,
    headers: &HeaderMap,
    err: &ApiError,
    next: Option<&'static str>,
    pending: Option<&str>,
) -> Option<Response> {
    let token = err.extra.as_ref()?.get("mfa_token")?.as_str()?;
    let onward = Onward { next, pending };
    match err.code {
        "mfa_required" => {
            let methods: Vec<String> = err
                .extra
                .as_ref()
                .and_then(|x| x.get("methods"))
                .and_then(|m| serde_json::from_value(m.clone()).ok())
                .unwrap_or_default();
            Some(verify_page(state, headers, token, &methods, onward, None).await)
        }
        "mfa_enrollment_required" => Some(enrol_page(state, headers, token, onward).await),
        _ => None,
    }
}

fn csrf(state: &AppState, headers: &HeaderMap) -> Result<Csrf, Box<Response>> {
    forms::for_page(state, headers)
        .map_err(|err| Box::new(html::error_page(state, &err, ("/login", "Sign in again"))))
}

fn code_input(autofocus: bool, invalid: bool) -> String {
    Input {
        id: "code",
        label: "Code from your authenticator app",
        kind: "text",
        name: "code",
        value: "",
        autocomplete: "one-time-code",
        attrs: if autofocus {
            "required autofocus inputmode=\"numeric\" pattern=\"[0-9 ]{6,7}\" maxlength=\"7\""
        } else {
            "required inputmode=\"numeric\" pattern=\"[0-9 ]{6,7}\" maxlength=\"7\""
        },
        hint: None,
    }
    .html(invalid)
}

fn page(
    state: &AppState,
    csrf: &Csrf,
    status: StatusCode,
    title: &str,
    main: &str,
    pending: Option<&str>,
) -> Response {
    let mut res = html::respond(
        status,
        std::slice::from_ref(&csrf.cookie),
        html::document(
            &state.config.product_name,
            title,
            html::Width::Narrow,
            "",
            main,
        ),
    );
    if let Some(t) = pending
        .and_then(|p| authorize::unseal(state, p))
        .and_then(|r| FormTargets::of(&r.redirect_uri))
    {
        res.extensions_mut().insert(t);
    }
    res
}

/// The second step: each way the person has, one form each.
async fn verify_page(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    methods: &[String],
    onward: Onward<'_>,
    error: Option<&ApiError>,
) -> Response {
    let csrf = match csrf(state, headers) {
        Ok(c) => c,
        Err(res) => return *res,
    };
    let has = |m: &str| methods.iter().any(|x| x == m);
    let common = format!(
        "{csrf}{token}{methods}{onward}",
        csrf = html::csrf_field(&csrf.token),
        token = html::hidden("mfa_token", token),
        methods = html::hidden("methods", &methods.join(",")),
        onward = onward.fields(),
    );
    let mut forms = String::new();
    if has("webauthn")
        && let Ok(options) = mfa::passkey_options(state, token).await
    {
        forms.push_str(&passkey_form(
            pages::LOGIN_MFA,
            "get",
            &options,
            &common,
            "Use your passkey or security key",
        ));
    }
    if has("totp") {
        forms.push_str(&format!(
            "<form method=\"post\" action=\"{action}\">\n{common}{code}\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Continue</button>\n</form>\n",
            action = pages::LOGIN_MFA,
            code = code_input(true, error.is_some()),
        ));
    }
    if has("recovery_code") {
        forms.push_str(&format!(
            "<details>\n<summary>Use a recovery code</summary>\n\
<form method=\"post\" action=\"{action}\">\n{common}{input}\
<button type=\"submit\" class=\"btn btn-block\">Use recovery code</button>\n</form>\n</details>\n",
            action = pages::LOGIN_MFA,
            input = Input {
                id: "recovery_code",
                label: "Recovery code",
                kind: "text",
                name: "recovery_code",
                value: "",
                autocomplete: "off",
                attrs: "required spellcheck=\"false\" autocapitalize=\"none\" maxlength=\"40\"",
                hint: Some("One of the codes you saved when you set up your second factor. Each works once."),
            }
            .html(false),
        ));
    }
    let main = format!(
        "<h1>Confirm it is you</h1>\n\
<p class=\"lead\">Your password was right. Now use your second factor.</p>\n\
{error}{forms}\
<p class=\"links\"><a href=\"/login\">Start again</a></p>\n{script}",
        error = html::maybe_error(error.map(|e| e.message.as_ref())),
        script = if has("webauthn") {
            passkey_script()
        } else {
            String::new()
        },
    );
    let status = error.map_or(StatusCode::OK, |e| e.status);
    let mut res = page(
        state,
        &csrf,
        status,
        "Confirm it is you",
        &main,
        onward.pending,
    );
    if let Some(err) = error {
        html::with_retry_after(&mut res, err);
    }
    res
}

/// Setting up an authenticator app because the company requires a second factor.
async fn enrol_page(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    onward: Onward<'_>,
) -> Response {
    let csrf = match csrf(state, headers) {
        Ok(c) => c,
        Err(res) => return *res,
    };
    let enrolment = match mfa::enrol_totp(state, token).await {
        Ok(x) => x,
        Err(err) => return html::error_page(state, &err.into(), ("/login", "Sign in again")),
    };
    let main = format!(
        "<h1>Set up a second factor</h1>\n\
<p class=\"lead\">Your company requires a second factor. Scan this code with an authenticator app (or type the key into it), then enter the code the app shows.</p>\n\
<div class=\"qr\">{qr}</div>\n\
<p>Key: <code class=\"secret\">{secret}</code></p>\n\
<form method=\"post\" action=\"{action}\">\n{csrf}{token}{step}{onward}{code}\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Confirm and sign in</button>\n</form>\n\
<p class=\"links\"><a href=\"/login\">Start again</a></p>\n",
        qr = enrolment.qr_svg,
        secret = e(&enrolment.secret),
        action = pages::LOGIN_MFA,
        csrf = html::csrf_field(&csrf.token),
        token = html::hidden("mfa_token", token),
        step = html::hidden("step", "enrol"),
        onward = onward.fields(),
        code = code_input(true, false),
    );
    page(
        state,
        &csrf,
        StatusCode::OK,
        "Set up a second factor",
        &main,
        onward.pending,
    )
}

/// A wrong code while enrolling: the code field again (the app already has the key).
fn enrol_again(
    state: &AppState,
    csrf: &Csrf,
    token: &str,
    onward: Onward<'_>,
    err: &ApiError,
) -> Response {
    let main = format!(
        "<h1>Set up a second factor</h1>\n{error}\
<p class=\"lead\">Enter the code your authenticator app shows now for this account.</p>\n\
<form method=\"post\" action=\"{action}\">\n{csrf}{token}{step}{onward}{code}\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Confirm and sign in</button>\n</form>\n\
<p class=\"links\"><a href=\"/login\">Start again</a></p>\n",
        error = html::error_box(&err.message),
        action = pages::LOGIN_MFA,
        csrf = html::csrf_field(&csrf.token),
        token = html::hidden("mfa_token", token),
        step = html::hidden("step", "enrol"),
        onward = onward.fields(),
        code = code_input(true, true),
    );
    let mut res = page(
        state,
        csrf,
        err.status,
        "Set up a second factor",
        &main,
        onward.pending,
    );
    html::with_retry_after(&mut res, err);
    res
}

/// Signed in: the cookies, then the app's request or the person's home.
fn signed_in(state: &AppState, done: &SignedIn, onward: Onward<'_>) -> Response {
    let mut cookies = sign_in_cookies(state, done);
    if let Ok(fresh) = forms::fresh(state) {
        cookies.push(fresh.cookie);
    }
    match onward
        .pending
        .filter(|p| authorize::unseal(state, p).is_some())
    {
        Some(p) => html::see_other(&format!("{}?pending={p}", pages::OIDC_AUTHORIZE), &cookies),
        None => {
            let admin = done.view.user.role == tenant_runtime::store::users::Role::Admin;
            html::see_other(destination(admin, onward.next), &cookies)
        }
    }
}

fn onward_of(form: &Form) -> Onward<'_> {
    Onward {
        next: safe_next(form.get("next")),
        pending: form.get("pending").filter(|p| p.len() <= 8 * MAX_FIELD),
    }
}

/// `POST /login/mfa`: the second step's answer (or the first code of a factor being set up).
pub(super) async fn second_step(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    form: Form,
) -> Response {
    let token = form.text("mfa_token");
    let onward = onward_of(&form);
    let answer = match (
        form.get("code"),
        form.get("recovery_code"),
        form.get("credential"),
    ) {
        (Some(c), _, _) => Answer::Code(c.to_owned()),
        (None, Some(r), _) => Answer::RecoveryCode(r.to_owned()),
        (None, None, Some(w)) => match serde_json::from_str(w) {
            Ok(v) => Answer::Passkey(v),
            Err(_) => Answer::Passkey(Value::Null),
        },
        _ => Answer::Code(String::new()),
    };
    if token.len() > MAX_FIELD {
        return html::error_page(
            &state,
            &AuthError::InvalidMfaToken.into(),
            ("/login", "Sign in again"),
        );
    }
    let result = signin::second_step(&state, token, answer, origin)
        .await
        .and_then(|f| f.signed_in());
    match result {
        Ok((cookie, view)) => signed_in(
            &state,
            &SignedIn {
                cookie,
                view,
                device: None,
            },
            onward,
        ),
        Err(err @ (AuthError::InvalidCode | AuthError::Throttled { .. })) => {
            let err = ApiError::from(err);
            if form.get("step") == Some("enrol") {
                return match self::csrf(&state, &headers) {
                    Ok(c) => enrol_again(&state, &c, token, onward, &err),
                    Err(res) => *res,
                };
            }
            let methods: Vec<String> = form
                .text("methods")
                .split(',')
                .filter(|m| ["totp", "webauthn", "recovery_code"].contains(m))
                .map(str::to_owned)
                .collect();
            verify_page(&state, &headers, token, &methods, onward, Some(&err)).await
        }
        Err(err) => html::error_page(&state, &err.into(), ("/login", "Sign in again")),
    }
}

/// `POST /login/passkey`: from the password step, the passkey page for the address typed;
/// from that page, the passkey's answer, which signs in alone.
pub(super) async fn passkey_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    KnownRoute(known): KnownRoute,
    form: Form,
) -> Response {
    let onward = onward_of(&form);
    let Some(credential) = form.get("credential") else {
        return passkey_page(&state, &headers, form.text("email"), known.as_ref(), onward).await;
    };
    let credential: Value = serde_json::from_str(credential).unwrap_or(Value::Null);
    let ticket = form.text("passkey_token");
    if ticket.len() > 4 * MAX_FIELD {
        return html::error_page(
            &state,
            &AuthError::InvalidCredentials.into(),
            ("/login", "Try again"),
        );
    }
    match passkeys::sign_in(&state, ticket, &credential, origin).await {
        Ok(done) => signed_in(&state, &done, onward),
        Err(AuthError::InvalidCredentials) => html::error_page(
            &state,
            &ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "The passkey was not accepted. Sign in with your password, or try again.",
            ),
            ("/login", "Sign in again"),
        ),
        Err(err) => html::error_page(&state, &err.into(), ("/login", "Sign in again")),
    }
}

/// The passkey page: the same for every address, whether or not it has an account or a
/// passkey (the options name no credential).
async fn passkey_page(
    state: &AppState,
    headers: &HeaderMap,
    email: &str,
    known: Option<&EmailRoute>,
    onward: Onward<'_>,
) -> Response {
    let csrf = match csrf(state, headers) {
        Ok(c) => c,
        Err(res) => return *res,
    };
    let email = if email.len() > MAX_FIELD { "" } else { email };
    let options = match passkeys::options(state, email, known).await {
        Ok(o) => o,
        Err(err) => return html::error_page(state, &err.into(), ("/login", "Try again")),
    };
    let ticket = options
        .get("passkey_token")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let fields = format!(
        "{csrf}{ticket}{onward}",
        csrf = html::csrf_field(&csrf.token),
        ticket = html::hidden("passkey_token", &ticket),
        onward = onward.fields(),
    );
    let main = format!(
        "<h1>Sign in with a passkey</h1>\n\
<p class=\"lead\">Use the passkey or security key you set up for <strong>{email}</strong>.</p>\n\
{form}\
<p class=\"links\"><a href=\"/login\">Use your password instead</a></p>\n{script}",
        email = e(email),
        form = passkey_form(
            pages::LOGIN_PASSKEY,
            "get",
            &options,
            &fields,
            "Use a passkey"
        ),
        script = passkey_script(),
    );
    page(
        state,
        &csrf,
        StatusCode::OK,
        "Sign in with a passkey",
        &main,
        onward.pending,
    )
}
