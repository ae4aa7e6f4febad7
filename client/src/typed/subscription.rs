//! [`Subscription`]: a listener that stays registered while the value lives.

use js_sys::Function;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// A registered listener. Dropping it unsubscribes (and frees the closure and what it
/// captured); [`detach`](Self::detach) keeps it for the life of the client instead.
#[must_use = "dropping a Subscription unsubscribes at once"]
pub struct Subscription {
    cancel: Option<Box<dyn FnOnce()>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("active", &self.cancel.is_some())
            .finish()
    }
}

impl Subscription {
    /// Ends the subscription now (the same as dropping it).
    pub fn unsubscribe(mut self) {
        self.cancel_now();
    }

    /// Keeps listening for as long as the client lives, without holding the value.
    pub fn detach(mut self) {
        self.cancel = None;
    }

    fn cancel_now(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel_now();
    }
}

/// The Rust listener, taken out when the subscription ends, so a call the client had already
/// queued finds nothing to run.
type Slot = Rc<RefCell<Option<Rc<dyn Fn(JsValue, JsValue)>>>>;

/// Registers `listener` (called with the JS listener's first two arguments) through
/// `register`, which hands the JS function to the client and returns its `unsubscribe()`.
pub(crate) fn subscribe(
    listener: impl Fn(JsValue, JsValue) + 'static,
    register: impl FnOnce(Function) -> Function,
) -> Subscription {
    let slot: Slot = Rc::new(RefCell::new(Some(Rc::new(listener))));
    let called = Rc::clone(&slot);
    // Owned by JS from here on: the client holds it until unsubscribed, then it is garbage.
    let js: Function =
        Closure::<dyn FnMut(JsValue, JsValue)>::own_aborting(move |a: JsValue, b: JsValue| {
            // Cloned out first: the listener may end its own subscription.
            let listener = called.borrow().clone();
            if let Some(listener) = listener {
                listener(a, b);
            }
        })
        .into_js_value()
        .unchecked_into();
    let unsubscribe = register(js);
    Subscription {
        cancel: Some(Box::new(move || {
            let _ = unsubscribe.call0(&JsValue::NULL);
            let listener = slot.borrow_mut().take();
            drop(listener);
        })),
    }
}
