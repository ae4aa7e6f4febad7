//! A test kit for app developers (`new OutboxTestKit()`): a mutation function and a sync source
//! the app's own tests control.
//!
//! ```js
//! const kit = new OutboxTestKit();
//! const client = await OutboxClient.connect({ app: 'test', mutationFns: { todos: kit.mutationFn },
//!                                             leaderTimeoutMs: 0 });     // online-only: no worker
//! const todos = client.collection('todos', { sync: kit.sync });
//! kit.emitSync({ type: 'insert', value: { id: '1', title: 'from the server' } });
//! kit.setNetworkDelay(50);                  // every persist takes 50 ms
//! kit.failNextPersist({ retriable: false }); // the next persist fails for good
//! kit.persisted;                            // the transactions persisted so far
//! ```

use crate::errors::invalid;
use crate::notify::bound_method;
use js_sys::{Array, Function, Promise};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

#[derive(Debug, Default)]
struct KitState {
    delay_ms: Cell<u32>,
    failures: RefCell<VecDeque<JsValue>>,
    persisted: Array,
    on_update: RefCell<Option<Function>>,
}

/// Controls for an app's tests: a mutation function, a sync source, and switches.
#[wasm_bindgen]
#[derive(Debug, Default)]
pub struct OutboxTestKit(Rc<KitState>);

/// The kit's functions, as bound methods.
#[wasm_bindgen(skip_typescript)]
#[derive(Debug)]
pub struct KitFns(Rc<KitState>);

#[wasm_bindgen]
impl KitFns {
    /// The mutation function: waits the network delay, then fails if told to, else succeeds.
    pub fn persist(&self, call: JsValue) -> Promise {
        let failure = self.0.failures.borrow_mut().pop_front();
        let transaction = js_sys::Reflect::get(&call, &"transaction".into()).unwrap_or_default();
        let state = Rc::clone(&self.0);
        let delay = self.0.delay_ms.get();
        Promise::new(&mut move |resolve, reject| {
            let (state, failure, transaction) =
                (Rc::clone(&state), failure.clone(), transaction.clone());
            let settle = move || {
                let _ = match &failure {
                    Some(error) => reject.call1(&JsValue::NULL, error),
                    None => {
                        state.persisted.push(&transaction);
                        resolve.call1(&JsValue::NULL, &js_sys::Object::new())
                    }
                };
            };
            if delay == 0 {
                settle();
            } else {
                let timeout = Closure::once_into_js(settle);
                let set = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into())
                    .ok()
                    .and_then(|f| f.dyn_into::<Function>().ok());
                if let Some(set) = set {
                    let _ = set.call2(&JsValue::NULL, &timeout, &JsValue::from(delay));
                }
            }
        })
    }

    /// The sync source's `setup`: keeps `onUpdate` for `emitSync`.
    pub fn setup(&self, params: JsValue) {
        let on_update = js_sys::Reflect::get(&params, &"onUpdate".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok());
        *self.0.on_update.borrow_mut() = on_update;
    }
}

#[wasm_bindgen]
impl OutboxTestKit {
    /// A kit with no delay and no failures queued.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    fn fns(&self) -> JsValue {
        KitFns(Rc::clone(&self.0)).into()
    }

    /// The mutation function to register (`mutationFns: { todos: kit.mutationFn }`).
    #[wasm_bindgen(getter, js_name = mutationFn, unchecked_return_type = "MutationFn")]
    pub fn mutation_fn(&self) -> Function {
        bound_method(self.fns(), "persist")
    }

    /// The sync source to give a collection (`sync: kit.sync`).
    #[wasm_bindgen(getter, unchecked_return_type = "SyncSource")]
    pub fn sync(&self) -> JsValue {
        let source = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&source, &"setup".into(), &bound_method(self.fns(), "setup"));
        source.into()
    }

    /// Feeds an update to the collection using `kit.sync`, as if the server sent it.
    #[wasm_bindgen(js_name = emitSync)]
    pub fn emit_sync(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SyncUpdate | SyncUpdate[]")] update: JsValue,
    ) -> Result<(), JsValue> {
        let on_update = self.0.on_update.borrow().clone();
        let on_update =
            on_update.ok_or_else(|| invalid("emitSync(): no collection uses kit.sync yet"))?;
        on_update.call1(&JsValue::NULL, &update).map(|_| ())
    }

    /// Every persist from now on waits this long first.
    #[wasm_bindgen(js_name = setNetworkDelay)]
    pub fn set_network_delay(&self, ms: u32) {
        self.0.delay_ms.set(ms);
    }

    /// The next persist fails: for good by default, or `{ retriable: true }`; `message` and
    /// `status` are passed on as the error's.
    #[wasm_bindgen(js_name = failNextPersist)]
    pub fn fail_next_persist(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "{ retriable?: boolean, message?: string, status?: number }"
        )]
        options: Option<JsValue>,
    ) {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let get = |k: &str| {
            if options.is_object() {
                js_sys::Reflect::get(&options, &JsValue::from_str(k)).unwrap_or_default()
            } else {
                JsValue::UNDEFINED
            }
        };
        let retriable = get("retriable").as_bool().unwrap_or(false);
        let message = get("message")
            .as_string()
            .unwrap_or_else(|| "failed by OutboxTestKit.failNextPersist".to_owned());
        let error = js_sys::Error::new(&message);
        if !retriable {
            error.set_name("NonRetriableError");
        }
        let status = get("status");
        if status.as_f64().is_some() {
            let _ = js_sys::Reflect::set(&error, &"status".into(), &status);
        }
        self.0.failures.borrow_mut().push_back(error.into());
    }

    /// The transactions persisted so far, oldest first.
    #[wasm_bindgen(getter, unchecked_return_type = "OutboxTransactionRecord[]")]
    pub fn persisted(&self) -> Array {
        self.0.persisted.slice(0, self.0.persisted.length())
    }
}
