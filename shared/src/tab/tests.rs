use super::*;
use crate::model::{ErrorCode, PendingMutation, Strategy};
use serde_json::json;

const SCOPE: &str = "todos";

fn me() -> TabCore {
    TabCore::new(ClientId("me".into()), SCOPE)
}

fn from_leader(body: Message) -> Envelope {
    Envelope::broadcast(SCOPE, &ClientId("leader".into()), body)
}

/// Reads a message the way the client does, every claim of leadership verified as true.
fn hear(t: &mut TabCore, now: Millis, env: &Envelope) -> Vec<TabOutput> {
    let mut out = Vec::new();
    for o in t.receive(now, env.clone()) {
        match o {
            TabOutput::VerifyLeader { epoch, from } => {
                out.extend(t.leader_verified(now, epoch, from));
            }
            o => out.push(o),
        }
    }
    out
}

fn to_me(body: Message) -> Envelope {
    Envelope::reply(
        SCOPE,
        &ClientId("leader".into()),
        &ClientId("me".into()),
        body,
    )
}

fn insert(id: &str, key: &str) -> Transaction {
    Transaction::new(
        id.into(),
        "sync",
        Strategy::Ordered,
        vec![PendingMutation::insert("todos", key, json!({ "id": key }))],
        0,
    )
}

fn with_state(mut tx: Transaction, state: TransactionState) -> Transaction {
    tx.state = state;
    tx.seq = 1;
    tx
}

fn sent(out: &[TabOutput]) -> Vec<&Message> {
    out.iter()
        .filter_map(|o| match o {
            TabOutput::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

#[test]
fn a_submit_shows_at_once_and_waits_for_a_leader_to_be_sent() {
    let mut t = me();
    assert_eq!(sent(&t.start()), vec![&Message::Hello]);
    let out = t.submit(insert("a", "1"));
    assert!(sent(&out).is_empty(), "no leader known yet");
    assert_eq!(t.view().get("todos", "1"), Some(&json!({"id": "1"})));
    let out = hear(&mut t, 5, &from_leader(Message::Leader { epoch: Epoch(3) }));
    assert!(out.contains(&TabOutput::LeaderChanged(Epoch(3))));
    let msgs = sent(&out);
    assert_eq!(msgs[0], &Message::SnapshotRequest);
    assert!(
        matches!(msgs[1], Message::Submit { epoch: Epoch(3), txs } if txs[0].id.as_str() == "a")
    );
    let out = t.submit(insert("b", "2"));
    assert!(matches!(
        sent(&out)[0],
        Message::Submit {
            epoch: Epoch(3),
            ..
        }
    ));
    let out = hear(
        &mut t,
        6,
        &from_leader(Message::Durable {
            ids: vec!["a".into(), "b".into()],
            epoch: Epoch(3),
        }),
    );
    assert_eq!(
        out,
        vec![
            TabOutput::Durable("a".into()),
            TabOutput::Durable("b".into())
        ]
    );
    assert!(t.is_durable(&"a".into()));
    assert!(t.unacknowledged().is_empty());
}

#[test]
fn a_new_leader_gets_every_unsettled_own_transaction_again_in_order() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    for (id, k) in [("a", "1"), ("b", "2"), ("c", "3")] {
        t.submit(insert(id, k));
    }
    hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![with_state(insert("b", "2"), TransactionState::Completed)],
        }),
    );
    assert_eq!(
        t.own_unsettled(),
        2,
        "the settled one left the middle of the order"
    );
    let out = hear(&mut t, 2, &from_leader(Message::Leader { epoch: Epoch(2) }));
    let resent: Vec<Vec<&str>> = sent(&out)
        .into_iter()
        .filter_map(|m| match m {
            Message::Submit {
                epoch: Epoch(2),
                txs,
            } => Some(txs.iter().map(|t| t.id.as_str()).collect()),
            _ => None,
        })
        .collect();
    assert_eq!(resent, vec![vec!["a", "c"]], "one message, in order");
    // The same leader again changes nothing.
    assert!(sent(&hear(
        &mut t,
        3,
        &from_leader(Message::Heartbeat {
            epoch: Epoch(2),
            pending: 0
        })
    ))
    .is_empty());
}

#[test]
fn completion_keeps_the_row_and_failure_rolls_it_back() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    t.submit(insert("b", "2"));
    let out = hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![with_state(insert("a", "1"), TransactionState::Persisting)],
        }),
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, TabOutput::Durable(id) if id.as_str() == "a")),
        "a state from the leader means durable"
    );
    hear(
        &mut t,
        2,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![with_state(insert("a", "1"), TransactionState::Completed)],
        }),
    );
    assert_eq!(
        t.view().get("todos", "1"),
        Some(&json!({"id": "1"})),
        "no flicker"
    );
    assert_eq!(t.view().synced("todos", "1"), Some(&json!({"id": "1"})));
    let mut failed = with_state(insert("b", "2"), TransactionState::Failed);
    failed.error = Some(TxError::new(ErrorCode::NonRetriable, "400"));
    let out = hear(
        &mut t,
        3,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![failed],
        }),
    );
    assert_eq!(t.view().get("todos", "2"), None, "rolled back");
    assert!(out.iter().any(|o| matches!(o, TabOutput::RowsChanged(r) if r == &vec![("todos".to_owned(), "2".to_owned())])));
    assert_eq!(
        t.get(&"b".into()).map(|x| x.state),
        Some(TransactionState::Failed)
    );
}

