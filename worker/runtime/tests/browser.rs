//! The client's adapters in a real page of headless Chromium.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot go on fails at the unwrap"
)]

use futures_util::StreamExt;
use js_sys::{Array, Object, Reflect};
use outbox_runtime::channel::{channel_name, Channel, DropCounts, Incoming};
use outbox_runtime::convert::{self, ConvertError, JsErrorInfo, ToJsError, ERROR_NAME};
use outbox_shared::model::{Attempt, ClientId, Epoch, ErrorCode, TransactionState, TxError};
use outbox_shared::protocol::{self, Envelope, Message, MAX_MESSAGE_BYTES};
use outbox_shared::{PendingMutation, Strategy, Transaction, TransactionId};
use serde_json::json;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::BroadcastChannel;

wasm_bindgen_test_configure!(run_in_browser);

/// A transaction with every kind of mutation, an attempt with an error, and metadata.
fn transaction(id: &str) -> Transaction {
    let mut tx = Transaction::new(
        TransactionId::from(id),
        "syncTodos",
        Strategy::Ordered,
        vec![
            PendingMutation::insert("todos", "1", json!({"id": "1", "title": "milk"})),
            PendingMutation::update(
                "todos",
                "2",
                json!({"id": "2", "done": false, "tags": ["a"]}),
                json!({"done": true, "rank": 1.5}),
            ),
            PendingMutation::delete("todos", "3", json!({"id": "3", "n": -7}))
                .with_metadata(json!({"why": "swipe"})),
        ],
        1_700_000_000_123,
    );
    tx.metadata = Some(json!({"origin": {"screen": "list"}, "n": null}));
    tx.attempts.push(Attempt {
        id: format!("{id}#1"),
        number: 1,
        started_at: 1_700_000_000_200,
        completed_at: Some(1_700_000_000_300),
        error: Some(TxError {
            status: Some(503),
            ..TxError::new(ErrorCode::Retriable, "service unavailable")
        }),
        retry_scheduled_for: Some(1_700_000_001_300),
        epoch: Epoch(3),
    });
    tx.epoch = Epoch(3);
    tx.seq = 42;
    tx
}

fn submit(scope: &str, from: &str, id: &str) -> Envelope {
    Envelope::broadcast(
        scope,
        &ClientId::from(from),
        Message::Submit {
            epoch: Epoch(3),
            txs: vec![transaction(id)],
        },
    )
}

fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(key)).unwrap()
}

async fn next(rx: &mut Incoming) -> Envelope {
    rx.next().await.expect("the channel's stream ended")
}

#[wasm_bindgen_test]
async fn a_submit_crosses_between_two_channels_and_arrives_equal() {
    let scope = "app-submit";
    let (a, _a_rx) = Channel::open_stream(scope, ClientId::from("tab-a")).unwrap();
    let (b, mut b_rx) = Channel::open_stream(scope, ClientId::from("tab-b")).unwrap();
    assert_eq!(a.name(), "outbox:app-submit");
    assert_eq!(b.name(), channel_name(scope));

    let sent = submit(scope, "tab-a", "t-1");
    a.post(&sent).unwrap();
    let got = next(&mut b_rx).await;
    assert_eq!(got, sent);
    let Message::Submit { txs, .. } = &got.body else {
        panic!("not a submit: {got:?}")
    };
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].state, TransactionState::Pending);
    assert_eq!(b.drops(), DropCounts::default());
}

#[wasm_bindgen_test]
async fn the_callback_form_delivers_replies_for_me_and_ignores_others() {
    let scope = "app-callback";
    let (tx, mut rx) = futures_channel::mpsc::unbounded();
    let me = ClientId::from("tab-a");
    let a = Channel::open(scope, me.clone(), move |env| {
        tx.unbounded_send(env).unwrap();
    })
    .unwrap();
    let b = Channel::open(scope, ClientId::from("leader"), |_| {}).unwrap();

    let from = ClientId::from("leader");
    let for_other = Envelope::reply(
        scope,
        &from,
        &ClientId::from("tab-z"),
        Message::Pong { nonce: 1 },
    );
    let for_me = Envelope::reply(scope, &from, &me, Message::Pong { nonce: 2 });
    b.post(&for_other).unwrap();
    b.post(&for_me).unwrap();
    assert_eq!(rx.next().await, Some(for_me));
    assert_eq!(
        a.drops(),
        DropCounts {
            not_for_me: 1,
            ..DropCounts::default()
        }
    );
}

