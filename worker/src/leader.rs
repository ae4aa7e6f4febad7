//! The leader's life: wait for the lock, take over the outbox, serve the tabs, and hand over.
//!
//! Every worker instance asks for the lock `outbox:<scope>:leader` and waits for it; the
//! database is opened first, so a waiting worker takes over warm. On taking the lock it bumps the
//! epoch and loads the outbox in one IndexedDB transaction, announces itself, heartbeats, and
//! serves. It stops leading when its tab says it is being frozen or closed (`resign`), or when a
//! write or a call is fenced out by a newer leader (then it waits for the lock again).
//!
//! While it leads it also holds a proof lock named after its scope, epoch and id, which tabs
//! check before they believe its announcement. While it waits it watches the leader's messages:
//! a leader silent for `takeoverAfterMs` (its tab frozen, its worker stuck in a loop) is
//! presumed dead and its lock is taken by force. See [`outbox_shared::leadership`].

use crate::idb::IdbStore;
use crate::lock::{request_lock, steal_lock, LockGuard};
use crate::options::{executor_config, LeaderOptions, Parsed};
use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use outbox_runtime::calls::{build_requests, MutationFns};
use outbox_runtime::channel::Channel;
use outbox_runtime::clock::{monotonic, now, random_id, MathRandom};
use outbox_runtime::driver::Driver;
use outbox_runtime::lane::{Lanes, Port};
use outbox_runtime::sync::{Delivery, SyncDriver};
use outbox_runtime::timer::{Interval, Timer};
use outbox_shared::executor::{Command, Event, Executor, ExecutorConfig};
use outbox_shared::leadership::{proof_lock_name, storage_retry_wait, LeaderWatch};
use outbox_shared::model::{
    ClientId, Epoch, ErrorCode, PendingMutation, Strategy, Transaction, TransactionId,
};
use outbox_shared::protocol::{Envelope, Message, QueueStats};
use outbox_shared::store::{Loaded, WriteBatch};
use outbox_shared::sync::{LeaderSyncOutput, PersistBatch};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::spawn_local;

/// The Web Lock every worker of `scope` waits for.
pub fn lock_name(scope: &str) -> String {
    format!("outbox:{scope}:leader")
}

/// A running worker: leading, or waiting to.
#[derive(Clone)]
pub struct Leader(Rc<Inner>);

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader")
            .field("scope", &self.0.scope)
            .field("epoch", &self.epoch())
            .finish_non_exhaustive()
    }
}

struct Inner {
    scope: String,
    me: ClientId,
    options: LeaderOptions,
    before_retry: Option<js_sys::Function>,
    /// The app's own change feed (`sync.source`), if any.
    sync_source: Option<outbox_runtime::sync::SourceFns>,
    /// The app's `awaitSync(transaction)`, if it gave one.
    await_sync_fn: Option<js_sys::Function>,
    fns: Rc<MutationFns>,
    store: IdbStore,
    channel: RefCell<Option<Channel>>,
    /// The tabs that talk to this worker over its port(s) while it leads, answered there.
    lanes: RefCell<Lanes<Port>>,
    term: RefCell<Option<Term>>,
    end_term: RefCell<Option<oneshot::Sender<()>>>,
    /// Told to resign (its tab is frozen or closing): no new lock request until resumed.
    resigned: Cell<bool>,
    /// Whether this worker has rehearsed a takeover ([`Inner::rehearse_takeover`]).
    rehearsed: Cell<bool>,
    /// A lock request is out (or held).
    running: Cell<bool>,
    /// Asks the waiting loop to take the lock by force.
    steal_tx: mpsc::UnboundedSender<()>,
    steal_rx: RefCell<Option<mpsc::UnboundedReceiver<()>>>,
    online: RefCell<Option<Closure<dyn FnMut()>>>,
    /// Told when this worker starts leading (with the epoch) or stops (`None`).
    on_role: RefCell<Option<RoleHook>>,
    /// Notices a leader gone silent while this worker waits.
    watch: RefCell<LeaderWatch>,
    watch_timer: RefCell<Option<Interval>>,
}

