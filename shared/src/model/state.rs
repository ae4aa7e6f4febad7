//! The lifecycle of a transaction and its legal transitions.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a transaction is in its life.
///
/// ```text
///            ┌──────────► queued ──────────┐
///  pending ──┤                             ▼
///     ▲      └──────────────────────► persisting ──► persisted_awaiting_sync ──► completed
///     │  (retry scheduled, leader lost)   │   │                 │
///     └───────────────────────────────────┘   └──► completed    └──► failed
///  failed ◄── (pending | queued | persisting)       failed ──► pending (dead letter retried)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionState {
    /// Created (optimistic view updated), or waiting for its next attempt.
    Pending,
    /// Waiting for an earlier ordered transaction on one of its keys.
    Queued,
    /// Its mutation function is running; an attempt record was written first.
    Persisting,
    /// The mutation function succeeded; waiting for the sync to show the change.
    PersistedAwaitingSync,
    /// Done.
    Completed,
    /// Failed for good (a dead letter until the app retries or discards it).
    Failed,
}

impl TransactionState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Queued,
        Self::Persisting,
        Self::PersistedAwaitingSync,
        Self::Completed,
        Self::Failed,
    ];

    /// Whether `self → to` is a legal move.
    pub fn can_move_to(self, to: Self) -> bool {
        use TransactionState::*;
        matches!(
            (self, to),
            (Pending, Queued | Persisting | Failed)
                | (Queued, Pending | Persisting | Failed)
                | (
                    Persisting,
                    Pending | PersistedAwaitingSync | Completed | Failed
                )
                | (PersistedAwaitingSync, Completed | Failed)
                | (Failed, Pending)
        )
    }

    /// Checks `self → to`, returning a typed error when it is illegal.
    pub fn transition(self, to: Self) -> Result<Self, TransitionError> {
        if self.can_move_to(to) {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }

    /// Completed or failed: no more work will be done unless the app retries a dead letter.
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    /// Still holds its optimistic changes in the view.
    pub fn is_live(self) -> bool {
        !self.is_settled()
    }

    /// The snake_case name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Queued => "queued",
            Self::Persisting => "persisting",
            Self::PersistedAwaitingSync => "persisted_awaiting_sync",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An illegal lifecycle move was asked for; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal transaction state transition: {from} → {to}")]
pub struct TransitionError {
    /// The state the transaction was in.
    pub from: TransactionState,
    /// The state that was asked for.
    pub to: TransactionState,
}

#[cfg(test)]
mod tests {
    use super::TransactionState::{self, *};

    #[test]
    fn settled_states_only_leave_through_dead_letter_retry() {
        for to in TransactionState::ALL {
            assert!(!Completed.can_move_to(to), "completed → {to}");
            assert_eq!(Failed.can_move_to(to), to == Pending, "failed → {to}");
        }
    }

    #[test]
    fn no_state_moves_to_itself() {
        for s in TransactionState::ALL {
            assert!(s.transition(s).is_err(), "{s} → {s}");
        }
    }

    #[test]
    fn the_happy_path_is_legal() {
        let path = [Pending, Persisting, PersistedAwaitingSync, Completed];
        for pair in path.windows(2) {
            assert_eq!(pair[0].transition(pair[1]), Ok(pair[1]));
        }
        assert_eq!(Queued.transition(Persisting), Ok(Persisting));
        assert_eq!(Persisting.transition(Pending), Ok(Pending));
    }

    #[test]
    fn illegal_moves_name_both_ends() {
        let err = Completed.transition(Persisting).unwrap_err();
        assert_eq!(err.from, Completed);
        assert_eq!(err.to, Persisting);
        assert_eq!(
            err.to_string(),
            "illegal transaction state transition: completed → persisting"
        );
        assert!(Queued.transition(Completed).is_err());
        assert!(Pending.transition(PersistedAwaitingSync).is_err());
    }

    #[test]
    fn wire_names_are_snake_case() {
        for s in TransactionState::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
    }
}