#[wasm_bindgen_test]
async fn garbage_is_counted_by_kind_and_a_good_message_after_it_still_arrives() {
    let scope = "app-garbage";
    let (rx_channel, mut rx) = Channel::open_stream(scope, ClientId::from("tab-a")).unwrap();
    let raw = BroadcastChannel::new(&channel_name(scope)).unwrap();

    let good = protocol::encode(&submit(scope, "tab-b", "t-good"));
    let foreign = protocol::encode(&submit("other-app", "tab-b", "t-foreign"));
    let wrong_version = good.replacen("\"v\":2", "\"v\":3", 1);
    assert_ne!(wrong_version, good);
    let unknown_kind = r#"{"v":2,"app":"app-garbage","from":"tab-b","body":{"gossip":{}}}"#;
    let oversized = "x".repeat(MAX_MESSAGE_BYTES + 1);

    let object = Object::new();
    Reflect::set(&object, &"v".into(), &1.into()).unwrap();
    for garbage in [
        JsValue::from(7),
        object.into(),
        JsValue::from_str("{not json"),
        JsValue::from_str(&wrong_version),
        JsValue::from_str(&foreign),
        JsValue::from_str(unknown_kind),
        JsValue::from_str(&oversized),
    ] {
        raw.post_message(&garbage).unwrap();
    }
    raw.post_message(&JsValue::from_str(&good)).unwrap();

    // One sender's messages arrive in the order it posted them, so the good one arriving first
    // means every piece of garbage was seen and none was delivered.
    let got = next(&mut rx).await;
    assert_eq!(protocol::encode(&got), good);
    assert_eq!(
        rx_channel.drops(),
        DropCounts {
            not_text: 2,
            too_large: 1,
            malformed: 1,
            unsupported: 1,
            foreign: 1,
            unknown_kind: 1,
            not_for_me: 0,
        }
    );
    raw.close();
}

#[wasm_bindgen_test]
async fn a_dropped_channel_ends_its_stream() {
    let scope = "app-drop";
    let (a, rx) = Channel::open_stream(scope, ClientId::from("tab-a")).unwrap();
    drop(a);
    // The stream ends because the listener (and with it the sender) is gone.
    let rest: Vec<Envelope> = rx.collect().await;
    assert!(rest.is_empty());
}

#[wasm_bindgen_test]
async fn a_large_part_crosses_a_workers_port_as_bytes_and_arrives_equal() {
    use outbox_runtime::lane::{Port, BYTES_FROM};
    use wasm_bindgen::closure::Closure;
    let scope = "app-bytes";
    let tab = ClientId::from("tab-bytes");
    let receiver = Channel::open(scope, tab.clone(), |_| {}).unwrap();
    let pair = web_sys::MessageChannel::new().unwrap();
    let (tx, mut rx) = futures_channel::mpsc::unbounded::<JsValue>();
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let _ = tx.unbounded_send(e.data());
        });
    pair.port2()
        .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let port = Port::new(pair.port1().into()).unwrap().sending_bytes();

    // A snapshot of 40 transactions for this tab (ids starting with `prefix`): well over 16 kB.
    let snapshot_of = |prefix: &str| {
        Envelope::new(
            scope,
            &ClientId::from("worker-a"),
            Some(&tab),
            Message::Snapshot {
                epoch: Epoch(3),
                transactions: (0..40)
                    .map(|i| transaction(&format!("{prefix}-{i}")))
                    .collect(),
                more: false,
                removed: vec![],
            },
        )
    };
    let snapshot = snapshot_of("t");
    assert!(protocol::encode(&snapshot).len() >= BYTES_FROM);
    port.post(&snapshot).unwrap();
    let data = rx.next().await.unwrap();
    assert!(
        data.is_instance_of::<js_sys::ArrayBuffer>(),
        "a large part goes as bytes"
    );
    assert_eq!(receiver.accept(&data), Some(snapshot));

    let small = submit(scope, "worker-a", "t-small");
    port.post(&small).unwrap();
    let data = rx.next().await.unwrap();
    assert!(data.is_string(), "a small one as text");
    assert_eq!(receiver.accept(&data), Some(small));

    // Bytes that are not UTF-8 text are dropped and counted, like any data that is not text.
    let not_utf8 = js_sys::Uint8Array::from(&[0xff_u8, 0xfe, 0x7b][..]).buffer();
    assert_eq!(receiver.accept(&not_utf8), None);
    assert_eq!(receiver.drops().not_text, 1);
    // A plain port (a tab's, to its worker) posts text whatever the size.
    let plain = Port::new(pair.port1().into()).unwrap();
    let big = snapshot_of("u");
    plain.post(&big).unwrap();
    let data = rx.next().await.unwrap();
    assert!(data.is_string());
    assert_eq!(receiver.accept(&data), Some(big));
}

