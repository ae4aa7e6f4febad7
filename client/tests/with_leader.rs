//! The client against the real leader (IndexedDB, Web Locks, BroadcastChannel), started in the
//! test page. Each test has a scope of its own.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot go on fails at the unwrap"
)]

mod support;

use js_sys::{Array, Function};
use outbox_client::{Collection, OutboxClient};
use outbox_worker::leader::Leader;
use support::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn connect_finds_the_leader_and_is_offline_enabled() {
    let scope = unique_scope("connect");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    assert_eq!(client.mode(), "offline-enabled");
    assert!(client.diagnostic().is_null());
    assert!(client.leader_epoch().is_some_and(|e| e >= 1.0));
    assert!(
        !client.is_leader_tab(),
        "the leader runs in the page, not in this tab's worker"
    );
    assert_eq!(client.scope(), scope);
}

#[wasm_bindgen_test]
async fn an_insert_shows_at_once_then_is_durable_then_completed() {
    let scope = unique_scope("insert");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    let tx = todos.insert(todo("1", "milk")).unwrap();
    assert!(
        has(&todos, "1"),
        "the optimistic view shows it before insert returns"
    );
    assert_eq!(todos.rows().length(), 1);
    assert_eq!(tx.state(), "pending");
    settle(tx.durable()).await.unwrap();
    let done = settle(tx.completed()).await.unwrap();
    assert_eq!(text(&done, "state").as_deref(), Some("completed"));
    assert_eq!(tx.state(), "completed");
    assert_eq!(
        log.to_vec(),
        vec![JsValue::from_str(&tx.id())],
        "called once, keyed by id"
    );
    assert_eq!(
        text(&todos.get("1".into()).unwrap(), "title").as_deref(),
        Some("milk")
    );
    settle(client.drain()).await.unwrap();
    assert_eq!(client.transactions().length(), 0, "nothing left unsettled");
}

#[wasm_bindgen_test]
async fn two_clients_in_one_page_see_each_others_pending_insert() {
    let scope = unique_scope("two-tabs");
    let (log, gate) = (Array::new(), Gate::new());
    let slow = js_fn(
        "gate, log",
        "return async (call) => { log.push(call.idempotencyKey); await gate; return {}; }",
        &[&gate.promise, &log],
    );
    let _leader = start_leader(&scope, &[("todos", &slow)]).await;
    let (a, b) = (connect(&scope, &[]).await, connect(&scope, &[]).await);
    let (todos_a, todos_b) = (todos(&a), todos(&b));
    let tx = todos_a.insert(todo("1", "from a")).unwrap();
    rows_until(&todos_b, |c| has(c, "1")).await;
    assert!(
        b.transactions()
            .iter()
            .any(|t| text(&t, "id") == Some(tx.id())),
        "b lists a's transaction"
    );
    gate.open();
    settle(tx.completed()).await.unwrap();
    rows_until(&todos_b, |_| b.transactions().length() == 0).await;
    assert!(has(&todos_b, "1"), "a completed insert stays in every tab");
}

#[wasm_bindgen_test]
async fn a_non_retriable_failure_rolls_back_in_both_tabs_and_rejects() {
    let scope = unique_scope("rollback");
    let (log, gate) = (Array::new(), Gate::new());
    let _leader = start_leader(&scope, &[("todos", &refusing_after(&gate.promise, &log))]).await;
    let (a, b) = (connect(&scope, &[]).await, connect(&scope, &[]).await);
    let (todos_a, todos_b) = (todos(&a), todos(&b));
    let tx = todos_a.insert(todo("1", "doomed")).unwrap();
    rows_until(&todos_b, |c| has(c, "1")).await;
    gate.open();
    let error = rejection(&tx).await;
    assert!(error.is_instance_of::<js_sys::Error>(), "a real Error");
    assert_eq!(code(&error), "OUTBOX_NON_RETRIABLE");
    assert_eq!(text(&error, "name").as_deref(), Some("OutboxError"));
    assert!(!has(&todos_a, "1"), "rolled back in a");
    rows_until(&todos_b, |c| !has(c, "1")).await;
    assert_eq!(tx.state(), "failed");
    assert_eq!(log.length(), 1, "not retried");
}

