//! The page layout and the pieces every page is made of. Every user-controlled string goes
//! through [`e`]; there is no inline script or style anywhere (the CSP forbids both).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tenant_runtime::store::users::Role;

use super::assets;
use crate::mail::escape;
use crate::routes::error::{ApiError, PlacedElsewhere};
use crate::service::auth::Signed;
use crate::state::AppState;

/// HTML-escapes text for element content and double-quoted attributes.
pub(super) fn e(s: &str) -> String {
    escape(s)
}

/// Which kind of page: a narrow card for forms, a wide one for the admin table.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Width {
    Narrow,
    Wide,
}

/// A whole document. `nav` and `main` are trusted HTML built from escaped parts.
pub(super) fn document(product: &str, title: &str, width: Width, nav: &str, main: &str) -> String {
    let class = match width {
        Width::Narrow => "card",
        Width::Wide => "card card-wide",
    };
    format!(
        "<!DOCTYPE html>\n\
<html lang=\"en\">\n\
<head>\n\
<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"referrer\" content=\"no-referrer\">\n\
<title>{full_title}</title>\n\
<link rel=\"stylesheet\" href=\"{css}\">\n\
<link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\n\
</head>\n\
<body>\n\
<header class=\"topbar\">\n\
<a class=\"brand\" href=\"/\"><img src=\"{icon}\" alt=\"\" width=\"28\" height=\"28\"><span>{brand}</span></a>\n\
{nav}\
</header>\n\
<main class=\"{class}\">\n\
{main}\
</main>\n\
</body>\n\
</html>\n",
        full_title = if product.is_empty() {
            e(title)
        } else {
            format!("{} · {}", e(title), e(product))
        },
        brand = if product.is_empty() {
            "Home".to_owned()
        } else {
            e(product)
        },
        css = assets::css_href(),
        icon = crate::routes::paths::pages::ICON,
    )
}

/// The navigation of a signed-in user: their pages and a sign-out button.
pub(super) fn nav(signed: &Signed, csrf: &str, current: &str) -> String {
    let link = |href: &str, text: &str| {
        if href == current {
            format!("<a href=\"{href}\" aria-current=\"page\">{text}</a>")
        } else {
            format!("<a href=\"{href}\">{text}</a>")
        }
    };
    let users = if signed.user.role == Role::Admin {
        format!(
            "{}{}{}",
            link("/admin", "People"),
            link("/admin/audit", "Audit log"),
            link("/admin/sso", "Sign-in")
        )
    } else {
        String::new()
    };
    format!(
        "<nav class=\"nav\" aria-label=\"Main\">\n\
<span class=\"company\">{company}</span>\n\
{users}{account}\n\
<form method=\"post\" action=\"/logout\" class=\"inline\">{csrf}<button type=\"submit\" class=\"btn btn-link\">Sign out</button></form>\n\
</nav>\n",
        company = e(&signed.tenant.name),
        account = link("/account", "Account"),
        csrf = csrf_field(csrf),
    )
}

pub(super) fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        e(token)
    )
}

pub(super) fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        e(name),
        e(value)
    )
}

/// An error box, announced to screen readers.
pub(super) fn error_box(message: &str) -> String {
    format!(
        "<div class=\"alert alert-error\" role=\"alert\" id=\"form-error\">{}</div>\n",
        e(message)
    )
}

/// An information box (e.g. after an action succeeded).
pub(super) fn notice_box(message: &str) -> String {
    format!(
        "<div class=\"alert alert-ok\" role=\"status\">{}</div>\n",
        e(message)
    )
}

/// The error box if there is an error, nothing otherwise.
pub(super) fn maybe_error(message: Option<&str>) -> String {
    message.map(error_box).unwrap_or_default()
}

/// A labelled input. `attrs` is trusted (fixed strings such as `required autofocus`).
pub(super) struct Input<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub value: &'a str,
    pub autocomplete: &'a str,
    pub attrs: &'a str,
    pub hint: Option<&'a str>,
}

impl Input<'_> {
    pub(super) fn html(&self, invalid: bool) -> String {
        let (hint, described) = match self.hint {
            Some(h) => (
                format!("<p class=\"hint\" id=\"{}-hint\">{}</p>", e(self.id), e(h)),
                format!(" aria-describedby=\"{}-hint\"", e(self.id)),
            ),
            None => (String::new(), String::new()),
        };
        let invalid = if invalid {
            " aria-invalid=\"true\""
        } else {
            ""
        };
        format!(
            "<div class=\"field\">\n\
<label for=\"{id}\">{label}</label>\n\
<input id=\"{id}\" type=\"{kind}\" name=\"{name}\" value=\"{value}\" autocomplete=\"{ac}\"{described}{invalid} {attrs}>\n\
{hint}</div>\n",
            id = e(self.id),
            label = e(self.label),
            kind = e(self.kind),
            name = e(self.name),
            value = e(self.value),
            ac = e(self.autocomplete),
            attrs = self.attrs,
        )
    }
}

