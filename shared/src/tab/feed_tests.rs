use super::*;
use crate::model::{ClientId, Epoch, Millis, PendingMutation, Strategy, Transaction};
use crate::protocol::Envelope;
use crate::sync::{ChangeOp, RowChange};
use serde_json::{json, Value};

const SCOPE: &str = "todos";

/// A tab following the feed of `todos`, its leader (epoch 1, id `leader`) verified.
fn tab(strategy: ConflictStrategy) -> TabCore {
    let mut t = TabCore::new(ClientId("me".into()), SCOPE);
    t.follow_leader_feed(&["todos"]);
    t.set_conflict("todos", strategy);
    let out = t.receive(0, leader_says(Message::Leader { epoch: Epoch(1) }));
    assert!(matches!(out[..], [TabOutput::VerifyLeader { .. }]));
    let out = t.leader_verified(0, Epoch(1), ClientId("leader".into()));
    assert!(
        out.contains(&TabOutput::Send(Message::SyncFrom { applied: 0 })),
        "{out:?}"
    );
    hear(&mut t, rows(0, &[("a", json!({"t": "server0"}))]));
    t
}

fn leader_says(body: Message) -> Envelope {
    Envelope::broadcast(SCOPE, &ClientId("leader".into()), body)
}

fn hear(t: &mut TabCore, body: Message) -> Vec<TabOutput> {
    t.receive(1 as Millis, leader_says(body))
}

fn rows(seq: u64, rows: &[(&str, Value)]) -> Message {
    Message::SyncRows {
        epoch: Epoch(1),
        collection: "todos".into(),
        seq,
        rows: rows.iter().map(|(k, v)| ((*k).into(), v.clone())).collect(),
        more: false,
        restart: false,
    }
}

fn entry(seq: u64, key: &str, value: Option<Value>) -> FeedEntry {
    FeedEntry {
        seq,
        prev_seq: seq - 1,
        tx_id: None,
        changes: vec![RowChange {
            collection: "todos".into(),
            key: key.into(),
            op: if value.is_some() {
                ChangeOp::Update
            } else {
                ChangeOp::Delete
            },
            value,
        }],
    }
}

fn entries(es: Vec<FeedEntry>) -> Message {
    Message::SyncEntries {
        epoch: Epoch(1),
        entries: es,
    }
}

fn mine(id: &str, t: &str) -> Transaction {
    Transaction::new(
        id.into(),
        "sync",
        Strategy::Ordered,
        vec![PendingMutation::update(
            "todos",
            "a",
            json!({"t": "server0"}),
            json!({ "t": t }),
        )],
        0,
    )
}

/// The leader says `tx` is now in `state` (completed at `server_seq`, when given).
fn state(t: &mut TabCore, tx: &Transaction, state: TransactionState, server_seq: Option<u64>) {
    let mut tx = tx.clone();
    tx.state = state;
    tx.seq = 1;
    tx.server_seq = server_seq;
    hear(
        t,
        Message::State {
            epoch: Epoch(1),
            txs: vec![tx],
        },
    );
}

fn shown(t: &TabCore) -> Option<&Value> {
    t.view().get("todos", "a")
}

#[test]
fn the_leaders_entries_apply_in_order_once_and_a_gap_asks_for_what_follows() {
    let mut t = tab(ConflictStrategy::Rebase);
    assert_eq!(shown(&t), Some(&json!({"t": "server0"})));
    let out = hear(&mut t, entries(vec![entry(1, "a", Some(json!({"t": 1})))]));
    assert!(out.contains(&TabOutput::RowsChanged(vec![("todos".into(), "a".into())])));
    assert_eq!(shown(&t), Some(&json!({"t": 1})));
    let out = hear(&mut t, entries(vec![entry(3, "a", Some(json!({"t": 3})))]));
    assert_eq!(out, [TabOutput::Send(Message::SyncFrom { applied: 1 })]);
    assert!(
        hear(&mut t, entries(vec![entry(4, "b", None)])).is_empty(),
        "asked once"
    );
    hear(
        &mut t,
        entries(vec![
            entry(2, "a", Some(json!({"t": 2}))),
            entry(1, "a", None),
        ]),
    );
    assert_eq!(shown(&t), Some(&json!({"t": 3})));
    assert_eq!(t.feed_applied(), 4);
}

