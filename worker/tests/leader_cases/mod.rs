//! The leader's test bodies — IndexedDB outbox, Web Lock, executor, channel — run by
//! `leader.rs` in a dedicated worker and by `leader_shared.rs` in a shared worker of headless
//! Chromium. A "tab" here is a second channel object in the same worker, which the
//! BroadcastChannel treats like any other context. Every wait is on an event.

use futures_util::StreamExt;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::TransactionMode;
use outbox_runtime::channel::{Channel, Incoming};
use outbox_shared::model::{
    Attempt, ClientId, Epoch, ErrorCode, PendingMutation, Strategy, Transaction, TransactionState,
};
use outbox_shared::protocol::{Envelope, Message};
use outbox_shared::store::{Removal, StoreError, Tombstone, WriteBatch, TOMBSTONE_TTL_MS};
use outbox_worker::idb::{store_error, IdbStore};
use outbox_worker::leader::Leader;
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;

fn unique(name: &str) -> String {
    format!("{name}-{}", outbox_runtime::clock::random_id())
}

fn tx(id: &str, key: &str) -> Transaction {
    Transaction::new(
        id.into(),
        "sync",
        Strategy::Ordered,
        vec![PendingMutation::insert("todos", key, json!({ "id": key }))],
        outbox_runtime::clock::now(),
    )
}

/// A write of `puts` and `completed` (no removals) at `epoch`.
fn batch(
    id: u64,
    epoch: Epoch,
    puts: Vec<Transaction>,
    completed: Vec<Tombstone>,
    reachable: Option<bool>,
) -> WriteBatch {
    WriteBatch {
        id,
        epoch,
        puts,
        completed,
        deletes: vec![],
        reachable,
    }
}

/// A JS mutation function that records every call's `idempotencyKey#attempt` and then behaves
/// as `body` says (JS source taking `args`).
fn recording_fn(calls: &js_sys::Array, body: &str) -> js_sys::Function {
    let f = js_sys::Function::new_with_args(
        "calls, args",
        &format!("calls.push(args.idempotencyKey + '#' + args.attempt); {body}"),
    );
    let bound = f.bind1(&JsValue::NULL, calls);
    wasm_bindgen::JsCast::unchecked_into(JsValue::from(bound))
}

fn options(app: &str, fns: &[(&str, &js_sys::Function)]) -> JsValue {
    let o = js_sys::Object::new();
    js_sys::Reflect::set(&o, &"app".into(), &app.into()).unwrap();
    js_sys::Reflect::set(&o, &"heartbeatMs".into(), &JsValue::from(60_000)).unwrap();
    let m = js_sys::Object::new();
    for (name, f) in fns {
        js_sys::Reflect::set(&m, &(*name).into(), f).unwrap();
    }
    js_sys::Reflect::set(&o, &"mutationFns".into(), &m).unwrap();
    o.into()
}

async fn start(scope: &str, options: &JsValue) -> Leader {
    let parsed = outbox_worker::options::parse(options).unwrap();
    Leader::start(scope.to_owned(), parsed).await.unwrap()
}

/// A tab: a channel of its own, and the leader's epoch once heard.
struct Tab {
    channel: Channel,
    incoming: Incoming,
    me: ClientId,
    scope: String,
}

impl Tab {
    fn open(scope: &str) -> Self {
        let me = ClientId(unique("tab"));
        let (channel, incoming) = Channel::open_stream(scope, me.clone()).unwrap();
        Self {
            channel,
            incoming,
            me,
            scope: scope.to_owned(),
        }
    }

    fn post(&self, body: Message) {
        self.channel
            .post(&Envelope::broadcast(&self.scope, &self.me, body))
            .unwrap();
    }

    /// The next message matching `pick`, skipping heartbeats and others.
    async fn until<T>(&mut self, mut pick: impl FnMut(&Message) -> Option<T>) -> T {
        loop {
            let env = self.incoming.next().await.expect("channel closed");
            if let Some(t) = pick(&env.body) {
                return t;
            }
        }
    }

    /// Asks who leads and waits for the answer.
    async fn leader(&mut self) -> Epoch {
        self.post(Message::Hello);
        self.until(|m| match m {
            Message::Leader { epoch } => Some(*epoch),
            _ => None,
        })
        .await
    }

    /// After a leader of epoch `first` was robbed of the lock: waits until the new leader has
    /// announced itself and the robbed one has said it stopped, in whichever order; returns the
    /// new epoch.
    async fn handover_from(&mut self, first: Epoch) -> Epoch {
        let (mut second, mut robbed_resigned) = (None, false);
        loop {
            if let (Some(second), true) = (second, robbed_resigned) {
                return second;
            }
            match self.until(|m| Some(m.clone())).await {
                Message::Leader { epoch } if epoch > first => second = Some(epoch),
                Message::Resign { epoch } if epoch == first => robbed_resigned = true,
                _ => {}
            }
        }
    }

    /// Waits until `id` is reported in `state`.
    async fn settled(&mut self, id: &str) -> Transaction {
        self.until(|m| match m {
            Message::State { txs, .. } => txs
                .iter()
                .find(|t| t.id.as_str() == id && t.state.is_settled())
                .cloned(),
            _ => None,
        })
        .await
    }
}

pub async fn the_store_bumps_the_epoch_and_keeps_records_across_openings() {
    let scope = unique("store");
    let store = IdbStore::open(&scope).await.unwrap();
    let first = store.begin_leadership(0).await.unwrap();
    assert!(first.records.is_empty());
    let mut t = tx("a", "1");
    t.epoch = first.epoch;
    let batch = WriteBatch {
        id: 1,
        epoch: first.epoch,
        puts: vec![t.clone()],
        completed: vec![],
        deletes: vec![],
        reachable: None,
    };
    store.write(&batch).await.unwrap();
    let reopened = IdbStore::open(&scope).await.unwrap();
    let second = reopened.begin_leadership(0).await.unwrap();
    assert_eq!(second.epoch, first.epoch.next());
    assert_eq!(second.records.len(), 1);
    assert_eq!(
        Transaction::from_stored(second.records[0].1.clone()).unwrap(),
        t
    );
}

