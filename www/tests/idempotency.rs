//! Idempotency and sequence numbers: a replay gets the first answer and applies nothing, even
//! after a restart; concurrent transactions get distinct, gapless, increasing numbers.

mod common;

use common::{config, insert, server, start_with, tx, TestServer};
use outbox_shared::PendingMutation;
use serde_json::{json, Value};

#[tokio::test]
async fn replay_after_restart_returns_the_first_answer_and_applies_nothing() {
    let s = server(false).await;
    let body = insert("t1", "a", "milk");
    let first = s.post(&body).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    assert_eq!(first, json!({"seq": 1, "txId": "t1"}));

    let TestServer {
        server,
        client,
        dir,
        ..
    } = s;
    server.shutdown().await;
    let (server, url) = start_with(config(dir.path(), false)).await;
    let s = TestServer {
        server,
        url,
        client,
        dir,
    };

    let replay = s.post(&body).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_eq!(s.all_changes().await.len(), 1, "applied once");

    let next: Value = s
        .post(&insert("t2", "b", "eggs"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["seq"], 2, "numbering continues after a restart");
    let (_, rows) = s.get_json("/api/todos").await;
    assert_eq!(rows["seq"], 2);
    assert_eq!(rows["rows"][0]["value"]["title"], "milk");
    assert_eq!(rows["rows"].as_array().unwrap().len(), 2);
    s.server.shutdown().await;
}

#[tokio::test]
async fn concurrent_posts_get_distinct_gapless_increasing_seqs() {
    let s = server(false).await;
    let n = 64u64;
    let answers = futures_util::future::join_all((0..n).map(|i| {
        let body = insert(&format!("c{i}"), &format!("k{i}"), "x");
        let s = &s;
        async move { s.post(&body).await.json::<Value>().await.unwrap() }
    }))
    .await;
    let mut seqs: Vec<u64> = answers.iter().map(|a| a["seq"].as_u64().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());

    let changes = s.all_changes().await;
    assert_eq!(changes.len() as u64, n);
    for (i, c) in changes.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(c["seq"], seq);
        assert_eq!(c["prevSeq"], seq - 1);
        let answer = answers.iter().find(|a| a["txId"] == c["txId"]).unwrap();
        assert_eq!(
            answer["seq"], c["seq"],
            "the answer names the change's number"
        );
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn the_same_key_sent_concurrently_is_applied_once() {
    let s = server(false).await;
    let body = insert("same", "a", "x");
    let answers = futures_util::future::join_all(
        (0..16).map(|_| async { s.post(&body).await.json::<Value>().await.unwrap() }),
    )
    .await;
    assert!(answers
        .iter()
        .all(|a| *a == json!({"seq": 1, "txId": "same"})));
    assert_eq!(s.all_changes().await.len(), 1);
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_transaction_applies_all_its_mutations_as_one_change() {
    let s = server(false).await;
    s.post(&insert("t1", "a", "milk")).await;
    let body = tx(
        "t2",
        vec![
            PendingMutation::update(
                "todos",
                "a",
                json!({"id": "a", "title": "milk", "done": false}),
                json!({"done": true}),
            ),
            PendingMutation::insert("todos", "b", json!({"id": "b", "title": "eggs"})),
            PendingMutation::delete("todos", "b", json!({"id": "b", "title": "eggs"})),
        ],
    );
    let answer: Value = s.post(&body).await.json().await.unwrap();
    assert_eq!(answer["seq"], 2);
    let (_, rows) = s.get_json("/api/todos").await;
    assert_eq!(
        rows,
        json!({"seq": 2, "rows": [
            {"key": "a", "value": {"id": "a", "title": "milk", "done": true}, "seq": 2}
        ]})
    );
    let entry = &s.all_changes().await[1];
    assert_eq!(entry["txId"], "t2");
    let ops: Vec<&str> = entry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["update", "insert", "delete"]);
    assert_eq!(entry["changes"][2]["value"], Value::Null);
    s.server.shutdown().await;
}

#[tokio::test]
async fn an_update_merges_over_newer_fields_it_did_not_touch() {
    let s = server(false).await;
    s.post(&insert("t1", "a", "milk")).await;
    // Another client renamed it since this update was made against the old row.
    let rename = tx(
        "t2",
        vec![PendingMutation::update(
            "todos",
            "a",
            json!({"id": "a", "title": "milk", "done": false}),
            json!({"title": "oat milk"}),
        )],
    );
    let toggle = tx(
        "t3",
        vec![PendingMutation::update(
            "todos",
            "a",
            json!({"id": "a", "title": "milk", "done": false}),
            json!({"done": true}),
        )],
    );
    s.post(&rename).await;
    s.post(&toggle).await;
    let (_, rows) = s.get_json("/api/todos").await;
    assert_eq!(
        rows["rows"][0]["value"],
        json!({"id": "a", "title": "oat milk", "done": true})
    );
    s.server.shutdown().await;
}
