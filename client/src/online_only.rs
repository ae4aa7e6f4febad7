//! Online-only mode: the tab runs the executor itself, with an outbox in memory.
//!
//! The same [`Executor`] the leader runs (same retry policy, same per-key order), driven by
//! outbox-runtime's [`Driver`] with a [`MemoryStore`], the app's mutation functions and the
//! built-in HTTP one. It speaks the channel protocol to the tab core without a channel: the
//! core's messages become executor events, and the executor's messages come back as envelopes
//! from a context of their own. So handles, views and requests behave exactly as with a leader.
//! Nothing survives the tab.

use crate::inner::Inner;
use outbox_runtime::clock::MathRandom;
use outbox_runtime::driver::Driver;
use outbox_runtime::store::MemoryStore;
use outbox_runtime::sync::{Delivery, LocalFuture, SyncDriver, SyncHost};
use outbox_shared::executor::{Event, Executor, ExecutorConfig};
use outbox_shared::model::{ClientId, Epoch};
use outbox_shared::protocol::{Envelope, Message};
use outbox_shared::sync::{LeaderSyncOutput, PersistBatch};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

/// The context id the tab's own executor speaks as.
const LOCAL_ID: &str = "tab-executor";

/// The tab's own executor. Cloning gives another handle to the same one.
#[derive(Clone, Debug)]
pub(crate) struct LocalExecutor {
    driver: Driver,
    epoch: Epoch,
    id: ClientId,
    /// The tab's own change feed, when `connect` was given `sync`.
    sync: Rc<RefCell<Option<SyncDriver>>>,
}

impl LocalExecutor {
    /// Starts the executor and installs it in the client; it announces itself at once, which
    /// makes the tab core submit everything unsettled to it.
    pub fn start(inner: &Rc<Inner>) {
        let store = Rc::new(MemoryStore::new());
        // Epoch 0: not a leadership. Its calls carry no `Outbox-Epoch`, so a server that has seen
        // a real leader does not fence this tab out; any real leader's epoch is higher, so the
        // tab core moves over to it as soon as one speaks.
        let loaded = outbox_shared::store::Loaded::default();
        let epoch = loaded.epoch;
        let config = ExecutorConfig {
            retry: inner.options.retry,
            max_concurrency: inner.options.max_concurrency,
            max_batch: inner.options.max_batch,
            batching: inner.fns.batching(),
            await_sync: inner.options.sync.is_some(),
            ..ExecutorConfig::default()
        };
        let id = ClientId(LOCAL_ID.to_owned());
        let weak = Rc::downgrade(inner);
        let (scope, from) = (inner.scope.clone(), id.clone());
        let driver = Driver::new(
            Executor::new(config, Box::new(MathRandom)),
            store,
            Rc::clone(&inner.fns),
            Box::new(move |to, msg| {
                let Some(inner) = weak.upgrade() else { return };
                let env = match to {
                    Some(to) => Envelope::reply(&scope, &from, &to, msg),
                    None => Envelope::broadcast(&scope, &from, msg),
                };
                Inner::push_incoming(&inner, env);
            }),
        );
        let local = Self {
            driver,
            epoch,
            id,
            sync: Rc::new(RefCell::new(None)),
        };
        *inner.local.borrow_mut() = Some(local.clone());
        local.driver.dispatch(Event::BecameLeader(loaded));
        if let Some(options) = inner.options.sync.clone() {
            let host = LocalSyncHost {
                inner: Rc::downgrade(inner),
                local: local.clone(),
            };
            // Rows in memory only, like this outbox: loaded from the server each time.
            match SyncDriver::start(
                options,
                inner.options.sync_source.clone(),
                None,
                Box::new(host),
            ) {
                Ok(sync) => *local.sync.borrow_mut() = Some(sync),
                Err(e) => web_sys::console::warn_1(&format!("outbox: no change feed: {e}").into()),
            }
        }
    }

    /// A message of the tab core, as the executor's event.
    pub fn deliver(&self, inner: &Rc<Inner>, msg: Message) {
        let from = inner.me.clone();
        let event = match msg {
            Message::Hello => {
                let env = Envelope::reply(
                    &inner.scope,
                    &self.id,
                    &from,
                    Message::Leader { epoch: self.epoch },
                );
                Inner::push_incoming(inner, env);
                return;
            }
            Message::Submit { epoch, txs } => {
                self.driver
                    .dispatch_all(Event::submitted(&from, epoch, txs));
                return;
            }
            Message::SnapshotRequest => Event::SnapshotRequested { from },
            Message::SyncFrom { applied } => {
                if let Some(sync) = self.sync.borrow().as_ref() {
                    sync.tab_asks(from, applied);
                }
                return;
            }
            Message::NotifyOnline => {
                if let Some(sync) = self.sync.borrow().as_ref() {
                    sync.retry_now();
                }
                Event::NotifyOnline
            }
            Message::Visible => Event::TabVisible,
            Message::Request { req, op } => Event::Request { from, req, op },
            Message::Credentials { epoch, headers } if epoch == self.epoch => {
                inner.fns.set_credentials(headers);
                Event::Credentials
            }
            _ => return,
        };
        self.driver.dispatch(event);
    }

    /// Whether a claim of leadership is this executor's.
    pub fn speaks_as(&self, from: &ClientId, epoch: Epoch) -> bool {
        *from == self.id && epoch == self.epoch
    }

    /// Stops: running calls are aborted, nothing more is said.
    pub fn stop(&self) {
        if let Some(sync) = self.sync.borrow_mut().take() {
            sync.stop();
        }
        self.driver.stop();
    }

    /// Says `msg` to the tab core as this executor (to `to`, or to all).
    fn say(&self, inner: &Rc<Inner>, to: Option<&ClientId>, msg: Message) {
        let env = match to {
            Some(to) => Envelope::reply(&inner.scope, &self.id, to, msg),
            None => Envelope::broadcast(&inner.scope, &self.id, msg),
        };
        Inner::push_incoming(inner, env);
    }
}

/// The online-only tab's change feed: nothing to store, and the rows go straight to the tab's
/// core, in the same messages a leader would send.
struct LocalSyncHost {
    inner: Weak<Inner>,
    local: LocalExecutor,
}

impl SyncHost for LocalSyncHost {
    fn headers(&self) -> BTreeMap<String, String> {
        self.inner
            .upgrade()
            .map(|i| i.fns.credentials())
            .unwrap_or_default()
    }

    fn persist(&self, _batch: PersistBatch) -> LocalFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn deliver(&self, output: LeaderSyncOutput) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        match Delivery::of(self.local.epoch, output) {
            Delivery::Send(messages) => {
                for (to, msg) in messages {
                    self.local.say(&inner, to.as_ref(), msg);
                }
            }
            Delivery::SyncedTo(server_seq) => {
                self.local.driver.dispatch(Event::SyncedTo { server_seq });
            }
            Delivery::Nothing => {}
        }
    }

    fn trouble(&self, message: String) {
        web_sys::console::warn_1(&format!("outbox: {message}").into());
    }
}
