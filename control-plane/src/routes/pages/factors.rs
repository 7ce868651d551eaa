//! Second factors in the pages: the "Sign-in methods" section of `/account` (list with last
//! use, add an authenticator app with its QR code, add a passkey, remove, recovery codes), the
//! admin's "Reset second factors" of a person, and the company's MFA rule on `/admin`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::store::factors::Kind;
use tenant_runtime::store::policy::MfaRequired;

use super::caller;
use super::forms::{self, Form};
use super::html::{self, Input, e};
use super::mfa::{passkey_form, passkey_script};
use crate::routes::error::ApiError;
use crate::routes::extract::ClientOrigin;
use crate::routes::paths::pages;
use crate::service::admin::TenantAdmin;
use crate::service::auth::Signed;
use crate::service::factors::{self, Confirmation};
use crate::service::sign_in_policy::{self, PolicyChange};
use crate::state::AppState;

/// What the account page says after a factor action (`?done=`).
pub(super) fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "factor_added" => {
            "Your authenticator app was added. You will be asked for a code when you sign in."
        }
        "passkey_added" => "Your passkey was added. You can sign in with it.",
        "factor_removed" => "The sign-in method was removed.",
        "factors_reset" => "The person's second factors were removed and their sessions ended.",
        "mfa_policy_saved" => "The second-factor rule was saved.",
        _ => return None,
    })
}

/// The "Sign-in methods" section of `/account`.
pub(super) async fn methods_section(state: &AppState, s: &Signed, csrf_field: &str) -> String {
    let Ok(list) = factors::list(state, s).await else {
        return String::new();
    };
    let rows: String = list
        .factors
        .iter()
        .map(|f| {
            format!(
                "<tr><td>{name}</td><td>{kind}</td><td class=\"when\">{added}</td><td class=\"when\">{used}</td><td>\
<form method=\"post\" action=\"/account/factors/{id}/remove\" class=\"row-form\">{csrf_field}\
<input type=\"hidden\" name=\"username\" value=\"{email}\" autocomplete=\"username\">\
<div class=\"field\"><label for=\"remove-{id}\">Your password</label><input id=\"remove-{id}\" type=\"password\" name=\"password\" autocomplete=\"current-password\" required></div>\
<button type=\"submit\" class=\"btn btn-small btn-danger\">Remove</button></form></td></tr>\n",
                name = e(&f.name),
                kind = match f.kind {
                    Kind::Totp => "Authenticator app",
                    Kind::Webauthn => "Passkey or security key",
                },
                added = html::timestamp(f.created_at),
                used = f.last_used_at.map(html::timestamp).unwrap_or_else(|| "Never".to_owned()),
                id = e(&f.id),
                email = e(&s.user.email),
            )
        })
        .collect();
    let table = if list.factors.is_empty() {
        "<p class=\"muted\">You sign in with your password only.</p>\n".to_owned()
    } else {
        format!(
            "<div class=\"table-wrap\"><table aria-labelledby=\"methods-heading\">\n\
<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Kind</th><th scope=\"col\">Added</th><th scope=\"col\">Last used</th><th scope=\"col\">Action</th></tr></thead>\n\
<tbody>\n{rows}</tbody></table></div>\n"
        )
    };
    let required = if list.required {
        "<p>Your company requires a second factor: keep at least one.</p>\n"
    } else {
        ""
    };
    let passkey = match factors::passkey_options(state, s).await {
        Ok(mut options) => {
            let ceremony = options
                .as_object_mut()
                .and_then(|o| o.remove("ceremony"))
                .and_then(|c| c.as_str().map(str::to_owned))
                .unwrap_or_default();
            let fields = format!(
                "{csrf_field}{ceremony}{name}",
                ceremony = html::hidden("ceremony", &ceremony),
                name = Input {
                    id: "passkey-name",
                    label: "Name of the passkey",
                    kind: "text",
                    name: "name",
                    value: "",
                    autocomplete: "off",
                    attrs: "maxlength=\"64\" placeholder=\"e.g. Laptop\"",
                    hint: None,
                }
                .html(false),
            );
            format!(
                "<h3>Add a passkey or security key</h3>\n{}{}",
                passkey_form(
                    pages::ACCOUNT_FACTORS_WEBAUTHN,
                    "create",
                    &options,
                    &fields,
                    "Add a passkey"
                ),
                passkey_script()
            )
        }
        Err(err) => {
            tracing::warn!(error = %err, "passkey registration options not made");
            String::new()
        }
    };
    format!(
        "<section class=\"section\" aria-labelledby=\"methods-heading\">\n<h2 id=\"methods-heading\">Sign-in methods</h2>\n\
{required}{table}\
<h3>Add an authenticator app</h3>\n\
<form method=\"post\" action=\"/account/factors/totp\" class=\"row-form\">{csrf_field}\
<div class=\"field\"><label for=\"totp-name\">Name of the app</label><input id=\"totp-name\" type=\"text\" name=\"name\" maxlength=\"64\" placeholder=\"e.g. Phone\"></div>\
<button type=\"submit\" class=\"btn\">Set up an authenticator app</button></form>\n\
{passkey}\
<h3>Recovery codes</h3>\n<p>{left} unused. Each code signs you in once when you cannot use your second factor. New codes replace the old ones.</p>\n\
<form method=\"post\" action=\"/account/recovery-codes\">{csrf_field}<button type=\"submit\" class=\"btn\">Make new recovery codes</button></form>\n\
</section>\n",
        left = list.recovery_codes_left,
    )
}

