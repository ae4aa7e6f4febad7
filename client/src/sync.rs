//! A collection's sync source: where synced rows come from. `sync: 'leader'` follows the
//! origin's one change feed, which the leader holds and fans out to every tab (see
//! `outbox_shared::sync`; the leader says which collections its feed follows, and one it does
//! not is reported as an `OUTBOX_INVALID` diagnostic and synced by completions, see
//! `TabCore::follow_leader_feed`); or the app plugs in its own source,
//! `sync: { setup({ onUpdate }) }`:
//!
//! `onUpdate` takes one change `{type: 'insert' | 'update' | 'delete', key?, value?, seq?}` (for
//! insert and update `value` is the whole row, and `key` may be left out), an array of such
//! changes, or a snapshot `{type: 'snapshot', rows: [...], seq?}` that replaces every synced row.
//! A collection with a sync source gets its synced rows from the sync alone. When the source
//! gives `seq` (the server sequence number its rows have reached), a completed transaction whose
//! reply named a later sequence number keeps its change in the overlay, reading
//! `persisted_awaiting_sync`, until the sync reaches it, so nothing flickers back; a source whose
//! first update has no `seq` is taken to give none, and is not waited for. Bad updates
//! throw `OUTBOX_INVALID` and change nothing.
//!
//! A `setup` that throws leaves no collection behind: `collection()` throws `OUTBOX_INVALID`
//! (what `setup` threw is its `cause`), nothing is taken from that source's `onUpdate` any more
//! (it throws `OUTBOX_INVALID`), and the collection is not marked synced in the tab core, so
//! defined again without a sync its completed changes stay in the view.

use crate::collection::CollectionDef;
use crate::errors::invalid;
use crate::inner::Inner;
use crate::listen::string_field;
use crate::notify::bound_method;
use crate::rowdata::{key_from_js, key_of, to_json};
use js_sys::{Array, Function};
use outbox_runtime::convert::{js_error, JsErrorInfo};
use outbox_shared::ErrorCode;
use serde_json::Value;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// One synced change, checked.
enum Change {
    Set(String, Value),
    Delete(String),
    Snapshot(BTreeMap<String, Value>),
}

/// What `onUpdate` writes to.
#[wasm_bindgen(skip_typescript)]
#[derive(Debug)]
pub struct SyncSink {
    inner: Weak<Inner>,
    def: Rc<CollectionDef>,
    /// False once the source's `setup` threw: it syncs nothing.
    live: Rc<Cell<bool>>,
}

#[wasm_bindgen]
impl SyncSink {
    /// Applies one update, an array of them, or a snapshot.
    pub fn update(&self, update: JsValue) -> Result<(), JsValue> {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(());
        };
        if !self.live.get() {
            return Err(invalid(format!(
                "{}: sync onUpdate: this source's setup threw, so it syncs nothing",
                self.def.name
            )));
        }
        let items: Vec<JsValue> = if Array::is_array(&update) {
            update.unchecked_ref::<Array>().iter().collect()
        } else {
            vec![update]
        };
        let changes = items
            .iter()
            .map(|u| self.read(u))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| invalid(format!("{}: sync onUpdate: {e}", self.def.name)))?;
        let seq = items.iter().filter_map(seq_of).max();
        for change in changes {
            let name = &self.def.name;
            let out = match change {
                Change::Set(key, row) => inner.core.borrow_mut().set_synced(name, &key, Some(row)),
                Change::Delete(key) => inner.core.borrow_mut().set_synced(name, &key, None),
                Change::Snapshot(rows) => inner.core.borrow_mut().replace_synced(name, rows),
            };
            Inner::apply(&inner, out);
        }
        let out = match seq {
            Some(seq) => inner.core.borrow_mut().synced_to(seq),
            None => inner.core.borrow_mut().synced_without_seq(),
        };
        Inner::apply(&inner, out);
        Ok(())
    }
}

/// An update's `seq`: the server sequence number the sync has reached with it, if it says.
fn seq_of(update: &JsValue) -> Option<u64> {
    js_sys::Reflect::get(update, &JsValue::from_str("seq"))
        .ok()?
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s as u64)
}

