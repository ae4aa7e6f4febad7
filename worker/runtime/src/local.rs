//! Online-only mode's executor: a tab with no leader runs the executor itself, with an outbox
//! in memory.
//!
//! The same [`Executor`] the leader runs (same retry policy, same per-key order), driven by the
//! [`Driver`] with a [`MemoryStore`], the app's mutation functions and the built-in HTTP one. It
//! speaks the channel protocol to the tab core without a channel: the core's messages become
//! executor events, and the executor's messages go back as envelopes from a context of its own
//! ([`LocalExecutor::ID`]), through the `say` function it was started with. So handles, views and
//! requests behave exactly as with a leader. Nothing survives the tab.
//!
//! The client links it in one of two ways: into its own wasm (the `online-inline` feature, what
//! a Rust app gets), or, to keep the client small, from the worker's wasm, loaded into the page
//! only when the tab goes online-only (the worker crate's `startOnlineExecutor`, which speaks to
//! the client in encoded envelopes).

use crate::calls::MutationFns;
use crate::clock::MathRandom;
use crate::driver::Driver;
use crate::store::MemoryStore;
use crate::sync::{Delivery, LocalFuture, SourceFns, SyncDriver, SyncHost, SyncOptions};
use outbox_shared::executor::{Event, Executor, ExecutorConfig};
use outbox_shared::model::{ClientId, Epoch};
use outbox_shared::protocol::{Envelope, Message};
use outbox_shared::retry::RetryPolicy;
use outbox_shared::store::Loaded;
use outbox_shared::sync::{LeaderSyncOutput, PersistBatch};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Where the executor's envelopes go (to the tab core).
pub type Say = Rc<dyn Fn(Envelope)>;

/// What the tab's executor runs with.
#[derive(Debug)]
pub struct LocalConfig {
    /// The channel scope its envelopes carry.
    pub scope: String,
    /// The retry policy.
    pub retry: RetryPolicy,
    /// Calls running at once.
    pub max_concurrency: usize,
    /// Transactions per request to a batching HTTP endpoint.
    pub max_batch: usize,
    /// The app's mutation functions and HTTP endpoints.
    pub fns: Rc<MutationFns>,
    /// The change feed the tab follows itself, if any.
    pub sync: Option<SyncOptions>,
    /// The app's own change feed (`sync.source`), if any.
    pub sync_source: Option<SourceFns>,
}

/// The tab's own executor. Cloning gives another handle to the same one.
#[derive(Clone)]
pub struct LocalExecutor {
    driver: Driver,
    id: ClientId,
    scope: String,
    fns: Rc<MutationFns>,
    say: Say,
    /// The tab's own change feed, when started with `sync`.
    feed: Rc<RefCell<Feed>>,
    /// The collections that feed follows (none without `sync`), told to the tab core when it
    /// asks for the feed.
    feed_collections: Rc<[String]>,
}

