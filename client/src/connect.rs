//! `OutboxClient.connect(options)`: join the channel, start the worker, find the leader.
//!
//! The promise resolves once the mode is known: `offline-enabled` when a leader speaks,
//! `online-only` at once when no leader can exist (no Web Locks, no IndexedDB, no
//! BroadcastChannel, the worker failed), or after `leaderTimeoutMs` with no leader.

use crate::client::OutboxClient;
use crate::errors::{Diagnostic, DiagnosticCode, Mode};
use crate::inner::Inner;
use crate::options::ConnectOptions;
use crate::page::PageListeners;
use crate::worker::OwnWorker;
use futures_channel::oneshot;
use outbox_runtime::channel::Channel;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
impl OutboxClient {
    /// Connects this tab: `await OutboxClient.connect({ app: 'todos', workerUrl })`. Rejects
    /// with `OUTBOX_INVALID` for bad options; otherwise resolves once the mode is known.
    pub async fn connect(
        #[wasm_bindgen(unchecked_param_type = "ConnectOptions")] options: JsValue,
    ) -> Result<OutboxClient, JsValue> {
        let (parsed, fns) = ConnectOptions::parse(&options)?;
        let get_credentials = credentials_hook(&options)?;
        let inner = Inner::new(parsed, options.clone(), fns);
        *inner.get_credentials.borrow_mut() = get_credentials;
        let (decided, mode_known) = oneshot::channel();
        *inner.decided.borrow_mut() = Some(decided);
        Inner::start(&inner);
        if inner.mode.get() == Mode::Connecting {
            // Resolved by the first mode decision (the sender lives in `inner`, which this
            // function holds, so it is never dropped unsent while we wait).
            let _ = mode_known.await;
        }
        Ok(OutboxClient(inner))
    }
}

impl Inner {
    fn start(this: &Rc<Self>) {
        *this.page.borrow_mut() = PageListeners::attach(this);
        let weak = Rc::downgrade(this);
        let channel = Channel::open(&this.scope, this.me.clone(), move |env| {
            if let Some(inner) = weak.upgrade() {
                Inner::on_channel(&inner, env);
            }
        });
        match channel {
            Ok(c) => *this.channel.borrow_mut() = Some(c),
            Err(e) => {
                let message = format!("this browser cannot reach a leader: {e}");
                let diagnostic = Diagnostic::new(DiagnosticCode::NoBroadcastChannel, message);
                return Self::go_online_only(this, diagnostic);
            }
        }
        if let Some(problem) = missing_platform() {
            return Self::go_online_only(this, problem);
        }
        if let Some(url) = this.options.worker_url.clone() {
            match OwnWorker::start(this, &url) {
                Ok(worker) => *this.worker.borrow_mut() = Some(worker),
                Err(e) => {
                    let message = format!("the Outbox worker at {url:?} could not be started: {e}");
                    let diagnostic = Diagnostic::new(DiagnosticCode::WorkerFailed, message);
                    return Self::go_online_only(this, diagnostic);
                }
            }
        }
        let hello = this.core.borrow_mut().start();
        Self::apply(this, hello);
        let weak = Rc::downgrade(this);
        let ms = this.options.leader_timeout_ms;
        this.leader_timer.borrow_mut().set(u64::from(ms), move || {
            if let Some(inner) = weak.upgrade() {
                let silent_worker = inner.worker.borrow().is_some() && !inner.worker_ready.get();
                let diagnostic = if silent_worker {
                    let message = format!(
                        "the Outbox worker did not report ready within {ms} ms (its script may \
                         have failed to load) and no leader answered"
                    );
                    Diagnostic::new(DiagnosticCode::WorkerFailed, message)
                } else {
                    let message = format!("no leader answered within {ms} ms");
                    Diagnostic::new(DiagnosticCode::NoLeader, message)
                };
                Inner::go_online_only(&inner, diagnostic);
            }
        });
    }
}

/// What this browser lacks to host a leader anywhere in the origin, if anything.
fn missing_platform() -> Option<Diagnostic> {
    let global = js_sys::global();
    let get = |target: &JsValue, key: &str| {
        js_sys::Reflect::get(target, &JsValue::from_str(key))
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    };
    let locks = get(&global, "navigator").and_then(|n| get(&n, "locks"));
    if locks.is_none() {
        return Some(Diagnostic::new(
            DiagnosticCode::NoWebLocks,
            "this browser has no Web Locks (navigator.locks), so no worker can lead; \
             changes are sent from this tab while it is open",
        ));
    }
    // Reading `indexedDB` throws in some private modes; that counts as none.
    if get(&global, "indexedDB").is_none() {
        return Some(Diagnostic::new(
            DiagnosticCode::NoIndexedDb,
            "IndexedDB is unavailable, so there can be no durable outbox; changes are sent \
             from this tab while it is open",
        ));
    }
    None
}

/// `options.getCredentials`: `() => headers | Promise<headers>`, asked when the leader needs
/// credentials for its calls.
fn credentials_hook(options: &JsValue) -> Result<Option<js_sys::Function>, JsValue> {
    let value = js_sys::Reflect::get(options, &JsValue::from_str("getCredentials"))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null());
    match value {
        None => Ok(None),
        Some(v) => v.dyn_into::<js_sys::Function>().map(Some).map_err(|_| {
            crate::errors::invalid(
                "options.getCredentials must be a function returning headers (or a promise of them)",
            )
        }),
    }
}
