//! The leader's executor as a sans-IO state machine.
//!
//! The browser adapter feeds it [`Event`]s with the current time and carries out the
//! [`Command`]s it returns: write a batch to the outbox, call a mutation function, set the one
//! timer, send a message on the channel. It never reads a clock or a random source itself.
//!
//! Rules it keeps:
//! - a submit is answered `durable` only after the write holding it has committed;
//! - no attempt starts before its transaction's record has committed, and an attempt record is
//!   committed before each call;
//! - at most `max_concurrency` calls run at once, where a request of a function that batches
//!   counts once and carries up to `max_batch` transactions (those whose attempts were recorded
//!   in the same write);
//! - at most one write is in flight; everything that changes meanwhile goes into the next one
//!   (group commit);
//! - ordered transactions run first-in first-out per key; a failure fails those queued behind;
//! - a write refused for a stale epoch makes it step down at once.

mod calls;
mod completed;
mod config;
mod event;
mod lifecycle;
mod rehearsal;
mod requests;
#[cfg(test)]
mod tests;
mod writes;

pub use config::{BeforeRetry, ExecutorConfig, RetryDecision, DEFAULT_SETTLE_LINGER_MS};
pub use event::{AttemptOutcome, AttemptSuccess, Command, Event, FinishedAttempt};
pub use rehearsal::rehearse;

use crate::model::{Epoch, Millis, Transaction, TransactionId, TransactionState};
use crate::protocol::QueueStats;
use crate::retry::RandomSource;
use crate::scheduler::KeyScheduler;
use calls::CallsInFlight;
use completed::Completed;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use writes::WritePipeline;

/// How many of the latest removals a snapshot names (a tab that missed one missed it when the
/// leader that made it went: the latest are what matter).
const SNAPSHOT_REMOVALS: usize = 256;

/// The executor. Create one per leadership; feed it [`Event::BecameLeader`] first.
pub struct Executor {
    config: ExecutorConfig,
    rng: Box<dyn RandomSource>,
    epoch: Epoch,
    role: Role,
    txs: HashMap<TransactionId, Entry>,
    scheduler: KeyScheduler,
    /// Runnable transactions by acceptance order.
    ready: BTreeSet<(u64, TransactionId)>,
    /// Transactions waiting for a scheduled retry, by due time.
    waiting: BTreeSet<(Millis, u64, TransactionId)>,
    /// Of those, the ones whose wait the server set (`Retry-After`), until when: a retry
    /// trigger ([`Executor::bring_forward`]) does not bring them before it. Kept in memory: a
    /// new leader starts them at once, as it does every retry.
    server_waits: HashMap<TransactionId, Millis>,
    /// Calls and batch requests running.
    calls: CallsInFlight,
    writes: WritePipeline,
    /// Completed lately, for answering a late resend.
    tombstones: Completed,
    /// Removed lately, for answering a late resend with "removed".
    removed: Completed,
    synced_seq: u64,
    next_seq: u64,
    timer_at: Option<Millis>,
    /// The last attempt got no answer at all (offline): until this time no attempt starts,
    /// and then one at a time (a probe) until the server answers. Without it an outbox of
    /// thousands offline tried every one of them back to back, each a doomed request.
    unreachable_until: Option<Millis>,
    /// The server said it is unavailable and when to come back (`Retry-After` on a 503): a
    /// retry trigger reopens the gate no sooner.
    server_gate: Option<Millis>,
    /// Whether storage says (or the next write will say) the server was unreachable.
    stored_unreachable: bool,
    /// Waiting for credentials (a 401, or a term that needs them before its first call): no
    /// attempt starts until [`Event::Credentials`].
    paused: bool,
    /// Attempts answered 401 in a row (any other answer resets it). From the second on,
    /// credentials that come in do not unpause at once but after a growing wait
    /// ([`credentials_retry_wait`]): an app whose `getCredentials()` keeps handing out a token
    /// the server refuses would otherwise loop, 401 after 401, as fast as the network allows.
    unauthorized_in_a_row: u32,
    /// When credentials last came in (the outbox resumed): a 401 counts toward the streak
    /// only for an attempt started since, and once per credentials (the calls in flight under
    /// one expired token are one refusal, not eight).
    credentials_since: Millis,
    /// The `credentials_since` a 401 was last counted for.
    counted_for: Option<Millis>,
    /// Credentials came in after repeated 401s: unpaused at this time.
    resume_at: Option<Millis>,
    /// The time of the latest event: an event's time well below it means the wall clock was
    /// set back (see [`Executor::clock_went_back`]).
    clock: Millis,
    /// The user signed out: nothing unpauses it.
    signed_out: bool,
    /// States to broadcast at the end of this event that no write waits for (attempts that
    /// got no answer).
    unstored: Vec<Transaction>,
    out: Vec<Command>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("epoch", &self.epoch)
            .field("role", &self.role)
            .field("transactions", &self.txs.len())
            .field("in_flight", &self.calls.attempts())
            .field("calls", &self.calls.calls())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Not yet leading.
    Idle,
    Leading,
    /// Stepped down (fenced or told to stop): ignores everything.
    Stopped,
}

