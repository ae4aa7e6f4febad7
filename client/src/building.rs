//! Transactions the app builds from several changes: `client.transaction({…}).mutate(() => …)`
//! and actions (`client.createAction({ onMutate })`).
//!
//! While a `mutate` callback runs, every collection call joins that transaction instead of
//! making its own: its change shows in the view at once (staged in the tab core), and is sent
//! with the others when the transaction commits — at the end of `mutate` unless
//! `autoCommit: false`, then on `commit()`. A callback that throws rolls back everything it
//! staged, and the error is rethrown: nothing is half-applied.

use crate::collection::CollectionDef;
use crate::errors::invalid;
use crate::handle::{HandleState, TransactionHandle};
use crate::inner::Inner;
use crate::notify::Later;
use js_sys::Function;
use outbox_runtime::clock::{now, unique_id};
use outbox_shared::model::{
    ErrorCode, PendingMutation, Strategy, Transaction, TransactionId, TransactionState, TxError,
};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Open,
    Committed,
    RolledBack,
}

/// A transaction being built.
#[derive(Debug)]
pub(crate) struct Building {
    pub handle: Rc<HandleState>,
    mutation_fn: RefCell<Option<String>>,
    strategy: Strategy,
    auto_commit: bool,
    metadata: Option<Value>,
    mutations: RefCell<Vec<PendingMutation>>,
    stage: Cell<Stage>,
}

impl Building {
    pub fn new(
        mutation_fn: Option<String>,
        strategy: Strategy,
        auto_commit: bool,
        metadata: Option<Value>,
    ) -> Rc<Self> {
        let id = TransactionId(unique_id());
        let placeholder = Transaction::new(
            id,
            mutation_fn.clone().unwrap_or_default(),
            strategy,
            Vec::new(),
            now(),
        );
        Rc::new(Self {
            handle: HandleState::new(placeholder),
            mutation_fn: RefCell::new(mutation_fn),
            strategy,
            auto_commit,
            metadata,
            mutations: RefCell::new(Vec::new()),
            stage: Cell::new(Stage::Open),
        })
    }

    /// Collection calls made inside `mutate` land here.
    pub fn stage(&self, inner: &Rc<Inner>, def: &CollectionDef, mutations: Vec<PendingMutation>) {
        self.mutation_fn
            .borrow_mut()
            .get_or_insert_with(|| def.mutation_fn.clone());
        for m in mutations {
            self.mutations.borrow_mut().push(m.clone());
            let out = inner.core.borrow_mut().stage(&self.handle.id, m);
            Inner::apply(inner, out);
        }
    }

    /// Runs `f(...args)` with this transaction collecting every collection call.
    pub fn run(
        self: &Rc<Self>,
        inner: &Rc<Inner>,
        f: &Function,
        args: &[JsValue],
    ) -> Result<TransactionHandle, JsValue> {
        inner.ensure_open()?;
        if self.stage.get() != Stage::Open {
            return Err(invalid(
                "mutate(): this transaction was already committed or rolled back",
            ));
        }
        if inner.building.borrow().is_some() {
            return Err(invalid(
                "mutate(): another transaction's mutate() is running; transactions cannot nest",
            ));
        }
        *inner.building.borrow_mut() = Some(Rc::clone(self));
        let args: js_sys::Array = args.iter().collect();
        let result = f.apply(&JsValue::NULL, &args);
        *inner.building.borrow_mut() = None;
        // The callback may have rolled the transaction back itself (`rollback()` inside it):
        // then there is nothing left to take back or to commit, and what it threw stands.
        let open = self.stage.get() == Stage::Open;
        match result {
            Err(thrown) => {
                if open {
                    self.rollback(inner)?;
                }
                Err(thrown)
            }
            Ok(v) if v.is_instance_of::<js_sys::Promise>() => {
                if open {
                    self.rollback(inner)?;
                }
                Err(invalid(
                    "mutate(): the callback must be synchronous (changes made after an await would be lost); it was rolled back",
                ))
            }
            Ok(_) if self.auto_commit && open => self.commit(inner),
            Ok(_) => Ok(TransactionHandle(Rc::clone(&self.handle))),
        }
    }

