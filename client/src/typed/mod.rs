//! The client for Rust apps (Leptos, Yew, Dioxus, …): typed rows, futures and closures over
//! the same objects the JS API uses, without JS glue.
//!
//! A thin layer: every call goes to the JS-facing type underneath ([`OutboxClient`],
//! [`Collection`](crate::Collection), [`TransactionHandle`](crate::TransactionHandle),
//! [`OutboxTransaction`](crate::OutboxTransaction)) and converts with serde. Failures are
//! [`OutboxError`]s with the stable `OUTBOX_*` code; bad arguments are `OUTBOX_INVALID`, never
//! a panic. Futures hold no borrow of the value they came from, so they can be spawned;
//! listeners stay registered while their [`Subscription`] lives.
//!
//! ```text
//! use leptos::prelude::*;
//! use outbox_client::typed::{Config, Mode, Outbox, OutboxError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct Todo { id: String, title: String, done: bool }
//!
//! async fn start() -> Result<(), OutboxError> {
//!     let outbox = Outbox::connect(Config::new("todos").worker_url("/outbox-worker.js")).await?;
//!     if outbox.mode() == Mode::OnlineOnly {
//!         log::warn!("no offline support: {:?}", outbox.diagnostic());
//!     }
//!     let todos = outbox.collection::<Todo>("todos", "id")?;
//!
//!     // A signal that follows the optimistic view (this tab's, other tabs' and the sync's
//!     // changes, and rollbacks).
//!     let rows = RwSignal::new(todos.rows()?);
//!     todos
//!         .subscribe({
//!             let todos = todos.clone();
//!             move || if let Ok(now) = todos.rows() { rows.set(now) }
//!         })
//!         .detach(); // or keep the Subscription: dropping it unsubscribes
//!
//!     // Shows in `rows` at once; the Tx follows it to the server.
//!     let tx = todos.insert(&Todo { id: "1".into(), title: "milk".into(), done: false })?;
//!     spawn_local(async move {
//!         if let Err(e) = tx.completed().await {
//!             log::error!("not saved ({}): {}", e.code, e.message); // already rolled back
//!         }
//!     });
//!     todos.update_with("1", |t| t.done = true)?;
//!     Ok(())
//! }
//! ```

mod collection;
mod config;
mod error;
mod events;
mod subscription;
mod tx;

pub use crate::errors::{Diagnostic, DiagnosticCode, Mode};
pub use crate::options::SharedWorkerChoice;
pub use collection::{CollectionOptions, RowKey, TypedCollection};
pub use config::{js_mutation_fn, Applied, Config, MutationCall, MutationError};
pub use error::OutboxError;
pub use events::{EventKind, Leadership, OutboxEvent};
pub use outbox_shared::http::HttpEndpoint;
pub use outbox_shared::model::{Strategy, Transaction, TransactionState};
pub use outbox_shared::protocol::QueueStats;
pub use outbox_shared::retry::RetryPolicy;
pub use subscription::Subscription;
pub use tx::{Batch, Tx, TxOptions};

use crate::client::OutboxClient;
use error::js_err;
use js_sys::Promise;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

/// `value` as a plain JS value; `OUTBOX_INVALID` when JS cannot hold it.
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, OutboxError> {
    Ok(outbox_runtime::convert::to_js_exact(value)?)
}

/// A `T` read from a JS value; `OUTBOX_INVALID` when it does not fit.
pub(crate) fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T, OutboxError> {
    Ok(outbox_runtime::convert::from_js(value)?)
}

/// Awaits a promise of the client.
pub(crate) async fn settle(promise: Promise) -> Result<JsValue, OutboxError> {
    JsFuture::from(promise).await.map_err(js_err)
}

/// The mode named by its JS form.
pub(crate) fn parse_mode(name: &str) -> Mode {
    [Mode::OfflineEnabled, Mode::OnlineOnly]
        .into_iter()
        .find(|m| m.as_str() == name)
        .unwrap_or(Mode::Connecting)
}

/// Every diagnostic code (a new one fails to compile here until it is added).
fn diagnostic_code(name: &str) -> Option<DiagnosticCode> {
    use DiagnosticCode::*;
    const _EVERY_CODE_LISTED: fn(DiagnosticCode) = |c| match c {
        NoWebLocks | NoIndexedDb | NoBroadcastChannel | WorkerFailed | NoLeader
        | OnlineExecutorFailed => {}
    };
    [
        NoWebLocks,
        NoIndexedDb,
        NoBroadcastChannel,
        WorkerFailed,
        NoLeader,
        OnlineExecutorFailed,
    ]
    .into_iter()
    .find(|c| c.as_str() == name)
}