/// The executor's copy of one transaction.
#[derive(Debug)]
struct Entry {
    tx: Transaction,
    /// Its record has committed at least once.
    durable: bool,
}

impl Executor {
    /// An executor with this configuration and random source (for backoff jitter).
    pub fn new(config: ExecutorConfig, rng: Box<dyn RandomSource>) -> Self {
        Self {
            config,
            rng,
            epoch: Epoch(0),
            role: Role::Idle,
            txs: HashMap::new(),
            scheduler: KeyScheduler::new(),
            ready: BTreeSet::new(),
            waiting: BTreeSet::new(),
            server_waits: HashMap::new(),
            calls: CallsInFlight::default(),
            writes: WritePipeline::default(),
            tombstones: Completed::default(),
            removed: Completed::default(),
            synced_seq: 0,
            next_seq: 1,
            timer_at: None,
            unreachable_until: None,
            server_gate: None,
            stored_unreachable: false,
            paused: false,
            unauthorized_in_a_row: 0,
            credentials_since: 0,
            counted_for: None,
            resume_at: None,
            clock: 0,
            signed_out: false,
            unstored: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Handles one event at time `now` and returns the commands to carry out, in order.
    pub fn handle(&mut self, now: Millis, event: Event) -> Vec<Command> {
        self.handle_all(now, [event])
    }

    /// Handles events that arrived together (a tab's burst of submits, say) at time `now`,
    /// in order, and only then starts what they allow: their records go into one write.
    pub fn handle_all(
        &mut self,
        now: Millis,
        events: impl IntoIterator<Item = Event>,
    ) -> Vec<Command> {
        if now.saturating_add(CLOCK_SLACK_MS) < self.clock {
            if self.role == Role::Leading {
                self.clock_went_back(self.clock - now);
            }
            self.clock = now;
        } else {
            self.clock = self.clock.max(now);
        }
        for event in events {
            match (self.role, event) {
                (Role::Stopped, _) => {}
                (Role::Idle, Event::BecameLeader(loaded)) => self.take_over(now, loaded),
                (Role::Idle, _) | (Role::Leading, Event::BecameLeader(_)) => {}
                (Role::Leading, event) => self.lead(now, event),
            }
        }
        if self.role == Role::Leading {
            self.pump(now);
            self.flush_unstored();
            self.flush_writes(now);
            self.arm_timer();
        }
        std::mem::take(&mut self.out)
    }

    fn lead(&mut self, now: Millis, event: Event) {
        match event {
            Event::BecameLeader(_) => {}
            Event::Submitted { from, to, tx } if to == self.epoch => self.submitted(now, from, *tx),
            Event::Submitted { from, .. } => {
                // Addressed to another leader: the tab will resend, in order, once it knows us.
                self.send_to(
                    Some(from),
                    crate::protocol::Message::Leader { epoch: self.epoch },
                );
            }
            Event::Written { write } => self.written(now, write),
            Event::WriteFailed { write, error } => self.write_failed(now, write, error),
            Event::AttemptFinished {
                id,
                attempt,
                outcome,
            } => self.attempt_finished(now, &id, attempt, outcome),
            Event::AttemptsFinished { finished } => {
                for f in finished {
                    if self.role != Role::Leading {
                        // Fenced out by one of them: the rest is the next leader's.
                        break;
                    }
                    self.attempt_finished(now, &f.id, f.attempt, f.outcome);
                }
            }
            Event::TimerFired => self.timer_fired(now),
            Event::Online | Event::TabVisible | Event::NotifyOnline => self.bring_forward(now),
            Event::SyncedTo { server_seq } => self.synced_to(now, server_seq),
            Event::Synced { id } => self.synced(now, &id),
            Event::SnapshotRequested { from } => self.snapshot(&from),
            Event::Request { from, req, op } => self.request(now, &from, req, op),
            Event::Credentials if !self.signed_out => {
                match credentials_retry_wait(self.unauthorized_in_a_row) {
                    0 => self.resume(now),
                    // The first credentials to come in decide when it resumes.
                    wait if self.paused => {
                        self.resume_at.get_or_insert(now.saturating_add(wait));
                    }
                    _ => {}
                }
            }
            Event::Credentials => {}
            Event::Stop => self.role = Role::Stopped,
        }
    }

    /// Whether it waits for credentials.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Stops starting attempts until credentials come, and asks the tabs for them.
    pub(super) fn pause_for_credentials(&mut self) {
        if !self.paused {
            self.paused = true;
            self.send_to(
                None,
                crate::protocol::Message::CredentialsNeeded { epoch: self.epoch },
            );
        }
    }

    /// The epoch this executor leads in (0 before it leads).
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Transactions per request of a function that batches, at most.
    pub fn max_batch(&self) -> usize {
        self.config.max_batch.max(1)
    }

    /// Whether it is leading (not idle, not stepped down).
    pub fn is_leading(&self) -> bool {
        self.role == Role::Leading
    }

    /// A transaction as the executor has it.
    pub fn get(&self, id: &TransactionId) -> Option<&Transaction> {
        self.txs.get(id).map(|e| &e.tx)
    }

    /// Every transaction it holds (unsettled ones and dead letters), in acceptance order.
    pub fn transactions(&self) -> Vec<Transaction> {
        let mut all: Vec<&Transaction> = self.txs.values().map(|e| &e.tx).collect();
        all.sort_by_key(|t| t.seq);
        all.into_iter().cloned().collect()
    }

    /// Queue statistics.
    pub fn stats(&self) -> QueueStats {
        let mut s = QueueStats::default();
        for e in self.txs.values() {
            if e.tx.state == TransactionState::Failed {
                s.dead_letters += 1;
            } else {
                s.size += 1;
            }
            s.bytes += approx_bytes(&e.tx);
        }
        s.in_flight = u32::try_from(self.calls.attempts()).unwrap_or(u32::MAX);
        s
    }

    fn arm_timer(&mut self) {
        let probe = self
            .unreachable_until
            .filter(|_| !self.ready.is_empty() && self.calls.attempts() == 0);
        let due = [
            self.waiting.first().map(|(at, _, _)| *at),
            self.writes.retry_at(),
            self.writes.settle_due_at(self.config.settle_linger_ms),
            probe,
            self.resume_at,
        ]
        .into_iter()
        .flatten()
        .min();
        if due != self.timer_at {
            self.timer_at = due;
            if let Some(at) = due {
                self.out.push(Command::SetTimer { at });
            }
        }
    }

    fn timer_fired(&mut self, now: Millis) {
        self.timer_at = None;
        if self.resume_at.is_some_and(|at| at <= now) {
            self.resume(now);
        }
        while let Some(first) = self.waiting.first().cloned() {
            if first.0 > now {
                break;
            }
            self.waiting.remove(&first);
            self.server_waits.remove(&first.2);
            self.make_ready(now, &first.2);
        }
        self.writes.retry_due(now);
    }

    /// Credentials came in: attempts start again, at once.
    fn resume(&mut self, now: Millis) {
        self.paused = false;
        self.credentials_since = now;
        self.resume_at = None;
        self.bring_forward(now);
    }

    /// The wall clock was set back `by` (the time of the last event less this one's; the user
    /// changed it, or it was corrected): every time scheduled before goes back as far. A retry
    /// due in a second would otherwise wait the jump out (an hour set back, an hour late). How
    /// much time passed between the two events cannot be told from the wall clock, so a wait
    /// under way counts again from the jump: at most one wait late. (The glue's timer runs on
    /// its own clock: it fires after the wait it was given, and that event shows the jump.)
    fn clock_went_back(&mut self, by: Millis) {
        let waiting = std::mem::take(&mut self.waiting);
        for (due, seq, id) in waiting {
            let due = due.saturating_sub(by);
            if let Some(a) = self.txs.get_mut(&id).and_then(|e| e.tx.attempts.last_mut()) {
                a.retry_scheduled_for = Some(due);
            }
            self.waiting.insert((due, seq, id));
        }
        for until in self.server_waits.values_mut() {
            *until = until.saturating_sub(by);
        }
        self.credentials_since = self.credentials_since.saturating_sub(by);
        self.counted_for = self.counted_for.map(|t| t.saturating_sub(by));
        let back = |at: Option<Millis>| at.map(|t| t.saturating_sub(by));
        self.unreachable_until = back(self.unreachable_until);
        self.server_gate = back(self.server_gate);
        self.resume_at = back(self.resume_at);
        self.writes.clock_went_back(by);
        // Re-armed at the end of this event, from the moved times.
        self.timer_at = None;
    }

    /// A retry trigger (online, visible, notify-online, start-up, a success): every scheduled
    /// retry becomes due now, but those the server asked to wait (`Retry-After`): another
    /// transaction's success or the network coming back says nothing of a rate limit, and a
    /// retry before it would be refused again, spending an attempt each time.
    fn bring_forward(&mut self, now: Millis) {
        self.server_gate = self.server_gate.filter(|&until| until > now);
        self.unreachable_until = self.server_gate;
        let txs = &self.txs;
        self.server_waits
            .retain(|id, until| *until > now && txs.contains_key(id));
        let waiting = std::mem::take(&mut self.waiting);
        for (due, seq, id) in waiting {
            if self.server_waits.contains_key(&id) {
                self.waiting.insert((due, seq, id));
                continue;
            }
            if let Some(e) = self.txs.get_mut(&id) {
                if let Some(a) = e.tx.attempts.last_mut() {
                    a.retry_scheduled_for = Some(now);
                }
            }
            self.make_ready(now, &id);
        }
    }

    /// Starts attempts, in acceptance order, while there is room: a call of its own for a
    /// function that does not batch, a place in a request for one that does. A transaction
    /// with no room stays ready; one behind it may still join a request being filled.
    fn pump(&mut self, now: Millis) {
        if self.paused {
            return;
        }
        if let Some(until) = self.unreachable_until {
            // Offline: one probe at a time, no more often than the probe interval.
            if now < until || self.calls.attempts() > 0 {
                return;
            }
            if let Some(next) = self.ready.first().cloned() {
                if let Some(slot) = self.slot_for(&next.1) {
                    self.ready.remove(&next);
                    self.unreachable_until =
                        Some(now.saturating_add(self.config.probe_interval_ms));
                    self.start_attempt(now, &next.1, slot);
                }
            }
            return;
        }
        let (max_concurrency, max_batch) = (self.config.max_concurrency, self.config.max_batch);
        let mut after: Option<(u64, TransactionId)> = None;
        loop {
            if self.calls.calls() >= max_concurrency.max(1) && !self.calls.has_open_room(max_batch)
            {
                break;
            }
            let next = match &after {
                None => self.ready.first(),
                Some(a) => self
                    .ready
                    .range((Bound::Excluded(a), Bound::Unbounded))
                    .next(),
            };
            let Some(next) = next.cloned() else {
                break;
            };
            match self.slot_for(&next.1) {
                Some(slot) => {
                    self.ready.remove(&next);
                    self.start_attempt(now, &next.1, slot);
                }
                None => after = Some(next),
            }
        }
    }

    /// Where `id`'s next attempt would go: a call of its own, a place in a request, or no room
    /// now. A transaction that is gone gets a call of its own (it is dropped when started).
    fn slot_for(&mut self, id: &TransactionId) -> Option<calls::Slot> {
        let (max_concurrency, max_batch) = (self.config.max_concurrency, self.config.max_batch);
        match self.txs.get(id) {
            Some(e) => {
                let f = &e.tx.mutation_fn;
                self.calls.slot(
                    f,
                    self.config.batching.contains(f),
                    max_batch,
                    max_concurrency,
                )
            }
            None => Some(calls::Slot::Alone),
        }
    }

    fn snapshot(&mut self, from: &crate::model::ClientId) {
        let transactions = self.transactions();
        self.send_to(
            Some(from.clone()),
            crate::protocol::Message::Snapshot {
                epoch: self.epoch,
                transactions,
                more: false,
                removed: self.removed.latest(SNAPSHOT_REMOVALS),
            },
        );
    }

    fn send_to(&mut self, to: Option<crate::model::ClientId>, msg: crate::protocol::Message) {
        self.out.push(Command::Send { to, msg });
    }
}

/// A rough stored size of a transaction, for queue statistics.
fn approx_bytes(tx: &Transaction) -> u64 {
    let rows: usize = tx
        .mutations
        .iter()
        .map(|m| {
            [&m.original, &m.modified]
                .into_iter()
                .flatten()
                .map(|v| v.to_string().len())
                .sum::<usize>()
                + m.changes.to_string().len()
                + 64
        })
        .sum();
    u64::try_from(rows + 256 + tx.attempts.len() * 96).unwrap_or(u64::MAX)
}

/// How far an event's time may be below the latest event's before the wall clock counts as set
/// back (see `Executor::clock_went_back`): smaller steps (a clock slewed by NTP, timestamps of
/// events handled out of order) change nothing.
pub const CLOCK_SLACK_MS: Millis = 1_000;

/// How long credentials that came in after `unauthorized_in_a_row` 401s in a row wait before
/// attempts start again: at once after one (the usual expired token, refreshed), then 1 s,
/// doubling to at most a minute.
pub fn credentials_retry_wait(unauthorized_in_a_row: u32) -> Millis {
    const FIRST_MS: Millis = 1_000;
    const MAX_MS: Millis = 60_000;
    match unauthorized_in_a_row {
        0 | 1 => 0,
        n => FIRST_MS.saturating_mul(1 << (n - 2).min(16)).min(MAX_MS),
    }
}
