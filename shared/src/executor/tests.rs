//! Scenario tests of the executor against the in-memory store.

use super::*;
use crate::model::{ClientId, ErrorCode, PendingMutation, Strategy, Transaction, ATTEMPTS_KEPT};
use crate::protocol::{Message, Request, Response};
use crate::retry::{classify_http, AttemptError, SplitMix64};
use crate::store::{MemOutboxStore, StoreError, WriteBatch, TOMBSTONE_TTL_MS};
use serde_json::json;
use std::collections::VecDeque;

mod batching;

struct Rig {
    exec: Executor,
    store: MemOutboxStore,
    now: Millis,
    writes: VecDeque<WriteBatch>,
    calls: Vec<(TransactionId, u32)>,
    /// The transactions of each batch request, in order.
    requests: Vec<Vec<TransactionId>>,
    sent: Vec<(Option<ClientId>, Message)>,
    timer: Option<Millis>,
    other: Vec<Command>,
}

fn tab() -> ClientId {
    ClientId("tab".into())
}

fn tx(id: &str, keys: &[&str], strategy: Strategy) -> Transaction {
    let muts = keys
        .iter()
        .map(|k| PendingMutation::insert("todos", k, json!({ "id": k })))
        .collect();
    Transaction::new(id.into(), "sync", strategy, muts, 0)
}

fn ordered(id: &str, keys: &[&str]) -> Transaction {
    tx(id, keys, Strategy::Ordered)
}

impl Rig {
    fn new(config: ExecutorConfig) -> Self {
        Self::with_store(config, MemOutboxStore::new())
    }

    /// Tombstones are written at once (the scenarios commit writes as they come); the linger
    /// has tests of its own ([`Rig::lingering`]).
    fn with_store(config: ExecutorConfig, store: MemOutboxStore) -> Self {
        Self::lingering(
            ExecutorConfig {
                settle_linger_ms: 0,
                ..config
            },
            store,
        )
    }

    fn lingering(config: ExecutorConfig, mut store: MemOutboxStore) -> Self {
        let loaded = store.begin_leadership(0);
        let mut rig = Self {
            exec: Executor::new(config, Box::new(SplitMix64::new(1))),
            store,
            now: 0,
            writes: VecDeque::new(),
            calls: Vec::new(),
            requests: Vec::new(),
            sent: Vec::new(),
            timer: None,
            other: Vec::new(),
        };
        rig.feed(Event::BecameLeader(loaded));
        rig
    }

    fn feed(&mut self, ev: Event) {
        for c in self.exec.handle(self.now, ev) {
            match c {
                Command::Write(b) => self.writes.push_back(b),
                Command::Call { tx, attempt } => self.calls.push((tx.id.clone(), attempt)),
                Command::CallBatch { calls, .. } => {
                    self.requests
                        .push(calls.iter().map(|(t, _)| t.id.clone()).collect());
                    self.calls
                        .extend(calls.into_iter().map(|(t, attempt)| (t.id, attempt)));
                }
                Command::Send { to, msg } => self.sent.push((to, msg)),
                Command::SetTimer { at } => self.timer = Some(at),
                other => self.other.push(other),
            }
        }
    }

    /// Commits writes until none is pending.
    fn settle(&mut self) {
        while let Some(b) = self.writes.pop_front() {
            let ev = match self.store.write(&b) {
                Ok(()) => Event::Written { write: b.id },
                Err(error) => Event::WriteFailed { write: b.id, error },
            };
            self.feed(ev);
        }
    }

    fn submit(&mut self, t: Transaction) {
        let to = self.exec.epoch();
        self.feed(Event::Submitted {
            from: tab(),
            to,
            tx: Box::new(t),
        });
    }

    fn finish(&mut self, id: &str, attempt: u32, outcome: AttemptOutcome) {
        self.feed(Event::AttemptFinished {
            id: id.into(),
            attempt,
            outcome,
        });
        self.settle();
    }

    fn ok(&mut self, id: &str, attempt: u32) {
        self.finish(id, attempt, Ok(AttemptSuccess::default()));
    }

    /// The server answers `id`'s attempt with success; nothing is committed yet.
    fn answered_ok(&mut self, id: &str, attempt: u32) {
        self.feed(Event::AttemptFinished {
            id: id.into(),
            attempt,
            outcome: Ok(AttemptSuccess::default()),
        });
    }

    fn state(&self, id: &str) -> Option<TransactionState> {
        self.exec.get(&id.into()).map(|t| t.state)
    }

    fn called(&self) -> Vec<&str> {
        self.calls.iter().map(|(id, _)| id.as_str()).collect()
    }

    fn durable_acks(&self) -> Vec<TransactionId> {
        self.sent
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Durable { ids, .. } => Some(ids.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

#[test]
fn durable_is_answered_only_after_the_commit_and_the_call_after_the_attempt_record() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    assert_eq!(r.writes.len(), 1, "the submit is written");
    assert!(r.durable_acks().is_empty(), "no ack before the commit");
    assert!(r.calls.is_empty(), "no call before the commit");
    // One write accepts the submit and records its first attempt.
    let b = r.writes.pop_front().unwrap();
    assert_eq!(b.puts[0].state, TransactionState::Persisting);
    assert_eq!(b.puts[0].attempts.len(), 1);
    r.store.write(&b).unwrap();
    r.feed(Event::Written { write: b.id });
    assert_eq!(r.durable_acks(), vec![TransactionId::from("a")]);
    assert_eq!(r.called(), vec!["a"]);
    assert!(
        r.writes.is_empty(),
        "nothing more to write before the answer"
    );
    r.ok("a", 1);
    assert_eq!(r.state("a"), None);
    assert!(r.store.is_completed(&"a".into()));
    assert!(r.store.transactions().is_empty());
}

#[test]
fn submits_arriving_during_a_write_go_into_one_batch() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    for i in 0..10 {
        r.submit(ordered(&format!("b{i}"), &[&format!("k{i}")]));
    }
    assert_eq!(r.writes.len(), 1, "one write in flight");
    let first = r.writes.pop_front().unwrap();
    r.store.write(&first).unwrap();
    r.feed(Event::Written { write: first.id });
    assert_eq!(r.writes.len(), 1);
    assert_eq!(r.writes[0].puts.len(), 10, "the ten submits, in one batch");
    let started = r.writes[0]
        .puts
        .iter()
        .filter(|t| t.state == TransactionState::Persisting && t.attempts.len() == 1)
        .count();
    assert_eq!(
        started, 7,
        "first attempts recorded with them, up to max_concurrency (a holds the eighth place)"
    );
}

#[test]
fn resubmitting_is_idempotent() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.submit(ordered("a", &["1"]));
    assert_eq!(r.durable_acks().len(), 3);
    assert_eq!(r.called(), vec!["a"]);
    assert_eq!(r.store.transactions().len(), 1);
}

