//! `/admin/sso`: a company admin's domains (claim, the TXT record to publish, verify), identity
//! provider connections (with the callback URL to register at the provider), and sign-in
//! policy. Each action is a form POST to `/admin/sso/{action}`; a refused one re-renders the
//! page with the reason.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::Query;
use super::admin::gate;
use super::forms::{self, Form};
use super::html::{self, e};
use crate::routes::error::ApiError;
use crate::service::admin::TenantAdmin;
use crate::service::sign_in_policy::{self, PolicyChange};
use crate::service::sso::connections::{self, ConnectionInput, ConnectionView, JitInput};
use crate::service::sso::domains::{self, TXT_PREFIX};
use crate::service::sso::saml_settings::Attributes;
use crate::state::AppState;

fn flash(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "claimed" => "Domain claimed. Publish the TXT record below, then verify.",
        "verified" => "Domain verified.",
        "domain_removed" => "Domain removed.",
        "created" => "Connection added. Register the callback URL at your identity provider.",
        "saml_created" => {
            "SAML connection added. Give your identity provider our metadata URL shown below."
        }
        "deleted" => "Connection deleted.",
        "policy" => "Sign-in policy saved.",
        _ => return None,
    })
}

pub(super) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let q = Query::parse(raw.as_deref());
    render(
        &state,
        &headers,
        &admin,
        flash(q.get("done")),
        None,
        StatusCode::OK,
    )
    .await
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    admin: &TenantAdmin,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = match forms::for_page(state, headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(state, &err, ("/admin/sso", "Try again")),
    };
    let field = html::csrf_field(&csrf.token);
    let domains = match domains::list(state, admin).await {
        Ok(d) => d,
        Err(err) => return html::error_page(state, &err.into(), ("/admin", "Back")),
    };
    let conns = match connections::list(state, admin).await {
        Ok(c) => c,
        Err(err) => return html::error_page(state, &err.into(), ("/admin", "Back")),
    };
    let policy = match sign_in_policy::get(state, admin).await {
        Ok(p) => p,
        Err(err) => return html::error_page(state, &err.into(), ("/admin", "Back")),
    };
    let domain_rows: String = domains
        .iter()
        .map(|d| {
            let action = if d.status == "pending" {
                format!(
                    "<form method=\"post\" action=\"/admin/sso/verify\" class=\"inline\">{field}{h}<button type=\"submit\" class=\"btn btn-small\">Verify</button></form> ",
                    h = html::hidden("domain", &d.domain)
                )
            } else {
                String::new()
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{action}<form method=\"post\" action=\"/admin/sso/remove-domain\" class=\"inline\">{field}{h}<button type=\"submit\" class=\"btn btn-small btn-link\">Remove</button></form></td></tr>\n",
                e(&d.domain),
                e(d.status),
                e(&d.txt_name),
                e(d.txt_value.as_deref().unwrap_or("")),
                h = html::hidden("domain", &d.domain),
            )
        })
        .collect();
    let conn_rows: String = conns
        .iter()
        .map(|c| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/admin/sso/test\" class=\"inline\">{field}{h}<button type=\"submit\" class=\"btn btn-small\">Test</button></form> <form method=\"post\" action=\"/admin/sso/delete\" class=\"inline\">{field}{h}<button type=\"submit\" class=\"btn btn-small btn-link\">Delete</button></form></td></tr>\n",
                e(&c.name),
                e(&c.issuer),
                if c.kind == "saml" { "SAML".to_owned() } else { e(&c.client_id) },
                e(&c.domains.join(", ")),
                if c.jit.enabled { e(c.jit.role.as_str()) } else { "off".into() },
                h = html::hidden("id", &c.id),
            )
        })
        .collect();
    let saml_details: String = conns.iter().filter_map(saml_details).collect();
    let check = |on: bool| if on { " checked" } else { "" };
    let callback = connections::callback_url(state);
    let main = format!(
        "<h1>Sign-in</h1>\n{notice}{error}\
<section class=\"section\" aria-labelledby=\"domains-heading\">\n<h2 id=\"domains-heading\">Domains</h2>\n\
<p class=\"muted\">Prove a domain is yours by publishing a DNS TXT record named <code>{TXT_PREFIX}.&lt;domain&gt;</code> with the value shown, then verify it. People with addresses in your verified domains sign in to your company.</p>\n\
<div class=\"table-wrap\"><table aria-labelledby=\"domains-heading\">\n<thead><tr><th scope=\"col\">Domain</th><th scope=\"col\">Status</th><th scope=\"col\">TXT name</th><th scope=\"col\">TXT value</th><th scope=\"col\">Action</th></tr></thead>\n<tbody>\n{domain_rows}</tbody></table></div>\n\
<form method=\"post\" action=\"/admin/sso/claim\" class=\"row-form\">{field}\n\
<label for=\"claim-domain\">Domain</label> <input id=\"claim-domain\" type=\"text\" name=\"domain\" required maxlength=\"253\" placeholder=\"example.com\">\n\
<button type=\"submit\" class=\"btn btn-small\">Claim domain</button>\n</form>\n</section>\n\
<section class=\"section\" aria-labelledby=\"connections-heading\">\n<h2 id=\"connections-heading\">Identity providers</h2>\n\
<p class=\"muted\">Register this callback (redirect) URL at your identity provider: <code id=\"callback-url\">{callback}</code></p>\n\
<div class=\"table-wrap\"><table aria-labelledby=\"connections-heading\">\n<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Issuer</th><th scope=\"col\">Client ID</th><th scope=\"col\">Domains</th><th scope=\"col\">New people</th><th scope=\"col\">Action</th></tr></thead>\n<tbody>\n{conn_rows}</tbody></table></div>\n\
<form method=\"post\" action=\"/admin/sso/create\" class=\"stack-form\">{field}\n\
<div class=\"field\"><label for=\"c-name\">Name</label><input id=\"c-name\" type=\"text\" name=\"name\" required maxlength=\"100\" placeholder=\"Okta\"></div>\n\
<div class=\"field\"><label for=\"c-issuer\">Issuer URL</label><input id=\"c-issuer\" name=\"issuer\" type=\"text\" inputmode=\"url\" required maxlength=\"500\" placeholder=\"https://login.example.com\"></div>\n\
<div class=\"field\"><label for=\"c-client-id\">Client ID</label><input id=\"c-client-id\" type=\"text\" name=\"client_id\" required maxlength=\"255\"></div>\n\
<div class=\"field\"><label for=\"c-secret\">Client secret</label><input id=\"c-secret\" name=\"client_secret\" type=\"password\" required maxlength=\"1024\" autocomplete=\"off\"></div>\n\
<div class=\"field\"><label for=\"c-domains\">Domains (verified, comma-separated)</label><input id=\"c-domains\" type=\"text\" name=\"domains\" maxlength=\"2000\"></div>\n\
<label class=\"check\"><input type=\"checkbox\" name=\"jit\" value=\"yes\"> Create people on their first sign-in, as</label>\n\
<select name=\"jit_role\" aria-label=\"Role of people created\"><option value=\"member\">member</option><option value=\"admin\">admin</option></select>\n\
<button type=\"submit\" class=\"btn btn-primary btn-small\">Add identity provider</button>\n</form>\n</section>\n\
<section class=\"section\" aria-labelledby=\"saml-heading\">\n<h2 id=\"saml-heading\">SAML identity providers</h2>\n\
<p class=\"muted\">For providers that sign in over SAML 2.0 (ADFS, Entra ID, Okta, Shibboleth…): give their metadata here, then give them ours (the metadata URL shown for the connection; it names our entity ID and Assertion Consumer Service).</p>\n\
{saml_details}\
<form method=\"post\" action=\"/admin/sso/create-saml\" class=\"stack-form\">{field}\n\
<div class=\"field\"><label for=\"s-name\">Name</label><input id=\"s-name\" type=\"text\" name=\"name\" required maxlength=\"100\" placeholder=\"ADFS\"></div>\n\
<div class=\"field\"><label for=\"s-url\">IdP metadata URL</label><input id=\"s-url\" name=\"idp_metadata_url\" type=\"text\" inputmode=\"url\" maxlength=\"2000\" placeholder=\"https://idp.example.com/metadata\"></div>\n\
<div class=\"field\"><label for=\"s-xml\">or the IdP metadata document</label><textarea id=\"s-xml\" name=\"idp_metadata_xml\" rows=\"4\" maxlength=\"60000\"></textarea></div>\n\
<div class=\"field\"><label for=\"s-domains\">Domains (verified, comma-separated)</label><input id=\"s-domains\" type=\"text\" name=\"domains\" maxlength=\"2000\"></div>\n\
<div class=\"field\"><label for=\"s-email-attr\">Email attribute (if not a common one)</label><input id=\"s-email-attr\" type=\"text\" name=\"email_attribute\" maxlength=\"255\"></div>\n\
<div class=\"field\"><label for=\"s-name-attr\">Name attribute (if not a common one)</label><input id=\"s-name-attr\" type=\"text\" name=\"name_attribute\" maxlength=\"255\"></div>\n\
<label class=\"check\"><input type=\"checkbox\" name=\"idp_initiated\" value=\"yes\"> Accept sign-ins started at the identity provider (less safe: no request of ours to match)</label>\n\
<label class=\"check\"><input type=\"checkbox\" name=\"sign_requests\" value=\"yes\"> Sign our sign-in requests (for providers that require it; they need our metadata's certificate)</label>\n\
<label class=\"check\"><input type=\"checkbox\" name=\"jit\" value=\"yes\"> Create people on their first sign-in, as</label>\n\
<select name=\"jit_role\" aria-label=\"Role of people created by SAML\"><option value=\"member\">member</option><option value=\"admin\">admin</option></select>\n\
<button type=\"submit\" class=\"btn btn-primary btn-small\" id=\"add-saml\">Add SAML identity provider</button>\n</form>\n</section>\n\
<section class=\"section\" aria-labelledby=\"policy-heading\">\n<h2 id=\"policy-heading\">Policy</h2>\n\
<form method=\"post\" action=\"/admin/sso/policy\" class=\"stack-form\">{field}\n\
<label class=\"check\"><input type=\"checkbox\" name=\"sso_required\" value=\"yes\"{req}> Require sign-in through our identity provider (no passwords)</label>\n\
<label class=\"check\"><input type=\"checkbox\" name=\"sso_required_except_admins\" value=\"yes\"{exc}> Except administrators (break-glass: they keep their password)</label>\n\
<label class=\"check\"><input type=\"checkbox\" name=\"social_login\" value=\"yes\"{soc}> Allow social sign-in for our people</label>\n\
<button type=\"submit\" class=\"btn btn-small\">Save policy</button>\n</form>\n</section>\n",
        notice = notice.map(html::notice_box).unwrap_or_default(),
        error = html::maybe_error(error),
        callback = e(&callback),
        req = check(policy.sso_required),
        exc = check(policy.sso_required_except_admins),
        soc = check(policy.social_login),
    );
    let nav = html::nav(admin.signed(), &csrf.token, "/admin/sso");
    let doc = html::document(
        &state.config.product_name,
        "Sign-in",
        html::Width::Wide,
        &nav,
        &main,
    );
    html::respond(status, std::slice::from_ref(&csrf.cookie), doc)
}

