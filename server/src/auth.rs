//! The optional bearer token.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::App;

/// Passes a request on when no token is configured or it carries `Authorization: Bearer
/// TOKEN`; 401 otherwise.
pub(crate) async fn require_token(
    State(app): State<Arc<App>>,
    req: Request,
    next: Next,
) -> Response {
    match &app.config.token {
        Some(token) if !authorized(&req, token) => ApiError::Unauthorized.into_response(),
        _ => next.run(req).await,
    }
}

fn authorized(req: &Request, token: &str) -> bool {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    // The scheme is case-insensitive (RFC 9110); the token is compared in constant time, so
    // the time taken does not tell how many leading bytes were right.
    let (scheme, given) = value.split_at(value.len().min(7));
    scheme.eq_ignore_ascii_case(b"bearer ") && bool::from(given.ct_eq(token.as_bytes()))
}