#[test]
fn another_tabs_pending_changes_show_and_roll_back() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    let theirs = with_state(insert("x", "9"), TransactionState::Queued);
    hear(
        &mut t,
        1,
        &from_leader(Message::Snapshot {
            epoch: Epoch(1),
            transactions: vec![theirs.clone()],
            more: false,
            removed: vec![],
        }),
    );
    assert_eq!(t.view().get("todos", "9"), Some(&json!({"id": "9"})));
    hear(
        &mut t,
        2,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![with_state(theirs, TransactionState::Failed)],
        }),
    );
    assert_eq!(t.view().get("todos", "9"), None);
}

#[test]
fn a_deposed_leader_and_other_tabs_mail_are_ignored() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(2) }));
    t.submit(insert("a", "1"));
    let stale = from_leader(Message::State {
        epoch: Epoch(1),
        txs: vec![with_state(insert("a", "1"), TransactionState::Failed)],
    });
    assert!(hear(&mut t, 1, &stale).is_empty());
    assert_eq!(t.view().get("todos", "1"), Some(&json!({"id": "1"})));
    let for_other = Envelope::reply(
        SCOPE,
        &ClientId("leader".into()),
        &ClientId("other".into()),
        Message::Durable {
            ids: vec!["a".into()],
            epoch: Epoch(2),
        },
    );
    assert!(hear(&mut t, 2, &for_other).is_empty());
    let mine = Envelope::broadcast(
        SCOPE,
        &ClientId("me".into()),
        Message::Leader { epoch: Epoch(9) },
    );
    assert!(hear(&mut t, 3, &mine).is_empty());
    assert_eq!(t.leader(), Some(Epoch(2)));
}

#[test]
fn a_rejected_submit_fails_and_rolls_back() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let out = hear(
        &mut t,
        1,
        &to_me(Message::Rejected {
            id: "a".into(),
            error: TxError::new(ErrorCode::QuotaExceeded, "full"),
        }),
    );
    assert_eq!(t.view().get("todos", "1"), None);
    assert!(out.iter().any(|o| matches!(o, TabOutput::StateChanged(tx) if tx.error_code() == Some(ErrorCode::QuotaExceeded))));
    assert!(!t.is_durable(&"a".into()));
}

#[test]
fn externally_synced_collections_wait_for_their_sync() {
    let mut t = me();
    t.set_externally_synced("todos");
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![with_state(insert("a", "1"), TransactionState::Completed)],
        }),
    );
    assert_eq!(t.view().synced("todos", "1"), None);
    t.set_synced("todos", "1", Some(json!({"id": "1", "server": true})));
    assert_eq!(
        t.view().get("todos", "1"),
        Some(&json!({"id": "1", "server": true}))
    );
}

#[test]
fn responses_to_me_and_diagnostics_reach_the_app() {
    use crate::protocol::Response;
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    let to_me = Envelope::reply(
        SCOPE,
        &ClientId("leader".into()),
        &ClientId("me".into()),
        Message::Response {
            req: 7,
            result: Response::Done,
        },
    );
    assert_eq!(
        hear(&mut t, 0, &to_me),
        vec![TabOutput::Response {
            req: 7,
            result: Response::Done
        }]
    );
    let out = hear(
        &mut t,
        1,
        &from_leader(Message::Diagnostic {
            code: ErrorCode::CorruptRecord,
            message: "quarantined".into(),
        }),
    );
    assert!(matches!(
        &out[..],
        [TabOutput::Diagnostic {
            code: ErrorCode::CorruptRecord,
            ..
        }]
    ));
}

#[test]
fn heartbeats_tell_the_outbox_size_and_a_resignation_is_reported() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(2) }));
    hear(
        &mut t,
        1,
        &from_leader(Message::Heartbeat {
            epoch: Epoch(2),
            pending: 12,
        }),
    );
    assert_eq!(t.leader_pending(), Some(12));
    let out = hear(&mut t, 2, &from_leader(Message::Resign { epoch: Epoch(2) }));
    assert_eq!(out, vec![TabOutput::LeaderResigned(Epoch(2))]);
}

#[test]
fn a_leader_silent_or_resigned_for_the_timeout_is_gone_and_a_slow_beat_waits_longer() {
    let beat = || {
        from_leader(Message::Heartbeat {
            epoch: Epoch(2),
            pending: 0,
        })
    };
    let mut t = me();
    assert!(
        !t.leader_gone(10_000, 3_000),
        "no leader yet: connecting decides"
    );
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(2) }));
    for at in [1_000, 2_000, 3_000] {
        hear(&mut t, at, &beat());
        assert!(!t.leader_gone(at + 2_999, 3_000));
    }
    assert!(t.leader_gone(6_000, 3_000), "silent for the timeout");
    // A leader that beats every 5 s is given three beats.
    hear(&mut t, 8_000, &beat());
    hear(&mut t, 13_000, &beat());
    assert!(!t.leader_gone(27_999, 3_000));
    assert!(t.leader_gone(28_000, 3_000));
    // A resignation: gone once no successor has spoken for the timeout.
    hear(
        &mut t,
        29_000,
        &from_leader(Message::Resign { epoch: Epoch(2) }),
    );
    assert!(!t.leader_gone(29_500, 3_000));
    assert!(t.leader_gone(32_000, 3_000));
    hear(
        &mut t,
        31_000,
        &from_leader(Message::Leader { epoch: Epoch(3) }),
    );
    assert!(!t.leader_gone(32_000, 3_000), "a successor spoke");
    // The tab's own executor gone and the leader forgotten: nothing to wait for.
    t.forget_leader();
    assert!(!t.leader_gone(100_000, 3_000));
}