#[test]
fn feed_messages_from_anyone_but_the_leader_are_forged_and_change_nothing() {
    let mut t = tab(ConflictStrategy::Rebase);
    let fake = Envelope::broadcast(
        SCOPE,
        &ClientId("mallory".into()),
        entries(vec![entry(1, "a", None)]),
    );
    assert!(t.receive(2, fake.clone()).is_empty());
    assert_eq!(t.forged(), 1);
    assert_eq!(t.feed_applied(), 0);
    assert!(shown(&t).is_some());
}

#[test]
fn rows_in_parts_replace_the_collection_and_resume_the_cursor_there() {
    let mut t = tab(ConflictStrategy::Rebase);
    hear(&mut t, entries(vec![entry(7, "a", Some(json!({"t": 7})))]));
    let mut part = rows(6, &[("a", json!({"t": 6}))]);
    if let Message::SyncRows { more, .. } = &mut part {
        *more = true;
    }
    hear(&mut t, part);
    assert_eq!(
        shown(&t),
        Some(&json!({"t": "server0"})),
        "not until the last part"
    );
    hear(&mut t, rows(6, &[("b", json!({"t": 6}))]));
    assert_eq!(
        t.feed_applied(),
        7,
        "entry 7 was waiting behind the rows at 6"
    );
    assert_eq!(shown(&t), Some(&json!({"t": 7})));
    assert_eq!(t.view().get("todos", "b"), Some(&json!({"t": 6})));
    hear(&mut t, rows(5, &[]));
    assert!(
        t.view().get("todos", "b").is_some(),
        "older rows are ignored"
    );
}

#[test]
fn rows_of_a_restarted_numbering_replace_newer_ones_and_the_feed_follows_them() {
    let mut t = tab(ConflictStrategy::Rebase);
    hear(
        &mut t,
        entries(vec![
            entry(1, "a", Some(json!({"t": 1}))),
            entry(2, "old", Some(json!({"t": 2}))),
        ]),
    );
    // An entry of the old numbering waits behind a gap.
    hear(
        &mut t,
        entries(vec![entry(9, "late", Some(json!({"t": 9})))]),
    );
    assert_eq!(t.feed_applied(), 2);
    // The server lost its history and numbers from 1 again: the leader sends every row.
    let mut restart = rows(1, &[("a", json!({"t": "restored"}))]);
    if let Message::SyncRows { restart, .. } = &mut restart {
        *restart = true;
    }
    hear(&mut t, restart);
    assert_eq!(t.feed_applied(), 1);
    assert_eq!(shown(&t), Some(&json!({"t": "restored"})));
    assert_eq!(t.view().get("todos", "old"), None, "the old rows are gone");
    // The new numbering's entries apply; the old one's buffered entry does not.
    let news: Vec<FeedEntry> = (2..=9)
        .map(|seq| entry(seq, &format!("n{seq}"), Some(json!({"t": seq}))))
        .collect();
    hear(&mut t, entries(news));
    assert_eq!(t.feed_applied(), 9);
    assert_eq!(t.view().get("todos", "n2"), Some(&json!({"t": 2})));
    assert_eq!(t.view().get("todos", "late"), None);
}

#[test]
fn a_restart_drops_old_entries_waiting_behind_a_gap_even_in_a_tab_that_was_behind() {
    let mut t = tab(ConflictStrategy::Rebase);
    // At 0, with the old numbering's entry 5 waiting behind a gap.
    hear(&mut t, entries(vec![entry(5, "k", Some(json!("old")))]));
    assert_eq!(t.feed_applied(), 0);
    let mut restart = rows(3, &[]);
    if let Message::SyncRows { restart, .. } = &mut restart {
        *restart = true;
    }
    hear(&mut t, restart);
    assert_eq!(t.feed_applied(), 3);
    hear(&mut t, entries(vec![entry(4, "j", Some(json!("new")))]));
    assert_eq!(t.feed_applied(), 4, "the old 5 does not follow on");
    assert_eq!(t.view().get("todos", "k"), None);
    hear(&mut t, entries(vec![entry(5, "k", Some(json!("new")))]));
    assert_eq!(t.view().get("todos", "k"), Some(&json!("new")));
}

