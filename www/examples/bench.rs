//! Throughput of the reference server, measured from one in-process HTTP client over loopback:
//! sequential single POSTs (keep-alive, and one connection per request as with `--faults`),
//! concurrent single POSTs (group commit), and batches.
//!
//! `CARGO_TARGET_DIR=/work/target-www cargo run --release -p outbox-www --example bench`
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark that reports on stdout and stops on any failure"
)]

use outbox_shared::{PendingMutation, Strategy, Transaction};
use outbox_www::{start, Config};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn tx(id: &str) -> Value {
    let row = json!({"id": id, "title": "buy milk and some other things", "done": false});
    Transaction::new(
        id.into(),
        "http",
        Strategy::Ordered,
        vec![PendingMutation::insert("todos", id, row)],
        1,
    )
    .to_record()
}

fn report(what: &str, n: usize, took: Duration, lat: &mut [Duration]) {
    let rate = n as f64 / took.as_secs_f64();
    if lat.is_empty() {
        println!(
            "{what:<48} {n:>6} tx in {:>7.1} ms = {rate:>8.0} tx/s",
            ms(took)
        );
        return;
    }
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    println!(
        "{what:<48} {n:>6} tx in {:>7.1} ms = {rate:>8.0} tx/s  (median {:.3} ms, p99 {:.3} ms)",
        ms(took),
        ms(p(0.5)),
        ms(p(0.99)),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn sequential(url: &str, client: &reqwest::Client, prefix: &str, n: usize) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("{prefix}{i}");
        let t = Instant::now();
        let r = client
            .post(format!("{url}/api/mutations"))
            .header("Idempotency-Key", &id)
            .json(&tx(&id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        lat.push(t.elapsed());
    }
    lat
}

async fn run(faults: bool) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        faults,
        ..Config::default()
    };
    let server = start(cfg).await.unwrap();
    let url = server.url();
    let client = reqwest::Client::new();
    let mode = if faults {
        "--faults (new connection per request)"
    } else {
        "keep-alive"
    };

    sequential(&url, &client, "warm", 200).await;
    let n = 3000;
    let t = Instant::now();
    let mut lat = sequential(&url, &client, "s", n).await;
    report(
        &format!("sequential single POSTs, {mode}"),
        n,
        t.elapsed(),
        &mut lat,
    );
    if faults {
        server.shutdown().await;
        return;
    }

    let workers = 16;
    let per = 500;
    let t = Instant::now();
    let all = futures_util::future::join_all((0..workers).map(|w| {
        let (url, client) = (url.clone(), client.clone());
        async move { sequential(&url, &client, &format!("c{w}-"), per).await }
    }))
    .await;
    let mut lat: Vec<Duration> = all.into_iter().flatten().collect();
    report(
        &format!("concurrent single POSTs, {workers} clients"),
        workers * per,
        t.elapsed(),
        &mut lat,
    );

    for size in [100, 1000] {
        let batches = 30_000 / size;
        let bodies: Vec<Value> = (0..batches)
            .map(|b| {
                json!({"transactions": (0..size)
                    .map(|i| tx(&format!("b{size}-{b}-{i}")))
                    .collect::<Vec<_>>()})
            })
            .collect();
        let t = Instant::now();
        let mut lat = Vec::with_capacity(batches);
        for body in &bodies {
            let bt = Instant::now();
            let r = client
                .post(format!("{url}/api/mutations/batch"))
                .json(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
            lat.push(bt.elapsed());
        }
        report(
            &format!("sequential batches of {size} (latency per batch)"),
            batches * size,
            t.elapsed(),
            &mut lat,
        );
    }
    server.shutdown().await;
}

#[tokio::main]
async fn main() {
    println!(
        "outbox-server throughput, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    run(false).await;
    run(true).await;
}
