//! The walk behind [`apply`](super::apply) and [`inverse`](super::inverse).
//!
//! Each operation is checked against the document as it stands (RFC 6901/6902 rules: strict array
//! indices, `-` only as the last token of an `add`, no move into a child), broken down into
//! primitive add/remove/replace steps (move = remove + add, copy = add), and each step is carried
//! out by the `json_patch` crate. Before a step runs, its exact inverse against the current state is
//! recorded, with `-` resolved to the concrete index. The records, reversed, are the inverse patch;
//! replayed on failure, they put the document back as it was.

use json_patch::jsonptr::index::Index;
use json_patch::jsonptr::{Pointer, PointerBuf, Token};
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::Value;

use super::equal::json_equal;
use super::error::{Failure, PatchError};

/// Applies `ops` to `doc` in place and returns the undo steps in the order they were recorded
/// (apply them last to first to undo). On error `doc` is restored and the error returned.
pub(super) fn run(
    doc: &mut Value,
    ops: &[PatchOperation],
) -> Result<Vec<PatchOperation>, PatchError> {
    let mut undo = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        if let Err((pointer, failure)) = step(doc, op, &mut undo) {
            rollback(doc, undo);
            return Err(PatchError::Failed {
                op: index,
                pointer: pointer.to_string(),
                failure,
            });
        }
    }
    Ok(undo)
}

/// Replays `undo` last to first.
fn rollback(doc: &mut Value, undo: Vec<PatchOperation>) {
    for op in undo.into_iter().rev() {
        // Cannot fail: each undo step was computed against exactly the state it now meets, and
        // the round-trip tests (suite and proptest) check that. Were it to fail anyway, there is
        // nothing better to do than carry on with the remaining steps.
        let _ = json_patch::patch_unsafe(doc, std::slice::from_ref(&op));
    }
}

type StepResult<'p> = Result<(), (&'p Pointer, Failure)>;

/// One operation: its primitive steps are applied and their inverses pushed to `undo`.
fn step<'p>(
    doc: &mut Value,
    op: &'p PatchOperation,
    undo: &mut Vec<PatchOperation>,
) -> StepResult<'p> {
    let at = |pointer: &'p PointerBuf| move |failure| (pointer.as_ref(), failure);
    match op {
        PatchOperation::Add(o) => add(doc, &o.path, o.value.clone(), undo).map_err(at(&o.path)),
        PatchOperation::Remove(o) => remove(doc, &o.path, undo).map_err(at(&o.path)),
        PatchOperation::Replace(o) => {
            replace(doc, &o.path, o.value.clone(), undo).map_err(at(&o.path))
        }
        PatchOperation::Move(o) => {
            let value = get(doc, &o.from).map_err(at(&o.from))?.clone();
            if o.from == o.path {
                return Ok(());
            }
            if o.path.starts_with(&o.from) {
                return Err((&o.path, Failure::MoveIntoChild));
            }
            remove(doc, &o.from, undo).map_err(at(&o.from))?;
            add(doc, &o.path, value, undo).map_err(at(&o.path))
        }
        PatchOperation::Copy(o) => {
            let value = get(doc, &o.from).map_err(at(&o.from))?.clone();
            add(doc, &o.path, value, undo).map_err(at(&o.path))
        }
        PatchOperation::Test(o) => {
            let found = get(doc, &o.path).map_err(at(&o.path))?;
            if json_equal(found, &o.value) {
                Ok(())
            } else {
                Err((&o.path, Failure::TestFailed))
            }
        }
    }
}