#[test]
fn a_completion_awaits_the_feed_and_completes_when_its_entry_applies() {
    let mut t = tab(ConflictStrategy::Rebase);
    let tx = mine("t1", "mine");
    t.submit(tx.clone());
    state(&mut t, &tx, TransactionState::Completed, Some(2));
    assert_eq!(
        t.get(&"t1".into()).map(|x| x.state),
        Some(TransactionState::PersistedAwaitingSync)
    );
    hear(&mut t, entries(vec![entry(1, "b", Some(json!(1)))]));
    assert_eq!(shown(&t), Some(&json!({"t": "mine"})));
    let out = hear(
        &mut t,
        entries(vec![entry(2, "a", Some(json!({"t": "mine"})))]),
    );
    assert!(out.iter().any(
        |o| matches!(o, TabOutput::StateChanged(x) if x.state == TransactionState::Completed)
    ));
    assert!(t.view().pending_ids().next().is_none());
    assert_eq!(shown(&t), Some(&json!({"t": "mine"})));
}

#[test]
fn rebase_keeps_the_pending_change_over_a_server_change() {
    let mut t = tab(ConflictStrategy::Rebase);
    t.submit(mine("t1", "mine"));
    hear(
        &mut t,
        entries(vec![entry(1, "a", Some(json!({"t": "theirs", "n": 1})))]),
    );
    assert_eq!(shown(&t), Some(&json!({"t": "mine", "n": 1})));
}

#[test]
fn server_wins_shows_the_server_row_and_the_transaction_still_runs() {
    let mut t = tab(ConflictStrategy::ServerWins);
    let tx = mine("t1", "mine");
    t.submit(tx.clone());
    hear(
        &mut t,
        entries(vec![entry(1, "a", Some(json!({"t": "theirs"})))]),
    );
    assert_eq!(shown(&t), Some(&json!({"t": "theirs"})));
    assert!(t.view().is_pending(&"t1".into()));
    state(&mut t, &tx, TransactionState::Completed, Some(2));
    hear(
        &mut t,
        entries(vec![entry(2, "a", Some(json!({"t": "mine"})))]),
    );
    assert_eq!(shown(&t), Some(&json!({"t": "mine"})));
    assert!(t.view().pending_ids().next().is_none());
}

#[test]
fn hold_keeps_server_changes_to_locked_rows_until_the_transaction_settles() {
    let mut t = tab(ConflictStrategy::Hold);
    let tx = mine("t1", "mine");
    t.submit(tx.clone());
    hear(
        &mut t,
        entries(vec![entry(1, "a", Some(json!({"t": "pending-time"})))]),
    );
    assert_eq!(
        t.view().synced("todos", "a"),
        Some(&json!({"t": "pending-time"})),
        "a pending (not yet persisting) transaction holds nothing"
    );
    state(&mut t, &tx, TransactionState::Persisting, None);
    hear(
        &mut t,
        entries(vec![entry(2, "a", Some(json!({"t": "theirs"})))]),
    );
    hear(
        &mut t,
        entries(vec![entry(3, "a", Some(json!({"t": "mine"})))]),
    );
    assert_eq!(
        t.view().synced("todos", "a"),
        Some(&json!({"t": "pending-time"})),
        "held while persisting"
    );
    assert_eq!(
        t.server_rows().get("todos", "a"),
        Some(&json!({"t": "mine"}))
    );
    let out = {
        let mut done = tx.clone();
        done.state = TransactionState::Completed;
        done.seq = 1;
        done.server_seq = Some(3);
        hear(
            &mut t,
            Message::State {
                epoch: Epoch(1),
                txs: vec![done],
            },
        )
    };
    assert!(out.iter().any(
        |o| matches!(o, TabOutput::StateChanged(x) if x.state == TransactionState::Completed)
    ));
    assert_eq!(t.view().synced("todos", "a"), Some(&json!({"t": "mine"})));
    assert_eq!(shown(&t), Some(&json!({"t": "mine"})));
}

#[test]
fn hold_releases_on_a_rollback_too() {
    let mut t = tab(ConflictStrategy::Hold);
    let tx = mine("t1", "mine");
    t.submit(tx.clone());
    state(&mut t, &tx, TransactionState::Persisting, None);
    hear(
        &mut t,
        entries(vec![entry(1, "a", Some(json!({"t": "theirs"})))]),
    );
    assert_eq!(shown(&t), Some(&json!({"t": "mine"})));
    state(&mut t, &tx, TransactionState::Failed, None);
    assert_eq!(shown(&t), Some(&json!({"t": "theirs"})));
}

