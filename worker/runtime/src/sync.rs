//! Runs the shared [`LeaderSync`] with real I/O: `fetch` for snapshots and ranges, Server-Sent
//! Events over `fetch` for the feed, a timer for backoff. Storage and fan-out are the host's
//! ([`SyncHost`]): the leader worker persists to IndexedDB and posts on the channel; a tab in
//! online-only mode keeps the rows in memory and hands them to its own view.

use crate::clock::MathRandom;
use crate::stream::{get_text, EventStream, StreamEnd};
use crate::timer::Timer;
use outbox_shared::model::{ClientId, Epoch};
use outbox_shared::protocol::Message;
use outbox_shared::sync::{
    parse_entry, parse_range, CollectionSnapshot, LeaderSync, LeaderSyncConfig, LeaderSyncOutput,
    PersistBatch,
};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// Where the server's sync endpoints are (the reference server's shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
// Unknown fields are refused (`source`, read apart, is taken out first): a misspelt one
// (`baseURL`) would be ignored without a word.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncOptions {
    /// The collections to sync.
    pub collections: Vec<String>,
    /// The API's base URL: snapshots are `GET {baseUrl}/<collection>`, the feed
    /// `GET {baseUrl}/feed?since=N` (Server-Sent Events), ranges
    /// `GET {baseUrl}/changes?since=N&limit=M`. Default `/api`.
    #[serde(default = "default_base")]
    pub base_url: String,
    /// A feed that brings nothing, not an event nor a comment, for this long (ms) is taken for
    /// a dead connection and reopened from the last applied number (default
    /// [`FEED_SILENCE_MS`]; 0: never). A server sends a comment more often than that when it
    /// has nothing to say (the reference server: every 15 s).
    #[serde(default)]
    pub feed_silence_ms: Option<u32>,
}

/// The default [`SyncOptions::feed_silence_ms`]: 60 s, four of the reference server's
/// keep-alive comments.
pub const FEED_SILENCE_MS: u32 = 60_000;

fn default_base() -> String {
    "/api".into()
}

impl SyncOptions {
    fn snapshot_url(&self, collection: &str) -> String {
        format!(
            "{}/{}",
            self.base_url.trim_end_matches('/'),
            encode(collection)
        )
    }

    fn feed_url(&self, since: u64) -> String {
        format!("{}/feed?since={since}", self.base_url.trim_end_matches('/'))
    }

    fn changes_url(&self, since: u64, limit: u32) -> String {
        format!(
            "{}/changes?since={since}&limit={limit}",
            self.base_url.trim_end_matches('/')
        )
    }
}

/// The app's own feed, in place of the reference server's endpoints: the functions of the
/// `sync.source` option. Each may return its answer or a Promise of it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFns {
    /// `snapshot(collection)` → `{ seq, rows: [{ key, value }] }`.
    pub snapshot: js_sys::Function,
    /// `changes(since, limit)` → `{ seq, changes: [entry] }`, entries as the feed's. Without it
    /// a gap reloads the snapshots.
    pub changes: Option<js_sys::Function>,
    /// `subscribe(since, onEntry, onError)` → a function that unsubscribes. `onEntry(entry)`
    /// with `{ seq, prevSeq, changes: [{ collection, key, op, value }] }`, in order.
    pub subscribe: js_sys::Function,
}

impl SourceFns {
    /// A copy of the `sync` options without `source` (its functions are read here; serde
    /// reads the rest).
    pub fn strip(sync: &JsValue) -> JsValue {
        let plain = js_sys::Object::assign(&js_sys::Object::new(), sync.unchecked_ref());
        let _ = js_sys::Reflect::delete_property(&plain, &"source".into());
        plain.into()
    }

