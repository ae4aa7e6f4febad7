//! The client's state, shared by the client, its collections and its transactions, and the one
//! pump that carries out what the tab core asks for.
//!
//! Everything that happens goes the same way: something borrows the [`TabCore`] for a moment
//! and gets [`TabOutput`]s back; [`Inner::apply`] turns them into queued work (messages to send,
//! handles to settle, listeners to call); [`Inner::pump`] runs that work with no borrow held,
//! so a listener may call back into the client (an insert in a `subscribe` callback, say).

use crate::building::Building;
use crate::collection::CollectionDef;
use crate::errors::{invalid, Diagnostic, Mode};
use crate::events::{ClientEvent, Stamped};
use crate::handle::{Deferred, HandleState};
use crate::notify::{later_call_all, Later, Subscribers, Topic};
use crate::online_only::LocalExecutor;
use crate::options::ConnectOptions;
use crate::page::PageListeners;
use crate::requests::Requests;
use crate::rowcache::RowCache;
use crate::worker::OwnWorker;
use futures_channel::oneshot;
use outbox_runtime::calls::MutationFns;
use outbox_runtime::channel::{Channel, ChannelError};
use outbox_runtime::clock::now;
use outbox_runtime::convert::to_js;
use outbox_runtime::locks::claim_holds;
use outbox_runtime::timer::{Interval, Timer};
use outbox_shared::model::{
    ClientId, Epoch, ErrorCode, Transaction, TransactionId, TransactionState, TxError,
};
use outbox_shared::protocol::{oversized_transactions, Envelope, Message, MAX_MESSAGE_BYTES};
use outbox_shared::tab::{TabCore, TabOutput};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

/// Work waiting for the pump.
#[derive(Default)]
struct Queue {
    /// Messages from the tab's own executor (online-only mode).
    incoming: VecDeque<Envelope>,
    /// Messages to the leader.
    outgoing: VecDeque<Message>,
    /// Listener calls and promise settlements.
    calls: VecDeque<Later>,
    /// Rows changed since listeners were last told, by collection.
    dirty_rows: BTreeMap<String, BTreeSet<String>>,
    /// Some transaction changed since `subscribeTransactions` listeners were last told.
    txs_changed: bool,
}

enum Step {
    Incoming(Envelope),
    Outgoing(Message),
    Call(Later),
    Idle,
}

/// The client's state.
pub(crate) struct Inner {
    pub me: ClientId,
    pub scope: String,
    pub options: ConnectOptions,
    /// The options object as the app gave it (the online-only executor of the worker's wasm
    /// reads its own settings and functions from it).
    pub options_js: JsValue,
    pub fns: Rc<MutationFns>,
    pub core: RefCell<TabCore>,
    /// The rows as JS objects, converted once per version.
    pub row_cache: RefCell<RowCache>,
    pub mode: Cell<Mode>,
    pub diagnostic: RefCell<Option<Diagnostic>>,
    pub closed: Cell<bool>,
    /// Online-only: a leader's proof lock is being checked.
    pub checking_leader: Cell<bool>,
    /// The app's `getCredentials()`, if it gave one.
    pub get_credentials: RefCell<Option<js_sys::Function>>,
    /// Collections' merge functions (`conflict: fn`), by collection.
    pub merge_fns: RefCell<HashMap<String, js_sys::Function>>,
    /// A call of `getCredentials()` is under way (the leader repeats its request every
    /// heartbeat while it waits; one answer at a time is enough).
    pub asking_credentials: Cell<bool>,
    pub leader_tab: Cell<bool>,
    /// The tab's own worker said `outbox:ready`.
    pub worker_ready: Cell<bool>,
    /// The tab's own worker failed (an error event, or `outbox:error`): it cannot take over.
    pub worker_failed: Cell<bool>,
    /// While a leader serves the tab: checks that it is still there (see
    /// `Inner::check_leader`).
    pub leader_watch: RefCell<Option<Interval>>,
    /// The tab's own worker's id on the channel, when it offers its port as a lane
    /// (`outbox:ready` with `lane: true`; see `outbox_runtime::lane`).
    pub worker_id: RefCell<Option<ClientId>>,
    /// Posts go over the worker's port: set when a new leader is verified, to whether that
    /// leader is the tab's own worker.
    pub lane: Cell<bool>,
    pub channel: RefCell<Option<Channel>>,
    /// Envelopes to post on the channel at the end of the current task (in order): a burst of
    /// inserts returns at once and posts together, not one post inside each call.
    pub posts: RefCell<Vec<Envelope>>,
    pub local: RefCell<Option<LocalExecutor>>,
    pub worker: RefCell<Option<OwnWorker>>,
    pub page: RefCell<Option<PageListeners>>,
    pub leader_timer: RefCell<Timer>,
    pub decided: RefCell<Option<oneshot::Sender<()>>>,
    pub collections: RefCell<HashMap<String, Rc<CollectionDef>>>,
    pub handles: RefCell<HashMap<TransactionId, Rc<HandleState>>>,
    pub building: RefCell<Option<Rc<Building>>>,
    pub requests: RefCell<Requests>,
    pub subs: RefCell<Subscribers>,
    pub drains: RefCell<Vec<Deferred>>,
    queue: RefCell<Queue>,
    pumping: Cell<bool>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("me", &self.me)
            .field("scope", &self.scope)
            .field("mode", &self.mode.get())
            .finish_non_exhaustive()
    }
}

