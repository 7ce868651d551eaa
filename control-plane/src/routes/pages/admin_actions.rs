//! The per-person actions of the console: role, block, unblock, delete, invitations (from the
//! people list or a person's page), and on a person's page their name, email address and
//! sessions. Each POSTs, then redirects back where it came from with a fixed flash code.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::admin::{Filters, Typed, gate, page_number, refusal, refused};
use super::forms::Form;
use super::html;
use super::{MAX_FIELD, Query};
use crate::routes::error::{ApiError, ApiResult};
use crate::service::admin::{self as svc, TenantAdmin, UserChange};
use crate::service::profile;
use crate::state::AppState;

/// The per-user actions.
#[derive(Clone, Copy)]
enum Action {
    Role,
    Block,
    Unblock,
    Delete,
    Resend,
    Revoke,
    Name,
    Email,
    EmailCancel,
    EndSessions,
}

async fn perform(
    state: &AppState,
    admin: &TenantAdmin,
    id: &str,
    form: &Form,
    action: Action,
) -> ApiResult<&'static str> {
    let change = |role, blocked| UserChange { role, blocked };
    let s = admin.signed();
    match action {
        Action::Role => {
            let role = svc::parse_role(form.text("role")).map_err(refusal)?;
            svc::update_user(state, admin, id, change(Some(role), None))
                .await
                .map_err(refusal)?;
            Ok("role_changed")
        }
        Action::Block => {
            svc::update_user(state, admin, id, change(None, Some(true)))
                .await
                .map_err(refusal)?;
            Ok("blocked")
        }
        Action::Unblock => {
            svc::update_user(state, admin, id, change(None, Some(false)))
                .await
                .map_err(refusal)?;
            Ok("unblocked")
        }
        Action::Delete => {
            if form.get("confirm") != Some("yes") {
                return Err(ApiError::bad_request(
                    "not_confirmed",
                    "To delete a user, tick \u{201c}Confirm\u{201d} next to the Delete button, then press Delete.",
                ));
            }
            svc::delete_user(state, admin, id).await.map_err(refusal)?;
            Ok("deleted")
        }
        Action::Resend => {
            svc::resend_invitation(state, admin, id)
                .await
                .map_err(refusal)?;
            Ok("resent")
        }
        Action::Revoke => {
            svc::revoke_invitation(state, admin, id)
                .await
                .map_err(refusal)?;
            Ok("revoked")
        }
        Action::Name => {
            let name = form.text("name");
            if name.len() > MAX_FIELD {
                return Err(refusal(svc::AdminError::InvalidName));
            }
            profile::set_name(state, &s.tenant.id, &s.user.id, id, name)
                .await
                .map_err(refusal)?;
            Ok("renamed")
        }
        Action::Email => {
            let email = form.text("email");
            if email.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "invalid_email",
                    "Enter the new email address.",
                ));
            }
            profile::request_email_change(state, &s.tenant, &s.user.id, id, email)
                .await
                .map_err(refusal)?;
            Ok("email_requested")
        }
        Action::EmailCancel => {
            svc::get_user(state, admin, id).await.map_err(refusal)?;
            profile::cancel_email_change(state, &s.tenant.id, &s.user.id, id)
                .await
                .map_err(|e| match e {
                    svc::AdminError::NotFound => ApiError {
                        message: "There is no pending email change.".into(),
                        ..ApiError::not_found()
                    },
                    other => refusal(other),
                })?;
            Ok("email_cancelled")
        }
        Action::EndSessions => {
            svc::end_user_sessions(state, admin, id)
                .await
                .map_err(refusal)?;
            Ok("sessions_ended")
        }
    }
}

/// Where a form came from: a person's page (`from=person`), or the list with its filters.
fn back_to_list(form: &Form) -> Filters {
    Filters::of(&Query::parse(form.get("back")))
}

async fn act(
    state: AppState,
    headers: HeaderMap,
    id: String,
    form: Form,
    action: Action,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let from_person = form.get("from") == Some("person");
    let result = perform(&state, &admin, &id, &form, action).await;
    match (result, from_person) {
        (Ok("deleted"), true) => html::see_other("/admin?done=deleted", &[]),
        (Ok(done), true) => {
            let path = format!(
                "/admin/users/{}?done={done}",
                url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
            );
            html::see_other(&path, &[])
        }
        (Ok(done), false) => {
            let back = back_to_list(&form).query(true);
            if back.is_empty() || form.get("back").is_none() {
                let page = page_number(form.get("page"));
                html::see_other(&format!("/admin?page={page}&done={done}"), &[])
            } else {
                html::see_other(&format!("/admin?{back}&done={done}"), &[])
            }
        }
        (Err(err), true) => super::person::refused(&state, &headers, &admin, &id, &err).await,
        (Err(err), false) => {
            refused(
                &state,
                &headers,
                &admin,
                back_to_list(&form),
                &err,
                Typed::default(),
            )
            .await
        }
    }
}

macro_rules! action_handler {
    ($name:ident, $action:expr) => {
        pub(crate) async fn $name(
            State(state): State<AppState>,
            headers: HeaderMap,
            Path(id): Path<String>,
            form: Form,
        ) -> Response {
            act(state, headers, id, form, $action).await
        }
    };
}

action_handler!(change_role, Action::Role);
action_handler!(block, Action::Block);
action_handler!(unblock, Action::Unblock);
action_handler!(delete, Action::Delete);
action_handler!(resend, Action::Resend);
action_handler!(revoke, Action::Revoke);
action_handler!(rename, Action::Name);
action_handler!(change_email, Action::Email);
action_handler!(cancel_email, Action::EmailCancel);
action_handler!(end_sessions, Action::EndSessions);

/// `POST /admin/users/{id}/sessions/{sid}/end`: ends one session of a person.
pub(crate) async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, sid)): Path<(String, String)>,
    _form: Form,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    match svc::end_user_session(&state, &admin, &id, &sid).await {
        Ok(()) => {
            let path = format!(
                "/admin/users/{}?done=session_ended",
                url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
            );
            html::see_other(&path, &[])
        }
        Err(e) => {
            let err = match e {
                svc::AdminError::NotFound => ApiError {
                    message: "This session has already ended.".into(),
                    ..ApiError::not_found()
                },
                other => refusal(other),
            };
            super::person::refused(&state, &headers, &admin, &id, &err).await
        }
    }
}
