//! Online-only mode: no leader can serve the tab, so it runs the mutation functions itself;
//! and the way back when a leader appears. Also the tab's own worker: its errors, and what it
//! says about leading.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot go on fails at the unwrap"
)]

mod support;

use js_sys::Array;
use support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn fns(pairs: &[(&str, &js_sys::Function)]) -> JsValue {
    let pairs: Vec<(&str, JsValue)> = pairs.iter().map(|(k, f)| (*k, JsValue::from(*f))).collect();
    obj(&pairs)
}

#[wasm_bindgen_test]
async fn no_leader_within_the_timeout_means_online_only_and_mutations_still_run() {
    let scope = unique_scope("alone");
    let (log, refused_log, never) = (Array::new(), Array::new(), Gate::new());
    never.open();
    let client = connect(
        &scope,
        &[
            ("leaderTimeoutMs", JsValue::from(100)),
            (
                "mutationFns",
                fns(&[
                    ("todos", &succeeding(&log)),
                    ("refuse", &refusing_after(&never.promise, &refused_log)),
                ]),
            ),
        ],
    )
    .await;
    assert_eq!(client.mode(), "online-only");
    assert_eq!(
        text(&client.diagnostic(), "code").as_deref(),
        Some("OUTBOX_NO_LEADER")
    );
    assert_eq!(client.leader_epoch(), None);

    let todos = todos(&client);
    let tx = todos.insert(todo("1", "sent from the tab")).unwrap();
    assert!(has(&todos, "1"));
    settle(tx.durable()).await.unwrap();
    settle(tx.completed()).await.unwrap();
    assert_eq!(log.to_vec(), vec![JsValue::from_str(&tx.id())]);
    assert!(has(&todos, "1"));

    let notes = client
        .collection(
            "notes".into(),
            Some(obj(&[("mutationFn", "refuse".into())])),
        )
        .unwrap();
    let doomed = notes.insert(todo("n", "x")).unwrap();
    assert_eq!(code(&rejection(&doomed).await), "OUTBOX_NON_RETRIABLE");
    assert!(!has(&notes, "n"), "rolled back");
    let outbox: Array = settle(client.peek_outbox()).await.unwrap().into();
    assert_eq!(
        outbox.length(),
        1,
        "the tab's own outbox keeps the dead letter"
    );
    settle(client.remove_from_outbox(doomed.id()))
        .await
        .unwrap();
    let stats = settle(client.queue_stats()).await.unwrap();
    assert_eq!(prop(&stats, "deadLetters").as_f64(), Some(0.0));
}

#[wasm_bindgen_test]
async fn closing_an_online_only_client_rejects_its_unsent_transactions_as_dropped() {
    let scope = unique_scope("closed-alone");
    let (log, never) = (Array::new(), Gate::new());
    let client = connect(
        &scope,
        &[
            ("leaderTimeoutMs", JsValue::from(100)),
            (
                "mutationFns",
                fns(&[("todos", &refusing_after(&never.promise, &log))]),
            ),
        ],
    )
    .await;
    assert_eq!(client.mode(), "online-only");
    let tx = todos(&client).insert(todo("1", "never answered")).unwrap();
    settle(tx.durable()).await.unwrap();
    client.close();
    let error = rejection(&tx).await;
    assert_eq!(code(&error), "OUTBOX_CLOSED");
    assert!(
        text(&error, "message").is_some_and(|m| m.contains("dropped")),
        "{error:?}"
    );
    assert_eq!(log.length(), 1, "the call was under way");
}

