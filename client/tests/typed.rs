//! The typed Rust API (`outbox_client::typed`) against the real leader started in the test page,
//! and in online-only mode with mutation functions written in Rust. Each test has a scope of
//! its own; every wait is on a listener or a future, never a timer.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot go on fails at the unwrap"
)]

mod support;

use futures_channel::mpsc;
use futures_util::StreamExt;
use js_sys::Array;
use outbox_client::typed::{
    Applied, CollectionOptions, Config, DiagnosticCode, EventKind, Mode, MutationError, OnSignOut,
    Outbox, OutboxError, SharedWorkerChoice, SignedOut, TransactionState, Tx, TxOptions,
};
use outbox_shared::model::{ErrorCode, MutationKind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use support::{
    js_fn, refusing_after, start_leader, start_leader_with, succeeding, unique_scope, worker_url,
    Gate,
};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Todo {
    id: String,
    title: String,
    #[serde(default)]
    done: bool,
}

fn todo(id: &str, title: &str) -> Todo {
    Todo {
        id: id.into(),
        title: title.into(),
        done: false,
    }
}

async fn connect(scope: &str) -> Outbox {
    Outbox::connect(Config::new(scope)).await.unwrap()
}

/// A listener that sends what it is given into a stream.
fn stream<T: 'static>() -> (impl Fn(T) + Clone + 'static, mpsc::UnboundedReceiver<T>) {
    let (tx, rx) = mpsc::unbounded();
    (
        move |v| {
            let _ = tx.unbounded_send(v);
        },
        rx,
    )
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    rx.next().await.expect("the listener was dropped")
}

/// Waits until the transaction reaches `state`.
async fn state_until(tx: &Tx, state: TransactionState) {
    let (send, mut states) = stream();
    let _sub = tx.on_state_change(send);
    while tx.state() != state {
        next(&mut states).await;
    }
}

fn expect_err<T: std::fmt::Debug>(result: Result<T, OutboxError>, code: &str) -> OutboxError {
    let e = result.expect_err("expected an error");
    assert_eq!(e.code, code, "{e}");
    e
}

#[wasm_bindgen_test]
async fn connect_finds_the_leader_and_is_offline_enabled() {
    let scope = unique_scope("typed-connect");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let outbox = connect(&scope).await;
    assert_eq!(outbox.mode(), Mode::OfflineEnabled);
    assert_eq!(outbox.diagnostic(), None);
    assert!(outbox.leader_epoch().is_some_and(|e| e >= 1));
    assert!(!outbox.is_leader_tab());
    assert_eq!(outbox.scope(), scope);
}

#[wasm_bindgen_test]
async fn a_typed_insert_shows_at_once_then_is_durable_then_completed() {
    let scope = unique_scope("typed-insert");
    // The leader runs a mutation function written in Rust.
    let calls: Rc<RefCell<Vec<(String, u32, usize)>>> = Rc::default();
    let seen = Rc::clone(&calls);
    let rust_fn = outbox_client::typed::js_mutation_fn(move |call| {
        let mutations = call.transaction.mutations.len();
        seen.borrow_mut()
            .push((call.idempotency_key.clone(), call.attempt, mutations));
        async { Ok(Applied::default()) }
    });
    let _leader = start_leader(&scope, &[("todos", &rust_fn)]).await;
    let outbox = connect(&scope).await;
    let todos = outbox.collection::<Todo>("todos", "id").unwrap();
    let milk = todo("1", "milk");
    let tx = todos.insert(&milk).unwrap();
    assert_eq!(
        todos.get("1").unwrap(),
        Some(milk.clone()),
        "in the view before insert returned"
    );
    assert_eq!(todos.rows().unwrap(), vec![milk.clone()]);
    assert_eq!(todos.len(), 1);
    assert_eq!(tx.state(), TransactionState::Pending);
    tx.durable().await.unwrap();
    tx.completed().await.unwrap();
    assert_eq!(tx.state(), TransactionState::Completed);
    assert_eq!(tx.transaction().unwrap().state, TransactionState::Completed);
    assert_eq!(
        *calls.borrow(),
        vec![(tx.id(), 1, 1)],
        "called once, keyed by id"
    );
    assert_eq!(todos.get("1").unwrap(), Some(milk));
    outbox.drain().await.unwrap();
    assert_eq!(outbox.transactions().unwrap(), vec![], "nothing unsettled");
}