// Online-only, the tab's own executor (epoch 0) failed a transaction for good; then a leader
// appeared. That leader never had it: removing it must not ask the leader (which answered "no
// transaction in the outbox", and it stayed listed until a reload).
#[test]
fn a_dead_letter_of_the_tabs_own_executor_is_the_tabs_to_dismiss_after_the_hand_over() {
    let own = ClientId("tab-executor".into());
    let mut t = me();
    t.receive(
        0,
        Envelope::broadcast(SCOPE, &own, Message::Leader { epoch: Epoch(0) }),
    );
    t.leader_verified(0, Epoch(0), own.clone());
    let tx = insert("a", "1");
    t.submit(tx.clone());
    let said = |body| Envelope::broadcast(SCOPE, &own, body);
    t.receive(
        1,
        said(Message::Durable {
            ids: vec!["a".into()],
            epoch: Epoch(0),
        }),
    );
    let mut failed = with_state(tx, TransactionState::Failed);
    failed.error = Some(TxError::new(ErrorCode::NonRetriable, "422"));
    t.receive(
        2,
        said(Message::State {
            epoch: Epoch(0),
            txs: vec![failed],
        }),
    );
    assert!(!t.is_local_failure(&"a".into()), "its executor holds it");
    // The hand-over to a leader.
    t.forget_leader();
    hear(&mut t, 3, &from_leader(Message::Leader { epoch: Epoch(3) }));
    assert!(t.is_local_failure(&"a".into()));
    t.removed(&"a".into());
    assert_eq!(t.transactions().count(), 0);
    // A leader's own dead letter stays the leader's.
    let mut theirs = with_state(insert("b", "2"), TransactionState::Failed);
    theirs.epoch = Epoch(3);
    t.submit(insert("b", "2"));
    hear(
        &mut t,
        4,
        &from_leader(Message::Durable {
            ids: vec!["b".into()],
            epoch: Epoch(3),
        }),
    );
    hear(
        &mut t,
        5,
        &from_leader(Message::State {
            epoch: Epoch(3),
            txs: vec![theirs],
        }),
    );
    t.forget_leader();
    assert!(!t.is_local_failure(&"b".into()));
}

// The same dead letter, retried by the app after the hand-over: the leader never had it (asked
// to retry it, it answered "no transaction in the outbox"), so the tab submits it to the leader
// again, as the same transaction with a fresh budget.
#[test]
fn a_dead_letter_of_the_tabs_own_executor_retried_after_the_hand_over_is_submitted_to_the_leader() {
    let own = ClientId("tab-executor".into());
    let mut t = me();
    let said = |body| Envelope::broadcast(SCOPE, &own, body);
    t.receive(0, said(Message::Leader { epoch: Epoch(0) }));
    t.leader_verified(0, Epoch(0), own.clone());
    t.submit(insert("a", "1"));
    t.receive(
        1,
        said(Message::Durable {
            ids: vec!["a".into()],
            epoch: Epoch(0),
        }),
    );
    let mut failed = with_state(insert("a", "1"), TransactionState::Failed);
    failed.error = Some(TxError::new(ErrorCode::NonRetriable, "422"));
    failed.attempts = vec![crate::model::Attempt {
        id: "a#1".into(),
        number: 1,
        started_at: 1,
        completed_at: Some(2),
        error: failed.error.clone(),
        retry_scheduled_for: None,
        epoch: Epoch(0),
    }];
    failed.budget_start = 0;
    t.receive(
        2,
        said(Message::State {
            epoch: Epoch(0),
            txs: vec![failed],
        }),
    );
    let id = TransactionId::from("a");
    assert!(
        t.retry_local_failure(&id, 3).is_none(),
        "its executor holds it: the executor retries it"
    );
    assert_eq!(t.view().get("todos", "1"), None, "rolled back");
    t.forget_leader();
    hear(&mut t, 4, &from_leader(Message::Leader { epoch: Epoch(3) }));
    let out = t.retry_local_failure(&id, 5).expect("the tab's to retry");
    let [Message::Submit { epoch, txs }] = &sent(&out)[..] else {
        panic!("one submit: {out:?}")
    };
    assert_eq!(*epoch, Epoch(3));
    assert_eq!(txs.len(), 1);
    let again = &txs[0];
    assert_eq!(
        again.id, id,
        "the same transaction: the same idempotency key"
    );
    assert_eq!(again.state, TransactionState::Pending);
    assert_eq!(again.error, None);
    assert_eq!(again.attempts.len(), 1, "its attempts stay listed");
    assert_eq!(again.budget_start, 1, "a fresh retry budget");
    assert!(out.iter().any(|o| matches!(o,
        TabOutput::StateChanged(tx) if tx.id == id && tx.state == TransactionState::Pending)));
    assert_eq!(
        t.view().get("todos", "1"),
        Some(&json!({"id": "1"})),
        "shows again"
    );
    assert_eq!(t.own_unsettled(), 1, "drain() waits for it");
    assert!(!t.is_local_failure(&id));
    assert!(
        t.retry_local_failure(&id, 6).is_none(),
        "not a dead letter now"
    );
    // The leader takes it like any submit.
    let out = hear(
        &mut t,
        7,
        &from_leader(Message::Durable {
            ids: vec!["a".into()],
            epoch: Epoch(3),
        }),
    );
    assert!(out.contains(&TabOutput::Durable(id.clone())));
    let mut done = with_state(insert("a", "1"), TransactionState::Completed);
    done.epoch = Epoch(3);
    hear(
        &mut t,
        8,
        &from_leader(Message::State {
            epoch: Epoch(3),
            txs: vec![done],
        }),
    );
    assert_eq!(t.own_unsettled(), 0);
    assert_eq!(t.view().get("todos", "1"), Some(&json!({"id": "1"})));
    // A leader's own dead letter is the leader's to retry.
    t.submit(insert("b", "2"));
    hear(
        &mut t,
        9,
        &from_leader(Message::Durable {
            ids: vec!["b".into()],
            epoch: Epoch(3),
        }),
    );
    let mut theirs = with_state(insert("b", "2"), TransactionState::Failed);
    theirs.epoch = Epoch(3);
    hear(
        &mut t,
        10,
        &from_leader(Message::State {
            epoch: Epoch(3),
            txs: vec![theirs],
        }),
    );
    assert!(t.retry_local_failure(&"b".into(), 11).is_none());
}