#[wasm_bindgen_test]
async fn a_tab_with_no_worker_of_its_own_goes_online_only_when_its_leader_goes_and_none_follows() {
    let scope = unique_scope("stranded");
    let (leader_log, own_log) = (Array::new(), Array::new());
    let leader = start_leader(&scope, &[("todos", &succeeding(&leader_log))]).await;
    // No workerUrl: this tab's leader is another's (here the page's own, started above).
    let client = connect(
        &scope,
        &[
            ("leaderTimeoutMs", JsValue::from(300)),
            ("mutationFns", fns(&[("todos", &succeeding(&own_log))])),
        ],
    )
    .await;
    assert_eq!(client.mode(), "offline-enabled");
    let todos = todos(&client);
    let a = todos.insert(todo("a", "through the leader")).unwrap();
    settle(a.completed()).await.unwrap();
    assert_eq!(leader_log.length(), 1);
    let mut changed = None;
    let went = js_sys::Promise::new(&mut |resolve, _| changed = Some(resolve));
    let _unsubscribe = client.on_mode_change(changed.unwrap());
    // The leader's tab is closed: it resigns, and no worker waits to follow it.
    leader.resign();
    let mode = settle(went).await.unwrap();
    assert_eq!(mode.as_string().as_deref(), Some("online-only"));
    assert_eq!(
        text(&client.diagnostic(), "code").as_deref(),
        Some("OUTBOX_NO_LEADER")
    );
    // What the tab does now is sent by its own executor, not left waiting for good.
    let b = todos.insert(todo("b", "sent from the tab")).unwrap();
    settle(b.completed()).await.unwrap();
    assert_eq!(own_log.to_vec(), vec![JsValue::from_str(&b.id())]);
    assert_eq!(leader_log.length(), 1);
    client.close();
}

#[wasm_bindgen_test]
async fn a_leader_appearing_later_takes_over_unsettled_transactions() {
    let scope = unique_scope("hand-over");
    let (mut tab_calls, leader_log) = (Calls::new(), Array::new());
    let hangs = js_fn(
        "told",
        "return (call) => { told(call.idempotencyKey); return new Promise(() => {}); }",
        &[&tab_calls.f],
    );
    let client = connect(
        &scope,
        &[
            ("leaderTimeoutMs", JsValue::from(50)),
            ("mutationFns", fns(&[("todos", &hangs)])),
        ],
    )
    .await;
    assert_eq!(client.mode(), "online-only");
    let mut modes = Calls::new();
    let _unsubscribe = client.on_mode_change(modes.f.clone());
    let todos = todos(&client);
    let tx = todos.insert(todo("1", "waits")).unwrap();
    let running = tab_calls.next().await;
    assert_eq!(
        running.as_string(),
        Some(tx.id()),
        "the tab's executor is running it"
    );
    assert_eq!(tx.state(), "persisting");

    let _leader = start_leader(&scope, &[("todos", &succeeding(&leader_log))]).await;
    modes
        .until(|m| m.as_string().as_deref() == Some("offline-enabled"))
        .await;
    assert!(client.diagnostic().is_null());
    settle(tx.completed()).await.unwrap();
    assert_eq!(
        leader_log.to_vec(),
        vec![JsValue::from_str(&tx.id())],
        "same idempotency key"
    );
    assert!(has(&todos, "1"));
}

#[wasm_bindgen_test]
async fn a_dead_letter_of_the_tabs_own_executor_retried_after_the_hand_over_is_sent_by_the_leader()
{
    let scope = unique_scope("retry-own-dead-letter");
    let (tab_log, leader_log, open) = (Array::new(), Array::new(), Gate::new());
    open.open();
    let client = connect(
        &scope,
        &[
            ("leaderTimeoutMs", JsValue::from(50)),
            (
                "mutationFns",
                fns(&[("todos", &refusing_after(&open.promise, &tab_log))]),
            ),
        ],
    )
    .await;
    assert_eq!(client.mode(), "online-only");
    let todos = todos(&client);
    let tx = todos.insert(todo("1", "refused at first")).unwrap();
    assert_eq!(code(&rejection(&tx).await), "OUTBOX_NON_RETRIABLE");
    assert!(!has(&todos, "1"), "rolled back");

    let mut modes = Calls::new();
    let _unsubscribe = client.on_mode_change(modes.f.clone());
    let _leader = start_leader(&scope, &[("todos", &succeeding(&leader_log))]).await;
    modes
        .until(|m| m.as_string().as_deref() == Some("offline-enabled"))
        .await;
    // The leader never had it; the tab submits it again.
    settle(client.retry_dead_letter(tx.id())).await.unwrap();
    assert!(has(&todos, "1"), "its change shows again at once");
    state_until(&tx, "completed").await;
    assert_eq!(
        leader_log.to_vec(),
        vec![JsValue::from_str(&tx.id())],
        "sent by the leader, with the same idempotency key"
    );
    assert_eq!(tab_log.length(), 1);
    assert!(has(&todos, "1"), "and it stays");
    settle(client.drain()).await.unwrap();
    assert_eq!(client.transactions().length(), 0);
}

