//! Fault switches for demos and tests (on with `--faults` only): their state, the per-key
//! request and application counts behind `/_test/stats`, and the gate every `/api` request
//! passes through.

use crate::error::{ApiError, ErrorCode};
use crate::serve::ConnCtl;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// The switches, as `GET /_test/faults` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSettings {
    /// Every `/api` answer is held back this long.
    pub delay_ms: u64,
    /// The next `count` mutation requests fail with `status`, applying nothing.
    pub fail_next: Option<FailNext>,
    /// Every `/api` request gets 503 until this is cleared.
    pub unavailable: bool,
    /// The next this many mutation requests are applied, then their connection is closed
    /// without a byte of answer.
    pub drop_replies: u32,
    /// Every `/api` connection is closed at once, with no answer, open ones included.
    pub offline: bool,
    /// Every mutation request (a `POST` under `/api`) is answered `302 Found` to this path,
    /// as a proxy does whose session expired (to its sign-in page).
    pub redirect: Option<String>,
}

/// Fail the next `count` mutation requests with `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailNext {
    /// How many.
    pub count: u32,
    /// The status to answer (400–599).
    pub status: u16,
}

/// A change to the switches: the fields given are set, the others kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultPatch {
    delay_ms: Option<u64>,
    #[serde(default, with = "serde_with_null")]
    fail_next: Option<Option<FailNext>>,
    unavailable: Option<bool>,
    drop_replies: Option<u32>,
    offline: Option<bool>,
    #[serde(default, with = "serde_with_null")]
    redirect: Option<Option<String>>,
}

/// `"failNext": null` clears it; a missing field keeps it.
mod serde_with_null {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// What `GET /_test/totals` answers: the sums of [`Stats`], without the per-key maps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Sum of all requests.
    pub requests: u64,
    /// Sum of all applications.
    pub applied: u64,
}

/// Requests and applications seen for one idempotency key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStats {
    /// Requests that arrived carrying it (while not offline).
    pub requests: u32,
    /// Times it was applied (exactly-once means at most 1).
    pub applied: u32,
}

/// What `GET /_test/stats` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Per idempotency key (transaction id).
    pub keys: BTreeMap<String, KeyStats>,
    /// Per row (`collection/key`): the transaction ids applied to it, in order.
    pub order: BTreeMap<String, Vec<String>>,
    /// Sum of all requests.
    pub requests: u64,
    /// Sum of all applications.
    pub applied: u64,
    /// Keys applied more than once (always empty unless exactly-once is broken).
    pub over_applied: Vec<String>,
    /// Change-feed streams (`GET /api/feed`) open now.
    pub feeds_open: u64,
    /// Change-feed streams opened so far.
    pub feeds_opened: u64,
}

/// The fault switches and the counts, shared by the routes and the writer.
#[derive(Debug)]
pub struct Faults {
    settings: Mutex<FaultSettings>,
    stats: Mutex<Stats>,
    offline: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain counters; keep using them.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            settings: Mutex::default(),
            stats: Mutex::default(),
            offline: watch::Sender::new(false),
        }
    }
}

impl Faults {
    /// The current switches.
    pub fn settings(&self) -> FaultSettings {
        lock(&self.settings).clone()
    }

    /// Applies `patch`; a bad `failNext` status, or a `redirect` that is not a path, is
    /// refused.
    pub fn update(&self, patch: FaultPatch) -> Result<FaultSettings, ApiError> {
        if let Some(Some(to)) = &patch.redirect {
            let path = to.starts_with('/') && to.bytes().all(|b| b.is_ascii_graphic());
            if !path {
                return Err(ApiError::bad_request(
                    "redirect must be a path, such as /login",
                ));
            }
        }
        if let Some(Some(f)) = &patch.fail_next {
            if !(400..=599).contains(&f.status) {
                return Err(ApiError::bad_request("failNext.status must be 400-599"));
            }
        }
        let mut s = lock(&self.settings);
        if let Some(v) = patch.delay_ms {
            s.delay_ms = v;
        }
        if let Some(v) = patch.fail_next {
            s.fail_next = v.filter(|f| f.count > 0);
        }
        if let Some(v) = patch.unavailable {
            s.unavailable = v;
        }
        if let Some(v) = patch.drop_replies {
            s.drop_replies = v;
        }
        if let Some(v) = patch.offline {
            s.offline = v;
        }
        if let Some(v) = patch.redirect {
            s.redirect = v;
        }
        self.offline.send_replace(s.offline);
        Ok(s.clone())
    }

    /// Clears every switch and count.
    pub fn reset(&self) {
        *lock(&self.settings) = FaultSettings::default();
        let mut stats = lock(&self.stats);
        // Streams still open stay counted (their guards will say when they close).
        *stats = Stats {
            feeds_open: stats.feeds_open,
            ..Stats::default()
        };
        drop(stats);
        self.offline.send_replace(false);
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        let mut s = lock(&self.stats).clone();
        s.over_applied = s
            .keys
            .iter()
            .filter(|(_, k)| k.applied > 1)
            .map(|(id, _)| id.clone())
            .collect();
        s
    }

