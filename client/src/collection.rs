//! Collections: rows by key, with the optimistic view of every tab's pending changes.
//!
//! Each mutator checks everything first and throws `OUTBOX_INVALID` at the call (a row without
//! its key, a value that is not JSON, an unknown key, a duplicate insert), so nothing is
//! half-applied; then it makes a transaction (or joins the one being built) and returns its
//! handle, with the view already showing the change.

use crate::errors::invalid;
use crate::handle::TransactionHandle;
use crate::inner::Inner;
use crate::notify::{unsubscribe_fn, Topic};
use crate::rowdata::{key_from_js, key_of, to_json};
use js_sys::{Array, Function};
use outbox_runtime::convert::json_to_js;
use outbox_shared::model::{PendingMutation, Row, Strategy};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// How a collection is set up.
#[derive(Debug)]
pub(crate) struct CollectionDef {
    pub name: String,
    /// The field of each row that holds its key.
    pub key_field: String,
    pub strategy: Strategy,
    pub mutation_fn: String,
    /// What the sync source's `setup` returned to stop it, if a function.
    pub sync_cleanup: RefCell<Option<Function>>,
    /// The `sync` and `conflict` options it was defined with (`'leader'`, a source object, a
    /// strategy's name or a merge function), to refuse a definition again with others.
    pub sync: Option<JsValue>,
    pub conflict: Option<JsValue>,
}

/// Reads `'ordered'` / `'parallel'` (absent: ordered).
pub(crate) fn parse_strategy(value: Option<JsValue>, what: &str) -> Result<Strategy, JsValue> {
    match value.map(|v| v.as_string()) {
        None => Ok(Strategy::Ordered),
        Some(Some(s)) if s == "ordered" => Ok(Strategy::Ordered),
        Some(Some(s)) if s == "parallel" => Ok(Strategy::Parallel),
        Some(_) => Err(invalid(format!(
            "{what}: strategy must be 'ordered' or 'parallel'"
        ))),
    }
}

/// A collection of rows.
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct Collection {
    pub(crate) inner: Rc<Inner>,
    pub(crate) def: Rc<CollectionDef>,
}

impl Collection {
    fn what(&self, op: &str) -> String {
        format!("{}.{op}", self.def.name)
    }

    /// The row as the view has it now.
    fn current(&self, key: &str) -> Option<Row> {
        self.inner
            .core
            .borrow()
            .view()
            .get_row(&self.def.name, key)
            .cloned()
    }

    fn existing(&self, key: &JsValue, op: &str) -> Result<(String, Row), JsValue> {
        let key = key_from_js(key).map_err(|e| invalid(format!("{}: {e}", self.what(op))))?;
        match self.current(&key) {
            Some(row) => Ok((key, row)),
            None => Err(invalid(format!(
                "{}: there is no row with key {key:?}",
                self.what(op)
            ))),
        }
    }
}

