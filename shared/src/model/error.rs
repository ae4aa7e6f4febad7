//! Errors carried by transactions, with stable codes an app can match on.

use super::TransactionId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable error code. The string form (`OUTBOX_…`) never changes once released; apps match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Storage is full: the submit was not accepted. Everything accepted before stays.
    #[serde(rename = "OUTBOX_QUOTA_EXCEEDED")]
    QuotaExceeded,
    /// No mutation function is registered under the transaction's name.
    #[serde(rename = "OUTBOX_UNKNOWN_MUTATION_FN")]
    UnknownMutationFn,
    /// The mutation function failed with an error that must not be retried (for example a 4xx).
    #[serde(rename = "OUTBOX_NON_RETRIABLE")]
    NonRetriable,
    /// An earlier ordered transaction on the same keys failed for good, so this one cannot run.
    #[serde(rename = "OUTBOX_DEPENDENCY_FAILED")]
    DependencyFailed,
    /// Every allowed attempt failed with a retriable error.
    #[serde(rename = "OUTBOX_RETRIES_EXHAUSTED")]
    RetriesExhausted,
    /// One attempt failed with a retriable error (network, 5xx, 408, 429, timeout).
    #[serde(rename = "OUTBOX_RETRIABLE")]
    Retriable,
    /// One attempt got no answer at all (the network is down, the connection dropped): retried
    /// with growing backoff for as long as it takes, without counting against the retry budget,
    /// which is for answers from the server. `online` and `notifyOnline()` bring the retry
    /// forward.
    #[serde(rename = "OUTBOX_NETWORK")]
    Network,
    /// The server answered 401: the call needs (fresh) credentials. Not a failure and not
    /// retried at once: the outbox pauses until a tab sends credentials, then goes on. Not
    /// counted against the retry budget.
    #[serde(rename = "OUTBOX_UNAUTHORIZED")]
    Unauthorized,
    /// The leader running an attempt went away before it finished; the attempt is retried with
    /// the same idempotency key and does not count against the retry budget.
    #[serde(rename = "OUTBOX_LEADER_LOST")]
    LeaderLost,
    /// The app removed the transaction from the outbox.
    #[serde(rename = "OUTBOX_REMOVED")]
    Removed,
    /// A stored record could not be read; it was quarantined.
    #[serde(rename = "OUTBOX_CORRUPT_RECORD")]
    CorruptRecord,
    /// A write came from a leader whose epoch is no longer current.
    #[serde(rename = "OUTBOX_FENCED")]
    Fenced,
    /// Storage failed for another reason.
    #[serde(rename = "OUTBOX_STORAGE")]
    Storage,
    /// A message or argument was malformed.
    #[serde(rename = "OUTBOX_INVALID")]
    Invalid,
    /// The transaction was rejected after it was persisted (the sync said no).
    #[serde(rename = "OUTBOX_SYNC_REJECTED")]
    SyncRejected,
    /// The app closed its client before the transaction settled (its handle's promises reject
    /// with this). With a leader the transaction stays in the outbox and the leader goes on
    /// with it; online-only it had no outbox to stay in and is dropped (a call under way may
    /// still reach the server).
    #[serde(rename = "OUTBOX_CLOSED")]
    Closed,
}

impl ErrorCode {
    /// The stable string form, e.g. `OUTBOX_QUOTA_EXCEEDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QuotaExceeded => "OUTBOX_QUOTA_EXCEEDED",
            Self::UnknownMutationFn => "OUTBOX_UNKNOWN_MUTATION_FN",
            Self::NonRetriable => "OUTBOX_NON_RETRIABLE",
            Self::DependencyFailed => "OUTBOX_DEPENDENCY_FAILED",
            Self::RetriesExhausted => "OUTBOX_RETRIES_EXHAUSTED",
            Self::Retriable => "OUTBOX_RETRIABLE",
            Self::Network => "OUTBOX_NETWORK",
            Self::Unauthorized => "OUTBOX_UNAUTHORIZED",
            Self::LeaderLost => "OUTBOX_LEADER_LOST",
            Self::Removed => "OUTBOX_REMOVED",
            Self::CorruptRecord => "OUTBOX_CORRUPT_RECORD",
            Self::Fenced => "OUTBOX_FENCED",
            Self::Storage => "OUTBOX_STORAGE",
            Self::Invalid => "OUTBOX_INVALID",
            Self::SyncRejected => "OUTBOX_SYNC_REJECTED",
            Self::Closed => "OUTBOX_CLOSED",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error attached to a transaction or to one of its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxError {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable message. Never parsed: decisions go by `code`.
    pub message: String,
    /// For [`ErrorCode::DependencyFailed`]: the transaction whose failure caused this one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<TransactionId>,
    /// The HTTP status, when the error came from an HTTP answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl TxError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            cause: None,
            status: None,
        }
    }

    /// Whether the attempt got no answer about the transaction: none at all
    /// ([`ErrorCode::Network`]), or the server, or a gateway before it, said it is not taking
    /// requests just now (429, 502, 503, 504: "not now", not "no"). Such attempts are retried for as long as it takes
    /// without spending the retry budget, which is for what the server says about the
    /// transaction (an outage of a minute dead-lettered everything ready, before), and while
    /// they last the leader probes one attempt at a time. Decided by code and status.
    pub fn is_unanswered(&self) -> bool {
        self.code == ErrorCode::Network
            || (self.code == ErrorCode::Retriable && matches!(self.status, Some(429 | 502..=504)))
    }

    /// A dependency failure naming its cause.
    pub fn dependency(cause: &TransactionId) -> Self {
        Self {
            code: ErrorCode::DependencyFailed,
            message: format!("an earlier transaction on the same keys failed: {cause}"),
            cause: Some(cause.clone()),
            status: None,
        }
    }
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for TxError {}