#[test]
fn after_forgetting_the_leader_any_epoch_gets_the_unsettled_transactions_again() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(5) }));
    t.submit(insert("a", "1"));
    t.forget_leader();
    assert_eq!(t.leader(), None);
    let out = hear(&mut t, 1, &from_leader(Message::Leader { epoch: Epoch(1) }));
    assert!(out.contains(&TabOutput::LeaderChanged(Epoch(1))));
    assert!(sent(&out).iter().any(
        |m| matches!(m, Message::Submit { epoch: Epoch(1), txs } if txs[0].id.as_str() == "a")
    ));
    assert_eq!(t.own_unsettled(), 1);
}

#[test]
fn only_settled_transactions_can_be_forgotten() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    assert!(!t.forget(&"a".into()));
    hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![with_state(insert("a", "1"), TransactionState::Completed)],
        }),
    );
    assert_eq!(t.own_unsettled(), 0);
    assert!(t.forget(&"a".into()));
    assert!(t.get(&"a".into()).is_none());
    assert_eq!(t.view().get("todos", "1"), Some(&json!({"id": "1"})));
}

#[test]
fn a_forgotten_transaction_is_not_brought_back_by_late_news_unless_it_lives_again() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let mut failed = with_state(insert("a", "1"), TransactionState::Failed);
    failed.error = Some(TxError::new(ErrorCode::NonRetriable, "no"));
    let state = |tx: Transaction| {
        from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![tx],
        })
    };
    hear(&mut t, 1, &state(failed.clone()));
    assert!(t.forget(&"a".into()), "removed from the outbox by the app");
    assert!(hear(&mut t, 2, &state(failed.clone())).is_empty());
    assert!(t.get(&"a".into()).is_none());
    hear(
        &mut t,
        3,
        &state(with_state(insert("a", "1"), TransactionState::Pending)),
    );
    assert_eq!(
        t.get(&"a".into()).map(|x| x.state),
        Some(TransactionState::Pending),
        "a retried dead letter is news again"
    );
}

#[test]
fn a_completion_the_sync_has_not_shown_yet_keeps_its_overlay_until_it_has() {
    let mut t = me();
    t.set_externally_synced("todos");
    t.synced_to(3);
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let mut done = with_state(insert("a", "1"), TransactionState::Completed);
    done.server_seq = Some(5);
    let out = hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![done],
        }),
    );
    assert_eq!(
        t.get(&"a".into()).map(|x| x.state),
        Some(TransactionState::PersistedAwaitingSync)
    );
    assert!(out.iter().any(|o| matches!(o, TabOutput::StateChanged(tx) if tx.state == TransactionState::PersistedAwaitingSync)));
    assert_eq!(
        t.view().get("todos", "1"),
        Some(&json!({"id": "1"})),
        "no flicker before the sync"
    );
    assert!(t.synced_to(4).is_empty(), "seq 4 does not cover it");
    assert!(t.view().is_pending(&"a".into()));
    t.set_synced("todos", "1", Some(json!({"id": "1", "server": true})));
    let out = t.synced_to(5);
    assert!(out.iter().any(
        |o| matches!(o, TabOutput::StateChanged(tx) if tx.state == TransactionState::Completed)
    ));
    assert!(!t.view().is_pending(&"a".into()));
    assert_eq!(
        t.view().get("todos", "1"),
        Some(&json!({"id": "1", "server": true}))
    );
}

#[test]
fn a_sync_source_that_failed_to_start_leaves_completions_to_keep_their_rows() {
    let mut t = me();
    t.set_externally_synced("todos");
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let mut done = with_state(insert("a", "1"), TransactionState::Completed);
    done.server_seq = Some(5);
    let completed = |tx| {
        from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![tx],
        })
    };
    hear(&mut t, 1, &completed(done));
    assert_eq!(
        t.get(&"a".into()).map(|x| x.state),
        Some(TransactionState::PersistedAwaitingSync),
        "held for the sync"
    );
    // Its setup threw: no sync will ever show it.
    let out = t.sync_source_failed("todos");
    assert!(out.iter().any(
        |o| matches!(o, TabOutput::StateChanged(tx) if tx.state == TransactionState::Completed)
    ));
    assert_eq!(t.own_unsettled(), 0, "drain() is not held up");
    assert!(!t.view().is_pending(&"a".into()));
    assert_eq!(
        t.view().get("todos", "1"),
        Some(&json!({"id": "1"})),
        "its change is in the synced rows"
    );
    // And later completions fold in as for a collection without a sync.
    t.submit(insert("b", "2"));
    hear(
        &mut t,
        2,
        &completed(with_state(insert("b", "2"), TransactionState::Completed)),
    );
    assert_eq!(t.view().get("todos", "2"), Some(&json!({"id": "2"})));
}

#[test]
fn a_sync_that_reports_no_sequence_numbers_is_not_waited_for() {
    let mut t = me();
    t.set_externally_synced("todos");
    // It has reported rows, never a sequence number.
    t.set_synced("todos", "0", Some(json!({"id": "0"})));
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let mut done = with_state(insert("a", "1"), TransactionState::Completed);
    done.server_seq = Some(5);
    hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![done],
        }),
    );
    assert_eq!(
        t.get(&"a".into()).map(|x| x.state),
        Some(TransactionState::Completed)
    );
    assert!(!t.view().is_pending(&"a".into()));
}