/// `add`: the root is replaced, an object member set, an array element inserted.
fn add(
    doc: &mut Value,
    path: &Pointer,
    value: Value,
    undo: &mut Vec<PatchOperation>,
) -> Result<(), Failure> {
    let Some((parent_path, last)) = path.split_back() else {
        let old = doc.clone();
        lib_apply(doc, add_op(PointerBuf::root(), value))?;
        undo.push(replace_op(PointerBuf::root(), old));
        return Ok(());
    };
    let (target, inverse) = match get(doc, parent_path)? {
        Value::Object(members) => {
            let target = path.to_buf();
            let inverse = match members.get(last.decoded().as_ref()) {
                Some(old) => replace_op(target.clone(), old.clone()),
                None => remove_op(target.clone()),
            };
            (target, inverse)
        }
        Value::Array(items) => {
            let index = match last.to_index() {
                Ok(Index::Num(index)) if index <= items.len() => index,
                Ok(Index::Num(index)) => {
                    return Err(Failure::OutOfBounds {
                        index,
                        len: items.len(),
                    })
                }
                Ok(Index::Next) => items.len(),
                Err(_) => return Err(invalid_index(&last)),
            };
            let mut target = parent_path.to_buf();
            target.push_back(index);
            (target.clone(), remove_op(target))
        }
        _ => return Err(Failure::NotAContainer),
    };
    lib_apply(doc, add_op(target, value))?;
    undo.push(inverse);
    Ok(())
}

/// `remove` of an existing object member or array element; never the root.
fn remove(doc: &mut Value, path: &Pointer, undo: &mut Vec<PatchOperation>) -> Result<(), Failure> {
    let Some((parent_path, last)) = path.split_back() else {
        return Err(Failure::RemoveRoot);
    };
    let (target, old) = match get(doc, parent_path)? {
        Value::Object(members) => {
            let member = last.decoded();
            match members.get(member.as_ref()) {
                Some(old) => (path.to_buf(), old.clone()),
                None => return Err(no_such_member(member.into_owned())),
            }
        }
        Value::Array(items) => {
            let index = existing_index(&last, items.len())?;
            let old = items.get(index).cloned().ok_or(Failure::OutOfBounds {
                index,
                len: items.len(),
            })?;
            let mut target = parent_path.to_buf();
            target.push_back(index);
            (target, old)
        }
        _ => return Err(Failure::NotAContainer),
    };
    lib_apply(doc, remove_op(target.clone()))?;
    undo.push(add_op(target, old));
    Ok(())
}

/// `replace` of an existing value (the root included).
fn replace(
    doc: &mut Value,
    path: &Pointer,
    value: Value,
    undo: &mut Vec<PatchOperation>,
) -> Result<(), Failure> {
    let old = get(doc, path)?.clone();
    lib_apply(doc, replace_op(path.to_buf(), value))?;
    undo.push(replace_op(path.to_buf(), old));
    Ok(())
}

/// The value at `path`, resolved strictly per RFC 6901.
fn get<'v>(doc: &'v Value, path: &Pointer) -> Result<&'v Value, Failure> {
    path.tokens().try_fold(doc, |value, token| match value {
        Value::Object(members) => {
            let member = token.decoded();
            members
                .get(member.as_ref())
                .ok_or_else(|| no_such_member(member.into_owned()))
        }
        Value::Array(items) => {
            let index = existing_index(&token, items.len())?;
            items.get(index).ok_or(Failure::OutOfBounds {
                index,
                len: items.len(),
            })
        }
        _ => Err(Failure::NotAContainer),
    })
}

/// `token` as the index of an existing element of an array of `len`.
fn existing_index(token: &Token<'_>, len: usize) -> Result<usize, Failure> {
    match token.to_index() {
        Ok(Index::Num(index)) if index < len => Ok(index),
        Ok(Index::Num(index)) => Err(Failure::OutOfBounds { index, len }),
        Ok(Index::Next) => Err(Failure::EndOfArray),
        Err(_) => Err(invalid_index(token)),
    }
}

fn invalid_index(token: &Token<'_>) -> Failure {
    Failure::InvalidIndex {
        token: token.encoded().to_owned(),
    }
}

fn no_such_member(member: String) -> Failure {
    Failure::NoSuchMember { member }
}

/// Carries out one checked primitive step with the `json_patch` crate. Its add, remove and
/// replace either succeed or leave `doc` untouched.
fn lib_apply(doc: &mut Value, op: PatchOperation) -> Result<(), Failure> {
    json_patch::patch_unsafe(doc, std::slice::from_ref(&op)).map_err(|e| Failure::Rejected {
        reason: e.kind.to_string(),
    })
}

fn add_op(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

fn remove_op(path: PointerBuf) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation { path })
}

fn replace_op(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation { path, value })
}
