//! Functions that batch: `max_concurrency` counts requests, each carrying up to `max_batch`
//! transactions whose attempts were recorded in the same write.

use super::*;

/// A configuration in which the tests' function (`sync`) batches.
fn batching(max_concurrency: usize, max_batch: usize) -> ExecutorConfig {
    ExecutorConfig {
        max_concurrency,
        max_batch,
        batching: ["sync".to_owned()].into(),
        ..ExecutorConfig::default()
    }
}

/// A rig whose function has been answered once (so it may have requests side by side), with that first
/// call forgotten.
fn answered(max_concurrency: usize, max_batch: usize) -> Rig {
    let mut r = Rig::new(batching(max_concurrency, max_batch));
    r.submit(parallel("hello"));
    r.settle();
    r.ok("hello", 1);
    assert_eq!(r.requests, vec![ids(&["hello"])]);
    r.requests.clear();
    r.calls.clear();
    r
}

fn parallel(id: &str) -> Transaction {
    tx(id, &[id], Strategy::Parallel)
}

fn with_fn(mut t: Transaction, mutation_fn: &str) -> Transaction {
    t.mutation_fn = mutation_fn.to_owned();
    t
}

fn ids(names: &[&str]) -> Vec<TransactionId> {
    names.iter().map(|n| TransactionId::from(*n)).collect()
}

/// Commits the first pending write, and returns how many attempts it recorded.
fn commit_one(r: &mut Rig) -> usize {
    let Some(b) = r.writes.pop_front() else {
        panic!("no write to commit");
    };
    let started = b
        .puts
        .iter()
        .filter(|t| t.state == TransactionState::Persisting)
        .count();
    r.store.write(&b).expect("the in-memory store takes it");
    r.feed(Event::Written { write: b.id });
    started
}

#[test]
fn five_hundred_ready_transactions_start_in_one_write_and_five_requests() {
    let mut r = answered(8, 100);
    r.submit(parallel("first"));
    let names: Vec<String> = (0..500).map(|i| format!("t{i:03}")).collect();
    for n in &names {
        r.submit(parallel(n));
    }
    assert_eq!(r.writes.len(), 1, "the first write is still in flight");
    assert_eq!(commit_one(&mut r), 1);
    assert_eq!(r.requests, vec![ids(&["first"])]);
    assert_eq!(
        commit_one(&mut r),
        500,
        "every first attempt is recorded in the one write that accepts them"
    );
    let sizes: Vec<usize> = r.requests[1..].iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![100; 5], "ceil(500 / 100) requests, full ones");
    let sent: Vec<&TransactionId> = r.requests[1..].iter().flatten().collect();
    let expected: Vec<TransactionId> = names.iter().map(|n| n.as_str().into()).collect();
    assert_eq!(
        sent,
        expected.iter().collect::<Vec<_>>(),
        "in acceptance order"
    );
    assert_eq!(r.exec.stats().in_flight, 501);
    assert!(r.writes.is_empty());
}

#[test]
fn a_request_counts_once_and_frees_its_place_when_its_last_transaction_finishes() {
    let mut r = answered(2, 3);
    for i in 0..8 {
        r.submit(parallel(&format!("t{i}")));
    }
    r.settle();
    assert_eq!(
        r.requests,
        vec![ids(&["t0"]), ids(&["t1", "t2", "t3"])],
        "two requests at most, three transactions each at most"
    );
    let t4 = r
        .exec
        .get(&"t4".into())
        .map(|t| (t.state, t.attempts.len()));
    assert_eq!(t4, Some((TransactionState::Pending, 0)), "no room for t4");
    r.ok("t1", 1);
    r.ok("t2", 1);
    assert_eq!(r.requests.len(), 2, "t3 still holds its request's place");
    r.ok("t3", 1);
    assert_eq!(r.requests[2], ids(&["t4", "t5", "t6"]));
    r.ok("t0", 1);
    assert_eq!(r.requests[3], ids(&["t7"]));
    assert_eq!(r.exec.stats().in_flight, 4);
}