#[test]
fn a_claim_of_leadership_is_believed_only_once_verified() {
    let mut t = me();
    t.submit(insert("a", "1"));
    let out = t.receive(0, from_leader(Message::Leader { epoch: Epoch(3) }));
    assert_eq!(
        out,
        vec![TabOutput::VerifyLeader {
            epoch: Epoch(3),
            from: ClientId("leader".into())
        }]
    );
    assert_eq!(t.leader(), None, "not before the proof is checked");
    // Heard again while checking: not asked twice.
    assert!(t
        .receive(
            1,
            from_leader(Message::Heartbeat {
                epoch: Epoch(3),
                pending: 0
            })
        )
        .is_empty());
    let out = t.leader_verified(2, Epoch(3), ClientId("leader".into()));
    assert!(out.contains(&TabOutput::LeaderChanged(Epoch(3))));
    assert!(sent(&out).iter().any(
        |m| matches!(m, Message::Submit { epoch: Epoch(3), txs } if txs[0].id.as_str() == "a")
    ));
    assert_eq!(t.forged(), 0);
}

#[test]
fn a_forged_leader_is_refuted_counted_and_changes_nothing() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(2) }));
    t.submit(insert("a", "1"));
    let forger = ClientId("forger".into());
    let claim = Envelope::broadcast(SCOPE, &forger, Message::Leader { epoch: Epoch(99) });
    let out = t.receive(1, claim.clone());
    assert_eq!(
        out,
        vec![TabOutput::VerifyLeader {
            epoch: Epoch(99),
            from: forger.clone()
        }]
    );
    // Its news while the claim is checked is not taken in.
    let failed = with_state(insert("a", "1"), TransactionState::Failed);
    let forged_state = Envelope::broadcast(
        SCOPE,
        &forger,
        Message::State {
            epoch: Epoch(99),
            txs: vec![failed.clone()],
        },
    );
    assert!(t.receive(2, forged_state.clone()).is_empty());
    t.leader_refuted(Epoch(99), forger.clone());
    assert_eq!(t.forged(), 1);
    // Refuted claims are not checked again, and their messages count as forged.
    assert!(t.receive(3, forged_state.clone()).is_empty());
    assert_eq!(t.forged(), 2);
    // Someone else speaking for the current leader's epoch is not the leader either.
    let impostor = Envelope::broadcast(
        SCOPE,
        &forger,
        Message::State {
            epoch: Epoch(2),
            txs: vec![failed],
        },
    );
    assert!(t.receive(4, impostor.clone()).is_empty());
    let rejected = Envelope::reply(
        SCOPE,
        &forger,
        &ClientId("me".into()),
        Message::Rejected {
            id: "a".into(),
            error: TxError::new(ErrorCode::NonRetriable, "forged"),
        },
    );
    assert!(t.receive(5, rejected.clone()).is_empty());
    assert_eq!(t.forged(), 4);
    assert_eq!(t.leader(), Some(Epoch(2)));
    assert_eq!(
        t.get(&"a".into()).map(|tx| tx.state),
        Some(TransactionState::Pending)
    );
    assert_eq!(t.view().get("todos", "1"), Some(&json!({"id": "1"})));
}

#[test]
fn what_a_new_leader_says_while_its_claim_is_checked_is_taken_in_once_verified() {
    let mut t = me();
    t.submit(insert("a", "1"));
    let leader = ClientId("leader".into());
    t.receive(0, from_leader(Message::Leader { epoch: Epoch(3) }));
    // The new leader starts the attempt at once; the tab is still checking its proof lock.
    let persisting = with_state(insert("a", "1"), TransactionState::Persisting);
    let state = from_leader(Message::State {
        epoch: Epoch(3),
        txs: vec![persisting],
    });
    assert!(
        t.receive(1, state.clone()).is_empty(),
        "not before the proof is checked"
    );
    assert_eq!(
        t.get(&"a".into()).map(|tx| tx.state),
        Some(TransactionState::Pending)
    );
    let out = t.leader_verified(2, Epoch(3), leader);
    assert!(out.iter().any(|o| matches!(
        o,
        TabOutput::StateChanged(tx) if tx.id.as_str() == "a" && tx.state == TransactionState::Persisting
    )));
    assert_eq!(
        t.get(&"a".into()).map(|tx| tx.state),
        Some(TransactionState::Persisting)
    );
    // Asked for a snapshot before the held news is read, which the snapshot then supersedes.
    assert!(sent(&out).contains(&&Message::SnapshotRequest));
    assert!(t.unverified.is_empty());
}

#[test]
fn what_a_claimant_says_is_held_within_bounds_and_dropped_when_refuted() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(2) }));
    t.submit(insert("a", "1"));
    let forger = ClientId("forger".into());
    t.receive(
        1,
        Envelope::broadcast(SCOPE, &forger, Message::Leader { epoch: Epoch(9) }),
    );
    let failed = with_state(insert("a", "1"), TransactionState::Failed);
    let forged_state = Envelope::broadcast(
        SCOPE,
        &forger,
        Message::State {
            epoch: Epoch(9),
            txs: vec![failed],
        },
    );
    for i in 0..(MAX_UNVERIFIED as u64 + 10) {
        assert!(t.receive(2 + i, forged_state.clone()).is_empty());
    }
    let held: usize = t.unverified.values().map(VecDeque::len).sum();
    assert_eq!(held, MAX_UNVERIFIED, "the latest few, no more");
    t.leader_refuted(Epoch(9), forger);
    assert!(t.unverified.is_empty());
    assert_eq!(
        t.get(&"a".into()).map(|tx| tx.state),
        Some(TransactionState::Pending)
    );
}