#[test]
fn a_new_leader_is_asked_for_what_follows_and_an_old_leaders_rows_are_stale() {
    let mut t = tab(ConflictStrategy::Rebase);
    hear(&mut t, entries(vec![entry(1, "a", Some(json!({"t": 1})))]));
    let mut part = rows(5, &[("x", json!(5))]);
    if let Message::SyncRows { more, .. } = &mut part {
        *more = true;
    }
    hear(&mut t, part);
    let new = Envelope::broadcast(
        SCOPE,
        &ClientId("leader2".into()),
        Message::Leader { epoch: Epoch(2) },
    );
    t.receive(3, new.clone());
    let out = t.leader_verified(3, Epoch(2), ClientId("leader2".into()));
    assert!(
        out.contains(&TabOutput::Send(Message::SyncFrom { applied: 1 })),
        "{out:?}"
    );
    let old = rows(5, &[]);
    assert!(hear(&mut t, old).is_empty());
    assert_eq!(t.stale(), 1, "the deposed leader's rows");
    let from_new = Envelope::broadcast(
        SCOPE,
        &ClientId("leader2".into()),
        Message::SyncRows {
            epoch: Epoch(2),
            collection: "todos".into(),
            seq: 6,
            rows: vec![("y".into(), json!(6))],
            more: false,
            restart: false,
        },
    );
    t.receive(4, from_new.clone());
    assert_eq!(t.view().get("todos", "x"), None, "the old part was dropped");
    assert_eq!(t.view().get("todos", "y"), Some(&json!(6)));
    assert_eq!(t.feed_applied(), 6);
}

#[test]
fn merge_asks_the_app_and_shows_its_answer_until_the_change_settles() {
    let mut t = tab(ConflictStrategy::Merge);
    let tx = mine("t1", "mine");
    t.submit(tx.clone());
    let out = hear(
        &mut t,
        entries(vec![entry(1, "a", Some(json!({"t": "theirs", "n": 1})))]),
    );
    let asked = out.iter().find_map(|o| match o {
        TabOutput::Merge {
            collection,
            key,
            server,
            local,
        } => Some((
            collection.clone(),
            key.clone(),
            server.clone(),
            local.clone(),
        )),
        _ => None,
    });
    assert_eq!(
        asked,
        Some((
            "todos".into(),
            "a".into(),
            Some(json!({"t": "theirs", "n": 1})),
            Some(json!({"t": "mine"}))
        ))
    );
    assert_eq!(
        shown(&t),
        Some(&json!({"t": "mine"})),
        "unchanged until the answer"
    );
    t.merged("todos", "a", Some(json!({"t": "both", "n": 1})));
    assert_eq!(
        shown(&t),
        Some(&json!({"t": "both", "n": 1})),
        "the merge shows"
    );
    assert!(
        t.view().is_pending(&"t1".into()),
        "and the change still runs"
    );
    // Rolled back: the server's row shows again, not the merge.
    state(&mut t, &tx, TransactionState::Failed, None);
    assert_eq!(shown(&t), Some(&json!({"t": "theirs", "n": 1})));
    assert!(
        t.merged("todos", "a", Some(json!({"late": true})))
            .is_empty(),
        "a late answer for a settled row is ignored"
    );
    assert_eq!(shown(&t), Some(&json!({"t": "theirs", "n": 1})));
}

#[test]
fn merge_is_not_asked_for_rows_without_pending_changes() {
    let mut t = tab(ConflictStrategy::Merge);
    let out = hear(&mut t, entries(vec![entry(1, "a", Some(json!({"t": 1})))]));
    assert!(!out.iter().any(|o| matches!(o, TabOutput::Merge { .. })));
    assert_eq!(shown(&t), Some(&json!({"t": 1})));
}

fn part(seq: u64, keys: &[&str], more: bool) -> Message {
    let mut m = rows(
        seq,
        &keys
            .iter()
            .map(|k| (*k, json!({ "t": seq })))
            .collect::<Vec<_>>(),
    );
    if let Message::SyncRows { more: m, .. } = &mut m {
        *m = more;
    }
    m
}

