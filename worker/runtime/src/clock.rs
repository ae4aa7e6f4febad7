//! The browser's clock and randomness, the only place the runtime reads them.

use outbox_shared::model::Millis;
use outbox_shared::retry::RandomSource;
use wasm_bindgen::JsCast;

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
    let f: &js_sys::Function = JsCast::dyn_ref(&f)?;
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
    /// Random words from `crypto.getRandomValues`, taken a few hundred at a time.
    static RANDOM_WORDS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An id unique across every context and session, and that nobody else can guess: one
/// [`random_id`] per context (122 random bits), a counter, then 64 random bits
/// (`<uuid>-<n>-<tag>`). The counter makes it unique; the tag makes it unguessable from the
/// ids before it (transaction ids are idempotency keys, and other users see them in the change
/// feed: with a counter alone, one could take a user's next ids first). The randomness is
/// asked of the browser 256 words at a time: asking at every insert cost a tenth of `insert()`.
pub fn unique_id() -> String {
    let tag = random_tag();
    UNIQUE.with(|u| {
        let mut u = u.borrow_mut();
        let (prefix, n) = u.get_or_insert_with(|| (random_id(), 0));
        *n += 1;
        format!("{prefix}-{n:x}-{tag:016x}")
    })
}

/// 64 random bits: from `crypto.getRandomValues` where there is one.
fn random_tag() -> u64 {
    RANDOM_WORDS.with(|words| {
        let mut words = words.borrow_mut();
        if words.len() < 2 {
            *words = crypto_words(256).unwrap_or_else(|| {
                (0..256)
                    .map(|_| (js_sys::Math::random() * 4_294_967_296.0) as u32)
                    .collect()
            });
        }
        let high = u64::from(words.pop().unwrap_or_default());
        let low = u64::from(words.pop().unwrap_or_default());
        high << 32 | low
    })
}

fn crypto_words(n: u32) -> Option<Vec<u32>> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
    let fill: js_sys::Function = js_sys::Reflect::get(&crypto, &"getRandomValues".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let words = js_sys::Uint32Array::new_with_length(n);
    fill.call1(&crypto, &words).ok()?;
    Some(words.to_vec())
}
