//! The rows as JS objects, kept in step with the view change by change.
//!
//! Converting rows to JS is what costs in `rows()` and in every change notification (which
//! hands listeners the collection's rows): across a 500-row view, every insert used to convert
//! all 500. The cache keeps, per collection, a JS array of frozen row objects in key order and
//! the keys beside it; the view says which keys it recomputed since the cache last looked
//! ([`outbox_shared::view::OptimisticView::take_changed`], which every change goes through),
//! and only those rows are converted and spliced in or out. Callers get a copy of the array
//! (a native `slice`), so a row that has not changed is the same object as last time.

use outbox_runtime::convert::to_js;
use outbox_shared::tab::TabCore;
use std::collections::hash_map::{Entry, HashMap};
use wasm_bindgen::JsValue;

/// One collection's rows, in the view's key order.
#[derive(Debug)]
struct Rows {
    keys: Vec<String>,
    array: js_sys::Array,
}

/// JS copies of the rows, by collection.
#[derive(Debug, Default)]
pub(crate) struct RowCache {
    collections: HashMap<String, Rows>,
}

impl RowCache {
    /// The rows of `collection` as the view has them now: a fresh JS array of shared, frozen
    /// row objects.
    pub fn rows(&mut self, core: &mut TabCore, collection: &str) -> js_sys::Array {
        let changed = core.take_view_changes(collection);
        let view = core.view();
        let rows = match self.collections.entry(collection.to_owned()) {
            Entry::Occupied(rows) => rows.into_mut(),
            Entry::Vacant(slot) => {
                // Built from the view as it is now, which already has every change.
                let mut keys = Vec::new();
                let array = js_sys::Array::new();
                for (key, value) in view.rows(collection) {
                    keys.push(key.clone());
                    array.push(&frozen(value));
                }
                let rows = slot.insert(Rows { keys, array });
                return rows.array.slice(0, rows.keys.len() as u32);
            }
        };
        for key in changed {
            let at = rows.keys.binary_search(&key);
            match (view.get(collection, &key), at) {
                (Some(value), Ok(i)) => {
                    rows.array.set(i as u32, frozen(value));
                }
                (Some(value), Err(i)) => {
                    rows.array.splice(i as u32, 0, &frozen(value));
                    rows.keys.insert(i, key);
                }
                (None, Ok(i)) => {
                    rows.array.splice_many(i as u32, 1, &[]);
                    rows.keys.remove(i);
                }
                (None, Err(_)) => {}
            }
        }
        rows.array.slice(0, rows.keys.len() as u32)
    }
}

/// A row as a frozen JS object (a shared object must not be changed by one reader for all).
fn frozen(value: &serde_json::Value) -> JsValue {
    let js = to_js(value).unwrap_or(JsValue::NULL);
    if js.is_object() {
        js_sys::Object::freeze(&js.clone().into());
    }
    js
}