    /// Reads `sync.source`, if the options have one. Errors name the missing function.
    pub fn from_sync_options(sync: &JsValue) -> Result<Option<Self>, String> {
        let source = js_sys::Reflect::get(sync, &"source".into()).unwrap_or(JsValue::UNDEFINED);
        if source.is_undefined() || source.is_null() {
            return Ok(None);
        }
        let f = |name: &str| {
            js_sys::Reflect::get(&source, &name.into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        };
        let need =
            |name: &str| f(name).ok_or_else(|| format!("sync.source.{name} must be a function"));
        Ok(Some(Self {
            snapshot: need("snapshot")?,
            changes: f("changes"),
            subscribe: need("subscribe")?,
        }))
    }
}

/// Calls `f(args…)` and awaits its answer (a Promise's, or the value), as JSON text.
async fn call_json(f: &js_sys::Function, args: &[JsValue]) -> Result<String, String> {
    let args: js_sys::Array = args.iter().collect();
    let answer = f
        .apply(&JsValue::NULL, &args)
        .map_err(|e| crate::convert::JsErrorInfo::from_js(&e).to_string())?;
    let value = if answer.has_type::<js_sys::Promise>() {
        JsFuture::from(js_sys::Promise::from(answer))
            .await
            .map_err(|e| crate::convert::JsErrorInfo::from_js(&e).to_string())?
    } else {
        answer
    };
    js_sys::JSON::stringify(&value)
        .map(String::from)
        .map_err(|e| crate::convert::JsErrorInfo::from_js(&e).to_string())
}

/// A feed entry that does not read is passed over, with a word on the console: the next
/// entry is then a gap, refetched, and a range that does not read either reloads the
/// snapshots, which go past it. Taken for a failed feed, before, it was met again first
/// thing at every reopening: the feed stopped for good, and every tab with it.
fn skipped(why: &dyn std::fmt::Display) {
    web_sys::console::warn_1(&format!("outbox: a feed entry passed over: {why}").into());
}

/// Where a snapshot or a range is read from.
enum Origin {
    /// The app's function, called with these arguments.
    App(js_sys::Function, Vec<JsValue>),
    /// `GET` this URL of the reference server's shape.
    Http(String),
    /// Nowhere (the app's source has no `changes`).
    Nowhere,
}

impl Origin {
    /// The answer as JSON text; `Err` if it failed (or there is nowhere to ask), with the
    /// server's status if it answered.
    async fn read(
        self,
        headers: &BTreeMap<String, String>,
        signal: &web_sys::AbortSignal,
    ) -> Result<String, Option<u16>> {
        match self {
            Self::App(f, args) => call_json(&f, &args).await.map_err(|_| None),
            Self::Http(url) => match get_text(&url, headers, signal).await {
                Ok((200, text)) => Ok(text),
                Ok((status, _)) => Err(Some(status)),
                Err(_) => Err(None),
            },
            Self::Nowhere => Err(None),
        }
    }
}

/// The open feed: the reference server's stream, or the app's subscription.
enum Feed {
    Stream(#[allow(dead_code, reason = "held: dropping it closes the stream")] EventStream),
    App {
        unsubscribe: Option<js_sys::Function>,
        _on_entry: Closure<dyn FnMut(JsValue)>,
        _on_error: Closure<dyn FnMut(JsValue)>,
    },
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Self::App {
            unsubscribe: Some(f),
            ..
        } = self
        {
            let _ = f.call0(&JsValue::NULL);
        }
    }
}

fn encode(segment: &str) -> String {
    js_sys::encode_uri_component(segment).into()
}

/// A boxed local future.
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// What the driver needs from where it runs.
pub trait SyncHost {
    /// Headers for every request (the credentials the tabs gave, if any).
    fn headers(&self) -> BTreeMap<String, String>;
    /// Writes a batch durably (or keeps it in memory); `Err` stops the sync.
    fn persist(&self, batch: PersistBatch) -> LocalFuture<Result<(), String>>;
    /// Fan-out ([`LeaderSyncOutput::Broadcast`], `SendRows`, `SendEntries`) and the feed's
    /// stored position (`SyncedTo`, for the executor's `awaitSync`).
    fn deliver(&self, output: LeaderSyncOutput);
    /// The synced rows could not be stored: the feed has stopped (nothing after what was
    /// stored reached the tabs). The host may start a new one from storage.
    fn trouble(&self, message: String);
    /// The server answered a read of the feed 401: the credentials are stale. A leader asks
    /// the tabs for fresh ones, as it does when a call is refused (the feed retries with
    /// what they give). Nothing, by default.
    fn credentials_refused(&self) {}
}

/// What a host does with a fan-out output ([`SyncHost::deliver`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Send these messages, in order: to one tab, or to all (`None`).
    Send(Vec<(Option<ClientId>, Message)>),
    /// Tell the executor the feed has reached this sequence number in storage
    /// (`Event::SyncedTo`).
    SyncedTo(u64),
    /// Nothing (not a fan-out output).
    Nothing,
}

