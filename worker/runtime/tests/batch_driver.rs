//! The driver with a batching HTTP endpoint, against a stand-in for `fetch`.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot go on fails at the unwrap"
)]

use js_sys::{Function, Promise, Reflect};
use outbox_runtime::calls::{build_requests, MutationFns};
use outbox_runtime::clock::MathRandom;
use outbox_runtime::driver::Driver;
use outbox_runtime::store::MemoryStore;
use outbox_shared::executor::{Command, Event, Executor, ExecutorConfig};
use outbox_shared::http::HttpEndpoint;
use outbox_shared::model::{ClientId, Epoch, TransactionState};
use outbox_shared::protocol::Message;
use outbox_shared::{PendingMutation, Strategy, Transaction, TransactionId};
use serde_json::json;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// `fetch` replaced by a stand-in until this is dropped (the real one is put back even when the
/// test fails).
struct StandInFetch {
    real: JsValue,
}

impl StandInFetch {
    fn install(stand_in: &JsValue) -> Self {
        let global = js_sys::global();
        let real = Reflect::get(&global, &"fetch".into()).unwrap();
        Reflect::set(&global, &"fetch".into(), stand_in).unwrap();
        Self { real }
    }
}

impl Drop for StandInFetch {
    fn drop(&mut self) {
        let _ = Reflect::set(&js_sys::global(), &"fetch".into(), &self.real);
    }
}

/// A `fetch` that answers every batch item `200` after a few milliseconds, noting in `log` the
/// size of each request and the most requests it had open at once.
fn fake_fetch(log: &JsValue) -> JsValue {
    let make = Function::new_with_args(
        "log",
        "return async (request) => {
            log.running++;
            log.most = Math.max(log.most, log.running);
            const text = await request.text();
            if (log.bytes) log.bytes.push(text.length);
            const txs = JSON.parse(text).transactions;
            log.sizes.push(txs.length);
            await new Promise((done) => setTimeout(done, 5));
            log.running--;
            const results = txs.map((t) => ({ id: t.id, status: 200, body: {} }));
            return new Response(JSON.stringify({ results }), { status: 200 });
        };",
    );
    make.call1(&JsValue::NULL, log).unwrap()
}

/// A driver of an executor with `config` calling `fns`, leading (epoch returned), and the ids
/// of the transactions its states say completed.
fn leading(
    config: ExecutorConfig,
    fns: MutationFns,
) -> (Driver, Epoch, Rc<RefCell<BTreeSet<TransactionId>>>) {
    let store = Rc::new(MemoryStore::new());
    let loaded = store.begin(0);
    let epoch = loaded.epoch;
    let completed: Rc<RefCell<BTreeSet<TransactionId>>> = Rc::default();
    let seen = Rc::clone(&completed);
    let driver = Driver::new(
        Executor::new(config, Box::new(MathRandom)),
        store,
        Rc::new(fns),
        Box::new(move |_, msg| {
            if let Message::State { txs, .. } = msg {
                let done = txs
                    .into_iter()
                    .filter(|t| t.state == TransactionState::Completed);
                seen.borrow_mut().extend(done.map(|t| t.id));
            }
        }),
    );
    driver.dispatch(Event::BecameLeader(loaded));
    (driver, epoch, completed)
}

/// Waits (two seconds at most) until `n` transactions have completed.
async fn until_completed(completed: &Rc<RefCell<BTreeSet<TransactionId>>>, n: usize) {
    for _ in 0..200 {
        if completed.borrow().len() == n {
            return;
        }
        sleep(10).await;
    }
}

async fn sleep(ms: u32) {
    let wait = Function::new_with_args("ms", "return new Promise((done) => setTimeout(done, ms))");
    let promise: Promise = wait.call1(&JsValue::NULL, &ms.into()).unwrap().into();
    JsFuture::from(promise).await.unwrap();
}

fn number(log: &JsValue, key: &str) -> f64 {
    Reflect::get(log, &key.into()).unwrap().as_f64().unwrap()
}

