//! Retrying a dead letter only this tab has: one the leader refused (it never was in the
//! outbox), or one the tab's own executor (online-only) failed before a leader took over
//! ([`TabCore::forget_leader`]). No leader has it to put back in line, so the tab submits it
//! again.

use super::{TabCore, TabOutput};
use crate::model::{Millis, TransactionId, TransactionState};
use crate::protocol::Message;

impl TabCore {
    /// `retryDeadLetter` of a transaction of this tab that failed without being in any
    /// leader's outbox ([`TabCore::is_local_failure`]): it is pending again, with no error and a
    /// fresh retry budget (its attempts so far stay listed), its changes show again, `drain()`
    /// waits for it, and it goes to the leader as a new submission of the same transaction
    /// (same id, so the same idempotency key), or to the next leader if none is known now.
    /// `None` (nothing done) for any other transaction: a leader holds it, ask the leader.
    pub fn retry_local_failure(
        &mut self,
        id: &TransactionId,
        now: Millis,
    ) -> Option<Vec<TabOutput>> {
        if !self.is_local_failure(id) {
            return None;
        }
        let mut tx = self.known.get(id).filter(|k| k.own.is_some())?.tx.clone();
        tx.move_to(TransactionState::Pending, now).ok()?;
        tx.error = None;
        tx.restart_budget();
        if let Some(a) = tx.attempts.last_mut() {
            a.retry_scheduled_for = None;
        }
        self.update(tx.clone(), false);
        if let Some(epoch) = self.leader {
            self.out.push(TabOutput::Send(Message::Submit {
                epoch,
                txs: vec![tx],
            }));
        }
        Some(self.take())
    }
}
