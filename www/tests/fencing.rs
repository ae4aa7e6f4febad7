//! Leader-epoch fencing: a request whose `Outbox-Epoch` is below the highest accepted for its
//! `Outbox-Scope` is refused whole (409 `STALE_EPOCH`, `Outbox-Fenced: true`) and applies
//! nothing, replays included; the highest epoch is kept per scope, across restarts.
#![allow(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

mod common;

use common::{config, error_code, insert, server, start_with, TestServer};
use serde_json::{json, Value};

/// `POST /api/mutations` with the key from the body and the given fencing headers.
async fn post_at(
    s: &TestServer,
    body: &Value,
    epoch: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let key = body["id"].as_str().unwrap_or_default();
    let mut req = s
        .client
        .post(s.at("/api/mutations"))
        .header("Idempotency-Key", key)
        .header("Outbox-Epoch", epoch)
        .json(body);
    if let Some(scope) = scope {
        req = req.header("Outbox-Scope", scope);
    }
    req.send().await.unwrap()
}

/// `POST /api/mutations/batch` with `Outbox-Epoch: epoch`.
async fn batch_at(s: &TestServer, txs: Vec<Value>, epoch: &str) -> reqwest::Response {
    s.client
        .post(s.at("/api/mutations/batch"))
        .header("Outbox-Epoch", epoch)
        .json(&json!({ "transactions": txs }))
        .send()
        .await
        .unwrap()
}

/// Checks a response is the fencing refusal.
async fn assert_fenced(resp: reqwest::Response) {
    assert_eq!(
        resp.headers().get("outbox-fenced").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(error_code(resp).await, (409, "STALE_EPOCH".into()));
}

fn tx_ids(changes: &[Value]) -> Vec<String> {
    changes
        .iter()
        .map(|c| c["txId"].as_str().unwrap().to_owned())
        .collect()
}

async fn restart(s: TestServer) -> TestServer {
    let TestServer {
        server,
        client,
        dir,
        ..
    } = s;
    server.shutdown().await;
    let (server, url) = start_with(config(dir.path(), false)).await;
    TestServer {
        server,
        url,
        client,
        dir,
    }
}

#[tokio::test]
async fn a_lower_epoch_is_refused_with_409_and_applies_nothing() {
    let s = server(false).await;
    let ok = post_at(&s, &insert("t1", "a", "new leader"), "2", None).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("outbox-fenced").is_none());

    let late = post_at(&s, &insert("t2", "a", "deposed leader"), "1", None).await;
    assert_fenced(late).await;
    assert_eq!(tx_ids(&s.all_changes().await), ["t1"]);
    let (_, rows) = s.get_json("/api/todos").await;
    assert_eq!(rows["rows"][0]["value"]["title"], "new leader");

    // Refused means not applied: the same transaction from the current leader applies.
    let resent = post_at(&s, &insert("t2", "b", "resent"), "2", None).await;
    assert_eq!(resent.status(), 200);
    assert!(resent.headers().get("idempotent-replayed").is_none());
    s.server.shutdown().await;
}

#[tokio::test]
async fn an_equal_or_higher_epoch_is_accepted() {
    let s = server(false).await;
    for (id, epoch) in [("t1", "3"), ("t2", "3"), ("t3", "4"), ("t4", "4")] {
        let resp = post_at(&s, &insert(id, id, "x"), epoch, None).await;
        assert_eq!(resp.status(), 200, "{id} at epoch {epoch}");
    }
    assert_fenced(post_at(&s, &insert("t5", "t5", "x"), "3", None).await).await;
    assert_eq!(s.all_changes().await.len(), 4);
    s.server.shutdown().await;
}

#[tokio::test]
async fn the_highest_epoch_survives_a_restart() {
    let s = server(false).await;
    assert_eq!(
        post_at(&s, &insert("t1", "a", "x"), "7", Some("u1"))
            .await
            .status(),
        200
    );
    let s = restart(s).await;
    assert_fenced(post_at(&s, &insert("t2", "b", "x"), "6", Some("u1")).await).await;
    assert_eq!(
        post_at(&s, &insert("t3", "c", "x"), "7", Some("u1"))
            .await
            .status(),
        200
    );
    assert_eq!(tx_ids(&s.all_changes().await), ["t1", "t3"]);
    s.server.shutdown().await;
}