#[test]
fn a_function_that_does_not_batch_is_still_limited_per_transaction() {
    let mut r = Rig::new(ExecutorConfig {
        batching: ["elsewhere".to_owned()].into(),
        ..batching(2, 100)
    });
    for i in 0..5 {
        r.submit(parallel(&format!("t{i}")));
    }
    r.settle();
    assert_eq!(r.called(), vec!["t0", "t1"]);
    assert!(r.requests.is_empty(), "no batch request for `sync`");
    r.ok("t0", 1);
    assert_eq!(r.called(), vec!["t0", "t1", "t2"]);
}

#[test]
fn calls_and_requests_share_max_concurrency() {
    let mut r = answered(2, 100);
    for i in 0..3 {
        r.submit(with_fn(parallel(&format!("p{i}")), "plain"));
    }
    for i in 0..3 {
        r.submit(parallel(&format!("b{i}")));
    }
    r.settle();
    assert_eq!(r.called(), vec!["p0", "p1"], "two calls: no room for more");
    r.ok("p0", 1);
    assert_eq!(r.called(), vec!["p0", "p1", "p2"], "acceptance order first");
    assert!(r.requests.is_empty());
    r.ok("p1", 1);
    assert_eq!(
        r.requests,
        vec![ids(&["b0", "b1", "b2"])],
        "one place: one request for the three"
    );
}

#[test]
fn batched_ordered_transactions_keep_per_key_order_and_fail_those_behind() {
    let mut r = answered(8, 100);
    r.submit(ordered("a", &["1"]));
    r.submit(ordered("b", &["1"]));
    r.submit(ordered("c", &["1", "2"]));
    r.submit(ordered("d", &["3"]));
    r.submit(ordered("e", &["3"]));
    r.settle();
    assert_eq!(r.requests, vec![ids(&["a"]), ids(&["d"])]);
    r.ok("a", 1);
    assert_eq!(r.requests[2], ids(&["b"]), "b only once a has succeeded");
    // d and e: a final failure of d fails e, queued behind it, which never runs.
    r.finish("d", 1, Err(AttemptError::non_retriable("422")));
    let e = r.exec.get(&"e".into()).map(|t| (t.state, t.error_code()));
    assert_eq!(
        e,
        Some((TransactionState::Failed, Some(ErrorCode::DependencyFailed)))
    );
    r.ok("b", 1);
    assert_eq!(r.requests[3], ids(&["c"]));
    r.ok("c", 1);
    assert_eq!(r.called(), vec!["a", "d", "b", "c"]);
}

#[test]
fn attempts_recorded_while_a_write_is_in_flight_join_one_request() {
    let mut r = answered(8, 100);
    r.submit(parallel("a"));
    // b, c and d start while a's write is in flight: their records share the next write.
    r.submit(parallel("b"));
    r.submit(parallel("c"));
    r.submit(parallel("d"));
    assert_eq!(commit_one(&mut r), 1);
    assert_eq!(commit_one(&mut r), 3);
    assert_eq!(r.requests, vec![ids(&["a"]), ids(&["b", "c", "d"])]);
    // That write is taken: e goes into a request of its own.
    r.submit(parallel("e"));
    r.settle();
    assert_eq!(r.requests[2], ids(&["e"]));
}

#[test]
fn a_refused_write_frees_the_places_of_the_requests_it_held() {
    let mut r = answered(1, 100);
    r.store.quota_exhausted = true;
    r.submit(parallel("a"));
    r.settle();
    assert_eq!(r.state("a"), None, "refused");
    assert!(r.requests.is_empty());
    r.store.quota_exhausted = false;
    r.submit(parallel("b"));
    r.settle();
    assert_eq!(r.requests, vec![ids(&["b"])], "the one place is free again");
}

#[test]
fn a_retry_after_a_batch_failure_goes_out_in_a_new_request() {
    let mut r = answered(8, 100);
    r.submit(parallel("a"));
    r.submit(parallel("b"));
    r.submit(parallel("c"));
    r.settle();
    assert_eq!(r.requests, vec![ids(&["a"]), ids(&["b", "c"])]);
    r.finish("b", 1, Err(AttemptError::retriable("503")));
    r.finish("c", 1, Err(AttemptError::retriable("503")));
    let due = r.timer.expect("a retry is scheduled");
    r.now = due.max(r.now) + 5000;
    r.feed(Event::TimerFired);
    r.settle();
    assert_eq!(r.requests[2], ids(&["b", "c"]));
    assert_eq!(r.calls[3..], [("b".into(), 2), ("c".into(), 2)]);
}

