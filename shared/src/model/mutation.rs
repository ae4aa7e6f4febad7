//! One change to one row, with what it takes to undo it.

use super::Key;
use crate::patch::{self, Patch};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A row's JSON, shared rather than copied: a mutation's `changes` and `modified` and the rows
/// the optimistic view shows from it are often the same value.
pub type Row = Arc<Value>;

/// The deepest a row may nest (arrays and objects inside one another). A row travels inside
/// messages that add levels of their own, and every JSON reader here stops at 128: a row the
/// server took at 122 levels could not be read by any tab from the change feed.
pub const MAX_ROW_DEPTH: usize = 64;

/// Whether `value` nests no deeper than `max` levels (a scalar is level 0; `[]` and `{}` are 1).
pub fn nested_within(value: &Value, max: usize) -> bool {
    // Iterative: the value may come from a reader without a depth limit.
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth + 1 > max {
            return false;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    true
}

/// What a mutation does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationKind {
    /// A new row.
    Insert,
    /// Some fields of an existing row change.
    Update,
    /// The row goes away.
    Delete,
}

/// One change to one row of a collection.
///
/// Patches (the inverse one here) are expressed over the *collection document*: a JSON object
/// mapping each row's key to the row, so `/<key>/title` is a field of row `<key>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingMutation {
    /// The collection, e.g. `todos`.
    pub collection: String,
    /// The row's key within the collection.
    pub key: String,
    /// Insert, update or delete.
    pub kind: MutationKind,
    /// The row before the change (`None` for an insert).
    #[serde(default)]
    pub original: Option<Row>,
    /// The row after the change (`None` for a delete).
    #[serde(default)]
    pub modified: Option<Row>,
    /// What changed: the whole row for an insert, the changed fields for an update, `null` for a
    /// delete.
    #[serde(default)]
    pub changes: Row,
    /// The RFC 6902 patch that undoes this mutation on the collection document.
    pub inverse: Patch,
    /// App data carried along, untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl PendingMutation {
    /// Inserting `row` under `key`.
    pub fn insert(collection: &str, key: &str, row: impl Into<Row>) -> Self {
        let inverse = patch::single_remove(&[key]);
        let row = row.into();
        Self {
            collection: collection.to_owned(),
            key: key.to_owned(),
            kind: MutationKind::Insert,
            original: None,
            changes: Arc::clone(&row),
            modified: Some(row),
            inverse,
            metadata: None,
        }
    }

    /// Changing the fields in `changes` (a JSON object) of `original`. A non-object `changes`
    /// replaces the row whole.
    pub fn update(
        collection: &str,
        key: &str,
        original: impl Into<Row>,
        changes: impl Into<Row>,
    ) -> Self {
        let (original, changes) = (original.into(), changes.into());
        let modified = merge_changes(&original, &changes);
        let inverse = patch::inverse_of_diff(key, &original, &modified);
        Self {
            collection: collection.to_owned(),
            key: key.to_owned(),
            kind: MutationKind::Update,
            original: Some(original),
            modified: Some(Arc::new(modified)),
            changes,
            inverse,
            metadata: None,
        }
    }

    /// Deleting the row `original`.
    pub fn delete(collection: &str, key: &str, original: impl Into<Row>) -> Self {
        let original = original.into();
        let inverse = patch::single_add(&[key], Value::clone(&original));
        Self {
            collection: collection.to_owned(),
            key: key.to_owned(),
            kind: MutationKind::Delete,
            original: Some(original),
            modified: None,
            changes: Arc::new(Value::Null),
            inverse,
            metadata: None,
        }
    }

    /// With app metadata attached.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The scheduling key this mutation touches.
    pub fn scheduling_key(&self) -> Key {
        Key::new(&self.collection, &self.key)
    }

    /// This mutation applied on top of `current` (the row as the view has it now, `None` if
    /// absent): an insert sets the row, an update merges its changed fields over whatever is
    /// there now (so newer synced fields it did not touch survive), a delete removes it.
    pub fn apply_to(&self, current: Option<&Value>) -> Option<Row> {
        match self.kind {
            MutationKind::Insert => self.modified.clone(),
            MutationKind::Update => match current {
                Some(row) => Some(Arc::new(merge_changes(row, &self.changes))),
                // Updating a row the view no longer has (deleted by a sync): the change is
                // shown on what the row was when the change was made.
                None => self.modified.clone(),
            },
            MutationKind::Delete => None,
        }
    }
}

/// `changes` merged over `row`, field by field (one level deep, like `Object.assign`). A
/// non-object on either side means `changes` replaces the row.
pub fn merge_changes(row: &Value, changes: &Value) -> Value {
    match (row, changes) {
        (Value::Object(base), Value::Object(delta)) => {
            let mut out: Map<String, Value> = base.clone();
            for (k, v) in delta {
                out.insert(k.clone(), v.clone());
            }
            Value::Object(out)
        }
        (_, other) => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn undo(doc: &Value, m: &PendingMutation) -> Value {
        let mut d = doc.clone();
        patch::apply(&mut d, &m.inverse).unwrap();
        d
    }

    /// `{"a": {"a": … 1 …}}`, `levels` objects deep.
    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }))
    }

    #[test]
    fn nesting_is_counted_in_levels_of_arrays_and_objects() {
        assert!(nested_within(&json!(1), 0));
        assert!(!nested_within(&json!([]), 0));
        assert!(nested_within(&json!({"a": [1, {"b": 2}]}), 3));
        assert!(!nested_within(&json!({"a": [1, {"b": 2}]}), 2));
        assert!(nested_within(&nested(MAX_ROW_DEPTH), MAX_ROW_DEPTH));
        assert!(!nested_within(&nested(MAX_ROW_DEPTH + 1), MAX_ROW_DEPTH));
        // Deeper than any JSON reader here takes.
        assert!(!nested_within(&nested(1_000), MAX_ROW_DEPTH));
    }

    #[test]
    fn inverse_of_insert_removes_the_row() {
        let m = PendingMutation::insert("todos", "a/1", json!({"id": "a/1", "t": "x"}));
        let after = json!({"a/1": {"id": "a/1", "t": "x"}, "b": 1});
        assert_eq!(undo(&after, &m), json!({"b": 1}));
    }

    #[test]
    fn inverse_of_update_restores_changed_and_removed_fields() {
        let original = json!({"id": 1, "t": "x", "done": false});
        let m = PendingMutation::update(
            "todos",
            "1",
            original.clone(),
            json!({"done": true, "n": 2}),
        );
        assert_eq!(
            m.modified.as_deref(),
            Some(&json!({"id": 1, "t": "x", "done": true, "n": 2}))
        );
        let after = json!({"1": m.modified.as_deref().unwrap()});
        assert_eq!(undo(&after, &m), json!({"1": original}));
    }

    #[test]
    fn inverse_of_delete_puts_the_row_back() {
        let original = json!({"id": "k~0", "t": "x"});
        let m = PendingMutation::delete("todos", "k~0", original.clone());
        assert_eq!(undo(&json!({}), &m), json!({"k~0": original}));
    }

    #[test]
    fn update_applies_over_newer_synced_fields() {
        let m = PendingMutation::update("t", "1", json!({"a": 1, "b": 1}), json!({"a": 2}));
        let synced_now = json!({"a": 1, "b": 7});
        assert_eq!(
            m.apply_to(Some(&synced_now)).as_deref(),
            Some(&json!({"a": 2, "b": 7}))
        );
        assert_eq!(m.apply_to(None).as_deref(), Some(&json!({"a": 2, "b": 1})));
    }
}
