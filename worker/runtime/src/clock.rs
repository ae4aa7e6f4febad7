//! The browser's clock and randomness, the only place the runtime reads them.

use outbox_shared::model::Millis;
use outbox_shared::retry::RandomSource;

/// Now, in ms since the Unix epoch.
pub fn now() -> Millis {
    let ms = js_sys::Date::now();
    if ms.is_finite() && ms > 0.0 {
        ms as Millis
    } else {
        0
    }
}

/// A clock that only goes forward, in ms (`performance.now()`: from the context's start), for
/// measuring how long something took: the wall clock ([`now`]) may be set back or forward
/// while a worker waits. Where there is no `performance`, the wall clock.
pub fn monotonic() -> Millis {
    match call_global("performance", "now").and_then(|v| v.as_f64()) {
        Some(ms) if ms.is_finite() && ms >= 0.0 => ms as Millis,
        _ => now(),
    }
}

/// `globalThis[object][method]()`, if there is such an object and method and the call returns.
fn call_global(object: &str, method: &str) -> Option<wasm_bindgen::JsValue> {
    let target = js_sys::Reflect::get(&js_sys::global(), &object.into())
        .ok()
        .filter(|o| o.is_object())?;
    let f = js_sys::Reflect::get(&target, &method.into()).ok()?;
    let f: &js_sys::Function = wasm_bindgen::JsCast::dyn_ref(&f)?;
    f.call0(&target).ok()
}

/// `Math.random()` as the executor's random source (backoff jitter only).
#[derive(Debug, Default, Clone, Copy)]
pub struct MathRandom;

impl RandomSource for MathRandom {
    fn next_f64(&mut self) -> f64 {
        js_sys::Math::random()
    }
}

/// A fresh random id (a UUID v4 from `crypto.randomUUID()` where there is one).
pub fn random_id() -> String {
    let uuid = call_global("crypto", "randomUUID").and_then(|v| v.as_string());
    uuid.unwrap_or_else(|| {
        let a = (js_sys::Math::random() * 4_294_967_296.0) as u64;
        let b = (js_sys::Math::random() * 4_294_967_296.0) as u64;
        let c = now();
        format!("{a:08x}-{b:08x}-{c:x}")
    })
}

thread_local! {
    /// This context's random prefix and the count of ids made with it.
    static UNIQUE: std::cell::RefCell<Option<(String, u64)>> = const { std::cell::RefCell::new(None) };
}

/// An id unique across every context and session: one [`random_id`] per context (122 random
/// bits), then a counter (`<uuid>-<n>`). Cheaper than asking the browser for randomness at
/// every insert, which cost a tenth of `insert()`.
pub fn unique_id() -> String {
    UNIQUE.with(|u| {
        let mut u = u.borrow_mut();
        let (prefix, n) = u.get_or_insert_with(|| (random_id(), 0));
        *n += 1;
        format!("{prefix}-{n:x}")
    })
}