/// The hook told of role changes.
type RoleHook = Box<dyn Fn(Option<Epoch>)>;

/// One leadership.
struct Term {
    driver: Driver,
    epoch: Epoch,
    /// The change feed, when the app syncs through the leader (`sync` option).
    sync: Option<SyncDriver>,
    /// While the feed starts (the stored rows being read), what tabs asked of it (`sync_from`,
    /// the last ask of each): asked of it once it runs. A tab asks once per leader.
    early_asks: Option<HashMap<ClientId, u64>>,
    /// Times this term the feed stopped because its rows could not be stored (each restart
    /// waits longer).
    sync_failures: u32,
    _heartbeat: Option<Interval>,
    /// Held for the whole term (released when the term is dropped).
    _proof: LockGuard,
}

impl Leader {
    /// Opens the outbox of `scope`, joins its channel, and starts waiting for the lock.
    pub async fn start(scope: String, parsed: Parsed) -> Result<Self, (ErrorCode, String)> {
        let store = IdbStore::open(&scope).await.map_err(|e| {
            (
                ErrorCode::Storage,
                format!("this worker cannot keep an outbox in IndexedDB: {e}"),
            )
        })?;
        let Parsed {
            options,
            fns,
            before_retry,
            sync_source,
            await_sync_fn,
        } = parsed;
        let (steal_tx, steal_rx) = mpsc::unbounded();
        // A random share of a heartbeat on top, so that waiting workers rarely steal at once.
        let jitter = (js_sys::Math::random() * f64::from(options.heartbeat_ms)) as u64;
        let takeover = u64::from(
            options
                .takeover_after_ms
                .max(options.heartbeat_ms.saturating_mul(2)),
        ) + jitter;
        let inner = Rc::new(Inner {
            watch: RefCell::new(LeaderWatch::new(monotonic(), takeover)),
            watch_timer: RefCell::new(None),
            steal_tx,
            steal_rx: RefCell::new(Some(steal_rx)),
            me: ClientId(format!("worker-{}", random_id())),
            scope,
            options,
            before_retry,
            sync_source,
            await_sync_fn,
            fns: Rc::new(fns),
            store,
            channel: RefCell::new(None),
            lanes: RefCell::default(),
            term: RefCell::new(None),
            end_term: RefCell::new(None),
            resigned: Cell::new(false),
            rehearsed: Cell::new(false),
            running: Cell::new(false),
            online: RefCell::new(None),
            on_role: RefCell::new(None),
        });
        let weak = Rc::downgrade(&inner);
        let channel = Channel::open(&inner.scope, inner.me.clone(), move |env| {
            if let Some(inner) = weak.upgrade() {
                Inner::on_message(&inner, env);
            }
        })
        .map_err(|e| (ErrorCode::Invalid, e.to_string()))?;
        *inner.channel.borrow_mut() = Some(channel);
        Inner::listen_online(&inner);
        Inner::watch_leader(&inner);
        Inner::run(&inner);
        // WebAssembly compiles each function the first time it runs: a worker waiting for the
        // lock rehearses a term now, so that a failover does not wait for the compiler.
        spawn_local(async {
            let _ = outbox_shared::executor::rehearse(ExecutorConfig::default());
        });
        Ok(Self(inner))
    }

    /// Stops leading (the tab is being frozen or closed) and asks for nothing until
    /// [`Leader::resume`].
    pub fn resign(&self) {
        self.0.resigned.set(true);
        Inner::end_term(&self.0);
    }

    /// Waits for the lock again after a [`Leader::resign`].
    pub fn resume(&self) {
        if self.0.resigned.replace(false) {
            Inner::run(&self.0);
        }
    }

    /// Calls `hook` whenever this worker starts leading (`Some(epoch)`) or stops (`None`).
    pub fn on_role_change(&self, hook: impl Fn(Option<Epoch>) + 'static) {
        *self.0.on_role.borrow_mut() = Some(Box::new(hook));
    }