#[wasm_bindgen_test]
async fn update_update_with_and_delete() {
    let scope = unique_scope("typed-update");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let outbox = connect(&scope).await;
    let todos = outbox.collection::<Todo>("todos", "id").unwrap();
    todos.insert(&todo("1", "milk")).unwrap();

    let renamed = todos.update("1", &json!({ "title": "oat milk" })).unwrap();
    assert_eq!(todos.get("1").unwrap().unwrap().title, "oat milk");

    let key = "1".to_owned();
    let done = todos.update_with(&key, |t| t.done = true).unwrap();
    assert_eq!(
        todos.get(&key).unwrap(),
        Some(Todo {
            id: "1".into(),
            title: "oat milk".into(),
            done: true
        })
    );
    let mutation = &done.transaction().unwrap().mutations[0];
    assert_eq!(mutation.kind, MutationKind::Update);
    assert_eq!(
        *mutation.changes,
        json!({ "done": true }),
        "only what the edit changed"
    );

    // A field set to `None` that serde leaves out: it becomes `null` (the old value stayed, and
    // `Ok` was returned for a change that never happened).
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Dated {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<String>,
    }
    let dated = outbox.collection::<Dated>("todos", "id").unwrap();
    dated.update("1", &json!({ "due": "2026-12-24" })).unwrap();
    let cleared = dated.update_with("1", |d| d.due = None).unwrap();
    assert_eq!(dated.get("1").unwrap().unwrap().due, None);
    assert_eq!(
        *cleared.transaction().unwrap().mutations[0].changes,
        json!({ "due": null })
    );
    assert_eq!(
        todos.get("1").unwrap().unwrap().title,
        "oat milk",
        "fields `Dated` does not know stay"
    );

    let deleted = todos.delete("1").unwrap();
    assert_eq!(todos.get("1").unwrap(), None);
    assert!(todos.is_empty());
    for tx in [&renamed, &done, &deleted] {
        tx.completed().await.unwrap();
    }
    assert_eq!(todos.rows().unwrap(), vec![]);
    assert_eq!(log.length(), 6);

    // Numeric keys.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Counter {
        n: u32,
        count: u32,
    }
    let counters = outbox.collection::<Counter>("counters", "n").unwrap();
    counters.insert(&Counter { n: 7, count: 0 }).unwrap();
    counters.update(7u32, &json!({ "count": 1 })).unwrap();
    assert_eq!(
        counters.get(7u32).unwrap(),
        Some(Counter { n: 7, count: 1 })
    );
}

#[wasm_bindgen_test]
async fn bad_arguments_are_outbox_invalid_errors_not_panics() {
    let scope = unique_scope("typed-invalid");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;

    let e = expect_err(Outbox::connect(Config::default()).await, "OUTBOX_INVALID");
    assert!(e.is(ErrorCode::Invalid));
    assert_eq!(e.error_code(), Some(ErrorCode::Invalid));
    assert!(e.message.contains("app"), "{e}");

    let outbox = connect(&scope).await;
    #[derive(Serialize, Deserialize)]
    struct Note {
        title: String,
    }
    let notes = outbox.collection::<Note>("notes", "id").unwrap();
    let e = expect_err(
        notes.insert(&Note {
            title: "no key".into(),
        }),
        "OUTBOX_INVALID",
    );
    assert!(e.message.contains("\"id\""), "names the key field: {e}");
    assert!(notes.is_empty(), "nothing half-applied");

    let todos = outbox.collection::<Todo>("todos", "id").unwrap();
    expect_err(
        todos.update("nope", &json!({ "title": "x" })),
        "OUTBOX_INVALID",
    );
    expect_err(todos.delete("nope"), "OUTBOX_INVALID");
    expect_err(todos.update_with("nope", |_| {}), "OUTBOX_INVALID");
    todos.insert(&todo("1", "milk")).unwrap();
    expect_err(todos.insert(&todo("1", "again")), "OUTBOX_INVALID");
    expect_err(todos.update("1", &42), "OUTBOX_INVALID");
    let e = expect_err(
        todos.update_with("1", |t| t.id = "2".into()),
        "OUTBOX_INVALID",
    );
    assert!(e.message.contains("cannot change"), "{e}");
    assert_eq!(todos.rows().unwrap(), vec![todo("1", "milk")]);
    expect_err(
        outbox.collection::<Todo>("todos", "title"),
        "OUTBOX_INVALID",
    );
    expect_err(outbox.collection::<Todo>("", "id"), "OUTBOX_INVALID");

    // Rows that do not fit the type they are read as.
    #[derive(Debug, Serialize, Deserialize)]
    struct Strict {
        id: String,
        priority: u8,
    }
    let strict = outbox.collection::<Strict>("todos", "id").unwrap();
    expect_err(strict.rows(), "OUTBOX_INVALID");
    expect_err(strict.get("1"), "OUTBOX_INVALID");

    // Values JS cannot hold, and rows that are not objects.
    #[derive(Serialize, Deserialize)]
    struct Big {
        id: String,
        n: u64,
    }
    let big = outbox.collection::<Big>("big", "id").unwrap();
    expect_err(
        big.insert(&Big {
            id: "1".into(),
            n: u64::MAX,
        }),
        "OUTBOX_INVALID",
    );
    let lists = outbox.collection::<Vec<String>>("lists", "id").unwrap();
    expect_err(lists.insert(&vec!["id".into()]), "OUTBOX_INVALID");
    let words = outbox.collection::<String>("words", "id").unwrap();
    expect_err(words.insert(&"id".to_owned()), "OUTBOX_INVALID");

    outbox.close();
    expect_err(todos.insert(&todo("2", "after close")), "OUTBOX_INVALID");
    expect_err(outbox.queue_stats().await, "OUTBOX_INVALID");
}

