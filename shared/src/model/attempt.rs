//! One call of a transaction's mutation function.

use super::{Epoch, Millis, TxError};
use serde::{Deserialize, Serialize};

/// An attempt's id: `<transaction id>#<attempt number>`, unique and stable across leaders.
pub type AttemptId = String;

/// One call of the mutation function. Recorded (and committed to storage) *before* the call, so a
/// leader that dies mid-request leaves evidence and its successor retries with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Unique id of this attempt.
    pub id: AttemptId,
    /// 1 for the first attempt, counting every attempt ever started.
    pub number: u32,
    /// When it started.
    pub started_at: Millis,
    /// When it finished; `None` while running (or if its leader died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Millis>,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TxError>,
    /// When the next attempt is due, if one was scheduled after this one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_scheduled_for: Option<Millis>,
    /// The epoch of the leader that ran it.
    pub epoch: Epoch,
}

impl Attempt {
    /// Whether this attempt counts against the retry budget. Attempts cut short by a leader
    /// going away do not (the retry reuses the same key), nor do attempts that got no answer
    /// ([`TxError::is_unanswered`]: none at all, or 429/502/503/504): the budget is for what the
    /// server says about the transaction, and an offline outbox, or one whose server is down,
    /// waits, it does not give up.
    pub fn counts_against_budget(&self) -> bool {
        use super::ErrorCode::{LeaderLost, Unauthorized};
        !matches!(&self.error, Some(e) if matches!(e.code, LeaderLost | Unauthorized) || e.is_unanswered())
    }

    /// Whether this attempt makes the next wait longer: every failure does but a leader going
    /// away and a 401 (which pauses the outbox instead). An attempt that got no answer still
    /// backs off, or an offline outbox would spin.
    pub fn backs_off(&self) -> bool {
        use super::ErrorCode::{LeaderLost, Unauthorized};
        !matches!(&self.error, Some(e) if matches!(e.code, LeaderLost | Unauthorized))
    }
}