/// The signed-in admin, or the page to show instead.
async fn gate(state: &AppState, headers: &HeaderMap) -> Result<TenantAdmin, Box<Response>> {
    let s = caller(state, headers).await.map_err(Box::new)?;
    TenantAdmin::new(s).map_err(|e| {
        Box::new(html::error_page(
            state,
            &e.into(),
            ("/account", "Go to your account"),
        ))
    })
}

fn back(state: &AppState, err: &ApiError) -> Response {
    let mut res = html::error_page(state, err, ("/account", "Back to your account"));
    html::with_retry_after(&mut res, err);
    res
}

fn card(state: &AppState, headers: &HeaderMap, s: &Signed, title: &str, main: &str) -> Response {
    let csrf = match forms::for_page(state, headers) {
        Ok(c) => c,
        Err(err) => return back(state, &err),
    };
    let nav = html::nav(s, &csrf.token, "/account");
    html::respond(
        StatusCode::OK,
        std::slice::from_ref(&csrf.cookie),
        html::document(
            &state.config.product_name,
            title,
            html::Width::Narrow,
            &nav,
            main,
        ),
    )
}

fn confirm_form(csrf: &str, id: &str, invalid: bool) -> String {
    format!(
        "<form method=\"post\" action=\"/account/factors/totp/{id}/confirm\">{csrf}\n{code}\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Confirm</button>\n</form>\n",
        id = e(id),
        csrf = html::csrf_field(csrf),
        code = Input {
            id: "code",
            label: "Code from the app",
            kind: "text",
            name: "code",
            value: "",
            autocomplete: "one-time-code",
            attrs: "required autofocus inputmode=\"numeric\" pattern=\"[0-9 ]{6,7}\" maxlength=\"7\"",
            hint: None,
        }
        .html(invalid),
    )
}

/// `POST /account/factors/totp`: a new secret, as a QR code and as text; confirmed next.
pub(super) async fn start_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let enrolment = match factors::start_totp(&state, &s, form.get("name")).await {
        Ok(x) => x,
        Err(err) => return back(&state, &err.into()),
    };
    let csrf = forms::for_page(&state, &headers)
        .map(|c| c.token)
        .unwrap_or_default();
    let main = format!(
        "<h1>Set up an authenticator app</h1>\n\
<p class=\"lead\">Scan this code with your authenticator app, or type the key into it. Then enter the code it shows.</p>\n\
<div class=\"qr\">{qr}</div>\n<p>Key: <code class=\"secret\">{secret}</code></p>\n{form}\
<p class=\"links\"><a href=\"/account\">Cancel</a></p>\n",
        qr = enrolment.qr_svg,
        secret = e(&enrolment.secret),
        form = confirm_form(&csrf, &enrolment.id, false),
    );
    card(&state, &headers, &s, "Set up an authenticator app", &main)
}

/// `POST /account/factors/totp/{id}/confirm`.
pub(super) async fn confirm_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    match factors::confirm_totp(&state, &s, &id, form.text("code"), &origin.ip).await {
        Ok(_) => html::see_other("/account?done=factor_added", &[]),
        Err(factors::FactorError::InvalidCode) => {
            let csrf = forms::for_page(&state, &headers)
                .map(|c| c.token)
                .unwrap_or_default();
            let main = format!(
                "<h1>Set up an authenticator app</h1>\n{}\
<p class=\"lead\">Enter the code your app shows now for this account.</p>\n{}",
                html::error_box("The code is not correct."),
                confirm_form(&csrf, &id, true)
            );
            card(&state, &headers, &s, "Set up an authenticator app", &main)
        }
        Err(err) => back(&state, &err.into()),
    }
}

/// `POST /account/factors/webauthn`: the passkey the browser made.
pub(super) async fn add_passkey(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let credential =
        serde_json::from_str(form.text("credential")).unwrap_or(serde_json::Value::Null);
    match factors::add_passkey(
        &state,
        &s,
        form.text("ceremony"),
        &credential,
        form.get("name"),
    )
    .await
    {
        Ok(_) => html::see_other("/account?done=passkey_added", &[]),
        Err(err) => back(&state, &err.into()),
    }
}

