//! What the browser tests share: a real leader started in the test page, clients, JS mutation
//! functions, and ways to wait for events. Every wait is on an event or a promise, never a
//! timer.
#![allow(dead_code, reason = "each test file uses a different part")]

use futures_channel::mpsc;
use futures_util::StreamExt;
use js_sys::{Array, Function, Object, Promise, Reflect};
use outbox_client::{Collection, OutboxClient, TransactionHandle};
use outbox_worker::leader::Leader;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A scope no other test uses (the leader's database, lock and channel derive from it).
pub fn unique_scope(name: &str) -> String {
    format!("{name}-{}", outbox_runtime::clock::random_id())
}

/// A plain JS object from `(key, value)` pairs.
pub fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

/// A JS value from a JSON text.
pub fn json(text: &str) -> JsValue {
    js_sys::JSON::parse(text).unwrap()
}

/// A property of a JS value.
pub fn prop(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

/// A string property of a JS value.
pub fn text(value: &JsValue, key: &str) -> Option<String> {
    prop(value, key).as_string()
}

/// Runs `body` as a JS function of `args` called with `values`, and returns what it returns.
pub fn js_call(args: &str, body: &str, values: &[&JsValue]) -> JsValue {
    let factory = Function::new_with_args(args, body);
    let values: Array = values.iter().copied().collect();
    factory.apply(&JsValue::NULL, &values).unwrap()
}

/// Makes a JS function: `maker` is the body of a function of `args` that returns it.
pub fn js_fn(args: &str, maker: &str, values: &[&JsValue]) -> Function {
    js_call(args, maker, values).dyn_into().unwrap()
}

/// A URL for a module worker script with this source.
pub fn worker_url(source: &str) -> String {
    js_call(
        "src",
        "return URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));",
        &[&JsValue::from_str(source)],
    )
    .as_string()
    .unwrap()
}

/// A mutation function that logs each call's idempotency key to `log` and succeeds.
pub fn succeeding(log: &Array) -> Function {
    js_fn(
        "log",
        "return (call) => { log.push(call.idempotencyKey); return { ok: true }; }",
        &[log],
    )
}

/// A mutation function that logs, waits for `gate`, then fails for good.
pub fn refusing_after(gate: &Promise, log: &Array) -> Function {
    js_fn(
        "gate, log",
        "return async (call) => { log.push(call.idempotencyKey); await gate; \
         throw { name: 'NonRetriableError', message: 'refused by the test server' }; }",
        &[gate, log],
    )
}

/// A promise and the function that resolves it.
pub struct Gate {
    pub promise: Promise,
    resolve: Function,
}

impl Gate {
    pub fn new() -> Self {
        let mut slot = None;
        let promise = Promise::new(&mut |resolve, _| slot = Some(resolve));
        Self {
            promise,
            resolve: slot.unwrap(),
        }
    }

    pub fn open(&self) {
        self.resolve.call0(&JsValue::NULL).unwrap();
    }
}

/// Starts the real leader for `scope` in this page, with these mutation functions.
pub async fn start_leader(scope: &str, fns: &[(&str, &Function)]) -> Leader {
    start_leader_with(scope, fns, &[]).await
}

/// Starts the real leader for `scope` in this page, with these mutation functions and other
/// options of the worker.
pub async fn start_leader_with(
    scope: &str,
    fns: &[(&str, &Function)],
    extra: &[(&str, JsValue)],
) -> Leader {
    let mutation_fns = Object::new();
    for (name, f) in fns {
        Reflect::set(&mutation_fns, &JsValue::from_str(name), f).unwrap();
    }
    let mut pairs = vec![
        ("app", JsValue::from_str(scope)),
        ("mutationFns", mutation_fns.into()),
    ];
    pairs.extend(extra.iter().cloned());
    let options = obj(&pairs);
    let parsed = outbox_worker::options::parse(&options).unwrap();
    Leader::start(scope.to_owned(), parsed).await.unwrap()
}

/// Connects a client to `scope` with extra options.
pub async fn connect(scope: &str, extra: &[(&str, JsValue)]) -> OutboxClient {
    let mut pairs = vec![("app", JsValue::from_str(scope))];
    pairs.extend(extra.iter().cloned());
    OutboxClient::connect(obj(&pairs)).await.unwrap()
}

/// A `todos` collection keyed by `id`.
pub fn todos(client: &OutboxClient) -> Collection {
    client
        .collection(
            "todos".into(),
            Some(obj(&[("key", JsValue::from_str("id"))])),
        )
        .unwrap()
}

/// A todo row.
pub fn todo(id: &str, title: &str) -> JsValue {
    obj(&[
        ("id", JsValue::from_str(id)),
        ("title", JsValue::from_str(title)),
    ])
}

/// Awaits a promise.
pub async fn settle(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

/// Awaits a handle's `completed`, expecting a rejection; returns the error.
pub async fn rejection(h: &TransactionHandle) -> JsValue {
    match settle(h.completed()).await {
        Ok(v) => panic!("expected a rejection, got {v:?}"),
        Err(e) => e,
    }
}

/// A JS function whose calls (first argument) come out of a stream.
pub struct Calls {
    pub f: Function,
    rx: mpsc::UnboundedReceiver<JsValue>,
}

impl Calls {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded();
        let closure = Closure::<dyn FnMut(JsValue)>::new(move |v| {
            let _ = tx.unbounded_send(v);
        });
        Self {
            f: closure.into_js_value().unchecked_into(),
            rx,
        }
    }

    /// Waits for the next call.
    pub async fn next(&mut self) -> JsValue {
        self.rx.next().await.expect("the listener was dropped")
    }

    /// Waits until `ok` holds (checked at each call).
    pub async fn until(&mut self, mut ok: impl FnMut(&JsValue) -> bool) {
        loop {
            let v = self.next().await;
            if ok(&v) {
                return;
            }
        }
    }
}

/// Waits until `ok(collection)` holds, checking after each change of its rows.
pub async fn rows_until(c: &Collection, mut ok: impl FnMut(&Collection) -> bool) {
    if ok(c) {
        return;
    }
    let mut calls = Calls::new();
    let unsubscribe = c.subscribe(calls.f.clone());
    calls.until(|_| ok(c)).await;
    unsubscribe.call0(&JsValue::NULL).unwrap();
}

/// Waits until the handle reaches `state`.
pub async fn state_until(h: &TransactionHandle, state: &str) {
    if h.state() == state {
        return;
    }
    let mut calls = Calls::new();
    let _unsubscribe = h.on_state_change(calls.f.clone());
    calls
        .until(|s| s.as_string().as_deref() == Some(state))
        .await;
}

/// Whether the collection has a row with this key.
pub fn has(c: &Collection, key: &str) -> bool {
    !c.get(JsValue::from_str(key)).unwrap().is_undefined()
}

/// The error's `code`.
pub fn code(e: &JsValue) -> String {
    text(e, "code").unwrap_or_default()
}

/// Awaits a promise for at most `ms` milliseconds: a test of something that used to hang fails
/// (rejects with `what`) rather than hangs.
pub async fn within(ms: u32, what: &str, p: Promise) -> Result<JsValue, JsValue> {
    let bounded = js_call(
        "p, ms, what",
        "return Promise.race([p, new Promise((_, reject) => \
           setTimeout(() => reject(new Error(`still waiting after ${ms} ms: ${what}`)), ms))]);",
        &[&p, &JsValue::from(ms), &JsValue::from_str(what)],
    );
    settle(bounded.unchecked_into()).await
}

/// Collects `onEvent` events of type `diagnostic`.
pub fn diagnostics_of(client: &OutboxClient) -> (Array, Function) {
    let seen = Array::new();
    let f = js_fn(
        "seen",
        "return (e) => { if (e.type === 'diagnostic') seen.push(e); };",
        &[&seen],
    );
    let unsubscribe = client.on_event(f);
    (seen, unsubscribe)
}