impl Inner {
    pub fn new(options: ConnectOptions, options_js: JsValue, fns: MutationFns) -> Rc<Self> {
        let me = ClientId(format!("tab-{}", outbox_runtime::clock::random_id()));
        let scope = options.channel_scope();
        Rc::new(Self {
            core: RefCell::new(TabCore::new(me.clone(), scope.clone())),
            row_cache: RefCell::new(RowCache::default()),
            me,
            scope,
            options,
            options_js,
            fns: Rc::new(fns),
            mode: Cell::new(Mode::Connecting),
            diagnostic: RefCell::new(None),
            closed: Cell::new(false),
            checking_leader: Cell::new(false),
            get_credentials: RefCell::new(None),
            merge_fns: RefCell::new(HashMap::new()),
            asking_credentials: Cell::new(false),
            leader_tab: Cell::new(false),
            worker_ready: Cell::new(false),
            worker_failed: Cell::new(false),
            leader_watch: RefCell::new(None),
            worker_id: RefCell::new(None),
            lane: Cell::new(false),
            channel: RefCell::new(None),
            posts: RefCell::new(Vec::new()),
            local: RefCell::new(None),
            worker: RefCell::new(None),
            page: RefCell::new(None),
            leader_timer: RefCell::new(Timer::default()),
            decided: RefCell::new(None),
            collections: RefCell::new(HashMap::new()),
            handles: RefCell::new(HashMap::new()),
            building: RefCell::new(None),
            requests: RefCell::new(Requests::default()),
            subs: RefCell::new(Subscribers::default()),
            drains: RefCell::new(Vec::new()),
            queue: RefCell::new(Queue::default()),
            pumping: Cell::new(false),
        })
    }

    /// Throws if the client was closed.
    pub fn ensure_open(&self) -> Result<(), JsValue> {
        if self.closed.get() {
            Err(invalid("this OutboxClient was closed"))
        } else {
            Ok(())
        }
    }

    /// Queues work for the pump.
    pub fn later(&self, work: impl IntoIterator<Item = Later>) {
        self.queue.borrow_mut().calls.extend(work);
    }

    /// Queues a message to the leader (or the tab's own executor) and pumps.
    pub fn send(this: &Rc<Self>, msg: Message) {
        this.queue.borrow_mut().outgoing.push_back(msg);
        Self::pump(this);
    }

    /// Queues a message from the tab's own executor and pumps.
    pub fn push_incoming(this: &Rc<Self>, env: Envelope) {
        this.queue.borrow_mut().incoming.push_back(env);
        Self::pump(this);
    }

    /// Drops messages of an executor that was stopped.
    pub fn clear_incoming(&self) {
        self.queue.borrow_mut().incoming.clear();
    }

    /// Tells `onEvent` listeners, if there are any.
    pub fn emit(&self, make: impl FnOnce() -> ClientEvent) {
        let listeners = self.subs.borrow().of(&Topic::Events);
        if listeners.is_empty() {
            return;
        }
        let event = make();
        let value = to_js(&Stamped {
            event: &event,
            at: now(),
        })
        .unwrap_or(JsValue::NULL);
        self.later([later_call_all(listeners, vec![value])]);
    }