/// `POST /account/factors/{id}/remove`, with the current password.
pub(super) async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let confirmation = Confirmation::Password(form.text("password").to_owned());
    match factors::remove(&state, &s, &id, confirmation, &origin.ip).await {
        Ok(()) => html::see_other("/account?done=factor_removed", &[]),
        Err(err) => back(&state, &err.into()),
    }
}

/// `POST /account/recovery-codes`: a new set, shown this once.
pub(super) async fn recovery_codes(
    State(state): State<AppState>,
    headers: HeaderMap,
    _form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let codes = match factors::new_recovery_codes(&state, &s).await {
        Ok(c) => c,
        Err(err) => return back(&state, &err.into()),
    };
    let list: String = codes
        .iter()
        .map(|c| format!("<li><code>{}</code></li>\n", e(c)))
        .collect();
    let main = format!(
        "<h1>Your recovery codes</h1>\n\
<p class=\"lead\">Save these codes somewhere safe now: they are not shown again. Each signs you in once when you cannot use your second factor. Your earlier codes no longer work.</p>\n\
<ol class=\"codes\">\n{list}</ol>\n<p class=\"links\"><a href=\"/account\">Back to your account</a></p>\n"
    );
    card(&state, &headers, &s, "Your recovery codes", &main)
}

/// The admin's "Second factors" section of a person's page.
pub(super) fn person_section(user_id: &str, csrf_field: &str) -> String {
    format!(
        "<section class=\"section\" aria-labelledby=\"factors-heading\">\n<h2 id=\"factors-heading\">Second factors</h2>\n\
<p>If this person lost their authenticator app or passkey, remove all their second factors and recovery codes. Their sessions end; they sign in with their password and set up a new factor (if your company requires one, right away).</p>\n\
<form method=\"post\" action=\"/admin/users/{uid}/factors/reset\">{csrf_field}<button type=\"submit\" class=\"btn btn-danger\">Reset second factors</button></form>\n</section>\n",
        uid = e(user_id),
    )
}

/// `POST /admin/users/{id}/factors/reset`.
pub(super) async fn admin_reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    _form: Form,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return *res,
    };
    match factors::admin_reset(&state, &admin, &id).await {
        Ok(_) => html::see_other(&format!("/admin/users/{}?done=factors_reset", e(&id)), &[]),
        Err(err) => html::error_page(&state, &ApiError::from(err), ("/admin", "Back to people")),
    }
}

/// The company's second-factor rule, on `/admin`.
pub(super) async fn policy_section(
    state: &AppState,
    admin: &crate::service::admin::TenantAdmin,
    csrf: &str,
) -> String {
    let Ok(p) = sign_in_policy::get(state, admin).await else {
        return String::new();
    };
    let option = |v: MfaRequired, label: &str| {
        format!(
            "<option value=\"{}\"{}>{}</option>",
            v.as_str(),
            if p.mfa_required == v { " selected" } else { "" },
            label
        )
    };
    format!(
        "<section class=\"section\" aria-labelledby=\"mfa-heading\">\n<h2 id=\"mfa-heading\">Second factors</h2>\n\
<form method=\"post\" action=\"/admin/settings/mfa\" class=\"row-form\">{csrf}\n\
<div class=\"field\"><label for=\"mfa-required\">Who must use a second factor</label><select id=\"mfa-required\" name=\"mfa_required\">{off}{admins}{all}</select></div>\n\
<label class=\"check\"><input type=\"checkbox\" name=\"trust_idp_mfa\" value=\"yes\"{trust}> A sign-in through our identity provider counts as a second factor</label>\n\
<button type=\"submit\" class=\"btn btn-small\">Save</button>\n</form>\n</section>\n",
        csrf = html::csrf_field(csrf),
        off = option(MfaRequired::Off, "Nobody (each person may add one)"),
        admins = option(MfaRequired::Admins, "Admins"),
        all = option(MfaRequired::All, "Everyone"),
        trust = if p.trust_idp_mfa { " checked" } else { "" },
    )
}

/// `POST /admin/settings/mfa`.
pub(super) async fn save_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return *res,
    };
    let Some(rule) = MfaRequired::parse(form.text("mfa_required")) else {
        return html::error_page(
            &state,
            &ApiError::bad_request("invalid_mfa_required", "Choose nobody, admins or everyone."),
            ("/admin", "Back"),
        );
    };
    let change = PolicyChange {
        mfa_required: Some(rule),
        trust_idp_mfa: Some(form.get("trust_idp_mfa") == Some("yes")),
        ..PolicyChange::default()
    };
    match sign_in_policy::update(&state, &admin, change).await {
        Ok(_) => html::see_other("/admin?done=mfa_policy_saved", &[]),
        Err(err) => html::error_page(&state, &err.into(), ("/admin", "Back")),
    }
}