impl Delivery {
    /// The channel messages (or executor event) of a fan-out output, from the leader of `epoch`.
    pub fn of(epoch: Epoch, output: LeaderSyncOutput) -> Self {
        match output.into_messages(epoch) {
            Ok(messages) => Self::Send(messages),
            Err(LeaderSyncOutput::SyncedTo { seq }) => Self::SyncedTo(seq),
            Err(_) => Self::Nothing,
        }
    }
}

/// The running sync. Dropping it (or [`SyncDriver::stop`]) stops the feed and every request.
pub struct SyncDriver(Rc<Inner>);

struct Inner {
    options: SyncOptions,
    core: RefCell<LeaderSync>,
    host: Box<dyn SyncHost>,
    stream: RefCell<Option<Feed>>,
    source: Option<SourceFns>,
    timer: RefCell<Timer>,
    /// The timer is set and has not fired.
    timer_due: std::cell::Cell<bool>,
    abort: web_sys::AbortController,
    stopped: std::cell::Cell<bool>,
}

impl std::fmt::Debug for SyncDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncDriver")
            .field("options", &self.0.options)
            .finish_non_exhaustive()
    }
}

impl SyncDriver {
    /// Starts syncing `options.collections`, from what the previous leader persisted
    /// (`restored`), if anything.
    pub fn start(
        options: SyncOptions,
        source: Option<SourceFns>,
        restored: Option<Vec<CollectionSnapshot>>,
        host: Box<dyn SyncHost>,
    ) -> Result<Self, String> {
        let abort = web_sys::AbortController::new().map_err(|e| format!("{e:?}"))?;
        let core = LeaderSync::new(
            LeaderSyncConfig::new(options.collections.clone()),
            Box::new(MathRandom),
        );
        let inner = Rc::new(Inner {
            options,
            core: RefCell::new(core),
            host,
            stream: RefCell::new(None),
            source,
            timer: RefCell::new(Timer::default()),
            timer_due: std::cell::Cell::new(false),
            abort,
            stopped: std::cell::Cell::new(false),
        });
        let out = inner.core.borrow_mut().start(restored);
        Inner::run(&inner, out);
        Ok(Self(inner))
    }

    /// A tab has applied the feed up to `applied` and misses what follows.
    pub fn tab_asks(&self, from: ClientId, applied: u64) {
        let out = self.0.core.borrow_mut().tab_asks(from, applied);
        Inner::run(&self.0, out);
    }

    /// The tabs waiting for rows ([`LeaderSync::waiting_asks`]).
    pub fn waiting_asks(&self) -> Vec<(ClientId, u64)> {
        self.0.core.borrow().waiting_asks()
    }

    /// The last sequence number applied (and, once persisted, broadcast).
    pub fn applied(&self) -> u64 {
        self.0.core.borrow().applied()
    }

    /// Reconnects now if the feed is waiting out a backoff (the network is back, or fresh
    /// credentials came).
    pub fn retry_now(&self) {
        if self.0.stream.borrow().is_none() && self.0.timer_due.replace(false) {
            self.0.timer.borrow_mut().clear();
            let out = self.0.core.borrow_mut().timer_fired();
            Inner::run(&self.0, out);
        }
    }

    /// Stops the feed and every request; nothing more is delivered.
    pub fn stop(&self) {
        self.0.stop();
    }
}

impl Drop for SyncDriver {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl Inner {
    fn stop(&self) {
        if self.stopped.replace(true) {
            return;
        }
        let _ = self.core.borrow_mut().stop();
        self.stream.borrow_mut().take();
        self.timer.borrow_mut().clear();
        self.abort.abort();
    }

