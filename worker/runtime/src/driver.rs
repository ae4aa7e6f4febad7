//! The driver: the one event loop that feeds the shared executor and carries out its commands
//! with real storage, timers, `fetch` and JS mutation functions.
//!
//! Events are queued and handled one at a time, so a command that leads straight back into the
//! driver (a message to an in-page tab, say) never re-enters the executor. Calls are started at
//! the end of the turn: each of the executor's batch requests ([`Command::CallBatch`]) as one
//! HTTP request of at most `max_batch` transactions, and other calls one by one (except calls
//! of a batching endpoint made ready in the same turn, which share requests).

use crate::calls::{self, MutationFns, Route};
use crate::clock::now;
use crate::store::AsyncStore;
use crate::timer::Timer;
use outbox_shared::executor::{Command, Event, Executor, FinishedAttempt};
use outbox_shared::http::{batch_outcomes, network_error, HttpRequest};
use outbox_shared::model::{ClientId, Transaction, TxError};
use outbox_shared::protocol::Message;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// Where the executor's messages go.
pub type Sender = Box<dyn Fn(Option<ClientId>, Message)>;

/// Transactions to call, with their attempts' numbers.
type Calls = Vec<(Transaction, u32)>;

/// Told when the executor steps down.
type StepDownHook = Box<dyn Fn(&TxError)>;

/// Runs an [`Executor`]. Cloning gives another handle to the same driver.
#[derive(Clone)]
pub struct Driver(Rc<Inner>);

struct Inner {
    exec: RefCell<Executor>,
    store: Rc<dyn AsyncStore>,
    fns: Rc<MutationFns>,
    send: Sender,
    timer: RefCell<Timer>,
    queue: RefCell<VecDeque<Event>>,
    /// Commands to carry out before the next event is handled ([`Driver::carry_out`]).
    deferred: RefCell<Vec<Command>>,
    busy: Cell<bool>,
    ready_calls: RefCell<Calls>,
    /// The executor's batch requests made in this turn: function name, calls.
    ready_batches: RefCell<Vec<(String, Calls)>>,
    aborts: RefCell<Aborts>,
    on_step_down: RefCell<Option<StepDownHook>>,
    on_signed_out: RefCell<Option<Box<dyn Fn()>>>,
    /// The app's `awaitSync(transaction)`, when it decides when a success is synced.
    await_sync: RefCell<Option<js_sys::Function>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("executor", &self.0.exec)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver for `exec`, writing to `store`, calling `fns`, and sending through `send`.
    pub fn new(
        exec: Executor,
        store: Rc<dyn AsyncStore>,
        fns: Rc<MutationFns>,
        send: Sender,
    ) -> Self {
        Self(Rc::new(Inner {
            exec: RefCell::new(exec),
            store,
            fns,
            send,
            timer: RefCell::new(Timer::default()),
            queue: RefCell::new(VecDeque::new()),
            deferred: RefCell::new(Vec::new()),
            busy: Cell::new(false),
            ready_calls: RefCell::new(Vec::new()),
            ready_batches: RefCell::new(Vec::new()),
            aborts: RefCell::new(Aborts::default()),
            on_step_down: RefCell::new(None),
            on_signed_out: RefCell::new(None),
            await_sync: RefCell::new(None),
        }))
    }

    /// Called when the executor steps down (another leader fenced it out).
    pub fn on_step_down(&self, f: impl Fn(&TxError) + 'static) {
        *self.0.on_step_down.borrow_mut() = Some(Box::new(f));
    }

    /// Called when the user has signed out (answer and broadcast sent): the credentials are
    /// already forgotten here; the hook stops leading.
    pub fn on_signed_out(&self, f: impl Fn() + 'static) {
        *self.0.on_signed_out.borrow_mut() = Some(Box::new(f));
    }

    /// The app's `awaitSync(transaction)`: asked about each success
    /// ([`Command::AwaitSync`]); the transaction completes when what it returns resolves (a
    /// rejection is logged, and completes it too: the server has the change). Set it before
    /// the executor becomes leader.
    pub fn set_await_sync(&self, f: js_sys::Function) {
        *self.0.await_sync.borrow_mut() = Some(f);
    }

    /// Feeds one event (queued if the driver is mid-turn).
    pub fn dispatch(&self, event: Event) {
        self.dispatch_all(vec![event]);
    }

    /// Feeds events that arrived together: the executor handles them in one turn.
    pub fn dispatch_all(&self, events: Vec<Event>) {
        Inner::dispatch(&self.0, events);
    }

    /// Carries out commands the executor gave outside the driver (the leader handles
    /// [`Event::BecameLeader`] itself, inside the transaction that takes the outbox over), as
    /// if they came from a turn of its own.
    pub fn carry_out(&self, commands: Vec<Command>) {
        self.0.deferred.borrow_mut().extend(commands);
        Inner::turn(&self.0);
    }

    /// Reads the executor; `None` while it is at work (the app's code it calls, `beforeRetry`
    /// say, may call back in here).
    pub fn with_executor<R>(&self, f: impl FnOnce(&Executor) -> R) -> Option<R> {
        self.0.exec.try_borrow().ok().map(|exec| f(&exec))
    }