#[wasm_bindgen_test]
async fn a_transaction_too_large_for_the_leader_fails_at_once_and_the_rest_goes_on() {
    let scope = unique_scope("toolarge");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    // 2.2 MB of title: in `changes` and `modified`, over the 4 MiB a message may be.
    let huge = todos.insert(todo("big", &"x".repeat(2_200_000))).unwrap();
    let small = todos.insert(todo("small", "fine")).unwrap();
    assert!(has(&todos, "big"), "shown at once, like any change");
    let error = match settle(huge.durable()).await {
        Ok(v) => panic!("durable, though no leader can take it: {v:?}"),
        Err(e) => e,
    };
    assert_eq!(code(&error), "OUTBOX_INVALID");
    assert!(
        text(&error, "message").is_some_and(|m| m.contains("bytes")),
        "{error:?}"
    );
    assert_eq!(code(&rejection(&huge).await), "OUTBOX_INVALID");
    assert!(!has(&todos, "big"), "rolled back");
    assert_eq!(huge.state(), "failed");
    settle(small.completed()).await.unwrap();
    assert_eq!(log.length(), 1, "only the small one was called");
    client.close();
}

#[wasm_bindgen_test]
async fn closing_the_client_rejects_what_waits_and_the_leader_goes_on_with_it() {
    let scope = unique_scope("closed");
    let (log, gate) = (Array::new(), Gate::new());
    let _leader = start_leader(&scope, &[("todos", &refusing_after(&gate.promise, &log))]).await;
    let client = connect(&scope, &[]).await;
    let tx = todos(&client).insert(todo("1", "still sending")).unwrap();
    settle(tx.durable()).await.unwrap();
    client.close();
    let error = rejection(&tx).await;
    assert_eq!(code(&error), "OUTBOX_CLOSED");
    assert!(
        text(&error, "message").is_some_and(|m| m.contains("stays in the outbox")),
        "{error:?}"
    );
    // The leader has it still: another client of the scope sees it in the outbox.
    let other = connect(&scope, &[]).await;
    let outbox: Array = settle(other.peek_outbox()).await.unwrap().into();
    assert_eq!(outbox.length(), 1);
    assert_eq!(text(&outbox.get(0), "id"), Some(tx.id()));
    gate.open();
    other.close();
}

