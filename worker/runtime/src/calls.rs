//! Calling mutation functions: the app's JS functions by name, or the built-in HTTP one.

use crate::convert::to_js;
use crate::timer::call_global;
use outbox_shared::executor::{AttemptOutcome, AttemptSuccess, Command};
use outbox_shared::http::{self, HttpAnswer, HttpEndpoint, HttpRequest, FENCED_HEADER};
use outbox_shared::model::{ErrorCode, Millis, Transaction};
use outbox_shared::retry::{classify_http, AttemptError, ErrorKind};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The mutation functions a runtime can call, by name.
#[derive(Debug, Default)]
pub struct MutationFns {
    fns: HashMap<String, js_sys::Function>,
    http: HashMap<String, HttpEndpoint>,
    on_unknown: Option<js_sys::Function>,
    /// Headers a tab sent as credentials, added to every call. In memory only.
    credentials: RefCell<BTreeMap<String, String>>,
    /// The outbox's lineage, sent beside the epoch ([`HttpRequest::in_lineage`]).
    lineage: RefCell<Option<String>>,
}

/// How a call will be made.
#[derive(Debug)]
pub enum Route<'a> {
    /// The app's JS function.
    Js(&'a js_sys::Function),
    /// The built-in HTTP function.
    Http(&'a HttpEndpoint),
    /// No function by that name.
    Unknown,
}

impl MutationFns {
    /// Reads `{ mutationFns?: {name: fn}, http?: {name: {url, headers?, batch?}},
    /// onUnknownMutationFn?: fn }`. Entries that are not functions or endpoint objects are
    /// reported as an error naming them.
    pub fn from_options(options: &JsValue) -> Result<Self, String> {
        let mut out = Self::default();
        let get = |key: &str| js_sys::Reflect::get(options, &JsValue::from_str(key)).ok();
        if let Some(fns) = get("mutationFns").filter(|v| v.is_object()) {
            for entry in js_sys::Object::entries(fns.unchecked_ref()).iter() {
                let pair: js_sys::Array = entry.unchecked_into();
                let name = pair.get(0).as_string().unwrap_or_default();
                let f = pair
                    .get(1)
                    .dyn_into::<js_sys::Function>()
                    .map_err(|_| format!("mutationFns.{name} is not a function"))?;
                out.fns.insert(name, f);
            }
        }
        if let Some(http) = get("http").filter(|v| v.is_object()) {
            let endpoints: HashMap<String, HttpEndpoint> =
                crate::convert::from_js(http).map_err(|e| format!("http: {e}"))?;
            out.http = endpoints;
        }
        out.on_unknown = get("onUnknownMutationFn").and_then(|f| f.dyn_into().ok());
        Ok(out)
    }

    /// Registers a JS function.
    pub fn insert_fn(&mut self, name: &str, f: js_sys::Function) {
        self.fns.insert(name.to_owned(), f);
    }

    /// Registers an HTTP endpoint.
    pub fn insert_http(&mut self, name: &str, endpoint: HttpEndpoint) {
        self.http.insert(name.to_owned(), endpoint);
    }

    /// Sets the credentials (headers) to add to every call from now on.
    pub fn set_credentials(&self, headers: BTreeMap<String, String>) {
        *self.credentials.borrow_mut() = headers;
    }

    /// Forgets the credentials.
    pub fn clear_credentials(&self) {
        self.credentials.borrow_mut().clear();
    }

    /// The lineage of the outbox whose leader makes the calls (from its takeover).
    pub fn set_lineage(&self, lineage: Option<String>) {
        *self.lineage.borrow_mut() = lineage;
    }

    /// The lineage set by [`MutationFns::set_lineage`].
    pub fn lineage(&self) -> Option<String> {
        self.lineage.borrow().clone()
    }

    /// The credentials now in force.
    pub fn credentials(&self) -> BTreeMap<String, String> {
        self.credentials.borrow().clone()
    }

    /// An HTTP request with the credentials added (they replace headers of the same name).
    pub fn with_credentials(&self, mut request: HttpRequest) -> HttpRequest {
        let creds = self.credentials.borrow();
        if !creds.is_empty() {
            request
                .headers
                .retain(|(k, _)| !creds.keys().any(|c| c.eq_ignore_ascii_case(k)));
            request
                .headers
                .extend(creds.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        request
    }

    /// The request of one transaction's call to an HTTP function, credentials added;
    /// `None` when its name does not route to one.
    pub fn http_request(&self, tx: &Transaction) -> Option<HttpRequest> {
        match self.route(&tx.mutation_fn) {
            Route::Http(endpoint) => Some(
                self.with_credentials(
                    endpoint
                        .request(tx)
                        .in_lineage(self.lineage.borrow().as_deref()),
                ),
            ),
            _ => None,
        }
    }

    /// The requests of a batch of calls to the HTTP function `name`, each with how many of
    /// the calls (in order) it carries, credentials added (see
    /// [`HttpEndpoint::batch_requests`](outbox_shared::http::HttpEndpoint::batch_requests));
    /// `None` when `name` does not route to one.
    pub fn http_batch_requests(
        &self,
        name: &str,
        txs: &[&Transaction],
    ) -> Option<Vec<(HttpRequest, usize)>> {
        match self.route(name) {
            Route::Http(endpoint) => {
                let lineage = self.lineage.borrow();
                Some(
                    endpoint
                        .batch_requests(txs)
                        .into_iter()
                        .map(|(request, n)| {
                            let request = request.in_lineage(lineage.as_deref());
                            (self.with_credentials(request), n)
                        })
                        .collect(),
                )
            }
            _ => None,
        }
    }

    /// Whether it has no function at all, JS or HTTP (a tab connected without any relies on
    /// a leader for every call).
    pub fn is_empty(&self) -> bool {
        self.fns.is_empty() && self.http.is_empty()
    }

    /// How a transaction's mutation function is reached. JS functions win over HTTP.
    pub fn route(&self, name: &str) -> Route<'_> {
        if let Some(f) = self.fns.get(name) {
            Route::Js(f)
        } else if let Some(e) = self.http.get(name) {
            Route::Http(e)
        } else {
            Route::Unknown
        }
    }

    /// The names whose calls go to a batching HTTP endpoint (`batch: true`, and no JS
    /// function of the same name, which would win): the executor's
    /// [`batching`](outbox_shared::executor::ExecutorConfig::batching) set.
    pub fn batching(&self) -> BTreeSet<String> {
        self.http
            .iter()
            .filter(|(name, e)| e.batch && !self.fns.contains_key(*name))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// An HTTP function's name that no JS function overrides, batching ones first: what a
    /// standby's rehearsal builds requests for ([`build_requests`]).
    pub fn http_name(&self) -> Option<String> {
        self.batching().into_iter().next().or_else(|| {
            let mut names: Vec<_> = self
                .http
                .keys()
                .filter(|n| !self.fns.contains_key(*n))
                .collect();
            names.sort();
            names.first().map(|n| (*n).clone())
        })
    }

    /// Tells the app about an unknown name, and the outcome to record.
    pub fn unknown(&self, tx: &Transaction) -> AttemptOutcome {
        if let Some(f) = &self.on_unknown {
            let js_tx = to_js(tx).unwrap_or(JsValue::NULL);
            let _ = f.call2(&JsValue::NULL, &JsValue::from_str(&tx.mutation_fn), &js_tx);
        }
        Err(AttemptError::unknown_mutation_fn(&tx.mutation_fn))
    }
}

/// Calls the app's function with `{transaction, idempotencyKey, attempt, epoch, lineage,
/// signal, credentials}` (`lineage`: what the epoch counts in, to fence by it as the built-in
/// HTTP function does with `Outbox-Scope`; `credentials`: the headers a tab sent, `{}` when
/// none) and reads
/// its result: a resolved value (optionally `{seq}`) is success; a rejection is classified by
/// [`classify_js_error`].
pub async fn call_js(
    f: &js_sys::Function,
    tx: &Transaction,
    attempt: u32,
    signal: &web_sys::AbortSignal,
    credentials: &BTreeMap<String, String>,
    lineage: Option<&str>,
) -> AttemptOutcome {
    let arg = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| {
        let _ = js_sys::Reflect::set(&arg, &JsValue::from_str(k), v);
    };
    set("transaction", &to_js(tx).unwrap_or(JsValue::NULL));
    set("idempotencyKey", &JsValue::from_str(tx.id.as_str()));
    set("attempt", &JsValue::from(attempt));
    set("epoch", &JsValue::from(tx.epoch.0 as f64));
    if let (Some(lineage), true) = (lineage, tx.epoch.0 > 0) {
        set("lineage", &JsValue::from_str(lineage));
    }
    set("signal", signal);
    set("credentials", &to_js(credentials).unwrap_or(JsValue::NULL));
    let result = match f.call1(&JsValue::NULL, &arg) {
        Ok(v) => v,
        Err(e) => return Err(classify_js_error(&e)),
    };
    let value = if result.has_type::<js_sys::Promise>() {
        match JsFuture::from(result.unchecked_into::<js_sys::Promise>()).await {
            Ok(v) => v,
            Err(e) => return Err(classify_js_error(&e)),
        }
    } else {
        result
    };
    let server_seq = if value.is_object() {
        js_sys::Reflect::get(&value, &JsValue::from_str("seq"))
            .ok()
            .and_then(|s| s.as_f64())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s as u64)
    } else {
        None
    };
    Ok(AttemptSuccess { server_seq })
}

/// Reads what a mutation function threw, by kind, never by message text:
/// - `code === "OUTBOX_FENCED"`: the server refused a deposed leader;
/// - `code === "OUTBOX_NETWORK"`, or no `status` while the browser is offline
///   (`navigator.onLine` false; `fetch` rejects so then): no answer at all, retried for as long
///   as it takes without using up the retry budget, as the built-in HTTP function's are;
/// - `name === "NonRetriableError"` or `retriable === false`: final;
/// - a numeric `status`: classified like an HTTP answer (4xx final except 408/429), with
///   `retryAfterMs` honoured;
/// - anything else: retriable.
pub fn classify_js_error(e: &JsValue) -> AttemptError {
    let info = crate::convert::JsErrorInfo::from_js(e);
    let field = |k: &str| {
        if e.is_object() {
            js_sys::Reflect::get(e, &JsValue::from_str(k)).ok()
        } else {
            None
        }
    };
    let message = info.to_string();
    let code = field("code").and_then(|c| c.as_string());
    if code.as_deref() == Some(ErrorCode::Fenced.as_str()) {
        return AttemptError::fenced(message);
    }
    let status = field("status")
        .and_then(|s| s.as_f64())
        .filter(|s| (100.0..600.0).contains(s));
    if code.as_deref() == Some(ErrorCode::Network.as_str()) || (status.is_none() && offline()) {
        return AttemptError::network(message);
    }
    let retry_after = field("retryAfterMs")
        .and_then(|v| v.as_f64())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64);
    let mut err = if let Some(status) = status {
        classify_http(status as u16, retry_after).unwrap_or_else(|| AttemptError::retriable(""))
    } else {
        let mut e = AttemptError::retriable("");
        e.retry_after_ms = retry_after;
        e
    };
    if info.name == "NonRetriableError"
        || field("retriable").and_then(|v| v.as_bool()) == Some(false)
    {
        err.kind = ErrorKind::NonRetriable;
        err.error.code = ErrorCode::NonRetriable;
    }
    err.error.message = message;
    err
}

/// Whether the browser says it is offline (`navigator.onLine` false, in a page or a worker).
fn offline() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .ok()
        .filter(JsValue::is_object)
        .and_then(|n| js_sys::Reflect::get(&n, &"onLine".into()).ok())
        .and_then(|v| v.as_bool())
        == Some(false)
}