#[test]
fn ordered_transactions_run_fifo_per_key_and_in_parallel_across_keys() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("b", &["1", "2"]));
    r.submit(ordered("c", &["3"]));
    r.submit(tx("p", &["1"], Strategy::Parallel));
    r.settle();
    assert_eq!(r.called(), vec!["a", "c", "p"]);
    assert_eq!(r.state("b"), Some(TransactionState::Queued));
    assert_eq!(
        r.exec.get(&"b".into()).unwrap().queued_behind,
        Some("a".into())
    );
    r.ok("a", 1);
    assert_eq!(r.called(), vec!["a", "c", "p", "b"]);
}

#[test]
fn max_concurrency_is_a_real_limit() {
    let mut r = Rig::new(ExecutorConfig {
        max_concurrency: 2,
        ..ExecutorConfig::default()
    });
    for i in 0..5 {
        r.submit(ordered(&format!("t{i}"), &[&format!("k{i}")]));
    }
    r.settle();
    assert_eq!(r.called(), vec!["t0", "t1"]);
    assert_eq!(r.exec.stats().in_flight, 2);
    r.ok("t1", 1);
    assert_eq!(r.called(), vec!["t0", "t1", "t2"]);
}

#[test]
fn a_final_failure_fails_those_queued_behind_naming_the_cause() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("b", &["1", "2"]));
    r.submit(ordered("c", &["2"]));
    r.submit(ordered("d", &["9"]));
    r.settle();
    r.finish("a", 1, Err(AttemptError::non_retriable("400")));
    let a = r.exec.get(&"a".into()).unwrap();
    assert_eq!(a.state, TransactionState::Failed);
    assert_eq!(a.error_code(), Some(ErrorCode::NonRetriable));
    for dep in ["b", "c"] {
        let t = r.exec.get(&dep.into()).unwrap();
        assert_eq!(t.state, TransactionState::Failed, "{dep}");
        assert_eq!(t.error_code(), Some(ErrorCode::DependencyFailed));
        assert_eq!(t.error.as_ref().unwrap().cause, Some("a".into()));
    }
    assert_eq!(r.called(), vec!["a", "d"], "dependents never ran");
    assert_eq!(r.exec.stats().dead_letters, 3);
    assert_eq!(r.store.transactions().len(), 4, "dead letters are kept");
}

#[test]
fn retriable_errors_back_off_then_give_up_after_five_attempts() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    for n in 1..=5u32 {
        assert_eq!(r.calls.last(), Some(&("a".into(), n)));
        r.finish("a", n, Err(AttemptError::retriable("503")));
        if n < 5 {
            let due = r.timer.unwrap();
            let base = 1000 * 2u64.pow(n - 1);
            assert!(
                due >= r.now + base && due <= r.now + base * 13 / 10,
                "{n}: {due}"
            );
            r.now = due;
            r.feed(Event::TimerFired);
            r.settle();
        }
    }
    let a = r.exec.get(&"a".into()).unwrap();
    assert_eq!(a.state, TransactionState::Failed);
    assert_eq!(a.error_code(), Some(ErrorCode::RetriesExhausted));
    assert_eq!(a.attempts.len(), 5);
    assert_eq!(r.calls.len(), 5);
}

#[test]
fn online_and_notify_online_bring_scheduled_retries_forward() {
    for trigger in [Event::Online, Event::NotifyOnline, Event::TabVisible] {
        let mut r = Rig::new(ExecutorConfig::default());
        r.submit(ordered("a", &["1"]));
        r.settle();
        r.finish("a", 1, Err(AttemptError::retriable("offline")));
        assert_eq!(r.calls.len(), 1);
        r.now = 10;
        r.feed(trigger);
        r.settle();
        assert_eq!(r.calls.len(), 2, "retried at once");
    }
}

#[test]
fn a_wall_clock_set_back_moves_scheduled_retries_back_with_it() {
    const HOUR: u64 = 3_600_000;
    let mut r = Rig::new(ExecutorConfig::default());
    r.now = 10 * HOUR;
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.finish("a", 1, Err(AttemptError::retriable("503")));
    let due = r.timer.unwrap();
    let wait = due - r.now;
    assert!((1_000..=1_300).contains(&wait), "{wait}");
    // The glue's timer fires after the wait it was given, but the clock was set back an hour
    // meanwhile. How long ago the jump was, the executor cannot tell: the wait is counted again
    // from the time of the last event before it, at most one wait late instead of an hour.
    r.now = due - HOUR;
    r.feed(Event::TimerFired);
    let again = r.timer.unwrap();
    assert!(again <= r.now + wait, "{} after the jump", again - r.now);
    assert_eq!(r.called(), ["a"]);
    r.now = again;
    r.feed(Event::TimerFired);
    r.settle();
    assert_eq!(r.called(), ["a", "a"], "retried once the wait was over");
    let a = r.exec.get(&"a".into()).unwrap();
    assert_eq!(a.state, TransactionState::Persisting);
    // A clock that only wobbles (under a second back) moves nothing.
    r.finish("a", 2, Err(AttemptError::retriable("503")));
    let due = r.timer.unwrap();
    r.now -= CLOCK_SLACK_MS / 2;
    r.feed(Event::TimerFired);
    assert_eq!(r.timer, Some(due), "the same retry time");
    assert_eq!(r.called().len(), 2);
}

#[test]
fn retry_after_is_honoured() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    let mut e = AttemptError::retriable("429");
    e.retry_after_ms = Some(30_000);
    r.finish("a", 1, Err(e));
    assert_eq!(r.timer, Some(30_000));
}