#[wasm_bindgen_test]
async fn a_non_retriable_failure_makes_completed_fail_with_its_code() {
    let scope = unique_scope("typed-refused");
    let (log, gate) = (Array::new(), Gate::new());
    let _leader = start_leader(&scope, &[("todos", &refusing_after(&gate.promise, &log))]).await;
    let outbox = connect(&scope).await;
    let todos = outbox.collection::<Todo>("todos", "id").unwrap();
    let first = todos.insert(&todo("1", "doomed")).unwrap();
    let second = todos
        .update("1", &json!({ "title": "also doomed" }))
        .unwrap();
    second.durable().await.unwrap();
    gate.open();
    let e = expect_err(first.completed().await, "OUTBOX_NON_RETRIABLE");
    assert!(e.is(ErrorCode::NonRetriable));
    assert!(e.message.contains("refused by the test server"), "{e}");
    let e = expect_err(second.completed().await, "OUTBOX_DEPENDENCY_FAILED");
    assert_eq!(e.cause_id, Some(first.id()));
    assert_eq!(first.state(), TransactionState::Failed);
    assert_eq!(todos.get("1").unwrap(), None, "rolled back");
    assert_eq!(log.length(), 1, "not retried");
}

#[wasm_bindgen_test]
async fn subscriptions_fire_and_stop_when_dropped() {
    let scope = unique_scope("typed-subscribe");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    let outbox = connect(&scope).await;
    let todos = outbox.collection::<Todo>("todos", "id").unwrap();

    // `first` is registered before `second`, so it is called first for every change.
    let first_calls = Rc::new(Cell::new(0));
    let counter = Rc::clone(&first_calls);
    let first = todos.subscribe(move || counter.set(counter.get() + 1));
    let (send, mut second_calls) = stream::<()>();
    let _second = todos.subscribe(move || send(()));
    let (send, mut events) = stream();
    let _events = outbox.on_event(send);

    let tx = todos.insert(&todo("1", "milk")).unwrap();
    next(&mut second_calls).await;
    assert!(first_calls.get() >= 1, "called with the second");
    assert_eq!(Rc::strong_count(&first_calls), 2, "the listener holds it");

    drop(first);
    assert_eq!(
        Rc::strong_count(&first_calls),
        1,
        "dropping the subscription freed the listener"
    );
    let before = first_calls.get();
    while second_calls.try_recv().is_ok() {}
    todos.insert(&todo("2", "eggs")).unwrap();
    next(&mut second_calls).await;
    assert_eq!(first_calls.get(), before, "not called after the drop");

    // Typed events.
    let mut submitted = false;
    loop {
        let event = next(&mut events).await;
        assert!(event.at > 0);
        match event.kind {
            EventKind::Submitted { id, mutations, .. } if id == tx.id() => {
                assert_eq!(mutations, 1);
                submitted = true;
            }
            EventKind::Durable { id } if id == tx.id() => break,
            _ => {}
        }
    }
    assert!(submitted, "submitted before durable");
    state_until(&tx, TransactionState::Completed).await;
}