    /// Submits what was staged. With nothing staged, the transaction completes at once.
    pub fn commit(&self, inner: &Rc<Inner>) -> Result<TransactionHandle, JsValue> {
        inner.ensure_open()?;
        if self.stage.get() != Stage::Open {
            return Err(invalid(
                "commit(): this transaction was already committed or rolled back",
            ));
        }
        if inner
            .building
            .borrow()
            .as_ref()
            .is_some_and(|b| Rc::ptr_eq(&b.handle, &self.handle))
        {
            return Err(invalid("commit(): call it after mutate() has returned"));
        }
        self.stage.set(Stage::Committed);
        let handle = Rc::clone(&self.handle);
        let mutations = std::mem::take(&mut *self.mutations.borrow_mut());
        if mutations.is_empty() {
            let mut tx = handle.transaction();
            tx.state = TransactionState::Completed;
            let mut later: Vec<Later> = Vec::new();
            handle.durable(&mut later);
            handle.update(tx, &mut later);
            inner.later(later);
            Inner::pump(inner);
            return Ok(TransactionHandle(handle));
        }
        let mutation_fn = self.mutation_fn.borrow().clone().unwrap_or_default();
        let created = handle.transaction().created_at;
        let mut tx = Transaction::new(
            handle.id.clone(),
            mutation_fn,
            self.strategy,
            mutations,
            created,
        );
        tx.metadata = self.metadata.clone();
        handle.set_transaction(tx.clone());
        Inner::submit(inner, tx, Rc::clone(&handle));
        Ok(TransactionHandle(handle))
    }

    /// Takes back everything staged; `completed` rejects with `OUTBOX_REMOVED`.
    pub fn rollback(&self, inner: &Rc<Inner>) -> Result<(), JsValue> {
        if self.stage.get() != Stage::Open {
            return Err(invalid(
                "rollback(): this transaction was already committed or rolled back",
            ));
        }
        self.stage.set(Stage::RolledBack);
        self.mutations.borrow_mut().clear();
        let out = inner.core.borrow_mut().discard_staged(&self.handle.id);
        let mut tx = self.handle.transaction();
        tx.state = TransactionState::Failed;
        tx.error = Some(TxError::new(
            ErrorCode::Removed,
            "rolled back by the app before it was committed",
        ));
        let mut later: Vec<Later> = Vec::new();
        self.handle.update(tx, &mut later);
        inner.later(later);
        Inner::apply(inner, out);
        Ok(())
    }
}

impl Inner {
    /// A collection call: joins the transaction being built, or makes a transaction of its own.
    /// Refused inside a `mutate()` whose transaction was rolled back (its change would show
    /// for good, never sent).
    pub fn mutate(
        this: &Rc<Self>,
        def: &CollectionDef,
        mutations: Vec<PendingMutation>,
    ) -> Result<TransactionHandle, JsValue> {
        let building = this.building.borrow().clone();
        if let Some(b) = building {
            if b.stage.get() != Stage::Open {
                return Err(invalid(
                    "this change is inside the mutate() of a transaction already rolled back",
                ));
            }
            b.stage(this, def, mutations);
            return Ok(TransactionHandle(Rc::clone(&b.handle)));
        }
        let tx = Transaction::new(
            TransactionId(unique_id()),
            def.mutation_fn.clone(),
            def.strategy,
            mutations,
            now(),
        );
        let handle = HandleState::new(tx.clone());
        Self::submit(this, tx, Rc::clone(&handle));
        Ok(TransactionHandle(handle))
    }
}

/// A transaction the app builds: `client.transaction({ mutationFn, strategy, autoCommit })`.
#[wasm_bindgen]
#[derive(Debug)]
pub struct OutboxTransaction {
    pub(crate) inner: Rc<Inner>,
    pub(crate) building: Rc<Building>,
}

#[wasm_bindgen]
impl OutboxTransaction {
    /// The transaction's id.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.building.handle.id.0.clone()
    }

    /// Its handle (state, `durable`, `completed`).
    #[wasm_bindgen(getter)]
    pub fn handle(&self) -> TransactionHandle {
        TransactionHandle(Rc::clone(&self.building.handle))
    }

    /// Runs `cb`; every collection call inside joins this transaction. Commits at the end
    /// unless the transaction was made with `autoCommit: false`. A throw rolls back.
    pub fn mutate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => void")] cb: Function,
    ) -> Result<TransactionHandle, JsValue> {
        self.building.run(&self.inner, &cb, &[])
    }

    /// Submits the changes made so far (with `autoCommit: false`).
    pub fn commit(&self) -> Result<TransactionHandle, JsValue> {
        self.building.commit(&self.inner)
    }

    /// Takes back the changes made so far; `completed` rejects with `OUTBOX_REMOVED`.
    pub fn rollback(&self) -> Result<(), JsValue> {
        self.building.rollback(&self.inner)
    }
}

/// A reusable action (`client.createAction`): each call runs `onMutate(vars)` in a transaction
/// of its own. JS gets it as a plain function.
#[wasm_bindgen(skip_typescript)]
#[derive(Debug)]
pub struct Action {
    pub(crate) inner: Rc<Inner>,
    pub(crate) mutation_fn: Option<String>,
    pub(crate) strategy: Strategy,
    pub(crate) on_mutate: Function,
}

#[wasm_bindgen]
impl Action {
    /// Runs the action with `vars`.
    pub fn run(&self, vars: JsValue) -> Result<TransactionHandle, JsValue> {
        let building = Building::new(self.mutation_fn.clone(), self.strategy, true, None);
        building.run(&self.inner, &self.on_mutate, &[vars])
    }
}