// A rate limiter says "not before": another transaction's success, the network coming back or
// a tab shown must not bring the retry before it (each early retry would be refused again and
// spend an attempt: five `Retry-After: 60` answers dead-lettered a transaction in 100 ms).
#[test]
fn a_servers_retry_after_holds_against_every_retry_trigger() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("b", &["2"]));
    r.settle();
    assert_eq!(r.called(), vec!["a", "b"]);
    let mut limited = AttemptError::retriable("429");
    limited.retry_after_ms = Some(60_000);
    r.finish("a", 1, Err(limited));
    r.now = 100;
    r.ok("b", 1);
    for trigger in [Event::Online, Event::NotifyOnline, Event::TabVisible] {
        r.feed(trigger);
        r.settle();
    }
    assert_eq!(
        r.called(),
        vec!["a", "b"],
        "a waits out the server's minute"
    );
    assert_eq!(r.timer, Some(60_000));
    r.now = 60_000;
    r.feed(Event::TimerFired);
    r.settle();
    assert_eq!(r.called(), vec!["a", "b", "a"]);
    // Our own backoff (no Retry-After) is still brought forward by a trigger.
    r.finish("a", 2, Err(AttemptError::retriable("503")));
    r.feed(Event::Online);
    r.settle();
    assert_eq!(r.called(), vec!["a", "b", "a", "a"]);
}

#[test]
fn a_new_leader_retries_an_interrupted_attempt_with_the_same_key_without_spending_budget() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    assert_eq!(r.called(), vec!["a"]);
    // The leader dies mid-attempt. A new one takes over the same storage.
    let store = r.store.clone();
    let mut r2 = Rig::with_store(ExecutorConfig::default(), store);
    r2.settle();
    assert_eq!(r2.calls, vec![("a".into(), 2)]);
    let a = r2.exec.get(&"a".into()).unwrap();
    assert_eq!(
        a.attempts[0].error.as_ref().unwrap().code,
        ErrorCode::LeaderLost
    );
    assert_eq!(a.counted_attempts(), 1, "only the running attempt counts");
    assert_eq!(a.epoch, r2.exec.epoch());
}

// An online-only tab's own executor hands over to a leader that appeared: the call it was
// making is cut off, and the tab resends the transaction as it stands, its attempt open.
#[test]
fn a_resent_transaction_s_cut_off_attempt_is_closed_and_does_not_spend_the_new_leaders_budget() {
    let mut own = Rig::new(ExecutorConfig::default());
    own.submit(ordered("a", &["1"]));
    own.settle();
    assert_eq!(own.calls, vec![("a".into(), 1)]);
    let mut resent = own.exec.get(&"a".into()).unwrap().clone();
    assert!(resent.attempts[0].completed_at.is_none(), "still running");
    resent.state = TransactionState::Pending;
    let mut r = Rig::new(ExecutorConfig::default());
    r.now = 50;
    r.submit(resent);
    r.settle();
    assert_eq!(
        r.calls,
        vec![("a".into(), 2)],
        "the same key, the next attempt"
    );
    let a = r.exec.get(&"a".into()).unwrap();
    assert_eq!(a.attempts[0].completed_at, Some(50));
    assert_eq!(
        a.attempts[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::LeaderLost)
    );
    assert_eq!(
        a.counted_attempts(),
        1,
        "only the leader's own attempt counts"
    );
    // So it makes the whole budget of calls before it gives up.
    for n in 2..=6u32 {
        r.finish("a", n, Err(AttemptError::retriable("503")));
        if let Some(due) = r.timer {
            r.now = due;
            r.feed(Event::TimerFired);
            r.settle();
        }
    }
    assert_eq!(r.calls.len(), 5);
    assert_eq!(r.state("a"), Some(TransactionState::Failed));
}

#[test]
fn a_fenced_write_makes_the_stale_leader_step_down() {
    let mut old = Rig::new(ExecutorConfig::default());
    old.submit(ordered("a", &["1"]));
    old.settle();
    let mut store = old.store.clone();
    let _new_leader = store.begin_leadership(0);
    old.store = store;
    old.finish("a", 1, Ok(AttemptSuccess::default()));
    assert!(
        matches!(old.other.as_slice(), [Command::StepDown { error }] if error.code == ErrorCode::Fenced)
    );
    assert!(!old.exec.is_leading());
    old.submit(ordered("b", &["2"]));
    assert!(old.writes.is_empty(), "a stepped-down leader does nothing");
    assert_eq!(
        old.store.transactions()[0].state,
        TransactionState::Persisting
    );
}

#[test]
fn quota_exhaustion_refuses_the_new_submit_and_keeps_what_was_accepted() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.store.quota_exhausted = true;
    r.submit(ordered("b", &["2"]));
    r.settle();
    let rejected: Vec<_> = r
        .sent
        .iter()
        .filter_map(|(to, m)| match m {
            Message::Rejected { id, error } => Some((to.clone(), id.clone(), error.code)),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        vec![(Some(tab()), "b".into(), ErrorCode::QuotaExceeded)]
    );
    assert_eq!(r.state("b"), None);
    assert_eq!(r.state("a"), Some(TransactionState::Persisting));
    r.store.quota_exhausted = false;
    r.ok("a", 1);
    assert!(r.store.is_completed(&"a".into()));
}

