//! Telling the app: who listens to what, and how a listener is called.
//!
//! Listeners are never called while a `RefCell` of the client is borrowed. Whatever is to be
//! told is queued (`Later`) and run by the client's pump once every borrow has ended; a
//! listener that throws is logged and does not stop the others.

use js_sys::Function;
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Something to run once no borrow is held.
pub(crate) type Later = Box<dyn FnOnce()>;

/// A list of listeners with ids, so each can be taken out again.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    next: u64,
    list: Vec<(u64, Function)>,
}

impl Listeners {
    /// Adds a listener; returns its id.
    pub fn add(&mut self, f: Function) -> u64 {
        self.next += 1;
        self.list.push((self.next, f));
        self.next
    }

    /// Takes a listener out.
    pub fn remove(&mut self, id: u64) {
        self.list.retain(|(i, _)| *i != id);
    }

    /// The listeners as they are now (so calling them holds no borrow).
    pub fn snapshot(&self) -> Vec<Function> {
        self.list.iter().map(|(_, f)| f.clone()).collect()
    }
}

/// Which list a client-level listener is on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Topic {
    /// `onModeChange`.
    Mode,
    /// `onLeadershipChange`.
    Leadership,
    /// `onEvent`.
    Events,
    /// `subscribeTransactions`.
    Transactions,
    /// A collection's `subscribe`.
    Rows(String),
}

/// Every client-level listener.
#[derive(Debug, Default)]
pub(crate) struct Subscribers(HashMap<Topic, Listeners>);

impl Subscribers {
    /// Adds a listener to a topic.
    pub fn add(&mut self, topic: Topic, f: Function) -> u64 {
        self.0.entry(topic).or_default().add(f)
    }

    /// Takes a listener off a topic.
    pub fn remove(&mut self, topic: &Topic, id: u64) {
        if let Some(l) = self.0.get_mut(topic) {
            l.remove(id);
        }
    }

    /// The listeners of a topic.
    pub fn of(&self, topic: &Topic) -> Vec<Function> {
        self.0
            .get(topic)
            .map(Listeners::snapshot)
            .unwrap_or_default()
    }
}

/// Calls a listener with these arguments; a throw is logged, not propagated.
pub(crate) fn call_listener(f: &Function, args: &[JsValue]) {
    let this = &JsValue::NULL;
    let called = match args {
        [] => f.call0(this),
        [a] => f.call1(this, a),
        [a, b] => f.call2(this, a, b),
        _ => f.apply(this, &args.iter().collect()),
    };
    if let Err(e) = called {
        web_sys::console::error_2(&JsValue::from_str("outbox: a listener threw"), &e);
    }
}

/// A queued call of each listener with the same arguments.
pub(crate) fn later_call_all(listeners: Vec<Function>, args: Vec<JsValue>) -> Later {
    Box::new(move || {
        for f in &listeners {
            call_listener(f, &args);
        }
    })
}

/// What ends a subscription. JS gets it as a plain function (`unsubscribe()`), made by
/// `unsubscribe_fn`.
#[wasm_bindgen(skip_typescript)]
pub struct Subscription {
    cancel: RefCell<Option<Box<dyn FnOnce()>>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl Subscription {
    /// Ends the subscription; later calls do nothing.
    pub fn unsubscribe(&self) {
        let cancel = self.cancel.borrow_mut().take();
        if let Some(cancel) = cancel {
            cancel();
        }
    }
}

/// A JS function that runs `cancel` once: what `subscribe(cb)` and friends return.
pub(crate) fn unsubscribe_fn(cancel: impl FnOnce() + 'static) -> Function {
    let sub = Subscription {
        cancel: RefCell::new(Some(Box::new(cancel))),
    };
    bound_method(sub.into(), "unsubscribe")
}

/// `object[method].bind(object)`: a plain JS function that keeps `object` (an exported Rust
/// value) alive for as long as the function lives, and no longer.
pub(crate) fn bound_method(object: JsValue, method: &str) -> Function {
    js_sys::Reflect::get(&object, &JsValue::from_str(method))
        .ok()
        .and_then(|m| m.dyn_into::<Function>().ok())
        .map(|m| m.bind0(&object))
        // Exported classes always have their methods; this is never reached.
        .unwrap_or_else(|| Function::new_no_args(""))
}