#[wasm_bindgen_test]
async fn a_collection_on_the_leaders_feed_keeps_a_completed_change_until_the_feed_has_it() {
    let scope = unique_scope("typed-sync-leader");
    // The server applied each change of `todos` as number 3 of its feed; this leader's feed
    // follows `todos` from a source that never answers, so the feed never gets there. (A leader
    // with no feed for `todos` is not waited for: the tab is told, and keeps the change.) A
    // change of `notes` names no number: nothing waits for it.
    let applied = outbox_client::typed::js_mutation_fn(|call| {
        let on_feed = call
            .transaction
            .mutations
            .iter()
            .any(|m| m.collection == "todos");
        async move {
            Ok(Applied {
                seq: on_feed.then_some(3),
            })
        }
    });
    let silent = support::js_call(
        "",
        "return { collections: ['todos'], source: { \
           snapshot: () => new Promise(() => {}), subscribe: () => () => {} } };",
        &[],
    );
    let _leader = start_leader_with(&scope, &[("todos", &applied)], &[("sync", silent)]).await;
    let outbox = Outbox::connect(Config::new(&scope).sync(["todos"]))
        .await
        .unwrap();
    assert_eq!(outbox.mode(), Mode::OfflineEnabled);
    let synced = outbox
        .collection_with::<Todo>(
            "todos",
            CollectionOptions {
                key: Some("id".into()),
                sync_leader: true,
                ..Default::default()
            },
        )
        .unwrap();
    let plain = outbox
        .collection_with::<Todo>(
            "notes",
            CollectionOptions {
                mutation_fn: Some("todos".into()),
                ..Default::default()
            },
        )
        .unwrap();

    let waiting = synced.insert(&todo("1", "milk")).unwrap();
    let note = plain.insert(&todo("n", "note")).unwrap();
    // Without a sync of its own a collection takes the completed change as the server's row.
    note.completed().await.unwrap();
    assert_eq!(plain.get("n").unwrap(), Some(todo("n", "note")));
    // On the leader's feed it waits for the feed to bring change 3, showing the row meanwhile.
    waiting.durable().await.unwrap();
    state_until(&waiting, TransactionState::PersistedAwaitingSync).await;
    assert_eq!(synced.get("1").unwrap(), Some(todo("1", "milk")));
}