#[wasm_bindgen]
impl Collection {
    /// The collection's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.def.name.clone()
    }

    /// Inserts a row (or an array of rows, in one transaction).
    pub fn insert(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Row | Row[]")] rows: JsValue,
    ) -> Result<TransactionHandle, JsValue> {
        self.inner.ensure_open()?;
        // Made only for an error: an insert that goes through formats nothing.
        let what = || self.what("insert");
        let items: Vec<JsValue> = if Array::is_array(&rows) {
            rows.unchecked_ref::<Array>().iter().collect()
        } else {
            vec![rows]
        };
        if items.is_empty() {
            return Err(invalid(format!("{}: no rows given", what())));
        }
        let one = items.len() == 1;
        let mut seen = HashSet::new();
        let mut mutations = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path: Cow<str> = if one {
                Cow::Borrowed("row")
            } else {
                Cow::Owned(format!("rows[{i}]"))
            };
            if !item.is_object() || Array::is_array(item) {
                return Err(invalid(format!("{}: {path} must be an object", what())));
            }
            let row = to_json(item, &path).map_err(|e| invalid(format!("{}: {e}", what())))?;
            let key = key_of(&row, &self.def.key_field)
                .map_err(|e| invalid(format!("{}: {e}", what())))?;
            // One row needs no check against the others.
            if (!one && !seen.insert(key.clone())) || self.current(&key).is_some() {
                return Err(invalid(format!(
                    "{}: there is already a row with key {key:?}",
                    what()
                )));
            }
            mutations.push(PendingMutation::insert(&self.def.name, &key, row));
        }
        Inner::mutate(&self.inner, &self.def, mutations)
    }

    /// Changes a row: `changes` is an object of the fields to set, or a function that edits a
    /// draft copy of the row.
    pub fn update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RowKey")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Partial<Row> | ((draft: Row) => void)")]
        changes: JsValue,
    ) -> Result<TransactionHandle, JsValue> {
        self.inner.ensure_open()?;
        let what = self.what("update");
        let (key, row) = self.existing(&key, "update")?;
        let changes = if let Some(edit) = changes.dyn_ref::<Function>() {
            let draft = json_to_js(&row);
            let returned = edit.call1(&JsValue::NULL, &draft)?;
            if returned.is_instance_of::<js_sys::Promise>() {
                return Err(invalid(format!(
                    "{what}: the draft function must be synchronous"
                )));
            }
            let edited = to_json(&draft, "draft").map_err(|e| invalid(format!("{what}: {e}")))?;
            diff(&row, &edited).map_err(|e| invalid(format!("{what}: {e}")))?
        } else if changes.is_object() && !Array::is_array(&changes) {
            to_json(&changes, "changes").map_err(|e| invalid(format!("{what}: {e}")))?
        } else {
            return Err(invalid(format!(
                "{what}: changes must be an object of fields, or a function editing a draft"
            )));
        };
        if let Some(new_key) = changes.get(&self.def.key_field) {
            if row.get(&self.def.key_field) != Some(new_key) {
                return Err(invalid(format!(
                    "{what}: the key field {:?} cannot change",
                    self.def.key_field
                )));
            }
        }
        // The draft function ran app code: read the row again, it is what the change applies to.
        let original = self.current(&key).unwrap_or(row);
        let m = PendingMutation::update(&self.def.name, &key, original, changes);
        Inner::mutate(&self.inner, &self.def, vec![m])
    }

    /// Deletes a row.
    pub fn delete(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RowKey")] key: JsValue,
    ) -> Result<TransactionHandle, JsValue> {
        self.inner.ensure_open()?;
        let (key, row) = self.existing(&key, "delete")?;
        let m = PendingMutation::delete(&self.def.name, &key, row);
        Inner::mutate(&self.inner, &self.def, vec![m])
    }

    /// The row with this key, or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "Row | undefined")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RowKey")] key: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key = key_from_js(&key).map_err(|e| invalid(format!("{}: {e}", self.what("get"))))?;
        // Converted in place: making JS objects calls no app code, so the borrow is safe.
        let core = self.inner.core.borrow();
        match core.view().get(&self.def.name, &key) {
            Some(row) => Ok(json_to_js(row)),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// Every row, by key.
    #[wasm_bindgen(unchecked_return_type = "Row[]")]
    pub fn rows(&self) -> Array {
        self.inner.rows_js(&self.def.name)
    }

    /// How many rows there are.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> usize {
        self.inner.core.borrow().view().len(&self.def.name)
    }

    /// Calls `cb(rows, changedKeys)` whenever rows change (this tab's changes, other tabs',
    /// the sync's, rollbacks); returns `unsubscribe()`.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(rows: Row[], changedKeys: string[]) => void")]
        cb: Function,
    ) -> Function {
        let topic = Topic::Rows(self.def.name.clone());
        let id = self.inner.subs.borrow_mut().add(topic.clone(), cb);
        let weak = Rc::downgrade(&self.inner);
        unsubscribe_fn(move || {
            if let Some(inner) = weak.upgrade() {
                inner.subs.borrow_mut().remove(&topic, id);
            }
        })
    }
}

/// The fields `edited` sets differently from `row`. Removing a field cannot be expressed as
/// an update of fields, so it is refused.
fn diff(row: &Value, edited: &Value) -> Result<Value, String> {
    let (Value::Object(before), Value::Object(after)) = (row, edited) else {
        return Err("the draft must stay an object".into());
    };
    if let Some(gone) = before.keys().find(|k| !after.contains_key(*k)) {
        return Err(format!(
            "the draft deleted the field {gone:?}; set it to null instead"
        ));
    }
    let changes: Map<String, Value> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Value::Object(changes))
}