    /// Takes leadership from a leader that no longer answers (Web Locks `steal`). The old
    /// leader's lock is released by the browser; its late writes are fenced out by the epoch.
    /// Does nothing while leading.
    pub fn steal(&self) {
        if self.epoch().is_none() {
            let _ = self.0.steal_tx.unbounded_send(());
        }
    }

    /// The epoch while leading.
    pub fn epoch(&self) -> Option<Epoch> {
        self.0.term.borrow().as_ref().map(|t| t.epoch)
    }

    /// The scope it serves.
    pub fn scope(&self) -> &str {
        &self.0.scope
    }

    /// Its id on the channel (`from` of what it says).
    pub fn id(&self) -> &ClientId {
        &self.0.me
    }

    /// A message a tab posted on this worker's `port` (see [`outbox_runtime::lane`]): read like
    /// one from the channel. While this worker leads, that tab's answers go back on the port;
    /// otherwise the message is passed on to the channel, where the leader hears it.
    pub fn from_tab(&self, data: &JsValue, port: JsValue) {
        let inner = &self.0;
        let leading = inner.epoch().is_some();
        let env = {
            let channel = inner.channel.borrow();
            let Some(channel) = channel.as_ref() else {
                return;
            };
            let env = channel.accept(data);
            if env.is_some() && !leading {
                // A failed post (the channel was closed) leaves nothing to do: tabs resend.
                let _ = channel.post_data(data);
            }
            env
        };
        let Some(env) = env else { return };
        if leading {
            if let Some(port) = Port::new(port) {
                inner
                    .lanes
                    .borrow_mut()
                    .heard(&env.from, port.sending_bytes());
            }
        }
        Inner::on_message(inner, env);
    }

    /// Queue statistics while leading (`None` if called from the app's code that the executor
    /// calls, `beforeRetry`).
    pub fn stats(&self) -> Option<QueueStats> {
        self.0
            .term
            .borrow()
            .as_ref()
            .and_then(|t| t.driver.with_executor(Executor::stats))
    }
}

/// Records of each store a rehearsal reads at most: enough to run every path once, few enough
/// that the leader's writes hardly wait for it.
const REHEARSAL_RECORDS: u32 = 32;

/// Splits an executor's commands into its writes and the rest, in order.
fn split_writes(commands: Vec<Command>) -> (Vec<WriteBatch>, Vec<Command>) {
    let mut writes = Vec::new();
    let mut rest = Vec::with_capacity(commands.len());
    for c in commands {
        match c {
            Command::Write(batch) => writes.push(batch),
            other => rest.push(other),
        }
    }
    (writes, rest)
}

impl Inner {
    /// The envelope a message goes out in: a reply to one tab, or a broadcast.
    fn envelope(&self, to: Option<&ClientId>, msg: Message) -> Envelope {
        Envelope::new(&self.scope, &self.me, to, msg)
    }

    fn send(&self, to: Option<ClientId>, msg: Message) {
        let env = self.envelope(to.as_ref(), msg);
        let port = to.and_then(|to| self.lanes.borrow().get(&to).cloned());
        if let Some(port) = port {
            // The tab talks to this worker directly: its answers go back the same way, or over
            // the channel if the port is gone.
            if port.post(&env).is_ok() {
                return;
            }
        }
        if let Some(channel) = self.channel.borrow().as_ref() {
            // A failed post (the channel was closed) leaves nothing to do: tabs resend.
            let _ = channel.post(&env);
        }
    }