    /// Stops: the executor ignores everything from now on, running calls are aborted, and the
    /// timer is cleared.
    pub fn stop(&self) {
        self.dispatch(Event::Stop);
        self.0.timer.borrow_mut().clear();
        let running = std::mem::take(&mut *self.0.aborts.borrow_mut());
        running.abort_all();
    }
}

impl Inner {
    fn dispatch(this: &Rc<Self>, events: Vec<Event>) {
        this.queue.borrow_mut().extend(events);
        Self::turn(this);
    }

    /// Runs deferred commands and queued events until there are none, unless a turn is already
    /// running (it will get to them), then starts the turn's calls.
    fn turn(this: &Rc<Self>) {
        if this.busy.replace(true) {
            return;
        }
        loop {
            let mut commands = std::mem::take(&mut *this.deferred.borrow_mut());
            if commands.is_empty() {
                // Everything queued meanwhile goes in one turn.
                let next = std::mem::take(&mut *this.queue.borrow_mut());
                if next.is_empty() {
                    break;
                }
                commands = this.exec.borrow_mut().handle_all(now(), next);
            }
            for c in commands {
                Self::run(this, c);
            }
        }
        this.busy.set(false);
        Self::flush_calls(this);
    }

    fn run(this: &Rc<Self>, command: Command) {
        match command {
            Command::Write(batch) => {
                let weak = Rc::downgrade(this);
                let write = batch.id;
                let fut = this.store.write(batch);
                spawn_local(async move {
                    let result = fut.await;
                    let event = match result {
                        Ok(()) => Event::Written { write },
                        Err(error) => Event::WriteFailed { write, error },
                    };
                    dispatch_weak(&weak, event);
                });
            }
            Command::Call { tx, attempt } => this.ready_calls.borrow_mut().push((*tx, attempt)),
            Command::CallBatch { mutation_fn, calls } => {
                this.ready_batches.borrow_mut().push((mutation_fn, calls));
            }
            Command::SetTimer { at } => {
                let weak = Rc::downgrade(this);
                let delay = at.saturating_sub(now());
                this.timer
                    .borrow_mut()
                    .set(delay, move || dispatch_weak(&weak, Event::TimerFired));
            }
            Command::Send { to, msg } => (this.send)(to, msg),
            Command::Quarantine { key, .. } => spawn_local(this.store.quarantine(key)),
            Command::StepDown { error } => {
                if let Some(f) = this.on_step_down.borrow().as_ref() {
                    f(&error);
                }
            }
            Command::SignedOut => {
                this.fns.clear_credentials();
                if let Some(f) = this.on_signed_out.borrow().as_ref() {
                    f();
                }
            }
            Command::AwaitSync { tx } => {
                let hook = this.await_sync.borrow().clone();
                let weak = Rc::downgrade(this);
                spawn_local(async move {
                    if let Some(f) = hook {
                        let arg = crate::convert::to_js(&*tx).unwrap_or(JsValue::NULL);
                        let answer = match f.call1(&JsValue::NULL, &arg) {
                            Ok(v) if v.has_type::<js_sys::Promise>() => {
                                JsFuture::from(js_sys::Promise::from(v)).await
                            }
                            other => other,
                        };
                        if let Err(e) = answer {
                            let why = crate::convert::JsErrorInfo::from_js(&e);
                            let Some(this) = weak.upgrade() else { return };
                            (this.send)(
                                None,
                                Message::Diagnostic {
                                    code: outbox_shared::model::ErrorCode::Invalid,
                                    message: format!(
                                        "awaitSync({}) failed ({why}); it completes anyway: \
                                         the server has the change",
                                        tx.id
                                    ),
                                },
                            );
                        }
                    }
                    dispatch_weak(&weak, Event::Synced { id: tx.id });
                });
            }
        }
    }

    /// Starts every call made ready in this turn.
    fn flush_calls(this: &Rc<Self>) {
        let ready = std::mem::take(&mut *this.ready_calls.borrow_mut());
        let requests = std::mem::take(&mut *this.ready_batches.borrow_mut());
        if ready.is_empty() && requests.is_empty() {
            return;
        }
        let max_batch = this.exec.borrow().max_batch();
        let mut batches: Vec<(String, Calls)> = Vec::new();
        for (name, calls) in requests {
            if matches!(this.fns.route(&name), Route::Http(e) if e.batch) {
                batches.push((name, calls));
            } else {
                // Not a batching endpoint after all: one call each.
                for (tx, attempt) in calls {
                    Self::call_one(this, tx, attempt);
                }
            }
        }
        // Calls of a batching endpoint that the executor made one by one (it was not told the
        // function batches): those of this turn share requests.
        let mut loose: BTreeMap<String, Calls> = BTreeMap::new();
        for (tx, attempt) in ready {
            match this.fns.route(&tx.mutation_fn) {
                Route::Http(endpoint) if endpoint.batch => {
                    loose
                        .entry(tx.mutation_fn.clone())
                        .or_default()
                        .push((tx, attempt));
                }
                _ => Self::call_one(this, tx, attempt),
            }
        }
        batches.extend(loose);
        for (name, mut group) in batches {
            while !group.is_empty() {
                let rest = group.split_off(group.len().min(max_batch));
                Self::call_batch(this, name.clone(), group);
                group = rest;
            }
        }
    }