#[tokio::test]
async fn scopes_are_fenced_independently() {
    let s = server(false).await;
    let post = |id: &'static str, epoch: &'static str, scope: Option<&'static str>| {
        let s = &s;
        async move { post_at(s, &insert(id, id, "x"), epoch, scope).await }
    };
    assert_eq!(post("t1", "5", Some("alice")).await.status(), 200);
    assert_eq!(post("t2", "1", Some("bob")).await.status(), 200);
    assert_eq!(
        post("t3", "1", None).await.status(),
        200,
        "no scope is \"\""
    );
    assert_eq!(post("t4", "1", Some("")).await.status(), 200);
    assert_fenced(post("t5", "4", Some("alice")).await).await;
    assert_eq!(post("t6", "2", Some("bob")).await.status(), 200);
    assert_fenced(post("t7", "1", Some("bob")).await).await;
    assert_fenced(post("t8", "0", None).await).await;
    assert_eq!(
        tx_ids(&s.all_changes().await),
        ["t1", "t2", "t3", "t4", "t6"]
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_batch_with_a_stale_epoch_is_refused_whole() {
    let s = server(false).await;
    let first = batch_at(&s, vec![insert("t1", "a", "x")], "3").await;
    assert_eq!(first.status(), 200);

    let late = batch_at(
        &s,
        vec![
            insert("t2", "b", "x"),
            insert("t1", "a", "x"),
            json!({"id": "t3", "mutations": []}),
        ],
        "2",
    )
    .await;
    assert_fenced(late).await;
    assert_fenced(batch_at(&s, vec![], "2").await).await;
    assert_fenced(batch_at(&s, vec![json!("not a transaction")], "1").await).await;
    assert_eq!(tx_ids(&s.all_changes().await), ["t1"]);

    let current = batch_at(&s, vec![insert("t2", "b", "x")], "3").await;
    assert_eq!(current.status(), 200);
    let out: Value = current.json().await.unwrap();
    assert_eq!(out["results"][0]["body"], json!({"seq": 2, "txId": "t2"}));
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_replay_from_a_stale_epoch_is_refused() {
    let s = server(false).await;
    let body = insert("t1", "a", "x");
    assert_eq!(post_at(&s, &body, "1", None).await.status(), 200);
    assert_eq!(
        post_at(&s, &insert("t2", "b", "x"), "2", None)
            .await
            .status(),
        200
    );
    assert_fenced(post_at(&s, &body, "1", None).await).await;

    let replay = post_at(&s, &body, "2", None).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(
        replay.json::<Value>().await.unwrap(),
        json!({"seq": 1, "txId": "t1"})
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn an_accepted_replay_with_a_higher_epoch_raises_it() {
    let s = server(false).await;
    let body = insert("t1", "a", "x");
    assert_eq!(post_at(&s, &body, "1", None).await.status(), 200);
    let replay = post_at(&s, &body, "5", None).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_fenced(post_at(&s, &insert("t2", "b", "x"), "4", None).await).await;

    // In a batch too: one replayed item is enough.
    let out = batch_at(&s, vec![body.clone()], "8").await;
    assert_eq!(
        out.json::<Value>().await.unwrap()["results"][0]["replayed"],
        true
    );
    assert_fenced(post_at(&s, &insert("t3", "c", "x"), "7", None).await).await;
    assert_eq!(tx_ids(&s.all_changes().await), ["t1"]);
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_refused_transaction_does_not_raise_the_epoch() {
    let s = server(false).await;
    // An update of a missing row without a whole row passes parsing but is refused on apply.
    let refused = json!({"id": "u1", "mutations": [
        {"collection": "todos", "key": "missing", "kind": "update", "changes": 5}
    ]});
    let resp = post_at(&s, &refused, "9", None).await;
    assert_eq!(error_code(resp).await, (400, "BAD_REQUEST".into()));

    let out = batch_at(&s, vec![refused, json!({"id": "u2", "mutations": []})], "9").await;
    assert_eq!(out.status(), 200);
    let out: Value = out.json().await.unwrap();
    assert_eq!(out["results"][0]["status"], 400);
    assert_eq!(out["results"][1]["status"], 400);

    assert_eq!(
        post_at(&s, &insert("t1", "a", "x"), "1", None)
            .await
            .status(),
        200,
        "nothing was accepted at epoch 9"
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_request_without_the_epoch_header_is_not_fenced() {
    let s = server(false).await;
    assert_eq!(
        post_at(&s, &insert("t1", "a", "x"), "5", None)
            .await
            .status(),
        200
    );
    assert_eq!(s.post(&insert("t2", "b", "x")).await.status(), 200);
    let scope_only = s
        .client
        .post(s.at("/api/mutations"))
        .header("Idempotency-Key", "t3")
        .header("Outbox-Scope", "")
        .json(&insert("t3", "c", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(scope_only.status(), 200);
    let out = s.batch(vec![insert("t4", "d", "x")]).await;
    assert_eq!(out["results"][0]["status"], 200);
    assert_eq!(tx_ids(&s.all_changes().await), ["t1", "t2", "t3", "t4"]);
    // Unfenced requests do not move the epoch either.
    assert_fenced(post_at(&s, &insert("t5", "e", "x"), "4", None).await).await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_garbage_epoch_header_is_a_bad_request() {
    let s = server(false).await;
    for epoch in ["", "abc", "-1", "1.5", "0x10", "18446744073709551616"] {
        let resp = post_at(&s, &insert("t1", "a", "x"), epoch, None).await;
        assert_eq!(
            error_code(resp).await,
            (400, "BAD_REQUEST".into()),
            "{epoch:?}"
        );
        let resp = batch_at(&s, vec![insert("t1", "a", "x")], epoch).await;
        assert_eq!(
            error_code(resp).await,
            (400, "BAD_REQUEST".into()),
            "{epoch:?}"
        );
    }
    assert!(s.all_changes().await.is_empty());
    let max = post_at(&s, &insert("t1", "a", "x"), "18446744073709551615", None).await;
    assert_eq!(max.status(), 200, "the whole u64 range is an epoch");
    assert_fenced(post_at(&s, &insert("t2", "b", "x"), "18446744073709551614", None).await).await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_fenced_request_is_counted_but_not_applied_in_stats() {
    let s = server(true).await;
    assert_eq!(
        post_at(&s, &insert("t1", "a", "x"), "2", None)
            .await
            .status(),
        200
    );
    assert_fenced(post_at(&s, &insert("t2", "b", "x"), "1", None).await).await;
    assert_fenced(batch_at(&s, vec![insert("t3", "c", "x")], "1").await).await;
    let stats = s.stats().await;
    assert_eq!(stats["keys"]["t2"], json!({"requests": 1, "applied": 0}));
    assert_eq!(stats["keys"]["t3"], json!({"requests": 1, "applied": 0}));
    assert_eq!(stats["applied"], 1);
    assert_eq!(stats["order"], json!({"todos/a": ["t1"]}));
    s.server.shutdown().await;
}

#[tokio::test]
async fn concurrent_leaders_never_apply_a_lower_epoch_after_a_higher_one() {
    let s = server(false).await;
    let n = 60u64;
    let epoch_of = |i: u64| (i * 7) % 5 + 1;
    let answers = futures_util::future::join_all((0..n).map(|i| {
        let s = &s;
        async move {
            let body = insert(&format!("c{i}"), &format!("k{i}"), "x");
            post_at(s, &body, &epoch_of(i).to_string(), Some("u"))
                .await
                .status()
                .as_u16()
        }
    }))
    .await;
    for (i, status) in answers.iter().enumerate() {
        assert!(*status == 200 || *status == 409, "c{i}: {status}");
        if epoch_of(i as u64) == 5 {
            assert_eq!(*status, 200, "the highest epoch is never fenced");
        }
    }
    let epochs: Vec<u64> = tx_ids(&s.all_changes().await)
        .iter()
        .map(|id| epoch_of(id[1..].parse().unwrap()))
        .collect();
    assert_eq!(
        epochs.len(),
        answers.iter().filter(|s| **s == 200).count(),
        "every 200 is an applied change and nothing else is"
    );
    assert!(
        epochs.windows(2).all(|w| w[0] <= w[1]),
        "applied in epoch order: {epochs:?}"
    );
    s.server.shutdown().await;
}
