//! [`Config`] for [`Outbox::connect`](super::Outbox::connect), and mutation functions written
//! in Rust ([`MutationCall`] → [`Applied`] or [`MutationError`]).

use super::error::OutboxError;
use super::{from_js, to_js};
use crate::options::SharedWorkerChoice;
use js_sys::{Function, Object, Promise, Reflect};
use outbox_shared::http::HttpEndpoint;
use outbox_shared::model::Transaction;
use outbox_shared::retry::RetryPolicy;
use std::collections::BTreeMap;
use std::future::Future;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// How to connect: `Config::new("todos").worker_url("/outbox-worker.js")`. Settings left
/// unset take the client's defaults.
#[derive(Debug, Clone, Default)]
pub struct Config {
    app: String,
    scope: Option<String>,
    worker_url: Option<String>,
    shared_worker: Option<SharedWorkerChoice>,
    leader_timeout_ms: Option<u32>,
    request_timeout_ms: Option<u32>,
    back_off_threshold: Option<u32>,
    max_concurrency: Option<u32>,
    max_batch: Option<u32>,
    retry: Option<RetryPolicy>,
    http: BTreeMap<String, HttpEndpoint>,
    sync: Vec<String>,
    mutation_fns: Vec<(String, Function)>,
}

impl Config {
    /// Settings for the app `app` (its name; it names the channel and the leader's database).
    pub fn new(app: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            ..Self::default()
        }
    }

    /// The user scope, when the app has signed-in users: each scope has its own outbox.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The worker script to start (the leader runs in it). Without it the tab only looks for
    /// a leader that another tab started.
    pub fn worker_url(mut self, url: impl Into<String>) -> Self {
        self.worker_url = Some(url.into());
        self
    }

    /// A SharedWorker where the browser has one ([`SharedWorkerChoice::Auto`], the default),
    /// or always a dedicated worker ([`SharedWorkerChoice::Never`]).
    pub fn shared_worker(mut self, choice: SharedWorkerChoice) -> Self {
        self.shared_worker = Some(choice);
        self
    }

    /// How long to wait for a leader before going online-only (default 3000 ms).
    pub fn leader_timeout_ms(mut self, ms: u32) -> Self {
        self.leader_timeout_ms = Some(ms);
        self
    }

    /// How long to wait for answers to [`peek_outbox`](super::Outbox::peek_outbox) and the
    /// like before failing with `OUTBOX_LEADER_LOST` (default 5000 ms).
    pub fn request_timeout_ms(mut self, ms: u32) -> Self {
        self.request_timeout_ms = Some(ms);
        self
    }

    /// [`should_back_off`](super::Outbox::should_back_off) is true from this many unsettled
    /// transactions on (default 1000).
    pub fn back_off_threshold(mut self, n: u32) -> Self {
        self.back_off_threshold = Some(n);
        self
    }

    /// Calls running at once in the tab's own executor (online-only mode; default 8). A
    /// request to a batching HTTP endpoint counts once, whatever it carries.
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = Some(n);
        self
    }

    /// Transactions per request to a batching HTTP endpoint (`batch: true`) in the tab's own
    /// executor (online-only mode; default 100).
    pub fn max_batch(mut self, n: u32) -> Self {
        self.max_batch = Some(n);
        self
    }

    /// The retry policy of the tab's own executor (online-only mode).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The built-in HTTP mutation function under `name`: transactions are POSTed to the
    /// endpoint (online-only mode; the leader worker has its own settings).
    pub fn http(mut self, name: impl Into<String>, endpoint: HttpEndpoint) -> Self {
        self.http.insert(name.into(), endpoint);
        self
    }

    /// The collections whose change feed (the reference server's `/api` shape) this tab
    /// follows itself while it is online-only, as the leader's worker does in its `sync`
    /// option (JS `connect({ sync: { collections } })`). Define them with
    /// [`CollectionOptions::sync_leader`](super::CollectionOptions::sync_leader).
    pub fn sync<S: Into<String>>(mut self, collections: impl IntoIterator<Item = S>) -> Self {
        self.sync = collections.into_iter().map(Into::into).collect();
        self
    }

    /// A mutation function written in Rust, under `name`. It runs while this tab is
    /// online-only (no leader can serve it); a leader runs the functions of its worker.
    ///
    /// ```text
    /// Config::new("todos").mutation_fn("todos", |call: MutationCall| async move {
    ///     let answer = post("/api/todos", &call.transaction, &call.idempotency_key).await;
    ///     match answer.status {
    ///         200..=299 => Ok(Applied::default()),
    ///         status => Err(MutationError::http(status, "the server refused it")),
    ///     }
    /// })
    /// ```
    pub fn mutation_fn<F, Fut>(mut self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn(MutationCall) -> Fut + 'static,
        Fut: Future<Output = Result<Applied, MutationError>> + 'static,
    {
        self.mutation_fns.push((name.into(), js_mutation_fn(f)));
        self
    }

    /// A mutation function written in JS (or made with [`js_mutation_fn`]), under `name`.
    pub fn js_mutation_fn(mut self, name: impl Into<String>, f: Function) -> Self {
        self.mutation_fns.push((name.into(), f));
        self
    }

    /// As the JS options object `OutboxClient.connect` reads.
    pub(crate) fn to_js(&self) -> Result<JsValue, OutboxError> {
        let o = Object::new();
        let set = |target: &Object, k: &str, v: JsValue| {
            let _ = Reflect::set(target, &JsValue::from_str(k), &v);
        };
        set(&o, "app", JsValue::from_str(&self.app));
        let texts = [("scope", &self.scope), ("workerUrl", &self.worker_url)];
        for (k, v) in texts {
            if let Some(v) = v {
                set(&o, k, JsValue::from_str(v));
            }
        }
        if let Some(choice) = self.shared_worker {
            let name = match choice {
                SharedWorkerChoice::Auto => "auto",
                SharedWorkerChoice::Never => "never",
            };
            set(&o, "sharedWorker", JsValue::from_str(name));
        }
        let numbers = [
            ("leaderTimeoutMs", self.leader_timeout_ms),
            ("requestTimeoutMs", self.request_timeout_ms),
            ("backOffThreshold", self.back_off_threshold),
            ("maxConcurrency", self.max_concurrency),
            ("maxBatch", self.max_batch),
        ];
        for (k, v) in numbers {
            if let Some(v) = v {
                set(&o, k, JsValue::from(v));
            }
        }
        if let Some(retry) = &self.retry {
            set(&o, "retry", to_js(retry)?);
        }
        if !self.http.is_empty() {
            set(&o, "http", to_js(&self.http)?);
        }
        if !self.sync.is_empty() {
            let sync = Object::new();
            set(&sync, "collections", to_js(&self.sync)?);
            set(&o, "sync", sync.into());
        }
        if !self.mutation_fns.is_empty() {
            let fns = Object::new();
            for (name, f) in &self.mutation_fns {
                set(&fns, name, f.into());
            }
            set(&o, "mutationFns", fns.into());
        }
        Ok(o.into())
    }
}

