//! Online-only mode: the tab runs the executor itself, with an outbox in memory
//! ([`outbox_runtime::local`]: the leader's executor, retry policy and per-key order, speaking
//! the channel protocol to the tab core without a channel). Nothing survives the tab.
//!
//! Where that executor comes from:
//! - with the `online-inline` feature (a Rust app linking this crate), it is linked into the
//!   client's wasm;
//! - without it (the npm package), it is the worker's wasm (`worker/outbox_worker.js`, its
//!   `startOnlineExecutor`), imported into the page the first time a tab goes online-only. Every
//!   tab loads the client, few ever go online-only: the executor, its driver and the change
//!   feed stay out of the client's wasm. The two modules speak in encoded envelopes. What the
//!   core says while the module loads waits for it, in order; if it cannot load (offline, and
//!   the worker's files are not cached), the app hears `OUTBOX_ONLINE_EXECUTOR_FAILED` and the
//!   tab tries again after 1 s, 2 s, 4 s … (at most 30 s apart), and at once when the core says
//!   something new: nothing the core said is lost.

use crate::errors::DiagnosticCode;
use crate::events::ClientEvent;
use crate::inner::Inner;
use outbox_runtime::local::{LocalConfig, LocalExecutor as Linked, Say};
use outbox_runtime::timer::Timer;
use outbox_shared::model::{ClientId, Epoch};
use outbox_shared::protocol::{self, Envelope, Message};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// What runs the tab's executor.
trait Serving {
    /// Starts it (once it is installed: it may speak at once).
    fn begin(&self);
    /// Says `msg` (of the tab `from`) to the executor.
    fn deliver(&self, from: &ClientId, msg: Message);
    /// Stops the executor: nothing more is said.
    fn stop(&self);
}

/// The tab's own executor. Cloning gives another handle to the same one.
#[derive(Clone)]
pub(crate) struct LocalExecutor(Rc<dyn Serving>);

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalExecutor")
    }
}

impl LocalExecutor {
    /// Starts the executor and installs it in the client; it announces itself at once (or as
    /// soon as it has loaded), which makes the tab core submit everything unsettled to it.
    pub fn start(inner: &Rc<Inner>) {
        // A constant: the branch not taken, and all it would link, leaves the release build.
        let serving: Rc<dyn Serving> = if cfg!(feature = "online-inline") {
            Rc::new(linked(inner))
        } else {
            Rc::new(Loaded::new(inner))
        };
        *inner.local.borrow_mut() = Some(Self(Rc::clone(&serving)));
        serving.begin();
    }

    /// A message of the tab core, to the executor.
    pub fn deliver(&self, inner: &Rc<Inner>, msg: Message) {
        self.0.deliver(&inner.me, msg);
    }

    /// Whether a claim of leadership is the tab's own executor's.
    pub fn speaks_as(from: &ClientId, epoch: Epoch) -> bool {
        Linked::speaks_as(from, epoch)
    }

    /// Stops: running calls are aborted, nothing more is said.
    pub fn stop(&self) {
        self.0.stop();
    }
}

/// The executor linked into this wasm.
fn linked(inner: &Rc<Inner>) -> Linked {
    let options = &inner.options;
    let config = LocalConfig {
        scope: inner.scope.clone(),
        retry: options.retry,
        max_concurrency: options.max_concurrency,
        max_batch: options.max_batch,
        fns: Rc::clone(&inner.fns),
        sync: options.sync.clone(),
        sync_source: options.sync_source.clone(),
    };
    let weak = Rc::downgrade(inner);
    let say: Say = Rc::new(move |env| {
        if let Some(inner) = weak.upgrade() {
            Inner::push_incoming(&inner, env);
        }
    });
    Linked::new(config, say)
}

impl Serving for Linked {
    fn begin(&self) {
        Linked::begin(self);
    }

    fn deliver(&self, from: &ClientId, msg: Message) {
        Linked::deliver(self, from, msg);
    }