pub async fn a_takeover_commits_its_first_writes_with_the_epoch() {
    let scope = unique("takeover");
    let store = IdbStore::open(&scope).await.unwrap();
    let first = store.begin_leadership(0).await.unwrap();
    let mut a = tx("a", "1");
    a.epoch = first.epoch;
    store
        .write(&batch(1, first.epoch, vec![a.clone()], vec![], None))
        .await
        .unwrap();
    let next = IdbStore::open(&scope).await.unwrap();
    let mut b = tx("b", "2");
    let mut seen = None;
    let outcomes = next
        .take_over(0, |loaded| {
            seen = Some((loaded.epoch, loaded.records.len()));
            b.epoch = loaded.epoch;
            vec![batch(7, loaded.epoch, vec![b.clone()], vec![], Some(false))]
        })
        .await
        .unwrap();
    let second = first.epoch.next();
    assert_eq!(
        seen,
        Some((second, 1)),
        "it saw the outbox and the new epoch"
    );
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].0, 7);
    assert!(outcomes[0].1.is_ok(), "{:?}", outcomes[0].1);
    assert_eq!(
        log_texts(&store)
            .await
            .iter()
            .filter(|t| t.contains("\"id\":\"b\""))
            .count(),
        1,
        "b is stored by the takeover itself"
    );
    // The epoch moved in the same commit: the old leader is fenced out.
    assert!(matches!(
        store
            .write(&batch(2, first.epoch, vec![a.clone()], vec![], None))
            .await,
        Err(StoreError::Fenced { .. })
    ));
    // The new leader's next write lays out after the first ones (b is replaced, not doubled).
    b.updated_at += 1;
    next.write(&batch(8, second, vec![b.clone()], vec![], None))
        .await
        .unwrap();
    let third = IdbStore::open(&scope)
        .await
        .unwrap()
        .begin_leadership(0)
        .await
        .unwrap();
    assert_eq!(third.epoch, second.next());
    assert!(third.unreachable, "the first write's mark is stored");
    let mut loaded: Vec<Transaction> = third
        .records
        .into_iter()
        .map(|(_, v)| Transaction::from_stored(v).unwrap())
        .collect();
    loaded.sort_by(|x, y| x.id.0.cmp(&y.id.0));
    assert_eq!(loaded, [a, b]);
}

pub async fn a_rehearsed_takeover_reads_the_outbox_and_writes_nothing() {
    let scope = unique("rehearsal");
    let store = IdbStore::open(&scope).await.unwrap();
    let first = store.begin_leadership(0).await.unwrap();
    let mut a = tx("a", "1");
    a.epoch = first.epoch;
    let write = |id, puts, completed| batch(id, first.epoch, puts, completed, Some(false));
    store.write(&write(1, vec![a], vec![])).await.unwrap();
    let done = Tombstone {
        id: "a".into(),
        completed_at: 1_000,
    };
    store.write(&write(2, vec![], vec![done])).await.unwrap();
    plant(store.database(), "tombstones", "old".into(), 2_000.0.into()).await;
    let (log, tombs) = (
        keys_in(&store, "log").await,
        keys_in(&store, "tombstones").await,
    );
    assert_eq!((log.len(), tombs.len()), (1, 1));
    // Late enough that a takeover would expire both tombstones; with a first write of its own.
    let late = 2_000 + TOMBSTONE_TTL_MS + 1;
    let mut seen = None;
    IdbStore::open(&scope)
        .await
        .unwrap()
        .rehearse_take_over(late, 1, &[tx("stand-in", "3")], |loaded| {
            seen = Some((loaded.epoch, loaded.records.len()));
            let mut b = tx("b", "2");
            b.epoch = loaded.epoch;
            vec![batch(9, loaded.epoch, vec![b], vec![], Some(true))]
        })
        .await
        .unwrap();
    assert_eq!(
        seen,
        Some((first.epoch.next(), 0)),
        "it worked out the next epoch; the stand-in was not used, the outbox has entries"
    );
    assert_eq!(
        keys_in(&store, "log").await,
        log,
        "no entry written or dropped"
    );
    assert_eq!(keys_in(&store, "tombstones").await, tombs, "none expired");
    let after = store.begin_leadership(0).await.unwrap();
    assert_eq!(after.epoch, first.epoch.next(), "the epoch did not move");
    assert!(after.records.is_empty(), "b was not written");
    assert!(after.unreachable, "the mark was not overwritten");
    assert_eq!(after.tombstones.len(), 2);
}

pub async fn a_rehearsal_on_an_empty_outbox_takes_its_stand_ins_over_and_writes_nothing() {
    let scope = unique("stand-in");
    let store = IdbStore::open(&scope).await.unwrap();
    let mut seen = Vec::new();
    store
        .rehearse_take_over(0, 32, &[tx("s1", "1"), tx("s2", "2")], |loaded| {
            seen = loaded
                .records
                .iter()
                .map(|(_, r)| Transaction::from_stored(r.clone()).unwrap().id.to_string())
                .collect();
            let mut b = tx("b", "3");
            b.epoch = loaded.epoch;
            vec![batch(1, loaded.epoch, vec![b], vec![], Some(false))]
        })
        .await
        .unwrap();
    seen.sort();
    assert_eq!(
        seen,
        ["s1", "s2"],
        "laid out and loaded as a write puts them"
    );
    assert!(keys_in(&store, "log").await.is_empty(), "nothing written");
    let loaded = store.begin_leadership(0).await.unwrap();
    assert!(loaded.records.is_empty() && !loaded.unreachable);
}

pub async fn the_store_keeps_whether_the_server_was_reachable_for_the_next_leader() {
    let scope = unique("reach");
    let store = IdbStore::open(&scope).await.unwrap();
    let first = store.begin_leadership(0).await.unwrap();
    assert!(!first.unreachable, "a new store knows of no failure");
    let mark = |epoch, id, reachable| batch(id, epoch, vec![], vec![], Some(reachable));
    store.write(&mark(first.epoch, 1, false)).await.unwrap();
    let second = IdbStore::open(&scope)
        .await
        .unwrap()
        .begin_leadership(0)
        .await
        .unwrap();
    assert!(second.unreachable);
    store.write(&mark(second.epoch, 2, true)).await.unwrap();
    assert!(!store.begin_leadership(0).await.unwrap().unreachable);
}

