//! The one error type of the patch module.

use std::fmt;

/// A patch could not be parsed, applied or inverted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch is not an RFC 6902 document: not an array, an unknown `op`, a missing
    /// `path`/`from`/`value` member, or a pointer that is not RFC 6901.
    #[error("malformed JSON patch: {reason}")]
    Malformed {
        /// What the parser objected to.
        reason: String,
    },
    /// Operation number `op` does not apply to the document as the operations before it left it.
    /// Nothing was changed.
    #[error("JSON patch operation {op} failed at `{pointer}`: {failure}")]
    Failed {
        /// 0-based index of the failing operation in the patch.
        op: usize,
        /// The pointer that failed: the operation's `path`, or its `from` for move and copy.
        pointer: String,
        /// Why it failed.
        failure: Failure,
    },
}

impl PatchError {
    /// The 0-based index of the failing operation, if the patch itself was well formed.
    pub fn op(&self) -> Option<usize> {
        match self {
            Self::Malformed { .. } => None,
            Self::Failed { op, .. } => Some(*op),
        }
    }

    /// Why the operation failed, if the patch itself was well formed.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Malformed { .. } => None,
            Self::Failed { failure, .. } => Some(failure),
        }
    }
}

/// Why one operation of a patch failed (the classified kind inside [`PatchError::Failed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// An object along the pointer has no member of this (unescaped) name.
    NoSuchMember {
        /// The missing member name, RFC 6901 escapes decoded.
        member: String,
    },
    /// The pointer steps into a value that is neither an object nor an array.
    NotAContainer,
    /// A token used on an array is not an RFC 6901 index (digits, no leading zeros).
    InvalidIndex {
        /// The offending token, as written in the pointer.
        token: String,
    },
    /// An array index past the end (for `add`, past one-past-the-end).
    OutOfBounds {
        /// The index asked for.
        index: usize,
        /// The array's length at that moment.
        len: usize,
    },
    /// `-` names the position after the last element; only `add` may use it, and only last.
    EndOfArray,
    /// `remove` (or `move`) of the whole document.
    RemoveRoot,
    /// `move` whose `from` is a proper prefix of its `path`.
    MoveIntoChild,
    /// A `test` operation found a different value.
    TestFailed,
    /// The `json_patch` crate refused an operation this module had checked. Not expected to
    /// happen; kept so that a disagreement surfaces as an error rather than a panic.
    Rejected {
        /// The crate's message.
        reason: String,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchMember { member } => write!(f, "no member named {member:?}"),
            Self::NotAContainer => f.write_str("the value is neither an object nor an array"),
            Self::InvalidIndex { token } => write!(f, "{token:?} is not an array index"),
            Self::OutOfBounds { index, len } => {
                write!(f, "index {index} is out of bounds for an array of {len}")
            }
            Self::EndOfArray => f.write_str("\"-\" names no existing element"),
            Self::RemoveRoot => f.write_str("the document root cannot be removed"),
            Self::MoveIntoChild => f.write_str("a value cannot be moved into its own child"),
            Self::TestFailed => f.write_str("the value is not the one the test expects"),
            Self::Rejected { reason } => write!(f, "json_patch rejected the operation: {reason}"),
        }
    }
}
