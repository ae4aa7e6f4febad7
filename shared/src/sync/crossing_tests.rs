//! The leader's sync and a tab's feed together, across a server that lost history (restored
//! from a backup): the leader's outputs delivered to a tab as the glue would, broadcasts and
//! direct answers alike, in the orders the two channels allow.

use super::*;
use crate::model::{ClientId, Epoch};
use crate::protocol::{Envelope, Message};
use crate::retry::SplitMix64;
use crate::tab::{TabCore, TabOutput};
use serde_json::json;
use LeaderSyncOutput as Out;

fn leader(config: LeaderSyncConfig) -> LeaderSync {
    LeaderSync::new(config, Box::new(SplitMix64::new(7)))
}

fn snap(collection: &str, seq: u64, rows: &[(&str, i64)]) -> CollectionSnapshot {
    CollectionSnapshot {
        collection: collection.into(),
        seq,
        rows: rows.iter().map(|(k, v)| ((*k).into(), json!(v))).collect(),
    }
}

fn put(seq: u64, key: &str, value: u64) -> FeedEntry {
    FeedEntry {
        seq,
        prev_seq: seq - 1,
        tx_id: None,
        changes: vec![RowChange {
            collection: "todos".into(),
            key: key.into(),
            op: ChangeOp::Update,
            value: Some(json!(value)),
        }],
    }
}

fn persist_seq(out: &[Out]) -> Option<u64> {
    out.iter().find_map(|o| match o {
        Out::Persist(b) => Some(b.seq),
        _ => None,
    })
}

fn me() -> ClientId {
    ClientId("me".into())
}

fn env(body: Message, to: Option<&ClientId>) -> Envelope {
    Envelope::new("app", &ClientId("leader".into()), to, body)
}

/// A tab following the leader's feed of `todos`, its leader verified.
fn tab() -> TabCore {
    let mut t = TabCore::new(me(), "app");
    t.follow_leader_feed(&["todos"]);
    t.receive(0, env(Message::Leader { epoch: Epoch(1) }, None));
    t.leader_verified(0, Epoch(1), ClientId("leader".into()));
    t
}

/// The messages of the leader's fan-out outputs, with their addressee.
fn messages(outs: &[Out]) -> Vec<(Option<ClientId>, Message)> {
    outs.iter()
        .flat_map(|o| o.clone().into_messages(Epoch(1)).unwrap_or_default())
        .collect()
}

fn deliver(t: &mut TabCore, outs: &[Out]) {
    for (to, m) in messages(outs) {
        t.receive(1, env(m, to.as_ref()));
    }
}

fn shown(t: &TabCore) -> Vec<(String, serde_json::Value)> {
    t.view()
        .rows("todos")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A leader and a tab both at seq 100 of the server's old numbering, row `a` = 100.
fn at_100(config: LeaderSyncConfig, rows: &[(&str, i64)]) -> (LeaderSync, TabCore) {
    let mut l = leader(config);
    let mut t = tab();
    l.start(Some(vec![snap("todos", 100, rows)]));
    assert_eq!(l.feed_opened(), [Out::CheckHead { since: 100 }]);
    assert!(l.head_known(100, 100).is_empty());
    deliver(&mut t, &l.tab_asks(me(), 0));
    assert_eq!(t.feed_applied(), 100);
    (l, t)
}

#[test]
fn a_reload_that_meets_a_restored_server_is_a_restart_for_every_tab() {
    let (mut l, mut t) = at_100(LeaderSyncConfig::new(["todos"]), &[("a", 100)]);
    // 101 went missing and its refetch failed (the server went down): every collection is
    // loaded again, and the feed drops too.
    let out = l.feed_entry(put(102, "a", 102));
    assert!(out.contains(&Out::FetchRange {
        since: 100,
        limit: 1
    }));
    l.range_failed();
    assert!(l.timer_fired().contains(&Out::LoadSnapshot {
        collection: "todos".into()
    }));
    l.feed_error();
    // The server comes back restored from a backup at 5: rows older than the leader's.
    let restored = snap("todos", 5, &[("a", 5), ("b", 5)]);
    let out = l.snapshot_loaded(restored.clone());
    assert!(
        out.contains(&Out::LoadSnapshot {
            collection: "todos".into()
        }),
        "taken for lost history, loaded again: {out:?}"
    );
    let out = l.snapshot_loaded(restored);
    let mut out = l.persisted(persist_seq(&out).unwrap_or_default());
    deliver(&mut t, &out);
    assert_eq!(t.feed_applied(), 5, "the tab follows the new numbering");
    if !out.iter().any(|o| matches!(o, Out::OpenFeed { .. })) {
        out = l.timer_fired();
    }
    assert!(out.contains(&Out::OpenFeed { since: 5 }), "{out:?}");
    assert_eq!(l.feed_opened(), [Out::CheckHead { since: 5 }]);
    assert!(l.head_known(5, 5).is_empty());
    for seq in 6..=8 {
        let out = l.feed_entry(put(seq, "a", seq));
        let out = l.persisted(persist_seq(&out).unwrap_or_default());
        deliver(&mut t, &out);
    }
    assert_eq!(shown(&t), [("a".into(), json!(8)), ("b".into(), json!(5))]);
}

/// After a restart the leader broadcasts the restored rows, and answers a tab that asked
/// from the old numbering with the same rows, over another channel.
fn restarted_with_two_deliveries(
    config: LeaderSyncConfig,
    rows: &[(&str, i64)],
) -> (LeaderSync, TabCore, Vec<Out>, Vec<Out>) {
    let (mut l, t) = at_100(config, rows);
    let mut restored: Vec<(&str, i64)> = rows.to_vec();
    for r in &mut restored {
        r.1 = 5;
    }
    assert_eq!(l.feed_opened(), []);
    let out = l.head_known(100, 5);
    assert!(out.contains(&Out::LoadSnapshot {
        collection: "todos".into()
    }));
    let out = l.snapshot_loaded(snap("todos", 5, &restored));
    let broadcast = l.persisted(persist_seq(&out).unwrap_or_default());
    let direct = l.tab_asks(me(), 100);
    (l, t, broadcast, direct)
}

#[test]
fn a_restart_delivered_twice_with_its_parts_interleaved_keeps_every_row() {
    let mut config = LeaderSyncConfig::new(["todos"]);
    config.rows_per_part = 1;
    let rows = [("k1", 1), ("k2", 1), ("k3", 1)];
    let (_, mut t, broadcast, direct) = restarted_with_two_deliveries(config, &rows);
    let (p, q) = (messages(&broadcast), messages(&direct));
    assert_eq!((p.len(), q.len()), (3, 3), "{broadcast:?} {direct:?}");
    // No order between the channel and the port.
    for (to, m) in [&p[0], &q[0], &p[1], &p[2], &q[1], &q[2]] {
        t.receive(1, env(m.clone(), to.as_ref()));
    }
    let keys: Vec<String> = shown(&t).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["k1", "k2", "k3"]);
    assert_eq!(t.feed_applied(), 5);
}

