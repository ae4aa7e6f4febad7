//! [`TypedCollection`]: a collection whose rows are a Rust type.

use super::error::{js_err, OutboxError};
use super::subscription::{subscribe, Subscription};
use super::tx::Tx;
use super::{from_js, to_js};
use crate::collection::Collection;
use outbox_shared::model::Strategy;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;
use wasm_bindgen::closure::ScopedClosure;
use wasm_bindgen::{JsCast, JsValue};

/// How to define a collection ([`Outbox::collection_with`](super::Outbox::collection_with)).
/// `None` leaves a setting at the client's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionOptions {
    /// The field of each row that holds its key (the client's default: `"id"`).
    pub key: Option<String>,
    /// The mutation function that persists its changes (the client's default: the
    /// collection's name).
    pub mutation_fn: Option<String>,
    /// Ordered (per-key FIFO, the default) or parallel.
    pub strategy: Option<Strategy>,
    /// Rows come from the origin's change feed, which the leader follows and hands to every
    /// tab (JS `sync: 'leader'`; the leader's worker names the collection in its `sync`
    /// option, and [`Config::sync`](super::Config::sync) does for an online-only tab). A
    /// completed change then shows as the server's row once the feed has brought it. A
    /// collection the leader's feed does not follow is reported once (an `on_event` diagnostic,
    /// `OUTBOX_INVALID`), and its completed changes are kept as they completed.
    pub sync_leader: bool,
}

impl CollectionOptions {
    /// As the JS options object `{key?, mutationFn?, strategy?, sync?}`.
    pub(crate) fn to_js(&self) -> Result<JsValue, OutboxError> {
        let o = js_sys::Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = js_sys::Reflect::set(&o, &JsValue::from_str(k), &v);
        };
        if let Some(key) = &self.key {
            set("key", JsValue::from_str(key));
        }
        if let Some(name) = &self.mutation_fn {
            set("mutationFn", JsValue::from_str(name));
        }
        if let Some(strategy) = &self.strategy {
            set("strategy", to_js(strategy)?);
        }
        if self.sync_leader {
            set("sync", JsValue::from_str("leader"));
        }
        Ok(o.into())
    }
}

/// A row key: a string or a number, as the collection's key field holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowKey(KeyValue);

#[derive(Debug, Clone, PartialEq)]
enum KeyValue {
    Text(String),
    Number(f64),
}

impl RowKey {
    fn to_js(&self) -> JsValue {
        match &self.0 {
            KeyValue::Text(s) => JsValue::from_str(s),
            KeyValue::Number(n) => JsValue::from_f64(*n),
        }
    }
}

impl From<&str> for RowKey {
    fn from(key: &str) -> Self {
        Self(KeyValue::Text(key.to_owned()))
    }
}

impl From<String> for RowKey {
    fn from(key: String) -> Self {
        Self(KeyValue::Text(key))
    }
}

impl From<&String> for RowKey {
    fn from(key: &String) -> Self {
        Self(KeyValue::Text(key.clone()))
    }
}

macro_rules! numeric_keys {
    ($($t:ty),*) => {$(
        /// A numeric key (JS numbers are exact up to 2^53).
        impl From<$t> for RowKey {
            fn from(key: $t) -> Self {
                Self(KeyValue::Number(key as f64))
            }
        }
    )*};
}
numeric_keys!(i32, u32, i64, u64, usize, f64);

/// A collection of rows of type `T`, from [`Outbox::collection`](super::Outbox::collection).
///
/// Every mutator checks its arguments first and returns `Err` with `OUTBOX_INVALID` when one
/// is bad (a row without its key, an unknown key, a duplicate insert), changing nothing. On
/// success the change is already in [`rows`](Self::rows) and [`get`](Self::get) when the call
/// returns; the [`Tx`] follows it to the server.
pub struct TypedCollection<T> {
    inner: Collection,
    _rows: PhantomData<fn() -> T>,
}

impl<T> Clone for TypedCollection<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _rows: PhantomData,
        }
    }
}

