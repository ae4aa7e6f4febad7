//! Users own their idempotency keys and their leader epochs: a key applied for one user is
//! refused (`403 IDEMPOTENCY_KEY_OF_ANOTHER_USER`, applying nothing) for any other, singly or
//! in a batch; the owner's replay gets the stored answer; one user's epochs never fence
//! another's; changes and rows name the user who wrote them.
#![allow(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

mod common;

use common::{
    batch_as, changes_of, error_code, insert, post_as, restart, server, tx_ids, with_token,
    TestServer,
};
use serde_json::{json, Value};

const ALICE: &str = "demo-alice";
const BOB: &str = "demo-bob";

#[tokio::test]
async fn a_key_applied_by_another_user_is_refused_and_applies_nothing() {
    let s = server(false).await;
    let first = post_as(&s, Some(ALICE), &insert("t1", "a", "alice's")).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();

    for token in [Some(BOB), None] {
        let other = post_as(&s, token, &insert("t1", "b", "not alice's")).await;
        assert!(other.headers().get("idempotent-replayed").is_none());
        assert_eq!(
            error_code(other).await,
            (403, "IDEMPOTENCY_KEY_OF_ANOTHER_USER".into()),
            "{token:?}"
        );
    }
    // An anonymous key is not a user's either.
    assert_eq!(
        post_as(&s, None, &insert("t2", "c", "anon")).await.status(),
        200
    );
    let stolen = post_as(&s, Some(ALICE), &insert("t2", "c", "alice")).await;
    assert_eq!(
        error_code(stolen).await.1,
        "IDEMPOTENCY_KEY_OF_ANOTHER_USER"
    );

    // The owner's replay gets the stored answer, after a restart too.
    let s = restart(s, |_| {}).await;
    let bob = post_as(&s, Some(BOB), &insert("t1", "b", "not alice's")).await;
    assert_eq!(bob.status(), 403, "ownership is stored");
    let replay = post_as(&s, Some(ALICE), &insert("t1", "a", "alice's")).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);

    assert_eq!(tx_ids(&changes_of(&s, None).await), ["t1", "t2"]);
    let (_, rows) = s.get_json("/api/todos").await;
    let keys: Vec<&str> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["a", "c"],
        "nothing of the refused requests was written"
    );
    assert_eq!(rows["rows"][1]["value"]["title"], "anon");
    s.server.shutdown().await;
}

