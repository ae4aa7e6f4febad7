//! Authentication: login gives a bearer token and logout revokes it; `--auth required` refuses
//! requests without a valid token (401 with `WWW-Authenticate`), `optional` lets anonymous ones
//! in but refuses a bad token, `off` ignores tokens; the demo users come and go with
//! `--demo-users`. Key ownership and per-user fencing are in `user_keys.rs`.
#![allow(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

mod common;

use common::{
    batch_as, changes_of, error_code, get_as, insert, post_as, restart, server, server_with,
    tx_ids, with_token, SseReader, TestServer, WAIT,
};
use outbox_www::AuthMode;
use serde_json::{json, Value};

const ALICE: &str = "demo-alice";
const BOB: &str = "demo-bob";

async fn login(s: &TestServer, user: &str, password: &str) -> reqwest::Response {
    s.client
        .post(s.at("/api/login"))
        .json(&json!({"user": user, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn logout(s: &TestServer, token: Option<&str>) -> reqwest::Response {
    with_token(s.client.post(s.at("/api/logout")), token)
        .send()
        .await
        .unwrap()
}

async fn user_of(s: &TestServer, token: Option<&str>) -> Value {
    let resp = get_as(s, token, "/api/session").await;
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["user"].clone()
}

/// A `401` with the Bearer challenge and the given code.
async fn assert_401(resp: reqwest::Response, code: &str) {
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.starts_with("Bearer")),
        "{challenge:?}"
    );
    assert_eq!(error_code(resp).await, (401, code.to_owned()));
}

#[tokio::test]
async fn login_gives_a_token_that_acts_as_its_user() {
    let s = server(false).await;
    let resp = login(&s, "alice", "alice").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"], "alice");
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("outbox_") && token.len() == 71, "{token}");
    assert_eq!(user_of(&s, Some(&token)).await, "alice");
    assert_eq!(user_of(&s, Some(BOB)).await, "bob", "the demo token");
    assert_eq!(user_of(&s, None).await, "", "anonymous");

    let again: Value = login(&s, "alice", "alice").await.json().await.unwrap();
    assert_ne!(
        again["token"].as_str().unwrap(),
        token,
        "a new token each time"
    );

    assert_401(login(&s, "alice", "bob").await, "BAD_CREDENTIALS").await;
    assert_401(login(&s, "alice", "").await, "BAD_CREDENTIALS").await;
    assert_401(login(&s, "carol", "carol").await, "BAD_CREDENTIALS").await;
    assert_401(login(&s, "", "").await, "BAD_CREDENTIALS").await;
    let bad = s
        .client
        .post(s.at("/api/login"))
        .json(&json!({"user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad).await, (400, "BAD_REQUEST".into()));
    s.server.shutdown().await;
}

#[tokio::test]
async fn required_mode_refuses_every_api_route_without_a_valid_token() {
    let s = server_with(true, |c| c.auth = AuthMode::Required).await;
    for token in [None, Some("not-a-token"), Some("outbox_00"), Some("a b")] {
        assert_401(
            post_as(&s, token, &insert("t1", "a", "x")).await,
            "UNAUTHORIZED",
        )
        .await;
        assert_401(
            batch_as(&s, token, vec![insert("t2", "b", "x")]).await,
            "UNAUTHORIZED",
        )
        .await;
        for path in [
            "/api/todos",
            "/api/changes",
            "/api/feed",
            "/api/session",
            "/api/nope/at/all",
        ] {
            assert_401(get_as(&s, token, path).await, "UNAUTHORIZED").await;
        }
        assert_401(logout(&s, token).await, "UNAUTHORIZED").await;
    }
    let basic = s
        .client
        .get(s.at("/api/todos"))
        .basic_auth("alice", Some("alice"))
        .send()
        .await
        .unwrap();
    assert_401(basic, "UNAUTHORIZED").await;
    // The test switches need no token; nothing was applied.
    assert_eq!(s.stats().await["applied"], 0);
    assert!(changes_of(&s, Some(ALICE)).await.is_empty());

    // Login needs none, and its token opens every route.
    let token: Value = login(&s, "bob", "bob").await.json().await.unwrap();
    let token = token["token"].as_str().unwrap();
    assert_eq!(
        post_as(&s, Some(token), &insert("t1", "a", "x"))
            .await
            .status(),
        200
    );
    let resp = get_as(&s, Some(token), "/api/todos").await;
    assert_eq!(resp.status(), 200);
    let session: Value = get_as(&s, Some(token), "/api/session")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session, json!({"user": "bob", "auth": "required"}));
    s.server.shutdown().await;
}

#[tokio::test]
async fn the_feed_takes_its_token_from_the_query_when_required() {
    let s = server_with(false, |c| c.auth = AuthMode::Required).await;
    let bad = get_as(&s, None, "/api/feed?since=0&access_token=outbox_nope").await;
    assert_401(bad, "UNAUTHORIZED").await;
    let feed = get_as(&s, None, "/api/feed?since=0&access_token=demo-alice").await;
    let mut events = SseReader::new(feed);
    assert_eq!(
        post_as(&s, Some(ALICE), &insert("t1", "a", "x"))
            .await
            .status(),
        200
    );
    let ev = tokio::time::timeout(WAIT, events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&ev.data["txId"], &ev.data["by"]),
        (&json!("t1"), &json!("alice"))
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn optional_mode_lets_anonymous_in_and_refuses_a_bad_token() {
    let s = server(false).await;
    assert_eq!(
        post_as(&s, None, &insert("t1", "a", "x")).await.status(),
        200
    );
    for token in ["outbox_0000", "demo-carol", "x=y"] {
        assert_401(
            post_as(&s, Some(token), &insert("t2", "b", "x")).await,
            "UNAUTHORIZED",
        )
        .await;
        assert_401(
            batch_as(&s, Some(token), vec![insert("t3", "c", "x")]).await,
            "UNAUTHORIZED",
        )
        .await;
        assert_401(get_as(&s, Some(token), "/api/todos").await, "UNAUTHORIZED").await;
    }
    assert_eq!(
        tx_ids(&changes_of(&s, None).await),
        ["t1"],
        "a bad token applies nothing"
    );
    assert_eq!(
        post_as(&s, Some(ALICE), &insert("t2", "b", "x"))
            .await
            .status(),
        200
    );
    let session: Value = get_as(&s, None, "/api/session").await.json().await.unwrap();
    assert_eq!(session, json!({"user": "", "auth": "optional"}));
    s.server.shutdown().await;
}

#[tokio::test]
async fn off_mode_ignores_tokens_and_everyone_is_anonymous() {
    let s = server_with(false, |c| c.auth = AuthMode::Off).await;
    assert_eq!(
        post_as(&s, Some("outbox_garbage"), &insert("t1", "a", "x"))
            .await
            .status(),
        200
    );
    assert_eq!(user_of(&s, Some(ALICE)).await, "");
    // Everyone is the same user, so a key is everyone's.
    let replay = post_as(&s, Some(BOB), &insert("t1", "a", "x")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert!(changes_of(&s, None).await[0].get("by").is_none());
    s.server.shutdown().await;
}

#[tokio::test]
async fn logout_revokes_the_token_and_only_that_one() {
    let s = server(false).await;
    let body: Value = login(&s, "alice", "alice").await.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert_eq!(user_of(&s, Some(token)).await, "alice");

    assert_401(logout(&s, None).await, "UNAUTHORIZED").await;
    assert_eq!(logout(&s, Some(token)).await.status(), 204);
    assert_401(
        get_as(&s, Some(token), "/api/session").await,
        "UNAUTHORIZED",
    )
    .await;
    assert_401(
        post_as(&s, Some(token), &insert("t1", "a", "x")).await,
        "UNAUTHORIZED",
    )
    .await;
    assert_401(logout(&s, Some(token)).await, "UNAUTHORIZED").await;
    assert!(changes_of(&s, None).await.is_empty());
    assert_eq!(user_of(&s, Some(ALICE)).await, "alice", "other tokens stay");

    // The revocation holds across a restart.
    let s = restart(s, |_| {}).await;
    assert_401(
        get_as(&s, Some(token), "/api/session").await,
        "UNAUTHORIZED",
    )
    .await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn without_demo_users_their_tokens_and_passwords_stop_working() {
    let s = server(false).await;
    let issued: Value = login(&s, "bob", "bob").await.json().await.unwrap();
    let issued = issued["token"].as_str().unwrap().to_owned();
    assert_eq!(logout(&s, Some(ALICE)).await.status(), 204);
    // A revoked demo token is restored at the next start with demo users.
    let s = restart(s, |_| {}).await;
    assert_eq!(user_of(&s, Some(ALICE)).await, "alice");

    let s = restart(s, |c| c.demo_users = false).await;
    for token in [ALICE, BOB, issued.as_str()] {
        assert_401(
            get_as(&s, Some(token), "/api/session").await,
            "UNAUTHORIZED",
        )
        .await;
    }
    assert_401(login(&s, "alice", "alice").await, "BAD_CREDENTIALS").await;
    s.server.shutdown().await;
}

#[test]
fn the_binary_refuses_demo_users_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outbox-server"))
        .args(["--host", "0.0.0.0", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "never said it was listening");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--demo-users=false"), "{err}");
}
