//! Helpers shared by the server tests: a real server on a free loopback port with a temporary
//! data folder, transaction bodies in the leader's own format, and a small SSE reader.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly"
)]

use outbox_shared::{PendingMutation, Strategy, Transaction};
use outbox_www::{start, Config, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running server, its client and its data folder.
pub struct TestServer {
    pub server: Server,
    pub url: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// PBKDF2 rounds for the test servers' demo users: the real scheme, at a cost that keeps a
/// server start quick in an unoptimised build.
pub const TEST_PASSWORD_ITERATIONS: u32 = 1_000;

pub fn config(data_dir: &Path, faults: bool) -> Config {
    Config {
        port: 0,
        data_dir: data_dir.to_path_buf(),
        static_dir: data_dir.join("static"),
        pkg_dir: data_dir.join("pkg"),
        faults,
        password_iterations: TEST_PASSWORD_ITERATIONS,
        ..Config::default()
    }
}

pub async fn start_with(cfg: Config) -> (Server, String) {
    let server = start(cfg).await.expect("server starts");
    let url = server.url();
    (server, url)
}

pub async fn server(faults: bool) -> TestServer {
    server_with(faults, |_| {}).await
}

pub async fn server_with(faults: bool, edit: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = config(dir.path(), faults);
    edit(&mut cfg);
    let (server, url) = start_with(cfg).await;
    TestServer {
        server,
        url,
        client: client(),
        dir,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("client")
}

/// A transaction body exactly as the leader stores and sends it.
pub fn tx(id: &str, mutations: Vec<PendingMutation>) -> Value {
    Transaction::new(id.into(), "http", Strategy::Ordered, mutations, 1).to_record()
}

/// A transaction inserting one todo.
pub fn insert(id: &str, key: &str, title: &str) -> Value {
    tx(
        id,
        vec![PendingMutation::insert(
            "todos",
            key,
            json!({"id": key, "title": title, "done": false}),
        )],
    )
}

impl TestServer {
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// `POST /api/mutations` with the idempotency key taken from the body.
    pub async fn post(&self, body: &Value) -> reqwest::Response {
        let key = body["id"].as_str().unwrap_or_default().to_owned();
        self.post_with_key(body, &key).await
    }

    pub async fn post_with_key(&self, body: &Value, key: &str) -> reqwest::Response {
        self.try_post(body, key).await.expect("request succeeds")
    }

    pub async fn try_post(&self, body: &Value, key: &str) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(self.at("/api/mutations"))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
    }

    pub async fn batch(&self, txs: Vec<Value>) -> Value {
        let resp = self
            .client
            .post(self.at("/api/mutations/batch"))
            .json(&json!({ "transactions": txs }))
            .send()
            .await
            .expect("batch request");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("batch JSON")
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(self.at(path)).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn set_faults(&self, faults: Value) -> Value {
        let resp = self
            .client
            .post(self.at("/_test/faults"))
            .json(&faults)
            .send()
            .await
            .expect("set faults");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("faults JSON")
    }

    pub async fn stats(&self) -> Value {
        self.get_json("/_test/stats").await.1
    }

    /// The whole change feed as JSON entries.
    pub async fn all_changes(&self) -> Vec<Value> {
        let (status, body) = self.get_json("/api/changes?since=0&limit=10000").await;
        assert_eq!(status, 200);
        body["changes"].as_array().cloned().unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// `req` with `Authorization: Bearer <token>`, or as it is for `None` (anonymous).
pub fn with_token(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// `POST /api/mutations` as the holder of `token` (anonymous with `None`).
pub async fn post_as(s: &TestServer, token: Option<&str>, body: &Value) -> reqwest::Response {
    let key = body["id"].as_str().unwrap_or_default();
    let req = s
        .client
        .post(s.at("/api/mutations"))
        .header("Idempotency-Key", key)
        .json(body);
    with_token(req, token).send().await.unwrap()
}

pub async fn batch_as(s: &TestServer, token: Option<&str>, txs: Vec<Value>) -> reqwest::Response {
    let req = s
        .client
        .post(s.at("/api/mutations/batch"))
        .json(&json!({ "transactions": txs }));
    with_token(req, token).send().await.unwrap()
}

pub async fn get_as(s: &TestServer, token: Option<&str>, path: &str) -> reqwest::Response {
    with_token(s.client.get(s.at(path)), token)
        .send()
        .await
        .unwrap()
}

/// The whole change feed, read as the holder of `token`.
pub async fn changes_of(s: &TestServer, token: Option<&str>) -> Vec<Value> {
    let resp = get_as(s, token, "/api/changes?since=0").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["changes"].as_array().cloned().unwrap()
}

pub fn tx_ids(changes: &[Value]) -> Vec<&str> {
    changes
        .iter()
        .map(|c| c["txId"].as_str().unwrap())
        .collect()
}

/// Stops `s` and starts a server on the same data folder, with the test config as `edit`
/// leaves it.
pub async fn restart(s: TestServer, edit: impl FnOnce(&mut Config)) -> TestServer {
    let TestServer {
        server,
        client,
        dir,
        ..
    } = s;
    server.shutdown().await;
    let mut cfg = config(dir.path(), false);
    edit(&mut cfg);
    let (server, url) = start_with(cfg).await;
    TestServer {
        server,
        url,
        client,
        dir,
    }
}

/// Reads the error code of an error answer.
pub async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("error JSON");
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Value,
}

/// Reads events off an SSE response.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        assert_eq!(resp.status(), 200);
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next event with data, or `None` when the stream ends (or breaks).
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent {
                    id: None,
                    event: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                ev.data = serde_json::from_str(&data).expect("event data is JSON");
                return Some(ev);
            }
            let chunk = tokio::time::timeout(WAIT, self.resp.chunk())
                .await
                .expect("an SSE event in time");
            match chunk {
                Ok(Some(bytes)) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) | Err(_) => return None,
            }
        }
    }
}