impl SyncSink {
    fn read(&self, update: &JsValue) -> Result<Change, String> {
        let kind = string_field(update, "type")
            .ok_or("an update needs a type: 'insert', 'update', 'delete' or 'snapshot'")?;
        let field = |k: &str| js_sys::Reflect::get(update, &JsValue::from_str(k)).ok();
        let given_key = field("key")
            .filter(|k| !k.is_undefined() && !k.is_null())
            .map(|k| key_from_js(&k).map_err(|e| format!("key: {e}")))
            .transpose()?;
        match kind.as_str() {
            "insert" | "update" => {
                let value = to_json(&field("value").unwrap_or(JsValue::UNDEFINED), "value")?;
                let key = match given_key {
                    Some(k) => k,
                    None => {
                        key_of(&value, &self.def.key_field).map_err(|e| format!("value: {e}"))?
                    }
                };
                Ok(Change::Set(key, value))
            }
            "delete" => given_key
                .map(Change::Delete)
                .ok_or_else(|| "a delete needs its key".to_owned()),
            "snapshot" => {
                let rows = field("rows")
                    .filter(Array::is_array)
                    .ok_or("a snapshot needs rows: [...]")?;
                let mut out = BTreeMap::new();
                for (i, row) in rows.unchecked_ref::<Array>().iter().enumerate() {
                    let row = to_json(&row, &format!("rows[{i}]"))?;
                    let key =
                        key_of(&row, &self.def.key_field).map_err(|e| format!("rows[{i}]: {e}"))?;
                    out.insert(key, row);
                }
                Ok(Change::Snapshot(out))
            }
            other => Err(format!("unknown update type {other:?}")),
        }
    }
}

/// Calls the source's `setup({ onUpdate, collection })` and marks the collection as synced
/// from outside. If `setup` throws, the collection is not synced after all and the error is
/// `OUTBOX_INVALID`, with what `setup` threw as its `cause`.
pub(crate) fn start(
    inner: &Rc<Inner>,
    def: &Rc<CollectionDef>,
    sync: &JsValue,
) -> Result<(), JsValue> {
    if sync.as_string().as_deref() == Some("leader") {
        // The origin's one change feed, held by the leader (its `sync` option; in online-only
        // mode this tab's own, from `connect({ sync })`).
        let out = inner.core.borrow_mut().follow_leader_feed(&[&def.name]);
        Inner::apply(inner, out);
        return Ok(());
    }
    let setup = js_sys::Reflect::get(sync, &"setup".into())
        .ok()
        .and_then(|s| s.dyn_into::<Function>().ok())
        .ok_or_else(|| {
            invalid(format!(
                "{}: sync must be 'leader' or an object with a setup function",
                def.name
            ))
        })?;
    inner.core.borrow_mut().set_externally_synced(&def.name);
    let live = Rc::new(Cell::new(true));
    let sink = SyncSink {
        inner: Rc::downgrade(inner),
        def: Rc::clone(def),
        live: Rc::clone(&live),
    };
    let params = js_sys::Object::new();
    let _ = js_sys::Reflect::set(
        &params,
        &"onUpdate".into(),
        &bound_method(sink.into(), "update"),
    );
    let _ = js_sys::Reflect::set(&params, &"collection".into(), &JsValue::from_str(&def.name));
    let cleanup = match setup.call1(sync, &params) {
        Ok(cleanup) => cleanup,
        Err(thrown) => {
            live.set(false);
            let out = inner.core.borrow_mut().sync_source_failed(&def.name);
            Inner::apply(inner, out);
            let error = js_error(
                ErrorCode::Invalid,
                &format!(
                    "{}: the sync source's setup threw ({}); the collection is not defined",
                    def.name,
                    JsErrorInfo::from_js(&thrown)
                ),
            );
            let _ = js_sys::Reflect::set(&error, &"cause".into(), &thrown);
            return Err(error.into());
        }
    };
    if let Ok(f) = cleanup.dyn_into::<Function>() {
        *def.sync_cleanup.borrow_mut() = Some(f);
    }
    Ok(())
}
