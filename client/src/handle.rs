//! A transaction handle: what every mutator returns.
//!
//! `durable` resolves once the leader has committed the transaction to its outbox (in
//! online-only mode: once the tab's own executor has taken it). `completed` resolves with the
//! transaction when it succeeded, and rejects with a JS `Error` whose `code` says why it
//! failed (`causeId` names the transaction whose failure caused a dependent's). Both promises
//! are marked handled, so a transaction nobody awaits does not log an unhandled rejection.

use crate::notify::{later_call_all, unsubscribe_fn, Later, Listeners};
use js_sys::{Function, Promise};
use outbox_runtime::convert::{to_js, ToJsError};
use outbox_shared::model::{Transaction, TransactionId, TransactionState, TxError};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// A promise settled at most once, made only when someone asks for it: most transactions'
/// `durable` and `completed` are never awaited, and making a promise (with its resolve and
/// reject functions, and its rejection marked handled) cost more than the rest of an insert.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    slot: Rc<RefCell<Slot>>,
    settled: Cell<bool>,
}

#[derive(Debug, Default)]
struct Slot {
    /// The promise, once asked for.
    promise: Option<Promise>,
    /// Its resolve and reject functions, while it waits.
    settle: Option<(Function, Function)>,
    /// How it settled, when that happened before anyone asked.
    outcome: Option<Result<JsValue, JsValue>>,
}

impl Deferred {
    pub fn new() -> Self {
        Self::default()
    }

    /// The promise (the same one every time).
    pub fn promise(&self) -> Promise {
        let mut slot = self.slot.borrow_mut();
        if let Some(p) = &slot.promise {
            return p.clone();
        }
        let promise = match slot.outcome.take() {
            Some(Ok(value)) => js::settled(true, &value),
            Some(Err(error)) => js::settled(false, &error),
            None => {
                let d = js::deferred();
                slot.settle = Some((d.resolve(), d.reject()));
                d.promise()
            }
        };
        slot.promise = Some(promise.clone());
        promise
    }

    /// A queued resolve (nothing if already settled).
    pub fn resolve_later(&self, value: JsValue) -> Option<Later> {
        self.settle_later(Ok(value))
    }

    /// A queued reject (nothing if already settled).
    pub fn reject_later(&self, error: JsValue) -> Option<Later> {
        self.settle_later(Err(error))
    }

    fn settle_later(&self, outcome: Result<JsValue, JsValue>) -> Option<Later> {
        if self.settled.replace(true) {
            return None;
        }
        let slot = Rc::clone(&self.slot);
        Some(Box::new(move || {
            let fns = slot.borrow_mut().settle.take();
            match (fns, outcome) {
                (Some((resolve, _)), Ok(value)) => {
                    let _ = resolve.call1(&JsValue::NULL, &value);
                }
                (Some((_, reject)), Err(error)) => {
                    let _ = reject.call1(&JsValue::NULL, &error);
                }
                // Nobody has asked yet: whoever does gets a settled promise.
                (None, outcome) => slot.borrow_mut().outcome = Some(outcome),
            }
        }))
    }
}

/// Promises made in JS, in one call each: making them from Rust (a closure for the executor,
/// a lookup and call of `catch`) cost more than the rest of an insert. Every promise made here
/// has a no-op rejection handler, so a rejection nobody awaits is not reported as unhandled;
/// whoever does await it still sees the rejection.
mod js {
    use js_sys::{Function, Promise};
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(inline_js = "
        const noop = () => {};
        export function deferred() {
          const d = {};
          d.promise = new Promise((resolve, reject) => { d.resolve = resolve; d.reject = reject; });
          d.promise.catch(noop);
          return d;
        }
        export function settled(ok, value) {
          const p = ok ? Promise.resolve(value) : Promise.reject(value);
          p.catch(noop);
          return p;
        }
    ")]
    extern "C" {
        /// A pending promise with its resolve and reject functions.
        pub type Deferred;
        pub fn deferred() -> Deferred;
        #[wasm_bindgen(method, getter)]
        pub fn promise(this: &Deferred) -> Promise;
        #[wasm_bindgen(method, getter)]
        pub fn resolve(this: &Deferred) -> Function;
        #[wasm_bindgen(method, getter)]
        pub fn reject(this: &Deferred) -> Function;
        /// A promise already resolved with `value` (`ok`) or rejected with it.
        pub fn settled(ok: bool, value: &JsValue) -> Promise;
    }
}

/// One transaction as the client tracks it for the app.
#[derive(Debug)]
pub(crate) struct HandleState {
    pub id: TransactionId,
    tx: RefCell<Transaction>,
    durable: Deferred,
    completed: Deferred,
    listeners: RefCell<Listeners>,
    is_durable: Cell<bool>,
}

impl HandleState {
    pub fn new(tx: Transaction) -> Rc<Self> {
        Rc::new(Self {
            id: tx.id.clone(),
            tx: RefCell::new(tx),
            durable: Deferred::new(),
            completed: Deferred::new(),
            listeners: RefCell::new(Listeners::default()),
            is_durable: Cell::new(false),
        })
    }