    fn stop(&self) {
        Linked::stop(self);
    }
}

#[wasm_bindgen(inline_js = "
export async function startOnline(options, scope, emit) {
  // This snippet sits in client/snippets/<crate>/; the worker's glue in worker/.
  const worker = await import('../../../worker/outbox_worker.js');
  await worker.default();
  return worker.startOnlineExecutor(options, scope, emit);
}")]
extern "C" {
    /// The worker's `OnlineExecutor`.
    type OnlineExecutor;

    #[wasm_bindgen(catch, js_name = startOnline)]
    fn start_online(
        options: &JsValue,
        scope: &str,
        emit: &js_sys::Function,
    ) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn deliver(this: &OnlineExecutor, text: &str) -> Result<bool, JsValue>;

    #[wasm_bindgen(method)]
    fn stop(this: &OnlineExecutor);
}

/// The options for the worker's `startOnlineExecutor`: the app's (its functions are read from
/// them), with the settings `connect` read as it read them and the leader's own left out, so
/// that whatever `connect` accepted the executor accepts too (`retry: null`, `maxBatch: 2.5`,
/// an `awaitSync` meant for the worker script).
fn executor_options(inner: &Inner) -> JsValue {
    let copy = js_sys::Object::assign(
        &js_sys::Object::new(),
        inner.options_js.unchecked_ref::<js_sys::Object>(),
    );
    let leader_only = ["awaitSync", "heartbeatMs", "takeoverAfterMs", "credentials"];
    for key in js_sys::Object::keys(&copy) {
        let unset = js_sys::Reflect::get(&copy, &key).is_ok_and(|v| v.is_null());
        let leaders = key
            .as_string()
            .is_some_and(|k| leader_only.contains(&k.as_str()));
        if unset || leaders {
            let _ = js_sys::Reflect::delete_property(&copy, &key);
        }
    }
    let options = &inner.options;
    for (key, n) in [
        ("maxConcurrency", options.max_concurrency),
        ("maxBatch", options.max_batch),
    ] {
        let _ = js_sys::Reflect::set(&copy, &key.into(), &JsValue::from_f64(n as f64));
    }
    copy.into()
}

/// Says an envelope to the loaded executor. It refusing one the tab encoded is a bug, said on
/// the console.
fn send(executor: &OnlineExecutor, text: &str) {
    match executor.deliver(text) {
        Ok(true) => {}
        Ok(false) => web_sys::console::error_1(
            &"outbox: the online-only executor refused a message of this tab".into(),
        ),
        Err(e) => web_sys::console::error_2(&"outbox: the online-only executor threw".into(), &e),
    }
}

/// The executor of the worker's wasm, loaded into the page.
struct Loaded {
    inner: Weak<Inner>,
    state: RefCell<State>,
    /// Takes the executor's envelopes (encoded) to the tab core.
    emit: Closure<dyn FnMut(String)>,
    /// Loads that failed in a row, and the next try.
    failures: Cell<u32>,
    retry: RefCell<Timer>,
}

enum State {
    /// Loading; what the core said meanwhile, encoded, in order.
    Loading(Vec<String>),
    Ready(OnlineExecutor),
    /// The last load failed; the retry timer, or the next message, tries again.
    Failed(Vec<String>),
    Stopped,
}

impl Loaded {
    fn new(inner: &Rc<Inner>) -> Rc<Self> {
        let weak = Rc::downgrade(inner);
        let emit = Closure::new(move |text: String| {
            let Some(inner) = weak.upgrade() else { return };
            match protocol::decode(&text, &inner.scope) {
                Ok(env) => Inner::push_incoming(&inner, env),
                Err(e) => web_sys::console::warn_1(
                    &format!("outbox: the online-only executor said something unreadable: {e}")
                        .into(),
                ),
            }
        });
        Rc::new(Self {
            inner: Rc::downgrade(inner),
            state: RefCell::new(State::Loading(Vec::new())),
            emit,
            failures: Cell::new(0),
            retry: RefCell::new(Timer::default()),
        })
    }