#[test]
fn after_an_attempt_gets_no_answer_one_probe_goes_alone_until_one_is_answered() {
    let mut r = answered(2, 100);
    r.submit(parallel("a"));
    r.settle();
    r.finish("a", 1, Err(AttemptError::network("connection refused")));
    for n in ["b", "c", "d", "e"] {
        r.submit(parallel(n));
    }
    r.settle();
    assert_eq!(r.requests.len(), 1, "offline: nothing more starts at once");
    // At the probe time, one transaction goes, alone.
    r.now = r.timer.expect("the probe is timed");
    r.feed(Event::TimerFired);
    r.settle();
    assert_eq!(r.requests.len(), 2);
    assert_eq!(r.requests[1].len(), 1, "one probe, alone: {:?}", r.requests);
    let probe = r.requests[1][0].clone();
    // A server answer, even a refusal, shows it is reachable again: the rest go together.
    r.finish(probe.as_str(), 1, Err(AttemptError::retriable("503")));
    assert_eq!(r.requests.len(), 3, "{:?}", r.requests);
    assert!(
        r.requests[2].len() >= 3,
        "one request for the rest: {:?}",
        r.requests
    );
}

/// A store whose last leader could not reach the server: its first attempt got no answer.
fn left_unreachable(config: ExecutorConfig) -> MemOutboxStore {
    let mut r = Rig::new(config);
    r.submit(parallel("first"));
    r.settle();
    r.finish("first", 1, Err(AttemptError::network("connection refused")));
    // The change rides along with the next write.
    r.submit(parallel("second"));
    let b = r.writes.front().cloned().expect("second's write");
    assert_eq!(b.reachable, Some(false));
    r.settle();
    r.store
}

#[test]
fn a_new_leader_starts_from_where_the_last_one_left_the_servers_reachability() {
    let store = left_unreachable(batching(4, 100));
    assert!(store.clone().begin_leadership(0).unreachable);
    // It probes first: one transaction, alone; the rest wait for an answer.
    let mut r = Rig::with_store(batching(4, 100), store);
    for n in ["a", "b", "c"] {
        r.submit(parallel(n));
    }
    r.settle();
    assert_eq!(r.requests.len(), 1, "one probe: {:?}", r.requests);
    assert_eq!(r.requests[0].len(), 1, "alone: {:?}", r.requests);
    let (probe, attempt) = r.calls.last().cloned().expect("the probe's call");
    r.ok(probe.as_str(), attempt);
    assert_eq!(
        r.requests[1..].iter().map(Vec::len).sum::<usize>(),
        4,
        "then the rest (a, b, c and the two left, less the probe), together: {:?}",
        r.requests
    );
    // The answer was stored: the leader after it starts with requests side by side.
    let mut next = Rig::with_store(batching(4, 2), r.store.clone());
    assert!(!r.store.clone().begin_leadership(0).unreachable);
    for n in ["x", "y", "z"] {
        next.submit(parallel(n));
    }
    next.settle();
    assert!(
        next.requests.len() >= 2,
        "not held back: {:?}",
        next.requests
    );
}

#[test]
fn a_burst_handled_together_goes_in_one_write_and_fills_requests_up_to_max_batch() {
    let mut r = Rig::new(batching(4, 3));
    let names = ["a", "b", "c", "d", "e"];
    let events = Event::submitted(
        &tab(),
        r.exec.epoch(),
        names.iter().map(|n| parallel(n)).collect(),
    );
    for c in r.exec.handle_all(r.now, events) {
        if let Command::Write(b) = c {
            r.writes.push_back(b);
        }
    }
    assert_eq!(r.writes.len(), 1, "one write for the burst");
    r.settle();
    assert_eq!(r.requests, [ids(&["a", "b", "c"]), ids(&["d", "e"])]);
}

