//! Errors the API answers with: an HTTP status and a stable code in a JSON body,
//! `{"error":{"code":"…","message":"…"}}`.

use crate::fence::FENCED_HEADER;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The challenge every `401` carries in `WWW-Authenticate`.
pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"outbox\"";

/// The stable codes clients can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Not JSON, or JSON of the wrong shape (400).
    BadRequest,
    /// A collection this server does not keep (422 in a mutation body, 404 as a path).
    UnknownCollection,
    /// The request body is over the size limit (413).
    BodyTooLarge,
    /// The change a transaction would make, as a change-feed entry, is over what clients read
    /// in one message (413): rows grow as updates merge into them, and a short body can name
    /// a large row many times.
    EntryTooLarge,
    /// A mutation without a row key, or with an empty one (400).
    MissingKey,
    /// `Idempotency-Key` missing, or not equal to the transaction's id (400).
    BadIdempotencyKey,
    /// `Outbox-Epoch` is lower than the highest epoch accepted for its scope: the sender is a
    /// deposed leader (409, with `Outbox-Fenced: true`).
    StaleEpoch,
    /// No valid bearer token: `Authorization` is required and missing, malformed, unknown or
    /// revoked (401, with `WWW-Authenticate: Bearer`).
    Unauthorized,
    /// `POST /api/login` with a wrong user or password (401).
    BadCredentials,
    /// The `Idempotency-Key` was first applied for another user; nothing is applied (403).
    IdempotencyKeyOfAnotherUser,
    /// No such route (404).
    NotFound,
    /// A failure injected by the fault switches.
    InjectedFault,
    /// The server is made unavailable by the fault switches, or is shutting down (503).
    Unavailable,
    /// The server failed (500); nothing was written.
    Internal,
}

/// An error answer. Building one writes nothing; every path that returns one has written
/// nothing either.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code:?}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// `400 BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    /// `400 MISSING_KEY`.
    pub fn missing_key(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::MissingKey, message)
    }

    /// `400 BAD_IDEMPOTENCY_KEY`.
    pub fn bad_idempotency_key(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadIdempotencyKey,
            message,
        )
    }

    /// `409 STALE_EPOCH`: `epoch` is below `highest`, the highest accepted for `user`'s
    /// `scope`.
    pub fn stale_epoch(user: &str, scope: &str, epoch: u64, highest: u64) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            ErrorCode::StaleEpoch,
            format!(
                "epoch {epoch} is below {highest}, the highest accepted for scope {scope:?} of \
                 user {user:?}: a newer leader has taken over"
            ),
        )
    }

    /// `401 UNAUTHORIZED`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    /// `401 BAD_CREDENTIALS`.
    pub fn bad_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::BadCredentials,
            "wrong user or password",
        )
    }

    /// `403 IDEMPOTENCY_KEY_OF_ANOTHER_USER`: `key` was applied for another user than the
    /// request's.
    pub fn key_of_another_user(key: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorCode::IdempotencyKeyOfAnotherUser,
            format!("the idempotency key {key:?} belongs to another user; nothing was applied"),
        )
    }

    /// `422 UNKNOWN_COLLECTION`: a mutation names a collection the server does not keep.
    pub fn unknown_collection(name: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::UnknownCollection,
            format!("no collection named {name:?}"),
        )
    }

    /// `413 BODY_TOO_LARGE`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!("the request body is over the limit of {limit} bytes"),
        )
    }

    /// `413 ENTRY_TOO_LARGE`.
    pub fn entry_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::EntryTooLarge,
            format!(
                "the transaction's change, as a change-feed entry, would be over {limit} bytes"
            ),
        )
    }

    /// `503 UNAVAILABLE`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            message,
        )
    }

    /// `500 INTERNAL`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            message,
        )
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if self.code == ErrorCode::StaleEpoch {
            resp.headers_mut()
                .insert(FENCED_HEADER, HeaderValue::from_static("true"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        resp
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        Self::internal(format!("database: {e}"))
    }
}