#[tokio::test]
async fn batch_items_with_another_users_key_are_refused_alone() {
    let s = server(true).await;
    assert_eq!(
        post_as(&s, Some(ALICE), &insert("t1", "a", "x"))
            .await
            .status(),
        200
    );
    let resp = batch_as(
        &s,
        Some(BOB),
        vec![insert("t1", "b", "bob's"), insert("t2", "c", "bob's")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    let r = out["results"].as_array().unwrap();
    assert_eq!((&r[0]["id"], &r[0]["status"]), (&json!("t1"), &json!(403)));
    assert_eq!(
        r[0]["body"]["error"]["code"],
        "IDEMPOTENCY_KEY_OF_ANOTHER_USER"
    );
    assert!(r[0].get("replayed").is_none());
    assert_eq!(
        r[1],
        json!({"id": "t2", "status": 200, "body": {"seq": 2, "txId": "t2"}})
    );

    let out: Value = batch_as(&s, Some(ALICE), vec![insert("t1", "a", "x")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        out["results"][0],
        json!({"id": "t1", "status": 200, "body": {"seq": 1, "txId": "t1"}, "replayed": true})
    );
    let changes = changes_of(&s, None).await;
    assert_eq!(tx_ids(&changes), ["t1", "t2"]);
    assert_eq!(
        (&changes[0]["by"], &changes[1]["by"]),
        (&json!("alice"), &json!("bob"))
    );
    let stats = s.stats().await;
    assert_eq!(stats["keys"]["t1"]["applied"], 1);
    assert_eq!(
        stats["order"]["todos/b"],
        Value::Null,
        "bob's t1 touched no row"
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn the_same_key_from_two_users_at_once_is_applied_once_for_one_of_them() {
    let s = server(false).await;
    let answers = futures_util::future::join_all((0..16).map(|i| {
        let s = &s;
        async move {
            let token = if i % 2 == 0 { ALICE } else { BOB };
            let resp = post_as(s, Some(token), &insert("k", "a", token)).await;
            (token, resp.status().as_u16())
        }
    }))
    .await;
    let changes = changes_of(&s, None).await;
    assert_eq!(changes.len(), 1);
    let winner = if changes[0]["by"] == "alice" {
        ALICE
    } else {
        BOB
    };
    for (token, status) in answers {
        let expected = if token == winner { 200 } else { 403 };
        assert_eq!(status, expected, "{token}");
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn changes_and_rows_name_the_user_who_wrote_them() {
    let s = server(false).await;
    post_as(&s, Some(ALICE), &insert("t1", "a", "x")).await;
    post_as(&s, None, &insert("t2", "b", "x")).await;
    let changes = changes_of(&s, None).await;
    assert_eq!(changes[0]["by"], "alice");
    assert!(
        changes[1].get("by").is_none(),
        "anonymous entries are as before"
    );
    let (_, rows) = s.get_json("/api/todos").await;
    assert_eq!(rows["rows"][0]["by"], "alice");
    assert!(rows["rows"][1].get("by").is_none());
    s.server.shutdown().await;
}

/// `POST /api/mutations` as `token` with `Outbox-Epoch` and `Outbox-Scope`.
async fn post_fenced(
    s: &TestServer,
    token: Option<&str>,
    id: &str,
    epoch: u64,
) -> reqwest::Response {
    let req = s
        .client
        .post(s.at("/api/mutations"))
        .header("Idempotency-Key", id)
        .header("Outbox-Epoch", epoch.to_string())
        .header("Outbox-Scope", "todos-app")
        .json(&insert(id, id, "x"));
    with_token(req, token).send().await.unwrap()
}

#[tokio::test]
async fn leader_epochs_are_fenced_per_user() {
    let s = server(false).await;
    assert_eq!(post_fenced(&s, Some(ALICE), "a1", 5).await.status(), 200);
    // Bob's and the anonymous outbox's leaders are not deposed by alice's epoch 5.
    assert_eq!(post_fenced(&s, Some(BOB), "b1", 1).await.status(), 200);
    assert_eq!(post_fenced(&s, None, "n1", 1).await.status(), 200);
    let bob_batch = with_token(
        s.client
            .post(s.at("/api/mutations/batch"))
            .header("Outbox-Epoch", "1")
            .header("Outbox-Scope", "todos-app")
            .json(&json!({"transactions": [insert("b2", "b2", "x")]})),
        Some(BOB),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(bob_batch.status(), 200);

    // Each is fenced by its own epochs only.
    let stale = post_fenced(&s, Some(ALICE), "a2", 4).await;
    assert_eq!(stale.headers()["outbox-fenced"], "true");
    assert_eq!(error_code(stale).await, (409, "STALE_EPOCH".into()));
    assert_eq!(post_fenced(&s, Some(BOB), "b3", 3).await.status(), 200);
    assert_eq!(
        error_code(post_fenced(&s, Some(BOB), "b4", 2).await)
            .await
            .1,
        "STALE_EPOCH"
    );
    assert_eq!(post_fenced(&s, Some(ALICE), "a3", 5).await.status(), 200);
    assert_eq!(post_fenced(&s, None, "n2", 1).await.status(), 200);
    assert_eq!(
        tx_ids(&changes_of(&s, None).await),
        ["a1", "b1", "n1", "b2", "b3", "a3", "n2"]
    );
    s.server.shutdown().await;
}
