//! One replaceable timeout, as the executor wants it: setting it again replaces the last one.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// A single `setTimeout`, owned: replaced by [`Timer::set`], cleared on drop.
#[derive(Debug, Default)]
pub struct Timer {
    handle: Option<(JsValue, Closure<dyn FnMut()>)>,
}

impl Timer {
    /// Fires `callback` after `delay_ms`, replacing any timeout still pending.
    pub fn set(&mut self, delay_ms: u64, callback: impl FnOnce() + 'static) {
        self.clear();
        let mut callback = Some(callback);
        let closure = Closure::<dyn FnMut()>::new(move || {
            if let Some(f) = callback.take() {
                f();
            }
        });
        let delay = i32::try_from(delay_ms).unwrap_or(i32::MAX);
        if let Ok(id) = call_global(
            "setTimeout",
            &[
                closure.as_ref().unchecked_ref::<JsValue>(),
                &JsValue::from(delay),
            ],
        ) {
            self.handle = Some((id, closure));
        }
    }

    /// Clears the pending timeout, if any.
    pub fn clear(&mut self) {
        if let Some((id, _closure)) = self.handle.take() {
            let _ = call_global("clearTimeout", &[&id]);
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A repeating `setInterval`, owned: cleared on drop.
#[derive(Debug)]
pub struct Interval {
    id: JsValue,
    _closure: Closure<dyn FnMut()>,
}

impl Interval {
    /// Calls `callback` every `every_ms`.
    pub fn new(every_ms: u32, callback: impl FnMut() + 'static) -> Option<Self> {
        let closure = Closure::<dyn FnMut()>::new(callback);
        let id = call_global(
            "setInterval",
            &[
                closure.as_ref().unchecked_ref::<JsValue>(),
                &JsValue::from(every_ms),
            ],
        )
        .ok()?;
        Some(Self {
            id,
            _closure: closure,
        })
    }
}

impl Drop for Interval {
    fn drop(&mut self) {
        let _ = call_global("clearInterval", &[&self.id]);
    }
}

/// Calls a function of the global object (window or worker scope alike).
pub(crate) fn call_global(name: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let global = js_sys::global();
    let f: js_sys::Function =
        js_sys::Reflect::get(&global, &JsValue::from_str(name))?.dyn_into()?;
    let args: js_sys::Array = args.iter().copied().collect();
    f.apply(&global, &args)
}