/// The "choose a password" and "repeat it" fields of a form, with the policy's hint.
pub(super) fn new_password_fields(
    label: &str,
    again_label: &str,
    autofocus: bool,
    invalid: bool,
) -> String {
    let hint = format!(
        "At least {} characters. A few unrelated words make a strong password that is easy to remember.",
        crate::service::policy::MIN_LEN
    );
    let password = Input {
        id: "password",
        label,
        kind: "password",
        name: "password",
        value: "",
        autocomplete: "new-password",
        attrs: if autofocus {
            "required autofocus minlength=\"12\" maxlength=\"256\""
        } else {
            "required minlength=\"12\" maxlength=\"256\""
        },
        hint: Some(&hint),
    };
    let again = Input {
        id: "password2",
        label: again_label,
        kind: "password",
        name: "password2",
        value: "",
        autocomplete: "new-password",
        attrs: "required minlength=\"12\" maxlength=\"256\"",
        hint: None,
    };
    format!("{}{}", password.html(invalid), again.html(false))
}

/// An HTML answer with the given status and cookies.
pub(super) fn respond(status: StatusCode, cookies: &[String], html: String) -> Response {
    let mut res = (status, Html(html)).into_response();
    add_cookies(&mut res, cookies);
    res
}

/// `303 See Other` to a local path (always one of ours, never taken from the request).
pub(super) fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    add_cookies(&mut res, cookies);
    res
}

fn add_cookies(res: &mut Response, cookies: &[String]) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// A page that only explains something, with one way on.
pub(super) fn message_page(
    state: &AppState,
    status: StatusCode,
    title: &str,
    message: &str,
    link: (&str, &str),
    cookies: &[String],
) -> Response {
    let main = format!(
        "<h1>{}</h1>\n<p class=\"lead\">{}</p>\n<p class=\"actions\"><a class=\"btn btn-primary\" href=\"{}\">{}</a></p>\n",
        e(title),
        e(message),
        e(link.0),
        e(link.1)
    );
    let html = document(&state.config.product_name, title, Width::Narrow, "", &main);
    respond(status, cookies, html)
}

/// A service error as a page: its message, its status, and `Retry-After` when it has one.
pub(super) fn error_page(state: &AppState, err: &ApiError, link: (&str, &str)) -> Response {
    let title = title_for(err.status);
    let mut res = message_page(state, err.status, title, &err.message, link, &[]);
    with_retry_after(&mut res, err);
    if err.placed_elsewhere {
        res.extensions_mut().insert(PlacedElsewhere);
    }
    res
}

pub(super) fn with_retry_after(res: &mut Response, err: &ApiError) {
    if let Some(secs) = err.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

fn title_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "Please check your input",
        401 => "Sign in first",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Conflict",
        413 => "Too much data",
        415 => "Unsupported form",
        429 => "Too many attempts",
        503 => "Temporarily unavailable",
        _ => "Something went wrong",
    }
}

/// A time as `2025-01-31 14:05 UTC`.
pub(super) fn timestamp(secs: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// The 404 page of every path that is neither a page nor the API.
/// It has no state at hand, so it names no product.
pub(super) fn not_found(product: &str) -> Response {
    let main = "<h1>Page not found</h1>\n\
<p class=\"lead\">There is nothing at this address. Check the link, or start again from the sign-in page.</p>\n\
<p class=\"actions\"><a class=\"btn btn-primary\" href=\"/\">Go to the start page</a></p>\n";
    respond(
        StatusCode::NOT_FOUND,
        &[],
        document(product, "Page not found", Width::Narrow, "", main),
    )
}

/// A page address used with the wrong method (e.g. a form's target opened as a link).
pub(super) fn method_not_allowed(product: &str) -> Response {
    let main = "<h1>This page only takes forms</h1>\n\
<p class=\"lead\">This address is where a form is sent; it cannot be opened directly.</p>\n\
<p class=\"actions\"><a class=\"btn btn-primary\" href=\"/\">Go to the start page</a></p>\n";
    respond(
        StatusCode::METHOD_NOT_ALLOWED,
        &[],
        document(product, "Not available", Width::Narrow, "", main),
    )
}