    /// The signal of a new call, and its number for [`Inner::call_done`].
    fn abort_signal(this: &Rc<Self>) -> (u64, Option<web_sys::AbortSignal>) {
        this.aborts.borrow_mut().start()
    }

    /// The call `number` has its outcome: stopping no longer aborts it.
    fn call_done(weak: &Weak<Self>, number: u64) {
        if let Some(inner) = weak.upgrade() {
            inner.aborts.borrow_mut().running.remove(&number);
        }
    }

    fn call_one(this: &Rc<Self>, tx: Transaction, attempt: u32) {
        let weak = Rc::downgrade(this);
        let fns = Rc::clone(&this.fns);
        let (number, signal) = Self::abort_signal(this);
        // An HTTP request starts here, as the turn ends, rather than when its task first runs.
        let started = match (fns.route(&tx.mutation_fn), &signal) {
            (Route::Http(_), Some(signal)) => fns
                .http_request(&tx)
                .map(|request| calls::start_fetch(&request, signal)),
            _ => None,
        };
        spawn_local(async move {
            let outcome = match (started, fns.route(&tx.mutation_fn), &signal) {
                (Some(started), _, _) => calls::http_outcome(started).await,
                (None, Route::Js(f), Some(signal)) => {
                    let lineage = fns.lineage();
                    calls::call_js(
                        f,
                        &tx,
                        attempt,
                        signal,
                        &fns.credentials(),
                        lineage.as_deref(),
                    )
                    .await
                }
                // No request for it (not an HTTP function after all).
                (None, Route::Unknown, _) | (None, Route::Http(_), Some(_)) => fns.unknown(&tx),
                (None, _, None) => network_error("could not make an AbortController"),
            };
            Self::call_done(&weak, number);
            dispatch_weak(
                &weak,
                Event::AttemptFinished {
                    id: tx.id,
                    attempt,
                    outcome,
                },
            );
        });
    }

    /// Sends a batch of calls to the HTTP function `name`: one request, or several when the
    /// batch is over the endpoint's bytes.
    fn call_batch(this: &Rc<Self>, name: String, mut group: Calls) {
        let txs: Vec<&Transaction> = group.iter().map(|(t, _)| t).collect();
        let Some(requests) = this.fns.http_batch_requests(&name, &txs) else {
            return;
        };
        for (request, n) in requests {
            let rest = group.split_off(n.min(group.len()));
            Self::send_batch(this, request, group);
            group = rest;
        }
    }

    /// Sends one batch request carrying `group`; its answer finishes their attempts.
    fn send_batch(this: &Rc<Self>, request: HttpRequest, group: Calls) {
        let weak = Rc::downgrade(this);
        let (number, signal) = Self::abort_signal(this);
        // The request starts here, as the turn ends, rather than when its task first runs.
        let started = signal
            .as_ref()
            .map(|signal| calls::start_fetch(&request, signal));
        spawn_local(async move {
            let ids: Vec<_> = group.iter().map(|(t, _)| t.id.clone()).collect();
            let outcomes = match started {
                Some(started) => match calls::answer(started).await {
                    Ok(answer) => batch_outcomes(&answer, &ids, now()),
                    Err(e) => ids.iter().map(|id| (id.clone(), e.outcome())).collect(),
                },
                None => ids
                    .iter()
                    .map(|id| (id.clone(), network_error("no AbortController")))
                    .collect(),
            };
            Self::call_done(&weak, number);
            // One event for the whole answer: one write and one broadcast for all of it.
            let finished = outcomes
                .into_iter()
                .zip(group.iter())
                .map(|((id, outcome), (_, attempt))| FinishedAttempt {
                    id,
                    attempt: *attempt,
                    outcome,
                })
                .collect();
            dispatch_weak(&weak, Event::AttemptsFinished { finished });
        });
    }
}

/// The abort controllers of the calls under way, by number: [`Driver::stop`] aborts them, and
/// each leaves when its call's outcome is in (kept until the term ended, a leader's grew by one
/// per call, and stopping aborted the signals of calls long finished).
#[derive(Debug, Default)]
struct Aborts {
    next: u64,
    running: BTreeMap<u64, web_sys::AbortController>,
}

impl Aborts {
    fn start(&mut self) -> (u64, Option<web_sys::AbortSignal>) {
        self.next += 1;
        let Ok(controller) = web_sys::AbortController::new() else {
            return (self.next, None);
        };
        let signal = controller.signal();
        self.running.insert(self.next, controller);
        (self.next, Some(signal))
    }

    fn abort_all(self) {
        for controller in self.running.into_values() {
            controller.abort();
        }
    }
}

fn dispatch_weak(weak: &Weak<Inner>, event: Event) {
    if let Some(inner) = weak.upgrade() {
        Inner::dispatch(&inner, vec![event]);
    }
}
