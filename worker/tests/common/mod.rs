//! Test bodies shared by `dedicated.rs` and `shared.rs`, which run them in a dedicated and in a
//! shared worker. Every wait is on an event (a message, a granted lock, a settled promise),
//! never on a timer.

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::TransactionMode;
use outbox_shared::model::ClientId;
use outbox_shared::protocol::{self, Envelope, Message};
use outbox_worker::lock::{request_lock, LockError};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{BroadcastChannel, LockInfo, LockManager, LockManagerSnapshot, MessageEvent};

/// Which kind of global scope the test runs in, by constructor name.
pub fn global_kind() -> String {
    let global = js_sys::global();
    let ctor = js_sys::Reflect::get(&global, &"constructor".into()).unwrap();
    js_sys::Reflect::get(&ctor, &"name".into())
        .unwrap()
        .as_string()
        .unwrap()
}

/// A raw BroadcastChannel whose messages come out of a stream; the listener is owned.
struct Listening {
    channel: BroadcastChannel,
    rx: mpsc::UnboundedReceiver<JsValue>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Listening {
    fn open(name: &str) -> Self {
        let channel = BroadcastChannel::new(name).unwrap();
        let (tx, rx) = mpsc::unbounded();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            tx.unbounded_send(e.data()).unwrap();
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Self {
            channel,
            rx,
            _on_message: on_message,
        }
    }

    fn post(&self, env: &Envelope) {
        self.channel
            .post_message(&JsValue::from_str(&protocol::encode(env)))
            .unwrap();
    }

    async fn next(&mut self, scope: &str) -> Envelope {
        let data = self.rx.next().await.unwrap();
        protocol::decode(&data.as_string().unwrap(), scope).unwrap()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

pub async fn broadcast_channel_round_trip() {
    let scope = "worker-bc";
    let name = format!("outbox:{scope}");
    let mut tab = Listening::open(&name);
    let mut leader = Listening::open(&name);
    let (tab_id, leader_id) = (ClientId::from("tab"), ClientId::from("leader"));

    let ping = Envelope::broadcast(scope, &tab_id, Message::Ping { nonce: 7 });
    tab.post(&ping);
    let got = leader.next(scope).await;
    assert_eq!(got, ping);

    let Message::Ping { nonce } = got.body else {
        panic!("not a ping: {got:?}")
    };
    let pong = Envelope::reply(scope, &leader_id, &got.from, Message::Pong { nonce });
    leader.post(&pong);
    let back = tab.next(scope).await;
    assert_eq!(back, pong);
    assert!(back.is_for(&tab_id));
}

fn locks() -> LockManager {
    js_sys::global()
        .unchecked_into::<web_sys::WorkerGlobalScope>()
        .navigator()
        .locks()
}

/// How many locks named `name` are held and how many requests for it wait, as the browser says.
async fn lock_state(name: &str) -> (usize, usize) {
    let snapshot: LockManagerSnapshot = JsFuture::from(locks().query())
        .await
        .unwrap()
        .unchecked_into();
    let count = |list: Option<js_sys::Array<LockInfo>>| {
        list.map_or(0, |a| {
            a.iter()
                .filter(|i| i.get_name().as_deref() == Some(name))
                .count()
        })
    };
    (count(snapshot.get_held()), count(snapshot.get_pending()))
}

pub async fn a_second_request_waits_until_the_first_guard_is_released() {
    let name = "outbox:test:order";
    let first = request_lock(name).await.unwrap();
    assert_eq!(first.name(), name);
    assert_eq!(lock_state(name).await, (1, 0));

    let events: Rc<RefCell<Vec<&str>>> = Rc::default();
    let (held_tx, held_rx) = oneshot::channel();
    // The second request goes out here, not when the task below first runs.
    let second = request_lock(name);
    let log = events.clone();
    spawn_local(async move {
        let guard = second.await.unwrap();
        log.borrow_mut().push("second held");
        held_tx.send(guard).unwrap();
    });

    // The browser itself reports the second request as queued behind the first; the round trip
    // of `query()` also gave it every chance to (wrongly) grant it.
    assert_eq!(lock_state(name).await, (1, 1));
    assert!(events.borrow().is_empty());

    events.borrow_mut().push("first released");
    drop(first);
    let second = held_rx.await.unwrap();
    assert_eq!(*events.borrow(), ["first released", "second held"]);
    assert_eq!(lock_state(name).await, (1, 0));

    second.release().await.unwrap();
    assert_eq!(lock_state(name).await, (0, 0));
}

pub async fn a_withdrawn_request_leaves_the_queue() {
    let name = "outbox:test:withdrawn";
    let first = request_lock(name).await.unwrap();
    let second = request_lock(name);
    assert_eq!(lock_state(name).await, (1, 1));
    drop(second);
    assert_eq!(lock_state(name).await, (1, 0));

    first.release().await.unwrap();
    let third = request_lock(name).await.unwrap();
    assert_eq!(lock_state(name).await, (1, 0));
    drop(third);
}

pub async fn a_refused_request_is_a_typed_error() {
    // Names starting with '-' are reserved by the Web Locks spec.
    match request_lock("-reserved").await {
        Err(LockError::Request { error_name, .. }) => assert_eq!(error_name, "NotSupportedError"),
        other => panic!("expected NotSupportedError, got {other:?}"),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    id: String,
    mutation_fn: String,
    epoch: u64,
    body: serde_json::Value,
}

pub async fn indexed_db_opens_and_keeps_a_record() {
    let name = format!("outbox:test:{}", global_kind());
    let db = Database::open(name.as_str())
        .with_version(1u8)
        .with_on_upgrade_needed(|_event, db| {
            db.create_object_store("transactions")
                .with_key_path("id".into())
                .build()?;
            Ok(())
        })
        .await
        .unwrap();

    let record = Record {
        id: "t-1".into(),
        mutation_fn: "syncTodos".into(),
        epoch: 3,
        body: serde_json::json!({"title": "milk", "tags": ["a", "b"]}),
    };
    let tx = db
        .transaction("transactions")
        .with_mode(TransactionMode::Readwrite)
        .build()
        .unwrap();
    let store = tx.object_store("transactions").unwrap();
    store.put(&record).serde().unwrap().await.unwrap();
    // indexed_db_futures rolls a transaction back unless it is committed.
    tx.commit().await.unwrap();

    let tx = db.transaction("transactions").build().unwrap();
    let store = tx.object_store("transactions").unwrap();
    let got: Option<Record> = store.get("t-1").serde().unwrap().await.unwrap();
    assert_eq!(got, Some(record));
    let missing: Option<Record> = store.get("t-2").serde().unwrap().await.unwrap();
    assert_eq!(missing, None);
    drop(store);
    drop(tx);

    db.delete().unwrap().await.unwrap();
}