pub async fn a_completed_record_becomes_its_tombstone_and_old_tombstones_still_count() {
    let scope = unique("tombs");
    let store = IdbStore::open(&scope).await.unwrap();
    let first = store.begin_leadership(0).await.unwrap();
    let mut t = tx("a", "1");
    t.epoch = first.epoch;
    let write = |id, puts, completed| batch(id, first.epoch, puts, completed, None);
    store.write(&write(1, vec![t], vec![])).await.unwrap();
    let done = Tombstone {
        id: "a".into(),
        completed_at: 1_000,
    };
    store
        .write(&write(2, vec![], vec![done.clone()]))
        .await
        .unwrap();
    {
        // In the log, and the record's entry is gone.
        let t = store.database().transaction("log").build().unwrap();
        let os = t.object_store("log").unwrap();
        let raw: Option<String> = os.get(2.0).primitive().unwrap().await.unwrap();
        assert_eq!(raw.as_deref(), Some("{\"d\":[[\"a\",1000]]}"));
    }
    assert_eq!(keys_in(&store, "log").await, ["2"]);
    // A tombstone as an older build kept it, in a store of its own.
    {
        let t = store
            .database()
            .transaction("tombstones")
            .with_mode(TransactionMode::Readwrite)
            .build()
            .unwrap();
        let os = t.object_store("tombstones").unwrap();
        os.put(2_000.0).with_key("old").primitive().unwrap();
        t.commit().await.unwrap();
    }
    let loaded = IdbStore::open(&scope)
        .await
        .unwrap()
        .begin_leadership(5_000)
        .await
        .unwrap();
    assert!(loaded.records.is_empty(), "a is no record any more");
    let mut ids: Vec<_> = loaded.tombstones.iter().map(|t| t.id.0.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["a", "old"]);
    assert!(loaded.tombstones.contains(&done));
    // Both expire.
    let later = store
        .begin_leadership(2_000 + TOMBSTONE_TTL_MS + 1)
        .await
        .unwrap();
    assert!(later.tombstones.is_empty() && later.records.is_empty());
    assert!(
        store
            .begin_leadership(0)
            .await
            .unwrap()
            .tombstones
            .is_empty(),
        "deleted"
    );
}

pub async fn a_long_leadership_deletes_expired_marks_from_the_log_in_one_range() {
    let scope = unique("compact");
    let store = IdbStore::open(&scope).await.unwrap();
    let first = store.begin_leadership(0).await.unwrap();
    let hour = TOMBSTONE_TTL_MS / 24;
    let mut write_id = 0;
    // Settles `id` at `at`: its record's entry, then its marks' entry.
    let mut settle = async |id: &str, at: u64| {
        let mut t = tx(id, id);
        t.epoch = first.epoch;
        write_id += 2;
        let done = Tombstone {
            id: id.into(),
            completed_at: at,
        };
        store
            .write(&batch(write_id - 1, first.epoch, vec![t], vec![], None))
            .await
            .unwrap();
        store
            .write(&batch(write_id, first.epoch, vec![], vec![done], None))
            .await
            .unwrap();
    };
    settle("a", 0).await;
    settle("b", 2 * hour).await;
    assert_eq!(
        keys_in(&store, "log").await,
        ["2", "4"],
        "the marks entries"
    );
    // A day after b's: both its and a's tombstones have expired; c's write deletes their
    // entries, in one range.
    settle("c", TOMBSTONE_TTL_MS + 2 * hour + 1).await;
    assert_eq!(keys_in(&store, "log").await, ["6"]);
    let loaded = IdbStore::open(&scope)
        .await
        .unwrap()
        .begin_leadership(TOMBSTONE_TTL_MS + 2 * hour + 1)
        .await
        .unwrap();
    let ids: Vec<_> = loaded.tombstones.iter().map(|t| t.id.0.clone()).collect();
    assert_eq!(ids, ["c"]);
}

pub async fn a_removal_is_remembered_for_the_next_leader_and_a_value_it_did_not_write_is_none() {
    let scope = unique("removals");
    let store = IdbStore::open(&scope).await.unwrap();
    let first = store.begin_leadership(0).await.unwrap();
    let mut t = tx("a", "1");
    t.epoch = first.epoch;
    store
        .write(&batch(1, first.epoch, vec![t], vec![], None))
        .await
        .unwrap();
    let mut removal = batch(2, first.epoch, vec![], vec![], None);
    removal.deletes = vec![Removal {
        id: "a".into(),
        removed_at: 1_000,
    }];
    store.write(&removal).await.unwrap();
    let next = IdbStore::open(&scope)
        .await
        .unwrap()
        .begin_leadership(5_000)
        .await
        .unwrap();
    assert!(next.records.is_empty(), "the removal beats the record");
    assert_eq!(
        next.removed,
        vec![Removal {
            id: "a".into(),
            removed_at: 1_000
        }]
    );
    // A value of another shape under the key is no removals, and no failure of the takeover.
    plant(
        store.database(),
        "meta",
        JsValue::from_str("removals"),
        JsValue::from_f64(7.0),
    )
    .await;
    let after = store.begin_leadership(5_000).await.unwrap();
    assert!(after.removed.is_empty() && after.records.is_empty());
}

pub async fn a_collection_with_a_stored_row_that_does_not_read_is_loaded_again_whole() {
    use outbox_shared::sync::{CollectionSnapshot, PersistBatch, RowWrite};
    let scope = unique("synced");
    let store = IdbStore::open(&scope).await.unwrap();
    let epoch = store.begin_leadership(0).await.unwrap().epoch;
    let snap = |collection: &str, rows: &[&str]| CollectionSnapshot {
        collection: collection.into(),
        seq: 7,
        rows: rows
            .iter()
            .map(|k| ((*k).to_owned(), json!({ "id": k })))
            .collect(),
    };
    let batch = PersistBatch {
        seq: 7,
        seqs: [("todos".to_owned(), 7), ("notes".to_owned(), 7)].into(),
        writes: vec![
            RowWrite::Replace(snap("todos", &["a", "b"])),
            RowWrite::Replace(snap("notes", &["n"])),
        ],
    };
    store.write_synced(epoch, &batch).await.unwrap();
    let collections = |loaded: Option<Vec<CollectionSnapshot>>| -> Vec<(String, usize)> {
        loaded
            .unwrap()
            .into_iter()
            .map(|s| (s.collection, s.rows.len()))
            .collect()
    };
    assert_eq!(
        collections(store.load_synced().await.unwrap()),
        [("notes".to_owned(), 1), ("todos".to_owned(), 2)]
    );
    // One of `todos`' rows is damaged: `todos` is left out whole (the leader loads it from the
    // server), not restored without the row; `notes` is restored; a key of no collection is
    // ignored.
    let db = store.database();
    for (key, text) in [("todos\u{0}b", "{not json"), ("stray", "{}")] {
        plant(db, "synced", key.into(), text.into()).await;
    }
    assert_eq!(
        collections(store.load_synced().await.unwrap()),
        [("notes".to_owned(), 1)]
    );
    // And a value that is not text at all.
    let batch = PersistBatch {
        seq: 8,
        seqs: [("todos".to_owned(), 8), ("notes".to_owned(), 8)].into(),
        writes: vec![RowWrite::Replace(snap("todos", &["a", "b"]))],
    };
    store.write_synced(epoch, &batch).await.unwrap();
    assert_eq!(
        collections(store.load_synced().await.unwrap()),
        [("notes".to_owned(), 1), ("todos".to_owned(), 2)],
        "the reload's rows replace the damaged one"
    );
    plant(
        db,
        "synced",
        JsValue::from_str("notes\u{0}n"),
        JsValue::from_f64(3.0),
    )
    .await;
    assert_eq!(
        collections(store.load_synced().await.unwrap()),
        [("todos".to_owned(), 2)]
    );
    // A replace deletes its own collection's rows, in one range, and no neighbour's (names
    // that share its prefix included).
    let batch = PersistBatch {
        seq: 9,
        seqs: [
            ("todos".to_owned(), 9),
            ("todo".to_owned(), 9),
            ("todos2".to_owned(), 9),
        ]
        .into(),
        writes: vec![
            RowWrite::Replace(snap("todo", &["x"])),
            RowWrite::Replace(snap("todos2", &["y", "z"])),
            RowWrite::Replace(snap("todos", &["c"])),
        ],
    };
    store.write_synced(epoch, &batch).await.unwrap();
    assert_eq!(
        keys_in(&store, "synced").await,
        [
            "notes\u{0}n",
            "stray",
            "todo\u{0}x",
            "todos\u{0}c",
            "todos2\u{0}y",
            "todos2\u{0}z"
        ]
    );
}