    /// Starts the loop that waits for the lock and leads, unless one is already running.
    fn run(this: &Rc<Self>) {
        if this.running.replace(true) {
            return;
        }
        let this = Rc::clone(this);
        spawn_local(async move {
            let mut steals = this.steal_rx.borrow_mut().take();
            let mut failed_takeovers = 0u32;
            while !this.resigned.get() {
                let name = lock_name(&this.scope);
                let wait = request_lock(&name);
                let granted = match steals.as_mut() {
                    Some(steals) => match select(wait, steals.next()).await {
                        Either::Left((granted, _)) => granted,
                        // Asked to steal: withdraw the waiting request, take the lock.
                        Either::Right((_, wait)) => {
                            drop(wait);
                            steal_lock(&name).await
                        }
                    },
                    None => wait.await,
                };
                let mut guard = match granted {
                    Ok(guard) => guard,
                    Err(e) => {
                        this.send(
                            None,
                            Message::Diagnostic {
                                code: ErrorCode::Invalid,
                                message: format!("the leader lock could not be requested: {e}"),
                            },
                        );
                        break;
                    }
                };
                if this.resigned.get() {
                    break;
                }
                let ended = match Self::begin_term(&this).await {
                    Ok(ended) => {
                        failed_takeovers = 0;
                        ended
                    }
                    Err(message) => {
                        failed_takeovers = failed_takeovers.saturating_add(1);
                        if failed_takeovers == 1 {
                            this.send(
                                None,
                                Message::Diagnostic {
                                    code: ErrorCode::Storage,
                                    message,
                                },
                            );
                        }
                        // Let another worker lead meanwhile; then try again.
                        Self::end_term(&this);
                        let _ = guard.release().await;
                        sleep(storage_retry_wait(failed_takeovers)).await;
                        continue;
                    }
                };
                // Lead until resigned, fenced out, or robbed of the lock.
                let lost = match select(ended, Box::pin(guard.lost())).await {
                    Either::Left(_) => false,
                    Either::Right(_) => true,
                };
                if lost {
                    Self::end_term(&this);
                }
                // Waiting again: give whoever leads next a whole timeout.
                this.watch.borrow_mut().heard(monotonic());
                let _ = guard.release().await;
                // Asks to steal made during that term are stale: the silence they were about
                // ended when this worker led.
                if let Some(steals) = steals.as_mut() {
                    while steals.try_recv().is_ok() {}
                }
            }
            *this.steal_rx.borrow_mut() = steals;
            this.running.set(false);
        });
    }

    /// Takes over the outbox; the returned receiver fires when the term ends.
    ///
    /// The executor takes the loaded outbox over inside the transaction that loads it, so that
    /// its first writes (attempts resumed, retries brought forward) commit with the new epoch.
    /// Its other commands (the `leader` broadcast first) wait for that commit and for the proof
    /// lock, which is asked for as soon as the epoch is known.
    async fn begin_term(this: &Rc<Self>) -> Result<oneshot::Receiver<()>, String> {
        let mut begun = None;
        let written = this
            .store
            .take_over(now(), |loaded| {
                let epoch = loaded.epoch;
                this.fns.set_lineage(loaded.lineage.clone());
                let proof = request_lock(&proof_lock_name(&this.scope, epoch, &this.me));
                let (exec, writes, commands) = this.executor_taking_over(loaded);
                begun = Some((epoch, proof, exec, commands));
                writes
            })
            .await
            .map_err(|e| format!("the outbox could not be loaded: {e}"))?;
        let (epoch, proof, exec, commands) =
            begun.ok_or_else(|| "the outbox could not be loaded".to_owned())?;
        let proof = proof
            .await
            .map_err(|e| format!("the proof-of-leadership lock could not be taken: {e}"))?;
        let weak = Rc::downgrade(this);
        let driver = Driver::new(
            exec,
            Rc::new(this.store.clone()),
            Rc::clone(&this.fns),
            Box::new(move |to, msg| {
                if let Some(inner) = weak.upgrade() {
                    inner.send(to, msg);
                }
            }),
        );
        let weak = Rc::downgrade(this);
        driver.on_step_down(move |_| {
            if let Some(inner) = weak.upgrade() {
                // Ending the term from inside the driver's turn: defer to a fresh task.
                spawn_local(async move { Inner::end_term(&inner) });
            }
        });
        let weak = Rc::downgrade(this);
        driver.on_signed_out(move || {
            if let Some(inner) = weak.upgrade() {
                // Signed out: stop the feed, forget the user's synced rows, stop leading and do
                // not wait for the lock again.
                if let Some(sync) = inner.term.borrow_mut().as_mut().and_then(|t| t.sync.take()) {
                    sync.stop();
                }
                spawn_local(async move {
                    if inner.options.sync.is_some() {
                        if let Err(e) = inner.store.clear_synced().await {
                            web_sys::console::warn_1(
                                &format!("outbox: synced rows not cleared at sign-out: {e}").into(),
                            );
                        }
                    }
                    Leader(inner).resign();
                });
            }
        });
        let (tx, rx) = oneshot::channel();
        *this.end_term.borrow_mut() = Some(tx);
        let heartbeat = Self::heartbeat(this, epoch);
        *this.term.borrow_mut() = Some(Term {
            driver: driver.clone(),
            epoch,
            sync: None,
            early_asks: this.options.sync.is_some().then(HashMap::new),
            sync_failures: 0,
            _heartbeat: heartbeat,
            _proof: proof,
        });
        if let Some(f) = &this.await_sync_fn {
            driver.set_await_sync(f.clone());
        }
        driver.carry_out(commands);
        driver.dispatch_all(
            written
                .into_iter()
                .map(|(write, outcome)| match outcome {
                    Ok(()) => Event::Written { write },
                    Err(error) => Event::WriteFailed { write, error },
                })
                .collect(),
        );
        this.tell_role(Some(epoch));
        Self::start_sync(this, epoch).await;
        Ok(rx)
    }