    /// Only the sums: what a client polling for progress needs (`GET /_test/totals`).
    pub fn totals(&self) -> Totals {
        let s = lock(&self.stats);
        Totals {
            requests: s.requests,
            applied: s.applied,
        }
    }

    /// Watches the offline switch (the accept loop closes `/api` connections on it).
    pub fn offline_watch(&self) -> watch::Receiver<bool> {
        self.offline.subscribe()
    }

    /// A feed stream opened; it counts as open until the guard is dropped.
    pub(crate) fn feed_opened(self: &Arc<Self>) -> FeedGuard {
        let mut s = lock(&self.stats);
        s.feeds_open += 1;
        s.feeds_opened += 1;
        FeedGuard(Arc::clone(self))
    }

    pub(crate) fn record_request(&self, key: &str) {
        let mut s = lock(&self.stats);
        s.requests += 1;
        s.keys.entry(key.to_owned()).or_default().requests += 1;
    }

    pub(crate) fn record_applied(&self, tx_id: &str, row_keys: &[String]) {
        let mut s = lock(&self.stats);
        s.applied += 1;
        s.keys.entry(tx_id.to_owned()).or_default().applied += 1;
        let mut seen: Vec<&String> = Vec::with_capacity(row_keys.len());
        for k in row_keys {
            if !seen.contains(&k) {
                seen.push(k);
                s.order.entry(k.clone()).or_default().push(tx_id.to_owned());
            }
        }
    }

    /// Takes one of the "fail next" answers, if any are left.
    pub(crate) fn take_fail_next(&self) -> Option<ApiError> {
        let mut s = lock(&self.settings);
        let f = s.fail_next.as_mut()?;
        f.count -= 1;
        let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if f.count == 0 {
            s.fail_next = None;
        }
        Some(ApiError::new(
            status,
            ErrorCode::InjectedFault,
            "failed by the failNext fault switch",
        ))
    }

    /// Takes one of the "drop the reply" tokens, if any are left.
    pub(crate) fn take_drop_reply(&self) -> bool {
        let mut s = lock(&self.settings);
        if s.drop_replies == 0 {
            return false;
        }
        s.drop_replies -= 1;
        true
    }
}

/// Closes the request's connection without writing a byte, and never answers.
pub(crate) async fn drop_connection(ctl: Option<&Arc<ConnCtl>>) -> Response {
    match ctl {
        Some(c) => {
            c.drop_now();
            std::future::pending::<Response>().await
        }
        None => ApiError::unavailable("offline").into_response(),
    }
}

/// The gate every `/api` request passes: marks the connection as an API one, then (with the
/// switches on) counts the request's idempotency keys and applies offline, 503 and delay.
pub(crate) async fn api_gate(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let ctl = req.extensions().get::<Arc<ConnCtl>>().cloned();
    if let Some(c) = &ctl {
        c.mark_api();
    }
    let Some(faults) = app.faults.clone() else {
        return next.run(req).await;
    };
    if faults.settings().offline {
        return drop_connection(ctl.as_ref()).await;
    }
    let req = match count_request(&faults, req, app.config.max_body_bytes).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let settings = faults.settings();
    if settings.unavailable {
        return ApiError::unavailable("made unavailable by the fault switch").into_response();
    }
    if let (Some(to), true) = (&settings.redirect, req.method() == Method::POST) {
        return (
            StatusCode::FOUND,
            [(axum::http::header::LOCATION, to.as_str())],
        )
            .into_response();
    }
    let resp = next.run(req).await;
    if settings.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(settings.delay_ms)).await;
    }
    resp
}

/// Counts the idempotency keys a mutation request carries (the header for one, the ids for a
/// batch) and hands back the request unchanged.
async fn count_request(faults: &Faults, req: Request, limit: usize) -> Result<Request, ApiError> {
    if req.method() != Method::POST {
        return Ok(req);
    }
    match req.uri().path() {
        "/api/mutations" => {
            if let Some(key) = req
                .headers()
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
            {
                faults.record_request(key);
            }
            Ok(req)
        }
        "/api/mutations/batch" => {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, limit)
                .await
                .map_err(|_| ApiError::body_too_large(limit))?;
            for id in crate::wire::batch_ids(&bytes) {
                faults.record_request(&id);
            }
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Ok(req),
    }
}

/// Counts a feed stream as open while it lives.
#[derive(Debug)]
pub(crate) struct FeedGuard(Arc<Faults>);

impl Drop for FeedGuard {
    fn drop(&mut self) {
        let mut s = lock(&self.0.stats);
        s.feeds_open = s.feeds_open.saturating_sub(1);
    }
}
