//! Moving transactions through their lives: accepting, writing, attempting, settling.

use super::calls::{RequestId, Slot};
use super::writes::AfterCommit;
use super::{AttemptOutcome, Command, Completed, Entry, Executor, RetryDecision, Role};
use crate::model::{
    Attempt, ClientId, ErrorCode, Millis, Strategy, Transaction, TransactionId, TransactionState,
    TxError,
};
use crate::protocol::Message;
use crate::retry::ErrorKind;
use crate::store::{Loaded, StoreError, WriteId};
use std::collections::BTreeMap;

/// Sequence numbers are `epoch × SEQ_PER_EPOCH + n`, so a later leader's numbers are always
/// higher than an earlier one's. (Values stay below 2^53, exact in JavaScript, for the first two
/// million leaderships.)
const SEQ_PER_EPOCH: u64 = 1 << 32;

/// Transactions per `state` message, so one message stays well under the size limit.
const STATES_PER_MESSAGE: usize = 256;

impl Executor {
    /// Takes over the loaded outbox: quarantines what cannot be read, resumes what a dead
    /// leader left mid-attempt (same idempotency key), and brings every retry forward.
    pub(super) fn take_over(&mut self, now: Millis, loaded: Loaded) {
        self.role = Role::Leading;
        self.epoch = loaded.epoch;
        self.stored_unreachable = loaded.unreachable;
        if loaded.unreachable {
            // The last leader could not reach the server: probe first (see `unreachable_until`).
            self.unreachable_until = Some(now);
            for f in &self.config.batching {
                self.calls.answered(f, false);
            }
        }
        self.tombstones = Completed::loaded(
            loaded
                .tombstones
                .into_iter()
                .map(|t| (t.id, t.completed_at)),
        );
        self.removed = Completed::loaded(loaded.removed.into_iter().map(|r| (r.id, r.removed_at)));
        let mut txs: Vec<Transaction> = Vec::with_capacity(loaded.records.len());
        for (key, value) in loaded.records {
            match Transaction::from_stored(value) {
                Ok(tx) if key == tx.id.0 => txs.push(tx),
                Ok(tx) => self.quarantine(key, format!("stored under a key other than {}", tx.id)),
                Err(e) => self.quarantine(key, e.to_string()),
            }
        }
        txs.sort_by_key(|t| t.seq);
        // Acceptance order must hold across leaders, including against transactions an earlier
        // leader already completed (they are tombstones now, so their seqs are not loaded).
        let floor = self.epoch.0.saturating_mul(SEQ_PER_EPOCH);
        self.next_seq = txs.last().map_or(0, |t| t.seq.saturating_add(1)).max(floor);
        for mut tx in txs {
            let mut changed = false;
            if tx.state == TransactionState::Persisting {
                if let Some(a) = tx.attempts.last_mut() {
                    cut_off(a, now, "the leader running this attempt went away");
                }
                changed |= tx.move_to(TransactionState::Pending, now).is_ok();
            }
            if tx.state == TransactionState::Pending {
                if let Some(a) = tx.attempts.last_mut() {
                    // Start-up is a retry trigger: stale backoff from a dead leader is not waited out.
                    a.retry_scheduled_for = a.retry_scheduled_for.map(|_| now);
                }
            }
            let id = tx.id.clone();
            let awaiting = tx.state == TransactionState::PersistedAwaitingSync;
            let live = matches!(
                tx.state,
                TransactionState::Pending | TransactionState::Queued
            );
            if live {
                self.scheduler.enqueue(&id, tx.strategy, &tx.keys);
            }
            self.txs.insert(id.clone(), Entry { tx, durable: true });
            if changed {
                self.writes.put(&id);
            }
            if awaiting && self.config.await_sync_hook {
                // The previous leader asked the app; this one asks again.
                if let Some(e) = self.txs.get(&id) {
                    self.out.push(Command::AwaitSync {
                        tx: Box::new(e.tx.clone()),
                    });
                }
            } else if awaiting && !self.config.await_sync {
                self.settle_success(now, &id);
            }
        }
        let live: Vec<TransactionId> =
            self.transactions_in_state(&[TransactionState::Pending, TransactionState::Queued]);
        for id in live {
            self.recheck(now, &id);
        }
        self.send_to(None, Message::Leader { epoch: self.epoch });
        if self.config.credentials {
            self.pause_for_credentials();
        }
    }