    /// A new executor for a term (or a rehearsal of one) that has taken `loaded` over, with
    /// the writes it asked for and its other commands, in order.
    fn executor_taking_over(&self, loaded: Loaded) -> (Executor, Vec<WriteBatch>, Vec<Command>) {
        let mut exec = Executor::new(
            executor_config(
                &self.options,
                &self.scope,
                &self.fns,
                self.before_retry.as_ref(),
            ),
            Box::new(MathRandom),
        );
        let (writes, commands) = split_writes(exec.handle(now(), Event::BecameLeader(loaded)));
        (exec, writes, commands)
    }

    /// Rehearses a takeover ([`IdbStore::rehearse_take_over`]: a few records, the app's own
    /// executor options, nothing written), then what a term does after its first commit: its
    /// messages encoded (not posted) and its first calls' HTTP requests built (not sent). A
    /// waiting worker does this once, when it first hears another worker lead, so that a
    /// failover runs code already compiled. When the outbox is empty, a stand-in transaction
    /// (in memory only) is taken over instead, so that the paths of a takeover with work run.
    /// Measured on failovers of the bench: each step of a takeover took 1–5 ms longer in a
    /// worker that had never run it; laying out the first writes of a takeover of three
    /// records took 2–7 ms after a rehearsal on an empty outbox, 0.6–0.9 ms after one on a
    /// stand-in.
    fn rehearse_takeover(this: &Rc<Self>) {
        let weak = Rc::downgrade(this);
        spawn_local(async move {
            let Some(inner) = weak.upgrade() else { return };
            if inner.epoch().is_some() || inner.resigned.get() {
                return;
            }
            let _ = inner.rehearse().await;
        });
    }

    /// The rehearsal of [`Inner::rehearse_takeover`]. Returns how many requests it built.
    async fn rehearse(&self) -> Result<usize, outbox_shared::store::StoreError> {
        let stand_in = Transaction::new(
            TransactionId("outbox-rehearsal".into()),
            self.fns.http_name().unwrap_or_default(),
            Strategy::Ordered,
            vec![PendingMutation::insert(
                "outbox-rehearsal",
                "outbox-rehearsal",
                serde_json::json!({ "id": "outbox-rehearsal" }),
            )],
            now(),
        );
        let mut term = None;
        self.store
            .rehearse_take_over(now(), REHEARSAL_RECORDS, &[stand_in], |loaded| {
                let (exec, writes, commands) = self.executor_taking_over(loaded);
                let ids: Vec<_> = writes.iter().map(|w| w.id).collect();
                term = Some((exec, ids, commands));
                writes
            })
            .await?;
        let Some((mut exec, written, mut commands)) = term else {
            return Ok(0);
        };
        // As if the first writes had committed: the executor's next commands are its calls.
        for write in written {
            commands.extend(exec.handle(now(), Event::Written { write }));
        }
        for c in &commands {
            if let Command::Send { to, msg } = c {
                let env = self.envelope(to.as_ref(), msg.clone());
                outbox_shared::protocol::encode_parts(
                    &env,
                    outbox_shared::protocol::PART_BYTES,
                    &mut |text| drop(JsValue::from_str(&text)),
                );
            }
        }
        Ok(build_requests(&self.fns, &commands))
    }

