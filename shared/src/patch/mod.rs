//! JSON Patch (RFC 6902): applying patches and computing their inverses.
//!
//! PLACEHOLDER interface: being implemented in full (see `inverse`).

use serde_json::Value;

pub use json_patch::{Patch, PatchOperation};

/// A patch could not be applied or inverted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("json patch failed: {0}")]
pub struct PatchError(pub String);

/// Applies `patch` to `doc`, all or nothing: on error `doc` is unchanged.
pub fn apply(doc: &mut Value, patch: &Patch) -> Result<(), PatchError> {
    json_patch::patch(doc, patch).map_err(|e| PatchError(e.to_string()))
}

/// `[{"op":"remove","path":"/<tokens…>"}]`.
pub fn single_remove(tokens: &[&str]) -> Patch {
    serde_json::from_value(serde_json::json!([{"op": "remove", "path": pointer(tokens)}]))
        .unwrap_or_default()
}

/// `[{"op":"add","path":"/<tokens…>","value":value}]`.
pub fn single_add(tokens: &[&str], value: Value) -> Patch {
    serde_json::from_value(serde_json::json!([{"op": "add", "path": pointer(tokens), "value": value}]))
        .unwrap_or_default()
}

/// The patch that turns row `modified` back into row `original`, on the collection document.
pub fn inverse_of_diff(key: &str, original: &Value, modified: &Value) -> Patch {
    let mut from = serde_json::Map::new();
    from.insert(key.to_owned(), modified.clone());
    let mut to = serde_json::Map::new();
    to.insert(key.to_owned(), original.clone());
    json_patch::diff(&Value::Object(from), &Value::Object(to))
}

/// An RFC 6901 pointer from unescaped tokens.
pub fn pointer(tokens: &[&str]) -> String {
    let mut s = String::new();
    for t in tokens {
        s.push('/');
        s.push_str(&t.replace('~', "~0").replace('/', "~1"));
    }
    s
}