pub(super) async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(action): Path<String>,
    form: Form,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let result: Result<&str, ApiError> = match action.as_str() {
        "claim" => domains::claim(&state, &admin, form.text("domain"))
            .await
            .map(|_| "claimed")
            .map_err(Into::into),
        "verify" => domains::verify(&state, &admin, form.text("domain"))
            .await
            .map(|_| "verified")
            .map_err(Into::into),
        "remove-domain" => domains::remove(&state, &admin, form.text("domain"))
            .await
            .map(|_| "domain_removed")
            .map_err(Into::into),
        "create" => {
            let input = ConnectionInput {
                kind: Some("oidc".into()),
                name: Some(form.text("name").to_owned()),
                issuer: Some(form.text("issuer").to_owned()),
                client_id: Some(form.text("client_id").to_owned()),
                client_secret: Some(form.text("client_secret").to_owned()),
                domains: Some(domain_list(&form)),
                jit: Some(jit(&form)),
                ..ConnectionInput::default()
            };
            connections::create(&state, &admin, input)
                .await
                .map(|_| "created")
                .map_err(Into::into)
        }
        "create-saml" => {
            let given = |k: &str| Some(form.text(k).trim()).filter(|v| !v.is_empty());
            let input = ConnectionInput {
                kind: Some("saml".into()),
                name: Some(form.text("name").to_owned()),
                idp_metadata_url: given("idp_metadata_url").map(str::to_owned),
                idp_metadata_xml: given("idp_metadata_xml").map(str::to_owned),
                domains: Some(domain_list(&form)),
                jit: Some(jit(&form)),
                attributes: Some(Attributes {
                    email: given("email_attribute").map(str::to_owned),
                    name: given("name_attribute").map(str::to_owned),
                }),
                idp_initiated: Some(form.get("idp_initiated") == Some("yes")),
                sign_requests: Some(form.get("sign_requests") == Some("yes")),
                ..ConnectionInput::default()
            };
            connections::create(&state, &admin, input)
                .await
                .map(|_| "saml_created")
                .map_err(Into::into)
        }
        "delete" => connections::delete(&state, &admin, form.text("id"))
            .await
            .map(|_| "deleted")
            .map_err(Into::into),
        "test" => {
            return match connections::test(&state, &admin, form.text("id")).await {
                Ok(r) if r.ok => {
                    let msg = match r.token_endpoint {
                        Some(token) => format!(
                            "The identity provider answered: {} signing key(s), token endpoint {token}.",
                            r.signing_keys.unwrap_or(0),
                        ),
                        None => format!(
                            "The SAML metadata is valid: {} signing certificate(s), sign-in URL {}.",
                            r.signing_keys.unwrap_or(0),
                            r.authorization_endpoint.unwrap_or_default()
                        ),
                    };
                    render(&state, &headers, &admin, Some(&msg), None, StatusCode::OK).await
                }
                Ok(r) => {
                    let msg = format!("The test failed: {}", r.error.unwrap_or_default());
                    render(&state, &headers, &admin, None, Some(&msg), StatusCode::OK).await
                }
                Err(err) => {
                    let err = ApiError::from(err);
                    render(
                        &state,
                        &headers,
                        &admin,
                        None,
                        Some(&err.message),
                        err.status,
                    )
                    .await
                }
            };
        }
        "policy" => {
            let on = |k: &str| Some(form.get(k) == Some("yes"));
            let change = PolicyChange {
                sso_required: on("sso_required"),
                sso_required_except_admins: on("sso_required_except_admins"),
                social_login: on("social_login"),
                ..PolicyChange::default()
            };
            sign_in_policy::update(&state, &admin, change)
                .await
                .map(|_| "policy")
                .map_err(Into::into)
        }
        _ => return html::not_found(&state.config.product_name),
    };
    match result {
        Ok(done) => html::see_other(&format!("/admin/sso?done={done}"), &[]),
        Err(err) => {
            render(
                &state,
                &headers,
                &admin,
                None,
                Some(&err.message),
                err.status,
            )
            .await
        }
    }
}