/// One call of a mutation function: persist `transaction` at the server.
#[derive(Debug, Clone)]
pub struct MutationCall {
    /// The transaction: its mutations, in order, with their keys and values.
    pub transaction: Transaction,
    /// The idempotency key (the transaction's id): a retry sends the same one, so a server that
    /// dedups by it applies the change once.
    pub idempotency_key: String,
    /// Which attempt this is (from 1).
    pub attempt: u32,
    /// The epoch of the leader making the call (0 for a tab's own executor).
    pub epoch: u64,
    signal: JsValue,
}

impl MutationCall {
    fn from_js(arg: &JsValue) -> Result<Self, OutboxError> {
        let field = |k: &str| Reflect::get(arg, &JsValue::from_str(k)).unwrap_or_default();
        let number = |k: &str| field(k).as_f64().filter(|n| n.is_finite() && *n >= 0.0);
        Ok(Self {
            transaction: from_js(field("transaction"))?,
            idempotency_key: field("idempotencyKey").as_string().unwrap_or_default(),
            attempt: number("attempt").map_or(0, |n| n as u32),
            epoch: number("epoch").map_or(0, |n| n as u64),
            signal: field("signal"),
        })
    }

    /// The call's `AbortSignal` (cast it with `unchecked_ref::<web_sys::AbortSignal>()` to pass
    /// it to `fetch`): aborted when the executor gives up on the call.
    pub fn signal(&self) -> &JsValue {
        &self.signal
    }

