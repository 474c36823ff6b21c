//! Errors: [`ServeError`] for starting the server, [`ApiError`] for one request.

use alluvium::SeqNo;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Why the server did not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The database could not be opened or closed.
    #[error("{0}")]
    Db(#[from] alluvium::Error),
    /// A socket or the runtime failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The options ask for something unsafe or impossible.
    #[error("{0}")]
    Refused(String),
}

impl ServeError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ServeError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Why one request failed; each variant is one status code and one `error` word.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("key not found")]
    NotFound,
    #[error("change feed position {requested} is no longer retained; oldest available is {oldest_available}")]
    FeedTruncated {
        requested: SeqNo,
        oldest_available: SeqNo,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every error response, and of the feed's `event: error`.
#[derive(Serialize)]
pub(crate) struct ErrorJson {
    pub error: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<SeqNo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_available: Option<SeqNo>,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::FeedTruncated { .. } => StatusCode::GONE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound => "not_found",
            ApiError::FeedTruncated { .. } => "feed_truncated",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn to_json(&self) -> ErrorJson {
        let (requested, oldest_available) = match self {
            ApiError::FeedTruncated {
                requested,
                oldest_available,
            } => (Some(*requested), Some(*oldest_available)),
            _ => (None, None),
        };
        ErrorJson {
            error: self.word(),
            message: self.to_string(),
            requested,
            oldest_available,
        }
    }
}

impl From<alluvium::Error> for ApiError {
    fn from(e: alluvium::Error) -> Self {
        match e {
            alluvium::Error::FeedTruncated {
                requested,
                oldest_available,
            } => ApiError::FeedTruncated {
                requested,
                oldest_available,
            },
            alluvium::Error::Closed(m) => ApiError::Unavailable(m),
            alluvium::Error::InvalidArgument(m) => ApiError::BadRequest(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(format!("a read task failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(self.to_json());
        match self {
            ApiError::Unauthorized => (
                status,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"alluvium\"")],
                body,
            )
                .into_response(),
            _ => (status, body).into_response(),
        }
    }
}
