//! Validation: every bad request gets a 4xx with a JSON code, and nothing is half-written.
#![allow(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

mod common;

use common::{error_code, insert, server, server_with, tx, TestServer};
use outbox_shared::PendingMutation;
use serde_json::{json, Value};

async fn post_raw(s: &TestServer, body: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = s
        .client
        .post(s.at("/api/mutations"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    req.send().await.unwrap()
}

async fn assert_nothing_written(s: &TestServer) {
    assert!(s.all_changes().await.is_empty());
    let (_, rows) = s.get_json("/api/todos").await;
    assert_eq!(rows, json!({"seq": 0, "rows": []}));
}

#[tokio::test]
async fn bad_requests_get_their_codes_and_write_nothing() {
    let s = server(false).await;
    let good = insert("t1", "a", "x").to_string();
    let cases: Vec<(String, Option<&str>, u16, &str)> = vec![
        ("{not json".into(), Some("t1"), 400, "BAD_REQUEST"),
        ("[1, 2]".into(), Some("t1"), 400, "BAD_REQUEST"),
        (json!({"id": "t1"}).to_string(), Some("t1"), 400, "BAD_REQUEST"),
        (good.clone(), None, 400, "BAD_IDEMPOTENCY_KEY"),
        (good.clone(), Some(""), 400, "BAD_IDEMPOTENCY_KEY"),
        (good.clone(), Some("other"), 400, "BAD_IDEMPOTENCY_KEY"),
        (
            tx("t1", vec![PendingMutation::insert("notes", "a", json!({}))]).to_string(),
            Some("t1"),
            422,
            "UNKNOWN_COLLECTION",
        ),
        (
            tx("t1", vec![PendingMutation::insert("todos", "", json!({}))]).to_string(),
            Some("t1"),
            400,
            "MISSING_KEY",
        ),
        (
            json!({"id": "t1", "mutations": [{"collection": "todos", "kind": "insert", "modified": {}}]})
                .to_string(),
            Some("t1"),
            400,
            "MISSING_KEY",
        ),
    ];
    for (body, key, status, code) in cases {
        let got = error_code(post_raw(&s, &body, key).await).await;
        assert_eq!(got, (status, code.to_owned()), "{body} / {key:?}");
    }
    assert_nothing_written(&s).await;
    // None of the refusals was recorded: the same key still works.
    assert_eq!(s.post(&insert("t1", "a", "x")).await.status(), 200);
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_transaction_whose_second_mutation_is_bad_leaves_no_trace() {
    let s = server(false).await;
    // Refused while reading: the second mutation names an unknown collection.
    let unknown = tx(
        "t1",
        vec![
            PendingMutation::insert("todos", "a", json!({"id": "a"})),
            PendingMutation::insert("nope", "b", json!({"id": "b"})),
        ],
    );
    assert_eq!(
        error_code(s.post(&unknown).await).await.1,
        "UNKNOWN_COLLECTION"
    );
    // Refused while applying: an update of a row that does not exist, with no whole row.
    let missing_row = json!({"id": "t2", "mutations": [
        {"collection": "todos", "key": "a", "kind": "insert", "modified": {"id": "a"}},
        {"collection": "todos", "key": "zz", "kind": "update", "changes": 5}
    ]});
    assert_eq!(
        error_code(s.post(&missing_row).await).await,
        (400, "BAD_REQUEST".into())
    );
    assert_nothing_written(&s).await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let s = server_with(false, |c| c.max_body_bytes = 2048).await;
    let big = insert("t1", "a", &"x".repeat(4096));
    assert_eq!(
        error_code(s.post(&big).await).await,
        (413, "BODY_TOO_LARGE".into())
    );
    let resp = s
        .client
        .post(s.at("/api/mutations/batch"))
        .json(&json!({"transactions": [big]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (413, "BODY_TOO_LARGE".into()));
    assert_nothing_written(&s).await;
    assert_eq!(s.post(&insert("t2", "a", "small")).await.status(), 200);
    s.server.shutdown().await;
}

#[tokio::test]
async fn unknown_collections_and_routes_are_404_with_a_code() {
    let s = server(false).await;
    let resp = s.client.get(s.at("/api/notes")).send().await.unwrap();
    assert_eq!(error_code(resp).await, (404, "UNKNOWN_COLLECTION".into()));
    let resp = s.client.get(s.at("/api/todos/extra")).send().await.unwrap();
    assert_eq!(error_code(resp).await, (404, "NOT_FOUND".into()));
    // The fault switches do not exist without --faults.
    let resp = s.client.get(s.at("/_test/stats")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let (status, body) = s.get_json("/api/todos").await;
    assert_eq!((status, body["seq"].clone()), (200, Value::from(0)));
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_change_too_large_for_the_feed_is_refused_and_leaves_no_trace() {
    let s = server(false).await;
    let big = "x".repeat(100_000);
    assert_eq!(
        s.post(&tx(
            "big",
            vec![PendingMutation::insert(
                "todos",
                "big",
                json!({"id": "big", "t": big})
            )]
        ))
        .await
        .status(),
        200
    );
    // A 128 kB body naming that 100 kB row 2,000 times: a 200 MB change-feed entry.
    let same = || PendingMutation {
        changes: std::sync::Arc::new(json!({})),
        ..PendingMutation::update("todos", "big", json!({"id": "big"}), json!({}))
    };
    let amplified = tx("amp", (0..2_000).map(|_| same()).collect());
    let resp = s.post(&amplified).await;
    assert_eq!(error_code(resp).await, (413, "ENTRY_TOO_LARGE".to_owned()));
    let ids: Vec<Value> = s
        .all_changes()
        .await
        .iter()
        .map(|c| c["txId"].clone())
        .collect();
    assert_eq!(ids, [json!("big")], "nothing of it written");
    // Refused, not applied: the same id is free for a transaction that fits.
    let fits = tx("amp", (0..3).map(|_| same()).collect());
    assert_eq!(s.post(&fits).await.status(), 200);
    s.server.shutdown().await;
}

#[tokio::test]
async fn an_id_or_key_over_1_kb_is_a_bad_request() {
    let s = server(false).await;
    let long = "k".repeat(1_025);
    let by_id = insert(&long, "a", "x");
    assert_eq!(
        error_code(s.post(&by_id).await).await,
        (400, "BAD_REQUEST".to_owned())
    );
    let by_key = insert("t1", &long, "x");
    assert_eq!(
        error_code(s.post(&by_key).await).await,
        (400, "BAD_REQUEST".to_owned())
    );
    assert_nothing_written(&s).await;
    assert_eq!(
        s.post(&insert(&"k".repeat(1_024), "a", "x")).await.status(),
        200
    );
    s.server.shutdown().await;
}