#[test]
fn a_late_verification_of_an_older_claim_changes_nothing() {
    let mut t = me();
    let a = Envelope::broadcast(
        SCOPE,
        &ClientId("w1".into()),
        Message::Leader { epoch: Epoch(4) },
    );
    let b = Envelope::broadcast(
        SCOPE,
        &ClientId("w2".into()),
        Message::Leader { epoch: Epoch(5) },
    );
    t.receive(0, a.clone());
    t.receive(0, b.clone());
    assert!(t
        .leader_verified(1, Epoch(5), ClientId("w2".into()))
        .contains(&TabOutput::LeaderChanged(Epoch(5))));
    assert!(t
        .leader_verified(2, Epoch(4), ClientId("w1".into()))
        .is_empty());
    assert_eq!(t.leader(), Some(Epoch(5)));
}

#[test]
fn claims_checked_at_once_are_bounded() {
    let mut t = me();
    let mut asked = 0;
    for e in 1..=50 {
        let env = Envelope::broadcast(
            SCOPE,
            &ClientId(format!("f{e}")),
            Message::Leader { epoch: Epoch(e) },
        );
        asked += t
            .receive(0, env.clone())
            .iter()
            .filter(|o| matches!(o, TabOutput::VerifyLeader { .. }))
            .count();
    }
    assert_eq!(asked, MAX_CLAIMS);
}

#[test]
fn a_completion_before_the_sync_has_reported_anything_keeps_its_overlay() {
    let mut t = me();
    t.set_externally_synced("todos");
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let mut done = with_state(insert("a", "1"), TransactionState::Completed);
    done.server_seq = Some(5);
    hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![done],
        }),
    );
    // The sync is still loading (or its server unreachable): the row must not vanish.
    assert_eq!(
        t.get(&"a".into()).map(|x| x.state),
        Some(TransactionState::PersistedAwaitingSync)
    );
    assert_eq!(t.view().get("todos", "1"), Some(&json!({"id": "1"})));
    // It loads, with the row, up to the transaction's sequence number.
    t.set_synced("todos", "1", Some(json!({"id": "1"})));
    t.synced_to(5);
    assert_eq!(
        t.get(&"a".into()).map(|x| x.state),
        Some(TransactionState::Completed)
    );
    assert!(!t.view().is_pending(&"a".into()));
    assert_eq!(t.view().get("todos", "1"), Some(&json!({"id": "1"})));
}

#[test]
fn a_completion_held_for_a_source_that_then_reports_without_sequence_numbers_is_released() {
    let mut t = me();
    t.set_externally_synced("todos");
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    t.submit(insert("b", "2"));
    let completed = |tx: Transaction, seq: u64| {
        let mut done = with_state(tx, TransactionState::Completed);
        done.server_seq = Some(seq);
        from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![done],
        })
    };
    hear(&mut t, 1, &completed(insert("a", "1"), 5));
    assert_eq!(
        t.get(&"a".into()).map(|x| x.state),
        Some(TransactionState::PersistedAwaitingSync)
    );
    // The source's first report has rows and no sequence number: it never gives one, so
    // nothing is waited for, including what was held until it reported.
    t.set_synced("todos", "1", Some(json!({"id": "1", "server": true})));
    let out = t.synced_without_seq();
    assert!(out.iter().any(
        |o| matches!(o, TabOutput::StateChanged(tx) if tx.id.as_str() == "a" && tx.state == TransactionState::Completed)
    ));
    assert!(!t.view().is_pending(&"a".into()));
    // A source that did give a sequence number is still waited for after a report without one.
    t.synced_to(6);
    hear(&mut t, 2, &completed(insert("b", "2"), 9));
    assert!(t.synced_without_seq().is_empty());
    assert_eq!(
        t.get(&"b".into()).map(|x| x.state),
        Some(TransactionState::PersistedAwaitingSync)
    );
}

#[test]
fn a_removed_dead_letter_leaves_every_tab() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    // Another tab's transaction, failed for good: a dead letter this tab knows of.
    let mut failed = with_state(insert("x", "9"), TransactionState::Failed);
    failed.error = Some(TxError::new(ErrorCode::NonRetriable, "422"));
    let state = |tx: Transaction| {
        from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![tx],
        })
    };
    hear(&mut t, 1, &state(failed.clone()));
    assert!(t.get(&"x".into()).is_some());
    // Some tab discards it: the leader says so.
    let mut removed = failed.clone();
    removed.error = Some(TxError::new(ErrorCode::Removed, "removed from the outbox"));
    let out = hear(&mut t, 2, &state(removed));
    assert!(
        out.iter().any(|o| matches!(o, TabOutput::StateChanged(tx) if tx.error_code() == Some(ErrorCode::Removed))),
        "listeners hear of it: {out:?}"
    );
    assert!(t.get(&"x".into()).is_none(), "gone");
    // Late news of it as a dead letter does not bring it back.
    hear(&mut t, 3, &state(failed));
    assert!(t.get(&"x".into()).is_none());
}

/// A new leader (`leader2`, epoch 2) claims the lead at `now`, and answers this tab's snapshot
/// request with `transactions` and `removed` just after.
fn new_leader_snapshot(
    t: &mut TabCore,
    now: Millis,
    transactions: Vec<Transaction>,
    removed: Vec<TransactionId>,
) -> Vec<TabOutput> {
    let second = ClientId("leader2".into());
    let claim = Message::Leader { epoch: Epoch(2) };
    hear(t, now, &Envelope::broadcast(SCOPE, &second, claim));
    let snapshot = Message::Snapshot {
        epoch: Epoch(2),
        transactions,
        more: false,
        removed,
    };
    let me = ClientId("me".into());
    hear(t, now + 1, &Envelope::reply(SCOPE, &second, &me, snapshot))
}

