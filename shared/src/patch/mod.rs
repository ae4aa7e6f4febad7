//! JSON Patch (RFC 6902): parsing, applying, and computing inverse patches.
//!
//! The [`json_patch`] crate provides the types and carries out every change; this module checks
//! each operation first (RFC 6901 pointers, strict array indices, `-` only where `add` allows it,
//! RFC equality for `test`) and records, for every primitive step, the step that undoes it. That
//! record gives two things the crate alone does not:
//!
//! - [`apply`] is all or nothing, always. (`json_patch::patch` rolls back with its own undo list,
//!   which is wrong for a `move` onto an ancestor of `from` and then panics with `unreachable!`.)
//! - [`inverse`] returns the patch that takes the patched document back to the original.
//!
//! Where RFC 6902 and the crate differ, this module follows the RFC: `test` compares numbers by
//! value (`1` equals `1.0`), and a `move` whose `from` equals its `path` changes nothing, even at
//! the root.
//!
//! ```
//! use outbox_shared::patch;
//! use serde_json::json;
//!
//! let doc = json!({"todos": ["milk", "eggs"]});
//! let p = patch::parse(&json!([
//!     {"op": "add", "path": "/todos/-", "value": "bread"},
//!     {"op": "move", "from": "/todos/0", "path": "/done"},
//! ]))?;
//! let undo = patch::inverse(&doc, &p)?;
//!
//! let mut d = doc.clone();
//! patch::apply(&mut d, &p)?;
//! assert_eq!(d, json!({"todos": ["eggs", "bread"], "done": "milk"}));
//! patch::apply(&mut d, &undo)?;
//! assert_eq!(d, doc);
//! # Ok::<(), patch::PatchError>(())
//! ```

mod engine;
mod equal;
mod error;
#[cfg(test)]
mod tests;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, RemoveOperation};
use serde::Deserialize;
use serde_json::Value;

pub use error::{Failure, PatchError};
pub use json_patch::{Patch, PatchOperation};

/// Reads an RFC 6902 patch document. Unknown members of an operation are ignored (RFC 6902 §4);
/// an unknown `op`, a missing `path`/`from`/`value`, or a pointer that is not RFC 6901 is
/// [`PatchError::Malformed`].
pub fn parse(patch: &Value) -> Result<Patch, PatchError> {
    Patch::deserialize(patch).map_err(|e| PatchError::Malformed {
        reason: e.to_string(),
    })
}

/// Applies `patch` to `doc`, all or nothing: on error `doc` is unchanged.
pub fn apply(doc: &mut Value, patch: &Patch) -> Result<(), PatchError> {
    engine::run(doc, patch).map(drop)
}

/// Applies `patch` to `doc` like [`apply`] and returns its inverse, in one pass.
pub fn apply_with_inverse(doc: &mut Value, patch: &Patch) -> Result<Patch, PatchError> {
    engine::run(doc, patch).map(reversed)
}

/// The patch that undoes `patch`: for `doc` the document before `patch`,
/// `apply(apply(doc, patch), inverse(doc, patch)) == doc`. Errors, as [`apply`] would, if `patch`
/// does not apply to `doc`.
///
/// The inverse uses only add, remove and replace, with concrete array indices (never `-`).
pub fn inverse(doc: &Value, patch: &Patch) -> Result<Patch, PatchError> {
    engine::run(&mut doc.clone(), patch).map(reversed)
}

fn reversed(mut undo: Vec<PatchOperation>) -> Patch {
    undo.reverse();
    Patch(undo)
}

/// `[{"op":"remove","path":"/<tokens…>"}]`.
pub fn single_remove(tokens: &[&str]) -> Patch {
    Patch(vec![PatchOperation::Remove(RemoveOperation {
        path: pointer_buf(tokens),
    })])
}

/// `[{"op":"add","path":"/<tokens…>","value":value}]`.
pub fn single_add(tokens: &[&str], value: Value) -> Patch {
    Patch(vec![PatchOperation::Add(AddOperation {
        path: pointer_buf(tokens),
        value,
    })])
}

/// The patch that turns row `modified` back into row `original`, on the collection document
/// (an object keyed by row key). It touches only paths under `/<key>`.
pub fn inverse_of_diff(key: &str, original: &Value, modified: &Value) -> Patch {
    let mut from = serde_json::Map::new();
    from.insert(key.to_owned(), modified.clone());
    let mut to = serde_json::Map::new();
    to.insert(key.to_owned(), original.clone());
    json_patch::diff(&Value::Object(from), &Value::Object(to))
}

/// An RFC 6901 pointer from unescaped tokens (`~` becomes `~0`, `/` becomes `~1`); no tokens
/// give `""`, the whole document.
pub fn pointer(tokens: &[&str]) -> String {
    pointer_buf(tokens).to_string()
}

fn pointer_buf(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}