/// The keys in the object store `name` of `store`'s database (numbers in decimal).
async fn keys_in(store: &IdbStore, name: &str) -> Vec<String> {
    let t = store.database().transaction(name).build().unwrap();
    t.object_store(name)
        .unwrap()
        .get_all_keys::<JsValue>()
        .primitive()
        .unwrap()
        .await
        .unwrap()
        .map(|k| {
            let k = k.unwrap();
            k.as_string()
                .or_else(|| k.as_f64().map(|n| n.to_string()))
                .unwrap()
        })
        .collect()
}

/// The log's entries, as the JSON text they are stored as.
async fn log_texts(store: &IdbStore) -> Vec<String> {
    let t = store.database().transaction("log").build().unwrap();
    t.object_store("log")
        .unwrap()
        .get_all::<JsValue>()
        .primitive()
        .unwrap()
        .await
        .unwrap()
        .map(|v| v.unwrap().as_string().unwrap())
        .collect()
}

/// Puts `value` under `key` in the object store `name` of `db`.
async fn plant(
    db: &indexed_db_futures::database::Database,
    name: &str,
    key: JsValue,
    value: JsValue,
) {
    let t = db
        .transaction(name)
        .with_mode(TransactionMode::Readwrite)
        .build()
        .unwrap();
    let os = t.object_store(name).unwrap();
    os.put(value).with_key(key).primitive().unwrap();
    t.commit().await.unwrap();
}

pub async fn a_write_is_one_log_entry_for_its_records_and_one_for_its_marks() {
    let scope = unique("log");
    let store = IdbStore::open(&scope).await.unwrap();
    let epoch = store.begin_leadership(0).await.unwrap().epoch;
    let txs: Vec<Transaction> = ["a", "b", "c"]
        .into_iter()
        .map(|id| {
            let mut t = tx(id, id);
            t.epoch = epoch;
            t
        })
        .collect();
    let write = |id, epoch, puts, completed| WriteBatch {
        id,
        epoch,
        puts,
        completed,
        deletes: vec![],
        reachable: None,
    };
    store
        .write(&write(1, epoch, txs.clone(), vec![]))
        .await
        .unwrap();
    assert_eq!(keys_in(&store, "log").await, ["1"], "one put for three");
    assert!(keys_in(&store, "outbox").await.is_empty());
    // A new leader reads them back, and its writes keep to the same layout.
    let store = IdbStore::open(&scope).await.unwrap();
    let loaded = store.begin_leadership(0).await.unwrap();
    let mut back: Vec<Transaction> = loaded
        .records
        .into_iter()
        .map(|(_, r)| Transaction::from_stored(r).unwrap())
        .collect();
    back.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(back, txs);
    let done = |id: &str| Tombstone {
        id: id.into(),
        completed_at: 7,
    };
    let epoch = loaded.epoch;
    store
        .write(&write(2, epoch, vec![], vec![done("a"), done("b")]))
        .await
        .unwrap();
    assert_eq!(
        keys_in(&store, "log").await,
        ["1", "2"],
        "c's record is still only in entry 1"
    );
    store
        .write(&write(3, epoch, vec![], vec![done("c")]))
        .await
        .unwrap();
    assert_eq!(
        keys_in(&store, "log").await,
        ["2", "3"],
        "entry 1 goes in the write that beats its last record"
    );
    let loaded = store.begin_leadership(0).await.unwrap();
    assert_eq!(loaded.tombstones.len(), 3);
    // An entry that does not read is reported and quarantined whole.
    plant(
        store.database(),
        "log",
        9.0.into(),
        "{\"p\": [[\"x\", {\"torn".into(),
    )
    .await;
    let loaded = store.begin_leadership(0).await.unwrap();
    assert_eq!(loaded.records.len(), 1);
    let key = loaded.records[0].0.clone();
    assert!(Transaction::from_stored(loaded.records[0].1.clone()).is_err());
    store.quarantine(&key).await.unwrap();
    assert_eq!(keys_in(&store, "log").await, ["2", "3"]);
    assert_eq!(keys_in(&store, "quarantine").await, [key]);
    assert!(store.begin_leadership(0).await.unwrap().records.is_empty());
    // New entries take keys after the quarantined one's.
    let mut d = tx("d", "d");
    d.epoch = store.begin_leadership(0).await.unwrap().epoch;
    store
        .write(&write(4, d.epoch, vec![d], vec![]))
        .await
        .unwrap();
    assert_eq!(keys_in(&store, "log").await, ["2", "3", "4"]);
}

