use super::*;
use crate::model::Strategy as TxStrategy;
use proptest::prelude::*;
use serde_json::json;

fn tx(id: &str, mutations: Vec<PendingMutation>) -> Transaction {
    Transaction::new(id.into(), "f", TxStrategy::Ordered, mutations, 0)
}

#[test]
fn pending_changes_overlay_synced_rows_in_order_and_roll_back_exactly() {
    let mut v = OptimisticView::new();
    v.set_synced("todos", "1", Some(json!({"t": "a", "done": false})));
    let a = tx(
        "a",
        vec![PendingMutation::update(
            "todos",
            "1",
            json!({"t": "a", "done": false}),
            json!({"done": true}),
        )],
    );
    let b = tx(
        "b",
        vec![
            PendingMutation::update(
                "todos",
                "1",
                json!({"t": "a", "done": true}),
                json!({"t": "b"}),
            ),
            PendingMutation::insert("todos", "2", json!({"t": "new"})),
        ],
    );
    v.add_pending(&a);
    assert_eq!(v.add_pending(&b).len(), 2);
    assert_eq!(v.get("todos", "1"), Some(&json!({"t": "b", "done": true})));
    assert_eq!(v.rows("todos").count(), 2);
    assert_eq!(v.len("todos"), 2);
    assert_eq!(v.len("nothing"), 0);
    // a fails: only b's change stays, over the synced row.
    v.remove_pending(&"a".into());
    assert_eq!(v.get("todos", "1"), Some(&json!({"t": "b", "done": false})));
    // b fails too: back to exactly the synced state.
    v.remove_pending(&"b".into());
    assert_eq!(v.get("todos", "1"), Some(&json!({"t": "a", "done": false})));
    assert_eq!(v.get("todos", "2"), None);
}

#[test]
fn a_masked_row_shows_the_server_until_a_later_change_and_unmasks_when_pending_leave() {
    let mut v = OptimisticView::new();
    v.set_synced("todos", "1", Some(json!({"t": "a"})));
    let mine = |id: &str, t: &str| {
        tx(
            id,
            vec![PendingMutation::update(
                "todos",
                "1",
                json!({"t": "a"}),
                json!({ "t": t }),
            )],
        )
    };
    v.add_pending(&mine("a", "mine"));
    v.set_synced("todos", "1", Some(json!({"t": "server"})));
    v.mask_pending("todos", "1");
    assert_eq!(v.get("todos", "1"), Some(&json!({"t": "server"})));
    assert!(v.is_pending(&"a".into()), "still pending");
    v.add_pending(&mine("b", "later"));
    assert_eq!(v.get("todos", "1"), Some(&json!({"t": "later"})));
    v.remove_pending(&"a".into());
    v.remove_pending(&"b".into());
    v.add_pending(&mine("c", "again"));
    assert_eq!(
        v.get("todos", "1"),
        Some(&json!({"t": "again"})),
        "the mask went with the last pending change"
    );
}

#[test]
fn synced_changes_show_under_pending_ones() {
    let mut v = OptimisticView::new();
    v.set_synced("todos", "1", Some(json!({"t": "a", "n": 1})));
    v.add_pending(&tx(
        "a",
        vec![PendingMutation::update(
            "todos",
            "1",
            json!({"t": "a", "n": 1}),
            json!({"t": "mine"}),
        )],
    ));
    v.set_synced("todos", "1", Some(json!({"t": "theirs", "n": 2})));
    assert_eq!(v.get("todos", "1"), Some(&json!({"t": "mine", "n": 2})));
    v.add_pending(&tx(
        "d",
        vec![PendingMutation::delete("todos", "1", json!({}))],
    ));
    assert_eq!(v.get("todos", "1"), None);
    let mut snapshot = BTreeMap::new();
    snapshot.insert("9".to_owned(), json!({"t": "z"}));
    v.replace_synced("todos", snapshot);
    v.remove_pending(&"d".into());
    assert_eq!(
        v.get("todos", "1"),
        Some(&json!({"t": "mine", "n": 1})),
        "the update shows over the row it was made on"
    );
    assert_eq!(v.get("todos", "9"), Some(&json!({"t": "z"})));
}

#[test]
fn adding_twice_is_a_no_op() {
    let mut v = OptimisticView::new();
    let t = tx("a", vec![PendingMutation::insert("c", "1", json!(1))]);
    assert_eq!(v.add_pending(&t).len(), 1);
    assert!(v.add_pending(&t).is_empty());
    assert_eq!(v.pending_ids().count(), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8, Vec<(u8, u8, Option<u8>)>),
    Remove(u8),
    Sync(u8, Option<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0u8..8,
            prop::collection::vec((0u8..3, 0u8..4, prop::option::of(0u8..5)), 1..3)
        )
            .prop_map(|(i, m)| Op::Add(i, m)),
        (0u8..8).prop_map(Op::Remove),
        (0u8..4, prop::option::of(0u8..5)).prop_map(|(k, v)| Op::Sync(k, v)),
    ]
}