#[test]
fn corrupt_records_are_quarantined_and_reported_and_the_rest_resumes() {
    let mut store = MemOutboxStore::new();
    store.put_raw("junk", json!({"version": 1, "id": 7}));
    store.put_raw("future", json!({"version": 99}));
    let mut good = ordered("ok", &["1"]);
    good.seq = 5_000_000_000;
    store.put_raw("ok", good.to_record());
    let mut r = Rig::with_store(ExecutorConfig::default(), store);
    let quarantined: Vec<_> = r
        .other
        .iter()
        .filter_map(|c| match c {
            Command::Quarantine { key, .. } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(quarantined, vec!["future", "junk"]);
    let diags = r
        .sent
        .iter()
        .filter(|(_, m)| {
            matches!(
                m,
                Message::Diagnostic {
                    code: ErrorCode::CorruptRecord,
                    ..
                }
            )
        })
        .count();
    assert_eq!(diags, 2);
    r.settle();
    assert_eq!(r.called(), vec!["ok"]);
    r.submit(ordered("n", &["2"]));
    assert_eq!(r.exec.get(&"n".into()).unwrap().seq, 5_000_000_001);
}

#[test]
fn a_stored_seq_at_the_top_of_the_range_does_not_wrap_the_order_round() {
    let mut store = MemOutboxStore::new();
    let mut top = ordered("top", &["1"]);
    top.seq = u64::MAX;
    store.put_raw("top", top.to_record());
    let mut r = Rig::with_store(ExecutorConfig::default(), store);
    r.submit(ordered("n", &["2"]));
    r.submit(ordered("m", &["3"]));
    // Not below the stored one (it would run first), and no overflow.
    assert_eq!(r.exec.get(&"n".into()).unwrap().seq, u64::MAX);
    assert_eq!(r.exec.get(&"m".into()).unwrap().seq, u64::MAX);
    r.settle();
    assert_eq!(r.called(), vec!["top", "n", "m"]);
}

#[test]
fn a_completed_transaction_resent_to_a_new_leader_is_answered_completed() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.ok("a", 1);
    let mut r2 = Rig::with_store(ExecutorConfig::default(), r.store.clone());
    r2.submit(ordered("a", &["1"]));
    assert!(r2.writes.is_empty() && r2.calls.is_empty());
    assert_eq!(r2.durable_acks(), vec![TransactionId::from("a")]);
    assert!(r2.sent.iter().any(|(_, m)| matches!(m, Message::State { txs, .. } if txs[0].state == TransactionState::Completed)));
}

#[test]
fn dead_letters_can_be_retried_with_a_fresh_budget_or_removed() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("b", &["1"]));
    r.settle();
    r.finish("a", 1, Err(AttemptError::non_retriable("409")));
    r.feed(Event::Request {
        from: tab(),
        req: 1,
        op: Request::RetryDeadLetter { id: "a".into() },
    });
    r.settle();
    assert!(r.sent.iter().any(|(_, m)| matches!(
        m,
        Message::Response {
            req: 1,
            result: Response::Done
        }
    )));
    assert_eq!(r.calls.last(), Some(&("a".into(), 2)));
    assert_eq!(r.exec.get(&"a".into()).unwrap().counted_attempts(), 1);
    r.feed(Event::Request {
        from: tab(),
        req: 2,
        op: Request::Remove { id: "b".into() },
    });
    r.settle();
    assert_eq!(r.state("b"), None);
    assert!(r.store.transactions().iter().all(|t| t.id.as_str() != "b"));
    let removed = r.sent.iter().rev().any(|(_, m)| matches!(m, Message::State { txs, .. } if txs.iter().any(|t| t.id.as_str() == "b" && t.state == TransactionState::Failed && t.error_code() == Some(ErrorCode::Removed))));
    assert!(removed, "tabs learn the removal, to roll it back");
    // Removing an unsettled transaction fails it with OUTBOX_REMOVED first.
    r.submit(ordered("c", &["7"]));
    r.submit(ordered("d", &["7"]));
    r.settle();
    r.feed(Event::Request {
        from: tab(),
        req: 4,
        op: Request::Remove { id: "d".into() },
    });
    r.settle();
    let removed = r.sent.iter().any(|(_, m)| matches!(m, Message::State { txs, .. } if txs.iter().any(|t| t.id.as_str() == "d" && t.error_code() == Some(ErrorCode::Removed))));
    assert!(removed);
    assert!(r.sent.iter().any(|(_, m)| matches!(
        m,
        Message::Response {
            req: 4,
            result: Response::Done
        }
    )));
    r.feed(Event::Request {
        from: tab(),
        req: 3,
        op: Request::Remove { id: "a".into() },
    });
    assert!(
        r.sent.iter().any(|(_, m)| matches!(
            m,
            Message::Response {
                req: 3,
                result: Response::Error { .. }
            }
        )),
        "a running transaction is not removed"
    );
}

#[test]
fn a_removed_transaction_resent_to_the_next_leader_stays_removed() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("b", &["1"]));
    r.settle();
    r.feed(Event::Request {
        from: tab(),
        req: 1,
        op: Request::Remove { id: "b".into() },
    });
    r.settle();
    // Resent to the same leader (a tab that did not hear of it): not taken in again.
    r.sent.clear();
    r.submit(ordered("b", &["1"]));
    assert!(r.writes.is_empty(), "nothing written for it");
    let answered_removed = |sent: &[(Option<ClientId>, Message)]| {
        sent.iter().any(|(to, m)| {
            to.as_ref() == Some(&tab())
                && matches!(m, Message::State { txs, .. } if txs.iter().any(|t| t.id.as_str() == "b" && t.state == TransactionState::Failed && t.error_code() == Some(ErrorCode::Removed)))
        })
    };
    assert!(answered_removed(&r.sent), "{:?}", r.sent);
    // A snapshot names it, for tabs that knew it and missed the news.
    r.feed(Event::SnapshotRequested { from: tab() });
    assert!(
        r.sent.iter().any(|(_, m)| matches!(m, Message::Snapshot { removed, .. } if removed == &[TransactionId::from("b")])),
        "{:?}",
        r.sent
    );
    // The leader dies before any tab hears of the removal; its tab resends to the next one.
    let store = std::mem::take(&mut r.store);
    let mut next = Rig::with_store(ExecutorConfig::default(), store);
    next.submit(ordered("b", &["1"]));
    next.settle();
    assert!(answered_removed(&next.sent), "{:?}", next.sent);
    assert_eq!(next.state("b"), None);
    assert!(!next.called().contains(&"b"), "never sent to the server");
    assert!(next
        .store
        .transactions()
        .iter()
        .all(|t| t.id.as_str() != "b"));
    // A day later the removal is forgotten, like a tombstone.
    let mut store = std::mem::take(&mut next.store);
    store.begin_leadership(TOMBSTONE_TTL_MS + 1);
    let loaded = store.begin_leadership(TOMBSTONE_TTL_MS + 1);
    assert!(loaded.removed.is_empty());
}

#[test]
fn before_retry_can_discard_a_transaction() {
    let mut r = Rig::new(ExecutorConfig {
        before_retry: Some(Box::new(|t: &Transaction| {
            if t.id.as_str() == "drop" {
                RetryDecision::Discard
            } else {
                RetryDecision::Proceed
            }
        })),
        ..ExecutorConfig::default()
    });
    r.submit(ordered("drop", &["1"]));
    r.submit(ordered("keep", &["2"]));
    r.settle();
    r.finish("drop", 1, Err(AttemptError::retriable("x")));
    r.finish("keep", 1, Err(AttemptError::retriable("x")));
    r.feed(Event::NotifyOnline);
    r.settle();
    assert_eq!(r.called(), vec!["drop", "keep", "keep"]);
    assert_eq!(r.state("drop"), None);
}

