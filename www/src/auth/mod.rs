//! Authentication: who a request acts as.
//!
//! A request carries `Authorization: Bearer <token>`; the server keeps the SHA-256 of each
//! valid token in the `tokens` table, and the token's row names its user. `POST /api/login`
//! checks a password (PBKDF2, `users` table) and issues a random token; `POST /api/logout`
//! deletes it. A gate runs before every `/api` route but login and resolves the caller:
//!
//! - [`AuthMode::Off`]: `Authorization` is not read; everyone is the anonymous user `""`.
//! - [`AuthMode::Optional`] (the default): no `Authorization` is the anonymous user; a request
//!   that carries one must carry a valid token, or it gets `401 UNAUTHORIZED`.
//! - [`AuthMode::Required`]: every request needs a valid token.
//!
//! `GET /api/feed` also takes the token as `?access_token=` (an `EventSource` cannot send
//! headers). The user then owns the idempotency keys it applies and has its own leader epochs.

mod hex;
pub mod password;
mod routes;
pub mod store;
pub mod token;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub(crate) use routes::{login, logout, session};

/// The path whose token may come in the query, as `access_token`.
const FEED_PATH: &str = "/api/feed";

/// Who may call the API (`--auth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Tokens are not read; every request is anonymous.
    Off,
    /// Anonymous requests are allowed; a request with a token needs a valid one.
    #[default]
    Optional,
    /// Every `/api` request but login needs a valid token.
    Required,
}

impl std::str::FromStr for AuthMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            _ => Err("expected required, optional or off".to_owned()),
        }
    }
}

impl std::fmt::Display for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        })
    }
}

/// The user a request acts as, put in its extensions by [`gate`]; `""` is anonymous.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The user name.
    pub user: String,
}

/// Resolves the request's [`Caller`] and lets it through, or answers `401 UNAUTHORIZED`.
pub(crate) async fn gate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    match caller(&app, req.headers(), req.uri()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn caller(app: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Caller, ApiError> {
    let mode = app.config.auth;
    if mode == AuthMode::Off {
        return Ok(Caller::default());
    }
    let token = match bearer(headers)? {
        Some(t) => Some(t),
        None if uri.path() == FEED_PATH => query_token(uri)?,
        None => None,
    };
    let Some(token) = token else {
        return match mode {
            AuthMode::Required => Err(ApiError::unauthorized(
                "this server needs `Authorization: Bearer <token>`; POST /api/login gives one",
            )),
            AuthMode::Optional | AuthMode::Off => Ok(Caller::default()),
        };
    };
    let hash = token::token_hash(&token);
    let user = app
        .readers
        .with(move |c| Ok(store::user_of_token(c, &hash)?))
        .await?;
    user.map(|user| Caller { user }).ok_or_else(|| {
        ApiError::unauthorized("the bearer token is not valid: unknown, or revoked by a logout")
    })
}

/// The token of the request's `Authorization: Bearer <token>`; `None` when it has no
/// `Authorization`. Another scheme, a malformed token or the header twice is a
/// `401 UNAUTHORIZED`.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::unauthorized(
            "the Authorization header is given more than once",
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    checked_token(token.trim()).map(Some)
}

/// `token` when it is a plausible bearer token (RFC 6750 `b64token`, at most
/// [`token::MAX_TOKEN_LEN`] characters).
fn checked_token(token: &str) -> Result<String, ApiError> {
    let plausible = !token.is_empty()
        && token.len() <= token::MAX_TOKEN_LEN
        && token
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if plausible {
        Ok(token.to_owned())
    } else {
        Err(ApiError::unauthorized("the bearer token is malformed"))
    }
}

/// `?access_token=` of the feed. A query that does not parse carries no token here; the
/// feed's own query check answers it.
fn query_token(uri: &Uri) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct TokenQuery {
        access_token: Option<String>,
    }
    match Query::<TokenQuery>::try_from_uri(uri) {
        Ok(Query(q)) => q.access_token.map(|t| checked_token(&t)).transpose(),
        Err(_) => Ok(None),
    }
}

/// `N` bytes from the operating system's random source: the server's only randomness, used at
/// the edges (new tokens, new salts).
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use axum::http::HeaderValue;

    fn auth(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens_are_read_and_checked() {
        assert_eq!(bearer(&auth(&[])), Ok(None));
        for (value, token) in [
            (&b"Bearer demo-alice"[..], "demo-alice"),
            (b"bearer  abc.DEF_~+/==", "abc.DEF_~+/=="),
        ] {
            assert_eq!(bearer(&auth(&[value])), Ok(Some(token.to_owned())));
        }
        let long = format!("Bearer {}", "a".repeat(token::MAX_TOKEN_LEN + 1));
        let bad: [&[&[u8]]; 8] = [
            &[b"Bearer"],
            &[b"Bearer "],
            &[b"Basic YWxpY2U6YWxpY2U="],
            &[b"Bearer a b"],
            &[b"Bearer a=b"],
            &[b"Bearer \xff"],
            &[b"Bearer a", b"Bearer a"],
            &[long.as_bytes()],
        ];
        for h in bad {
            let err = bearer(&auth(h)).unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthorized, "{h:?}");
        }
    }

    #[test]
    fn the_feed_token_comes_from_the_query() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            query_token(&uri("/api/feed?since=3&access_token=demo-bob")),
            Ok(Some("demo-bob".into()))
        );
        assert_eq!(query_token(&uri("/api/feed?since=3")), Ok(None));
        assert_eq!(
            query_token(&uri("/api/feed?access_token=a%20b"))
                .unwrap_err()
                .code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn modes_parse() {
        assert_eq!("required".parse(), Ok(AuthMode::Required));
        assert_eq!("off".parse(), Ok(AuthMode::Off));
        assert_eq!("optional".parse(), Ok(AuthMode::Optional));
        assert!("on".parse::<AuthMode>().is_err());
        assert_eq!(AuthMode::default().to_string(), "optional");
    }
}
