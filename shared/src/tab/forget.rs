//! Letting go: of a leader (the tab's stand-in executor stopped), and of settled transactions
//! the app is done with (completed, or removed from the outbox).
//!
//! A forgotten transaction is remembered by id for a while, so a late `state` about it (the
//! broadcast that follows a removal's answer, a resend answered from a tombstone) does not
//! bring it back. Only news that it is live again (a dead letter retried) does.

use super::TabCore;
use crate::model::{Epoch, TransactionId, TransactionState};
use std::collections::{HashSet, VecDeque};

/// How many forgotten ids are remembered.
const REMEMBERED: usize = 4096;

/// The ids of recently forgotten transactions, oldest first out.
#[derive(Debug, Default)]
pub(super) struct Forgotten {
    order: VecDeque<TransactionId>,
    ids: HashSet<TransactionId>,
}

impl Forgotten {
    fn insert(&mut self, id: TransactionId) {
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
        }
        if self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// Whether news of `id` in a `settled` or live state is taken in. Live news of a
    /// forgotten transaction is, and it is no longer forgotten.
    pub(super) fn admit(&mut self, id: &TransactionId, settled: bool) -> bool {
        if !self.ids.contains(id) {
            return true;
        }
        if settled {
            return false;
        }
        self.ids.remove(id);
        self.order.retain(|x| x != id);
        true
    }
}

impl TabCore {
    /// Forgets the leader (the tab's own stand-in executor stopped, say): the next leader heard,
    /// whatever its epoch, is taken as new and gets every unsettled transaction again. A dead
    /// letter of the tab's own executor (epoch 0: online-only) was never in any leader's
    /// outbox, so from now on it is this tab's alone to dismiss
    /// ([`TabCore::is_local_failure`]); a leader asked would not know it.
    pub fn forget_leader(&mut self) {
        for k in self.known.values_mut() {
            if k.tx.state == TransactionState::Failed && k.tx.epoch == Epoch(0) {
                k.durable = false;
            }
        }
        self.leader = None;
        self.leader_id = None;
        self.refuted.clear();
        self.last_heard = None;
        self.resigned_at = None;
        self.last_heartbeat = None;
        self.heartbeat_gap = None;
        self.leader_pending = None;
        self.feed_covers = None;
    }

    /// Forgets a settled transaction (the app has what it needs of it, or removed it from the
    /// outbox); later news of it settled is ignored. Unsettled ones stay.
    pub fn forget(&mut self, id: &TransactionId) -> bool {
        if self.known.get(id).is_some_and(|k| k.tx.state.is_settled()) {
            self.known.remove(id);
            self.forgotten.insert(id.clone());
            true
        } else {
            false
        }
    }
}