    fn quarantine(&mut self, key: String, reason: String) {
        self.send_to(
            None,
            Message::Diagnostic {
                code: ErrorCode::CorruptRecord,
                message: format!(
                    "outbox record {key:?} could not be read and was quarantined: {reason}"
                ),
            },
        );
        self.out.push(Command::Quarantine { key, reason });
    }

    fn transactions_in_state(&self, states: &[TransactionState]) -> Vec<TransactionId> {
        let mut ids: Vec<(u64, TransactionId)> = self
            .txs
            .values()
            .filter(|e| states.contains(&e.tx.state))
            .map(|e| (e.tx.seq, e.tx.id.clone()))
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// A tab's submit. Idempotent by id.
    pub(super) fn submitted(&mut self, now: Millis, from: ClientId, mut tx: Transaction) {
        let id = tx.id.clone();
        if self.tombstones.contains(&id) {
            // Completed already (a resend that crossed a leader change): say so.
            tx.state = TransactionState::Completed;
            tx.updated_at = now;
            tx.epoch = self.epoch;
            self.answer_resend(from, tx);
            return;
        }
        if self.removed.contains(&id) && !self.txs.contains_key(&id) {
            // Removed (by the app, a `before_retry` hook or a sign-out) while this tab did not
            // hear of it: the leader that removed it died before saying so, or the tab was
            // away. It stays removed.
            tx.state = TransactionState::Failed;
            tx.error = Some(TxError::new(
                ErrorCode::Removed,
                "removed from the outbox before this resend",
            ));
            tx.updated_at = now;
            tx.epoch = self.epoch;
            self.answer_resend(from, tx);
            return;
        }
        if let Some(e) = self.txs.get(&id) {
            if e.durable {
                // A resend (after a leader change): say it is durable, and where it stands now,
                // since the tab may have missed the broadcasts of a leader that died.
                let current = e.tx.clone();
                self.answer_resend(from, current);
            } else {
                self.writes.after_commit(AfterCommit::Ack { to: from, id });
            }
            return;
        }
        // A resend from an executor that stopped mid-call (an online-only tab's, handing over):
        // that attempt was cut off, as a dead leader's is at a takeover. Closed the same way, it
        // does not count against the budget, and the record shows no attempt still running.
        if let Some(a) = tx.attempts.last_mut().filter(|a| a.completed_at.is_none()) {
            cut_off(a, now, "the executor running this attempt stopped");
        }
        tx.state = TransactionState::Pending;
        tx.queued_behind = None;
        tx.seq = self.next_seq;
        // Saturating: a corrupt stored seq or epoch near the top must not wrap the order round.
        self.next_seq = self.next_seq.saturating_add(1);
        tx.epoch = self.epoch;
        tx.updated_at = now;
        if let Some(behind) = self.scheduler.enqueue(&id, tx.strategy, &tx.keys) {
            tx.state = TransactionState::Queued;
            tx.queued_behind = Some(behind);
        }
        self.txs.insert(id.clone(), Entry { tx, durable: false });
        self.writes.put_new(&id);
        self.writes.after_commit(AfterCommit::Ack {
            to: from,
            id: id.clone(),
        });
        // Ready at once: its first attempt is recorded in the same write that accepts it, and
        // the call waits for that commit like any other (one write per submit, not two).
        self.make_ready(now, &id);
    }

    /// Answers a resend of a transaction already committed: it is durable, and this is where it
    /// stands now (the tab may have missed the broadcasts of a leader that died).
    fn answer_resend(&mut self, to: ClientId, current: Transaction) {
        self.send_to(
            Some(to.clone()),
            Message::Durable {
                ids: vec![current.id.clone()],
                epoch: self.epoch,
            },
        );
        self.send_to(
            Some(to),
            Message::State {
                epoch: self.epoch,
                txs: vec![current],
            },
        );
    }

    /// Issues the next write if none is in flight.
    pub(super) fn flush_writes(&mut self, now: Millis) {
        let epoch = self.epoch;
        let txs = &mut self.txs;
        let linger = self.config.settle_linger_ms;
        let batch = self.writes.take_batch(now, linger, epoch, |id| {
            let e = txs.get_mut(id)?;
            e.tx.epoch = epoch;
            Some(e.tx.clone())
        });
        if let Some(batch) = batch {
            // The attempts recorded in it are called once it commits: batch requests being
            // filled are complete.
            self.calls.close();
            self.out.push(Command::Write(batch));
        }
    }

    pub(super) fn written(&mut self, now: Millis, write: WriteId) {
        let Some(done) = self.writes.finish(write) else {
            return;
        };
        let mut states = done.finals;
        for t in &done.batch.puts {
            if let Some(e) = self.txs.get_mut(&t.id) {
                e.durable = true;
            }
            states.push(t.clone());
        }
        let mut acks: BTreeMap<ClientId, Vec<TransactionId>> = BTreeMap::new();
        let mut requests: BTreeMap<RequestId, (String, Vec<(Transaction, u32)>)> = BTreeMap::new();
        for action in done.after {
            match action {
                AfterCommit::Ack { to, id } => acks.entry(to).or_default().push(id),
                AfterCommit::Call { id, attempt } => {
                    let due = self.txs.get(&id).filter(|e| {
                        e.tx.state == TransactionState::Persisting
                            && e.tx.last_attempt().map(|a| a.number) == Some(attempt)
                    });
                    match (due, self.calls.request_of(&id)) {
                        (Some(e), Some(r)) => requests
                            .entry(r)
                            .or_insert_with(|| (e.tx.mutation_fn.clone(), Vec::new()))
                            .1
                            .push((e.tx.clone(), attempt)),
                        (Some(e), None) => self.out.push(Command::Call {
                            tx: Box::new(e.tx.clone()),
                            attempt,
                        }),
                        // Not to be called after all: its place is free.
                        (None, _) => self.calls.finish(&id),
                    }
                }
                AfterCommit::Reply { to, req, response } => self.send_to(
                    Some(to),
                    Message::Response {
                        req,
                        result: response,
                    },
                ),
                AfterCommit::SignedOut => {
                    self.send_to(None, Message::SignedOut { epoch: self.epoch });
                    self.out.push(Command::SignedOut);
                }
                AfterCommit::AwaitSync { id } => {
                    if let Some(e) = self.txs.get(&id) {
                        if e.tx.state == TransactionState::PersistedAwaitingSync {
                            self.out.push(Command::AwaitSync {
                                tx: Box::new(e.tx.clone()),
                            });
                        }
                    }
                }
            }
        }
        for (_, (mutation_fn, calls)) in requests {
            self.out.push(Command::CallBatch { mutation_fn, calls });
        }
        for (to, ids) in acks {
            self.send_to(
                Some(to),
                Message::Durable {
                    ids,
                    epoch: self.epoch,
                },
            );
        }
        self.broadcast_states(states);
        for t in &done.batch.puts {
            self.make_ready(now, &t.id);
        }
    }

    /// Broadcasts the states changed in this event that wait for no write.
    pub(super) fn flush_unstored(&mut self) {
        let states = std::mem::take(&mut self.unstored);
        self.broadcast_states(states);
    }

    /// Sends `states` to every tab, in messages of at most [`STATES_PER_MESSAGE`].
    fn broadcast_states(&mut self, mut states: Vec<Transaction>) {
        while !states.is_empty() {
            let rest = states.split_off(states.len().min(STATES_PER_MESSAGE));
            self.send_to(
                None,
                Message::State {
                    epoch: self.epoch,
                    txs: states,
                },
            );
            states = rest;
        }
    }

    pub(super) fn write_failed(&mut self, now: Millis, write: WriteId, error: StoreError) {
        let Some(failed) = self.writes.finish(write) else {
            return;
        };
        if matches!(error, StoreError::Fenced { .. }) {
            self.role = Role::Stopped;
            self.out.push(Command::StepDown {
                error: error.to_tx_error(),
            });
            return;
        }
        // Transactions this batch would have accepted are refused; nothing else is lost.
        let refused = error.to_tx_error();
        let mut failed = failed;
        for id in std::mem::take(&mut failed.new) {
            if let Some(e) = self.txs.remove(&id) {
                if e.tx.state == TransactionState::Persisting {
                    // Its first attempt was to start with this write: it never called.
                    self.calls.finish(&id);
                }
                let promoted = self.scheduler.remove(&id, &e.tx.keys);
                self.ready.remove(&(e.tx.seq, id.clone()));
                for p in promoted {
                    self.recheck(now, &p);
                }
            }
            failed.batch.puts.retain(|t| t.id != id);
            self.writes.forget(&id);
            failed.after.retain(|a| match a {
                AfterCommit::Ack { to, id: x } if *x == id => {
                    self.out.push(Command::Send {
                        to: Some(to.clone()),
                        msg: Message::Rejected {
                            id: id.clone(),
                            error: refused.clone(),
                        },
                    });
                    false
                }
                AfterCommit::Call { id: x, .. } if *x == id => false,
                _ => true,
            });
        }
        self.writes
            .requeue(failed, now.saturating_add(self.config.write_retry_ms));
    }

    /// Starts the next attempt of a ready transaction: records it, and calls once committed.
    pub(super) fn start_attempt(&mut self, now: Millis, id: &TransactionId, slot: Slot) {
        let waiting_new = self.writes.is_waiting_new(id);
        let Some(e) = self.txs.get_mut(id) else {
            return;
        };
        if !(e.durable || waiting_new) || e.tx.state != TransactionState::Pending {
            return;
        }
        if !e.tx.attempts.is_empty() {
            if let Some(filter) = self.config.before_retry.as_mut() {
                if filter(&e.tx) == RetryDecision::Discard {
                    self.remove(
                        now,
                        id,
                        TxError::new(ErrorCode::Removed, "discarded by before_retry"),
                    );
                    return;
                }
            }
        }
        let number = e.tx.attempt_count().saturating_add(1);
        if e.tx.move_to(TransactionState::Persisting, now).is_err() {
            return;
        }
        e.tx.record_attempt(Attempt {
            id: format!("{id}#{number}"),
            number,
            started_at: now,
            completed_at: None,
            error: None,
            retry_scheduled_for: None,
            epoch: self.epoch,
        });
        self.calls.start(id, &e.tx.mutation_fn, slot);
        self.writes.put(id);
        self.writes.after_commit(AfterCommit::Call {
            id: id.clone(),
            attempt: number,
        });
    }

    pub(super) fn attempt_finished(
        &mut self,
        now: Millis,
        id: &TransactionId,
        attempt: u32,
        outcome: AttemptOutcome,
    ) {
        let Some(e) = self.txs.get_mut(id) else {
            return;
        };
        if e.tx.state != TransactionState::Persisting
            || e.tx.last_attempt().map(|a| a.number) != Some(attempt)
        {
            return;
        }
        if let Err(err) = &outcome {
            if err.error.code == ErrorCode::Fenced {
                // The server has heard from a newer leader: this one is deposed. The record stays
                // as it is for the current leader to finish.
                self.role = Role::Stopped;
                self.out.push(Command::StepDown {
                    error: err.error.clone(),
                });
                return;
            }
        }
        self.calls.finish(id);
        match &outcome {
            Err(err) if err.kind == ErrorKind::Unauthorized => {
                let started = e.tx.last_attempt().map_or(now, |a| a.started_at);
                if started >= self.credentials_since
                    && self.counted_for != Some(self.credentials_since)
                {
                    self.unauthorized_in_a_row = self.unauthorized_in_a_row.saturating_add(1);
                    self.counted_for = Some(self.credentials_since);
                }
            }
            _ => self.unauthorized_in_a_row = 0,
        }
        if self.config.batching.contains(&e.tx.mutation_fn) {
            let answered = !matches!(&outcome, Err(err) if err.error.is_unanswered());
            self.calls.answered(&e.tx.mutation_fn, answered);
        }
        if let Some(a) = e.tx.attempts.last_mut() {
            a.completed_at = Some(now);
        }
        // No answer (none at all, or the server said it is unavailable): hold further
        // attempts (see `unreachable_until`), for as long as the server asked if it did. Any
        // other answer, even an error, means the server is taking requests again.
        (self.unreachable_until, self.server_gate) = match &outcome {
            Err(err) if err.error.is_unanswered() => {
                let asked = err
                    .retry_after_ms
                    .map(|wait| now.saturating_add(wait.min(self.config.retry.max_delay_ms)));
                let until = self
                    .unreachable_until
                    .unwrap_or(now)
                    .max(now.saturating_add(self.config.probe_interval_ms))
                    .max(asked.unwrap_or(0));
                (Some(until), asked.max(self.server_gate))
            }
            _ => (None, None),
        };
        let unreachable = self.unreachable_until.is_some();
        if unreachable != self.stored_unreachable {
            // For the next leader; it rides along with the next write.
            self.stored_unreachable = unreachable;
            self.writes.set_reachable(!unreachable);
        }
        match outcome {
            Ok(success) => {
                e.tx.server_seq = success.server_seq;
                e.tx.error = None;
                let awaits = self.config.await_sync_hook
                    || (self.config.await_sync
                        && success.server_seq.is_some_and(|s| s > self.synced_seq));
                if awaits {
                    let _ = e.tx.move_to(TransactionState::PersistedAwaitingSync, now);
                    self.writes.put(id);
                    if self.config.await_sync_hook {
                        self.writes
                            .after_commit(AfterCommit::AwaitSync { id: id.clone() });
                    }
                    let promoted = self.scheduler.remove(id, &e.tx.keys.clone());
                    for p in promoted {
                        self.recheck(now, &p);
                    }
                } else {
                    self.settle_success(now, id);
                }
                self.bring_forward(now);
            }
            Err(err) if err.kind == ErrorKind::Unauthorized => {
                // Not the transaction's fault: it waits, ready, for credentials, and so does
                // everything else (no retry storm against a server that says who are you).
                if let Some(a) = e.tx.attempts.last_mut() {
                    a.error = Some(err.error.clone());
                }
                e.tx.error = Some(err.error);
                let _ = e.tx.move_to(TransactionState::Pending, now);
                self.writes.put(id);
                self.make_ready(now, id);
                self.pause_for_credentials();
            }
            Err(err) => {
                if let Some(a) = e.tx.attempts.last_mut() {
                    a.error = Some(err.error.clone());
                }
                let made = e.tx.counted_attempts();
                if err.is_retriable() && self.config.retry.allows_another(made) {
                    let delay = self.config.retry.delay(
                        e.tx.backoff_failures(),
                        err.retry_after_ms,
                        self.rng.as_mut(),
                    );
                    let due = now.saturating_add(delay);
                    if let Some(a) = e.tx.attempts.last_mut() {
                        a.retry_scheduled_for = Some(due);
                    }
                    match err.retry_after_ms {
                        Some(wait) => {
                            self.server_waits
                                .insert(id.clone(), now.saturating_add(wait));
                        }
                        None => {
                            self.server_waits.remove(id);
                        }
                    }
                    let no_answer = err.error.is_unanswered();
                    e.tx.error = Some(err.error);
                    let _ = e.tx.move_to(TransactionState::Pending, now);
                    self.waiting.insert((due, e.tx.seq, id.clone()));
                    if no_answer {
                        // No answer: the failure is stored with the next write that happens
                        // anyway (a submit's, a retry's), not in a write of its own that the
                        // next submit would wait behind; the tabs hear of it at the end of
                        // this event.
                        self.unstored.push(e.tx.clone());
                        self.writes.put_lazy(id);
                    } else {
                        self.writes.put(id);
                    }
                } else {
                    let error = if err.is_retriable() {
                        TxError {
                            code: ErrorCode::RetriesExhausted,
                            message: format!(
                                "gave up after {made} attempts: {}",
                                err.error.message
                            ),
                            cause: None,
                            status: err.error.status,
                        }
                    } else {
                        err.error
                    };
                    self.fail_for_good(now, id, error);
                }
            }
        }
    }

    /// Success, settled: the record becomes a tombstone and the next on its keys may run.
    pub(super) fn settle_success(&mut self, now: Millis, id: &TransactionId) {
        let Some(mut e) = self.txs.remove(id) else {
            return;
        };
        let _ = e.tx.move_to(TransactionState::Completed, now);
        e.tx.epoch = self.epoch;
        let promoted = self.scheduler.remove(id, &e.tx.keys);
        self.tombstones.insert(id.clone(), now);
        self.writes.complete(e.tx, now);
        for p in promoted {
            self.recheck(now, &p);
        }
    }

    /// Fails `id` for good; for an ordered transaction, everything queued behind it on its
    /// keys fails too, naming it as the cause.
    pub(super) fn fail_for_good(&mut self, now: Millis, id: &TransactionId, error: TxError) {
        let Some(e) = self.txs.get(id) else { return };
        let ordered = e.tx.strategy == Strategy::Ordered;
        let mut doomed = vec![(id.clone(), error)];
        if ordered {
            let mut i = 0;
            while i < doomed.len() {
                let (cur, _) = &doomed[i];
                let keys = self
                    .txs
                    .get(cur)
                    .map(|e| e.tx.keys.clone())
                    .unwrap_or_default();
                for d in self.scheduler.behind(cur, &keys) {
                    if !doomed.iter().any(|(x, _)| *x == d) {
                        doomed.push((d, TxError::dependency(id)));
                    }
                }
                i += 1;
            }
        }
        let mut promoted = Vec::new();
        for (d, err) in doomed {
            let Some(e) = self.txs.get_mut(&d) else {
                continue;
            };
            if let Some(due) = e.tx.retry_due() {
                self.waiting.remove(&(due, e.tx.seq, d.clone()));
            }
            if e.tx.fail(err, now).is_err() {
                continue;
            }
            self.ready.remove(&(e.tx.seq, d.clone()));
            let keys = e.tx.keys.clone();
            promoted.extend(self.scheduler.remove(&d, &keys));
            self.writes.put(&d);
        }
        for p in promoted {
            self.recheck(now, &p);
        }
    }

    /// Takes `id` out of the outbox, failing it with `error` first if it was unsettled.
    pub(super) fn remove(&mut self, now: Millis, id: &TransactionId, error: TxError) {
        let Some(mut e) = self.txs.remove(id) else {
            return;
        };
        if let Some(due) = e.tx.retry_due() {
            self.waiting.remove(&(due, e.tx.seq, id.clone()));
        }
        if e.tx.state == TransactionState::Failed {
            // A dead letter discarded: say so, so every tab can drop it, keeping what it was.
            let was = e.tx.error.take().map(|w| w.to_string()).unwrap_or_default();
            e.tx.error = Some(TxError::new(
                error.code,
                format!("{} (it had failed: {was})", error.message),
            ));
        } else {
            let _ = e.tx.fail(error, now);
        }
        e.tx.epoch = self.epoch;
        self.ready.remove(&(e.tx.seq, id.clone()));
        let promoted = self.scheduler.remove(id, &e.tx.keys);
        self.removed.insert(id.clone(), now);
        self.writes.delete(e.tx, now);
        for p in promoted {
            self.recheck(now, &p);
        }
    }

    /// Re-reads whether a pending or queued transaction may run now.
    pub(super) fn recheck(&mut self, now: Millis, id: &TransactionId) {
        let Some(e) = self.txs.get_mut(id) else {
            return;
        };
        let blocker = self.scheduler.blocker(id, e.tx.strategy, &e.tx.keys);
        let to = match (e.tx.state, &blocker) {
            (TransactionState::Queued, None) => Some(TransactionState::Pending),
            (TransactionState::Pending, Some(_)) => Some(TransactionState::Queued),
            _ => None,
        };
        if let Some(to) = to {
            if e.tx.move_to(to, now).is_ok() {
                self.writes.put(id);
            }
        }
        if e.tx.state == TransactionState::Queued {
            e.tx.queued_behind = blocker;
        }
        self.make_ready(now, id);
    }

    /// Puts a durable, pending, due and unblocked transaction in the ready set.
    pub(super) fn make_ready(&mut self, now: Millis, id: &TransactionId) {
        let Some(e) = self.txs.get(id) else { return };
        if (e.durable || self.writes.is_waiting_new(id))
            && e.tx.state == TransactionState::Pending
            && e.tx.retry_due().is_none_or(|due| due <= now)
            && self
                .scheduler
                .blocker(id, e.tx.strategy, &e.tx.keys)
                .is_none()
        {
            self.ready.insert((e.tx.seq, id.clone()));
        }
    }

    /// The app's `awaitSync` says this transaction's change is synced: it completes.
    pub(super) fn synced(&mut self, now: Millis, id: &TransactionId) {
        if self
            .txs
            .get(id)
            .is_some_and(|e| e.tx.state == TransactionState::PersistedAwaitingSync)
        {
            self.settle_success(now, id);
        }
    }

    /// The sync has reached `server_seq`: transactions waiting for it complete.
    pub(super) fn synced_to(&mut self, now: Millis, server_seq: u64) {
        self.synced_seq = self.synced_seq.max(server_seq);
        let done: Vec<TransactionId> = self
            .txs
            .values()
            .filter(|e| {
                e.tx.state == TransactionState::PersistedAwaitingSync
                    && e.tx
                        .server_seq
                        .map_or(!self.config.await_sync_hook, |s| s <= self.synced_seq)
            })
            .map(|e| e.tx.id.clone())
            .collect();
        for id in done {
            self.settle_success(now, &id);
        }
    }
}

/// Closes an attempt whose executor went away mid-call (`why`), as `OUTBOX_LEADER_LOST`: it does
/// not count against the retry budget, and the next one goes with the same key.
fn cut_off(attempt: &mut Attempt, now: Millis, why: &str) {
    attempt.completed_at = Some(now);
    attempt.error = Some(TxError::new(
        ErrorCode::LeaderLost,
        format!("{why}; retrying with the same key"),
    ));
}