    /// Opens the change feed for the term, resuming from the rows the last leader stored.
    async fn start_sync(this: &Rc<Self>, epoch: Epoch) {
        let Some(options) = this.options.sync.clone() else {
            return;
        };
        let restored = match this.store.load_synced().await {
            Ok(r) => r,
            Err(e) => {
                web_sys::console::warn_1(
                    &format!("outbox: stored synced rows unreadable, reloading them: {e}").into(),
                );
                None
            }
        };
        let host = SyncHost {
            leader: Rc::downgrade(this),
            epoch,
        };
        // The term may have ended while the rows were read.
        if this.epoch() != Some(epoch) {
            return;
        }
        match SyncDriver::start(options, this.sync_source.clone(), restored, Box::new(host)) {
            Ok(sync) => {
                let early = match this.term.borrow_mut().as_mut() {
                    Some(term) => {
                        term.sync = Some(sync);
                        term.early_asks.take().unwrap_or_default()
                    }
                    None => return,
                };
                let term = this.term.borrow();
                if let Some(sync) = term.as_ref().and_then(|t| t.sync.as_ref()) {
                    for (from, applied) in early {
                        sync.tab_asks(from, applied);
                    }
                }
            }
            Err(e) => {
                if let Some(term) = this.term.borrow_mut().as_mut() {
                    term.early_asks = None;
                }
                web_sys::console::warn_1(&format!("outbox: no change feed: {e}").into());
            }
        }
    }

    fn heartbeat(this: &Rc<Self>, epoch: Epoch) -> Option<Interval> {
        let weak: Weak<Self> = Rc::downgrade(this);
        Interval::new(this.options.heartbeat_ms.max(50), move || {
            let Some(inner) = weak.upgrade() else { return };
            let (pending, paused) = inner
                .term
                .borrow()
                .as_ref()
                .and_then(|t| t.driver.with_executor(|e| (e.stats().size, e.is_paused())))
                .unwrap_or((0, false));
            inner.send(None, Message::Heartbeat { epoch, pending });
            // Still waiting for credentials: ask again, for tabs that were not listening yet
            // (they join, or verify this leader, after the term's first call for them).
            if paused {
                inner.send(None, Message::CredentialsNeeded { epoch });
            }
        })
    }

    /// Ends the current term, if any: says so on the channel, stops the executor.
    fn end_term(this: &Rc<Self>) {
        let term = this.term.borrow_mut().take();
        this.lanes.borrow_mut().clear();
        if let Some(term) = term {
            term.driver.stop();
            this.send(None, Message::Resign { epoch: term.epoch });
            this.tell_role(None);
        }
        if let Some(tx) = this.end_term.borrow_mut().take() {
            let _ = tx.send(());
        }
    }

    fn tell_role(&self, epoch: Option<Epoch>) {
        if let Some(hook) = self.on_role.borrow().as_ref() {
            hook(epoch);
        }
    }

    /// While waiting for the lock, checks the leader's signs of life every heartbeat, and
    /// takes the lock by force from a leader silent for the whole timeout.
    fn watch_leader(this: &Rc<Self>) {
        let weak: Weak<Self> = Rc::downgrade(this);
        let timer = Interval::new(this.options.heartbeat_ms.max(50), move || {
            let Some(inner) = weak.upgrade() else { return };
            let waiting = inner.running.get() && !inner.resigned.get() && inner.epoch().is_none();
            if !waiting {
                inner.watch.borrow_mut().heard(monotonic());
                return;
            }
            if inner.watch.borrow_mut().overdue(monotonic()) {
                let _ = inner.steal_tx.unbounded_send(());
            }
        });
        *this.watch_timer.borrow_mut() = timer;
    }