/// The browser's request for `req`, not sent. A standby builds one in its rehearsal (see
/// `outbox_worker`'s leader), so that a failover's first request runs compiled code.
pub fn build_request(
    req: &HttpRequest,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<web_sys::Request, String> {
    let headers = web_sys::Headers::new().map_err(|e| describe(&e))?;
    for (k, v) in &req.headers {
        headers.append(k, v).map_err(|e| describe(&e))?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(&req.body));
    init.set_signal(signal);
    web_sys::Request::new_with_str_and_init(&req.url, &init).map_err(|e| describe(&e))
}

/// Builds (and drops) the browser requests of `commands`' calls to HTTP functions, sending
/// none: a standby's rehearsal, so that the first request of a failover runs compiled code.
/// Calls to JS functions are left alone (they are the app's, and run only when meant).
/// Returns how many were built.
pub fn build_requests(fns: &MutationFns, commands: &[Command]) -> usize {
    let mut built = 0;
    for c in commands {
        let requests = match c {
            Command::Call { tx, .. } => fns.http_request(tx).into_iter().collect(),
            Command::CallBatch { mutation_fn, calls } => {
                let txs: Vec<&Transaction> = calls.iter().map(|(t, _)| t).collect();
                fns.http_batch_requests(mutation_fn, &txs)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(request, _)| request)
                    .collect()
            }
            _ => Vec::new(),
        };
        for request in requests {
            if build_request(&request, None).is_ok() {
                built += 1;
            }
        }
    }
    built
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unanswered {
    /// It could not be made at all (a header value the browser refuses, such as one with a
    /// character past U+00FF or a line break, or a bad URL): the same request never will be.
    Unbuildable(String),
    /// The network failed, or it was aborted.
    Network(String),
}

impl Unanswered {
    /// The attempt's outcome: a request that cannot be made fails for good (`OUTBOX_INVALID`,
    /// naming why; it was taken for the network being down, and retried for ever); no answer
    /// is a network error.
    pub fn outcome(&self) -> AttemptOutcome {
        match self {
            Self::Unbuildable(why) => {
                let mut e =
                    AttemptError::non_retriable(format!("the request could not be made: {why}"));
                e.error.code = ErrorCode::Invalid;
                Err(e)
            }
            Self::Network(why) => http::network_error(why),
        }
    }
}

/// Starts `req` with the global `fetch` (called before this returns); [`answer`] awaits it.
/// The request is aborted when `signal` is, or when its time limit runs out.
pub fn start_fetch(
    req: &HttpRequest,
    signal: &web_sys::AbortSignal,
) -> Result<js_sys::Promise, Unanswered> {
    let signal = req
        .timeout_ms
        .and_then(|ms| with_time_limit(signal, ms))
        .unwrap_or_else(|| signal.clone());
    let request = build_request(req, Some(&signal)).map_err(Unanswered::Unbuildable)?;
    let promise =
        call_global("fetch", &[&request]).map_err(|e| Unanswered::Network(describe(&e)))?;
    Ok(js_sys::Promise::from(promise))
}

/// A signal that aborts when `signal` does or `ms` have passed, whichever comes first (the
/// second with a `TimeoutError`): `AbortSignal.any` of it and `AbortSignal.timeout(ms)`.
/// `None` where the browser lacks either (the request then has no limit).
fn with_time_limit(signal: &web_sys::AbortSignal, ms: Millis) -> Option<web_sys::AbortSignal> {
    let class = js_sys::Reflect::get(&js_sys::global(), &"AbortSignal".into()).ok()?;
    let method = |name: &str| {
        js_sys::Reflect::get(&class, &name.into())
            .ok()?
            .dyn_into::<js_sys::Function>()
            .ok()
    };
    let (timeout, any) = (method("timeout")?, method("any")?);
    let limit = timeout.call1(&class, &JsValue::from_f64(ms as f64)).ok()?;
    let both = js_sys::Array::of2(signal, &limit);
    any.call1(&class, &both).ok()?.dyn_into().ok()
}

/// The answer to a request [`start_fetch`] started.
pub async fn answer(
    started: Result<js_sys::Promise, Unanswered>,
) -> Result<HttpAnswer, Unanswered> {
    let network = |e: JsValue| {
        let info = crate::convert::JsErrorInfo::from_js(&e);
        Unanswered::Network(if info.name == "TimeoutError" {
            format!("no answer within the request's time limit (timeoutMs): {info}")
        } else {
            info.to_string()
        })
    };
    let response: web_sys::Response = JsFuture::from(started?)
        .await
        .map_err(network)?
        .dyn_into()
        .map_err(network)?;
    let text = match response.text() {
        Ok(p) => JsFuture::from(p)
            .await
            .map_err(network)?
            .as_string()
            .unwrap_or_default(),
        Err(e) => return Err(network(e)),
    };
    let h = response.headers();
    Ok(HttpAnswer {
        status: response.status(),
        retry_after: h.get("Retry-After").ok().flatten(),
        fenced: h.has(FENCED_HEADER).unwrap_or(false),
        body: text,
        redirected_to: response.redirected().then(|| response.url()),
    })
}

/// The outcome of one transaction's request (started by [`start_fetch`]) to the built-in HTTP
/// function its name routes to.
pub async fn http_outcome(started: Result<js_sys::Promise, Unanswered>) -> AttemptOutcome {
    match answer(started).await {
        Ok(answer) => http::outcome(&answer, crate::clock::now()),
        Err(e) => e.outcome(),
    }
}

fn describe(e: &JsValue) -> String {
    crate::convert::JsErrorInfo::from_js(e).to_string()
}