#[test]
fn await_sync_holds_a_transaction_until_the_feed_passes_its_sequence() {
    let mut r = Rig::new(ExecutorConfig {
        await_sync: true,
        ..ExecutorConfig::default()
    });
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("b", &["1"]));
    r.settle();
    r.finish(
        "a",
        1,
        Ok(AttemptSuccess {
            server_seq: Some(7),
        }),
    );
    assert_eq!(r.state("a"), Some(TransactionState::PersistedAwaitingSync));
    assert_eq!(r.called(), vec!["a", "b"], "the key is free once persisted");
    r.feed(Event::SyncedTo { server_seq: 6 });
    assert_eq!(r.state("a"), Some(TransactionState::PersistedAwaitingSync));
    r.feed(Event::SyncedTo { server_seq: 7 });
    r.settle();
    assert_eq!(r.state("a"), None);
    assert!(r.store.is_completed(&"a".into()));
}

#[test]
fn the_apps_await_sync_is_asked_once_the_success_is_stored_and_completes_it() {
    let hook = ExecutorConfig {
        await_sync_hook: true,
        ..ExecutorConfig::default()
    };
    let mut r = Rig::new(hook);
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.finish("a", 1, Ok(AttemptSuccess::default()));
    assert_eq!(r.state("a"), Some(TransactionState::PersistedAwaitingSync));
    let asked: Vec<_> = r
        .other
        .iter()
        .filter_map(|c| match c {
            Command::AwaitSync { tx } => Some((tx.id.clone(), tx.state)),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        vec![("a".into(), TransactionState::PersistedAwaitingSync)],
        "asked once, after the commit"
    );
    r.feed(Event::SyncedTo { server_seq: 99 });
    assert_eq!(
        r.state("a"),
        Some(TransactionState::PersistedAwaitingSync),
        "the feed does not decide for the app when the reply named no seq"
    );

    // A new leader finds it waiting, and asks again.
    let store = std::mem::take(&mut r.store);
    let mut next = Rig::with_store(
        ExecutorConfig {
            await_sync_hook: true,
            ..ExecutorConfig::default()
        },
        store,
    );
    assert!(next
        .other
        .iter()
        .any(|c| matches!(c, Command::AwaitSync { tx } if tx.id == "a".into())));
    next.feed(Event::Synced { id: "a".into() });
    next.settle();
    assert_eq!(next.state("a"), None);
    assert!(next.store.is_completed(&"a".into()));
}

#[test]
fn an_attempt_without_an_answer_is_stored_with_the_next_write_not_one_of_its_own() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.feed(Event::AttemptFinished {
        id: "a".into(),
        attempt: 1,
        outcome: Err(AttemptError::network("offline")),
    });
    assert!(r.writes.is_empty(), "no write of its own");
    assert_eq!(r.state("a"), Some(TransactionState::Pending));
    let told = r.sent.iter().any(|(to, m)| {
        to.is_none()
            && matches!(m, Message::State { txs, .. }
                if txs.iter().any(|t| t.id == "a".into() && t.state == TransactionState::Pending))
    });
    assert!(told, "the tabs hear of it at once");
    // The next submit's write carries it.
    r.submit(ordered("b", &["2"]));
    let batch = r.writes.pop_front().unwrap();
    let ids: Vec<&str> = batch.puts.iter().map(|t| t.id.0.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let a = &batch.puts[0];
    assert_eq!(a.state, TransactionState::Pending);
    assert!(a.attempts[0].retry_scheduled_for.is_some());
}

#[test]
fn offline_it_probes_one_attempt_at_a_time_until_the_server_answers() {
    let mut r = Rig::new(ExecutorConfig::default());
    for i in 0..20 {
        r.submit(ordered(&format!("t{i}"), &[&format!("k{i}")]));
    }
    r.settle();
    assert_eq!(r.calls.len(), 8, "max_concurrency calls start");
    // None of them gets an answer: nothing else starts.
    let first: Vec<_> = std::mem::take(&mut r.calls);
    for (id, n) in &first {
        r.finish(id.as_str(), *n, Err(AttemptError::network("offline")));
    }
    assert!(
        r.calls.is_empty(),
        "no attempt starts right after one got no answer"
    );
    // A transaction submitted meanwhile is accepted (durable) and waits.
    r.submit(ordered("late", &["late"]));
    r.settle();
    assert!(r.durable_acks().contains(&"late".into()));
    assert!(r.calls.is_empty());
    // After the probe interval, one attempt (the oldest ready) probes; it gets no answer.
    assert_eq!(r.timer, Some(r.now + 1_000));
    r.now += 1_000;
    r.feed(Event::TimerFired);
    r.settle();
    assert_eq!(r.called(), vec!["t8"], "one probe, the oldest ready");
    let probe = r.calls.remove(0);
    r.finish(
        probe.0.as_str(),
        probe.1,
        Err(AttemptError::network("offline")),
    );
    assert!(r.calls.is_empty());
    r.now += 1_000;
    r.feed(Event::TimerFired);
    r.settle();
    // The next probe: the oldest ready (by now a retry of one of the first eight is due).
    assert_eq!(r.calls.len(), 1, "{:?}", r.called());
    // The server answers (even an error would do): everything ready starts again.
    let probe = r.calls.remove(0);
    r.ok(probe.0.as_str(), probe.1);
    assert_eq!(r.calls.len(), 8, "the gate is open: {:?}", r.called());
}

#[test]
fn online_opens_the_offline_gate_at_once() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.finish("a", 1, Err(AttemptError::network("offline")));
    r.submit(ordered("b", &["2"]));
    r.settle();
    assert!(r.calls.iter().all(|(id, _)| id.as_str() == "a"));
    r.calls.clear();
    r.feed(Event::Online);
    r.settle();
    let mut called = r.called();
    called.sort_unstable();
    assert_eq!(
        called,
        vec!["a", "b"],
        "both at once: the retry brought forward, and b"
    );
}

#[test]
fn a_failed_write_is_retried_later_and_loses_nothing_accepted() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    // The attempt's completion write fails for an unrelated reason.
    r.feed(Event::AttemptFinished {
        id: "a".into(),
        attempt: 1,
        outcome: Ok(AttemptSuccess::default()),
    });
    let b = r.writes.pop_front().unwrap();
    r.feed(Event::WriteFailed {
        write: b.id,
        error: StoreError::Other("disk hiccup".into()),
    });
    assert!(r.writes.is_empty());
    assert_eq!(r.timer, Some(1000));
    r.now = 1000;
    r.feed(Event::TimerFired);
    r.settle();
    assert!(r.store.is_completed(&"a".into()));
}