fn domain_list(form: &Form) -> Vec<String> {
    form.text("domains")
        .split([',', ' '])
        .filter(|d| !d.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn jit(form: &Form) -> JitInput {
    JitInput {
        enabled: form.get("jit") == Some("yes"),
        role: form.get("jit_role").map(str::to_owned),
    }
}

/// What to give the IdP of a SAML connection, and what we read from its metadata.
fn saml_details(c: &ConnectionView) -> Option<String> {
    let s = c.saml.as_ref()?;
    Some(format!(
        "<dl class=\"details saml-connection\" data-connection=\"{id}\">\n\
<dt>{name}: our metadata URL</dt><dd><code class=\"sp-metadata-url\">{md}</code></dd>\n\
<dt>Our entity ID</dt><dd><code>{entity}</code></dd>\n\
<dt>Assertion Consumer Service (HTTP-POST)</dt><dd><code class=\"acs-url\">{acs}</code></dd>\n\
<dt>IdP sign-in URL</dt><dd><code>{sso}</code></dd>\n\
<dt>IdP signing certificates (SHA-256)</dt><dd>{certs}</dd>\n\
<dt>Sign-ins started at the IdP</dt><dd>{idp_init}</dd>\n\
<dt>Our sign-in requests</dt><dd>{signed}</dd>\n\
</dl>\n",
        id = e(&c.id),
        name = e(&c.name),
        md = e(&s.sp_metadata_url),
        entity = e(&s.sp_entity_id),
        acs = e(&s.acs_url),
        sso = e(&s.idp_sso_url),
        certs = s
            .idp_certificates
            .iter()
            .map(|f| format!("<code>{}</code>", e(f)))
            .collect::<Vec<_>>()
            .join(" "),
        idp_init = if s.idp_initiated {
            "accepted"
        } else {
            "refused"
        },
        signed = if s.sign_requests {
            "signed (RSA-SHA256)"
        } else {
            "not signed"
        },
    ))
}