proptest! {
    /// The incrementally maintained view always equals a from-scratch fold of the synced rows
    /// and the pending transactions in order.
    #[test]
    fn incremental_view_equals_recomputation(ops in prop::collection::vec(op(), 1..40)) {
        let mut v = OptimisticView::new();
        let mut synced: BTreeMap<String, Value> = BTreeMap::new();
        let mut pending: Vec<Transaction> = Vec::new();
        for o in ops {
            match o {
                Op::Add(i, ms) => {
                    let id = format!("t{i}");
                    if pending.iter().any(|t| t.id.0 == id) { continue; }
                    let muts = ms.into_iter().map(|(kind, k, val)| {
                        let key = k.to_string();
                        match (kind, val) {
                            (0, Some(x)) => PendingMutation::insert("c", &key, json!({"v": x})),
                            (1, Some(x)) => PendingMutation::update("c", &key, json!({"v": 0}), json!({"w": x})),
                            _ => PendingMutation::delete("c", &key, json!({"v": 0})),
                        }
                    }).collect();
                    let t = tx(&id, muts);
                    v.add_pending(&t);
                    pending.push(t);
                }
                Op::Remove(i) => {
                    let id: TransactionId = format!("t{i}").as_str().into();
                    v.remove_pending(&id);
                    pending.retain(|t| t.id != id);
                }
                Op::Sync(k, val) => {
                    let row = val.map(|x| json!({"v": x, "s": true}));
                    v.set_synced("c", &k.to_string(), row.clone());
                    match row { Some(r) => { synced.insert(k.to_string(), r); } None => { synced.remove(&k.to_string()); } }
                }
            }
            for k in 0u8..4 {
                let key = k.to_string();
                let mut expect = synced.get(&key).cloned().map(Arc::new);
                for t in &pending {
                    for m in t.mutations.iter().filter(|m| m.key == key) {
                        expect = m.apply_to(expect.as_deref());
                    }
                }
                prop_assert_eq!(v.get("c", &key), expect.as_deref());
            }
        }
    }
}

#[test]
fn take_changed_names_every_changed_key_once_then_forgets_them() {
    let mut v = OptimisticView::new();
    // The first call starts the lists (the reader copies rows() then).
    assert_eq!(v.take_changed("todos"), None);
    assert_eq!(v.take_changed("other"), None);
    v.set_synced("todos", "1", Some(json!({"id": "1"})));
    v.add_pending(&tx(
        "a",
        vec![PendingMutation::insert("todos", "2", json!({"id": "2"}))],
    ));
    v.set_synced("other", "x", Some(json!({"id": "x"})));
    let keys: Vec<String> = v.take_changed("todos").unwrap().into_iter().collect();
    assert_eq!(keys, ["1", "2"]);
    assert_eq!(v.take_changed("todos"), Some(BTreeSet::new()), "taken");
    v.remove_pending(&TransactionId::from("a"));
    assert_eq!(
        v.take_changed("todos")
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        ["2"]
    );
    assert_eq!(v.take_changed("other").map(|k| k.len()), Some(1));
}

#[test]
fn a_collection_nobody_reads_keeps_no_list_of_changes() {
    let mut v = OptimisticView::new();
    for i in 0..1_000 {
        let key = i.to_string();
        v.set_synced("todos", &key, Some(json!({"id": key})));
        v.set_synced("todos", &key, None);
    }
    assert!(v.changed.is_empty(), "{} lists kept", v.changed.len());
    // Once read, it is kept, and each take empties it.
    assert_eq!(v.take_changed("todos"), None);
    v.set_synced("todos", "x", Some(json!({"id": "x"})));
    assert_eq!(v.take_changed("todos").map(|k| k.len()), Some(1));
    assert_eq!(v.changed["todos"], Some(BTreeSet::new()));
}

#[test]
fn a_list_of_changes_nobody_takes_any_more_is_dropped_for_everything_changed() {
    let mut v = OptimisticView::new();
    assert_eq!(v.take_changed("todos"), None, "read once");
    v.set_synced("todos", "kept", Some(json!({"id": "kept"})));
    // Rows come and go and nobody takes the list: it stays bounded.
    for i in 0..10_000 {
        let key = i.to_string();
        v.set_synced("todos", &key, Some(json!({"id": key})));
        v.set_synced("todos", &key, None);
        let held = v.changed["todos"].as_ref().map_or(0, BTreeSet::len);
        assert!(held <= v.len("todos") + CHANGED_SLACK, "{held} keys held");
    }
    assert_eq!(v.take_changed("todos"), None, "copy the rows whole");
    v.set_synced("todos", "x", Some(json!({"id": "x"})));
    assert_eq!(
        v.take_changed("todos"),
        Some(BTreeSet::from(["x".to_owned()])),
        "and the list starts again"
    );
}

#[test]
fn a_row_recomputed_to_the_same_value_is_not_a_change() {
    let mut v = OptimisticView::new();
    assert_eq!(v.take_changed("todos"), None);
    let row = json!({"id": "1", "title": "a"});
    v.add_pending(&tx(
        "a",
        vec![PendingMutation::insert("todos", "1", row.clone())],
    ));
    assert_eq!(v.take_changed("todos").map(|k| k.len()), Some(1));
    let shown = v.get_row("todos", "1").cloned();
    // The insert completes: the server's row is the same value, and the overlay goes.
    v.set_synced("todos", "1", Some(row));
    v.remove_pending(&TransactionId::from("a"));
    assert_eq!(
        v.take_changed("todos"),
        Some(BTreeSet::new()),
        "nothing a reader must redo"
    );
    let after = v.get_row("todos", "1").cloned();
    assert!(
        matches!((&shown, &after), (Some(a), Some(b)) if Arc::ptr_eq(a, b)),
        "the row shown is the same shared row"
    );
    // A real change is still one.
    v.set_synced("todos", "1", Some(json!({"id": "1", "title": "b"})));
    assert_eq!(v.take_changed("todos").map(|k| k.len()), Some(1));
}
