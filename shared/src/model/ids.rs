//! Identifiers and scalar types shared by every part of the model.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch (what `Date.now()` returns, truncated).
pub type Millis = u64;

/// A transaction's id. It is also its idempotency key: fixed at creation, sent on every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransactionId(pub String);

impl TransactionId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TransactionId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// The id of one browser context (a tab's client or a worker) on the BroadcastChannel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub String);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ClientId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// A leadership epoch: bumped in storage each time a worker takes the leader lock. Writes carry
/// the epoch of the leader that made them, and storage refuses a write from an older epoch.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch after this one.
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a transaction touches: a row of a collection, written `collection/key`.
///
/// Ordered transactions that share a key run one after another, in submit order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Key(pub String);

impl Key {
    /// The key of row `key` in `collection`.
    pub fn new(collection: &str, key: &str) -> Self {
        let mut s = String::with_capacity(collection.len() + key.len() + 1);
        s.push_str(collection);
        s.push('/');
        s.push_str(key);
        Self(s)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
