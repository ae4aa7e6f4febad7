//! The HTTP routes: the mutation endpoints, collection reads, the feed, login and logout, the
//! fault switches and the static files.

use crate::apply::{Outcome, APPLIED_STATUS};
use crate::auth::{self, Caller};
use crate::db::DbError;
use crate::error::{ApiError, ErrorCode};
use crate::faults::{api_gate, drop_connection, FaultPatch};
use crate::feed;
use crate::fence::Fence;
use crate::serve::ConnCtl;
use crate::state::AppState;
use crate::wire::parse_tx;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{middleware, Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;
use tower_http::services::ServeDir;

/// The header that carries a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        Self::internal(e.to_string())
    }
}

/// Every route of the server. Every `/api` route passes the fault gate, then (all but login)
/// the auth gate, which puts the request's [`Caller`] in its extensions.
pub(crate) fn router(app: AppState) -> Router {
    let limit = app.config.max_body_bytes;
    let authenticated = Router::new()
        .route("/api/mutations", post(post_mutation))
        .route("/api/mutations/batch", post(post_batch))
        .route("/api/changes", get(feed::changes))
        .route("/api/feed", get(feed::feed))
        .route("/api/logout", post(auth::logout))
        .route("/api/session", get(auth::session))
        .route("/api/{collection}", get(get_collection))
        .route("/api/{collection}/{*rest}", any(api_not_found))
        .route_layer(middleware::from_fn_with_state(app.clone(), auth::gate));
    let api = Router::new()
        .route("/api/login", post(auth::login))
        .merge(authenticated)
        .layer(DefaultBodyLimit::max(limit))
        .route_layer(middleware::from_fn_with_state(app.clone(), api_gate));
    let mut root = Router::new().merge(api);
    if app.faults.is_some() {
        root = root
            .route("/_test/faults", get(get_faults).post(post_faults))
            .route("/_test/reset", post(reset))
            .route("/_test/stats", get(stats))
            .route("/_test/totals", get(totals));
    }
    root.nest_service("/pkg", ServeDir::new(&app.config.pkg_dir))
        .fallback_service(ServeDir::new(&app.config.static_dir))
        .with_state(app)
}

async fn api_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such API route",
    )
}

/// The request body, or `413 BODY_TOO_LARGE` / `400 BAD_REQUEST`.
pub(crate) fn read_body(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::body_too_large(limit)
        } else {
            ApiError::bad_request(r.body_text())
        }
    })
}

fn json_response(status: StatusCode, body: String, replayed: bool) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        h.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    resp
}

/// `POST /api/mutations`: one transaction, idempotent by the `Idempotency-Key` header (which
/// must equal the body's `id`, and belongs to the caller), fenced by `Outbox-Epoch` when
/// present.
async fn post_mutation(
    State(app): State<AppState>,
    ctl: Option<Extension<Arc<ConnCtl>>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = match mutation_outcome(&app, &caller, &headers, body).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    if app.faults.as_ref().is_some_and(|f| f.take_drop_reply()) {
        return drop_connection(ctl.as_ref().map(|Extension(c)| c)).await;
    }
    match outcome {
        Outcome::Applied { body, .. } => json_response(StatusCode::OK, body, false),
        Outcome::Replayed { status, body } => json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            body,
            true,
        ),
        Outcome::Refused(e) => e.into_response(),
    }
}

async fn mutation_outcome(
    app: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Outcome, ApiError> {
    let body = read_body(body, app.config.max_body_bytes)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::bad_idempotency_key("the Idempotency-Key header is required"))?;
    let fence = Fence::from_headers(headers, &caller.user)?;
    if let Some(e) = app.faults.as_ref().and_then(|f| f.take_fail_next()) {
        return Err(e);
    }
    let tx = parse_tx(&body, &app.collections)?;
    if tx.id != key {
        return Err(ApiError::bad_idempotency_key(
            "the Idempotency-Key header must equal the transaction's id",
        ));
    }
    let mut outcomes = app.writer.submit(vec![tx], &caller.user, fence).await?;
    outcomes
        .pop()
        .ok_or_else(|| ApiError::internal("the writer gave no answer"))
}

#[derive(Deserialize)]
struct BatchIn<'a> {
    #[serde(borrow)]
    transactions: Vec<&'a RawValue>,
}

/// One answer of a batch.
#[derive(Debug, Serialize)]
struct BatchItem {
    id: Option<String>,
    status: u16,
    body: Box<RawValue>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    replayed: bool,
}

