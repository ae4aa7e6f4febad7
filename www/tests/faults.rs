//! The fault switches (`--faults`): fail next N, 503 until cleared, apply-then-drop-the-reply,
//! delay, offline, and the counts that prove exactly-once.

mod common;

use common::{error_code, insert, server, tx, SseReader};
use outbox_shared::PendingMutation;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn fail_next_n_answers_the_status_and_applies_nothing() {
    let s = server(true).await;
    s.set_faults(json!({"failNext": {"count": 2, "status": 500}}))
        .await;
    let body = insert("t1", "a", "x");
    for _ in 0..2 {
        assert_eq!(
            error_code(s.post(&body).await).await,
            (500, "INJECTED_FAULT".into())
        );
    }
    assert!(s.all_changes().await.is_empty());
    let ok = s.post(&body).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("idempotent-replayed").is_none());
    let stats = s.stats().await;
    assert_eq!(stats["keys"]["t1"], json!({"requests": 3, "applied": 1}));
    assert_eq!(s.get_json("/_test/faults").await.1["failNext"], Value::Null);
    s.server.shutdown().await;
}

#[tokio::test]
async fn redirect_answers_every_mutation_302_to_its_path_until_cleared() {
    let s = server(true).await;
    let manual = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    s.set_faults(json!({"redirect": "/login"})).await;
    let body = insert("t1", "a", "x");
    let moved = manual
        .post(s.at("/api/mutations"))
        .header("Idempotency-Key", "t1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 302);
    assert_eq!(moved.headers()["location"], "/login");
    assert!(s.all_changes().await.is_empty(), "nothing applied");
    assert_eq!(
        s.get_json("/api/todos").await.0,
        200,
        "reads are not redirected"
    );
    // Only a path is taken.
    let refused = s
        .client
        .post(s.at("/_test/faults"))
        .json(&json!({"redirect": "https://elsewhere.example/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    s.set_faults(json!({"redirect": null})).await;
    assert_eq!(s.post(&body).await.status(), 200);
    assert_eq!(s.stats().await["keys"]["t1"]["applied"], 1);
    s.server.shutdown().await;
}

#[tokio::test]
async fn unavailable_answers_503_until_cleared_on_api_only() {
    let s = server(true).await;
    s.set_faults(json!({"unavailable": true})).await;
    let body = insert("t1", "a", "x");
    for _ in 0..3 {
        assert_eq!(
            error_code(s.post(&body).await).await,
            (503, "UNAVAILABLE".into())
        );
    }
    assert_eq!(s.get_json("/api/todos").await.0, 503);
    assert_eq!(
        s.get_json("/_test/stats").await.0,
        200,
        "/_test/ is never faulted"
    );
    s.set_faults(json!({"unavailable": false})).await;
    assert_eq!(s.post(&body).await.status(), 200);
    assert_eq!(
        s.stats().await["keys"]["t1"],
        json!({"requests": 4, "applied": 1})
    );
    assert_eq!(
        s.get_json("/_test/totals").await,
        (200, json!({"requests": 4, "applied": 1}))
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_reply_is_a_connection_error_but_the_change_is_applied_once() {
    let s = server(true).await;
    s.set_faults(json!({"dropReplies": 1})).await;
    let body = insert("t1", "a", "x");
    let err = s.try_post(&body, "t1").await.expect_err("no answer at all");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    let changes = s.all_changes().await;
    assert_eq!(changes.len(), 1, "applied before the reply was dropped");

    let retry = s.post(&body).await;
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(
        retry.json::<Value>().await.unwrap(),
        json!({"seq": 1, "txId": "t1"})
    );
    let stats = s.stats().await;
    assert_eq!(stats["keys"]["t1"], json!({"requests": 2, "applied": 1}));
    assert_eq!(stats["overApplied"], json!([]));
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_batch_reply_still_applies_every_item() {
    let s = server(true).await;
    s.set_faults(json!({"dropReplies": 1})).await;
    let txs = vec![insert("t1", "a", "x"), insert("t2", "b", "y")];
    let err = s
        .client
        .post(s.at("/api/mutations/batch"))
        .json(&json!({"transactions": txs}))
        .send()
        .await
        .expect_err("no answer at all");
    assert!(!err.is_status(), "{err:?}");
    let out = s.batch(txs).await;
    assert!(out["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["replayed"] == true));
    let stats = s.stats().await;
    assert_eq!(stats["keys"]["t2"], json!({"requests": 2, "applied": 1}));
    s.server.shutdown().await;
}

#[tokio::test]
async fn every_answer_closes_its_connection_with_faults_on() {
    let s = server(true).await;
    let resp = s.client.get(s.at("/api/todos")).send().await.unwrap();
    assert_eq!(resp.headers()["connection"], "close");
    s.server.shutdown().await;
}

#[tokio::test]
async fn delay_holds_back_api_answers() {
    let s = server(true).await;
    s.set_faults(json!({"delayMs": 300})).await;
    let t = Instant::now();
    assert_eq!(s.get_json("/api/todos").await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    s.stats().await;
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "/_test/ is not delayed"
    );
    let reset = s.client.post(s.at("/_test/reset")).send().await.unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(s.get_json("/_test/faults").await.1["delayMs"], 0);
    s.server.shutdown().await;
}

#[tokio::test]
async fn offline_closes_api_connections_including_open_feeds() {
    let s = server(true).await;
    let resp = s
        .client
        .get(s.at("/api/feed?since=0"))
        .send()
        .await
        .unwrap();
    let mut feed = SseReader::new(resp);
    s.set_faults(json!({"offline": true})).await;
    assert_eq!(feed.next().await, None, "the open feed was cut");
    let err = s
        .try_post(&insert("t1", "a", "x"), "t1")
        .await
        .expect_err("offline");
    assert!(!err.is_status(), "{err:?}");
    assert!(s.client.get(s.at("/api/todos")).send().await.is_err());
    assert!(s.all_changes_when_online().await.is_empty());
    s.server.shutdown().await;
}

#[tokio::test]
async fn stats_record_each_rows_application_order() {
    let s = server(true).await;
    s.post(&insert("t1", "a", "x")).await;
    let both = tx(
        "t2",
        vec![
            PendingMutation::update("todos", "a", json!({}), json!({"done": true})),
            PendingMutation::insert("todos", "b", json!({"id": "b"})),
            PendingMutation::update("todos", "b", json!({"id": "b"}), json!({"n": 1})),
        ],
    );
    s.post(&both).await;
    s.post(&insert("t3", "b", "z")).await;
    let stats = s.stats().await;
    assert_eq!(stats["order"]["todos/a"], json!(["t1", "t2"]));
    assert_eq!(stats["order"]["todos/b"], json!(["t2", "t3"]));
    assert_eq!(
        (stats["requests"].as_u64(), stats["applied"].as_u64()),
        (Some(3), Some(3))
    );
    s.client.post(s.at("/_test/reset")).send().await.unwrap();
    assert_eq!(s.stats().await["keys"], json!({}));
    s.server.shutdown().await;
}

#[tokio::test]
async fn bad_fault_settings_are_refused() {
    let s = server(true).await;
    for bad in [
        json!({"failNext": {"count": 1, "status": 200}}),
        json!({"nope": 1}),
    ] {
        let resp = s
            .client
            .post(s.at("/_test/faults"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    s.server.shutdown().await;
}

trait OnlineCheck {
    async fn all_changes_when_online(&self) -> Vec<Value>;
}

impl OnlineCheck for common::TestServer {
    /// Switches offline off, then reads the feed range.
    async fn all_changes_when_online(&self) -> Vec<Value> {
        self.set_faults(json!({"offline": false})).await;
        let ok = self.post(&insert("t9", "q", "after")).await;
        assert_eq!(ok.status(), 200);
        self.all_changes()
            .await
            .into_iter()
            .filter(|c| c["txId"] != "t9")
            .collect()
    }
}