#[wasm_bindgen_test]
async fn online_only_when_no_leader_answers_with_mutation_functions_in_rust() {
    let scope = unique_scope("typed-alone");
    let calls: Rc<RefCell<Vec<String>>> = Rc::default();
    let seen = Rc::clone(&calls);
    let config = Config::new(&scope)
        .leader_timeout_ms(100)
        .mutation_fn("todos", move |call| {
            assert_eq!(call.transaction.id.as_str(), call.idempotency_key);
            seen.borrow_mut().push(call.idempotency_key);
            async { Ok(Applied { seq: None }) }
        })
        .mutation_fn("refuse", |_| async {
            Err(MutationError::non_retriable("refused in Rust"))
        })
        .mutation_fn("teapot", |_| async {
            Err(MutationError::http(418, "I'm a teapot"))
        });
    let outbox = Outbox::connect(config).await.unwrap();
    assert_eq!(outbox.mode(), Mode::OnlineOnly);
    let diagnostic = outbox.diagnostic().unwrap();
    assert_eq!(diagnostic.code, DiagnosticCode::NoLeader);
    assert_eq!(outbox.leader_epoch(), None);

    let todos = outbox.collection::<Todo>("todos", "id").unwrap();
    let tx = todos.insert(&todo("1", "sent from the tab")).unwrap();
    assert_eq!(
        todos.get("1").unwrap(),
        Some(todo("1", "sent from the tab"))
    );
    tx.durable().await.unwrap();
    tx.completed().await.unwrap();
    assert_eq!(*calls.borrow(), vec![tx.id()]);

    let refused = outbox
        .collection_with::<Todo>(
            "notes",
            CollectionOptions {
                mutation_fn: Some("refuse".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let doomed = refused.insert(&todo("n", "x")).unwrap();
    let e = expect_err(doomed.completed().await, "OUTBOX_NON_RETRIABLE");
    assert!(e.message.contains("refused in Rust"), "{e}");
    assert_eq!(refused.get("n").unwrap(), None, "rolled back");

    let tea = outbox
        .transaction(TxOptions {
            mutation_fn: Some("teapot".into()),
            ..Default::default()
        })
        .unwrap()
        .mutate(|| todos.insert(&todo("t", "tea")).map(drop))
        .unwrap();
    let e = expect_err(tea.completed().await, "OUTBOX_NON_RETRIABLE");
    assert_eq!(e.status, Some(418));
    let stats = outbox.queue_stats().await.unwrap();
    assert_eq!(stats.dead_letters, 2, "the tab's own outbox keeps both");
}

#[wasm_bindgen_test]
async fn a_dedicated_worker_that_fails_means_online_only() {
    let scope = unique_scope("typed-worker-error");
    let url = worker_url(
        "postMessage({ type: 'outbox:error', code: 'OUTBOX_STORAGE', message: 'no IndexedDB here' });",
    );
    let config = Config::new(&scope)
        .worker_url(url)
        .shared_worker(SharedWorkerChoice::Never);
    let outbox = Outbox::connect(config).await.unwrap();
    assert_eq!(outbox.mode(), Mode::OnlineOnly);
    let diagnostic = outbox.diagnostic().unwrap();
    assert_eq!(diagnostic.code, DiagnosticCode::WorkerFailed);
    assert!(
        diagnostic.message.contains("OUTBOX_STORAGE"),
        "the dedicated worker's own report: {}",
        diagnostic.message
    );
}

#[wasm_bindgen_test]
async fn a_worker_script_that_fails_to_load_means_online_only() {
    let scope = unique_scope("typed-worker-404");
    let config = Config::new(&scope)
        .worker_url("/no-such-outbox-worker.js")
        .leader_timeout_ms(200);
    let outbox = Outbox::connect(config).await.unwrap();
    assert_eq!(outbox.mode(), Mode::OnlineOnly);
    assert_eq!(
        outbox.diagnostic().map(|d| d.code),
        Some(DiagnosticCode::WorkerFailed)
    );
}

#[wasm_bindgen_test]
async fn a_leader_appearing_later_is_told_by_on_mode_change() {
    let scope = unique_scope("typed-hand-over");
    let (started, mut running) = stream::<String>();
    let config = Config::new(&scope)
        .leader_timeout_ms(50)
        .mutation_fn("todos", move |call| {
            started(call.idempotency_key);
            std::future::pending()
        });
    let outbox = Outbox::connect(config).await.unwrap();
    assert_eq!(outbox.mode(), Mode::OnlineOnly);
    let (send, mut modes) = stream();
    let _modes = outbox.on_mode_change(move |mode, diagnostic| send((mode, diagnostic)));
    let todos = outbox.collection::<Todo>("todos", "id").unwrap();
    let tx = todos.insert(&todo("1", "waits")).unwrap();
    assert_eq!(
        next(&mut running).await,
        tx.id(),
        "the tab's executor runs it"
    );
    assert_eq!(tx.state(), TransactionState::Persisting);

    let leader_log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&leader_log))]).await;
    assert_eq!(next(&mut modes).await, (Mode::OfflineEnabled, None));
    assert_eq!(outbox.mode(), Mode::OfflineEnabled);
    tx.completed().await.unwrap();
    assert_eq!(
        leader_log.to_vec(),
        vec![JsValue::from_str(&tx.id())],
        "the same idempotency key"
    );
}

