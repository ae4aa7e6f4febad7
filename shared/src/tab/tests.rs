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
    let out = t.receive(5, &from_leader(Message::Leader { epoch: Epoch(3) }));
    assert!(out.contains(&TabOutput::LeaderChanged(Epoch(3))));
    let msgs = sent(&out);
    assert_eq!(msgs[0], &Message::SnapshotRequest);
    assert!(matches!(msgs[1], Message::Submit { epoch: Epoch(3), tx } if tx.id.as_str() == "a"));
    let out = t.submit(insert("b", "2"));
    assert!(matches!(
        sent(&out)[0],
        Message::Submit {
            epoch: Epoch(3),
            ..
        }
    ));
    let out = t.receive(
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
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    for (id, k) in [("a", "1"), ("b", "2"), ("c", "3")] {
        t.submit(insert(id, k));
    }
    t.receive(
        1,
        &from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![with_state(insert("b", "2"), TransactionState::Completed)],
        }),
    );
    let out = t.receive(2, &from_leader(Message::Leader { epoch: Epoch(2) }));
    let resent: Vec<&str> = sent(&out)
        .into_iter()
        .filter_map(|m| match m {
            Message::Submit {
                epoch: Epoch(2),
                tx,
            } => Some(tx.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(resent, vec!["a", "c"]);
    // The same leader again changes nothing.
    assert!(sent(&t.receive(
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
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    t.submit(insert("b", "2"));
    let out = t.receive(
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
    t.receive(
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
    let out = t.receive(
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
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    let theirs = with_state(insert("x", "9"), TransactionState::Queued);
    t.receive(
        1,
        &from_leader(Message::Snapshot {
            epoch: Epoch(1),
            transactions: vec![theirs.clone()],
        }),
    );
    assert_eq!(t.view().get("todos", "9"), Some(&json!({"id": "9"})));
    t.receive(
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
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(2) }));
    t.submit(insert("a", "1"));
    let stale = from_leader(Message::State {
        epoch: Epoch(1),
        txs: vec![with_state(insert("a", "1"), TransactionState::Failed)],
    });
    assert!(t.receive(1, &stale).is_empty());
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
    assert!(t.receive(2, &for_other).is_empty());
    let mine = Envelope::broadcast(
        SCOPE,
        &ClientId("me".into()),
        Message::Leader { epoch: Epoch(9) },
    );
    assert!(t.receive(3, &mine).is_empty());
    assert_eq!(t.leader(), Some(Epoch(2)));
}

#[test]
fn a_rejected_submit_fails_and_rolls_back() {
    let mut t = me();
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let out = t.receive(
        1,
        &from_leader(Message::Rejected {
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
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    t.receive(
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
        t.receive(0, &to_me),
        vec![TabOutput::Response {
            req: 7,
            result: Response::Done
        }]
    );
    let out = t.receive(
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
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(2) }));
    t.receive(
        1,
        &from_leader(Message::Heartbeat {
            epoch: Epoch(2),
            pending: 12,
        }),
    );
    assert_eq!(t.leader_pending(), Some(12));
    let out = t.receive(2, &from_leader(Message::Resign { epoch: Epoch(2) }));
    assert_eq!(out, vec![TabOutput::LeaderResigned(Epoch(2))]);
}

#[test]
fn after_forgetting_the_leader_any_epoch_gets_the_unsettled_transactions_again() {
    let mut t = me();
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(5) }));
    t.submit(insert("a", "1"));
    t.forget_leader();
    assert_eq!(t.leader(), None);
    let out = t.receive(1, &from_leader(Message::Leader { epoch: Epoch(1) }));
    assert!(out.contains(&TabOutput::LeaderChanged(Epoch(1))));
    assert!(sent(&out)
        .iter()
        .any(|m| matches!(m, Message::Submit { epoch: Epoch(1), tx } if tx.id.as_str() == "a")));
    assert_eq!(t.own_unsettled(), 1);
}

#[test]
fn only_settled_transactions_can_be_forgotten() {
    let mut t = me();
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    assert!(!t.forget(&"a".into()));
    t.receive(
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
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let mut failed = with_state(insert("a", "1"), TransactionState::Failed);
    failed.error = Some(TxError::new(ErrorCode::NonRetriable, "no"));
    let state = |tx: Transaction| {
        from_leader(Message::State {
            epoch: Epoch(1),
            txs: vec![tx],
        })
    };
    t.receive(1, &state(failed.clone()));
    assert!(t.forget(&"a".into()), "removed from the outbox by the app");
    assert!(t.receive(2, &state(failed.clone())).is_empty());
    assert!(t.get(&"a".into()).is_none());
    t.receive(
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
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let mut done = with_state(insert("a", "1"), TransactionState::Completed);
    done.server_seq = Some(5);
    let out = t.receive(
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
fn a_sync_that_reports_no_sequence_numbers_is_not_waited_for() {
    let mut t = me();
    t.set_externally_synced("todos");
    t.receive(0, &from_leader(Message::Leader { epoch: Epoch(1) }));
    t.submit(insert("a", "1"));
    let mut done = with_state(insert("a", "1"), TransactionState::Completed);
    done.server_seq = Some(5);
    t.receive(
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
