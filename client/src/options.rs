//! What the app passes to `OutboxClient.connect(options)`, read and checked in one place.

use crate::errors::invalid;
use outbox_runtime::calls::MutationFns;
use outbox_shared::retry::RetryPolicy;
use wasm_bindgen::JsValue;

/// Whether to start a SharedWorker when the browser has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedWorkerChoice {
    /// A SharedWorker where the browser has it, else a dedicated worker.
    Auto,
    /// Always a dedicated worker.
    Never,
}

/// The plain settings of a client.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectOptions {
    /// The app's name.
    pub app: String,
    /// The user scope, when the app has signed-in users.
    pub scope: Option<String>,
    /// The worker script to start; without it the tab only looks for a leader.
    pub worker_url: Option<String>,
    /// SharedWorker or dedicated worker.
    pub shared_worker: SharedWorkerChoice,
    /// How long to wait for a leader before going online-only, in ms.
    pub leader_timeout_ms: u32,
    /// How long to wait for an answer to `peekOutbox()` and friends, in ms.
    pub request_timeout_ms: u32,
    /// `shouldBackOff()` is true from this many unsettled transactions on.
    pub back_off_threshold: u32,
    /// The retry policy of the tab's own executor (online-only mode).
    pub retry: RetryPolicy,
    /// Calls running at once in the tab's own executor (a request to a batching HTTP endpoint
    /// counts once).
    pub max_concurrency: usize,
    /// Transactions per request to a batching HTTP endpoint in the tab's own executor.
    pub max_batch: usize,
    /// The change feed this tab follows itself in online-only mode (the leader's `sync`
    /// option, given to `connect` too, like `http`).
    pub sync: Option<outbox_runtime::sync::SyncOptions>,
    /// The app's own change feed (`sync.source`), if any.
    pub sync_source: Option<outbox_runtime::sync::SourceFns>,
}

impl ConnectOptions {
    /// The channel scope: `app`, or `app:scope`.
    pub fn channel_scope(&self) -> String {
        match &self.scope {
            Some(s) => format!("{}:{s}", self.app),
            None => self.app.clone(),
        }
    }

    /// Reads the options object; throws `OUTBOX_INVALID` naming the bad field.
    pub fn parse(options: &JsValue) -> Result<(Self, MutationFns), JsValue> {
        if !options.is_object() {
            return Err(invalid(
                "OutboxClient.connect needs an options object like { app: 'todos' }",
            ));
        }
        let field = |name: &str| {
            js_sys::Reflect::get(options, &JsValue::from_str(name))
                .ok()
                .filter(|v| !v.is_undefined() && !v.is_null())
        };
        let app = match field("app").map(|v| v.as_string()) {
            Some(Some(app)) if !app.is_empty() => app,
            _ => return Err(invalid("options.app must be a non-empty string")),
        };
        let text = |name: &str| -> Result<Option<String>, JsValue> {
            match field(name).map(|v| v.as_string()) {
                None => Ok(None),
                Some(Some(s)) if !s.is_empty() => Ok(Some(s)),
                Some(_) => Err(invalid(format!(
                    "options.{name} must be a non-empty string"
                ))),
            }
        };
        let number = |name: &str, default: u32| -> Result<u32, JsValue> {
            match field(name).map(|v| v.as_f64()) {
                None => Ok(default),
                Some(Some(n)) if n.is_finite() && n >= 0.0 && n <= f64::from(u32::MAX) => {
                    Ok(n as u32)
                }
                Some(_) => Err(invalid(format!(
                    "options.{name} must be a number of at least 0"
                ))),
            }
        };
        let shared_worker = match text("sharedWorker")?.as_deref() {
            None | Some("auto") => SharedWorkerChoice::Auto,
            Some("never") => SharedWorkerChoice::Never,
            Some(other) => {
                return Err(invalid(format!(
                    "options.sharedWorker must be 'auto' or 'never', not {other:?}"
                )))
            }
        };
        let retry = match field("retry") {
            None => RetryPolicy::default(),
            Some(v) => outbox_runtime::convert::from_js(v)
                .map_err(|e| invalid(format!("options.retry: {e}")))?,
        };
        let (sync, sync_source) = match field("sync") {
            None => (None, None),
            Some(v) => {
                let plain = outbox_runtime::sync::SourceFns::strip(&v);
                let sync = outbox_runtime::convert::from_js(plain)
                    .map_err(|e| invalid(format!("options.sync: {e}")))?;
                let source = outbox_runtime::sync::SourceFns::from_sync_options(&v)
                    .map_err(|e| invalid(format!("options.{e}")))?;
                (Some(sync), source)
            }
        };
        let fns = MutationFns::from_options(options).map_err(invalid)?;
        let parsed = Self {
            app,
            scope: text("scope")?,
            worker_url: text("workerUrl")?,
            shared_worker,
            leader_timeout_ms: number("leaderTimeoutMs", 3000)?,
            request_timeout_ms: number("requestTimeoutMs", 5000)?,
            back_off_threshold: number("backOffThreshold", 1000)?,
            retry,
            max_concurrency: number("maxConcurrency", 8)?.max(1) as usize,
            max_batch: number("maxBatch", 100)?.max(1) as usize,
            sync,
            sync_source,
        };
        Ok((parsed, fns))
    }
}