    /// Carries out the core's outputs, in order.
    fn run(this: &Rc<Self>, outputs: Vec<LeaderSyncOutput>) {
        if this.stopped.get() {
            return;
        }
        for output in outputs {
            match output {
                LeaderSyncOutput::LoadSnapshot { collection } => Self::load(this, collection),
                LeaderSyncOutput::OpenFeed { since } => Self::open_feed(this, since),
                LeaderSyncOutput::CloseFeed => drop(this.stream.borrow_mut().take()),
                LeaderSyncOutput::FetchRange { since, limit } => {
                    Self::fetch_range(this, since, limit);
                }
                LeaderSyncOutput::CheckHead { since } => Self::check_head(this, since),
                LeaderSyncOutput::Persist(batch) => Self::persist(this, batch),
                LeaderSyncOutput::SetTimer { after_ms } => {
                    let weak = Rc::downgrade(this);
                    this.timer_due.set(true);
                    this.timer.borrow_mut().set(after_ms, move || {
                        // Not inside the timeout's own closure: what runs may set the timer
                        // again, which drops that closure.
                        spawn_local(async move {
                            if let Some(this) = weak.upgrade() {
                                this.timer_due.set(false);
                            }
                            Self::with(&weak, LeaderSync::timer_fired);
                        });
                    });
                }
                out @ (LeaderSyncOutput::Broadcast(_)
                | LeaderSyncOutput::SendRows { .. }
                | LeaderSyncOutput::SendEntries { .. }
                | LeaderSyncOutput::SyncedTo { .. }) => this.host.deliver(out),
            }
        }
    }

    /// Calls the core (if the driver still runs) and carries out what it says.
    fn with(weak: &Weak<Self>, f: impl FnOnce(&mut LeaderSync) -> Vec<LeaderSyncOutput>) {
        let Some(this) = weak.upgrade() else { return };
        if this.stopped.get() {
            return;
        }
        let out = f(&mut this.core.borrow_mut());
        Self::run(&this, out);
    }

    fn load(this: &Rc<Self>, collection: String) {
        let from = match &this.source {
            Some(app) => Origin::App(app.snapshot.clone(), vec![JsValue::from_str(&collection)]),
            None => Origin::Http(this.options.snapshot_url(&collection)),
        };
        let (headers, signal) = (this.host.headers(), this.abort.signal());
        let weak = Rc::downgrade(this);
        spawn_local(async move {
            let text = Self::read(&weak, from, &headers, &signal).await;
            let loaded = text.and_then(|t| CollectionSnapshot::parse(&collection, &t).ok());
            Self::with(&weak, |core| match loaded {
                Some(snap) => core.snapshot_loaded(snap),
                None => core.snapshot_failed(&collection),
            });
        });
    }

    /// Reads `from`: the answer, or `None`. A 401 asks the host for fresh credentials (a
    /// user who only reads stopped hearing of others' changes once the token expired: nothing
    /// asked the tabs for a new one but a call of their own refused).
    async fn read(
        weak: &Weak<Self>,
        from: Origin,
        headers: &BTreeMap<String, String>,
        signal: &web_sys::AbortSignal,
    ) -> Option<String> {
        match from.read(headers, signal).await {
            Ok(text) => Some(text),
            Err(status) => {
                if let (Some(401), Some(this)) = (status, weak.upgrade()) {
                    this.host.credentials_refused();
                }
                None
            }
        }
    }

    /// Where the changes after `since` are read from (at most `limit`).
    fn changes(&self, since: u64, limit: u32) -> Origin {
        match &self.source {
            Some(app) => match &app.changes {
                Some(f) => Origin::App(
                    f.clone(),
                    vec![JsValue::from(since as f64), JsValue::from(limit)],
                ),
                None => Origin::Nowhere,
            },
            None => Origin::Http(self.options.changes_url(since, limit)),
        }
    }

    /// Asks the server's head; an answer that does not come or does not read is let go (the
    /// next opening of the feed asks again).
    fn check_head(this: &Rc<Self>, since: u64) {
        let from = this.changes(since, 1);
        let (headers, signal) = (this.host.headers(), this.abort.signal());
        let weak = Rc::downgrade(this);
        spawn_local(async move {
            let text = Self::read(&weak, from, &headers, &signal).await;
            if let Some(range) = text.and_then(|t| parse_range(&t).ok()) {
                Self::with(&weak, |core| core.head_known(since, range.seq));
            }
        });
    }