pub async fn a_schema_3_database_is_upgraded_and_its_packs_become_slots() {
    let scope = unique("v3");
    let name = outbox_worker::idb::database_name(&scope);
    {
        let db = indexed_db_futures::database::Database::open(name.as_str())
            .with_version(3u32)
            .with_on_upgrade_needed(|_, db| {
                for store in [
                    "meta",
                    "outbox",
                    "tombstones",
                    "quarantine",
                    "synced",
                    "packs",
                ] {
                    db.create_object_store(store).build()?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let a = serde_json::to_string(&tx("a", "a")).unwrap();
        let b = serde_json::to_string(&tx("b", "b")).unwrap();
        let pack = format!("[[\"a\", {a}], [\"b\", {b}], [\"gone\", {b}]]");
        plant(&db, "packs", "0".into(), pack.into()).await;
        // b's later record, in its slot, beats the pack's copy; gone was removed.
        let mut later = tx("b", "b");
        later.state = TransactionState::Failed;
        let later_text = serde_json::to_string(&later).unwrap();
        plant(&db, "outbox", "b".into(), later_text.into()).await;
        plant(&db, "outbox", "gone".into(), JsValue::FALSE).await;
        db.close();
    }
    let store = IdbStore::open(&scope).await.unwrap();
    let loaded = store.begin_leadership(0).await.unwrap();
    let mut back: Vec<(String, TransactionState)> = loaded
        .records
        .into_iter()
        .map(|(k, r)| (k, Transaction::from_stored(r).unwrap().state))
        .collect();
    back.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        back,
        [
            ("a".to_owned(), TransactionState::Pending),
            ("b".to_owned(), TransactionState::Failed)
        ]
    );
    assert!(keys_in(&store, "packs").await.is_empty());
    assert_eq!(keys_in(&store, "outbox").await, ["a", "b"]);
    // Completing them moves them into the log; their slots go in the same write.
    let done = |id: &str| Tombstone {
        id: id.into(),
        completed_at: 7,
    };
    store
        .write(&WriteBatch {
            id: 1,
            epoch: loaded.epoch,
            puts: vec![],
            completed: vec![done("a"), done("b")],
            deletes: vec![],
            reachable: None,
        })
        .await
        .unwrap();
    assert!(keys_in(&store, "outbox").await.is_empty());
    assert_eq!(store.begin_leadership(0).await.unwrap().tombstones.len(), 2);
}

pub async fn a_stale_leaders_write_is_fenced_out_and_rolled_back_whole() {
    let scope = unique("fence");
    let old = IdbStore::open(&scope).await.unwrap();
    let new = IdbStore::open(&scope).await.unwrap();
    let e1 = old.begin_leadership(0).await.unwrap().epoch;
    let e2 = new.begin_leadership(0).await.unwrap().epoch;
    let stale = WriteBatch {
        id: 1,
        epoch: e1,
        puts: vec![tx("late", "1")],
        completed: vec![],
        deletes: vec![],
        reachable: None,
    };
    assert_eq!(
        old.write(&stale).await,
        Err(StoreError::Fenced {
            stored: e2,
            attempted: e1
        })
    );
    let loaded = new.begin_leadership(0).await.unwrap();
    assert!(
        loaded.records.is_empty(),
        "nothing of the stale batch landed"
    );
}

pub fn quota_exhaustion_is_recognised_by_its_dom_exception_name() {
    let dom =
        web_sys::DomException::new_with_message_and_name("full", "QuotaExceededError").unwrap();
    let err = indexed_db_futures::error::Error::from(JsValue::from(dom));
    assert_eq!(store_error(&err), StoreError::QuotaExceeded);
    assert_eq!(store_error(&err).code(), ErrorCode::QuotaExceeded);
    let other = web_sys::DomException::new_with_message_and_name("x", "DataError").unwrap();
    let err = indexed_db_futures::error::Error::from(JsValue::from(other));
    assert!(matches!(store_error(&err), StoreError::Other(_)));
}

pub async fn a_submit_is_durable_then_completed_through_the_mutation_function() {
    let scope = unique("submit");
    let calls = js_sys::Array::new();
    let f = recording_fn(&calls, "return { seq: 7 };");
    let _leader = start(&scope, &options("todos", &[("sync", &f)])).await;
    let mut tab = Tab::open(&scope);
    let epoch = tab.leader().await;
    tab.post(Message::Submit {
        epoch,
        txs: vec![tx("t1", "1")],
    });
    let ids = tab
        .until(|m| match m {
            Message::Durable { ids, .. } => Some(ids.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ids, vec!["t1".into()]);
    let done = tab.settled("t1").await;
    assert_eq!(done.state, TransactionState::Completed);
    assert_eq!(done.server_seq, Some(7));
    assert_eq!(calls.to_vec(), vec![JsValue::from("t1#1")]);
}

pub async fn submits_that_arrive_together_are_committed_together() {
    let scope = unique("group");
    let never = js_sys::Function::new_no_args("return new Promise(() => {});");
    let _leader = start(&scope, &options("todos", &[("sync", &never)])).await;
    let mut tab = Tab::open(&scope);
    let epoch = tab.leader().await;
    for i in 0..50 {
        tab.post(Message::Submit {
            epoch,
            txs: vec![tx(&format!("g{i}"), &format!("k{i}"))],
        });
    }
    let mut acked = 0;
    let mut messages = 0;
    while acked < 50 {
        acked += tab
            .until(|m| match m {
                Message::Durable { ids, .. } => Some(ids.len()),
                _ => None,
            })
            .await;
        messages += 1;
    }
    assert_eq!(acked, 50);
    assert!(
        messages < 50,
        "50 submits were acknowledged in {messages} commits"
    );
}

pub async fn a_new_leader_retries_what_a_dead_one_left_persisting_with_the_same_key() {
    let scope = unique("resume");
    // A dead leader's outbox: one transaction mid-attempt.
    let store = IdbStore::open(&scope).await.unwrap();
    let epoch = store.begin_leadership(0).await.unwrap().epoch;
    let mut t = tx("r1", "1");
    t.state = TransactionState::Persisting;
    t.epoch = epoch;
    t.seq = 1;
    t.attempts.push(Attempt {
        id: "r1#1".into(),
        number: 1,
        started_at: 1,
        completed_at: None,
        error: None,
        retry_scheduled_for: None,
        epoch,
    });
    store
        .write(&WriteBatch {
            id: 1,
            epoch,
            puts: vec![t],
            completed: vec![],
            deletes: vec![],
            reachable: None,
        })
        .await
        .unwrap();
    let calls = js_sys::Array::new();
    let f = recording_fn(&calls, "return {};");
    let mut tab = Tab::open(&scope);
    let _leader = start(&scope, &options("todos", &[("sync", &f)])).await;
    let done = tab.settled("r1").await;
    assert_eq!(done.state, TransactionState::Completed);
    assert_eq!(calls.to_vec(), vec![JsValue::from("r1#2")]);
    assert_eq!(
        done.attempts[0].error.as_ref().unwrap().code,
        ErrorCode::LeaderLost
    );
}

pub async fn a_corrupt_record_is_quarantined_and_reported_and_the_rest_goes_on() {
    let scope = unique("corrupt");
    let store = IdbStore::open(&scope).await.unwrap();
    {
        let db = store.database();
        let t = db
            .transaction("outbox")
            .with_mode(TransactionMode::Readwrite)
            .build()
            .unwrap();
        let os = t.object_store("outbox").unwrap();
        // (A number would be a tombstone: see the tombstone test.)
        os.put(JsValue::TRUE).with_key("junk").primitive().unwrap();
        os.put("{not json").with_key("torn").primitive().unwrap();
        t.commit().await.unwrap();
    }
    let calls = js_sys::Array::new();
    let f = recording_fn(&calls, "return {};");
    let mut tab = Tab::open(&scope);
    let _leader = start(&scope, &options("todos", &[("sync", &f)])).await;
    let mut reported = Vec::new();
    while reported.len() < 2 {
        let m = tab
            .until(|m| match m {
                Message::Diagnostic {
                    code: ErrorCode::CorruptRecord,
                    message,
                } => Some(message.clone()),
                _ => None,
            })
            .await;
        reported.push(m);
    }
    assert!(reported.iter().any(|m| m.contains("\"junk\"")));
    assert!(reported.iter().any(|m| m.contains("\"torn\"")));
    // The quarantine transactions were created before these, so they see their result.
    let outbox_keys = keys_in(&store, "outbox").await;
    let quarantined = keys_in(&store, "quarantine").await;
    assert!(outbox_keys.is_empty(), "{outbox_keys:?}");
    assert_eq!(quarantined, vec!["junk".to_owned(), "torn".to_owned()]);
    // And the leader serves on.
    let epoch = tab.leader().await;
    tab.post(Message::Submit {
        epoch,
        txs: vec![tx("after", "1")],
    });
    assert_eq!(
        tab.settled("after").await.state,
        TransactionState::Completed
    );
}

pub async fn of_two_workers_exactly_one_leads_and_the_other_takes_over_when_it_resigns() {
    let scope = unique("two");
    let f = js_sys::Function::new_no_args("return {};");
    let a = start(&scope, &options("todos", &[("sync", &f)])).await;
    let mut tab = Tab::open(&scope);
    let first = tab.leader().await;
    let b = start(&scope, &options("todos", &[("sync", &f)])).await;
    let leading = [a.epoch().is_some(), b.epoch().is_some()];
    assert_eq!(leading, [true, false], "exactly one leads");
    a.resign();
    let second = tab
        .until(|m| match m {
            Message::Leader { epoch } if *epoch > first => Some(*epoch),
            _ => None,
        })
        .await;
    assert_eq!(second, first.next());
    assert_eq!((a.epoch(), b.epoch()), (None, Some(second)));
}

pub async fn an_unknown_mutation_function_fails_the_transaction_with_a_clear_code() {
    let scope = unique("unknown");
    let seen = Rc::new(RefCell::new(Vec::<String>::new()));
    let o = options("todos", &[]);
    let record = seen.clone();
    let on_unknown =
        wasm_bindgen::closure::Closure::<dyn FnMut(String)>::new(move |name: String| {
            record.borrow_mut().push(name);
        });
    js_sys::Reflect::set(&o, &"onUnknownMutationFn".into(), on_unknown.as_ref()).unwrap();
    let _leader = start(&scope, &o).await;
    let mut tab = Tab::open(&scope);
    let epoch = tab.leader().await;
    tab.post(Message::Submit {
        epoch,
        txs: vec![tx("u1", "1")],
    });
    let failed = tab.settled("u1").await;
    assert_eq!(failed.state, TransactionState::Failed);
    assert_eq!(failed.error_code(), Some(ErrorCode::UnknownMutationFn));
    assert_eq!(*seen.borrow(), vec!["sync".to_owned()]);
}

pub async fn before_retry_decides_a_retry_and_may_read_the_leaders_stats_meanwhile() {
    let scope = unique("before-retry");
    let calls = js_sys::Array::new();
    let f = recording_fn(&calls, "throw new Error('flaky');");
    let o = options("todos", &[("sync", &f)]);
    let retry = js_sys::JSON::parse(r#"{"baseDelayMs": 1, "jitter": 0}"#).unwrap();
    js_sys::Reflect::set(&o, &"retry".into(), &retry).unwrap();
    // The hook reads the handle of its own leader (set once it has started), then says no.
    let me: Rc<RefCell<Option<Leader>>> = Rc::default();
    let asked = Rc::new(RefCell::new(Vec::<(String, bool)>::new()));
    let (leader, record) = (me.clone(), asked.clone());
    let hook =
        wasm_bindgen::closure::Closure::<dyn FnMut(JsValue) -> bool>::new(move |tx: JsValue| {
            let id = js_sys::Reflect::get(&tx, &"id".into())
                .ok()
                .and_then(|id| id.as_string())
                .unwrap_or_default();
            let stats = leader.borrow().as_ref().and_then(Leader::stats);
            record.borrow_mut().push((id, stats.is_some()));
            false
        });
    js_sys::Reflect::set(&o, &"beforeRetry".into(), hook.as_ref()).unwrap();
    let leader = start(&scope, &o).await;
    *me.borrow_mut() = Some(leader.clone());
    let mut tab = Tab::open(&scope);
    let epoch = tab.leader().await;
    tab.post(Message::Submit {
        epoch,
        txs: vec![tx("b1", "1")],
    });
    let gone = tab.settled("b1").await;
    assert_eq!(gone.error_code(), Some(ErrorCode::Removed));
    assert_eq!(calls.to_vec(), vec![JsValue::from("b1#1")], "not retried");
    // Asked once, and the stats read from inside it are none (the executor is at work), not
    // a trap that took the worker down.
    assert_eq!(*asked.borrow(), vec![("b1".to_owned(), false)]);
    assert!(leader.stats().is_some(), "the leader goes on");
}

pub async fn a_server_that_is_down_for_longer_than_the_retry_budget_loses_nothing() {
    let scope = unique("server-down");
    let calls = js_sys::Array::new();
    // A gateway with no upstream, a deploy, a gateway timeout: three answers saying the server
    // is not taking requests, then it is back.
    let f = recording_fn(
        &calls,
        "const down = [502, 503, 504][calls.length - 1];
         if (down) throw { status: down, message: 'unavailable' };
         return {};",
    );
    let o = options("todos", &[("sync", &f)]);
    // A budget of two attempts: before, the second of those answers dead-lettered it.
    let retry = js_sys::JSON::parse(r#"{"maxRetries": 1, "baseDelayMs": 1, "jitter": 0}"#).unwrap();
    js_sys::Reflect::set(&o, &"retry".into(), &retry).unwrap();
    let _leader = start(&scope, &o).await;
    let mut tab = Tab::open(&scope);
    let epoch = tab.leader().await;
    tab.post(Message::Submit {
        epoch,
        txs: vec![tx("d1", "1")],
    });
    let done = tab.settled("d1").await;
    assert_eq!(done.state, TransactionState::Completed, "{:?}", done.error);
    assert_eq!(calls.length(), 4);
    let statuses: Vec<Option<u16>> = done
        .attempts
        .iter()
        .map(|a| a.error.as_ref().and_then(|e| e.status))
        .collect();
    assert_eq!(statuses, [Some(502), Some(503), Some(504), None]);
    assert_eq!(
        done.counted_attempts(),
        1,
        "only the answer about the transaction"
    );
}

pub async fn a_leader_that_resigns_inside_before_retry_makes_no_call_after() {
    let scope = unique("resign-in-hook");
    let calls = js_sys::Array::new();
    let f = recording_fn(
        &calls,
        "if (calls.length > 1) return {}; throw new Error('flaky');",
    );
    let o = options("todos", &[("sync", &f)]);
    let retry = js_sys::JSON::parse(r#"{"baseDelayMs": 1, "jitter": 0}"#).unwrap();
    js_sys::Reflect::set(&o, &"retry".into(), &retry).unwrap();
    // The hook resigns its own leader the first time (the tab is being closed, say), then
    // says yes.
    let me: Rc<RefCell<Option<Leader>>> = Rc::default();
    let leader = me.clone();
    let hook = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue) -> bool>::new(move |_| {
        if let Some(l) = leader.borrow_mut().take() {
            l.resign();
        }
        true
    });
    js_sys::Reflect::set(&o, &"beforeRetry".into(), hook.as_ref()).unwrap();
    let leader = start(&scope, &o).await;
    *me.borrow_mut() = Some(leader.clone());
    let mut tab = Tab::open(&scope);
    let epoch = tab.leader().await;
    tab.post(Message::Submit {
        epoch,
        txs: vec![tx("r1", "1")],
    });
    // The resignation reaches the tab over the channel, after everything the hook's turn
    // started. (The retry's call would wait for its attempt's record to be written, and a
    // stopped executor ignores that the write is done.)
    tab.until(|m| matches!(m, Message::Resign { epoch: e } if *e == epoch).then_some(()))
        .await;
    assert_eq!(leader.epoch(), None);
    assert_eq!(
        calls.to_vec(),
        vec![JsValue::from("r1#1")],
        "the retry the hook allowed is not made by a leader that has resigned"
    );
    // The next leader makes it, with the same key.
    leader.resume();
    let done = tab.settled("r1").await;
    assert_eq!(done.state, TransactionState::Completed);
    let made: Vec<String> = calls
        .to_vec()
        .iter()
        .filter_map(JsValue::as_string)
        .collect();
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(made[1].starts_with("r1#"), "{made:?}");
    drop(hook);
}

pub async fn an_outbox_keeps_one_lineage_for_its_leaders_and_their_calls_name_it() {
    let scope = unique("lineage");
    let store = IdbStore::open(&scope).await.unwrap();
    let first = store.begin_leadership(0).await.unwrap().lineage.unwrap();
    assert!(!first.is_empty());
    let again = store.begin_leadership(0).await.unwrap().lineage;
    assert_eq!(again.as_deref(), Some(first.as_str()), "every leader of it");
    let elsewhere = IdbStore::open(&unique("lineage")).await.unwrap();
    let other = elsewhere.begin_leadership(0).await.unwrap().lineage;
    assert!(
        other.is_some_and(|o| o != first),
        "another outbox, another lineage"
    );
    // A leader's calls name it.
    let calls = js_sys::Array::new();
    let f = recording_fn(&calls, "calls.push(args.lineage); return {};");
    let _leader = start(&scope, &options("todos", &[("sync", &f)])).await;
    let mut tab = Tab::open(&scope);
    let epoch = tab.leader().await;
    tab.post(Message::Submit {
        epoch,
        txs: vec![tx("l1", "1")],
    });
    tab.settled("l1").await;
    assert_eq!(
        calls.to_vec(),
        vec![JsValue::from("l1#1"), JsValue::from(first)]
    );
}

pub async fn timer_options_a_timer_cannot_take_are_refused_by_name() {
    for (name, value) in [("heartbeatMs", 3e9), ("takeoverAfterMs", 2_147_483_648.0)] {
        let o = options("todos", &[]);
        js_sys::Reflect::set(&o, &name.into(), &JsValue::from(value)).unwrap();
        let error = outbox_worker::options::parse(&o).unwrap_err();
        assert!(error.contains(name), "{error}");
    }
    let o = options("todos", &[]);
    js_sys::Reflect::set(&o, &"heartbeatMs".into(), &JsValue::from(2_147_483_647.0)).unwrap();
    assert!(
        outbox_worker::options::parse(&o).is_ok(),
        "the longest a timer takes"
    );
}

pub async fn the_built_in_http_function_posts_to_a_real_server_and_classifies_its_answer() {
    // The test runner's own HTTP server has no such route: a real 4xx answer, final.
    let scope = unique("http");
    let o = options("todos", &[]);
    let http = js_sys::JSON::parse(r#"{"sync": {"url": "/outbox-no-such-route"}}"#).unwrap();
    js_sys::Reflect::set(&o, &"http".into(), &http).unwrap();
    let _leader = start(&scope, &o).await;
    let mut tab = Tab::open(&scope);
    let epoch = tab.leader().await;
    tab.post(Message::Submit {
        epoch,
        txs: vec![tx("h1", "1")],
    });
    let failed = tab.settled("h1").await;
    assert_eq!(failed.error_code(), Some(ErrorCode::NonRetriable));
    let status = failed.error.unwrap().status.unwrap();
    assert!((400..500).contains(&status), "{status}");
}

pub async fn a_worker_can_steal_leadership_from_one_that_no_longer_answers() {
    let scope = unique("steal");
    let f = js_sys::Function::new_no_args("return {};");
    let stuck = start(&scope, &options("todos", &[("sync", &f)])).await;
    let mut tab = Tab::open(&scope);
    let first = tab.leader().await;
    let rescuer = start(&scope, &options("todos", &[("sync", &f)])).await;
    rescuer.steal();
    let second = tab.handover_from(first).await;
    assert_eq!(second, first.next());
    assert_eq!(rescuer.epoch(), Some(second));
    assert_eq!(stuck.epoch(), None);
    // The new leader serves.
    tab.post(Message::Submit {
        epoch: second,
        txs: vec![tx("s1", "1")],
    });
    assert_eq!(tab.settled("s1").await.state, TransactionState::Completed);
}

pub async fn a_database_from_a_newer_schema_is_refused_with_a_clear_error() {
    let scope = unique("newer");
    // A newer build left its database at schema version 2.
    let db = indexed_db_futures::database::Database::open(
        outbox_worker::idb::database_name(&scope).as_str(),
    )
    .with_version(outbox_worker::idb::SCHEMA_VERSION + 1)
    .await
    .unwrap();
    db.close();
    let err = IdbStore::open(&scope).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Other(m) if m.contains("newer version of Outbox")),
        "{err}"
    );
    // The leader reports it as a storage problem, with the same words.
    let parsed = outbox_worker::options::parse(&options("todos", &[])).unwrap();
    let (code, message) = Leader::start(scope, parsed).await.unwrap_err();
    assert_eq!(code, ErrorCode::Storage);
    assert!(message.contains("newer version of Outbox"), "{message}");
}

/// Waits (yielding to the event loop) until `ok().await` holds.
async fn until_async<F: std::future::Future<Output = bool>>(mut ok: impl FnMut() -> F) {
    while !ok().await {
        let tick = js_sys::Promise::new(&mut |resolve, _| {
            let global = js_sys::global();
            let set = js_sys::Reflect::get(&global, &"setTimeout".into()).unwrap();
            let set: js_sys::Function = wasm_bindgen::JsCast::unchecked_into(set);
            set.call2(&global, &resolve, &JsValue::from(5)).unwrap();
        });
        wasm_bindgen_futures::JsFuture::from(tick).await.unwrap();
    }
}

pub async fn a_leader_holds_its_proof_lock_exactly_while_it_leads() {
    use outbox_runtime::locks::is_held;
    use outbox_shared::leadership::proof_lock_name;
    let scope = unique("proof");
    let f = js_sys::Function::new_no_args("return {};");
    let leader = start(&scope, &options("todos", &[("sync", &f)])).await;
    let mut tab = Tab::open(&scope);
    tab.post(Message::Hello);
    let (epoch, from) = loop {
        let env = tab.incoming.next().await.expect("channel closed");
        if let Message::Leader { epoch } = env.body {
            break (epoch, env.from);
        }
    };
    let name = proof_lock_name(&scope, epoch, &from);
    assert!(is_held(&name).await, "{name} is held while it leads");
    assert!(!is_held(&proof_lock_name(&scope, epoch.next(), &from)).await);
    leader.resign();
    until_async(|| async { !is_held(&name).await }).await;
}

/// A leader that says nothing for a minute (as good as frozen), a tab that knows it (at the
/// epoch returned), and a worker waiting to lead that takes over after 200 ms of silence.
async fn silent_leader_and_watcher(scope: &str) -> (Leader, Tab, Epoch, Leader) {
    let f = js_sys::Function::new_no_args("return {};");
    let silent = start(scope, &options("todos", &[("sync", &f)])).await;
    let mut tab = Tab::open(scope);
    let first = tab.leader().await;
    let o = options("todos", &[("sync", &f)]);
    js_sys::Reflect::set(&o, &"heartbeatMs".into(), &JsValue::from(50)).unwrap();
    js_sys::Reflect::set(&o, &"takeoverAfterMs".into(), &JsValue::from(200)).unwrap();
    let watcher = start(scope, &o).await;
    (silent, tab, first, watcher)
}

pub async fn a_waiting_worker_takes_over_from_a_leader_gone_silent() {
    let (silent, mut tab, first, watcher) = silent_leader_and_watcher(&unique("silent")).await;
    let second = tab.handover_from(first).await;
    assert_eq!(second, first.next());
    assert_eq!(watcher.epoch(), Some(second));
    assert_eq!(silent.epoch(), None);
    tab.post(Message::Submit {
        epoch: second,
        txs: vec![tx("t1", "1")],
    });
    assert_eq!(tab.settled("t1").await.state, TransactionState::Completed);
}

/// Sets the wall clock (`Date.now`) of this context `by_ms` off the real one (0: back to it).
fn shift_wall_clock(by_ms: f64) {
    let set = js_sys::Function::new_with_args(
        "by",
        "if (!Date.__realNow) Date.__realNow = Date.now; \
         const real = Date.__realNow; \
         Date.now = by === 0 ? real : () => real.call(Date) + by;",
    );
    set.call1(&JsValue::NULL, &JsValue::from(by_ms)).unwrap();
}

pub async fn a_waiting_worker_takes_over_on_time_though_the_wall_clock_went_back() {
    let (silent, mut tab, first, watcher) = silent_leader_and_watcher(&unique("clock")).await;
    // The machine's clock is set back an hour while the worker waits: the leader's silence
    // still counts from when it began.
    shift_wall_clock(-3_600_000.0);
    let second = tab.handover_from(first).await;
    shift_wall_clock(0.0);
    assert_eq!(second, first.next());
    assert_eq!(watcher.epoch(), Some(second));
    assert_eq!(silent.epoch(), None);
}

pub async fn a_leader_that_keeps_its_heartbeat_is_not_taken_over() {
    let scope = unique("alive");
    let f = js_sys::Function::new_no_args("return {};");
    let o = options("todos", &[("sync", &f)]);
    js_sys::Reflect::set(&o, &"heartbeatMs".into(), &JsValue::from(100)).unwrap();
    js_sys::Reflect::set(&o, &"takeoverAfterMs".into(), &JsValue::from(1500)).unwrap();
    let alive = start(&scope, &o).await;
    let mut tab = Tab::open(&scope);
    let first = tab.leader().await;
    let waiting = start(&scope, &o).await;
    // Thirty heartbeats: twice the takeover timeout. (Generous timings: on a loaded machine
    // timers slip, and a slipped heartbeat would rightly look like silence.)
    for _ in 0..30 {
        tab.until(|m| {
            matches!(m, Message::Heartbeat { epoch, .. } if *epoch == first).then_some(())
        })
        .await;
    }
    assert_eq!(alive.epoch(), Some(first));
    assert_eq!(waiting.epoch(), None);
}
