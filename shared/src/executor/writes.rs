//! The write pipeline: one outbox write in flight at a time; whatever changes meanwhile goes
//! into the next batch (group commit). What must wait for a commit (acks, calls, broadcasts,
//! replies) rides along with the batch that holds its record.

use crate::model::{ClientId, Epoch, Key, Millis, Strategy, Transaction, TransactionId};
use crate::protocol::Response;
use crate::store::{Removal, Tombstone, WriteBatch, WriteId};
use std::collections::BTreeSet;

/// An action that may run only once a write has committed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AfterCommit {
    /// Answer `durable` to a submitter.
    Ack { to: ClientId, id: TransactionId },
    /// Call the mutation function for this attempt.
    Call { id: TransactionId, attempt: u32 },
    /// Answer a tab's request.
    Reply {
        to: ClientId,
        req: u64,
        response: Response,
    },
    /// The sign-out is committed: tell every tab, then stop.
    SignedOut,
    /// A success is committed as `persisted_awaiting_sync`: ask the app's `awaitSync`.
    AwaitSync { id: TransactionId },
}

/// A batch on its way to storage, with what waits for it.
#[derive(Debug)]
pub(super) struct InFlight {
    pub id: WriteId,
    pub batch: WriteBatch,
    pub after: Vec<AfterCommit>,
    /// Final states of completed and removed transactions (no longer held by the executor),
    /// broadcast once the batch commits.
    pub finals: Vec<Transaction>,
    /// Transactions first written by this batch (not yet accepted).
    pub new: BTreeSet<TransactionId>,
}

/// Changes waiting for the next batch.
#[derive(Debug, Default)]
pub(super) struct WritePipeline {
    next_id: WriteId,
    dirty: BTreeSet<TransactionId>,
    /// Records that may wait for the next batch that happens anyway (nothing waits for them).
    lazy: BTreeSet<TransactionId>,
    /// Tombstones of completed transactions, with their final states: they linger (see
    /// [`super::ExecutorConfig::settle_linger_ms`]).
    completed: Vec<Tombstone>,
    completed_finals: Vec<Transaction>,
    /// When the oldest lingering tombstone was queued.
    settled_since: Option<Millis>,
    /// The keys of the ordered transactions whose tombstones linger. A record of an ordered
    /// transaction on one of them (the next in line, about to be called) is written only with
    /// the tombstones: were it stored without them, a new leader would find the earlier one
    /// unfinished and call it again after the later one, out of order (and fail the later one
    /// too, after it had run, should the earlier one now fail).
    settled_keys: BTreeSet<Key>,
    deletes: Vec<Removal>,
    /// Final states of removed transactions.
    finals: Vec<Transaction>,
    after: Vec<AfterCommit>,
    new: BTreeSet<TransactionId>,
    in_flight: Option<InFlight>,
    retry_at: Option<Millis>,
    /// A change of the server's reachability to store (with the next batch; it causes none).
    reachable: Option<bool>,
}

impl WritePipeline {
    /// The record of `id` changed: put it in the next batch.
    pub fn put(&mut self, id: &TransactionId) {
        self.lazy.remove(id);
        self.dirty.insert(id.clone());
    }

    /// The record of `id` changed, but nothing depends on storing it soon (an attempt that got
    /// no answer: were it lost, a new leader would find the attempt unfinished and retry it,
    /// uncounted, as it does anyway for network failures). It rides along with the next batch
    /// and causes none itself, so it never delays a submit.
    pub fn put_lazy(&mut self, id: &TransactionId) {
        if !self.dirty.contains(id) {
            self.lazy.insert(id.clone());
        }
    }

    /// The server's reachability changed: store it with the next batch.
    pub fn set_reachable(&mut self, reachable: bool) {
        self.reachable = Some(reachable);
    }

    /// A new transaction: put it, and remember it was new (rejected if the batch fails).
    pub fn put_new(&mut self, id: &TransactionId) {
        self.new.insert(id.clone());
        self.put(id);
    }

    /// The transaction completed: tombstone it.
    pub fn complete(&mut self, tx: Transaction, now: Millis) {
        self.dirty.remove(&tx.id);
        self.lazy.remove(&tx.id);
        self.settled_since.get_or_insert(now);
        if tx.strategy == Strategy::Ordered {
            self.settled_keys.extend(tx.keys.iter().cloned());
        }
        self.completed.push(Tombstone {
            id: tx.id.clone(),
            completed_at: now,
        });
        self.completed_finals.push(tx);
    }

    /// The transaction was removed at `now`: delete its record (storage remembers the removal).
    pub fn delete(&mut self, tx: Transaction, now: Millis) {
        self.dirty.remove(&tx.id);
        self.lazy.remove(&tx.id);
        self.new.remove(&tx.id);
        self.deletes.push(Removal {
            id: tx.id.clone(),
            removed_at: now,
        });
        self.finals.push(tx);
    }