#[wasm_bindgen_test]
fn a_number_past_2_53_crosses_as_the_nearest_double_not_as_null() {
    let mut tx = transaction("t-big");
    tx.server_seq = Some(18_446_744_073_709_551_615);
    tx.created_at = 9_007_199_254_740_993;
    assert!(convert::to_js_exact(&tx).is_err(), "not exactly");
    let value = convert::to_js(&tx).unwrap();
    assert_eq!(
        get(&value, "serverSeq").as_f64(),
        Some(18_446_744_073_709_551_615.0)
    );
    assert_eq!(
        get(&value, "createdAt").as_f64(),
        Some(9_007_199_254_740_992.0)
    );
    assert_eq!(
        get(&value, "mutationFn").as_string().as_deref(),
        Some("syncTodos")
    );
    let row = serde_json::json!({ "id": 12_345_678_901_234_567_891_u64 });
    assert_eq!(
        get(&convert::to_js(&row).unwrap(), "id").as_f64(),
        Some(12_345_678_901_234_567_891.0)
    );
}

#[wasm_bindgen_test]
fn a_transaction_round_trips_through_js_with_camel_case_names() {
    let tx = transaction("t-js");
    let value = convert::to_js(&tx).unwrap();
    assert!(value.is_object());

    assert_eq!(
        get(&value, "mutationFn").as_string().as_deref(),
        Some("syncTodos")
    );
    assert_eq!(get(&value, "createdAt").as_f64(), Some(1_700_000_000_123.0));
    assert_eq!(get(&value, "state").as_string().as_deref(), Some("pending"));
    assert!(get(&value, "mutation_fn").is_undefined());
    assert!(get(&value, "created_at").is_undefined());

    let mutations = get(&value, "mutations");
    assert!(Array::is_array(&mutations));
    let first = Array::from(&mutations).get(0);
    assert_eq!(get(&first, "kind").as_string().as_deref(), Some("insert"));
    assert!(
        get(&first, "original").is_null(),
        "a missing row is null in JS"
    );
    assert!(Array::is_array(&get(&first, "inverse")));

    let attempt = Array::from(&get(&value, "attempts")).get(0);
    assert_eq!(
        get(&attempt, "retryScheduledFor").as_f64(),
        Some(1_700_000_001_300.0)
    );
    assert_eq!(
        get(&get(&attempt, "error"), "code").as_string().as_deref(),
        Some("OUTBOX_RETRIABLE")
    );

    // Maps become plain objects, not `Map`s.
    let metadata = get(&value, "metadata");
    assert_eq!(
        Object::get_prototype_of(&metadata),
        Object::get_prototype_of(&Object::new())
    );
    assert_eq!(
        get(&get(&metadata, "origin"), "screen")
            .as_string()
            .as_deref(),
        Some("list")
    );

    let back: Transaction = convert::from_js(value).unwrap();
    assert_eq!(back, tx);
}

#[wasm_bindgen_test]
fn a_row_becomes_what_json_parse_makes_of_its_text() {
    let rows = [
        json!({"id": "a", "title": "caf\u{e9} \u{1f600}", "done": false, "n": 1.5, "none": null}),
        // The same field names again (kept as JS strings after the first row).
        json!({"id": "b", "title": "", "done": true, "n": -3, "none": null}),
        json!({"nested": {"list": [1, "two", [3], {"four": 4}], "empty": {}}, "u": 9_007_199_254_740_993_u64}),
        json!({"__proto__": {"polluted": true}, "x": 1}),
        json!([1, null, "s"]),
        json!("text"),
    ];
    for row in &rows {
        let made = convert::json_to_js(row);
        let parsed = js_sys::JSON::parse(&row.to_string()).unwrap();
        assert_eq!(
            js_sys::JSON::stringify(&made).unwrap().as_string(),
            js_sys::JSON::stringify(&parsed).unwrap().as_string(),
            "{row}"
        );
    }
    let proto = convert::json_to_js(&rows[3]);
    assert_eq!(
        Object::get_prototype_of(&proto),
        Object::get_prototype_of(&Object::new()),
        "a __proto__ field is an own property, not the prototype"
    );
    assert!(get(&proto, "polluted").is_undefined());
    let own =
        Object::get_own_property_descriptor(proto.unchecked_ref::<Object>(), &"__proto__".into());
    assert_eq!(get(&get(&own, "value"), "polluted").as_bool(), Some(true));
}