    fn fetch_range(this: &Rc<Self>, since: u64, limit: u32) {
        let from = this.changes(since, limit);
        let (headers, signal) = (this.host.headers(), this.abort.signal());
        let weak = Rc::downgrade(this);
        spawn_local(async move {
            let text = Self::read(&weak, from, &headers, &signal).await;
            let loaded = text.and_then(|t| parse_range(&t).ok());
            Self::with(&weak, |core| match loaded {
                Some(range) => core.range_loaded(range.changes),
                None => core.range_failed(),
            });
        });
    }

    fn open_feed(this: &Rc<Self>, since: u64) {
        if let Some(source) = this.source.clone() {
            Self::subscribe_app(this, &source, since);
            return;
        }
        let url = this.options.feed_url(since);
        let headers = this.host.headers();
        let (opened, events, ended) = (
            Rc::downgrade(this),
            Rc::downgrade(this),
            Rc::downgrade(this),
        );
        let silence = this.options.feed_silence_ms.unwrap_or(FEED_SILENCE_MS);
        let stream = EventStream::open(
            &url,
            &headers,
            Some(silence),
            move || Self::with(&opened, LeaderSync::feed_opened),
            move |event| {
                if event.event != "change" {
                    return;
                }
                match parse_entry(&event.data) {
                    Ok(entry) => Self::with(&events, |core| core.feed_entry(entry)),
                    Err(e) => skipped(&e),
                }
            },
            move |end: StreamEnd| {
                if end == StreamEnd::Status(401) {
                    if let Some(this) = ended.upgrade() {
                        this.host.credentials_refused();
                    }
                }
                Self::with(&ended, LeaderSync::feed_error)
            },
        );
        match stream {
            Ok(s) => *this.stream.borrow_mut() = Some(Feed::Stream(s)),
            Err(_) => Self::with(&Rc::downgrade(this), LeaderSync::feed_error),
        }
    }

    /// The app's own feed: `subscribe(since, onEntry, onError)`. Entries come as objects (or
    /// JSON text); one that does not read, or an error, reopens the feed after the backoff.
    fn subscribe_app(this: &Rc<Self>, source: &SourceFns, since: u64) {
        let (events, errors) = (Rc::downgrade(this), Rc::downgrade(this));
        let on_entry = Closure::<dyn FnMut(JsValue)>::new(move |entry: JsValue| {
            let text = match entry.as_string() {
                Some(t) => Some(t),
                None => js_sys::JSON::stringify(&entry).ok().map(String::from),
            };
            // Handled in a task of its own, in order: what it leads to may close this feed,
            // which drops this very closure.
            let events = events.clone();
            spawn_local(async move {
                match text.as_deref().map(parse_entry) {
                    Some(Ok(entry)) => Self::with(&events, |core| core.feed_entry(entry)),
                    Some(Err(e)) => skipped(&e),
                    None => skipped(&"an entry that is not JSON"),
                }
            });
        });
        let on_error =
            Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| Self::app_feed_failed(&errors));
        let answer = source.subscribe.call3(
            &JsValue::NULL,
            &JsValue::from(since as f64),
            on_entry.as_ref(),
            on_error.as_ref(),
        );
        match answer {
            Ok(unsubscribe) => {
                *this.stream.borrow_mut() = Some(Feed::App {
                    unsubscribe: unsubscribe.dyn_into().ok(),
                    _on_entry: on_entry,
                    _on_error: on_error,
                });
                Self::with(&Rc::downgrade(this), LeaderSync::feed_opened);
            }
            Err(_) => Self::with(&Rc::downgrade(this), LeaderSync::feed_error),
        }
    }

    /// The app's feed failed: it is closed (`feed_error` says `CloseFeed`; later, outside its
    /// callback, whose closure that drops) and reopened after the backoff.
    fn app_feed_failed(weak: &Weak<Self>) {
        let weak = weak.clone();
        spawn_local(async move { Self::with(&weak, LeaderSync::feed_error) });
    }

    fn persist(this: &Rc<Self>, batch: PersistBatch) {
        let seq = batch.seq;
        let write = this.host.persist(batch);
        let weak = Rc::downgrade(this);
        spawn_local(async move {
            match write.await {
                Ok(()) => Self::with(&weak, |core| core.persisted(seq)),
                Err(why) => {
                    if let Some(this) = weak.upgrade() {
                        this.host
                            .trouble(format!("the synced rows could not be stored: {why}"));
                        this.stop();
                    }
                }
            }
        });
    }
}
