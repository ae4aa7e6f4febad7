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
    let global = js_sys::global();
    let ms = js_sys::Reflect::get(&global, &"performance".into())
        .ok()
        .filter(|p| p.is_object())
        .and_then(|perf| {
            let f = js_sys::Reflect::get(&perf, &"now".into()).ok()?;
            let f: &js_sys::Function = wasm_bindgen::JsCast::dyn_ref(&f)?;
            f.call0(&perf).ok()?.as_f64()
        });
    match ms {
        Some(ms) if ms.is_finite() && ms >= 0.0 => ms as Millis,
        _ => now(),
    }
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
    let global = js_sys::global();
    let uuid = js_sys::Reflect::get(&global, &"crypto".into())
        .ok()
        .filter(|c| c.is_object())
        .and_then(|crypto| {
            let f = js_sys::Reflect::get(&crypto, &"randomUUID".into()).ok()?;
            let f: &js_sys::Function = wasm_bindgen::JsCast::dyn_ref(&f)?;
            f.call0(&crypto).ok()?.as_string()
        });
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
