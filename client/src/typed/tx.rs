//! [`Tx`] (a transaction of this tab) and [`Batch`] (a transaction of several changes).

use super::error::{js_err, OutboxError};
use super::subscription::{subscribe, Subscription};
use super::{from_js, settle, to_js};
use crate::building::OutboxTransaction;
use crate::handle::TransactionHandle;
use outbox_shared::model::{Strategy, Transaction, TransactionState};
use std::future::Future;
use wasm_bindgen::closure::ScopedClosure;
use wasm_bindgen::JsValue;

/// The state named by its wire form (`pending`, `persisted_awaiting_sync`, …).
pub(crate) fn parse_state(name: &str) -> Option<TransactionState> {
    TransactionState::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
}

/// A transaction of this tab: what every mutator returns.
#[derive(Debug, Clone)]
pub struct Tx {
    handle: TransactionHandle,
}

impl From<TransactionHandle> for Tx {
    fn from(handle: TransactionHandle) -> Self {
        Self { handle }
    }
}

impl Tx {
    /// The transaction's id (also its idempotency key).
    pub fn id(&self) -> String {
        self.handle.id()
    }

    /// Where it is in its life now.
    pub fn state(&self) -> TransactionState {
        // The handle only ever names a TransactionState; `Pending` is never reached.
        parse_state(&self.handle.state()).unwrap_or(TransactionState::Pending)
    }

    /// The transaction as last heard: mutations, attempts, error.
    pub fn transaction(&self) -> Result<Transaction, OutboxError> {
        from_js(self.handle.transaction())
    }

    /// The untyped handle underneath (the JS-facing API).
    pub fn handle(&self) -> &TransactionHandle {
        &self.handle
    }

    /// Resolves once the transaction is durable in the leader's outbox (online-only: once the
    /// tab's own executor has it). `Err` when it failed before that (refused, rolled back).
    ///
    /// The future holds no borrow of `self`, so it can be spawned.
    pub fn durable(&self) -> impl Future<Output = Result<(), OutboxError>> + 'static {
        let promise = self.handle.durable();
        async move { settle(promise).await.map(drop) }
    }

    /// Resolves once the mutation function has succeeded (and, with a sequence-aware sync,
    /// the sync shows the change). `Err` with the failure's code otherwise:
    /// `OUTBOX_NON_RETRIABLE`, `OUTBOX_RETRIES_EXHAUSTED`, `OUTBOX_DEPENDENCY_FAILED` (with
    /// [`cause_id`](OutboxError::cause_id)), `OUTBOX_REMOVED`, …
    ///
    /// The future holds no borrow of `self`, so it can be spawned.
    pub fn completed(&self) -> impl Future<Output = Result<(), OutboxError>> + 'static {
        let promise = self.handle.completed();
        async move { settle(promise).await.map(drop) }
    }

    /// Calls `on_change(state)` on every change of state, until the [`Subscription`] is
    /// dropped.
    pub fn on_state_change(&self, on_change: impl Fn(TransactionState) + 'static) -> Subscription {
        subscribe(
            move |state, _| {
                if let Some(state) = state.as_string().as_deref().and_then(parse_state) {
                    on_change(state);
                }
            },
            |f| self.handle.on_state_change(f),
        )
    }
}

/// How to make a [`Batch`]. `None` leaves a setting at the client's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TxOptions {
    /// The mutation function (default: that of the first collection changed).
    pub mutation_fn: Option<String>,
    /// Ordered (the default) or parallel.
    pub strategy: Option<Strategy>,
    /// Whether [`Batch::mutate`] commits at its end (the default), or waits for
    /// [`Batch::commit`] (`Some(false)`).
    pub auto_commit: Option<bool>,
    /// App data stored with the transaction and passed to the mutation function.
    pub metadata: Option<serde_json::Value>,
}

impl TxOptions {
    /// As the JS options object `{mutationFn?, strategy?, autoCommit?, metadata?}`.
    pub(crate) fn to_js(&self) -> Result<JsValue, OutboxError> {
        let o = js_sys::Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = js_sys::Reflect::set(&o, &JsValue::from_str(k), &v);
        };
        if let Some(name) = &self.mutation_fn {
            set("mutationFn", JsValue::from_str(name));
        }
        if let Some(strategy) = &self.strategy {
            set("strategy", to_js(strategy)?);
        }
        if let Some(auto) = self.auto_commit {
            set("autoCommit", JsValue::from_bool(auto));
        }
        if let Some(metadata) = &self.metadata {
            set("metadata", to_js(metadata)?);
        }
        Ok(o.into())
    }
}

/// A transaction of several changes, from [`Outbox::transaction`](super::Outbox::transaction):
/// every collection call made inside [`mutate`](Self::mutate) joins it, and it is sent as one.
#[derive(Debug)]
pub struct Batch {
    inner: OutboxTransaction,
}

impl From<OutboxTransaction> for Batch {
    fn from(inner: OutboxTransaction) -> Self {
        Self { inner }
    }
}

impl Batch {
    /// The transaction's id.
    pub fn id(&self) -> String {
        self.inner.id()
    }

    /// Its handle (state, `durable`, `completed`), also before it is committed.
    pub fn tx(&self) -> Tx {
        self.inner.handle().into()
    }

    /// Runs `changes`; every collection call inside joins this transaction, and shows in the
    /// view at once. Commits at the end unless made with `auto_commit: Some(false)`. When
    /// `changes` returns `Err`, everything it staged is rolled back and the error is returned.
    ///
    /// ```text
    /// let tx = outbox.transaction(TxOptions::default())?.mutate(|| {
    ///     lists.update("groceries", &json!({ "count": 2 }))?;
    ///     todos.insert(&Todo::new("2", "eggs"))?;
    ///     Ok(())
    /// })?;
    /// ```
    pub fn mutate(
        &self,
        changes: impl FnOnce() -> Result<(), OutboxError>,
    ) -> Result<Tx, OutboxError> {
        let mut changes = Some(changes);
        let mut run = || -> Result<(), JsValue> {
            match changes.take() {
                Some(changes) => changes().map_err(JsValue::from),
                None => Err(OutboxError::invalid("mutate(): the changes ran twice").into()),
            }
        };
        let closure =
            ScopedClosure::<dyn FnMut() -> Result<(), JsValue>>::borrow_mut_aborting(&mut run);
        let function: JsValue = closure.as_ref().clone();
        let result = self.inner.mutate(function.into());
        drop(closure);
        result.map(Tx::from).map_err(js_err)
    }

    /// Submits the changes made so far (with `auto_commit: Some(false)`).
    pub fn commit(&self) -> Result<Tx, OutboxError> {
        self.inner.commit().map(Tx::from).map_err(js_err)
    }

    /// Takes back the changes made so far; the handle's `completed` fails with
    /// `OUTBOX_REMOVED`.
    pub fn rollback(&self) -> Result<(), OutboxError> {
        self.inner.rollback().map_err(js_err)
    }
}