#[wasm_bindgen_test]
fn a_transaction_written_in_js_is_read() {
    let tx = transaction("t-json");
    let from_json = js_sys::JSON::parse(&serde_json::to_string(&tx).unwrap()).unwrap();
    assert_eq!(convert::from_js::<Transaction>(from_json), Ok(tx));
}

#[wasm_bindgen_test]
fn a_value_of_the_wrong_shape_is_a_typed_error() {
    let err = convert::from_js::<Transaction>(JsValue::from(3)).unwrap_err();
    assert!(matches!(err, ConvertError::FromJs(_)));
    assert_eq!(err.code(), ErrorCode::Invalid);
    let js: JsValue = err.into();
    assert!(js.is_instance_of::<js_sys::Error>());
    assert_eq!(
        get(&js, "code").as_string().as_deref(),
        Some("OUTBOX_INVALID")
    );
}

#[wasm_bindgen_test]
fn errors_cross_into_js_as_real_errors_with_a_stable_code() {
    let error: JsValue = convert::js_error(ErrorCode::Invalid, "bad argument").into();
    assert!(error.is_instance_of::<js_sys::Error>());
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("OUTBOX_INVALID")
    );
    assert_eq!(get(&error, "name").as_string().as_deref(), Some(ERROR_NAME));
    assert_eq!(
        get(&error, "message").as_string().as_deref(),
        Some("bad argument")
    );
    assert!(get(&error, "stack").as_string().is_some());

    let dependency = TxError {
        status: Some(409),
        ..TxError::dependency(&TransactionId::from("t-cause"))
    };
    let error: JsValue = dependency.to_js_error().into();
    assert!(error.is_instance_of::<js_sys::Error>());
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("OUTBOX_DEPENDENCY_FAILED")
    );
    assert_eq!(
        get(&error, "causeId").as_string().as_deref(),
        Some("t-cause")
    );
    assert_eq!(get(&error, "status").as_f64(), Some(409.0));
}

#[wasm_bindgen_test]
fn errors_from_js_are_read_as_name_and_message() {
    let thrown = js_sys::JSON::parse("{").unwrap_err();
    let info = JsErrorInfo::from_js(&thrown);
    assert_eq!(info.name, "SyntaxError");
    assert!(!info.message.is_empty());

    let info = JsErrorInfo::from_js(&JsValue::from_str("plain"));
    assert_eq!(
        (info.name.as_str(), info.message.as_str()),
        ("Error", "plain")
    );

    let closed = BroadcastChannel::new("outbox:closed").unwrap();
    closed.close();
    let info = JsErrorInfo::from_js(&closed.post_message(&1.into()).unwrap_err());
    assert_eq!(info.name, "InvalidStateError");
}

/// A blob URL serving `body` (fetch streams it like any answer).
fn blob_url(body: &str) -> String {
    let parts = Array::of1(&JsValue::from_str(body));
    let blob = web_sys::Blob::new_with_str_sequence(&parts).unwrap();
    web_sys::Url::create_object_url_with_blob(&blob).unwrap()
}

#[wasm_bindgen_test]
async fn an_event_stream_delivers_each_event_in_order_then_says_it_closed() {
    use outbox_runtime::stream::{EventStream, StreamEnd};
    use std::cell::RefCell;
    use std::rc::Rc;
    let url = blob_url(": hi\n\nevent: change\nid: 1\ndata: {\"seq\":1}\n\nevent: change\nid: 2\ndata: {\"seq\":2}\n\n");
    let events = Rc::new(RefCell::new(Vec::new()));
    let opened = Rc::new(RefCell::new(false));
    let (tx, rx) = futures_channel::oneshot::channel();
    let (e, o) = (Rc::clone(&events), Rc::clone(&opened));
    let _stream = EventStream::open(
        &url,
        &Default::default(),
        Some(60_000),
        move || *o.borrow_mut() = true,
        move |ev| e.borrow_mut().push((ev.event, ev.data, ev.id)),
        move |end| {
            let _ = tx.send(end);
        },
    )
    .unwrap();
    assert_eq!(rx.await.unwrap(), StreamEnd::Closed);
    assert!(*opened.borrow());
    assert_eq!(
        *events.borrow(),
        vec![
            (
                "change".to_owned(),
                "{\"seq\":1}".to_owned(),
                Some("1".to_owned())
            ),
            (
                "change".to_owned(),
                "{\"seq\":2}".to_owned(),
                Some("2".to_owned())
            ),
        ]
    );
}