fn finished(names: &[&str], outcome: impl Fn(&str) -> AttemptOutcome) -> Event {
    Event::AttemptsFinished {
        finished: names
            .iter()
            .map(|n| FinishedAttempt {
                id: (*n).into(),
                attempt: 1,
                outcome: outcome(n),
            })
            .collect(),
    }
}

#[test]
fn a_batch_answer_fed_as_one_event_is_stored_in_one_write_and_broadcast_in_one_message() {
    let mut r = answered(8, 100);
    let names: Vec<String> = (0..60).map(|i| format!("t{i:02}")).collect();
    for n in &names {
        r.submit(parallel(n));
    }
    r.settle();
    assert_eq!(
        r.requests.len(),
        2,
        "t00, then the 59 started during its write"
    );
    let batch: Vec<&str> = names[1..].iter().map(String::as_str).collect();
    r.sent.clear();
    r.feed(finished(&batch, |_| Ok(AttemptSuccess::default())));
    assert_eq!(r.writes.len(), 1);
    assert_eq!(
        r.writes[0].completed.len(),
        59,
        "one write for the whole answer"
    );
    r.settle();
    let states: Vec<usize> = r
        .sent
        .iter()
        .filter_map(|(_, m)| match m {
            Message::State { txs, .. } => Some(txs.len()),
            _ => None,
        })
        .collect();
    assert_eq!(states, vec![59], "one broadcast");
    assert!(batch.iter().all(|n| r.store.is_completed(&(*n).into())));
}

#[test]
fn a_batch_that_got_no_answer_is_broadcast_in_one_message_and_stored_with_the_next_write() {
    let mut r = answered(8, 100);
    for n in ["a", "b", "c", "d"] {
        r.submit(parallel(n));
    }
    r.settle();
    r.sent.clear();
    r.feed(finished(&["b", "c", "d"], |_| {
        Err(AttemptError::network("connection reset"))
    }));
    assert!(r.writes.is_empty(), "nothing waits for these records");
    let states: Vec<Vec<TransactionId>> = r
        .sent
        .iter()
        .filter_map(|(_, m)| match m {
            Message::State { txs, .. } => Some(txs.iter().map(|t| t.id.clone()).collect()),
            _ => None,
        })
        .collect();
    assert_eq!(states, vec![ids(&["b", "c", "d"])]);
    r.ok("a", 1);
    // a's success brings their retries forward: stored with it, the failure and the retry.
    let stored = r.store.transactions();
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|t| t.attempts.len() == 2
        && t.attempts[0].error.as_ref().map(|e| e.code) == Some(ErrorCode::Network)));
}

#[test]
fn a_fenced_call_in_a_batch_answer_stops_the_leader_before_the_rest() {
    let mut r = answered(8, 100);
    for n in ["a", "b", "c"] {
        r.submit(parallel(n));
    }
    r.settle();
    r.feed(finished(&["b", "c"], |n| {
        if n == "b" {
            Err(AttemptError::fenced("a newer leader"))
        } else {
            Ok(AttemptSuccess::default())
        }
    }));
    assert!(!r.exec.is_leading());
    assert!(r.writes.is_empty());
    assert_eq!(
        r.state("c"),
        Some(TransactionState::Persisting),
        "left for the next leader"
    );
}

#[test]
fn once_the_server_answers_requests_go_side_by_side_up_to_max_concurrency() {
    let mut r = Rig::with_store(batching(3, 100), left_unreachable(batching(3, 100)));
    r.submit(parallel("a"));
    r.settle();
    assert_eq!(r.requests.len(), 1, "a probe");
    let (probe, attempt) = r.calls.last().cloned().expect("the probe's call");
    r.ok(probe.as_str(), attempt);
    assert_eq!(
        r.requests.len(),
        2,
        "the rest in one request: {:?}",
        r.requests
    );
    // That request runs: two more places.
    for n in ["d", "e", "f"] {
        r.submit(parallel(n));
        r.settle();
    }
    assert_eq!(r.requests[2..], [ids(&["d"]), ids(&["e"])]);
    let f = r.exec.get(&"f".into()).map(|t| t.attempts.len());
    assert_eq!(f, Some(0), "then none");
}
