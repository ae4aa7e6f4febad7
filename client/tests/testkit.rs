//! The test kit an app uses in its own tests: a controllable mutation function and sync source,
//! here with the tab in online-only mode (no worker, no leader).
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot go on fails at the unwrap"
)]

mod support;

use outbox_client::OutboxTestKit;
use support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn the_kit_emits_sync_updates_delays_and_fails_persists() {
    let kit = OutboxTestKit::new();
    let client = connect(
        &unique_scope("kit"),
        &[
            ("leaderTimeoutMs", JsValue::from(0)),
            ("mutationFns", obj(&[("todos", kit.mutation_fn().into())])),
            ("retry", json(r#"{"baseDelayMs": 5, "jitter": 0}"#)),
        ],
    )
    .await;
    assert_eq!(client.mode(), "online-only");
    let todos = client
        .collection("todos".into(), Some(obj(&[("sync", kit.sync())])))
        .unwrap();

    kit.emit_sync(json(
        r#"{"type": "insert", "value": {"id": "s", "title": "server"}}"#,
    ))
    .unwrap();
    assert!(has(&todos, "s"));

    kit.set_network_delay(20);
    let ok = todos.insert(todo("1", "a")).unwrap();
    settle(ok.completed()).await.unwrap();
    assert_eq!(kit.persisted().length(), 1);

    kit.fail_next_persist(None);
    let refused = todos.insert(todo("2", "b")).unwrap();
    assert_eq!(code(&rejection(&refused).await), "OUTBOX_NON_RETRIABLE");

    kit.fail_next_persist(Some(obj(&[("retriable", JsValue::TRUE)])));
    let retried = todos.insert(todo("3", "c")).unwrap();
    let done = settle(retried.completed()).await.unwrap();
    assert_eq!(
        js_sys::Array::from(&prop(&done, "attempts")).length(),
        2,
        "failed once, then ok"
    );
    assert_eq!(kit.persisted().length(), 2);
}