    /// A transaction of this tab, made by the app (its `handle` already holds it): tracked,
    /// shown and submitted.
    pub fn submit(this: &Rc<Self>, tx: Transaction, handle: Rc<HandleState>) {
        this.handles
            .borrow_mut()
            .insert(tx.id.clone(), Rc::clone(&handle));
        this.emit(|| ClientEvent::Submitted {
            id: tx.id.0.clone(),
            mutation_fn: tx.mutation_fn.clone(),
            mutations: tx.mutations.len(),
        });
        let out = this.core.borrow_mut().submit(tx);
        Self::apply(this, out);
    }

    /// Carries out what the tab core asked for.
    pub fn apply(this: &Rc<Self>, outputs: Vec<TabOutput>) {
        let mut later: Vec<Later> = Vec::new();
        let mut outputs = VecDeque::from(outputs);
        while let Some(output) = outputs.pop_front() {
            match output {
                TabOutput::Send(msg) => this.queue.borrow_mut().outgoing.push_back(msg),
                TabOutput::Durable(id) => {
                    let handle = this.handles.borrow().get(&id).cloned();
                    if let Some(h) = handle {
                        h.durable(&mut later);
                    }
                    this.emit(|| ClientEvent::Durable { id: id.0 });
                }
                TabOutput::StateChanged(tx) => Self::state_changed(this, *tx, &mut later),
                TabOutput::RowsChanged(rows) => {
                    let mut q = this.queue.borrow_mut();
                    for (collection, key) in rows {
                        q.dirty_rows.entry(collection).or_default().insert(key);
                    }
                }
                TabOutput::LeaderChanged(epoch) => {
                    // The core resends everything unsettled to a new leader, in order, in this
                    // same batch: switching lanes here cannot let a post overtake an earlier one.
                    let own = this.worker_id.borrow().clone();
                    let lane = own.is_some() && this.core.borrow().leader_id() == own.as_ref();
                    this.lane.set(lane);
                    Self::leader_verified(this);
                    Self::leadership_changed(this, epoch.0);
                }
                TabOutput::VerifyLeader { epoch, from } => Self::verify_leader(this, epoch, from),
                TabOutput::CredentialsNeeded(epoch) => Self::credentials_needed(this, epoch),
                TabOutput::SignedOut(epoch) => {
                    this.emit(|| ClientEvent::SignedOut { epoch: epoch.0 });
                    this.fns.clear_credentials();
                    // After the listeners heard it: the client closes.
                    let me = Rc::clone(this);
                    later.push(Box::new(move || crate::client::OutboxClient(me).close()));
                }
                TabOutput::LeaderResigned(epoch) => {
                    this.emit(|| ClientEvent::LeaderResigned { epoch: epoch.0 });
                }
                TabOutput::Response { req, result } => {
                    let answered = this.requests.borrow_mut().answer(req, result);
                    if let Some((work, removed)) = answered {
                        later.push(work);
                        if let Some(id) = removed {
                            // Failed as removed here at once (its handle settles and goes, its
                            // changes leave the view), whether or not the leader's word of it
                            // comes.
                            outputs.extend(this.core.borrow_mut().removed(&id));
                            this.queue.borrow_mut().txs_changed = true;
                        }
                    }
                }
                TabOutput::Diagnostic { code, message } => {
                    this.emit(|| ClientEvent::Diagnostic {
                        code: code.as_str().to_owned(),
                        message,
                    });
                }
                TabOutput::FeedAdvanced(seq) => this.emit(|| ClientEvent::Synced { seq }),
                TabOutput::Merge {
                    collection,
                    key,
                    server,
                    local,
                } => {
                    let me = Rc::clone(this);
                    later.push(Box::new(move || {
                        Self::merge(&me, collection, key, server, local);
                    }));
                }
            }
        }
        this.later(later);
        Self::pump(this);
    }