    pub fn state(&self) -> TransactionState {
        self.tx.borrow().state
    }

    pub fn transaction(&self) -> Transaction {
        self.tx.borrow().clone()
    }

    /// Replaces the transaction before it is submitted (more mutations were staged).
    pub fn set_transaction(&self, tx: Transaction) {
        *self.tx.borrow_mut() = tx;
    }

    /// The leader has it: `durable` resolves.
    pub fn durable(&self, out: &mut Vec<Later>) {
        self.is_durable.set(true);
        out.extend(self.durable.resolve_later(JsValue::UNDEFINED));
    }

    /// The client was closed before the transaction settled: its promises reject with
    /// `error` (`durable` only if it was not durable yet).
    pub fn closed(&self, error: &JsValue, out: &mut Vec<Later>) {
        if !self.is_durable.get() {
            out.extend(self.durable.reject_later(error.clone()));
        }
        out.extend(self.completed.reject_later(error.clone()));
    }

    /// The transaction moved on: listeners are told, and a settled one settles `completed`
    /// (and `durable`, if it never became durable: it was refused, or rolled back).
    pub fn update(&self, tx: Transaction, out: &mut Vec<Later>) {
        let state = tx.state;
        let listeners = self.listeners.borrow().snapshot();
        // The JS copy of the record only when someone gets it: most state changes of most
        // transactions have no listener, and converting them was a hot spot.
        let record = (!listeners.is_empty() || state == TransactionState::Completed)
            .then(|| to_js(&tx).unwrap_or(JsValue::NULL));
        if let Some(record) = record.as_ref().filter(|_| !listeners.is_empty()) {
            out.push(later_call_all(
                listeners,
                vec![JsValue::from_str(state.as_str()), record.clone()],
            ));
        }
        match state {
            TransactionState::Completed => {
                out.extend(self.durable.resolve_later(JsValue::UNDEFINED));
                out.extend(
                    self.completed
                        .resolve_later(record.unwrap_or(JsValue::UNDEFINED)),
                );
            }
            TransactionState::Failed => {
                let error = tx.error.clone().unwrap_or_else(|| {
                    TxError::new(outbox_shared::ErrorCode::NonRetriable, "failed")
                });
                let js: JsValue = error.to_js_error().into();
                if !self.is_durable.get() {
                    out.extend(self.durable.reject_later(js.clone()));
                }
                out.extend(self.completed.reject_later(js));
            }
            _ => {}
        }
        *self.tx.borrow_mut() = tx;
    }
}

/// A transaction of this tab, as the app holds it.
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct TransactionHandle(pub(crate) Rc<HandleState>);

#[wasm_bindgen]
impl TransactionHandle {
    /// The transaction's id (also its idempotency key).
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.0.id.0.clone()
    }

    /// Where it is in its life: `pending`, `queued`, `persisting`, `persisted_awaiting_sync`,
    /// `completed` or `failed`.
    #[wasm_bindgen(getter, unchecked_return_type = "TransactionState")]
    pub fn state(&self) -> String {
        self.0.state().as_str().to_owned()
    }

    /// Resolves once the transaction is durable in the leader's outbox.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<void>")]
    pub fn durable(&self) -> Promise {
        self.0.durable.promise()
    }

    /// Resolves with the transaction on success; rejects with an `OutboxError` on failure.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<OutboxTransactionRecord>")]
    pub fn completed(&self) -> Promise {
        self.0.completed.promise()
    }

    /// The transaction as last heard: mutations, attempts, error.
    #[wasm_bindgen(getter, unchecked_return_type = "OutboxTransactionRecord")]
    pub fn transaction(&self) -> JsValue {
        to_js(&self.0.transaction()).unwrap_or(JsValue::NULL)
    }

    /// Calls `cb(state, transaction)` on every change of state; returns `unsubscribe()`.
    #[wasm_bindgen(js_name = onStateChange, unchecked_return_type = "() => void")]
    pub fn on_state_change(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "(state: TransactionState, transaction: OutboxTransactionRecord) => void"
        )]
        cb: Function,
    ) -> Function {
        let id = self.0.listeners.borrow_mut().add(cb);
        let weak = Rc::downgrade(&self.0);
        unsubscribe_fn(move || {
            if let Some(h) = weak.upgrade() {
                h.listeners.borrow_mut().remove(id);
            }
        })
    }
}
