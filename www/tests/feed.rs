//! The change feed: the JSON range endpoint and Server-Sent Events that resume from a number
//! (query or `Last-Event-ID`) and never skip or reorder, even when the live broadcast lags.
#![allow(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

mod common;

use common::{insert, server, server_with, SseReader, TestServer};
use serde_json::Value;

async fn open_feed(s: &TestServer, query: &str, last_event_id: Option<&str>) -> SseReader {
    let mut req = s.client.get(s.at(&format!("/api/feed{query}")));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    SseReader::new(resp)
}

async fn post_n(s: &TestServer, from: u32, to: u32) {
    for i in from..to {
        let r = s
            .post(&insert(&format!("t{i}"), &format!("k{i}"), "x"))
            .await;
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn feed_resumes_after_since_then_goes_live() {
    let s = server(false).await;
    post_n(&s, 1, 6).await;
    let mut feed = open_feed(&s, "?since=3", None).await;
    for want in [4, 5] {
        let ev = feed.next().await.unwrap();
        assert_eq!(ev.event.as_deref(), Some("change"));
        assert_eq!(ev.id, Some(want.to_string()));
        assert_eq!(ev.data["seq"], want);
        assert_eq!(ev.data["prevSeq"], want - 1);
        assert_eq!(ev.data["txId"], format!("t{want}"));
        assert_eq!(ev.data["changes"][0]["op"], "insert");
    }
    post_n(&s, 6, 8).await;
    for want in [6, 7] {
        assert_eq!(feed.next().await.unwrap().data["seq"], want);
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn feed_resumes_from_last_event_id() {
    let s = server(false).await;
    post_n(&s, 1, 5).await;
    // The header wins over the query, as after an EventSource reconnect.
    let mut feed = open_feed(&s, "?since=0", Some("2")).await;
    assert_eq!(feed.next().await.unwrap().id.as_deref(), Some("3"));
    assert_eq!(feed.next().await.unwrap().id.as_deref(), Some("4"));
    s.server.shutdown().await;
}

#[tokio::test]
async fn feed_never_skips_or_reorders_when_the_live_stream_lags() {
    let s = server_with(false, |c| c.feed_buffer = 8).await;
    let mut feed = open_feed(&s, "?since=0", None).await;
    // Far more than the live buffer, while nobody reads the feed.
    let total = 3000u64;
    for chunk in 0..(total / 500) {
        let txs = (0..500)
            .map(|i| {
                let n = chunk * 500 + i;
                insert(&format!("t{n}"), &format!("k{n}"), "x")
            })
            .collect();
        s.batch(txs).await;
    }
    for want in 1..=total {
        let ev = feed.next().await.unwrap();
        assert_eq!(ev.data["seq"], want);
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn changes_range_lists_entries_after_since_up_to_limit() {
    let s = server(false).await;
    post_n(&s, 1, 6).await;
    let (status, body) = s.get_json("/api/changes?since=2&limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(body["seq"], 5, "the current number");
    let seqs: Vec<u64> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4]);
    let (_, body) = s.get_json("/api/changes?since=5").await;
    assert_eq!(body["changes"], Value::Array(vec![]));
    let (status, _) = s.get_json("/api/changes?since=x").await;
    assert_eq!(status, 400);
    s.server.shutdown().await;
}

/// The sequence numbers of a `GET /api/changes` answer.
fn seqs_of(body: &Value) -> Vec<u64> {
    body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_u64().unwrap())
        .collect()
}

// An entry may be megabytes: a read of the change log is bounded by bytes as well as by count,
// so that a range or a feed subscriber that stops reading holds a page, not 500 entries.
#[tokio::test]
async fn a_read_of_the_change_log_stops_at_its_byte_budget_and_the_feed_still_sends_everything() {
    let s = server_with(false, |c| c.page_bytes = 2_500).await;
    let title = "x".repeat(1_000);
    for i in 1..=5 {
        let r = s
            .post(&insert(&format!("t{i}"), &format!("k{i}"), &title))
            .await;
        assert_eq!(r.status(), 200);
    }
    // Each entry is over 1,000 bytes: two fit in 2,500, a third would not.
    let (status, body) = s.get_json("/api/changes?since=0&limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(body["seq"], 5);
    assert_eq!(seqs_of(&body), [1, 2]);
    let (_, body) = s.get_json("/api/changes?since=4&limit=10").await;
    assert_eq!(seqs_of(&body), [5]);
    // One entry over the whole budget still comes, alone: a range always moves on.
    let big = "y".repeat(3_000);
    assert_eq!(s.post(&insert("t6", "k6", &big)).await.status(), 200);
    let (_, body) = s.get_json("/api/changes?since=5&limit=10").await;
    assert_eq!(seqs_of(&body), [6]);
    // The feed reads its backlog in such pages and sends all of it, in order, then goes live.
    let mut feed = open_feed(&s, "?since=0", None).await;
    for want in 1..=6 {
        assert_eq!(feed.next().await.unwrap().data["seq"], want);
    }
    assert_eq!(s.post(&insert("t7", "k7", "z")).await.status(), 200);
    assert_eq!(feed.next().await.unwrap().data["seq"], 7);
    s.server.shutdown().await;
}