#[test]
fn a_restart_delivered_again_after_a_new_entry_does_not_send_the_tab_back() {
    let config = LeaderSyncConfig::new(["todos"]);
    let (mut l, mut t, broadcast, direct) = restarted_with_two_deliveries(config, &[("k1", 1)]);
    deliver(&mut t, &broadcast);
    let out = l.feed_entry(put(6, "k1", 6));
    deliver(&mut t, &l.persisted(persist_seq(&out).unwrap_or_default()));
    assert_eq!(shown(&t), [("k1".into(), json!(6))]);
    deliver(&mut t, &direct);
    assert_eq!(shown(&t), [("k1".into(), json!(6))], "not back to 5");
    assert_eq!(t.feed_applied(), 6);
}

#[test]
fn a_tab_waiting_for_rows_when_the_sync_is_replaced_is_answered_by_the_next() {
    let mut config = LeaderSyncConfig::new(["todos"]);
    config.log_entries = 2;
    let mut first = leader(config.clone());
    first.start(Some(vec![snap("todos", 50, &[("a", 50)])]));
    first.feed_opened();
    for seq in 51..=55 {
        let out = first.feed_entry(put(seq, "a", seq));
        first.persisted(persist_seq(&out).unwrap_or_default());
    }
    // A new tab (at 0) sees a gap in the broadcast of 56 and asks, while 57 is being written:
    // it must wait for rows.
    let mut t = tab();
    let out = first.feed_entry(put(56, "a", 56));
    let broadcast = first.persisted(persist_seq(&out).unwrap_or_default());
    assert!(persist_seq(&first.feed_entry(put(57, "a", 57))).is_some());
    deliver(&mut t, &broadcast);
    assert!(
        first.tab_asks(me(), 0).is_empty(),
        "waits: a batch is in flight"
    );
    assert_eq!(first.waiting_asks(), [(me(), 0)]);
    // Writing 57 fails: the host starts a new sync from storage (56), and asks it for the
    // tabs the first had not answered.
    let waiting = first.waiting_asks();
    drop(first);
    let mut next = leader(config);
    next.start(Some(vec![snap("todos", 56, &[("a", 56)])]));
    for (tab, applied) in waiting {
        deliver(&mut t, &next.tab_asks(tab, applied));
    }
    next.feed_opened();
    for seq in 57..=60 {
        let out = next.feed_entry(put(seq, "a", seq));
        deliver(
            &mut t,
            &next.persisted(persist_seq(&out).unwrap_or_default()),
        );
    }
    assert_eq!(t.feed_applied(), 60);
    assert_eq!(shown(&t), [("a".into(), json!(60))]);
}

#[test]
fn rows_parts_dropped_while_a_new_leader_is_checked_do_not_make_a_partial_collection() {
    let mut config = LeaderSyncConfig::new(["todos"]);
    config.rows_per_part = 1;
    let mut l = leader(config);
    let rows: Vec<(String, i64)> = (0..70).map(|i| (format!("k{i:02}"), i)).collect();
    let rows: Vec<(&str, i64)> = rows.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    l.start(None);
    let out = l.snapshot_loaded(snap("todos", 10, &rows));
    let broadcast = l.persisted(persist_seq(&out).unwrap_or_default());
    // A new tab hears the claim and, while it checks it, the leader's 70 parts: more than it
    // holds for a claim, so the first are dropped.
    let mut t = TabCore::new(me(), "app");
    t.follow_leader_feed(&["todos"]);
    t.receive(0, env(Message::Leader { epoch: Epoch(1) }, None));
    for (to, m) in messages(&broadcast) {
        t.receive(0, env(m, to.as_ref()));
    }
    let asks: Vec<u64> = t
        .leader_verified(0, Epoch(1), ClientId("leader".into()))
        .into_iter()
        .filter_map(|o| match o {
            TabOutput::Send(Message::SyncFrom { applied }) => Some(applied),
            _ => None,
        })
        .collect();
    assert_eq!(asks, [0]);
    deliver(&mut t, &l.tab_asks(me(), 0));
    assert_eq!(t.view().rows("todos").count(), 70);
    assert_eq!(t.feed_applied(), 10);
}