    fn listen_online(this: &Rc<Self>) {
        let weak = Rc::downgrade(this);
        let closure = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.dispatch(Event::Online);
            }
        });
        let global = js_sys::global();
        if let Ok(add) = js_sys::Reflect::get(&global, &"addEventListener".into()) {
            if let Ok(add) = add.dyn_into::<js_sys::Function>() {
                let _ = add.call2(&global, &"online".into(), closure.as_ref());
            }
        }
        *this.online.borrow_mut() = Some(closure);
    }

    fn dispatch(&self, event: Event) {
        self.dispatch_all(vec![event]);
    }

    fn dispatch_all(&self, events: Vec<Event>) {
        let driver = self.term.borrow().as_ref().map(|t| t.driver.clone());
        if let Some(driver) = driver {
            driver.dispatch_all(events);
        }
    }

    /// The feed reconnects now if it waits out a backoff.
    fn sync_retry_now(&self) {
        if let Some(sync) = self.term.borrow().as_ref().and_then(|t| t.sync.as_ref()) {
            sync.retry_now();
        }
    }

    fn epoch(&self) -> Option<Epoch> {
        self.term.borrow().as_ref().map(|t| t.epoch)
    }

    /// A message on the channel. A waiting worker only notes the leader's signs of life; only a
    /// leading worker answers.
    fn on_message(this: &Rc<Self>, env: Envelope) {
        if let Message::SignedOut { epoch } = env.body {
            // The user signed out of this scope: no worker of it waits to lead any more. Only
            // the leader can say so (it still holds its proof lock while it says it).
            let holds = outbox_runtime::locks::claim_holds(&this.scope, epoch, &env.from);
            let weak = Rc::downgrade(this);
            spawn_local(async move {
                if holds.await {
                    if let Some(inner) = weak.upgrade() {
                        inner.fns.clear_credentials();
                        Leader(inner).resign();
                    }
                }
            });
            return;
        }
        let Some(epoch) = this.epoch() else {
            if matches!(
                env.body,
                Message::Leader { .. }
                    | Message::Heartbeat { .. }
                    | Message::Resign { .. }
                    | Message::Durable { .. }
                    | Message::State { .. }
                    | Message::SyncEntries { .. }
            ) {
                this.watch.borrow_mut().heard(monotonic());
                let leaving = matches!(env.body, Message::Resign { .. });
                if !leaving && !this.rehearsed.replace(true) {
                    Self::rehearse_takeover(this);
                }
            }
            return;
        };
        let from = env.from;
        let event = match env.body {
            Message::Hello => {
                this.send(Some(from), Message::Leader { epoch });
                return;
            }
            Message::Ping { nonce } => {
                this.send(Some(from), Message::Pong { nonce });
                return;
            }
            Message::Submit { epoch: to, txs } => {
                this.dispatch_all(Event::submitted(&from, to, txs));
                return;
            }
            Message::SnapshotRequest => Event::SnapshotRequested { from },
            Message::SyncFrom { applied } => {
                // What the feed follows first (nothing, without a `sync` option): a tab that
                // follows another collection is not left waiting for it.
                let collections = this
                    .options
                    .sync
                    .as_ref()
                    .map(|s| s.collections.clone())
                    .unwrap_or_default();
                this.send(
                    Some(from.clone()),
                    Message::FeedCollections { epoch, collections },
                );
                let starting = match this.term.borrow_mut().as_mut() {
                    Some(Term {
                        early_asks: Some(early),
                        ..
                    }) => {
                        early.insert(from.clone(), applied);
                        true
                    }
                    _ => false,
                };
                if !starting {
                    if let Some(sync) = this.term.borrow().as_ref().and_then(|t| t.sync.as_ref()) {
                        sync.tab_asks(from, applied);
                    }
                }
                return;
            }
            Message::NotifyOnline => {
                this.sync_retry_now();
                Event::NotifyOnline
            }
            Message::Visible => Event::TabVisible,
            Message::Request { req, op } => Event::Request { from, req, op },
            Message::Credentials { epoch: to, headers } if to == epoch => {
                // Kept in this worker's memory only, for its calls.
                this.fns.set_credentials(headers);
                this.sync_retry_now();
                Event::Credentials
            }
            _ => return,
        };
        this.dispatch(event);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(closure) = self.online.borrow_mut().take() {
            let global = js_sys::global();
            if let Ok(remove) = js_sys::Reflect::get(&global, &"removeEventListener".into()) {
                if let Ok(remove) = remove.dyn_into::<js_sys::Function>() {
                    let _ = remove.call2(&global, &"online".into(), closure.as_ref());
                }
            }
        }
    }
}