    /// The leader needs credentials: the app hears of it, and its `getCredentials()` (if any)
    /// is asked; its answer goes to that leader.
    fn credentials_needed(this: &Rc<Self>, epoch: Epoch) {
        if this.asking_credentials.get() {
            return;
        }
        this.emit(|| ClientEvent::CredentialsNeeded { epoch: epoch.0 });
        let hook = this.get_credentials.borrow().clone();
        let Some(hook) = hook else { return };
        this.asking_credentials.set(true);
        let weak = Rc::downgrade(this);
        spawn_local(async move {
            let answer = match hook.call0(&JsValue::NULL) {
                Ok(v) if wasm_bindgen::JsCast::has_type::<js_sys::Promise>(&v) => {
                    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(v)).await
                }
                other => other,
            };
            let Some(this) = weak.upgrade() else { return };
            this.asking_credentials.set(false);
            match answer
                .map_err(|e| outbox_runtime::convert::JsErrorInfo::from_js(&e).to_string())
                .and_then(|v| credential_headers(&v))
            {
                Ok(headers) => Self::send(&this, Message::Credentials { epoch, headers }),
                Err(why) => this.emit(|| ClientEvent::Diagnostic {
                    code: ErrorCode::Unauthorized.as_str().to_owned(),
                    message: format!("getCredentials() failed: {why}"),
                }),
            }
        });
    }

    /// Asks the collection's merge function (`conflict: ({ server, local, key }) => row`) for
    /// the row to show under the pending changes. If it throws or answers something that is not
    /// a row (`undefined` is a deletion), the server's row is shown and the app told.
    fn merge(
        this: &Rc<Self>,
        collection: String,
        key: String,
        server: Option<serde_json::Value>,
        local: Option<serde_json::Value>,
    ) {
        let f = this.merge_fns.borrow().get(&collection).cloned();
        let answer = f.map(|f| {
            let arg = js_sys::Object::new();
            let set = |k: &str, v: &JsValue| {
                let _ = js_sys::Reflect::set(&arg, &JsValue::from_str(k), v);
            };
            let js = |v: &Option<serde_json::Value>| {
                v.as_ref().map_or(JsValue::UNDEFINED, |v| {
                    to_js(v).unwrap_or(JsValue::UNDEFINED)
                })
            };
            set("collection", &JsValue::from_str(&collection));
            set("key", &JsValue::from_str(&key));
            set("server", &js(&server));
            set("local", &js(&local));
            f.call1(&JsValue::NULL, &arg)
                .map_err(|e| outbox_runtime::convert::JsErrorInfo::from_js(&e).to_string())
                .and_then(|v| {
                    if v.is_undefined() || v.is_null() {
                        Ok(None)
                    } else {
                        crate::rowdata::to_json(&v, "the merged row").map(Some)
                    }
                })
        });
        let row = match answer {
            Some(Ok(row)) => row,
            Some(Err(why)) => {
                this.emit(|| ClientEvent::Diagnostic {
                    code: ErrorCode::Invalid.as_str().to_owned(),
                    message: format!("{collection}: the conflict merge of {key:?} failed ({why}); the server's row is shown"),
                });
                server
            }
            None => server,
        };
        let out = this.core.borrow_mut().merged(&collection, &key, row);
        Self::apply(this, out);
    }

    /// Checks a claim of leadership: the tab's own executor (online-only) is believed; anyone
    /// else must hold the claim's proof lock.
    fn verify_leader(this: &Rc<Self>, epoch: Epoch, from: ClientId) {
        if this.mode.get() == Mode::OnlineOnly && LocalExecutor::speaks_as(&from, epoch) {
            let out = this.core.borrow_mut().leader_verified(now(), epoch, from);
            return Self::apply(this, out);
        }
        let holds = claim_holds(&this.scope, epoch, &from);
        let weak = Rc::downgrade(this);
        spawn_local(async move {
            let held = holds.await;
            let Some(this) = weak.upgrade() else { return };
            if held {
                if this.mode.get() == Mode::OnlineOnly && !this.closed.get() {
                    // The claim checked out just after `leaderTimeoutMs` sent the tab
                    // online-only: hand over to it first. Followed while still online-only,
                    // the tab sent its changes to its own executor, whose answers the core
                    // dropped (not from the leader it followed) until the next heartbeat.
                    Self::hand_over(&this);
                }
                let out = this.core.borrow_mut().leader_verified(now(), epoch, from);
                Self::apply(&this, out);
            } else {
                this.core.borrow_mut().leader_refuted(epoch, from);
            }
        });
    }

    fn state_changed(this: &Rc<Self>, tx: Transaction, later: &mut Vec<Later>) {
        this.queue.borrow_mut().txs_changed = true;
        this.emit(|| ClientEvent::State {
            id: tx.id.0.clone(),
            state: tx.state.as_str().to_owned(),
            attempts: usize::try_from(tx.attempt_count()).unwrap_or(usize::MAX),
            code: tx.error.as_ref().map(|e| e.code.as_str().to_owned()),
        });
        let handle = this.handles.borrow().get(&tx.id).cloned();
        let Some(handle) = handle else { return };
        // Done, or taken out of the outbox: nothing more will happen to it, so neither the core
        // nor the client keeps it.
        let done =
            tx.state == TransactionState::Completed || tx.error_code() == Some(ErrorCode::Removed);
        let id = tx.id.clone();
        handle.update(tx, later);
        if done {
            this.handles.borrow_mut().remove(&id);
            this.core.borrow_mut().forget(&id);
        }
    }

    /// A new leader (or this tab's worker started or stopped leading).
    pub fn leadership_changed(this: &Rc<Self>, epoch: u64) {
        if this.mode.get() == Mode::OnlineOnly {
            // The tab's own executor: not a leader the app should hear of.
            return;
        }
        let is_leader_tab = this.leader_tab.get();
        this.emit(|| ClientEvent::Leader {
            epoch,
            is_leader_tab,
        });
        let listeners = this.subs.borrow().of(&Topic::Leadership);
        if !listeners.is_empty() {
            let info = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&info, &"epoch".into(), &JsValue::from(epoch as f64));
            let _ = js_sys::Reflect::set(
                &info,
                &"isLeaderTab".into(),
                &JsValue::from_bool(is_leader_tab),
            );
            this.later([later_call_all(listeners, vec![info.into()])]);
        }
    }

    /// Runs queued work until there is none. Re-entrant calls return at once: the running pump
    /// picks up what they queued.
    pub fn pump(this: &Rc<Self>) {
        if this.pumping.replace(true) {
            return;
        }
        loop {
            let step = {
                let mut q = this.queue.borrow_mut();
                if let Some(m) = q.outgoing.pop_front() {
                    Step::Outgoing(m)
                } else if let Some(e) = q.incoming.pop_front() {
                    Step::Incoming(e)
                } else if let Some(c) = q.calls.pop_front() {
                    Step::Call(c)
                } else {
                    Step::Idle
                }
            };
            match step {
                Step::Outgoing(msg) => Self::deliver(this, msg),
                Step::Incoming(env) => {
                    let out = this.core.borrow_mut().receive(now(), env);
                    Self::apply(this, out);
                }
                Step::Call(work) => work(),
                Step::Idle => {
                    if !Self::collect_notifications(this) {
                        break;
                    }
                }
            }
        }
        this.pumping.set(false);
    }

    /// Sends a message to whoever serves the tab: its own executor in online-only mode, the
    /// channel otherwise.
    fn deliver(this: &Rc<Self>, msg: Message) {
        if this.mode.get() == Mode::OnlineOnly {
            let local = this.local.borrow().clone();
            if let Some(local) = local {
                local.deliver(this, msg);
                return;
            }
        }
        let env = Envelope::broadcast(&this.scope, &this.me, msg);
        let first = {
            let mut posts = this.posts.borrow_mut();
            posts.push(env);
            posts.len() == 1
        };
        if first {
            let weak = Rc::downgrade(this);
            spawn_local(async move {
                if let Some(this) = weak.upgrade() {
                    Self::flush_posts(&this);
                }
            });
        }
    }

    /// Posts what [`Inner::deliver`] queued. A failed post (the channel is closed) loses
    /// nothing: submits are resent to every new leader, and requests time out. A transaction
    /// too large for any receiver fails here at once (`OUTBOX_INVALID`), as if the leader had
    /// refused it: posted, it was dropped by every receiver and never said so.
    pub fn flush_posts(this: &Rc<Self>) {
        let posts = merge_submits(std::mem::take(&mut *this.posts.borrow_mut()));
        let mut refused: Vec<(TransactionId, usize)> = Vec::new();
        let mut posted = 0;
        let lane = if this.lane.get() {
            this.worker.borrow().as_ref().and_then(OwnWorker::port)
        } else {
            None
        };
        if let Some(port) = lane {
            // To the tab's own worker, which leads; over the channel if the port is gone.
            for env in &posts {
                match port.post(env) {
                    Ok(()) => {}
                    Err(ChannelError::TooLarge { .. }) => {
                        refused.extend(oversized_transactions(env));
                    }
                    Err(_) => break,
                }
                posted += 1;
            }
            if posted < posts.len() {
                this.lane.set(false);
            }
        }
        if posted < posts.len() {
            if let Some(channel) = this.channel.borrow().as_ref() {
                for env in &posts[posted..] {
                    if let Err(ChannelError::TooLarge { .. }) = channel.post(env) {
                        refused.extend(oversized_transactions(env));
                    }
                }
            }
        }
        for (id, len) in refused {
            let error = TxError::new(
                ErrorCode::Invalid,
                format!(
                    "the transaction is {len} bytes as JSON; at most {MAX_MESSAGE_BYTES} reach \
                     the leader"
                ),
            );
            let out = this.core.borrow_mut().refuse(&id, error);
            Self::apply(this, out);
        }
    }

    /// Turns changed rows and transactions, and finished drains, into listener calls.
    /// Returns whether it queued anything.
    fn collect_notifications(this: &Rc<Self>) -> bool {
        let (rows, txs_changed) = {
            let mut q = this.queue.borrow_mut();
            (
                std::mem::take(&mut q.dirty_rows),
                std::mem::take(&mut q.txs_changed),
            )
        };
        let mut later: Vec<Later> = Vec::new();
        for (collection, keys) in rows {
            let listeners = this.subs.borrow().of(&Topic::Rows(collection.clone()));
            if listeners.is_empty() {
                continue;
            }
            let keys = outbox_runtime::convert::to_js_array(&keys)
                .unwrap_or_else(|_| keys.iter().map(|k| JsValue::from_str(k)).collect());
            later.push(later_call_all(
                listeners,
                vec![this.rows_js(&collection).into(), keys.into()],
            ));
        }
        if txs_changed {
            let listeners = this.subs.borrow().of(&Topic::Transactions);
            if !listeners.is_empty() {
                later.push(later_call_all(
                    listeners,
                    vec![this.transactions_js().into()],
                ));
            }
        }
        let drained = !this.drains.borrow().is_empty()
            && this.core.borrow().own_unsettled() == 0
            && this.building.borrow().is_none();
        if drained {
            for d in std::mem::take(&mut *this.drains.borrow_mut()) {
                later.extend(d.resolve_later(JsValue::UNDEFINED));
            }
        }
        let any = !later.is_empty();
        this.later(later);
        any
    }

    /// Every row of a collection as the app should see it, as a JS array.
    /// Unchanged rows are the same frozen objects as last time ([`RowCache`]).
    pub fn rows_js(&self, collection: &str) -> js_sys::Array {
        let mut core = self.core.borrow_mut();
        self.row_cache.borrow_mut().rows(&mut core, collection)
    }

    /// Every transaction the tab knows (its own and other tabs'), unsettled or failed, oldest
    /// first, with their attempts.
    pub fn transactions_js(&self) -> js_sys::Array {
        let core = self.core.borrow();
        let mut txs: Vec<&Transaction> = core.transactions().collect();
        txs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        txs.into_iter()
            .map(|t| to_js(t).unwrap_or(JsValue::NULL))
            .collect()
    }
}

/// Reads credentials as the app gives them: an object of header names to string values.
pub fn credential_headers(value: &JsValue) -> Result<BTreeMap<String, String>, String> {
    if !value.is_object() {
        return Err(
            "credentials must be an object of header names to values, like \
                    { authorization: 'Bearer …' }"
                .into(),
        );
    }
    outbox_runtime::convert::from_js::<BTreeMap<String, String>>(value.clone())
        .map_err(|e| format!("credentials must map header names to strings: {e}"))
}

/// Submits in a row to the same leader go as one message (a burst of inserts costs one post,
/// not one each); everything keeps its order.
fn merge_submits(posts: Vec<Envelope>) -> Vec<Envelope> {
    let mut out: Vec<Envelope> = Vec::with_capacity(posts.len());
    for env in posts {
        let last = out.last_mut().and_then(|last| match last {
            Envelope {
                to: None,
                body: Message::Submit { epoch, txs },
                ..
            } => Some((*epoch, txs)),
            _ => None,
        });
        match (last, env) {
            (
                Some((e, txs)),
                Envelope {
                    to: None,
                    body: Message::Submit { epoch, txs: more },
                    ..
                },
            ) if e == epoch => txs.extend(more),
            (_, env) => out.push(env),
        }
    }
    out
}
