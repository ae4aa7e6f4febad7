//! The rows as JS objects, converted once per version of a row.
//!
//! Converting a row to JS is what costs in `rows()` and in every change notification (which
//! hands listeners the collection's rows): across a 500-row view, every insert converted all 500.
//! The cache keeps each row's JS object next to the value it was made from; a row whose value
//! is unchanged is handed out again as the same (frozen) object, so only changed rows are
//! converted. Comparing values is plain Rust and cheap next to crossing into JS. The cache
//! checks values rather than trusting change notices, so it cannot go stale.

use outbox_runtime::convert::to_js;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use wasm_bindgen::JsValue;

/// JS objects of rows, by collection and key.
#[derive(Debug, Default)]
pub(crate) struct RowCache {
    collections: HashMap<String, HashMap<String, (Value, JsValue)>>,
}

impl RowCache {
    /// The rows `(key, value)` of `collection`, in order, as a fresh JS array of cached,
    /// frozen row objects (the array is the caller's; the rows are shared).
    pub fn rows<'a>(
        &mut self,
        collection: &str,
        rows: impl Iterator<Item = (&'a String, &'a Value)>,
    ) -> js_sys::Array {
        let cache = self.collections.entry(collection.to_owned()).or_default();
        let out = js_sys::Array::new();
        let mut seen: Vec<&String> = Vec::new();
        for (key, value) in rows {
            seen.push(key);
            let js = match cache.get(key) {
                Some((old, js)) if old == value => js.clone(),
                _ => {
                    let js = frozen(value);
                    cache.insert(key.clone(), (value.clone(), js.clone()));
                    js
                }
            };
            out.push(&js);
        }
        if cache.len() > seen.len() {
            // Rows went away: forget them.
            let present: HashSet<&String> = seen.into_iter().collect();
            cache.retain(|k, _| present.contains(k));
        }
        out
    }
}

/// A row as a frozen JS object (a shared object must not be changed by one reader for all).
fn frozen(value: &Value) -> JsValue {
    let js = to_js(value).unwrap_or(JsValue::NULL);
    if js.is_object() {
        js_sys::Object::freeze(&js.clone().into());
    }
    js
}
