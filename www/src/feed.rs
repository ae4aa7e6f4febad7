//! The change feed: `GET /api/changes` (a JSON range, for refetching what is missing) and
//! `GET /api/feed` (Server-Sent Events that resume from a sequence number and never skip or
//! reorder: the backlog comes from the database, then live entries, and whenever the live
//! broadcast lags or shows a gap the database is read again).

use crate::db::ChangeRange;
use crate::error::ApiError;
use crate::faults::Faults;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

/// How often an idle feed sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Entries read from the database per page (fewer when over [`Config::page_bytes`](crate::Config::page_bytes)).
const PAGE: u32 = 500;
/// Events a feed holds for a subscriber that reads slower than they come. With a page, this
/// bounds what a subscriber that stops reading holds on the server (an entry may be megabytes).
const QUEUED: usize = 4;
/// Entries `GET /api/changes` returns when no limit is given, and the most it returns.
const DEFAULT_LIMIT: u32 = 1000;
const MAX_LIMIT: u32 = 10_000;

/// One applied change as the writer publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedItem {
    /// Its sequence number.
    pub seq: u64,
    /// The entry `{seq, prevSeq, txId, changes}` as JSON.
    pub json: String,
}

/// `?since=N&limit=M`.
#[derive(Debug, Deserialize)]
pub(crate) struct SinceQuery {
    since: Option<u64>,
    limit: Option<u32>,
}

fn query(q: Result<Query<SinceQuery>, QueryRejection>) -> Result<SinceQuery, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("bad query: {e}")))
}

/// `GET /api/changes?since=N[&limit=M]` → `{"seq": current, "changes": [entries > N]}`: up
/// to M entries, fewer when they would be over [`Config::page_bytes`](crate::Config::page_bytes)
/// (at least one).
pub(crate) async fn changes(
    State(app): State<AppState>,
    q: Result<Query<SinceQuery>, QueryRejection>,
) -> Result<Json<ChangeRange>, ApiError> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let range = app
        .readers
        .changes_since(q.since.unwrap_or(0), limit, app.config.page_bytes)
        .await?;
    Ok(Json(range))
}

/// `GET /api/feed?since=N`: entries with a sequence number above N (or above the
/// `Last-Event-ID` header, which wins), then live ones; `event: change`, `id:` the sequence
/// number, data the entry.
pub(crate) async fn feed(
    State(app): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<SinceQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let since = last_event_id.or(q.since).unwrap_or(0);
    // Subscribe before reading the backlog, so nothing committed in between is missed.
    let live = app.feed.subscribe();
    let (out, rx) = mpsc::channel(QUEUED);
    tokio::spawn(pump(app, live, since, out));
    Ok(Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

type Out = mpsc::Sender<Result<Event, Infallible>>;

fn event(seq: u64, json: &str) -> Result<Event, Infallible> {
    Ok(Event::default()
        .event("change")
        .id(seq.to_string())
        .data(json))
}

/// Sends every entry after `last`, in order, until the client goes away.
async fn pump(
    app: AppState,
    mut live: broadcast::Receiver<std::sync::Arc<FeedItem>>,
    mut last: u64,
    out: Out,
) {
    let _open = app.faults.as_ref().map(Faults::feed_opened);
    loop {
        // Catch up from the database.
        loop {
            let page = match app
                .readers
                .entries_since(last, PAGE, app.config.page_bytes)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("outbox-server: feed read failed: {e}");
                    return;
                }
            };
            if page.is_empty() {
                break;
            }
            for (seq, json) in page {
                if out.send(event(seq, &json)).await.is_err() {
                    return;
                }
                last = seq;
            }
        }
        // Then live, as long as the broadcast keeps up without gaps.
        loop {
            let item = tokio::select! {
                r = live.recv() => r,
                () = out.closed() => return,
            };
            match item {
                Ok(it) if it.seq <= last => {}
                Ok(it) if it.seq == last + 1 => {
                    if out.send(event(it.seq, &it.json)).await.is_err() {
                        return;
                    }
                    last = it.seq;
                }
                Ok(_) | Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            }
        }
    }
}