#[test]
fn snapshot_and_stats_describe_the_outbox() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("b", &["1"]));
    r.settle();
    r.feed(Event::SnapshotRequested { from: tab() });
    let snap = r.sent.iter().find_map(|(to, m)| match m {
        Message::Snapshot { transactions, .. } if to.as_ref() == Some(&tab()) => {
            Some(transactions.clone())
        }
        _ => None,
    });
    let ids: Vec<_> = snap.unwrap().into_iter().map(|t| t.id.0).collect();
    assert_eq!(ids, vec!["a", "b"]);
    let s = r.exec.stats();
    assert_eq!((s.size, s.in_flight, s.dead_letters), (2, 1, 0));
    assert!(s.bytes > 0);
}

#[test]
fn a_server_fencing_out_a_call_makes_the_leader_step_down_and_leaves_the_record() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.finish(
        "a",
        1,
        Err(AttemptError::fenced("a newer leader has called")),
    );
    assert!(
        matches!(r.other.as_slice(), [Command::StepDown { error }] if error.code == ErrorCode::Fenced)
    );
    assert!(!r.exec.is_leading());
    assert_eq!(
        r.store.transactions()[0].state,
        TransactionState::Persisting
    );
}

#[test]
fn attempts_that_get_no_answer_back_off_but_never_exhaust_the_budget() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    // Offline for twelve attempts: the wait grows to the cap, and the transaction waits on.
    for n in 1..=12u32 {
        assert_eq!(r.calls.last(), Some(&("a".into(), n)));
        r.finish("a", n, Err(AttemptError::network("no answer")));
        let due = r.timer.unwrap();
        let base = (1000 * 2u64.pow((n - 1).min(20))).min(60_000);
        assert!(
            due >= r.now + base && due <= r.now + base * 13 / 10,
            "{n}: waits {} ms",
            due - r.now
        );
        assert_eq!(
            r.exec.get(&"a".into()).unwrap().state,
            TransactionState::Pending
        );
        r.now = due;
        r.feed(Event::TimerFired);
        r.settle();
    }
    // Back online, the server answers 503 five times: those are what the budget counts.
    for n in 13..=17u32 {
        r.finish("a", n, Err(AttemptError::retriable("503")));
        if n < 17 {
            r.now = r.timer.unwrap();
            r.feed(Event::TimerFired);
            r.settle();
        }
    }
    let a = r.exec.get(&"a".into()).unwrap();
    assert_eq!(a.state, TransactionState::Failed);
    assert_eq!(a.error_code(), Some(ErrorCode::RetriesExhausted));
    assert_eq!(a.attempt_count(), 17);
    assert_eq!(a.attempts.len(), ATTEMPTS_KEPT, "the oldest folded");
}

#[test]
fn a_server_that_is_down_or_busy_spends_no_attempts_and_a_500_still_does() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    // A deploy, a gateway with no upstream, a rate limit: twenty answers saying "not now".
    // Before, the fifth dead-lettered it (an outage of ~18 s failed everything ready).
    for n in 1..=20u32 {
        assert_eq!(r.calls.last(), Some(&("a".into(), n)));
        let status = [429, 502, 503, 504][n as usize % 4];
        let err = classify_http(status, None).unwrap();
        r.finish("a", n, Err(err));
        let a = r.exec.get(&"a".into()).unwrap();
        assert_eq!(a.state, TransactionState::Pending, "{n}");
        assert_eq!(a.error_code(), Some(ErrorCode::Retriable));
        assert_eq!(a.counted_attempts(), 0);
        r.now = r.timer.unwrap();
        r.feed(Event::TimerFired);
        r.settle();
    }
    // The backoff still grew to its cap.
    let a = r.exec.get(&"a".into()).unwrap();
    let last = a.attempts.iter().rev().nth(1).unwrap();
    let waited = last.retry_scheduled_for.unwrap() - last.completed_at.unwrap();
    assert!((60_000..=78_000).contains(&waited), "{waited}");
    // What the server says about the transaction itself counts: five 500s end it.
    for n in 21..=25u32 {
        r.finish("a", n, Err(classify_http(500, None).unwrap()));
        if n < 25 {
            r.now = r.timer.unwrap();
            r.feed(Event::TimerFired);
            r.settle();
        }
    }
    let a = r.exec.get(&"a".into()).unwrap();
    assert_eq!(a.state, TransactionState::Failed);
    assert_eq!(a.error_code(), Some(ErrorCode::RetriesExhausted));
}

#[test]
fn a_server_that_is_down_is_probed_one_attempt_at_a_time_as_long_as_it_asks() {
    let mut r = Rig::new(ExecutorConfig::default());
    for i in 0..20 {
        r.submit(ordered(&format!("t{i}"), &[&format!("k{i}")]));
    }
    r.settle();
    let first: Vec<_> = std::mem::take(&mut r.calls);
    assert_eq!(first.len(), 8);
    for (id, n) in &first {
        r.finish(id.as_str(), *n, Err(classify_http(503, None).unwrap()));
    }
    assert!(
        r.calls.is_empty(),
        "twelve ready, none sent to a server that is down"
    );
    r.now += 1_000;
    r.feed(Event::TimerFired);
    r.settle();
    assert_eq!(r.called(), vec!["t8"], "one probe");
    // The probe is told to come back in 30 s: nothing goes before then.
    let probe = r.calls.remove(0);
    r.finish(
        probe.0.as_str(),
        probe.1,
        Err(classify_http(503, Some(30_000)).unwrap()),
    );
    let gate = r.now + 30_000;
    // Nor at a retry trigger (a tab shown, the network back): the server said when.
    r.now += 500;
    for trigger in [Event::TabVisible, Event::Online, Event::NotifyOnline] {
        r.feed(trigger);
        r.settle();
        assert!(r.calls.is_empty(), "{:?}", r.called());
    }
    while let Some(at) = r.timer.filter(|&at| at < gate) {
        r.now = at;
        r.feed(Event::TimerFired);
        r.settle();
        assert!(r.calls.is_empty(), "at {}: {:?}", r.now, r.called());
    }
    r.now = gate;
    r.feed(Event::TimerFired);
    r.settle();
    assert_eq!(r.calls.len(), 1, "the next probe: {:?}", r.called());
    // The server is back: everything ready goes.
    let probe = r.calls.remove(0);
    r.ok(probe.0.as_str(), probe.1);
    assert_eq!(r.calls.len(), 8, "{:?}", r.called());
}

