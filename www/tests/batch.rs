//! The batch endpoint: many transactions per request, each with its own idempotency and answer.

mod common;

use common::{error_code, insert, server, tx};
use outbox_shared::PendingMutation;
use serde_json::{json, Value};

#[tokio::test]
async fn a_batch_answers_each_item_in_order_with_mixed_outcomes() {
    let s = server(false).await;
    assert_eq!(s.post(&insert("t0", "z", "before")).await.status(), 200);
    let half_bad = tx(
        "t4",
        vec![
            PendingMutation::insert("todos", "h", json!({"id": "h"})),
            PendingMutation::insert("todos", "", json!({})),
        ],
    );
    let out = s
        .batch(vec![
            insert("t1", "a", "one"),
            json!({"id": "t2", "mutations": [{"collection": "todos", "kind": "delete"}]}),
            insert("t3", "b", "three"),
            insert("t1", "a", "one again"),
            insert("t0", "z", "before"),
            half_bad,
            json!("not a transaction"),
        ])
        .await;
    let r = out["results"].as_array().unwrap();
    assert_eq!(r.len(), 7);
    assert_eq!(
        r[0],
        json!({"id": "t1", "status": 200, "body": {"seq": 2, "txId": "t1"}})
    );
    assert_eq!((&r[1]["id"], &r[1]["status"]), (&json!("t2"), &json!(400)));
    assert_eq!(r[1]["body"]["error"]["code"], "MISSING_KEY");
    assert_eq!(r[2]["body"], json!({"seq": 3, "txId": "t3"}));
    assert_eq!(
        r[3],
        json!({"id": "t1", "status": 200, "body": {"seq": 2, "txId": "t1"}, "replayed": true})
    );
    assert_eq!(r[4]["body"], json!({"seq": 1, "txId": "t0"}));
    assert_eq!(r[4]["replayed"], true);
    assert_eq!(r[5]["body"]["error"]["code"], "MISSING_KEY");
    assert_eq!((&r[6]["id"], &r[6]["status"]), (&Value::Null, &json!(400)));

    let changes = s.all_changes().await;
    let ids: Vec<&str> = changes
        .iter()
        .map(|c| c["txId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t0", "t1", "t3"], "bad items left no trace");
    let (_, rows) = s.get_json("/api/todos").await;
    let keys: Vec<&str> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["a", "b", "z"]);

    // A single replay of a batch item gets the batch's answer.
    let replay = s.post(&insert("t3", "b", "three")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(
        replay.json::<Value>().await.unwrap(),
        json!({"seq": 3, "txId": "t3"})
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_malformed_batch_is_refused_whole() {
    let s = server(false).await;
    for body in [json!({"transactions": 5}), json!([insert("t1", "a", "x")])] {
        let resp = s
            .client
            .post(s.at("/api/mutations/batch"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(resp).await, (400, "BAD_REQUEST".into()));
    }
    let out = s.batch(vec![]).await;
    assert_eq!(out, json!({"results": []}));
    assert!(s.all_changes().await.is_empty());
    s.server.shutdown().await;
}