    /// Whether `id` is new and waiting for the next batch (not yet taken): its first attempt
    /// may start in that same batch.
    pub fn is_waiting_new(&self, id: &TransactionId) -> bool {
        self.new.contains(id)
    }

    /// Run `action` once the next batch commits.
    pub fn after_commit(&mut self, action: AfterCommit) {
        self.after.push(action);
    }

    /// When a failed write is to be tried again.
    pub fn retry_at(&self) -> Option<Millis> {
        self.retry_at
    }

    /// The retry delay for a failed write has passed.
    pub fn retry_due(&mut self, now: Millis) {
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
        }
    }

    /// The wall clock was set back `by`: the times kept go back as far.
    pub fn clock_went_back(&mut self, by: Millis) {
        self.retry_at = self.retry_at.map(|t| t.saturating_sub(by));
        self.settled_since = self.settled_since.map(|t| t.saturating_sub(by));
    }

    /// When lingering tombstones are due to be written on their own (no write in flight).
    pub fn settle_due_at(&self, linger: Millis) -> Option<Millis> {
        if self.in_flight.is_some() || self.retry_at.is_some() {
            return None;
        }
        self.settled_since.map(|t| t.saturating_add(linger))
    }

    /// If no write is in flight and something is waiting, takes the next batch. `record`
    /// looks up the current record of a dirty transaction (gone ones are skipped). Tombstones
    /// come along once they have waited `linger` (or with a sign-out); alone, they start a write
    /// only then.
    pub fn take_batch(
        &mut self,
        now: Millis,
        linger: Millis,
        epoch: Epoch,
        mut record: impl FnMut(&TransactionId) -> Option<Transaction>,
    ) -> Option<WriteBatch> {
        if self.in_flight.is_some() || self.retry_at.is_some() {
            return None;
        }
        let urgent = !(self.dirty.is_empty() && self.deletes.is_empty() && self.after.is_empty());
        let mut settle = self
            .settled_since
            .is_some_and(|t| now >= t.saturating_add(linger))
            || self.after.contains(&AfterCommit::SignedOut);
        if !urgent && !settle {
            return None;
        }
        self.next_id += 1;
        let mut ids = std::mem::take(&mut self.dirty);
        ids.append(&mut self.lazy);
        let puts: Vec<Transaction> = ids.iter().filter_map(&mut record).collect();
        settle = settle
            || puts.iter().any(|t| {
                t.strategy == Strategy::Ordered
                    && t.keys.iter().any(|k| self.settled_keys.contains(k))
            });
        let mut finals = std::mem::take(&mut self.finals);
        let completed = if settle {
            self.settled_since = None;
            self.settled_keys.clear();
            finals.append(&mut self.completed_finals);
            std::mem::take(&mut self.completed)
        } else {
            Vec::new()
        };
        let batch = WriteBatch {
            id: self.next_id,
            epoch,
            puts,
            completed,
            deletes: std::mem::take(&mut self.deletes),
            reachable: self.reachable.take(),
        };
        self.in_flight = Some(InFlight {
            id: self.next_id,
            batch: batch.clone(),
            after: std::mem::take(&mut self.after),
            finals,
            new: std::mem::take(&mut self.new),
        });
        Some(batch)
    }

    /// The in-flight batch `id` finished; returns it (or `None` if `id` is not in flight).
    pub fn finish(&mut self, id: WriteId) -> Option<InFlight> {
        if self.in_flight.as_ref().is_some_and(|f| f.id == id) {
            self.in_flight.take()
        } else {
            None
        }
    }

    /// A failed batch's surviving contents go back in line, to be retried at `retry_at`
    /// (at once with the next write if nothing survived).
    pub fn requeue(&mut self, failed: InFlight, retry_at: Millis) {
        let survivors = !(failed.batch.is_empty() && failed.after.is_empty());
        for t in failed.batch.puts {
            self.dirty.insert(t.id);
        }
        if !failed.batch.completed.is_empty() {
            // Due with the retry: their final states go back among the finals below, which
            // the next batch broadcasts.
            self.settled_since = Some(0);
        }
        // A change made since is newer.
        self.reachable = self.reachable.or(failed.batch.reachable);
        self.completed.splice(0..0, failed.batch.completed);
        self.deletes.splice(0..0, failed.batch.deletes);
        self.finals.splice(0..0, failed.finals);
        self.after.splice(0..0, failed.after);
        if survivors {
            self.retry_at = Some(retry_at);
        }
    }

    /// Forgets everything about `id` still waiting to be written (it was rejected).
    pub fn forget(&mut self, id: &TransactionId) {
        self.dirty.remove(id);
        self.lazy.remove(id);
        self.new.remove(id);
        self.after.retain(|a| match a {
            AfterCommit::Ack { id: x, .. }
            | AfterCommit::Call { id: x, .. }
            | AfterCommit::AwaitSync { id: x } => x != id,
            AfterCommit::Reply { .. } | AfterCommit::SignedOut => true,
        });
    }
}