#[wasm_bindgen_test]
async fn a_batch_sends_its_changes_as_one_and_an_err_rolls_it_back() {
    let scope = unique_scope("typed-batch");
    let calls = Array::new();
    let record = js_fn(
        "calls",
        "return (call) => { calls.push(call.transaction.mutations.length); return {}; }",
        &[&calls],
    );
    let _leader = start_leader(&scope, &[("batch", &record)]).await;
    let outbox = connect(&scope).await;
    let todos = outbox.collection::<Todo>("todos", "id").unwrap();
    let batch_fn = || TxOptions {
        mutation_fn: Some("batch".into()),
        ..Default::default()
    };

    let tx = outbox
        .transaction(batch_fn())
        .unwrap()
        .mutate(|| {
            todos.insert(&todo("1", "a"))?;
            todos.insert(&todo("2", "b"))?;
            todos.update("1", &json!({ "title": "a2" }))?;
            assert_eq!(outbox.transactions()?.len(), 0, "nothing sent yet");
            Ok(())
        })
        .unwrap();
    assert_eq!(todos.len(), 2);
    tx.completed().await.unwrap();
    assert_eq!(
        calls.to_vec(),
        vec![JsValue::from(3)],
        "one call, three changes"
    );
    assert_eq!(todos.get("1").unwrap().unwrap().title, "a2");

    let cancelled = outbox.transaction(batch_fn()).unwrap();
    let e = cancelled
        .mutate(|| {
            todos.insert(&todo("3", "c"))?;
            assert!(todos.get("3")?.is_some(), "shown while it is built");
            Err(OutboxError::with_code("APP_CANCELLED", "changed my mind"))
        })
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        ("APP_CANCELLED", "changed my mind"),
        "the closure's own error"
    );
    assert_eq!(todos.get("3").unwrap(), None, "rolled back");
    expect_err(cancelled.tx().completed().await, "OUTBOX_REMOVED");

    let manual = outbox
        .transaction(TxOptions {
            auto_commit: Some(false),
            ..batch_fn()
        })
        .unwrap();
    manual.mutate(|| todos.delete("2").map(drop)).unwrap();
    assert_eq!(todos.get("2").unwrap(), None);
    assert_eq!(manual.tx().state(), TransactionState::Pending);
    let tx = manual.commit().unwrap();
    assert_eq!(tx.id(), manual.id());
    tx.completed().await.unwrap();
    assert_eq!(calls.to_vec(), vec![JsValue::from(3), JsValue::from(1)]);
    expect_err(manual.commit(), "OUTBOX_INVALID");
}

#[wasm_bindgen_test]
async fn dead_letters_can_be_peeked_retried_and_removed() {
    let scope = unique_scope("typed-dead-letters");
    let switch = support::json(r#"{"fail": true}"#);
    let flaky = js_fn(
        "s",
        "return (call) => { if (s.fail) throw { name: 'NonRetriableError', message: 'no' }; \
         return {}; }",
        &[&switch],
    );
    let _leader = start_leader(&scope, &[("todos", &flaky)]).await;
    let outbox = connect(&scope).await;
    let todos = outbox.collection::<Todo>("todos", "id").unwrap();
    let (a, b) = (
        todos.insert(&todo("a", "x")).unwrap(),
        todos.insert(&todo("b", "y")).unwrap(),
    );
    expect_err(a.completed().await, "OUTBOX_NON_RETRIABLE");
    expect_err(b.completed().await, "OUTBOX_NON_RETRIABLE");
    let outbox_now = outbox.peek_outbox().await.unwrap();
    let states: Vec<_> = outbox_now.iter().map(|t| t.state).collect();
    assert_eq!(states, vec![TransactionState::Failed; 2]);
    assert_eq!(outbox.queue_stats().await.unwrap().dead_letters, 2);

    js_sys::Reflect::set(&switch, &"fail".into(), &JsValue::FALSE).unwrap();
    outbox.retry_dead_letter(&a.id()).await.unwrap();
    outbox.notify_online();
    state_until(&a, TransactionState::Completed).await;
    assert_eq!(todos.get("a").unwrap(), Some(todo("a", "x")));

    outbox.remove_from_outbox(&b.id()).await.unwrap();
    assert_eq!(outbox.peek_outbox().await.unwrap(), vec![]);
    assert_eq!(outbox.transactions().unwrap(), vec![]);
    expect_err(outbox.remove_from_outbox("nope").await, "OUTBOX_INVALID");
    outbox.drain().await.unwrap();
}

#[wasm_bindgen_test]
async fn credentials_and_sign_out_from_rust() {
    let scope = unique_scope("typed-credentials");
    // Records the credentials each call is made with.
    let log = Array::new();
    let recording = js_fn(
        "log",
        "return (call) => { log.push(call.credentials.authorization ?? 'none'); return {}; }",
        &[&log],
    );
    let _leader = start_leader(&scope, &[("todos", &recording)]).await;
    let outbox = connect(&scope).await;
    let todos = outbox.collection::<Todo>("todos", "id").unwrap();
    outbox
        .provide_credentials(&[("authorization".to_owned(), "Bearer rust".to_owned())].into())
        .unwrap();
    todos
        .insert(&todo("1", "milk"))
        .unwrap()
        .completed()
        .await
        .unwrap();
    assert_eq!(log.get(0).as_string().as_deref(), Some("Bearer rust"));
    let held = outbox.sign_out(OnSignOut::Keep).await.unwrap();
    assert_eq!(
        held,
        SignedOut {
            pending: 0,
            dead_letters: 0,
            discarded: 0
        }
    );
    // The client is closed: what it is asked now fails.
    assert!(outbox.queue_stats().await.is_err());
}
