//! `POST /api/login`, `POST /api/logout` and `GET /api/session`.

use super::password::{PasswordHash, SALT_LEN};
use super::token::{token_from, token_hash, TOKEN_BYTES};
use super::{bearer, now_ms, random_bytes, store, Caller};
use crate::error::ApiError;
use crate::routes::read_body;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct LoginIn {
    user: String,
    password: String,
}

/// `POST /api/login {"user","password"}` → `{"token","user"}`, a new bearer token; a wrong
/// user or password is `401 BAD_CREDENTIALS` (the same answer, in about the same time, for
/// both).
pub(crate) async fn login(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(body, app.config.max_body_bytes)?;
    let LoginIn { user, password } = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("expected {{\"user\": …, \"password\": …}}: {e}"))
    })?;
    let stored = {
        let user = user.clone();
        app.readers
            .with(move |c| Ok(store::password_of(c, &user)?))
            .await?
    };
    let iterations = app.config.password_iterations;
    let ok = tokio::task::spawn_blocking(move || {
        check_password(stored.as_deref(), &password, iterations)
    })
    .await
    .map_err(|e| ApiError::internal(format!("password check: {e}")))??;
    if !ok {
        return Err(ApiError::bad_credentials());
    }
    let token = token_from(random()?);
    let (hash, owner, now) = (token_hash(&token), user.clone(), now_ms());
    app.writer
        .exec(move |c| Ok(store::insert_token(c, &hash, &owner, now)?))
        .await?;
    Ok(Json(json!({ "token": token, "user": user })).into_response())
}

/// Whether `password` matches `stored`. Without a stored hash (no such user) a hash is still
/// computed, so the answer takes as long as for a wrong password.
fn check_password(stored: Option<&str>, password: &str, iterations: u32) -> Result<bool, ApiError> {
    match stored {
        Some(text) => Ok(PasswordHash::decode(text)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .verify(password)),
        None => {
            std::hint::black_box(PasswordHash::new(password, [0; SALT_LEN], iterations));
            Ok(false)
        }
    }
}

/// `POST /api/logout` with `Authorization: Bearer <token>`: revokes that token, `204`. No
/// token, or one that is not valid, is `401 UNAUTHORIZED`.
pub(crate) async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)?.ok_or_else(|| {
        ApiError::unauthorized("logout needs the token to revoke, as `Authorization: Bearer …`")
    })?;
    let hash = token_hash(&token);
    if app
        .writer
        .exec(move |c| Ok(store::delete_token(c, &hash)?))
        .await?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::unauthorized(
            "the bearer token is not valid: unknown, or revoked by a logout",
        ))
    }
}

/// `GET /api/session` → `{"user", "auth"}`: who the request acts as (`""` = anonymous) and
/// the server's auth mode.
pub(crate) async fn session(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    Json(json!({ "user": caller.user, "auth": app.config.auth })).into_response()
}

fn random() -> Result<[u8; TOKEN_BYTES], ApiError> {
    random_bytes().map_err(|e| ApiError::internal(format!("randomness: {e}")))
}