#[wasm_bindgen_test]
async fn an_event_stream_that_cannot_be_fetched_ends_with_a_network_error() {
    use outbox_runtime::stream::{EventStream, StreamEnd};
    let (tx, rx) = futures_channel::oneshot::channel();
    let _stream = EventStream::open(
        "blob:http://nowhere.invalid/0",
        &Default::default(),
        None,
        || panic!("never opened"),
        |_| panic!("no events"),
        move |end| {
            let _ = tx.send(end);
        },
    )
    .unwrap();
    assert!(matches!(rx.await.unwrap(), StreamEnd::Network(_)));
}

#[wasm_bindgen_test]
async fn an_event_stream_that_goes_silent_is_taken_for_a_dead_connection() {
    use outbox_runtime::stream::{EventStream, StreamEnd};
    use std::cell::RefCell;
    use std::rc::Rc;
    // A server that sends one event and then, its connection gone without a word, nothing:
    // the stand-in's body stays open and silent (until the request is aborted).
    let global = js_sys::global();
    let real = Reflect::get(&global, &"fetch".into()).unwrap();
    let silent = js_sys::Function::new_no_args(
        "return (request) => {
             const body = new ReadableStream({
                 start(c) {
                     c.enqueue(new TextEncoder().encode('event: change\\nid: 1\\ndata: {}\\n\\n'));
                     request.signal.addEventListener('abort', () => c.error(request.signal.reason));
                 },
             });
             return Promise.resolve(new Response(body, { status: 200 }));
         };",
    )
    .call0(&JsValue::NULL)
    .unwrap();
    Reflect::set(&global, &"fetch".into(), &silent).unwrap();
    let events = Rc::new(RefCell::new(0));
    let (tx, rx) = futures_channel::oneshot::channel();
    let e = Rc::clone(&events);
    let stream = EventStream::open(
        "/feed",
        &Default::default(),
        Some(150),
        || {},
        move |_| *e.borrow_mut() += 1,
        move |end| {
            let _ = tx.send(end);
        },
    );
    let end = rx.await;
    Reflect::set(&global, &"fetch".into(), &real).unwrap();
    drop(stream);
    match end.unwrap() {
        StreamEnd::Network(why) => assert!(why.contains("150 ms"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(*events.borrow(), 1);
}

#[wasm_bindgen_test]
fn transaction_ids_are_unique_and_end_in_a_random_tag() {
    use std::collections::HashSet;
    let ids: Vec<String> = (0..1_000)
        .map(|_| outbox_runtime::clock::unique_id())
        .collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1_000, "unique");
    let parts = |id: &str| -> (String, u64, String) {
        let (rest, tag) = id.rsplit_once('-').unwrap();
        let (prefix, n) = rest.rsplit_once('-').unwrap();
        (
            prefix.to_owned(),
            u64::from_str_radix(n, 16).unwrap(),
            tag.to_owned(),
        )
    };
    let (first, second) = (parts(&ids[0]), parts(&ids[1]));
    assert_eq!(first.0, second.0, "one prefix per context");
    assert_eq!(second.1, first.1 + 1, "a counter");
    // The tag: 64 bits, not to be worked out from the ids before it.
    let tags: HashSet<String> = ids.iter().map(|id| parts(id).2).collect();
    assert_eq!(tags.len(), 1_000);
    assert!(tags
        .iter()
        .all(|t| t.len() == 16 && t.chars().all(|c| c.is_ascii_hexdigit())));
}

#[wasm_bindgen_test]
fn a_mutation_function_may_say_it_got_no_answer_and_that_spends_no_attempt() {
    use outbox_runtime::calls::classify_js_error;
    let thrown = |js: &str| js_sys::eval(&format!("({js})")).unwrap();
    let none = classify_js_error(&thrown("{ code: 'OUTBOX_NETWORK', message: 'offline' }"));
    assert_eq!(none.error.code, ErrorCode::Network);
    assert!(none.is_retriable());
    let attempt = Attempt {
        id: "t#1".into(),
        number: 1,
        started_at: 0,
        completed_at: Some(1),
        error: Some(none.error.clone()),
        retry_scheduled_for: None,
        epoch: Epoch(1),
    };
    assert!(!attempt.counts_against_budget());
    // Online (the test's browser is), an error without a status is an ordinary failure, and
    // a status still decides.
    let plain = classify_js_error(&thrown("new TypeError('boom')"));
    assert_eq!(plain.error.code, ErrorCode::Retriable);
    let unavailable = classify_js_error(&thrown("{ status: 503, code: 'X' }"));
    assert_eq!(unavailable.error.code, ErrorCode::Retriable);
    assert_eq!(unavailable.error.status, Some(503));
}

#[wasm_bindgen_test]
async fn a_request_the_browser_cannot_make_fails_for_good_and_is_not_taken_for_the_network() {
    use outbox_runtime::calls::{http_outcome, start_fetch, Unanswered};
    use outbox_shared::http::HttpRequest;
    let controller = web_sys::AbortController::new().unwrap();
    // A header value past U+00FF: `Headers.append` refuses it, so no request is ever made.
    let request = HttpRequest {
        url: "/api/mutations".into(),
        headers: vec![("X-User".into(), "Łukasz".into())],
        body: "{}".into(),
        timeout_ms: None,
    };
    let started = start_fetch(&request, &controller.signal());
    assert!(
        matches!(started, Err(Unanswered::Unbuildable(_))),
        "{started:?}"
    );
    let error = http_outcome(started).await.unwrap_err();
    assert_eq!(error.error.code, ErrorCode::Invalid);
    assert!(!error.is_retriable());
    assert!(
        error.error.message.contains("could not be made"),
        "{}",
        error.error.message
    );
    // An aborted request is still no answer at all.
    controller.abort();
    let ok = HttpRequest {
        headers: vec![],
        ..request
    };
    let aborted = http_outcome(start_fetch(&ok, &controller.signal()))
        .await
        .unwrap_err();
    assert_eq!(aborted.error.code, ErrorCode::Network);
}

#[wasm_bindgen_test]
async fn a_request_that_hangs_is_aborted_at_its_time_limit_and_taken_as_no_answer() {
    use outbox_runtime::calls::{http_outcome, start_fetch};
    use outbox_shared::http::HttpRequest;
    // A server that never answers: the stand-in holds every request until its signal aborts,
    // as the browser's `fetch` does, and counts the ones still hanging.
    let global = js_sys::global();
    let real = Reflect::get(&global, &"fetch".into()).unwrap();
    let hung = js_sys::Function::new_no_args(
        "globalThis.__hanging = 0;
         return (request) => new Promise((_, fail) => {
             globalThis.__hanging++;
             request.signal.addEventListener('abort', () => {
                 globalThis.__hanging--;
                 fail(request.signal.reason);
             });
         });",
    )
    .call0(&JsValue::NULL)
    .unwrap();
    Reflect::set(&global, &"fetch".into(), &hung).unwrap();
    let controller = web_sys::AbortController::new().unwrap();
    let request = HttpRequest {
        url: "/api/mutations".into(),
        headers: vec![],
        body: "{}".into(),
        timeout_ms: Some(50),
    };
    let outcome = http_outcome(start_fetch(&request, &controller.signal())).await;
    // One without a limit is still hanging (before, every request was such): stopping the
    // term's calls ends it.
    let unlimited = HttpRequest {
        timeout_ms: None,
        ..request
    };
    let stopped = start_fetch(&unlimited, &controller.signal());
    let hanging = Reflect::get(&global, &"__hanging".into()).unwrap();
    controller.abort();
    let stopped = http_outcome(stopped).await;
    Reflect::set(&global, &"fetch".into(), &real).unwrap();
    let error = outcome.unwrap_err();
    assert_eq!(error.error.code, ErrorCode::Network, "{error:?}");
    assert!(error.is_retriable());
    assert!(
        error.error.message.contains("time limit"),
        "{}",
        error.error.message
    );
    assert_eq!(hanging.as_f64(), Some(1.0), "the one without a limit");
    let stopped = stopped.unwrap_err();
    assert_eq!(stopped.error.code, ErrorCode::Network);
    assert!(!stopped.error.message.contains("time limit"));
}
