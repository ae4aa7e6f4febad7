//! The rows as JS objects, kept in step with the view change by change.
//!
//! Converting rows to JS is what costs in `rows()` and in every change notification (which
//! hands listeners the collection's rows): across a 500-row view, every insert used to convert
//! all 500. The cache keeps, per collection, a JS array of frozen row objects in key order and
//! the keys beside it; the view says which keys it recomputed since the cache last looked
//! ([`outbox_shared::view::OptimisticView::take_changed`], which every change goes through;
//! or that more changed than it has rows: then it starts again), and only those rows are
//! converted (together: [`to_js_array`]) and spliced in or out, or appended when they all come
//! after the last; many changes at once (a snapshot's part, a sync's batch) are merged with the
//! rows in one pass instead of a splice each. Callers get a copy of the array (a native
//! `slice`), so a row that has not changed is the same object as last time.

use outbox_runtime::convert::{json_to_js, to_js_array};
use outbox_shared::tab::TabCore;
use serde_json::Value;
use std::collections::hash_map::{Entry, HashMap};
use wasm_bindgen::JsValue;

/// Fewer rows than this are converted, and appended to the cached array, one by one; more in
/// one call each.
const MANY: usize = 16;

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
        let (rows, changed) = match (self.collections.entry(collection.to_owned()), changed) {
            (Entry::Occupied(rows), Some(changed)) => (rows.into_mut(), changed),
            (entry, _) => {
                // The first read, or more changed than there are rows: built from the view as
                // it is now, which already has every change.
                let (keys, values): (Vec<String>, Vec<&Value>) = view
                    .rows(collection)
                    .map(|(key, value)| (key.clone(), value))
                    .unzip();
                let array = frozen_all(&values);
                let rows = entry.insert_entry(Rows { keys, array }).into_mut();
                return rows.array.slice(0, rows.keys.len() as u32);
            }
        };
        let changed: Vec<(String, Option<&Value>)> = changed
            .into_iter()
            .map(|key| {
                let value = view.get(collection, &key);
                (key, value)
            })
            .collect();
        let fresh = frozen_all(&changed.iter().filter_map(|(_, v)| *v).collect::<Vec<_>>());
        if changed.len() >= MANY {
            rows.merge(changed, &fresh);
            return rows.array.slice(0, rows.keys.len() as u32);
        }
        // New rows after every row there is (the changes come in key order): appended.
        let after_last = changed
            .first()
            .is_some_and(|(first, _)| rows.keys.last().is_none_or(|last| last < first));
        if after_last && changed.iter().all(|(_, v)| v.is_some()) {
            // In place (callers only ever get copies): no copy of the whole array.
            for js in fresh.iter() {
                rows.array.push(&js);
            }
            rows.keys.extend(changed.into_iter().map(|(key, _)| key));
            return rows.array.slice(0, rows.keys.len() as u32);
        }
        let mut fresh = fresh.iter();
        for (key, value) in changed {
            let at = rows.keys.binary_search(&key);
            let js = value.map(|_| fresh.next().unwrap_or(JsValue::NULL));
            match (js, at) {
                (Some(js), Ok(i)) => rows.array.set(i as u32, js),
                (Some(js), Err(i)) => {
                    rows.array.splice(i as u32, 0, &js);
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

impl Rows {
    /// Lays many changes (in key order; `None`: the row is gone) into the rows in one pass
    /// over both, rather than one splice each across the whole array. `fresh` holds the JS
    /// rows of the changes that have one, in the same order.
    fn merge(&mut self, changed: Vec<(String, Option<&Value>)>, fresh: &js_sys::Array) {
        let mut keys = Vec::with_capacity(self.keys.len() + changed.len());
        // Where each row of the result comes from: an index into the old array, or FROM_FRESH
        // plus an index into `fresh`.
        let mut plan = Vec::with_capacity(self.keys.len() + changed.len());
        let mut old = std::mem::take(&mut self.keys)
            .into_iter()
            .enumerate()
            .peekable();
        let mut next_fresh = 0;
        for (key, value) in changed {
            while let Some((i, kept)) = old.next_if(|(_, k)| *k < key) {
                plan.push(i as u32);
                keys.push(kept);
            }
            // The row's old version, replaced or gone.
            old.next_if(|(_, k)| *k == key);
            if value.is_some() {
                plan.push(FROM_FRESH | next_fresh);
                next_fresh += 1;
                keys.push(key);
            }
        }
        for (i, kept) in old {
            plan.push(i as u32);
            keys.push(kept);
        }
        self.keys = keys;
        self.array = js::merge_rows(&self.array, fresh, &plan);
    }
}

/// Rows as frozen JS objects (a shared object must not be changed by one reader for all), in
/// one array: many made in one go ([`to_js_array`]), a few one by one ([`json_to_js`]).
fn frozen_all(values: &[&Value]) -> js_sys::Array {
    let one_by_one = || values.iter().map(|v| json_to_js(v)).collect();
    let array = if values.len() < MANY {
        one_by_one()
    } else {
        to_js_array(values.iter().copied()).unwrap_or_else(|_| one_by_one())
    };
    js::freeze_all(&array);
    array
}

/// Marks a row of [`Rows::merge`]'s plan as one of the fresh rows.
const FROM_FRESH: u32 = 1 << 31;

mod js {
    use wasm_bindgen::prelude::*;

    // Loops over whole arrays on the JS side: one call instead of one per row.
    #[wasm_bindgen(inline_js = "
        export function merge_rows(old, fresh, plan) {
            const rows = [];
            for (let i = 0; i < plan.length; i++) {
                const p = plan[i];
                rows.push(p >= 0x80000000 ? fresh[p - 0x80000000] : old[p]);
            }
            return rows;
        }
        export function freeze_all(rows) {
            for (const row of rows) if (row !== null && typeof row === 'object') Object.freeze(row);
        }
    ")]
    extern "C" {
        /// The rows `plan` lists, in its order: an index into `old`, or
        /// [`super::FROM_FRESH`] plus an index into `fresh`.
        pub fn merge_rows(
            old: &js_sys::Array,
            fresh: &js_sys::Array,
            plan: &[u32],
        ) -> js_sys::Array;
        /// Freezes every object of `rows`.
        pub fn freeze_all(rows: &js_sys::Array);
    }
}