/// Online-only, connected without `sync`: the tab's own executor follows no feed, so a
/// completion of a `sync: 'leader'` collection that names a server sequence number waited for
/// good.
#[wasm_bindgen_test]
async fn sync_leader_online_only_without_a_feed_is_reported_and_does_not_wait() {
    let scope = unique_scope("alone-no-feed");
    let replies_seq_9 = js_fn("", "return () => ({ seq: 9 });", &[]);
    let client = connect(
        &scope,
        &[
            ("leaderTimeoutMs", JsValue::from(50)),
            ("mutationFns", fns(&[("todos", &replies_seq_9)])),
        ],
    )
    .await;
    assert_eq!(client.mode(), "online-only");
    let (said, _unsubscribe) = diagnostics_of(&client);
    let todos = client
        .collection(
            "todos".into(),
            Some(obj(&[("key", "id".into()), ("sync", "leader".into())])),
        )
        .unwrap();
    let tx = todos.insert(todo("1", "mine")).unwrap();
    within(5_000, "completed", tx.completed()).await.unwrap();
    assert!(has(&todos, "1"));
    within(5_000, "drain", client.drain()).await.unwrap();
    assert!(
        said.iter()
            .any(|e| text(&e, "code").as_deref() == Some("OUTBOX_INVALID")),
        "{:?}",
        said.to_vec()
    );
}

#[wasm_bindgen_test]
async fn a_worker_reporting_an_error_makes_the_tab_online_only() {
    let scope = unique_scope("worker-error");
    let url = worker_url(
        "postMessage({ type: 'outbox:error', code: 'OUTBOX_STORAGE', message: 'no IndexedDB here' });",
    );
    let client = connect(
        &scope,
        &[("workerUrl", url.into()), ("sharedWorker", "never".into())],
    )
    .await;
    assert_eq!(client.mode(), "online-only");
    let diagnostic = client.diagnostic();
    assert_eq!(
        text(&diagnostic, "code").as_deref(),
        Some("OUTBOX_WORKER_FAILED")
    );
    assert!(text(&diagnostic, "message")
        .unwrap()
        .contains("OUTBOX_STORAGE"));
}

/// Chrome fires no `error` for a module SharedWorker whose script fails to load; the tab
/// notices the worker never said `ready` when the leader timeout ends.
#[wasm_bindgen_test]
async fn a_shared_worker_that_fails_to_load_makes_the_tab_online_only() {
    let scope = unique_scope("worker-404");
    let client = connect(
        &scope,
        &[
            ("workerUrl", "/no-such-outbox-worker.js".into()),
            ("leaderTimeoutMs", JsValue::from(200)),
        ],
    )
    .await;
    assert_eq!(client.mode(), "online-only");
    assert_eq!(
        text(&client.diagnostic(), "code").as_deref(),
        Some("OUTBOX_WORKER_FAILED")
    );
}

#[wasm_bindgen_test]
async fn a_dedicated_worker_tells_the_tab_it_leads_and_is_told_to_resign_on_pagehide() {
    let scope = unique_scope("leader-tab");
    let log = Array::new();
    let _leader = start_leader(&scope, &[("todos", &succeeding(&log))]).await;
    // Stands in for the real worker: says it leads, and steps down when told to resign.
    let url = worker_url(
        "postMessage({ type: 'outbox:ready', scope: self.name }); \
         postMessage({ type: 'outbox:leading', epoch: 7 }); \
         onmessage = (e) => { if (e.data && e.data.type === 'outbox:resign') \
           postMessage({ type: 'outbox:following' }); };",
    );
    let client = connect(
        &scope,
        &[("workerUrl", url.into()), ("sharedWorker", "never".into())],
    )
    .await;
    assert_eq!(client.mode(), "offline-enabled");
    let mut changes = Calls::new();
    let _unsubscribe = client.on_leadership_change(changes.f.clone());
    if !client.is_leader_tab() {
        changes
            .until(|c| prop(c, "isLeaderTab").as_bool() == Some(true))
            .await;
    }
    assert!(client.is_leader_tab());
    js_call("", "window.dispatchEvent(new Event('pagehide'));", &[]);
    changes
        .until(|c| prop(c, "isLeaderTab").as_bool() == Some(false))
        .await;
    assert!(!client.is_leader_tab());
}