/// The JS value for a leader-side error.
pub fn to_js_error(code: ErrorCode, message: &str) -> JsValue {
    outbox_runtime::convert::js_error(code, message).into()
}

/// The leader's side of its change feed: rows go to IndexedDB (fenced by the term's epoch),
/// then to the tabs on the channel; the executor hears how far the feed has come (`awaitSync`).
struct SyncHost {
    leader: Weak<Inner>,
    epoch: Epoch,
}

impl outbox_runtime::sync::SyncHost for SyncHost {
    fn headers(&self) -> BTreeMap<String, String> {
        self.leader
            .upgrade()
            .map(|l| l.fns.credentials())
            .unwrap_or_default()
    }

    fn persist(
        &self,
        batch: PersistBatch,
    ) -> outbox_runtime::sync::LocalFuture<Result<(), String>> {
        let (leader, epoch) = (self.leader.clone(), self.epoch);
        Box::pin(async move {
            let store = leader
                .upgrade()
                .map(|l| l.store.clone())
                .ok_or_else(|| "the leader has stopped".to_owned())?;
            store
                .write_synced(epoch, &batch)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn deliver(&self, output: LeaderSyncOutput) {
        let Some(inner) = self.leader.upgrade() else {
            return;
        };
        match Delivery::of(self.epoch, output) {
            Delivery::Send(messages) => {
                for (to, msg) in messages {
                    inner.send(to, msg);
                }
            }
            Delivery::SyncedTo(server_seq) => inner.dispatch(Event::SyncedTo { server_seq }),
            Delivery::Nothing => {}
        }
    }

    fn credentials_refused(&self) {
        if let Some(inner) = self.leader.upgrade() {
            inner.send(None, Message::CredentialsNeeded { epoch: self.epoch });
        }
    }

    fn trouble(&self, message: String) {
        web_sys::console::warn_1(&format!("outbox: {message}").into());
        // The feed stopped: it starts again from what storage holds (the tabs have heard only
        // of what was stored), after a wait that grows while storage keeps failing.
        let (leader, epoch) = (self.leader.clone(), self.epoch);
        spawn_local(async move {
            let failures = match leader.upgrade() {
                Some(this) => match this.term.borrow_mut().as_mut() {
                    Some(term) if term.epoch == epoch => {
                        term.sync_failures = term.sync_failures.saturating_add(1);
                        term.sync_failures
                    }
                    _ => return,
                },
                None => return,
            };
            sleep(storage_retry_wait(failures)).await;
            let Some(this) = leader.upgrade() else { return };
            let stopped = match this.term.borrow_mut().as_mut() {
                Some(term) if term.epoch == epoch => term.sync.take(),
                _ => return,
            };
            // Tabs the stopped sync had not answered yet are asked of the next one.
            let waiting = stopped.as_ref().map(SyncDriver::waiting_asks);
            drop(stopped);
            if let Some(term) = this.term.borrow_mut().as_mut() {
                term.early_asks = Some(waiting.unwrap_or_default().into_iter().collect());
            }
            Inner::start_sync(&this, epoch).await;
        });
    }
}

/// Resolves after `ms` milliseconds.
async fn sleep(ms: u64) {
    let (tx, rx) = oneshot::channel();
    let mut timer = Timer::default();
    timer.set(ms, move || {
        let _ = tx.send(());
    });
    let _ = rx.await;
}