    /// Loads the executor again after a failure (by the retry timer or a new message).
    fn reload(this: &Rc<Self>, more: Option<String>) {
        {
            let mut state = this.state.borrow_mut();
            let State::Failed(waiting) = &mut *state else {
                return;
            };
            let mut waiting = std::mem::take(waiting);
            waiting.extend(more);
            *state = State::Loading(waiting);
        }
        this.retry.borrow_mut().clear();
        Self::load(this);
    }

    fn load(this: &Rc<Self>) {
        let Some(inner) = this.inner.upgrade() else {
            return;
        };
        let started = start_online(
            &executor_options(&inner),
            &inner.scope,
            this.emit.as_ref().unchecked_ref(),
        );
        let this = Rc::clone(this);
        wasm_bindgen_futures::spawn_local(async move {
            let loaded = match started {
                Ok(promise) => JsFuture::from(promise).await,
                Err(e) => Err(e),
            };
            let state = std::mem::replace(&mut *this.state.borrow_mut(), State::Stopped);
            let State::Loading(waiting) = state else {
                // Stopped meanwhile.
                if let Ok(executor) = loaded {
                    executor.unchecked_into::<OnlineExecutor>().stop();
                }
                return;
            };
            match loaded {
                Ok(executor) => {
                    let executor: OnlineExecutor = executor.unchecked_into();
                    this.failures.set(0);
                    for text in &waiting {
                        send(&executor, text);
                    }
                    *this.state.borrow_mut() = State::Ready(executor);
                }
                Err(e) => Self::failed(&this, waiting, &e),
            }
        });
    }

    /// A load failed: tell the app, try again later.
    fn failed(this: &Rc<Self>, waiting: Vec<String>, error: &JsValue) {
        *this.state.borrow_mut() = State::Failed(waiting);
        let failures = this.failures.get().saturating_add(1);
        this.failures.set(failures);
        let delay_ms = 1000u64
            .saturating_mul(1 << (failures - 1).min(5))
            .min(30_000);
        let weak = Rc::downgrade(this);
        this.retry.borrow_mut().set(delay_ms, move || {
            if let Some(this) = weak.upgrade() {
                Self::reload(&this, None);
            }
        });
        let Some(inner) = this.inner.upgrade() else {
            return;
        };
        let why = outbox_runtime::convert::JsErrorInfo::from_js(error);
        inner.emit(|| ClientEvent::Diagnostic {
            code: DiagnosticCode::OnlineExecutorFailed.as_str().to_owned(),
            message: format!(
                "online-only mode: the executor (the worker's wasm) did not load ({why}); what \
                 the tab sends waits, and it tries again in {} s",
                delay_ms / 1000
            ),
        });
        Inner::pump(&inner);
    }
}

impl Serving for Rc<Loaded> {
    fn begin(&self) {
        Loaded::load(self);
    }

    fn deliver(&self, from: &ClientId, msg: Message) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let text = protocol::encode(&Envelope::broadcast(&inner.scope, from, msg));
        let ready = {
            let mut state = self.state.borrow_mut();
            match &mut *state {
                State::Loading(waiting) => {
                    waiting.push(text);
                    return;
                }
                State::Failed(_) => {
                    drop(state);
                    return Loaded::reload(self, Some(text));
                }
                State::Ready(executor) => executor.clone().unchecked_into::<OnlineExecutor>(),
                State::Stopped => return,
            }
        };
        // No borrow held: the executor answers at once, through `emit`.
        send(&ready, &text);
    }

    fn stop(&self) {
        self.retry.borrow_mut().clear();
        let state = std::mem::replace(&mut *self.state.borrow_mut(), State::Stopped);
        if let State::Ready(executor) = state {
            executor.stop();
        }
    }
}
