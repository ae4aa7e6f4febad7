//! The tab's own worker, when the app gives `workerUrl`: a SharedWorker where the browser has
//! one (and the app did not say `sharedWorker: 'never'`), else a dedicated module worker. Its
//! name is `outbox:<scope>`, which tells the bootstrap (`outbox-worker.js`) the scope.
//!
//! Its port says `{type: 'outbox:ready'}` or `{type: 'outbox:error', code, message}`; a worker
//! that fails to load fires `error`. Either failure, while the tab is still connecting, makes
//! it online-only. (Chrome fires no `error` for a module SharedWorker whose script fails to
//! load; such a worker is noticed when it has not said `ready` by the leader timeout.) A
//! dedicated worker may also say `{type: 'outbox:leading', epoch}` and
//! `{type: 'outbox:following'}`, which is how the tab knows it is the leader tab; and it is told
//! `{type: 'outbox:resign'}` / `{type: 'outbox:resume'}` when the page is hidden for good or
//! frozen, and comes back.
//!
//! `ready` also gives the worker's `id` and `lane: true`: while the verified leader has that
//! id, the tab posts the protocol's texts on this port instead of the channel, and the leader's
//! replies come back on it (strings, where control messages are objects; see
//! `outbox_runtime::lane`).

use crate::errors::{Diagnostic, DiagnosticCode};
use crate::events::ClientEvent;
use crate::inner::Inner;
use crate::listen::{string_field, Listener};
use crate::options::SharedWorkerChoice;
use outbox_runtime::convert::JsErrorInfo;
use outbox_runtime::lane::Port;
use outbox_shared::model::ClientId;
use std::rc::{Rc, Weak};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{EventTarget, MessagePort, SharedWorker, Worker, WorkerOptions, WorkerType};

/// The worker this tab started, with its listeners.
#[derive(Debug)]
pub(crate) enum OwnWorker {
    /// A dedicated worker: this tab's alone, terminated with the client.
    Dedicated {
        worker: Worker,
        line: Option<Port>,
        _listeners: Vec<Listener>,
    },
    /// A SharedWorker: the tab's port to it is closed with the client.
    Shared {
        port: MessagePort,
        line: Option<Port>,
        _listeners: Vec<Listener>,
    },
}

impl OwnWorker {
    /// Starts the worker. `Err` says why it could not even be constructed.
    pub fn start(inner: &Rc<Inner>, url: &str) -> Result<Self, String> {
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        options.set_name(&format!("outbox:{}", inner.scope));
        let has_shared =
            js_sys::Reflect::has(&js_sys::global(), &"SharedWorker".into()).unwrap_or(false);
        let describe = |e: JsValue| JsErrorInfo::from_js(&e).to_string();
        if has_shared && inner.options.shared_worker == SharedWorkerChoice::Auto {
            let worker = SharedWorker::new_with_worker_options(url, &options).map_err(describe)?;
            let port = worker.port();
            let listeners = [
                listen(port.unchecked_ref(), "message", inner, true),
                listen(worker.unchecked_ref(), "error", inner, true),
            ]
            .into_iter()
            .flatten()
            .collect();
            port.start();
            Ok(Self::Shared {
                line: Port::new(port.clone().into()),
                port,
                _listeners: listeners,
            })
        } else {
            let worker = Worker::new_with_options(url, &options).map_err(describe)?;
            let listeners = [
                listen(worker.unchecked_ref(), "message", inner, false),
                listen(worker.unchecked_ref(), "error", inner, false),
            ]
            .into_iter()
            .flatten()
            .collect();
            Ok(Self::Dedicated {
                line: Port::new(worker.clone().into()),
                worker,
                _listeners: listeners,
            })
        }
    }

    /// The worker's port, to post the protocol's text on while it leads (see
    /// `outbox_runtime::lane`).
    pub fn port(&self) -> Option<Port> {
        match self {
            Self::Dedicated { line, .. } | Self::Shared { line, .. } => line.clone(),
        }
    }

    /// Tells a dedicated worker to stop leading (`resign`) or to wait for the lock again
    /// (`resume`). A SharedWorker serves other tabs too, so it is not told.
    pub fn control(&self, what: &str) {
        if let Self::Dedicated { worker, .. } = self {
            let msg = js_sys::Object::new();
            let _ = js_sys::Reflect::set(
                &msg,
                &"type".into(),
                &JsValue::from_str(&format!("outbox:{what}")),
            );
            let _ = worker.post_message(&msg);
        }
    }
}

impl Drop for OwnWorker {
    fn drop(&mut self) {
        match self {
            Self::Dedicated { worker, .. } => worker.terminate(),
            Self::Shared { port, .. } => port.close(),
        }
    }
}

fn listen(
    target: &EventTarget,
    kind: &'static str,
    inner: &Rc<Inner>,
    shared: bool,
) -> Option<Listener> {
    let weak: Weak<Inner> = Rc::downgrade(inner);
    Listener::new(target, kind, move |event| {
        let Some(inner) = weak.upgrade() else { return };
        if kind == "error" {
            let message = string_field(&event, "message")
                .unwrap_or_else(|| "the worker script could not be loaded or threw".to_owned());
            worker_failed(&inner, format!("the Outbox worker failed: {message}"));
        } else {
            let data = js_sys::Reflect::get(&event, &"data".into()).unwrap_or(JsValue::NULL);
            on_port_message(&inner, &data, shared);
        }
    })
}

fn worker_failed(inner: &Rc<Inner>, message: String) {
    inner.worker_failed.set(true);
    Inner::go_online_only(
        inner,
        Diagnostic::new(DiagnosticCode::WorkerFailed, message),
    );
}

fn on_port_message(inner: &Rc<Inner>, data: &JsValue, shared: bool) {
    if data.is_string() || data.is_instance_of::<js_sys::ArrayBuffer>() {
        // The leader's answer to what this tab posted on the port: a channel message like any
        // (a large part comes as the bytes of its text).
        let env = inner.channel.borrow().as_ref().and_then(|c| c.accept(data));
        if let Some(env) = env {
            Inner::on_channel(inner, env);
        }
        return;
    }
    match string_field(data, "type").as_deref() {
        Some("outbox:ready") => {
            inner.worker_ready.set(true);
            let lane = js_sys::Reflect::get(data, &"lane".into()).is_ok_and(|v| v.is_truthy());
            if let Some(id) = string_field(data, "id").filter(|_| lane) {
                *inner.worker_id.borrow_mut() = Some(ClientId(id));
            }
            inner.emit(|| ClientEvent::WorkerReady);
            Inner::pump(inner);
        }
        Some("outbox:error") => {
            let code = string_field(data, "code").unwrap_or_else(|| "OUTBOX_INVALID".to_owned());
            let message = string_field(data, "message").unwrap_or_default();
            worker_failed(
                inner,
                format!("the Outbox worker could not start: {code}: {message}"),
            );
        }
        Some(kind @ ("outbox:leading" | "outbox:following")) if !shared => {
            let leading = kind == "outbox:leading";
            if inner.leader_tab.replace(leading) != leading {
                let said = js_sys::Reflect::get(data, &"epoch".into())
                    .ok()
                    .and_then(|e| e.as_f64())
                    .filter(|e| e.is_finite() && *e >= 0.0)
                    .map(|e| e as u64);
                let known = inner.core.borrow().leader().map_or(0, |e| e.0);
                let epoch = said.unwrap_or(known);
                Inner::leadership_changed(inner, epoch);
                Inner::pump(inner);
            }
        }
        _ => {}
    }
}