impl BatchItem {
    fn error(id: Option<String>, e: &ApiError) -> Self {
        let body = RawValue::from_string(e.body().to_string()).unwrap_or_else(|_| null());
        Self {
            id,
            status: e.status.as_u16(),
            body,
            replayed: false,
        }
    }

    fn stored(id: String, status: u16, body: String, replayed: bool) -> Self {
        Self {
            id: Some(id),
            status,
            body: RawValue::from_string(body).unwrap_or_else(|_| null()),
            replayed,
        }
    }
}

fn null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

/// `POST /api/mutations/batch`: `{"transactions": [tx, …]}` → `{"results": [{id, status,
/// body}, …]}` in order, each transaction idempotent by its own id (a key of another user is
/// that item's `403`); a stale `Outbox-Epoch` refuses the whole batch.
async fn post_batch(
    State(app): State<AppState>,
    ctl: Option<Extension<Arc<ConnCtl>>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let results = match batch_results(&app, &caller, &headers, body).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if app.faults.as_ref().is_some_and(|f| f.take_drop_reply()) {
        return drop_connection(ctl.as_ref().map(|Extension(c)| c)).await;
    }
    Json(serde_json::json!({ "results": results })).into_response()
}

async fn batch_results(
    app: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Vec<BatchItem>, ApiError> {
    let body = read_body(body, app.config.max_body_bytes)?;
    let fence = Fence::from_headers(headers, &caller.user)?;
    if let Some(e) = app.faults.as_ref().and_then(|f| f.take_fail_next()) {
        return Err(e);
    }
    let batch: BatchIn<'_> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"transactions\": [...]}}: {e}")))?;
    let mut slots: Vec<Option<BatchItem>> = Vec::with_capacity(batch.transactions.len());
    let mut good = Vec::new();
    for raw in &batch.transactions {
        match parse_tx(raw.get().as_bytes(), &app.collections) {
            Ok(tx) => {
                good.push(tx);
                slots.push(None);
            }
            Err(e) => slots.push(Some(BatchItem::error(loose_id(raw), &e))),
        }
    }
    let ids: Vec<String> = good.iter().map(|t| t.id.clone()).collect();
    // A fenced batch goes to the writer even when empty, so a stale one is refused whole.
    let outcomes = if good.is_empty() && fence.is_none() {
        Vec::new()
    } else {
        app.writer.submit(good, &caller.user, fence).await?
    };
    let mut answers = ids.into_iter().zip(outcomes).map(|(id, o)| match o {
        Outcome::Applied { body, .. } => BatchItem::stored(id, APPLIED_STATUS, body, false),
        Outcome::Replayed { status, body } => BatchItem::stored(id, status, body, true),
        Outcome::Refused(e) => BatchItem::error(Some(id), &e),
    });
    slots
        .into_iter()
        .map(|s| s.or_else(|| answers.next()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::internal("the writer gave too few answers"))
}

fn loose_id(raw: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        id: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Id>(raw.get()).ok()?.id? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}

/// `GET /api/<collection>` → `{"seq": N, "rows": [{key, value, seq}, …]}`.
async fn get_collection(
    State(app): State<AppState>,
    Path(collection): Path<String>,
) -> Result<Response, ApiError> {
    if !app.collections.contains(&collection) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownCollection,
            format!("no collection named {collection:?}"),
        ));
    }
    Ok(Json(app.readers.snapshot(collection).await?).into_response())
}

async fn get_faults(State(app): State<AppState>) -> Response {
    match &app.faults {
        Some(f) => Json(f.settings()).into_response(),
        None => api_not_found().await.into_response(),
    }
}

async fn post_faults(
    State(app): State<AppState>,
    patch: Result<Json<FaultPatch>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(patch) = patch.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let faults = app
        .faults
        .as_ref()
        .ok_or_else(|| ApiError::bad_request("fault switches are off"))?;
    Ok(Json(faults.update(patch)?).into_response())
}

async fn reset(State(app): State<AppState>) -> Response {
    if let Some(f) = &app.faults {
        f.reset();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn totals(State(app): State<AppState>) -> Response {
    match &app.faults {
        Some(f) => Json(f.totals()).into_response(),
        None => api_not_found().await.into_response(),
    }
}

async fn stats(State(app): State<AppState>) -> Response {
    match &app.faults {
        Some(f) => Json(f.stats()).into_response(),
        None => api_not_found().await.into_response(),
    }
}