    /// Whether the call was aborted (the tab closed, or a leader took over).
    pub fn is_aborted(&self) -> bool {
        Reflect::get(&self.signal, &JsValue::from_str("aborted"))
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }
}

/// A mutation function's success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The server's sequence number of the applied change, for a sequence-aware sync: the
    /// transaction completes once the sync has reached it.
    pub seq: Option<u64>,
}

impl Applied {
    fn to_js(self) -> JsValue {
        let o = Object::new();
        if let Some(seq) = self.seq {
            let _ = Reflect::set(&o, &JsValue::from_str("seq"), &JsValue::from(seq as f64));
        }
        o.into()
    }
}

/// A mutation function's failure. Without a status it is retried unless `retriable` is false;
/// with one it is classified like an HTTP answer (4xx final except 408 and 429, others
/// retried), and `retriable: false` still makes it final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutationError {
    /// Plain words, kept in the transaction's error.
    pub message: String,
    /// Whether another attempt may succeed.
    pub retriable: bool,
    /// The HTTP status the server answered, if any.
    pub status: Option<u16>,
    /// Wait at least this long before the next attempt, in ms.
    pub retry_after_ms: Option<u64>,
}

impl MutationError {
    /// A failure worth retrying (the network, a timeout, a 5xx).
    pub fn retriable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retriable: true,
            status: None,
            retry_after_ms: None,
        }
    }

    /// A failure for good: the transaction fails with `OUTBOX_NON_RETRIABLE` and rolls back.
    pub fn non_retriable(message: impl Into<String>) -> Self {
        Self {
            retriable: false,
            ..Self::retriable(message)
        }
    }

    /// The server answered `status`: classified like an HTTP answer.
    pub fn http(status: u16, message: impl Into<String>) -> Self {
        Self {
            status: Some(status),
            ..Self::retriable(message)
        }
    }

    /// Waits at least `ms` before the next attempt.
    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    /// As the JS error the executor classifies.
    fn to_js(&self) -> JsValue {
        let error = js_sys::Error::new(&self.message);
        let set = |k: &str, v: JsValue| {
            let _ = Reflect::set(&error, &JsValue::from_str(k), &v);
        };
        if !self.retriable {
            error.set_name("NonRetriableError");
            set("retriable", JsValue::FALSE);
        }
        if let Some(status) = self.status {
            set("status", JsValue::from(status));
        }
        if let Some(ms) = self.retry_after_ms {
            set("retryAfterMs", JsValue::from(ms as f64));
        }
        error.into()
    }
}

/// A Rust mutation function as the JS function Outbox calls (`(call) => Promise`): for
/// [`Config::mutation_fn`], or for the `mutationFns` of a leader started from Rust.
pub fn js_mutation_fn<F, Fut>(f: F) -> Function
where
    F: Fn(MutationCall) -> Fut + 'static,
    Fut: Future<Output = Result<Applied, MutationError>> + 'static,
{
    let call = move |arg: JsValue| -> Promise {
        let call = match MutationCall::from_js(&arg) {
            Ok(call) => call,
            Err(e) => {
                let message = format!("the mutation function's argument was unreadable: {e}");
                return Promise::reject(&MutationError::non_retriable(message).to_js());
            }
        };
        let running = f(call);
        wasm_bindgen_futures::future_to_promise(async move {
            match running.await {
                Ok(applied) => Ok(applied.to_js()),
                Err(e) => Err(e.to_js()),
            }
        })
    };
    // Owned by JS: the client keeps it for as long as it may call it.
    Closure::<dyn FnMut(JsValue) -> Promise>::own_aborting(call)
        .into_js_value()
        .unchecked_into()
}