/// A tab that heard leader 1 say another tab's transactions `x` (key 7) and `y` (key 8) are
/// in `state`.
fn hearing_another_tabs_x_and_y(state: TransactionState) -> TabCore {
    let mut t = me();
    t.define_collection("todos");
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    let tx = |id: &str, key: &str| with_state(insert(id, key), state);
    hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![tx("x", "7"), tx("y", "8")],
        }),
    );
    t
}

#[test]
fn another_tabs_completions_are_kept_only_in_collections_this_tab_defined() {
    let mut t = me();
    t.define_collection("todos");
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    let done = |id: &str, collection: &str| {
        let row = json!({"id": "7"});
        let mutations = vec![PendingMutation::insert(collection, "7", row)];
        let tx = Transaction::new(id.into(), "sync", Strategy::Ordered, mutations, 0);
        with_state(tx, TransactionState::Completed)
    };
    hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![done("a", "todos"), done("b", "events")],
        }),
    );
    assert_eq!(t.view().get("todos", "7"), Some(&json!({"id": "7"})));
    assert_eq!(
        t.view().len("events"),
        0,
        "a collection this tab does not use"
    );
    // Its own change is kept wherever it went.
    let own = insert("mine", "9");
    t.submit(own.clone());
    hear(
        &mut t,
        2,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![with_state(own, TransactionState::Completed)],
        }),
    );
    assert_eq!(t.view().get("todos", "9"), Some(&json!({"id": "9"})));
}

#[test]
fn another_tabs_transaction_missing_from_a_new_leaders_snapshot_is_settled() {
    // Two of another tab's transactions, mid-attempt under leader 1.
    let mut t = hearing_another_tabs_x_and_y(TransactionState::Persisting);
    assert!(t.view().is_pending(&"x".into()));
    // Leader 1 completed x and went away before saying so; leader 2 holds only y.
    new_leader_snapshot(
        &mut t,
        2,
        vec![with_state(insert("y", "8"), TransactionState::Pending)],
        vec![],
    );
    assert!(!t.view().is_pending(&"x".into()), "x is no longer hanging");
    assert_eq!(
        t.view().get("todos", "7"),
        Some(&json!({"id": "7"})),
        "its change kept"
    );
    assert!(t.get(&"x".into()).is_none(), "and forgotten as completed");
    assert!(t.view().is_pending(&"y".into()), "y still pending");
}

#[test]
fn another_tabs_transaction_a_new_leaders_snapshot_names_as_removed_fails_and_rolls_back() {
    let mut t = hearing_another_tabs_x_and_y(TransactionState::Pending);
    // Leader 1 removed x (the app asked) and went before saying so; leader 2 names it.
    let out = new_leader_snapshot(&mut t, 2, vec![], vec!["x".into(), "unknown".into()]);
    assert!(out.iter().any(
        |o| matches!(o, TabOutput::StateChanged(tx) if tx.id.as_str() == "x" && tx.error_code() == Some(ErrorCode::Removed))
    ));
    assert_eq!(
        t.view().get("todos", "7"),
        None,
        "x's change rolled back, not kept"
    );
    assert!(t.get(&"x".into()).is_none());
    assert_eq!(
        t.view().get("todos", "8"),
        Some(&json!({"id": "8"})),
        "y, missing and not removed, is taken as completed"
    );
}

#[test]
fn another_tabs_success_missing_from_a_new_leaders_snapshot_still_waits_for_the_sync() {
    let mut t = me();
    t.set_externally_synced("todos");
    t.synced_to(3);
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    // Another tab's change succeeded at server seq 5; the sync has not shown it yet.
    let mut waiting = with_state(insert("x", "7"), TransactionState::PersistedAwaitingSync);
    waiting.server_seq = Some(5);
    hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![waiting],
        }),
    );
    // Leader 1 completed it and went away before saying so; leader 2 does not hold it.
    new_leader_snapshot(&mut t, 2, vec![], vec![]);
    assert_eq!(
        t.get(&"x".into()).map(|x| x.state),
        Some(TransactionState::PersistedAwaitingSync),
        "completed, but still shown over the synced rows until the sync has it"
    );
    assert_eq!(t.view().get("todos", "7"), Some(&json!({"id": "7"})));
    t.set_synced("todos", "7", Some(json!({"id": "7", "server": true})));
    t.synced_to(5);
    assert!(
        t.get(&"x".into()).is_none(),
        "settled once the sync shows it"
    );
    assert_eq!(
        t.view().get("todos", "7"),
        Some(&json!({"id": "7", "server": true}))
    );
}

#[test]
fn the_verified_leaders_call_for_credentials_reaches_the_app_and_no_one_elses() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(2) }));
    let out = hear(
        &mut t,
        1,
        &from_leader(Message::CredentialsNeeded { epoch: Epoch(2) }),
    );
    assert_eq!(out, vec![TabOutput::CredentialsNeeded(Epoch(2))]);
    let forged = Envelope::broadcast(
        SCOPE,
        &ClientId("mallory".into()),
        Message::CredentialsNeeded { epoch: Epoch(2) },
    );
    assert!(
        t.receive(2, forged.clone()).is_empty(),
        "a forger cannot fish for credentials"
    );
    assert_eq!(t.forged(), 1);
}

