//! Server-rendered pages.

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}

pub fn not_found_page() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::response::Html("<!doctype html><title>Not found</title><p>Not found.</p>"),
    )
        .into_response()
}