#[test]
fn two_deliveries_of_rows_whose_parts_interleave_leave_every_row() {
    // The leader broadcast the rows and answered this tab's ask with them too, over its own
    // worker's port: the two deliveries' parts arrive mixed.
    let mut t = tab(ConflictStrategy::Rebase);
    for m in [
        part(3, &["a", "b"], true),
        part(3, &["a", "b"], true),
        part(3, &["c", "d"], true),
        part(3, &["c", "d"], true),
        part(3, &["e"], false),
    ] {
        hear(&mut t, m);
    }
    assert_eq!(t.view().len("todos"), 5);
    // The second delivery's last part alone is no reason to drop the rest.
    hear(&mut t, part(3, &["e"], false));
    assert_eq!(t.view().len("todos"), 5, "every row still there");
    assert_eq!(t.feed_applied(), 3);

    // Deliveries of different rows interleaved (an answer made after more was stored): each
    // gathers apart, and the newer rows stay.
    for m in [
        part(5, &["a", "b"], true),
        part(6, &["a", "b"], true),
        part(5, &["c", "d"], true),
        part(6, &["c", "d", "f"], true),
        part(5, &["e"], false),
    ] {
        hear(&mut t, m);
    }
    assert_eq!(t.view().len("todos"), 5);
    assert_eq!(t.feed_applied(), 5);
    hear(&mut t, part(6, &["e"], false));
    assert_eq!(t.view().len("todos"), 6, "{:?}", t.server_rows().seqs());
    assert_eq!(t.feed_applied(), 6);
    assert_eq!(t.view().get("todos", "a"), Some(&json!({"t": 6})));
}

fn covers(collections: &[&str]) -> Message {
    Message::FeedCollections {
        epoch: Epoch(1),
        collections: collections.iter().map(|c| (*c).to_owned()).collect(),
    }
}

fn diagnostics(out: &[TabOutput]) -> Vec<&str> {
    out.iter()
        .filter_map(|o| match o {
            TabOutput::Diagnostic {
                code: ErrorCode::Invalid,
                message,
            } => Some(message.as_str()),
            _ => None,
        })
        .collect()
}

fn insert_note(id: &str, key: &str) -> Transaction {
    Transaction::new(
        id.into(),
        "notes",
        Strategy::Ordered,
        vec![PendingMutation::insert("notes", key, json!({ "id": key }))],
        0,
    )
}

/// The leader's feed follows no `notes` (the worker started without them in its `sync`
/// option): a `notes` completion that names a server sequence number waited for that feed for
/// good, and `drain()` with it, without a word.
#[test]
fn a_collection_the_leaders_feed_does_not_follow_is_reported_and_not_waited_for() {
    let mut t = tab(ConflictStrategy::Rebase);
    t.follow_leader_feed(&["notes"]);
    let tx = insert_note("n1", "1");
    t.submit(tx.clone());
    // It completes before the leader's word on its feed arrives: held for the feed.
    state(&mut t, &tx, TransactionState::Completed, Some(7));
    assert_eq!(
        t.get(&"n1".into()).map(|x| x.state),
        Some(TransactionState::PersistedAwaitingSync)
    );
    let out = hear(&mut t, covers(&["todos"]));
    let said = diagnostics(&out);
    assert_eq!(said.len(), 1, "{out:?}");
    assert!(said[0].contains("\"notes\""), "{}", said[0]);
    assert!(out.iter().any(|o| matches!(o,
        TabOutput::StateChanged(tx) if tx.id.as_str() == "n1" && tx.state == TransactionState::Completed)));
    assert_eq!(t.own_unsettled(), 0, "drain() is not held up");
    assert_eq!(
        t.view().get("notes", "1"),
        Some(&json!({"id": "1"})),
        "kept"
    );
    // Said once, however often the leader answers.
    assert!(diagnostics(&hear(&mut t, covers(&["todos"]))).is_empty());
    // Later completions of it keep their rows at once.
    let tx = insert_note("n2", "2");
    t.submit(tx.clone());
    state(&mut t, &tx, TransactionState::Completed, Some(8));
    assert_eq!(
        t.get(&"n2".into()).map(|x| x.state),
        Some(TransactionState::Completed)
    );
    assert_eq!(t.view().get("notes", "2"), Some(&json!({"id": "2"})));
    // The collections it does follow still wait for it.
    let mut a = mine("x", "mine");
    a.mutations = vec![PendingMutation::insert("todos", "b", json!({"id": "b"}))].into();
    t.submit(a.clone());
    state(&mut t, &a, TransactionState::Completed, Some(9));
    assert_eq!(
        t.get(&"x".into()).map(|x| x.state),
        Some(TransactionState::PersistedAwaitingSync)
    );
}

