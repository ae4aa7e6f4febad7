use super::*;
use crate::retry::SplitMix64;
use crate::sync::{ChangeOp, RowChange};
use serde_json::json;
use LeaderSyncOutput as Out;

fn leader(collections: &[&str]) -> LeaderSync {
    LeaderSync::new(
        LeaderSyncConfig::new(collections.iter().copied()),
        Box::new(SplitMix64::new(7)),
    )
}

fn snap(collection: &str, seq: u64, rows: &[(&str, i64)]) -> CollectionSnapshot {
    CollectionSnapshot {
        collection: collection.into(),
        seq,
        rows: rows.iter().map(|(k, v)| ((*k).into(), json!(v))).collect(),
    }
}

fn put(seq: u64, collection: &str, key: &str, v: i64) -> FeedEntry {
    FeedEntry {
        seq,
        prev_seq: seq - 1,
        tx_id: None,
        changes: vec![RowChange {
            collection: collection.into(),
            key: key.into(),
            op: ChangeOp::Update,
            value: Some(json!(v)),
        }],
    }
}

fn persist_seq(out: &[Out]) -> Option<u64> {
    out.iter().find_map(|o| match o {
        Out::Persist(b) => Some(b.seq),
        _ => None,
    })
}

fn broadcast_seqs(out: &[Out]) -> Vec<u64> {
    out.iter()
        .filter_map(|o| match o {
            Out::Broadcast(es) => Some(es.iter().map(|e| e.seq)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A leader with `todos` loaded at `seq` (persisted) and its feed open.
fn streaming(seq: u64) -> LeaderSync {
    let mut l = leader(&["todos"]);
    assert_eq!(
        l.start(None),
        [Out::LoadSnapshot {
            collection: "todos".into()
        }]
    );
    let out = l.snapshot_loaded(snap("todos", seq, &[("a", 1)]));
    assert!(out.contains(&Out::OpenFeed { since: seq }), "{out:?}");
    let out = l.persisted(persist_seq(&out).unwrap());
    assert!(
        matches!(&out[..], [Out::SendRows { to: None, .. }, Out::SyncedTo { seq: s }] if *s == seq),
        "{out:?}"
    );
    l.feed_opened();
    l
}

#[test]
fn a_restored_leader_opens_the_feed_from_storage_and_loads_only_what_is_missing() {
    let mut l = leader(&["todos", "tags"]);
    let out = l.start(Some(vec![snap("todos", 9, &[]), snap("gone", 3, &[])]));
    assert_eq!(
        out,
        [Out::LoadSnapshot {
            collection: "tags".into()
        }]
    );
    let out = l.snapshot_loaded(snap("tags", 12, &[]));
    assert!(out.contains(&Out::OpenFeed { since: 9 }), "{out:?}");
    assert_eq!(l.rows().seq("gone"), None);

    let mut l = leader(&["todos"]);
    assert_eq!(
        l.start(Some(vec![snap("todos", 4, &[])])),
        [Out::SyncedTo { seq: 4 }, Out::OpenFeed { since: 4 }]
    );
}

#[test]
fn entries_are_broadcast_only_once_persisted_and_grouped_while_a_write_is_in_flight() {
    let mut l = streaming(5);
    let out = l.feed_entry(put(6, "todos", "a", 6));
    assert_eq!(broadcast_seqs(&out), Vec::<u64>::new());
    let Some(Out::Persist(batch)) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(batch.seq, 6);
    assert_eq!(batch.seqs.get("todos"), Some(&6));
    assert_eq!(
        batch.writes,
        [RowWrite::Put {
            collection: "todos".into(),
            key: "a".into(),
            value: json!(6)
        }]
    );
    assert!(l.feed_entry(put(7, "todos", "b", 7)).is_empty(), "waits");
    assert!(l.feed_entry(put(8, "todos", "b", 8)).is_empty());
    assert!(l.persisted(99).is_empty(), "not the batch in flight");
    let out = l.persisted(6);
    assert_eq!(broadcast_seqs(&out), [6]);
    assert!(out.contains(&Out::SyncedTo { seq: 6 }), "{out:?}");
    assert_eq!(persist_seq(&out), Some(8), "7 and 8 in one batch");
    assert_eq!(broadcast_seqs(&l.persisted(8)), [7, 8]);
}

#[test]
fn a_gap_is_fetched_once_and_a_range_that_makes_no_progress_reloads() {
    let mut l = streaming(5);
    let out = l.feed_entry(put(9, "todos", "a", 9));
    assert_eq!(out, [Out::FetchRange { since: 5, limit: 3 }]);
    assert!(l.feed_entry(put(10, "todos", "a", 10)).is_empty());
    let out = l.range_loaded(vec![put(6, "todos", "a", 6)]);
    assert!(
        out.contains(&Out::FetchRange { since: 6, limit: 2 }),
        "{out:?}"
    );
    let out = l.range_loaded(vec![]);
    assert!(
        out.contains(&Out::LoadSnapshot {
            collection: "todos".into()
        }),
        "{out:?}"
    );
    let out = l.snapshot_loaded(snap("todos", 8, &[("a", 8)]));
    assert!(
        !out.iter().any(|o| matches!(o, Out::OpenFeed { .. })),
        "still open"
    );
    assert_eq!(l.applied(), 10, "9 and 10 follow the snapshot at 8");
    assert_eq!(l.rows().get("todos", "a"), Some(&json!(10)));
}

#[test]
fn a_failed_range_reloads_and_a_full_buffer_reloads() {
    let mut l = streaming(1);
    l.feed_entry(put(4, "todos", "a", 4));
    // After a backoff, not back to back with the failure.
    let out = l.range_failed();
    assert!(
        matches!(out.as_slice(), [Out::SetTimer { after_ms }] if *after_ms >= 1_000),
        "{out:?}"
    );
    assert_eq!(
        l.timer_fired(),
        [Out::LoadSnapshot {
            collection: "todos".into()
        }]
    );
    let mut config = LeaderSyncConfig::new(["todos"]);
    config.max_buffered = 2;
    let mut l = LeaderSync::new(config, Box::new(SplitMix64::new(1)));
    l.start(Some(vec![snap("todos", 0, &[])]));
    l.feed_entry(put(5, "todos", "a", 5));
    l.feed_entry(put(6, "todos", "a", 6));
    let out = l.feed_entry(put(7, "todos", "a", 7));
    assert!(out.contains(&Out::LoadSnapshot {
        collection: "todos".into()
    }));
}

#[test]
fn a_feed_error_reconnects_after_a_growing_backoff_from_the_last_applied_seq() {
    let mut l = streaming(5);
    l.feed_entry(put(6, "todos", "a", 6));
    let out = l.feed_error();
    let [Out::CloseFeed, Out::SetTimer { after_ms: first }] = out[..] else {
        panic!("{out:?}")
    };
    assert!((1000..=1300).contains(&first), "{first}");
    assert!(l.feed_error().is_empty(), "already closed");
    assert_eq!(l.timer_fired(), [Out::OpenFeed { since: 6 }]);
    let out = l.feed_error();
    let [Out::CloseFeed, Out::SetTimer { after_ms: second }] = out[..] else {
        panic!("{out:?}")
    };
    assert!((2000..=2600).contains(&second), "{second}");
    l.timer_fired();
    l.feed_entry(put(7, "todos", "a", 7));
    let out = l.feed_error();
    assert!(
        matches!(out[..], [Out::CloseFeed, Out::SetTimer { after_ms }] if after_ms <= 1300),
        "an entry resets the backoff: {out:?}"
    );
}

#[test]
fn a_failed_snapshot_is_asked_again_when_the_timer_fires() {
    let mut l = leader(&["todos"]);
    l.start(None);
    let out = l.snapshot_failed("todos");
    assert!(matches!(out[..], [Out::SetTimer { .. }]), "{out:?}");
    assert_eq!(
        l.timer_fired(),
        [Out::LoadSnapshot {
            collection: "todos".into()
        }]
    );
    let out = l.snapshot_loaded(snap("todos", 3, &[]));
    assert!(out.contains(&Out::OpenFeed { since: 3 }));
}

#[test]
fn a_tab_behind_gets_entries_from_the_log_or_rows_in_parts() {
    let mut l = streaming(5);
    let out = l.feed_entry(put(6, "todos", "a", 6));
    let s = persist_seq(&out).unwrap();
    l.persisted(s);
    let out = l.feed_entry(put(7, "todos", "b", 7));
    let s = persist_seq(&out).unwrap();
    l.persisted(s);
    let me = ClientId("tab".into());
    let out = l.tab_asks(me.clone(), 6);
    let [Out::SendEntries { to, entries }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(to, &me);
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [7]);
    assert!(l.tab_asks(me.clone(), 7).is_empty(), "up to date");
    let out = l.tab_asks(me.clone(), 2);
    let [Out::SendRows {
        to: Some(to),
        parts,
    }] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(to, &me);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].seq, 7);
    assert_eq!(parts[0].rows.len(), 2);
}

#[test]
fn rows_for_a_tab_wait_until_nothing_is_unpersisted() {
    let mut l = streaming(5);
    let out = l.feed_entry(put(6, "todos", "a", 6));
    let me = ClientId("tab".into());
    assert!(
        l.tab_asks(me.clone(), 0).is_empty(),
        "6 is not persisted yet"
    );
    let out = l.persisted(persist_seq(&out).unwrap());
    assert_eq!(broadcast_seqs(&out), [6]);
    assert!(
        matches!(&out[1..], [Out::SyncedTo { seq: 6 }, Out::SendRows { to: Some(to), parts }] if *to == me && parts[0].seq == 6),
        "{out:?}"
    );
}

#[test]
fn a_stopped_leader_closes_its_feed_and_does_nothing_more() {
    let mut l = streaming(5);
    let out = l.feed_entry(put(6, "todos", "a", 6));
    assert_eq!(l.stop(), [Out::CloseFeed]);
    assert!(l.persisted(persist_seq(&out).unwrap()).is_empty());
    assert!(l.feed_entry(put(7, "todos", "a", 7)).is_empty());
    assert!(l.timer_fired().is_empty());
}

#[test]
fn an_invalid_or_duplicate_entry_changes_nothing() {
    let mut l = streaming(5);
    let mut bad = put(6, "todos", "a", 6);
    bad.changes[0].value = None;
    assert!(l.feed_entry(bad).is_empty());
    assert!(l.feed_entry(put(5, "todos", "a", 5)).is_empty());
    assert_eq!((l.applied(), l.duplicates()), (5, 1));
}

#[test]
fn entries_dropped_from_a_full_buffer_during_a_reload_are_fetched_by_reopening_the_feed() {
    let mut config = LeaderSyncConfig::new(["todos"]);
    config.max_buffered = 1;
    let mut l = LeaderSync::new(config, Box::new(SplitMix64::new(1)));
    l.start(Some(vec![snap("todos", 0, &[])]));
    l.feed_opened();
    l.feed_entry(put(5, "todos", "a", 5));
    let out = l.feed_entry(put(6, "todos", "a", 6));
    assert!(out.contains(&Out::LoadSnapshot {
        collection: "todos".into()
    }));
    let out = l.snapshot_loaded(snap("todos", 4, &[]));
    assert_eq!(l.applied(), 5, "5 was buffered");
    assert!(
        out.contains(&Out::CloseFeed) && out.contains(&Out::OpenFeed { since: 5 }),
        "6 was dropped: {out:?}"
    );
}

#[test]
fn a_server_whose_head_went_back_is_loaded_again_and_followed_from_its_new_numbering() {
    let mut l = leader(&["todos"]);
    assert_eq!(
        l.start(Some(vec![snap("todos", 9, &[("a", 1)])])),
        [Out::SyncedTo { seq: 9 }, Out::OpenFeed { since: 9 }]
    );
    assert_eq!(l.feed_opened(), [Out::CheckHead { since: 9 }]);
    assert!(
        l.head_known(9, 9).is_empty(),
        "a head at the position is fine"
    );
    assert!(l.head_known(9, 40).is_empty(), "and ahead of it");
    // The server's database was restored from a backup: its head is 3.
    assert_eq!(
        l.head_known(9, 3),
        [
            Out::CloseFeed,
            Out::LoadSnapshot {
                collection: "todos".into()
            }
        ],
        "the feed closes at once: its entries are of the new numbering"
    );
    assert!(l.head_known(9, 3).is_empty(), "asked once");
    assert!(
        l.feed_entry(put(4, "todos", "b", 4)).is_empty(),
        "an entry late from the closed feed is not taken"
    );
    let out = l.snapshot_loaded(snap("todos", 3, &[("b", 2)]));
    assert!(
        out.contains(&Out::OpenFeed { since: 3 }),
        "the feed follows the new numbering: {out:?}"
    );
    assert_eq!(l.applied(), 3);
    let out = l.persisted(persist_seq(&out).unwrap());
    let restarts = |out: &[Out], to: Option<ClientId>| {
        out.iter().any(|o| matches!(o, Out::SendRows { to: t, parts } if *t == to && !parts.is_empty() && parts.iter().all(|p| p.restart && p.seq == 3)))
    };
    assert!(
        restarts(&out, None),
        "every tab is told to start again: {out:?}"
    );
    // A tab that missed it, still at 9, is ahead of the leader: it gets every row, to replace
    // its own; one at 3 is up to date.
    let me = ClientId("me".into());
    assert!(restarts(&l.tab_asks(me.clone(), 9), Some(me.clone())));
    assert!(l.tab_asks(me.clone(), 3).is_empty());
    // The server's next entry, 4, is applied (not taken for a duplicate of the old 4).
    let out = l.feed_entry(put(4, "todos", "b", 4));
    l.persisted(persist_seq(&out).unwrap());
    assert_eq!(l.applied(), 4);
    assert_eq!(l.rows().get("todos", "b"), Some(&json!(4)));
    assert_eq!(
        l.rows().get("todos", "a"),
        None,
        "the old rows went with the reload"
    );
    // A feed that opens with nothing applied asks nothing.
    let mut fresh = leader(&["todos"]);
    fresh.start(None);
    let out = fresh.snapshot_loaded(snap("todos", 0, &[]));
    assert!(out.contains(&Out::OpenFeed { since: 0 }));
    assert!(fresh.feed_opened().is_empty());
}

#[test]
fn a_head_answered_while_the_feed_went_on_is_not_taken_for_a_server_that_went_back() {
    // The check is asked at 9; the server answers 9, but the feed brings 10 and 11 before the
    // answer comes (a busy server): the head is below what is applied by then, yet no history
    // was lost. Taking it for a restart reloaded every collection and sent the tabs rows older
    // than the entries they had just shown (a row's value went back).
    let mut l = leader(&["todos"]);
    l.start(Some(vec![snap("todos", 9, &[("a", 9)])]));
    assert_eq!(l.feed_opened(), [Out::CheckHead { since: 9 }]);
    for seq in [10, 11] {
        let out = l.feed_entry(put(seq, "todos", "a", seq as i64));
        l.persisted(persist_seq(&out).unwrap());
    }
    assert_eq!(l.applied(), 11);
    assert!(
        l.head_known(9, 9).is_empty(),
        "no reload, no closed feed, no restart"
    );
    let out = l.feed_entry(put(12, "todos", "a", 12));
    assert!(
        out.iter().any(|o| matches!(o, Out::Persist(_))),
        "the feed goes on: {out:?}"
    );
}

/// The server's feed carries every collection; the app syncs only `todos`. An entry for
/// `notes` is not kept: kept, it was stored and sent to every tab, and, sitting at the feed's
/// position, it held the cursor behind a gap that a reload of `todos` had closed, so the gap
/// was fetched again, failed again, and everything reloaded again, for good.
#[test]
fn a_collection_nobody_syncs_is_not_kept_and_does_not_hold_the_cursor_behind_a_gap() {
    let mut l = streaming(5);
    let out = l.feed_entry(put(6, "notes", "n", 1));
    l.persisted(persist_seq(&out).unwrap());
    assert_eq!(l.rows().seq("notes"), None, "not kept");
    assert_eq!(l.applied(), 6, "its entry still moves the feed on");
    let out = l.feed_entry(put(9, "todos", "a", 9));
    assert!(
        out.contains(&Out::FetchRange { since: 6, limit: 2 }),
        "{out:?}"
    );
    l.range_failed();
    assert_eq!(
        l.timer_fired(),
        [Out::LoadSnapshot {
            collection: "todos".into()
        }]
    );
    // The snapshot at 12 covers the gap (7..8): no refetch, the feed goes on from 12.
    let out = l.snapshot_loaded(snap("todos", 12, &[("a", 12)]));
    assert!(
        !out.iter().any(|o| matches!(o, Out::FetchRange { .. })),
        "{out:?}"
    );
    assert_eq!(l.applied(), 12);
    // A tab that joins is sent the rows of `todos` alone.
    if let Some(s) = persist_seq(&out) {
        l.persisted(s);
    }
    let out = l.tab_asks(ClientId("late".into()), 0);
    let sent: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Out::SendRows { parts, .. } => Some(parts.iter().map(|p| p.collection.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(sent, ["todos"]);
}

/// A quiet server behind a proxy that cuts long requests: each cut follows a feed that
/// opened, so the reconnect waits the first step of the backoff, not a longer one each time
/// (1, 2, 5, 9, 18, 34, 68 s before: the tabs a minute behind after every cut).
#[test]
fn a_feed_that_opened_starts_its_backoff_afresh_when_it_is_cut() {
    let mut l = streaming(5);
    let mut waits = Vec::new();
    for _ in 0..7 {
        for o in l.feed_error() {
            if let Out::SetTimer { after_ms } = o {
                waits.push(after_ms);
            }
        }
        assert!(l.timer_fired().contains(&Out::OpenFeed { since: 5 }));
        l.feed_opened();
    }
    assert!(waits.iter().all(|w| *w <= 1_300), "{waits:?}");
    // A feed that never opens still backs off further each time.
    let mut waits = Vec::new();
    for _ in 0..4 {
        for o in l.feed_error() {
            if let Out::SetTimer { after_ms } = o {
                waits.push(after_ms);
            }
        }
        l.timer_fired();
    }
    assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
}

/// A tab's ask that reaches a sync stopped by a storage failure (it waits out its backoff
/// before the next starts) is kept for the next one, which answers it: a tab asks once.
#[test]
fn an_ask_that_reaches_a_stopped_sync_is_handed_to_the_next() {
    let mut l = streaming(5);
    l.stop();
    assert!(l.tab_asks(ClientId("reloaded".into()), 0).is_empty());
    assert_eq!(l.waiting_asks(), vec![(ClientId("reloaded".into()), 0)]);
}

/// A server whose change log is empty while it has rows answers its snapshot at seq 0: a tab
/// that joins later (at 0, with no rows) is sent them, where it was told it was up to date.
#[test]
fn a_tab_that_joins_after_a_snapshot_at_seq_0_is_sent_its_rows() {
    let mut l = leader(&["todos"]);
    l.start(None);
    let out = l.snapshot_loaded(snap("todos", 0, &[("a", 1), ("b", 2)]));
    l.persisted(persist_seq(&out).unwrap());
    l.feed_opened();
    let out = l.tab_asks(ClientId("late".into()), 0);
    let rows: usize = out
        .iter()
        .filter_map(|o| match o {
            Out::SendRows { parts, .. } => Some(parts.iter().map(|p| p.rows.len()).sum::<usize>()),
            _ => None,
        })
        .sum();
    assert_eq!(rows, 2, "{out:?}");
}

/// A new leader restores `todos` at 200 and loads `notes` (newly configured): once `notes` is
/// stored, the executor hears that storage holds everything up to 200, for what the last
/// leader left awaiting the feed.
#[test]
fn a_leader_that_loads_one_collection_at_start_says_synced_to_once_it_is_stored() {
    let mut l = leader(&["todos", "notes"]);
    let out = l.start(Some(vec![snap("todos", 200, &[("a", 1)])]));
    assert_eq!(
        out,
        [Out::LoadSnapshot {
            collection: "notes".into()
        }]
    );
    let out = l.snapshot_loaded(snap("notes", 250, &[]));
    let mut synced: Vec<Out> = out
        .iter()
        .filter(|o| matches!(o, Out::SyncedTo { .. }))
        .cloned()
        .collect();
    let out = l.persisted(persist_seq(&out).unwrap());
    synced.extend(
        out.iter()
            .filter(|o| matches!(o, Out::SyncedTo { .. }))
            .cloned(),
    );
    assert_eq!(synced, [Out::SyncedTo { seq: 200 }]);
}

/// The server went back and the leader reloads both collections; it dies after `todos` came
/// in and before `notes` did. Nothing of the reload is stored until both are in, so the next
/// leader finds storage all of the old numbering, and its head check sees the restart again.
#[test]
fn after_the_server_went_back_the_reloaded_collections_are_stored_together() {
    let mut l = leader(&["todos", "notes"]);
    l.start(None);
    for c in ["todos", "notes"] {
        let out = l.snapshot_loaded(snap(c, 1000, &[("a", 1)]));
        if let Some(s) = persist_seq(&out) {
            l.persisted(s);
        }
    }
    l.feed_opened();
    let out = l.head_known(1000, 3);
    assert!(out.contains(&Out::LoadSnapshot {
        collection: "notes".into()
    }));
    let out = l.snapshot_loaded(snap("todos", 3, &[("a", 3)]));
    assert_eq!(persist_seq(&out), None, "not stored alone: {out:?}");
    let out = l.snapshot_loaded(snap("notes", 3, &[("n", 3)]));
    let Some(Out::Persist(batch)) = out.iter().find(|o| matches!(o, Out::Persist(_))) else {
        panic!("{out:?}")
    };
    let replaced: Vec<&str> = batch
        .writes
        .iter()
        .filter_map(|w| match w {
            RowWrite::Replace(s) => Some(s.collection.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(replaced, ["todos", "notes"]);
    assert!(batch.seqs.values().all(|s| *s == 3), "{:?}", batch.seqs);
}