#[test]
fn a_snapshot_in_parts_settles_the_missing_only_after_its_last_part() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    let running = |id: &str, key: &str| with_state(insert(id, key), TransactionState::Persisting);
    hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![running("x", "7"), running("y", "8")],
        }),
    );
    let part = |txs: Vec<Transaction>, more: bool| {
        to_me(Message::Snapshot {
            epoch: Epoch(1),
            transactions: txs,
            more,
            removed: vec![],
        })
    };
    hear(&mut t, 2, &part(vec![running("x", "7")], true));
    assert!(
        t.view().is_pending(&"y".into()),
        "not judged on a first part"
    );
    hear(&mut t, 3, &part(vec![running("y", "8")], false));
    assert!(t.view().is_pending(&"x".into()) && t.view().is_pending(&"y".into()));
}

#[test]
fn a_transaction_this_tab_cannot_send_fails_here_and_is_not_sent_again() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    let big = insert("big", "1");
    t.submit(big.clone());
    assert!(t.view().get("todos", "1").is_some());
    let error = TxError::new(ErrorCode::Invalid, "too large");
    let out = t.refuse(&"big".into(), error.clone());
    assert!(out.iter().any(|o| matches!(o,
        TabOutput::StateChanged(tx) if tx.id.as_str() == "big"
            && tx.state == TransactionState::Failed
            && tx.error_code() == Some(ErrorCode::Invalid))));
    assert_eq!(t.view().get("todos", "1"), None, "rolled back");
    assert!(t.is_local_failure(&"big".into()));
    assert_eq!(t.own_unsettled(), 0);
    // A new leader is not sent it.
    let second = ClientId("second".into());
    let out = hear(
        &mut t,
        1,
        &Envelope::broadcast(SCOPE, &second, Message::Leader { epoch: Epoch(2) }),
    );
    assert!(!out.iter().any(|o| matches!(o,
        TabOutput::Send(Message::Submit { txs, .. }) if txs.iter().any(|tx| tx.id.as_str() == "big"))));
    // Refusing again, or one that is durable, changes nothing.
    assert!(t.refuse(&"big".into(), error.clone()).is_empty());
    t.submit(insert("ok", "2"));
    hear(
        &mut t,
        2,
        &Envelope::broadcast(
            SCOPE,
            &second,
            Message::Durable {
                epoch: Epoch(2),
                ids: vec!["ok".into()],
            },
        ),
    );
    assert!(t.refuse(&"ok".into(), error).is_empty());
    assert!(t.view().get("todos", "2").is_some());
}

#[test]
fn a_refused_transaction_can_be_dismissed_and_stays_gone() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    hear(
        &mut t,
        1,
        &to_me(Message::Rejected {
            id: "a".into(),
            error: TxError::new(ErrorCode::QuotaExceeded, "full"),
        }),
    );
    let id = TransactionId::from("a");
    assert!(t.is_local_failure(&id), "refused: never in the outbox");
    let out = t.removed(&id);
    assert!(out.iter().any(
        |o| matches!(o, TabOutput::StateChanged(tx) if tx.error_code() == Some(ErrorCode::Removed))
    ));
    assert!(t.get(&id).is_none(), "dismissed");
    assert_eq!(t.transactions().count(), 0);
    assert!(!t.is_local_failure(&id));
}

#[test]
fn a_transaction_in_the_outbox_is_not_a_local_failure() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let id = TransactionId::from("a");
    assert!(!t.is_local_failure(&id), "unsettled");
    let failed = with_state(insert("a", "1"), TransactionState::Failed);
    hear(
        &mut t,
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![failed],
        }),
    );
    assert!(
        !t.is_local_failure(&id),
        "a dead letter the leader holds: removing it is the leader's to do"
    );
}

#[test]
fn an_own_pending_transaction_removed_by_the_app_fails_at_once_and_late_news_is_ignored() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    assert_eq!(t.own_unsettled(), 1);
    let id = TransactionId::from("a");
    // The leader answered the app's removeFromOutbox: done.
    let out = t.removed(&id);
    assert!(out.iter().any(|o| matches!(o, TabOutput::StateChanged(tx) if tx.state == TransactionState::Failed && tx.error_code() == Some(ErrorCode::Removed))));
    assert_eq!(t.view().get("todos", "1"), None, "rolled back");
    assert_eq!(t.own_unsettled(), 0, "a drain is not held up by it");
    assert!(t.get(&id).is_none());
    // The leader's own word of it, arriving after its answer, brings nothing back.
    let mut late = with_state(insert("a", "1"), TransactionState::Failed);
    late.error = Some(TxError::new(ErrorCode::Removed, "removed"));
    let out = hear(
        &mut t,
        2,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![late],
        }),
    );
    assert!(out.is_empty(), "{out:?}");
    assert!(t.get(&id).is_none());
}

#[test]
fn an_own_dead_letter_retried_is_unsettled_again_for_drain_and_resends() {
    let mut t = me();
    hear(&mut t, 0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let state = |s| {
        from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![with_state(insert("a", "1"), s)],
        })
    };
    hear(&mut t, 1, &state(TransactionState::Failed));
    assert_eq!(t.own_unsettled(), 0, "a dead letter");
    // retryDeadLetter: the leader puts it back in line.
    hear(&mut t, 2, &state(TransactionState::Queued));
    assert_eq!(t.own_unsettled(), 1, "running again: drain() waits for it");
    // And a new leader gets it again.
    let out = hear(&mut t, 3, &from_leader(Message::Leader { epoch: Epoch(2) }));
    assert!(sent(&out).iter().any(
        |m| matches!(m, Message::Submit { txs, .. } if txs.iter().any(|tx| tx.id.as_str() == "a"))
    ));
    hear(
        &mut t,
        4,
        &from_leader(Message::State {
            epoch: Epoch(2),
            txs: vec![with_state(insert("a", "1"), TransactionState::Completed)],
        }),
    );
    assert_eq!(t.own_unsettled(), 0);
}