#[wasm_bindgen_test]
async fn a_batching_endpoint_gets_requests_of_at_most_max_batch_and_max_concurrency_at_once() {
    let log = js_sys::JSON::parse(r#"{"sizes": [], "running": 0, "most": 0}"#).unwrap();
    let _fetch = StandInFetch::install(&fake_fetch(&log));

    let mut fns = MutationFns::default();
    let endpoint = HttpEndpoint {
        url: "/api/mutations".into(),
        headers: Default::default(),
        batch: true,
        max_batch_bytes: None,
        timeout_ms: None,
    };
    fns.insert_http("todos", endpoint);
    let config = ExecutorConfig {
        max_concurrency: 2,
        max_batch: 3,
        batching: fns.batching(),
        ..ExecutorConfig::default()
    };
    assert_eq!(config.batching, BTreeSet::from(["todos".to_owned()]));
    let (driver, epoch, completed) = leading(config, fns);
    for i in 0..20 {
        let row = json!({ "id": i.to_string() });
        let tx = Transaction::new(
            TransactionId::from(format!("t{i:02}").as_str()),
            "todos",
            Strategy::Parallel,
            vec![PendingMutation::insert("todos", &i.to_string(), row)],
            0,
        );
        driver.dispatch(Event::Submitted {
            from: ClientId::from("tab"),
            to: epoch,
            tx: Box::new(tx),
        });
    }
    until_completed(&completed, 20).await;
    driver.stop();

    assert_eq!(completed.borrow().len(), 20, "every transaction completed");
    let sizes: Vec<f64> = js_sys::Array::from(&Reflect::get(&log, &"sizes".into()).unwrap())
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect();
    assert_eq!(sizes.iter().sum::<f64>(), 20.0, "each sent once: {sizes:?}");
    assert!(
        sizes.iter().all(|s| *s <= 3.0),
        "at most max_batch: {sizes:?}"
    );
    assert!(
        sizes.contains(&3.0),
        "full requests once the server answered: {sizes:?}"
    );
    assert!(
        number(&log, "most") <= 2.0,
        "at most max_concurrency requests at once"
    );
}

#[wasm_bindgen_test]
async fn a_batch_over_the_endpoints_bytes_goes_in_several_requests_under_them() {
    let log =
        js_sys::JSON::parse(r#"{"sizes": [], "bytes": [], "running": 0, "most": 0}"#).unwrap();
    let _fetch = StandInFetch::install(&fake_fetch(&log));
    let mut fns = MutationFns::default();
    fns.insert_http(
        "todos",
        HttpEndpoint {
            max_batch_bytes: Some(8_000),
            timeout_ms: None,
            ..endpoint(true)
        },
    );
    let config = ExecutorConfig {
        max_concurrency: 1,
        max_batch: 100,
        batching: fns.batching(),
        ..ExecutorConfig::default()
    };
    let (driver, epoch, completed) = leading(config, fns);
    // Twenty rows of 1 kB, each in `modified` and `changes`: ~2.5 kB a transaction, ~50 kB in
    // all, submitted at once (they are made ready together, as after a reconnect).
    let events = (0..20)
        .map(|i| {
            let row = json!({ "id": i.to_string(), "note": "x".repeat(1_000) });
            Event::Submitted {
                from: ClientId::from("tab"),
                to: epoch,
                tx: Box::new(Transaction::new(
                    TransactionId::from(format!("t{i:02}").as_str()),
                    "todos",
                    Strategy::Parallel,
                    vec![PendingMutation::insert("todos", &i.to_string(), row)],
                    0,
                )),
            }
        })
        .collect();
    driver.dispatch_all(events);
    until_completed(&completed, 20).await;
    driver.stop();
    assert_eq!(completed.borrow().len(), 20, "every transaction completed");
    let list = |key: &str| -> Vec<f64> {
        js_sys::Array::from(&Reflect::get(&log, &key.into()).unwrap())
            .iter()
            .map(|s| s.as_f64().unwrap())
            .collect()
    };
    let (sizes, bytes) = (list("sizes"), list("bytes"));
    assert_eq!(sizes.iter().sum::<f64>(), 20.0, "each sent once: {sizes:?}");
    assert!(
        sizes.len() >= 7,
        "cut by bytes, not by max_batch: {sizes:?}"
    );
    assert!(bytes.iter().all(|b| *b <= 8_000.0), "{bytes:?}");
}

/// The built-in HTTP function at `/api/mutations`, batching or not.
fn endpoint(batch: bool) -> HttpEndpoint {
    HttpEndpoint {
        url: "/api/mutations".into(),
        headers: Default::default(),
        batch,
        max_batch_bytes: None,
        timeout_ms: None,
    }
}

/// A transaction of function `name` inserting one row.
fn tx(name: &str) -> Transaction {
    Transaction::new(
        TransactionId(format!("{name}-1")),
        name,
        Strategy::Ordered,
        vec![PendingMutation::insert("todos", "1", json!({ "id": "1" }))],
        0,
    )
}

#[wasm_bindgen_test]
fn a_rehearsal_builds_the_requests_of_http_calls_and_sends_none() {
    // A `fetch` that counts its calls (and never answers).
    let log = js_sys::JSON::parse(r#"{"calls": 0}"#).unwrap();
    let counting = Function::new_with_args(
        "log",
        "return () => { log.calls++; return new Promise(() => {}); };",
    )
    .call1(&JsValue::NULL, &log)
    .unwrap();
    let _fetch = StandInFetch::install(&counting);

    let mut fns = MutationFns::default();
    assert_eq!(fns.http_name(), None);
    fns.insert_http("plain", endpoint(false));
    assert_eq!(fns.http_name().as_deref(), Some("plain"));
    fns.insert_http("todos", endpoint(true));
    assert_eq!(fns.http_name().as_deref(), Some("todos"), "batching first");
    fns.insert_fn("mine", Function::new_no_args("throw new Error('called')"));
    let commands = vec![
        Command::Call {
            tx: Box::new(tx("plain")),
            attempt: 1,
        },
        Command::CallBatch {
            mutation_fn: "todos".into(),
            calls: vec![(tx("todos"), 1)],
        },
        // The app's own function is not called, nor is a name nobody registered.
        Command::Call {
            tx: Box::new(tx("mine")),
            attempt: 1,
        },
        Command::Call {
            tx: Box::new(tx("nobody")),
            attempt: 1,
        },
    ];
    assert_eq!(build_requests(&fns, &commands), 2);
    assert_eq!(number(&log, "calls"), 0.0, "nothing was sent");
}

#[wasm_bindgen_test]
async fn the_requests_of_a_turn_are_on_their_way_when_it_ends() {
    // A `fetch` that counts its calls and answers each 200 (one result per batch item).
    let log = js_sys::JSON::parse(r#"{"calls": 0}"#).unwrap();
    let counting = Function::new_with_args(
        "log",
        "return async (request) => {
            log.calls++;
            const body = JSON.parse(await request.text());
            const results = (body.transactions ?? []).map((t) => ({ id: t.id, status: 200, body: {} }));
            return new Response(JSON.stringify(body.transactions ? { results } : {}), { status: 200 });
        };",
    )
    .call1(&JsValue::NULL, &log)
    .unwrap();
    let _fetch = StandInFetch::install(&counting);

    let mut fns = MutationFns::default();
    fns.insert_http("plain", endpoint(false));
    fns.insert_http("todos", endpoint(true));
    let store = Rc::new(MemoryStore::new());
    let loaded = store.begin(0);
    let driver = Driver::new(
        Executor::new(ExecutorConfig::default(), Box::new(MathRandom)),
        store,
        Rc::new(fns),
        Box::new(|_, _| {}),
    );
    driver.dispatch(Event::BecameLeader(loaded));
    driver.carry_out(vec![
        Command::Call {
            tx: Box::new(tx("plain")),
            attempt: 1,
        },
        Command::CallBatch {
            mutation_fn: "todos".into(),
            calls: vec![(tx("todos"), 1)],
        },
    ]);
    // Nothing awaited since: both requests were started by the turn itself.
    let started = number(&log, "calls");
    sleep(20).await;
    driver.stop();
    assert_eq!(
        started, 2.0,
        "both requests started before the turn returned"
    );
    assert_eq!(number(&log, "calls"), 2.0, "and each once");
}

#[wasm_bindgen_test]
async fn stopping_aborts_the_calls_under_way_and_not_those_that_finished() {
    // `quick` answers at once, `slow` never; each notes the signal it was given.
    let signals = js_sys::Array::new();
    let noting = |body: &str| {
        Function::new_with_args(
            "signals",
            &format!("return async (args) => {{ signals.push(args.signal); {body} }};"),
        )
        .call1(&JsValue::NULL, &signals)
        .unwrap()
        .into()
    };
    let mut fns = MutationFns::default();
    fns.insert_fn("quick", noting("return {};"));
    fns.insert_fn("slow", noting("return new Promise(() => {});"));
    let (driver, epoch, completed) = leading(ExecutorConfig::default(), fns);
    let submit = |name: &str, i: usize| {
        let tx = Transaction::new(
            TransactionId(format!("{name}-{i}")),
            name,
            Strategy::Parallel,
            vec![PendingMutation::insert(
                "todos",
                &format!("{name}-{i}"),
                json!({ "id": i }),
            )],
            0,
        );
        driver.dispatch(Event::Submitted {
            from: ClientId::from("tab"),
            to: epoch,
            tx: Box::new(tx),
        });
    };
    for i in 0..20 {
        submit("quick", i);
    }
    until_completed(&completed, 20).await;
    assert_eq!(completed.borrow().len(), 20, "every quick call completed");
    submit("slow", 0);
    for _ in 0..200 {
        if signals.length() == 21 {
            break;
        }
        sleep(10).await;
    }
    assert_eq!(signals.length(), 21, "the slow call started");
    driver.stop();

    let aborted: Vec<bool> = signals
        .iter()
        .map(|s| {
            Reflect::get(&s, &"aborted".into())
                .unwrap()
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(
        aborted.iter().filter(|a| **a).count(),
        1,
        "only the call under way is aborted: {aborted:?}"
    );
    assert_eq!(aborted.last(), Some(&true), "the slow call is aborted");
}