/// The diagnostic as the client gives it to JS (`{code, message}` or `null`).
fn parse_diagnostic(value: &JsValue) -> Option<Diagnostic> {
    if !value.is_object() {
        return None;
    }
    let field = |k: &str| {
        js_sys::Reflect::get(value, &JsValue::from_str(k))
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let (code, message) = (field("code"), field("message"));
    match diagnostic_code(&code) {
        Some(code) => Some(Diagnostic::new(code, message)),
        // Not reached (the codes come from the same enum); keep the words rather than lose them.
        None => Some(Diagnostic::new(
            DiagnosticCode::WorkerFailed,
            format!("{code}: {message}"),
        )),
    }
}

/// A tab's connection to Outbox, typed. Cloning gives another handle to the same connection.
///
/// Keep one for as long as the app runs (in a context, a signal, an `Rc`): the connection
/// lives while any handle to it (this, a [`TypedCollection`]) does, and when the last one goes
/// the futures still waiting on it ([`Tx::completed`], [`peek_outbox`](Self::peek_outbox), …)
/// never resolve. [`close`](Self::close) ends it explicitly.
#[derive(Debug, Clone)]
pub struct Outbox {
    client: OutboxClient,
}

impl From<OutboxClient> for Outbox {
    fn from(client: OutboxClient) -> Self {
        Self { client }
    }
}

impl Outbox {
    /// Connects this tab: joins the channel, starts the worker (with
    /// [`Config::worker_url`]), and resolves once the mode is known — offline-enabled when a
    /// leader answers, online-only when none can. `Err` (`OUTBOX_INVALID`) for bad settings.
    pub async fn connect(config: Config) -> Result<Self, OutboxError> {
        let options = config.to_js()?;
        let client = OutboxClient::connect(options).await.map_err(js_err)?;
        Ok(Self { client })
    }

    /// The untyped client underneath (the JS-facing API).
    pub fn untyped(&self) -> &OutboxClient {
        &self.client
    }

    /// Offline-enabled while a leader serves this tab, online-only when none can.
    pub fn mode(&self) -> Mode {
        parse_mode(&self.client.mode())
    }

    /// Why the tab is online-only, else `None`.
    pub fn diagnostic(&self) -> Option<Diagnostic> {
        parse_diagnostic(&self.client.diagnostic())
    }

    /// Whether this tab's own worker is the leader.
    pub fn is_leader_tab(&self) -> bool {
        self.client.is_leader_tab()
    }

    /// The leader's epoch, once one serves this tab.
    pub fn leader_epoch(&self) -> Option<u64> {
        self.client
            .leader_epoch()
            .filter(|e| e.is_finite() && *e >= 0.0)
            .map(|e| e as u64)
    }

    /// The channel scope: `app`, or `app:scope`.
    pub fn scope(&self) -> String {
        self.client.scope()
    }

    /// This tab's id on the channel.
    pub fn client_id(&self) -> String {
        self.client.client_id()
    }

    /// Calls `on_change(mode, diagnostic)` when the mode changes, until the
    /// [`Subscription`] is dropped.
    pub fn on_mode_change(
        &self,
        on_change: impl Fn(Mode, Option<Diagnostic>) + 'static,
    ) -> Subscription {
        subscription::subscribe(
            move |mode, diagnostic| {
                let mode = parse_mode(&mode.as_string().unwrap_or_default());
                on_change(mode, parse_diagnostic(&diagnostic));
            },
            |f| self.client.on_mode_change(f),
        )
    }

    /// Calls `on_change` when a new leader serves the tab, or this tab's worker starts or
    /// stops leading, until the [`Subscription`] is dropped.
    pub fn on_leadership_change(&self, on_change: impl Fn(Leadership) + 'static) -> Subscription {
        subscription::subscribe(
            move |leadership, _| match from_js::<Leadership>(leadership) {
                Ok(leadership) => on_change(leadership),
                Err(e) => log_unreadable("a leadership change", &e),
            },
            |f| self.client.on_leadership_change(f),
        )
    }

    /// Calls `on_event` for everything that happens (for logging and metrics), until the
    /// [`Subscription`] is dropped.
    pub fn on_event(&self, on_event: impl Fn(OutboxEvent) + 'static) -> Subscription {
        subscription::subscribe(
            move |event, _| match from_js::<serde_json::Value>(event) {
                Ok(value) => on_event(OutboxEvent::from_value(value)),
                Err(e) => log_unreadable("an event", &e),
            },
            |f| self.client.on_event(f),
        )
    }

    /// Defines the collection `name` with rows of type `T` keyed by the field `key_field`, or
    /// opens it again with the same settings. `Err` (`OUTBOX_INVALID`) for an empty name or
    /// key field, or a collection already defined with other settings.
    pub fn collection<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        key_field: &str,
    ) -> Result<TypedCollection<T>, OutboxError> {
        let options = CollectionOptions {
            key: Some(key_field.to_owned()),
            ..CollectionOptions::default()
        };
        self.collection_with(name, options)
    }

    /// Defines a collection with more settings (its mutation function, its strategy).
    pub fn collection_with<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        options: CollectionOptions,
    ) -> Result<TypedCollection<T>, OutboxError> {
        let options = options.to_js()?;
        self.client
            .collection(name.to_owned(), Some(options))
            .map(TypedCollection::from)
            .map_err(js_err)
    }

    /// Starts a transaction of several changes; make them in [`Batch::mutate`].
    pub fn transaction(&self, options: TxOptions) -> Result<Batch, OutboxError> {
        let options = options.to_js()?;
        self.client
            .transaction(Some(options))
            .map(Batch::from)
            .map_err(js_err)
    }

    /// Every transaction this tab knows of (its own and other tabs'), unsettled or failed.
    pub fn transactions(&self) -> Result<Vec<Transaction>, OutboxError> {
        from_js(self.client.transactions().into())
    }

    /// Calls `on_change` whenever one of [`transactions`](Self::transactions) changes, until
    /// the [`Subscription`] is dropped.
    pub fn subscribe_transactions(&self, on_change: impl Fn() + 'static) -> Subscription {
        subscription::subscribe(
            move |_, _| on_change(),
            |f| self.client.subscribe_transactions(f),
        )
    }

    /// Every transaction in the outbox, dead letters included, as the leader has them.
    pub fn peek_outbox(
        &self,
    ) -> impl Future<Output = Result<Vec<Transaction>, OutboxError>> + 'static {
        let promise = self.client.peek_outbox();
        async move { from_js(settle(promise).await?) }
    }

    /// Removes a transaction that is not running (a dead letter, say); its changes roll back.
    pub fn remove_from_outbox(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(), OutboxError>> + 'static {
        let promise = self.client.remove_from_outbox(id.to_owned());
        async move { settle(promise).await.map(drop) }
    }

    /// Puts a dead letter back in line with a fresh retry budget.
    pub fn retry_dead_letter(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(), OutboxError>> + 'static {
        let promise = self.client.retry_dead_letter(id.to_owned());
        async move { settle(promise).await.map(drop) }
    }

    /// How full the outbox is.
    pub fn queue_stats(&self) -> impl Future<Output = Result<QueueStats, OutboxError>> + 'static {
        let promise = self.client.queue_stats();
        async move { from_js(settle(promise).await?) }
    }

    /// Says the network is back: scheduled retries run now.
    pub fn notify_online(&self) {
        self.client.notify_online();
    }

    /// Whether the app should hold back new work (too many unsettled transactions).
    pub fn should_back_off(&self) -> bool {
        self.client.should_back_off()
    }

    /// Resolves when every transaction of this tab has settled.
    pub fn drain(&self) -> impl Future<Output = Result<(), OutboxError>> + 'static {
        let promise = self.client.drain();
        async move { settle(promise).await.map(drop) }
    }

    /// Disconnects; the client cannot be used afterwards (calls return `OUTBOX_INVALID`).
    pub fn close(&self) {
        self.client.close();
    }

    /// Gives the leader credentials: headers added to every call (`authorization: Bearer …`),
    /// as after a sign-in. Kept in the leader's memory only; an outbox paused by a 401 (or a
    /// worker with `credentials` waiting for them) goes on. `OUTBOX_INVALID` for a header the
    /// leader cannot send.
    pub fn provide_credentials(
        &self,
        headers: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), OutboxError> {
        self.client
            .provide_credentials(to_js(headers)?)
            .map_err(js_err)
    }

    /// Signs the user out of this scope, keeping the outbox (dead letters too) for the same
    /// user's next sign-in, or deleting it. Resolves with what it held; every tab of the scope
    /// closes its client (a `signed_out` event).
    pub fn sign_out(
        &self,
        pending: OnSignOut,
    ) -> impl Future<Output = Result<SignedOut, OutboxError>> + 'static {
        let options = js_sys::Object::new();
        let pending = match pending {
            OnSignOut::Keep => "keep",
            OnSignOut::Discard => "discard",
        };
        let _ = js_sys::Reflect::set(&options, &"pending".into(), &pending.into());
        let promise = self.client.sign_out(options.into());
        async move { from_js(settle(promise).await?) }
    }
}

/// What [`Outbox::sign_out`] does with what the outbox holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSignOut {
    /// Kept for the same user's next sign-in.
    Keep,
    /// Deleted.
    Discard,
}

/// What the outbox held when the user signed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedOut {
    /// Unsettled transactions.
    pub pending: u32,
    /// Dead letters.
    pub dead_letters: u32,
    /// How many were deleted (0 when kept).
    pub discarded: u32,
}

/// A listener's argument that did not fit its type: logged, the listener not called.
fn log_unreadable(what: &str, e: &OutboxError) {
    web_sys::console::error_1(&JsValue::from_str(&format!(
        "outbox: {what} could not be read: {e}"
    )));
}
