//! What the app passes to `startOutboxWorker(options)`.

use outbox_runtime::calls::MutationFns;
use outbox_shared::executor::{ExecutorConfig, RetryDecision};
use outbox_shared::retry::RetryPolicy;
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};

/// The plain-data part of the options.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderOptions {
    /// The app's name; the scope is `app`, or `app:<user scope>` when the tab names one.
    pub app: String,
    /// Calls running at once, at most: a request to a batching HTTP endpoint counts once.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Transactions per request to a batching HTTP endpoint, at most.
    #[serde(default = "default_batch")]
    pub max_batch: usize,
    /// Attempts and backoff.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Wait for the sync to pass a success's server sequence number before `completed`.
    #[serde(default)]
    pub await_sync: bool,
    /// `awaitSync` is the app's function: it decides when each success is synced.
    #[serde(skip)]
    pub await_sync_hook: bool,
    /// How often the leader says it is alive, in ms.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_ms: u32,
    /// A worker waiting for the lock takes it by force from a leader silent this long, in ms
    /// (plus a random share of a heartbeat).
    #[serde(default = "default_takeover")]
    pub takeover_after_ms: u32,
    /// Whether calls need credentials from a tab (`getCredentials` in `connect`): then each
    /// term waits for them before its first call. Without this a 401 still pauses the outbox
    /// and asks.
    #[serde(default)]
    pub credentials: NeedCredentials,
    /// One change feed for the origin, held by the leader (`sync: { collections, baseUrl? }`):
    /// it follows the server's feed, stores the rows, and hands them to every tab. With it,
    /// `awaitSync` is on.
    #[serde(default)]
    pub sync: Option<outbox_runtime::sync::SyncOptions>,
}

/// `credentials: true | false | 'scoped'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum NeedCredentials {
    /// `true` or `false` (the default): every scope, or none.
    Always(bool),
    /// `'scoped'`: the outboxes of a user scope (`connect({ scope })`) need them; the app's
    /// unscoped outbox (anonymous use) does not.
    Scoped(ScopedOnly),
}

impl Default for NeedCredentials {
    fn default() -> Self {
        Self::Always(false)
    }
}

/// The one string `credentials` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopedOnly {
    /// `'scoped'`.
    Scoped,
}

impl NeedCredentials {
    /// Whether the outbox of `scope` (`app`, or `app:<user>`) needs credentials.
    pub fn for_scope(self, app: &str, scope: &str) -> bool {
        match self {
            Self::Always(b) => b,
            Self::Scoped(ScopedOnly::Scoped) => scope != app,
        }
    }
}

fn default_concurrency() -> usize {
    ExecutorConfig::default().max_concurrency
}

fn default_batch() -> usize {
    ExecutorConfig::default().max_batch
}

/// The longest delay `setTimeout` and `setInterval` take, in ms.
const MAX_TIMER_MS: u32 = i32::MAX as u32;

fn default_heartbeat() -> u32 {
    1000
}

fn default_takeover() -> u32 {
    3000
}

/// Everything the leader needs from the options, functions included.
#[derive(Debug)]
pub struct Parsed {
    /// Plain settings.
    pub options: LeaderOptions,
    /// The mutation functions.
    pub fns: MutationFns,
    /// The app's `beforeRetry(transaction) => boolean`, if any.
    pub before_retry: Option<js_sys::Function>,
    /// The app's own change feed (`sync.source`), if any.
    pub sync_source: Option<outbox_runtime::sync::SourceFns>,
    /// The app's `awaitSync(transaction) => Promise`, if it gave a function.
    pub await_sync_fn: Option<js_sys::Function>,
}

/// Reads the options object. Errors name the offending field.
pub fn parse(options: &JsValue) -> Result<Parsed, String> {
    if !options.is_object() {
        return Err("startOutboxWorker needs an options object".into());
    }
    let plain: LeaderOptions = outbox_runtime::convert::from_js(plain_part(options))
        .map_err(|e| format!("options: {e}"))?;
    if plain.app.is_empty() {
        return Err("options.app must be a non-empty string".into());
    }
    for (name, ms) in [
        ("heartbeatMs", plain.heartbeat_ms),
        ("takeoverAfterMs", plain.takeover_after_ms),
    ] {
        // Timers take at most this; a longer one fires at once.
        if ms > MAX_TIMER_MS {
            return Err(format!(
                "options.{name} must be at most {MAX_TIMER_MS} (ms), not {ms}"
            ));
        }
    }
    let fns = MutationFns::from_options(options)?;
    let before_retry = js_sys::Reflect::get(options, &"beforeRetry".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let sync_source = match js_sys::Reflect::get(options, &"sync".into()) {
        Ok(sync) if sync.is_object() => outbox_runtime::sync::SourceFns::from_sync_options(&sync)?,
        _ => None,
    };
    let await_sync_fn = js_sys::Reflect::get(options, &"awaitSync".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let mut plain = plain;
    plain.await_sync_hook = await_sync_fn.is_some();
    Ok(Parsed {
        options: plain,
        fns,
        before_retry,
        sync_source,
        await_sync_fn,
    })
}

/// A copy of the options without function-valued fields (serde cannot read functions).
fn plain_part(options: &JsValue) -> JsValue {
    let out = js_sys::Object::new();
    for key in [
        "app",
        "maxConcurrency",
        "maxBatch",
        "retry",
        "awaitSync",
        "heartbeatMs",
        "takeoverAfterMs",
        "credentials",
        "sync",
    ] {
        if let Ok(v) = js_sys::Reflect::get(options, &key.into()) {
            if key == "sync" && v.is_object() {
                // Its `source` functions are read apart (`SourceFns`).
                let plain = outbox_runtime::sync::SourceFns::strip(&v);
                let _ = js_sys::Reflect::set(&out, &key.into(), &plain);
            } else if !v.is_undefined() && !v.is_function() {
                // Function-valued ones (`awaitSync`) are read apart.
                let _ = js_sys::Reflect::set(&out, &key.into(), &v);
            }
        }
    }
    out.into()
}

/// The executor configuration, with the app's `beforeRetry` wired in (a retry goes ahead unless
/// it returns `false`) and the batching HTTP endpoints of `fns`.
pub fn executor_config(
    options: &LeaderOptions,
    scope: &str,
    fns: &MutationFns,
    before_retry: Option<&js_sys::Function>,
) -> ExecutorConfig {
    let before_retry = before_retry.cloned().map(|f| {
        Box::new(move |tx: &outbox_shared::Transaction| {
            let arg = outbox_runtime::convert::to_js(tx).unwrap_or(JsValue::NULL);
            match f.call1(&JsValue::NULL, &arg) {
                Ok(v) if v.as_bool() == Some(false) => RetryDecision::Discard,
                _ => RetryDecision::Proceed,
            }
        }) as outbox_shared::executor::BeforeRetry
    });
    ExecutorConfig {
        max_concurrency: options.max_concurrency.max(1),
        max_batch: options.max_batch.max(1),
        batching: fns.batching(),
        retry: options.retry,
        await_sync: options.await_sync || options.sync.is_some(),
        await_sync_hook: options.await_sync_hook,
        credentials: options.credentials.for_scope(&options.app, scope),
        before_retry,
        ..ExecutorConfig::default()
    }
}