fn credentials_asked(r: &Rig) -> usize {
    r.sent
        .iter()
        .filter(|(to, m)| to.is_none() && matches!(m, Message::CredentialsNeeded { .. }))
        .count()
}

#[test]
fn a_401_pauses_the_whole_outbox_until_credentials_come() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.finish("a", 1, Err(AttemptError::unauthorized("401")));
    assert_eq!(credentials_asked(&r), 1, "the tabs are asked once");
    assert_eq!(r.state("a"), Some(TransactionState::Pending), "not failed");
    // Nothing else starts meanwhile, not even at the retry triggers.
    r.submit(ordered("b", &["2"]));
    r.settle();
    r.feed(Event::NotifyOnline);
    r.settle();
    assert_eq!(r.called(), vec!["a"]);
    assert_eq!(credentials_asked(&r), 1, "no storm of requests either");
    // Credentials: both go, and the 401 did not use up the budget.
    r.feed(Event::Credentials);
    r.settle();
    let mut called = r.called();
    called.sort_unstable();
    assert_eq!(called, vec!["a", "a", "b"]);
    let a = r.exec.get(&"a".into()).unwrap();
    assert_eq!(a.counted_attempts(), 1, "only the running attempt counts");
    assert_eq!(
        a.attempts[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::Unauthorized)
    );
    r.ok("a", 2);
    r.ok("b", 1);
    r.settle();
    assert_eq!(r.state("a"), None, "completed and settled");
    assert!(!r.exec.is_paused());
}

#[test]
fn credentials_the_server_keeps_refusing_are_tried_after_a_growing_wait_not_in_a_loop() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.now = 1_000;
    // The app's getCredentials() keeps handing out a token the server refuses.
    let mut resumed_after = Vec::new();
    for attempt in 1..=8 {
        r.finish("a", attempt, Err(AttemptError::unauthorized("401")));
        assert!(r.exec.is_paused());
        let asked_at = r.now;
        r.feed(Event::Credentials);
        r.settle();
        for _ in 0..10 {
            if r.called().len() > attempt as usize {
                break;
            }
            let Some(at) = r.timer.filter(|at| *at > r.now) else {
                panic!("paused with no timer ahead after attempt {attempt}")
            };
            r.now = at;
            r.feed(Event::TimerFired);
            r.settle();
        }
        resumed_after.push(r.now - asked_at);
    }
    assert_eq!(
        resumed_after,
        [0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000],
        "the first refusal is retried at once (an expired token, refreshed), then ever later"
    );
    // An answer that is not a 401 ends the streak: the next refusal is retried at once.
    r.ok("a", 9);
    r.settle();
    r.submit(ordered("b", &["2"]));
    r.settle();
    r.finish("b", 1, Err(AttemptError::unauthorized("401")));
    r.feed(Event::Credentials);
    r.settle();
    assert_eq!(r.called().iter().filter(|c| **c == "b").count(), 2);
}

// A token expires with eight calls in flight: eight 401s, but one refusal of one token. Fresh
// credentials resume at once (the streak counted eight and waited a minute).
#[test]
fn the_calls_in_flight_under_one_expired_token_count_as_one_refusal() {
    let mut r = Rig::new(ExecutorConfig::default());
    let ids: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        r.submit(ordered(id, &[&i.to_string()]));
    }
    r.settle();
    assert_eq!(r.called().len(), 8);
    r.now = 1_000;
    for id in &ids {
        r.finish(id, 1, Err(AttemptError::unauthorized("401")));
    }
    assert!(r.exec.is_paused());
    r.feed(Event::Credentials);
    r.settle();
    assert!(!r.exec.is_paused(), "resumed at once");
    assert_eq!(
        r.called().len(),
        16,
        "each tried again with the fresh token"
    );
    // The fresh token refused too: that is the second refusal in a row, a second's wait.
    r.now = 2_000;
    for id in &ids {
        r.finish(id, 2, Err(AttemptError::unauthorized("401")));
    }
    r.feed(Event::Credentials);
    r.settle();
    assert!(r.exec.is_paused());
    assert_eq!(r.timer, Some(3_000));
}

#[test]
fn an_outbox_that_needs_credentials_calls_nothing_before_they_come() {
    let config = ExecutorConfig {
        credentials: true,
        ..ExecutorConfig::default()
    };
    let mut r = Rig::new(config);
    assert_eq!(credentials_asked(&r), 1, "asked when the term starts");
    r.submit(ordered("a", &["1"]));
    r.settle();
    assert!(r.called().is_empty());
    assert_eq!(r.state("a"), Some(TransactionState::Pending));
    r.feed(Event::Credentials);
    r.settle();
    assert_eq!(r.called(), vec!["a"]);
}

fn sign_out(r: &mut Rig, discard: bool) -> Response {
    r.feed(Event::Request {
        from: tab(),
        req: 9,
        op: Request::SignOut { discard },
    });
    r.settle();
    r.sent
        .iter()
        .find_map(|(_, m)| match m {
            Message::Response { req: 9, result } => Some(result.clone()),
            _ => None,
        })
        .expect("an answer")
}

#[test]
fn signing_out_and_discarding_deletes_everything_and_stops_calling() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("b", &["1"]));
    r.settle();
    r.finish("a", 1, Err(AttemptError::non_retriable("422")));
    r.settle();
    let answer = sign_out(&mut r, true);
    assert_eq!(
        answer,
        Response::SignedOut {
            pending: 0,
            dead_letters: 2,
            discarded: 2
        },
        "a failed, b failed as its dependent: two dead letters"
    );
    assert!(r.exec.transactions().is_empty());
    assert!(r.store.transactions().is_empty(), "gone from storage too");
    assert!(r
        .sent
        .iter()
        .any(|(to, m)| to.is_none() && matches!(m, Message::SignedOut { .. })));
    assert!(r.other.iter().any(|c| matches!(c, Command::SignedOut)));
}

#[test]
fn signing_out_and_keeping_leaves_the_outbox_for_the_next_sign_in() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.finish("a", 1, Err(AttemptError::retriable("503")));
    r.settle();
    let answer = sign_out(&mut r, false);
    assert_eq!(
        answer,
        Response::SignedOut {
            pending: 1,
            dead_letters: 0,
            discarded: 0
        }
    );
    // Nothing more is sent for the signed-out user, whatever happens.
    let calls = r.calls.len();
    r.now += 120_000;
    r.feed(Event::TimerFired);
    r.feed(Event::Credentials);
    r.feed(Event::NotifyOnline);
    r.settle();
    assert_eq!(r.calls.len(), calls);
    assert_eq!(r.store.transactions().len(), 1, "kept in storage");
}