#[wasm_bindgen_test]
async fn dependents_fail_with_the_cause_named() {
    let scope = unique_scope("dependents");
    let (log, gate) = (Array::new(), Gate::new());
    let _leader = start_leader(&scope, &[("todos", &refusing_after(&gate.promise, &log))]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    let first = todos.insert(todo("1", "a")).unwrap();
    let second = todos.update("1".into(), json(r#"{"title": "b"}"#)).unwrap();
    let third = todos.delete("1".into()).unwrap();
    settle(third.durable()).await.unwrap();
    gate.open();
    assert_eq!(code(&rejection(&first).await), "OUTBOX_NON_RETRIABLE");
    for dependent in [&second, &third] {
        let error = rejection(dependent).await;
        assert_eq!(code(&error), "OUTBOX_DEPENDENCY_FAILED");
        assert_eq!(text(&error, "causeId"), Some(first.id()));
    }
    assert_eq!(todos.rows().length(), 0);
    assert_eq!(log.length(), 1, "the dependents never ran");
}

#[wasm_bindgen_test]
async fn dead_letters_can_be_peeked_retried_and_removed() {
    let scope = unique_scope("dead-letters");
    // Fails for good while `switch.fail` is true.
    let switch = json(r#"{"fail": true}"#);
    let flaky = js_fn(
        "s",
        "return (call) => { if (s.fail) throw { name: 'NonRetriableError', message: 'no' }; \
         return {}; }",
        &[&switch],
    );
    let _leader = start_leader(&scope, &[("todos", &flaky)]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    let (a, b) = (
        todos.insert(todo("a", "x")).unwrap(),
        todos.insert(todo("b", "y")).unwrap(),
    );
    rejection(&a).await;
    rejection(&b).await;
    let outbox: Array = settle(client.peek_outbox()).await.unwrap().into();
    let states: Vec<_> = outbox.iter().map(|t| text(&t, "state").unwrap()).collect();
    assert_eq!(states, vec!["failed", "failed"]);
    let stats = settle(client.queue_stats()).await.unwrap();
    assert_eq!(prop(&stats, "deadLetters").as_f64(), Some(2.0));

    Reflect_set(&switch, "fail", &JsValue::FALSE);
    settle(client.retry_dead_letter(a.id())).await.unwrap();
    state_until(&a, "completed").await;
    assert!(
        has(&todos, "a"),
        "a retried dead letter shows again and stays"
    );

    settle(client.remove_from_outbox(b.id())).await.unwrap();
    let outbox: Array = settle(client.peek_outbox()).await.unwrap().into();
    assert_eq!(outbox.length(), 0);
    assert_eq!(
        client.transactions().length(),
        0,
        "the removed one is forgotten here too"
    );
    let unknown = settle(client.remove_from_outbox("nope".into()))
        .await
        .unwrap_err();
    assert_eq!(code(&unknown), "OUTBOX_INVALID");
}

#[wasm_bindgen_test]
async fn a_request_no_leader_answers_rejects_as_leader_lost() {
    let scope = unique_scope("unanswered");
    let leader = start_leader(&scope, &[("todos", &succeeding(&Array::new()))]).await;
    // The tab waits a minute before it takes the leader for gone: its requests time out first.
    let client = connect(
        &scope,
        &[
            ("requestTimeoutMs", JsValue::from(100)),
            ("leaderTimeoutMs", JsValue::from(60_000)),
        ],
    )
    .await;
    settle(client.queue_stats()).await.unwrap();
    leader.resign();
    let error = settle(client.peek_outbox()).await.unwrap_err();
    assert_eq!(
        code(&error),
        "OUTBOX_LEADER_LOST",
        "no answer: the leader went, not a mistake of the app"
    );
    assert!(error.is_instance_of::<js_sys::Error>());
    assert_eq!(
        client.mode(),
        "offline-enabled",
        "still waiting for a leader"
    );
}

/// A leader whose `todos` function logs each call's key and then waits for the gate, and a
/// client of its scope.
async fn held_at_a_gate(name: &str) -> (Array, Gate, Leader, OutboxClient) {
    let scope = unique_scope(name);
    let (log, gate) = (Array::new(), Gate::new());
    let slow = js_fn(
        "gate, log",
        "return async (call) => { log.push(call.idempotencyKey); await gate; return {}; }",
        &[&gate.promise, &log],
    );
    let leader = start_leader(&scope, &[("todos", &slow)]).await;
    let client = connect(&scope, &[]).await;
    (log, gate, leader, client)
}

#[wasm_bindgen_test]
async fn a_queued_transaction_removed_by_the_app_fails_as_removed_and_drain_goes_on() {
    let (log, gate, _leader, client) = held_at_a_gate("remove-queued").await;
    let todos = todos(&client);
    let first = todos.insert(todo("1", "a")).unwrap();
    let second = todos.update("1".into(), json(r#"{"title": "b"}"#)).unwrap();
    settle(second.durable()).await.unwrap();
    // The first is running (held at the gate); the second waits behind it, and is removed.
    until_true(|| log.length() == 1).await;
    settle(client.remove_from_outbox(second.id()))
        .await
        .unwrap();
    assert_eq!(code(&rejection(&second).await), "OUTBOX_REMOVED");
    assert_eq!(second.state(), "failed");
    assert_eq!(
        text(&todos.get("1".into()).unwrap(), "title").as_deref(),
        Some("a"),
        "its change rolled back"
    );
    gate.open();
    settle(client.drain()).await.unwrap();
    assert_eq!(first.state(), "completed");
    assert_eq!(log.length(), 1, "the removed one never ran");
    assert_eq!(client.transactions().length(), 0);
}

#[wasm_bindgen_test]
async fn closing_the_client_rejects_a_drain_that_waits() {
    let (_log, gate, _leader, client) = held_at_a_gate("drain-close").await;
    let tx = todos(&client).insert(todo("1", "a")).unwrap();
    settle(tx.durable()).await.unwrap();
    let waiting = client.drain();
    client.close();
    let error = settle(waiting).await.unwrap_err();
    assert_eq!(code(&error), "OUTBOX_INVALID");
    let after = settle(client.drain()).await.unwrap_err();
    assert_eq!(code(&after), "OUTBOX_INVALID", "a drain asked after close");
    gate.open();
}

#[allow(non_snake_case, reason = "reads like the JS it stands for")]
fn Reflect_set(target: &JsValue, key: &str, value: &JsValue) {
    js_sys::Reflect::set(target, &JsValue::from_str(key), value).unwrap();
}

#[wasm_bindgen_test]
async fn a_transaction_groups_changes_into_one_call() {
    let scope = unique_scope("grouped");
    let calls = Array::new();
    let record = js_fn(
        "calls",
        "return (call) => { calls.push(call.transaction.mutations.length); return {}; }",
        &[&calls],
    );
    let _leader = start_leader(&scope, &[("batch", &record)]).await;
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    let tx = client
        .transaction(Some(obj(&[("mutationFn", "batch".into())])))
        .unwrap();
    let (t, c) = (todos.clone(), client.clone());
    let body = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
        t.insert(todo("1", "a")).unwrap();
        t.insert(todo("2", "b")).unwrap();
        t.update("1".into(), json(r#"{"title": "a2"}"#)).unwrap();
        assert_eq!(
            c.transactions().length(),
            0,
            "nothing submitted before the end"
        );
    });
    let handle = tx.mutate(body.as_ref().clone().unchecked_into()).unwrap();
    assert_eq!(todos.rows().length(), 2);
    settle(handle.completed()).await.unwrap();
    assert_eq!(
        calls.to_vec(),
        vec![JsValue::from(3)],
        "one call with three mutations"
    );
    assert_eq!(
        text(&todos.get("1".into()).unwrap(), "title").as_deref(),
        Some("a2")
    );

    let on_mutate = js_fn(
        "todos",
        "return (vars) => { todos.insert({ id: vars.id, title: vars.title }); }",
        &[&todos.clone().into()],
    );
    let add = client
        .create_action(obj(&[
            ("mutationFn", "batch".into()),
            ("onMutate", on_mutate.into()),
        ]))
        .unwrap();
    let handle = add.call1(&JsValue::NULL, &todo("3", "c")).unwrap();
    settle(prop(&handle, "completed").into()).await.unwrap();
    assert!(has(&todos, "3"));
}

#[wasm_bindgen_test]
async fn a_sync_source_feeds_synced_rows() {
    let scope = unique_scope("sync");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let source = json("{}");
    let setup = js_fn(
        "source",
        "return ({ onUpdate }) => { source.onUpdate = onUpdate; \
         onUpdate({ type: 'snapshot', rows: [{ id: 's1', title: 'server' }] }); }",
        &[&source],
    );
    Reflect_set(&source, "setup", &setup);
    let todos = client
        .collection("todos".into(), Some(obj(&[("sync", source.clone())])))
        .unwrap();
    assert!(has(&todos, "s1"));
    let on_update: Function = prop(&source, "onUpdate").into();
    on_update
        .call1(
            &JsValue::NULL,
            &json(
                r#"[{"type": "insert", "value": {"id": "s2"}}, {"type": "delete", "key": "s1"}]"#,
            ),
        )
        .unwrap();
    assert!(has(&todos, "s2") && !has(&todos, "s1"));
    let bad = on_update
        .call1(&JsValue::NULL, &json(r#"{"type": "upsert"}"#))
        .unwrap_err();
    assert_eq!(code(&bad), "OUTBOX_INVALID");

    // A completion does not touch a synced collection's rows: the sync brings the server's.
    let tx = todos.insert(todo("3", "mine")).unwrap();
    settle(tx.completed()).await.unwrap();
    assert!(!has(&todos, "3"), "left to the sync");
    on_update
        .call1(
            &JsValue::NULL,
            &json(r#"{"type": "insert", "value": {"id": "3", "title": "mine"}}"#),
        )
        .unwrap();
    assert!(has(&todos, "3"));
}

#[wasm_bindgen_test]
async fn a_sync_setup_that_throws_leaves_the_collection_unsynced_and_says_why() {
    let scope = unique_scope("sync-setup-throws");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let client = connect(&scope, &[]).await;
    let source = json("{}");
    let setup = js_fn(
        "source",
        "return ({ onUpdate }) => { source.onUpdate = onUpdate; \
         throw new TypeError('no socket'); }",
        &[&source],
    );
    Reflect_set(&source, "setup", &setup);
    let error = client
        .collection(
            "todos".into(),
            Some(obj(&[("key", "id".into()), ("sync", source.clone())])),
        )
        .unwrap_err();
    // Defined again without a sync, the collection keeps what completes.
    let todos = todos(&client);
    let tx = todos.insert(todo("1", "mine")).unwrap();
    settle(tx.completed()).await.unwrap();
    assert!(
        has(&todos, "1"),
        "not marked synced: a completion stays in the view"
    );
    assert_eq!(code(&error), "OUTBOX_INVALID", "{error:?}");
    assert!(text(&error, "message").is_some_and(|m| m.contains("no socket")));
    assert_eq!(
        text(&prop(&error, "cause"), "name").as_deref(),
        Some("TypeError"),
        "what setup threw"
    );
    // The failed source syncs nothing.
    let on_update: Function = prop(&source, "onUpdate").into();
    let refused = on_update
        .call1(&JsValue::NULL, &json(r#"{"type": "delete", "key": "1"}"#))
        .unwrap_err();
    assert_eq!(code(&refused), "OUTBOX_INVALID");
    assert!(has(&todos, "1"));
}

#[wasm_bindgen_test]
async fn a_completion_waits_for_a_sequence_aware_sync_so_nothing_flickers() {
    let scope = unique_scope("awaitsync");
    // The server's reply names the sequence number of the applied change.
    let replies_seq_9 = js_fn("", "return () => ({ seq: 9 });", &[]);
    let _leader = start_leader(&scope, &[("todos", &replies_seq_9)]).await;
    let client = connect(&scope, &[]).await;
    let source = json("{}");
    let setup = js_fn(
        "source",
        "return ({ onUpdate }) => { source.onUpdate = onUpdate; \
         onUpdate({ type: 'snapshot', rows: [], seq: 4 }); }",
        &[&source],
    );
    Reflect_set(&source, "setup", &setup);
    let todos = client
        .collection("todos".into(), Some(obj(&[("sync", source.clone())])))
        .unwrap();
    let tx = todos.insert(todo("1", "mine")).unwrap();
    state_until(&tx, "persisted_awaiting_sync").await;
    assert!(
        has(&todos, "1"),
        "still shown: the sync is at 4, the change at 9"
    );
    let on_update: Function = prop(&source, "onUpdate").into();
    on_update
        .call1(
            &JsValue::NULL,
            &json(r#"{"type": "insert", "value": {"id": "x", "title": "theirs"}, "seq": 8}"#),
        )
        .unwrap();
    assert_eq!(tx.state(), "persisted_awaiting_sync");
    on_update
        .call1(
            &JsValue::NULL,
            &json(r#"{"type": "insert", "value": {"id": "1", "title": "server's"}, "seq": 9}"#),
        )
        .unwrap();
    let done = settle(tx.completed()).await.unwrap();
    assert_eq!(text(&done, "state").as_deref(), Some("completed"));
    assert_eq!(
        text(&todos.get("1".into()).unwrap(), "title").as_deref(),
        Some("server's"),
        "the synced row, the overlay gone"
    );
}

/// The leader started without a `sync` option: no feed follows `todos`. A completion that names
/// the server's sequence number waited for that feed for good, and `drain()` with it, without
/// a word.
#[wasm_bindgen_test]
async fn sync_leader_on_a_collection_no_feed_follows_is_reported_and_does_not_wait() {
    let scope = unique_scope("no-feed");
    let replies_seq_9 = js_fn("", "return () => ({ seq: 9 });", &[]);
    let _leader = start_leader(&scope, &[("todos", &replies_seq_9)]).await;
    let client = connect(&scope, &[]).await;
    let (said, _unsubscribe) = diagnostics_of(&client);
    let todos = client
        .collection(
            "todos".into(),
            Some(obj(&[("key", "id".into()), ("sync", "leader".into())])),
        )
        .unwrap();
    let tx = todos.insert(todo("1", "mine")).unwrap();
    within(5_000, "completed", tx.completed()).await.unwrap();
    assert!(has(&todos, "1"), "kept as it completed");
    within(5_000, "drain", client.drain()).await.unwrap();
    let told: Vec<_> = said
        .iter()
        .filter(|e| text(e, "code").as_deref() == Some("OUTBOX_INVALID"))
        .filter_map(|e| text(&e, "message"))
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("\"todos\"") && told[0].contains("sync"),
        "{}",
        told[0]
    );
}

/// Posts `data` on the scope's channel from a script of the page's own (a hostile one).
fn post_raw(scope: &str, data: &JsValue) {
    js_call(
        "name, data",
        "const c = new BroadcastChannel(name); c.postMessage(data); c.close();",
        &[&JsValue::from_str(&format!("outbox:{scope}")), data],
    );
}

fn post_forged(scope: &str, env: &outbox_shared::protocol::Envelope) {
    post_raw(
        scope,
        &JsValue::from_str(&outbox_shared::protocol::encode(env)),
    );
}

fn stat(client: &OutboxClient, name: &str) -> f64 {
    prop(&client.message_stats(), name).as_f64().unwrap()
}

/// Waits (yielding to the event loop) until `ok` holds.
async fn until_true(mut ok: impl FnMut() -> bool) {
    while !ok() {
        let tick = js_call("", "return new Promise((r) => setTimeout(r, 5));", &[]);
        settle(tick.unchecked_into()).await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn garbage_and_forged_channel_messages_are_refused_counted_and_change_nothing() {
    use outbox_shared::model::{ClientId, Epoch, ErrorCode, TransactionState, TxError};
    use outbox_shared::protocol::{Envelope, Message};
    let scope = unique_scope("forged");
    let gate = Gate::new();
    let log = Array::new();
    let held = js_fn(
        "gate, log",
        "return async (call) => { log.push(call.idempotencyKey); await gate; return { ok: true }; }",
        &[&gate.promise, &log],
    );
    let _leader = start_leader(&scope, &[("todos", &held)]).await;
    let client = connect(&scope, &[]).await;
    let epoch = client.leader_epoch().unwrap();
    let todos = todos(&client);
    let tx = todos.insert(todo("1", "milk")).unwrap();
    settle(tx.durable()).await.unwrap();
    let states = Array::new();
    let _unsubscribe =
        tx.on_state_change(js_fn("states", "return (s) => states.push(s);", &[&states]));

    // Garbage: not text, not JSON, an unknown version, another app, an unknown kind.
    post_raw(&scope, &JsValue::from(42));
    post_raw(&scope, &JsValue::from_str("{not json"));
    post_raw(
        &scope,
        &JsValue::from_str(r#"{"v":99,"app":"x","from":"f","body":"hello"}"#),
    );
    let foreign = Envelope::broadcast("another-app", &ClientId("f".into()), Message::Hello);
    post_forged(&scope, &foreign);
    post_raw(
        &scope,
        &JsValue::from_str(&format!(
            r#"{{"v":2,"app":"{scope}","from":"f","body":{{"no-such-kind":{{}}}}}}"#
        )),
    );
    // Forgeries: a claim of leadership without its proof lock, news under it, and someone
    // else speaking for the real leader's epoch or answering for it.
    let forger = ClientId("forger".into());
    let me = ClientId(client.client_id());
    let mut failed = outbox_shared::Transaction::new(
        tx.id().as_str().into(),
        "todos",
        outbox_shared::model::Strategy::Ordered,
        vec![outbox_shared::model::PendingMutation::insert(
            "todos",
            "1",
            serde_json::json!({ "id": "1", "title": "forged" }),
        )],
        0,
    );
    failed.state = TransactionState::Failed;
    failed.error = Some(TxError::new(ErrorCode::NonRetriable, "forged"));
    let real = Epoch(epoch as u64);
    post_forged(
        &scope,
        &Envelope::broadcast(&scope, &forger, Message::Leader { epoch: Epoch(999) }),
    );
    post_forged(
        &scope,
        &Envelope::broadcast(
            &scope,
            &forger,
            Message::State {
                epoch: real,
                txs: vec![failed.clone()],
            },
        ),
    );
    post_forged(
        &scope,
        &Envelope::reply(
            &scope,
            &forger,
            &me,
            Message::Rejected {
                id: tx.id().as_str().into(),
                error: TxError::new(ErrorCode::NonRetriable, "forged"),
            },
        ),
    );
    until_true(|| stat(&client, "forged") >= 3.0).await;
    // News under the refuted claim is refused too, without asking again.
    post_forged(
        &scope,
        &Envelope::broadcast(
            &scope,
            &forger,
            Message::State {
                epoch: Epoch(999),
                txs: vec![failed],
            },
        ),
    );
    until_true(|| stat(&client, "forged") >= 4.0).await;
    assert_eq!(stat(&client, "notText"), 1.0);
    assert_eq!(stat(&client, "malformed"), 1.0);
    assert_eq!(stat(&client, "unsupported"), 1.0);
    assert_eq!(stat(&client, "foreign"), 1.0);
    assert_eq!(stat(&client, "unknownKind"), 1.0);
    assert_eq!(
        client.leader_epoch(),
        Some(epoch),
        "still following the real leader"
    );
    assert_eq!(client.mode(), "offline-enabled");
    assert_ne!(tx.state(), "failed");
    assert!(has(&todos, "1"), "nothing rolled back");

    // And the real leader goes on: the transaction completes, a new one too.
    gate.open();
    settle(tx.completed()).await.unwrap();
    let next = todos.insert(todo("2", "eggs")).unwrap();
    settle(next.completed()).await.unwrap();
    assert_eq!(log.length(), 2, "each sent once");
    assert!(
        !states.includes(&JsValue::from_str("failed"), 0),
        "never failed: {:?}",
        states.to_vec()
    );
}

#[wasm_bindgen_test]
async fn a_401_pauses_the_outbox_until_get_credentials_answers_and_nothing_is_stored() {
    let scope = unique_scope("creds");
    let log = Array::new();
    // The app's server: 401 without the right bearer token.
    let guarded = js_fn(
        "log",
        "return (call) => { log.push(call.credentials.authorization ?? 'none'); \
         if (call.credentials.authorization !== 'Bearer good') throw { status: 401, message: 'who are you' }; \
         return { ok: true }; }",
        &[&log],
    );
    let _leader = start_leader(&scope, &[("todos", &guarded)]).await;
    let asked = Array::new();
    let get_credentials = js_fn(
        "asked",
        "return async () => { asked.push(1); return { authorization: 'Bearer good' }; }",
        &[&asked],
    );
    let client = connect(&scope, &[("getCredentials", get_credentials.into())]).await;
    let events = Array::new();
    let _off = client.on_event(js_fn(
        "events",
        "return (e) => events.push(e.type);",
        &[&events],
    ));
    let todos = todos(&client);
    let tx = todos.insert(todo("1", "milk")).unwrap();
    let done = settle(tx.completed()).await.unwrap();
    assert_eq!(text(&done, "state").as_deref(), Some("completed"));
    assert_eq!(
        log.to_vec(),
        vec![JsValue::from_str("none"), JsValue::from_str("Bearer good")],
        "one refused call, then one with the credentials"
    );
    assert_eq!(asked.length(), 1, "asked once");
    assert!(events.includes(&JsValue::from_str("credentials_needed"), 0));
    let attempts = prop(&done, "attempts");
    let first = js_sys::Reflect::get(&attempts, &JsValue::from(0)).unwrap();
    assert_eq!(
        text(&prop(&first, "error"), "code").as_deref(),
        Some("OUTBOX_UNAUTHORIZED")
    );
    // Nothing of the credentials reached storage: the outbox record never held them.
    let stored = js_call(
        "name",
        "return new Promise((ok, fail) => { const r = indexedDB.open(name); r.onerror = () => fail(r.error); \
         r.onsuccess = () => { const db = r.result; const t = db.transaction(db.objectStoreNames, 'readonly'); \
         const out = []; for (const n of db.objectStoreNames) { const q = t.objectStore(n).getAll(); \
         q.onsuccess = () => out.push(JSON.stringify(q.result)); } \
         t.oncomplete = () => { db.close(); ok(out.join('')); }; }; })",
        &[&JsValue::from_str(&format!("outbox:{scope}"))],
    );
    let stored = settle(stored.unchecked_into())
        .await
        .unwrap()
        .as_string()
        .unwrap();
    assert!(
        !stored.contains("Bearer good"),
        "credentials are not stored"
    );
}

#[wasm_bindgen_test]
async fn a_leader_that_needs_credentials_calls_nothing_before_a_tab_provides_them() {
    let scope = unique_scope("creds-first");
    let log = Array::new();
    let f = js_fn(
        "log",
        "return (call) => { log.push(call.credentials.authorization ?? 'none'); return { ok: true }; }",
        &[&log],
    );
    let mutation_fns = js_sys::Object::new();
    js_sys::Reflect::set(&mutation_fns, &"todos".into(), &f).unwrap();
    let options = obj(&[
        ("app", JsValue::from_str(&scope)),
        ("mutationFns", mutation_fns.into()),
        ("credentials", JsValue::TRUE),
    ]);
    let parsed = outbox_worker::options::parse(&options).unwrap();
    let _leader = Leader::start(scope.clone(), parsed).await.unwrap();
    // No getCredentials: the app provides them itself once it has them.
    let client = connect(&scope, &[]).await;
    let todos = todos(&client);
    let tx = todos.insert(todo("1", "milk")).unwrap();
    settle(tx.durable()).await.unwrap();
    assert_eq!(log.length(), 0, "durable, but not sent without credentials");
    assert!(client
        .provide_credentials(json(r#"{"authorization": 42}"#))
        .is_err());
    client
        .provide_credentials(json(r#"{"authorization": "Bearer later"}"#))
        .unwrap();
    settle(tx.completed()).await.unwrap();
    assert_eq!(log.to_vec(), vec![JsValue::from_str("Bearer later")]);
}

/// How many entries of the outbox's log in `scope`'s database mention `text`.
async fn stored_mentions(scope: &str, text: &str) -> usize {
    let p = js_call(
        "name",
        "return new Promise((ok, fail) => { const r = indexedDB.open(name); r.onerror = () => fail(r.error); \
         r.onsuccess = () => { const db = r.result; const q = db.transaction('log', 'readonly').objectStore('log').getAll(); \
         q.onsuccess = () => { db.close(); ok(q.result.map((v) => typeof v === 'string' ? v : JSON.stringify(v))); }; \
         q.onerror = () => fail(q.error); }; })",
        &[&JsValue::from_str(&format!("outbox:{scope}"))],
    );
    let list: Array = settle(p.unchecked_into()).await.unwrap().unchecked_into();
    list.iter()
        .filter_map(|v| v.as_string())
        .filter(|v| v.contains(text))
        .count()
}

async fn sign_out_case(discard: bool) {
    let scope = unique_scope(if discard {
        "signout-discard"
    } else {
        "signout-keep"
    });
    let log = Array::new();
    // The server is down: everything stays pending.
    let down = js_fn(
        "log",
        "return (call) => { log.push(call.idempotencyKey); throw { status: 503, message: 'down' }; }",
        &[&log],
    );
    let _leader = start_leader(&scope, &[("todos", &down)]).await;
    let me = connect(&scope, &[]).await;
    let other = connect(&scope, &[]).await;
    let other_events = Array::new();
    let _off = other.on_event(js_fn(
        "events",
        "return (e) => events.push(e.type);",
        &[&other_events],
    ));
    let tx = todos(&me).insert(todo("1", "milk")).unwrap();
    settle(tx.durable()).await.unwrap();
    assert_eq!(stored_mentions(&scope, "milk").await, 1);

    let pending = if discard { "discard" } else { "keep" };
    let result = settle(me.sign_out(obj(&[("pending", JsValue::from_str(pending))])))
        .await
        .unwrap();
    assert_eq!(prop(&result, "pending").as_f64(), Some(1.0));
    assert_eq!(prop(&result, "deadLetters").as_f64(), Some(0.0));
    assert_eq!(
        prop(&result, "discarded").as_f64(),
        Some(if discard { 1.0 } else { 0.0 })
    );
    // Every tab of the scope hears it and closes.
    let mut calls = Calls::new();
    let _off2 = other.on_event(calls.f.clone());
    if !other_events.includes(&JsValue::from_str("signed_out"), 0) {
        calls
            .until(|e| text(e, "type").as_deref() == Some("signed_out"))
            .await;
    }
    for client in [&me, &other] {
        let closed = settle(client.queue_stats()).await;
        assert!(closed.is_err(), "closed after signing out");
    }
    let left = stored_mentions(&scope, "milk").await;
    assert_eq!(
        left,
        usize::from(!discard),
        "kept for the next sign-in, or deleted"
    );
    assert!(
        settle(me.sign_out(obj(&[("pending", JsValue::from_str("later"))])))
            .await
            .is_err()
    );
}

#[wasm_bindgen_test]
async fn signing_out_with_discard_deletes_the_outbox_and_closes_every_tab() {
    sign_out_case(true).await;
}

#[wasm_bindgen_test]
async fn signing_out_with_keep_leaves_the_outbox_and_closes_every_tab() {
    sign_out_case(false).await;
}

#[wasm_bindgen_test]
async fn a_leader_follows_the_apps_own_feed_and_hands_it_to_every_tab() {
    let scope = unique_scope("appfeed");
    let feed = json("{}");
    let source = obj(&[
        (
            "snapshot",
            js_fn(
                "",
                "return async (collection) => ({ seq: 1, rows: [{ key: 'a', value: { id: 'a', title: collection } }] })",
                &[],
            )
            .into(),
        ),
        (
            "subscribe",
            js_fn(
                "feed",
                "return (since, onEntry) => { feed.since = since; feed.onEntry = onEntry; \
                 return () => { feed.closed = true; }; }",
                &[&feed],
            )
            .into(),
        ),
    ]);
    let sync = obj(&[("collections", json(r#"["todos"]"#)), ("source", source)]);
    let options = obj(&[("app", JsValue::from_str(&scope)), ("sync", sync)]);
    let parsed = outbox_worker::options::parse(&options).unwrap();
    let _leader = Leader::start(scope.clone(), parsed).await.unwrap();
    let tabs = [connect(&scope, &[]).await, connect(&scope, &[]).await];
    let views: Vec<Collection> = tabs
        .iter()
        .map(|c| {
            c.collection(
                "todos".into(),
                Some(obj(&[
                    ("key", JsValue::from_str("id")),
                    ("sync", JsValue::from_str("leader")),
                ])),
            )
            .unwrap()
        })
        .collect();
    for v in &views {
        rows_until(v, |c| has(c, "a")).await;
    }
    assert_eq!(
        prop(&feed, "since").as_f64(),
        Some(1.0),
        "resumed after the snapshot"
    );
    let on_entry: Function = prop(&feed, "onEntry").into();
    on_entry
        .call1(
            &JsValue::NULL,
            &json(
                r#"{"seq": 2, "prevSeq": 1, "changes": [
                    {"collection": "todos", "key": "b", "op": "insert", "value": {"id": "b"}},
                    {"collection": "todos", "key": "a", "op": "delete", "value": null}]}"#,
            ),
        )
        .unwrap();
    for v in &views {
        rows_until(v, |c| has(c, "b") && !has(c, "a")).await;
    }
    for t in &tabs {
        assert_eq!(t.feed_position(), 2.0);
        t.close();
    }
}

#[wasm_bindgen_test]
async fn the_apps_await_sync_decides_when_a_success_completes_in_every_tab() {
    let scope = unique_scope("awaitsync");
    let log = Array::new();
    let gate = Gate::new();
    let asked = Array::new();
    let await_sync = js_fn(
        "gate, asked",
        "return (tx) => { asked.push(tx.id); return gate; }",
        &[&gate.promise, &asked],
    );
    let fns = obj(&[("todos", succeeding(&log).into())]);
    let options = obj(&[
        ("app", JsValue::from_str(&scope)),
        ("mutationFns", fns),
        ("awaitSync", await_sync.into()),
    ]);
    let parsed = outbox_worker::options::parse(&options).unwrap();
    let _leader = Leader::start(scope.clone(), parsed).await.unwrap();
    let me = connect(&scope, &[]).await;
    let other = connect(&scope, &[]).await;
    let h = todos(&me).insert(todo("1", "milk")).unwrap();
    state_until(&h, "persisted_awaiting_sync").await;
    assert_eq!(log.length(), 1, "sent once");
    assert_eq!(asked.length(), 1, "the app is asked once");
    let theirs = todos(&other);
    rows_until(&theirs, |c| has(c, "1")).await;
    gate.open();
    settle(h.completed()).await.unwrap();
    assert_eq!(h.state(), "completed");
    for c in [&me, &other] {
        c.close();
    }
}