/// Rows of the collections the feed follows came in, but one followed collection never would:
/// the tab's feed waited for its rows before going on, for good.
#[test]
fn a_collection_the_feed_does_not_follow_does_not_hold_up_the_ones_it_does() {
    let mut t = TabCore::new(ClientId("me".into()), SCOPE);
    t.follow_leader_feed(&["todos", "notes"]);
    t.receive(0, leader_says(Message::Leader { epoch: Epoch(1) }));
    t.leader_verified(0, Epoch(1), ClientId("leader".into()));
    let tx = mine("m", "mine");
    t.submit(tx.clone());
    state(&mut t, &tx, TransactionState::Completed, Some(3));
    hear(&mut t, covers(&["todos"]));
    let out = hear(&mut t, rows(3, &[("a", json!({"t": "mine"}))]));
    assert!(out.contains(&TabOutput::FeedAdvanced(3)), "{out:?}");
    assert_eq!(
        t.get(&"m".into()).map(|x| x.state),
        Some(TransactionState::Completed)
    );
    hear(&mut t, entries(vec![entry(4, "a", Some(json!({"t": 4})))]));
    assert_eq!(t.feed_applied(), 4);
}

/// A later leader whose feed follows the collection: it waits for the feed again.
#[test]
fn a_collection_a_new_leaders_feed_follows_waits_for_the_feed_again() {
    let mut t = tab(ConflictStrategy::Rebase);
    hear(&mut t, covers(&[]));
    assert!(diagnostics(&hear(&mut t, covers(&[]))).is_empty());
    t.receive(1, leader_says(Message::Leader { epoch: Epoch(2) }));
    t.leader_verified(1, Epoch(2), ClientId("leader".into()));
    let out = hear(
        &mut t,
        Message::FeedCollections {
            epoch: Epoch(2),
            collections: vec!["todos".into()],
        },
    );
    assert!(diagnostics(&out).is_empty());
    let tx = mine("m", "mine");
    t.submit(tx.clone());
    let mut done = tx.clone();
    done.state = TransactionState::Completed;
    done.server_seq = Some(5);
    hear(
        &mut t,
        Message::State {
            epoch: Epoch(2),
            txs: vec![done],
        },
    );
    assert_eq!(
        t.get(&"m".into()).map(|x| x.state),
        Some(TransactionState::PersistedAwaitingSync),
        "waits for the feed"
    );
}

/// A tab that follows no collection of the feed (its collections have no `sync: 'leader'`)
/// leaves the leader's broadcasts alone: it asked for what it missed at every one (its cursor
/// at 0) and was sent, and kept, every row of every collection.
#[test]
fn a_tab_that_follows_nothing_neither_asks_for_the_feed_nor_keeps_its_rows() {
    let mut t = TabCore::new(ClientId("me".into()), SCOPE);
    t.receive(0, leader_says(Message::Leader { epoch: Epoch(1) }));
    t.leader_verified(0, Epoch(1), ClientId("leader".into()));
    let out = hear(&mut t, entries(vec![entry(7, "a", Some(json!({"t": 7})))]));
    assert!(
        !out.iter()
            .any(|o| matches!(o, TabOutput::Send(Message::SyncFrom { .. }))),
        "{out:?}"
    );
    hear(&mut t, rows(7, &[("a", json!({"t": 7}))]));
    assert_eq!(t.server_rows().seq("todos"), None);
    // Once it follows `todos`, it asks from 0 and takes the rows in.
    let out = t.follow_leader_feed(&["todos"]);
    assert!(out.contains(&TabOutput::Send(Message::SyncFrom { applied: 0 })));
    hear(&mut t, rows(7, &[("a", json!({"t": 7}))]));
    assert_eq!(shown(&t), Some(&json!({"t": 7})));
}