impl<T> fmt::Debug for TypedCollection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedCollection")
            .field("name", &self.inner.name())
            .field("rows", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T> From<Collection> for TypedCollection<T> {
    fn from(inner: Collection) -> Self {
        Self {
            inner,
            _rows: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> TypedCollection<T> {
    /// The collection's name.
    pub fn name(&self) -> String {
        self.inner.name()
    }

    /// The untyped collection underneath (the JS-facing API).
    pub fn untyped(&self) -> &Collection {
        &self.inner
    }

    /// Inserts a row. `T` must serialize to an object holding the key field.
    pub fn insert(&self, row: &T) -> Result<Tx, OutboxError> {
        let value = to_js(row)?;
        if js_sys::Array::is_array(&value) {
            return Err(OutboxError::invalid(format!(
                "{}.insert: a row must serialize to an object, not an array",
                self.name()
            )));
        }
        self.inner.insert(value).map(Tx::from).map_err(js_err)
    }

    /// Inserts several rows in one transaction (all or none).
    pub fn insert_all(&self, rows: &[T]) -> Result<Tx, OutboxError> {
        self.inner
            .insert(to_js(rows)?)
            .map(Tx::from)
            .map_err(js_err)
    }

    /// Sets the fields `changes` serializes to (an object, for example a struct of the fields
    /// to change or `serde_json::json!({"done": true})`) on the row with this key.
    pub fn update<C: Serialize + ?Sized>(
        &self,
        key: impl Into<RowKey>,
        changes: &C,
    ) -> Result<Tx, OutboxError> {
        let key = key.into().to_js();
        self.inner
            .update(key, to_js(changes)?)
            .map(Tx::from)
            .map_err(js_err)
    }

    /// Changes the row with this key by editing a copy: `todos.update_with("1", |t| t.done =
    /// true)`. Only the fields that change are sent. A field the edit leaves out of the row's
    /// JSON (an `Option` set to `None` under `skip_serializing_if`) is set to `null`; the key
    /// field cannot change.
    pub fn update_with(
        &self,
        key: impl Into<RowKey>,
        edit: impl FnOnce(&mut T),
    ) -> Result<Tx, OutboxError> {
        let mut edit = Some(edit);
        // The client calls it at once with a draft copy of the row, and diffs the result.
        let mut on_draft = |draft: JsValue| -> Result<(), JsValue> {
            let Some(edit) = edit.take() else {
                return Err(OutboxError::invalid("update_with: the draft was edited twice").into());
            };
            let mut row: T = from_js(draft.clone())?;
            let before = to_js(&row)?;
            edit(&mut row);
            let edited = to_js(&row)?;
            let (Some(draft), Some(edited)) = (
                draft.dyn_ref::<js_sys::Object>(),
                edited.dyn_ref::<js_sys::Object>(),
            ) else {
                return Err(OutboxError::invalid(
                    "update_with: the row must serialize to an object",
                )
                .into());
            };
            // A field `T` wrote before the edit and not after it was set to `None` (serde
            // leaves such a field out): it becomes `null`, which reads back as `None`. Merged
            // as it was, the old value stayed, and the call returned `Ok` for a change that
            // never happened. Fields `T` does not know are the row's, and stay.
            if let Some(before) = before.dyn_ref::<js_sys::Object>() {
                for field in js_sys::Object::keys(before).iter() {
                    if !js_sys::Reflect::has(edited, &field).unwrap_or(true) {
                        js_sys::Reflect::set(edited, &field, &JsValue::NULL)?;
                    }
                }
            }
            js_sys::Object::assign(draft, edited);
            Ok(())
        };
        let closure =
            ScopedClosure::<dyn FnMut(JsValue) -> Result<(), JsValue>>::borrow_mut_aborting(
                &mut on_draft,
            );
        let function: JsValue = closure.as_ref().clone();
        let result = self.inner.update(key.into().to_js(), function);
        drop(closure);
        result.map(Tx::from).map_err(js_err)
    }

    /// Deletes the row with this key.
    pub fn delete(&self, key: impl Into<RowKey>) -> Result<Tx, OutboxError> {
        self.inner
            .delete(key.into().to_js())
            .map(Tx::from)
            .map_err(js_err)
    }

    /// The row with this key as the view has it now, or `None`. `Err` (`OUTBOX_INVALID`) when
    /// the stored row does not fit `T` (another tab or the sync wrote another shape).
    pub fn get(&self, key: impl Into<RowKey>) -> Result<Option<T>, OutboxError> {
        let row = self.inner.get(key.into().to_js()).map_err(js_err)?;
        if row.is_undefined() {
            return Ok(None);
        }
        Ok(Some(from_js(row)?))
    }

    /// Every row, by key. `Err` (`OUTBOX_INVALID`) when a row does not fit `T`.
    pub fn rows(&self) -> Result<Vec<T>, OutboxError> {
        from_js(self.inner.rows().into())
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.inner.size()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `on_change` whenever rows change (this tab's changes, other tabs', the sync's,
    /// rollbacks), until the [`Subscription`] is dropped. Read the rows inside with a clone
    /// of the collection.
    pub fn subscribe(&self, on_change: impl Fn() + 'static) -> Subscription {
        subscribe(move |_, _| on_change(), |f| self.inner.subscribe(f))
    }
}