#[test]
fn a_tombstone_lingers_so_a_new_submit_is_written_without_it_and_then_is_written_on_its_own() {
    let linger = DEFAULT_SETTLE_LINGER_MS;
    let mut r = Rig::lingering(ExecutorConfig::default(), MemOutboxStore::new());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.now = 10;
    r.answered_ok("a", 1);
    assert!(r.writes.is_empty(), "the tombstone waits");
    assert_eq!(r.timer, Some(10 + linger));
    let completed_told = |r: &Rig| {
        r.sent.iter().any(|(_, m)| {
            matches!(m, Message::State { txs, .. } if txs.iter().any(|t| t.id.as_str() == "a" && t.state == TransactionState::Completed))
        })
    };
    // A submit meanwhile goes out at once, without the tombstone.
    r.submit(ordered("b", &["2"]));
    let batch = r.writes.front().cloned().expect("b's write");
    assert!(batch.puts.iter().any(|t| t.id.as_str() == "b"));
    assert!(batch.completed.is_empty());
    r.settle();
    assert!(r.durable_acks().contains(&"b".into()));
    assert!(!r.store.is_completed(&"a".into()));
    assert!(!completed_told(&r), "completed is told only once stored");
    // At the deadline the tombstone is written on its own, and then told.
    r.now = 10 + linger;
    r.feed(Event::TimerFired);
    let batch = r.writes.front().cloned().expect("the tombstone's write");
    assert!(batch.puts.is_empty());
    assert_eq!(batch.completed.len(), 1);
    r.settle();
    assert!(r.store.is_completed(&"a".into()));
    assert!(completed_told(&r));
}

#[test]
fn a_write_after_the_linger_takes_waiting_tombstones_along() {
    let linger = DEFAULT_SETTLE_LINGER_MS;
    let mut r = Rig::lingering(ExecutorConfig::default(), MemOutboxStore::new());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.answered_ok("a", 1);
    assert!(r.writes.is_empty());
    // The timer is late (a busy thread): the next submit carries the tombstone.
    r.now = linger + 1;
    r.submit(ordered("b", &["2"]));
    let batch = r.writes.front().cloned().expect("a write");
    assert_eq!(batch.puts.len(), 1);
    assert_eq!(batch.completed.len(), 1);
    r.settle();
    assert!(r.store.is_completed(&"a".into()));
}

#[test]
fn the_next_in_line_on_a_key_is_stored_only_with_the_tombstone_of_the_one_before() {
    let mut r = Rig::lingering(ExecutorConfig::default(), MemOutboxStore::new());
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("b", &["1"]));
    r.settle();
    assert_eq!(r.called(), vec!["a"]);
    r.answered_ok("a", 1);
    // b's attempt record goes out at once, and a's tombstone with it: stored alone, a new
    // leader would find a unfinished and run it again after b.
    let batch = r.writes.front().cloned().expect("b's attempt record");
    assert!(batch.puts.iter().any(|t| t.id.as_str() == "b"));
    assert_eq!(batch.completed.len(), 1);
    r.settle();
    assert_eq!(r.called(), vec!["a", "b"]);
}

#[test]
fn a_day_offline_keeps_each_record_the_same_size_and_the_backoff_at_its_cap() {
    let mut r = Rig::new(ExecutorConfig::default());
    for i in 0..3 {
        r.submit(ordered(&format!("t{i}"), &[&format!("k{i}")]));
    }
    r.settle();
    let size = |r: &Rig| serde_json::to_string(r.exec.get(&"t0".into()).unwrap()).map(|s| s.len());
    let mut after_an_hour = None;
    let mut calls = 0u32;
    let day = 24 * 3600 * 1000;
    while r.now < day {
        for (id, attempt) in std::mem::take(&mut r.calls) {
            calls += 1;
            r.finish(id.as_str(), attempt, Err(AttemptError::network("offline")));
        }
        r.now = r.timer.filter(|t| *t > r.now).unwrap_or(r.now + 1000);
        r.feed(Event::TimerFired);
        r.settle();
        if after_an_hour.is_none() && r.now >= 3600 * 1000 {
            after_an_hour = Some(size(&r).unwrap());
        }
    }
    for (id, attempt) in std::mem::take(&mut r.calls) {
        r.finish(id.as_str(), attempt, Err(AttemptError::network("offline")));
    }
    let t = r.exec.get(&"t0".into()).unwrap();
    assert!(
        t.attempt_count() > 1000,
        "retried all day: {}",
        t.attempt_count()
    );
    assert_eq!(t.attempts.len(), ATTEMPTS_KEPT, "only the latest listed");
    let n = t.attempt_count();
    assert_eq!((t.counted_attempts(), t.backoff_failures()), (0, n));
    // At the cap (60 s, up to 30 % more), about one attempt a minute each: the folded ones
    // still lengthen the backoff.
    assert!(calls < 3 * 24 * 60, "{calls} attempts in a day");
    let (hour, end) = (after_an_hour.unwrap(), size(&r).unwrap());
    // Only its numbers get longer (~2.9 kB after an hour; every attempt listed, it was ~200 kB
    // after a day).
    assert!(
        end < hour * 6 / 5,
        "the record stopped growing: {hour} bytes after an hour, {end} after a day"
    );
}

#[test]
fn a_leader_leading_for_days_keeps_completions_only_as_long_as_storage_does() {
    let mut r = Rig::new(ExecutorConfig::default());
    r.submit(ordered("a", &["1"]));
    r.settle();
    r.ok("a", 1);
    assert!(r.exec.tombstones.contains(&"a".into()));
    // A resend of "a" the next minute is answered, not run again.
    r.now = 60_000;
    r.submit(ordered("a", &["1"]));
    r.settle();
    assert_eq!(r.called(), vec!["a"], "not called twice");
    // Two days later the store has let its tombstone go, and so has the leader.
    r.now = 2 * TOMBSTONE_TTL_MS;
    r.submit(ordered("b", &["2"]));
    r.settle();
    r.ok("b", 1);
    assert!(!r.exec.tombstones.contains(&"a".into()));
    assert!(r.exec.tombstones.contains(&"b".into()));
}
