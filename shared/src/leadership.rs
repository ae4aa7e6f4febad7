//! How a leader proves who it is, and how its silence is noticed.
//!
//! **Proof.** Anyone on the origin can post on the BroadcastChannel, so a message saying "I am
//! the leader of epoch 7" proves nothing by itself. While it leads, a leader also holds the Web
//! Lock named by [`proof_lock_name`] (its scope, epoch and channel id); a tab that hears of a
//! newer epoch asks the lock manager whether that lock is held before it believes the claim (see
//! [`crate::tab::TabOutput::VerifyLeader`]). Garbage, replays and forged claims are refused and
//! counted; a same-origin script that copies a genuine leader's id can still impersonate it (the
//! threat model trusts same-origin scripts; see the README).
//!
//! **Silence.** A worker waiting for the leader lock watches the leader's messages with a
//! [`LeaderWatch`]. A leader that holds the lock but says nothing for longer than the timeout
//! (its tab frozen, its worker stuck in a loop) is presumed dead, and the waiting worker takes
//! the lock by force (`steal`); the old leader's late writes are fenced out by the epoch.

use crate::model::{ClientId, Epoch, Millis};

/// The Web Lock a leader holds for the whole of its term, as proof of its claim.
pub fn proof_lock_name(scope: &str, epoch: Epoch, leader: &ClientId) -> String {
    format!("outbox:{scope}:epoch:{}:{}", epoch.0, leader.0)
}

/// How long a worker waits to try storage again after `failures_in_a_row` failures: 1 s after
/// the first, doubling to at most 30 s. A takeover that failed (storage could not be read or
/// written) asks for the lock again after it, the lock released meanwhile so that another
/// tab's worker may lead; a change feed whose rows could not be stored starts again from
/// storage after it. Either way a lone tab is not left stuck until the page reloads.
pub fn storage_retry_wait(failures_in_a_row: u32) -> Millis {
    const FIRST_MS: Millis = 1_000;
    const MAX_MS: Millis = 30_000;
    let doublings = failures_in_a_row.saturating_sub(1).min(16);
    FIRST_MS.saturating_mul(1 << doublings).min(MAX_MS)
}

/// Notices a leader that has gone quiet. Fed with every sign of life; asked on a timer.
#[derive(Debug, Clone)]
pub struct LeaderWatch {
    timeout: Millis,
    last: Millis,
}

impl LeaderWatch {
    /// A watch that starts counting now. `timeout` should be several heartbeats, plus a random
    /// share per watcher so that two waiting workers rarely steal at once.
    pub fn new(now: Millis, timeout: Millis) -> Self {
        Self { timeout, last: now }
    }

    /// The leader (or a leader-to-be) gave a sign of life, or leadership is changing hands in
    /// the ordinary way (a resignation): start counting again.
    pub fn heard(&mut self, now: Millis) {
        self.last = self.last.max(now);
    }

    /// Whether the leader has been silent for the whole timeout. Saying yes restarts the count,
    /// so one silence asks for one takeover.
    pub fn overdue(&mut self, now: Millis) -> bool {
        if now.saturating_sub(self.last) >= self.timeout {
            self.last = now;
            true
        } else {
            false
        }
    }

    /// The timeout.
    pub fn timeout(&self) -> Millis {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn storage_is_tried_again_after_a_growing_wait() {
        let waits: Vec<Millis> = [1, 2, 3, 5, 6, 7, 100, u32::MAX]
            .iter()
            .map(|n| storage_retry_wait(*n))
            .collect();
        assert_eq!(
            waits,
            [1_000, 2_000, 4_000, 16_000, 30_000, 30_000, 30_000, 30_000]
        );
    }

    use super::*;

    #[test]
    fn the_proof_names_scope_epoch_and_leader() {
        let name = proof_lock_name("todos", Epoch(7), &ClientId("worker-ab".into()));
        assert_eq!(name, "outbox:todos:epoch:7:worker-ab");
        assert_ne!(
            name,
            proof_lock_name("todos", Epoch(8), &ClientId("worker-ab".into()))
        );
    }

    #[test]
    fn a_silent_leader_is_overdue_once_per_silence() {
        let mut w = LeaderWatch::new(1_000, 3_000);
        assert!(!w.overdue(3_999));
        w.heard(3_500);
        assert!(!w.overdue(6_499));
        assert!(w.overdue(6_500));
        // The count restarted: not overdue again until another whole timeout passes.
        assert!(!w.overdue(6_600));
        assert!(w.overdue(9_500));
    }

    #[test]
    fn news_from_the_past_does_not_rewind_the_watch() {
        let mut w = LeaderWatch::new(5_000, 1_000);
        w.heard(1_000);
        assert!(!w.overdue(5_999));
        assert!(w.overdue(6_000));
    }
}