/// The tab's own change feed.
enum Feed {
    /// Until [`LocalExecutor::begin`]: its options, if any.
    Waiting(Option<SyncOptions>, Option<SourceFns>),
    Running(SyncDriver),
    None,
}

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("id", &self.id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl LocalExecutor {
    /// The context id the tab's own executor speaks as.
    pub const ID: &'static str = "tab-executor";

    /// The epoch it speaks in: 0, not a leadership. Its calls carry no `Outbox-Epoch`, so a
    /// server that has seen a real leader does not fence this tab out; any real leader's epoch
    /// is higher, so the tab core moves over to it as soon as one speaks.
    pub const EPOCH: Epoch = Epoch(0);

    /// Starts the executor: [`Self::new`], then [`Self::begin`].
    pub fn start(config: LocalConfig, say: Say) -> Self {
        let local = Self::new(config, say);
        local.begin();
        local
    }

    /// The executor, not started yet: it says nothing until [`Self::begin`].
    pub fn new(config: LocalConfig, say: Say) -> Self {
        let executor = ExecutorConfig {
            retry: config.retry,
            max_concurrency: config.max_concurrency.max(1),
            max_batch: config.max_batch.max(1),
            batching: config.fns.batching(),
            await_sync: config.sync.is_some(),
            ..ExecutorConfig::default()
        };
        let id = ClientId(Self::ID.to_owned());
        let (scope, from, out) = (config.scope.clone(), id.clone(), Rc::clone(&say));
        let driver = Driver::new(
            Executor::new(executor, Box::new(MathRandom)),
            Rc::new(MemoryStore::new()),
            Rc::clone(&config.fns),
            Box::new(move |to, msg| out(Envelope::new(&scope, &from, to.as_ref(), msg))),
        );
        Self {
            driver,
            id,
            scope: config.scope,
            fns: config.fns,
            say,
            feed_collections: config
                .sync
                .as_ref()
                .map(|s| s.collections.clone())
                .unwrap_or_default()
                .into(),
            feed: Rc::new(RefCell::new(Feed::Waiting(config.sync, config.sync_source))),
        }
    }

    /// Runs: the executor announces itself at once (through `say`), which makes the tab core
    /// submit everything unsettled to it, and the change feed, if any, starts.
    pub fn begin(&self) {
        let loaded = Loaded {
            epoch: Self::EPOCH,
            ..Loaded::default()
        };
        self.driver.dispatch(Event::BecameLeader(loaded));
        let Feed::Waiting(Some(options), source) = self.feed.replace(Feed::None) else {
            return;
        };
        let host = LocalSyncHost {
            local: self.clone(),
        };
        // Rows in memory only, like this outbox: loaded from the server each time.
        match SyncDriver::start(options, source, None, Box::new(host)) {
            Ok(sync) => *self.feed.borrow_mut() = Feed::Running(sync),
            Err(e) => web_sys::console::warn_1(&format!("outbox: no change feed: {e}").into()),
        }
    }

    /// A message of the tab core (`from`), as the executor's event.
    pub fn deliver(&self, from: &ClientId, msg: Message) {
        let from = from.clone();
        let event = match msg {
            Message::Hello => {
                return self.say(Some(&from), Message::Leader { epoch: Self::EPOCH });
            }
            Message::Submit { epoch, txs } => {
                self.driver
                    .dispatch_all(Event::submitted(&from, epoch, txs));
                return;
            }
            Message::SnapshotRequest => Event::SnapshotRequested { from },
            Message::SyncFrom { applied } => {
                self.say(
                    Some(&from),
                    Message::FeedCollections {
                        epoch: Self::EPOCH,
                        collections: self.feed_collections.to_vec(),
                    },
                );
                if let Feed::Running(sync) = &*self.feed.borrow() {
                    sync.tab_asks(from, applied);
                }
                return;
            }
            Message::NotifyOnline => {
                if let Feed::Running(sync) = &*self.feed.borrow() {
                    sync.retry_now();
                }
                Event::NotifyOnline
            }
            Message::Visible => Event::TabVisible,
            Message::Request { req, op } => Event::Request { from, req, op },
            Message::Credentials { epoch, headers } if epoch == Self::EPOCH => {
                self.fns.set_credentials(headers);
                Event::Credentials
            }
            _ => return,
        };
        self.driver.dispatch(event);
    }

    /// Whether a claim of leadership is a tab's own executor's (its id and epoch are fixed, so
    /// no executor is needed to tell, and a claim it makes while starting checks out).
    pub fn speaks_as(from: &ClientId, epoch: Epoch) -> bool {
        from.0 == Self::ID && epoch == Self::EPOCH
    }

    /// Stops: running calls are aborted, nothing more is said.
    pub fn stop(&self) {
        if let Feed::Running(sync) = self.feed.replace(Feed::None) {
            sync.stop();
        }
        self.driver.stop();
    }

    /// Says `msg` to the tab core as this executor (to `to`, or to all).
    fn say(&self, to: Option<&ClientId>, msg: Message) {
        (self.say)(Envelope::new(&self.scope, &self.id, to, msg));
    }
}

/// The online-only tab's change feed: nothing to store, and the rows go straight to the tab's
/// core, in the same messages a leader would send.
struct LocalSyncHost {
    local: LocalExecutor,
}

impl SyncHost for LocalSyncHost {
    fn headers(&self) -> BTreeMap<String, String> {
        self.local.fns.credentials()
    }

    fn persist(&self, _batch: PersistBatch) -> LocalFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn deliver(&self, output: LeaderSyncOutput) {
        match Delivery::of(LocalExecutor::EPOCH, output) {
            Delivery::Send(messages) => {
                for (to, msg) in messages {
                    self.local.say(to.as_ref(), msg);
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
