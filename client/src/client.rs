//! `OutboxClient`: what the app holds after `connect`.

use crate::building::{Action, Building, OutboxTransaction};
use crate::collection::{parse_strategy, Collection, CollectionDef};
use crate::errors::{invalid, Mode};
use crate::handle::Deferred;
use crate::inner::Inner;
use crate::notify::{bound_method, call_listener, unsubscribe_fn, Topic};
use crate::rowdata::to_json;
use js_sys::{Function, Promise};
use outbox_runtime::convert::js_error;
use outbox_shared::model::TransactionId;
use outbox_shared::protocol::{Message, Request};
use outbox_shared::tab::ConflictStrategy;
use outbox_shared::ErrorCode;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A tab's connection to Outbox.
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct OutboxClient(pub(crate) Rc<Inner>);

/// Why `drain()` rejects once the client is closed.
const DRAIN_CLOSED: &str =
    "drain(): this OutboxClient was closed (with a leader, its transactions stay in the outbox)";

/// Why a transaction's promises reject once the client is closed, with a leader ...
const CLOSED_WITH_LEADER: &str = "this OutboxClient was closed before the transaction settled; \
    it stays in the outbox and the leader goes on with it";
/// ... and online-only.
const CLOSED_ONLINE_ONLY: &str = "this OutboxClient was closed before the transaction \
    settled, online-only: it had no outbox to stay in and is dropped (a call under way may \
    still reach the server)";

/// A field of an options object, `None` when absent, `undefined` or `null`.
fn field(options: &JsValue, name: &str) -> Option<JsValue> {
    if !options.is_object() {
        return None;
    }
    js_sys::Reflect::get(options, &JsValue::from_str(name))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn optional_string(options: &JsValue, name: &str, what: &str) -> Result<Option<String>, JsValue> {
    match field(options, name).map(|v| v.as_string()) {
        None => Ok(None),
        Some(Some(s)) if !s.is_empty() => Ok(Some(s)),
        Some(_) => Err(invalid(format!(
            "{what}: {name} must be a non-empty string"
        ))),
    }
}

impl OutboxClient {
    fn subscribe(&self, topic: Topic, cb: Function) -> Function {
        let id = self.0.subs.borrow_mut().add(topic.clone(), cb);
        let weak = Rc::downgrade(&self.0);
        unsubscribe_fn(move || {
            if let Some(inner) = weak.upgrade() {
                inner.subs.borrow_mut().remove(&topic, id);
            }
        })
    }
}

#[wasm_bindgen]
impl OutboxClient {
    /// `'offline-enabled'` while a leader serves this tab, `'online-only'` when none can.
    #[wasm_bindgen(getter, unchecked_return_type = "OutboxMode")]
    pub fn mode(&self) -> String {
        self.0.mode.get().as_str().to_owned()
    }

    /// Why the tab is online-only (`{code, message}`), else `null`.
    #[wasm_bindgen(getter, unchecked_return_type = "OutboxDiagnostic | null")]
    pub fn diagnostic(&self) -> JsValue {
        self.0
            .diagnostic
            .borrow()
            .as_ref()
            .map_or(JsValue::NULL, |d| d.to_js())
    }

    /// Whether this tab's own (dedicated) worker is the leader.
    #[wasm_bindgen(getter, js_name = isLeaderTab)]
    pub fn is_leader_tab(&self) -> bool {
        self.0.leader_tab.get()
    }

    /// The last sequence number of the server's change feed this tab has applied (0 before
    /// any; collections with `sync: 'leader'`).
    #[wasm_bindgen(getter, js_name = feedPosition)]
    pub fn feed_position(&self) -> f64 {
        self.0.core.borrow().feed_applied() as f64
    }

    /// The leader's epoch, once one is known (offline-enabled mode).
    #[wasm_bindgen(getter, js_name = leaderEpoch)]
    pub fn leader_epoch(&self) -> Option<f64> {
        if self.0.mode.get() != Mode::OfflineEnabled {
            return None;
        }
        self.0.core.borrow().leader().map(|e| e.0 as f64)
    }

    /// The channel scope: `app`, or `app:scope`.
    #[wasm_bindgen(getter)]
    pub fn scope(&self) -> String {
        self.0.scope.clone()
    }

    /// What this tab refused to believe on the channel, by reason: messages that were not text,
    /// too large, malformed, of an unknown version, for another app or of an unknown kind;
    /// late news from deposed leaders (`stale`); and messages that spoke for a leader without
    /// being it (`forged`: refuted claims of leadership, leader-only messages from others).
    #[wasm_bindgen(getter, js_name = messageStats, unchecked_return_type = "MessageStats")]
    pub fn message_stats(&self) -> JsValue {
        let drops = self
            .0
            .channel
            .borrow()
            .as_ref()
            .map(|c| c.drops())
            .unwrap_or_default();
        let core = self.0.core.borrow();
        let out = js_sys::Object::new();
        for (name, n) in [
            ("notText", drops.not_text),
            ("tooLarge", drops.too_large),
            ("malformed", drops.malformed),
            ("unsupported", drops.unsupported),
            ("foreign", drops.foreign),
            ("unknownKind", drops.unknown_kind),
            ("stale", core.stale()),
            ("forged", core.forged()),
        ] {
            let _ = js_sys::Reflect::set(&out, &name.into(), &JsValue::from(n as f64));
        }
        out.into()
    }

    /// This tab's context id on the channel.
    #[wasm_bindgen(getter, js_name = clientId)]
    pub fn client_id(&self) -> String {
        self.0.me.0.clone()
    }

    /// Calls `cb(mode, diagnostic)` when the mode changes; returns `unsubscribe()`.
    #[wasm_bindgen(js_name = onModeChange, unchecked_return_type = "() => void")]
    pub fn on_mode_change(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "(mode: OutboxMode, diagnostic: OutboxDiagnostic | null) => void"
        )]
        cb: Function,
    ) -> Function {
        self.subscribe(Topic::Mode, cb)
    }

    /// Calls `cb({epoch, isLeaderTab})` when a new leader serves the tab, or this tab's worker
    /// starts or stops leading; returns `unsubscribe()`.
    #[wasm_bindgen(js_name = onLeadershipChange, unchecked_return_type = "() => void")]
    pub fn on_leadership_change(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "(leadership: { epoch: number, isLeaderTab: boolean }) => void"
        )]
        cb: Function,
    ) -> Function {
        self.subscribe(Topic::Leadership, cb)
    }

    /// Calls `cb(event)` for everything that happens, for logging and metrics; returns
    /// `unsubscribe()`.
    #[wasm_bindgen(js_name = onEvent, unchecked_return_type = "() => void")]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: OutboxEvent) => void")] cb: Function,
    ) -> Function {
        self.subscribe(Topic::Events, cb)
    }

    /// Defines a collection (with options), or looks up one already defined (without).
    pub fn collection(
        &self,
        name: String,
        #[wasm_bindgen(unchecked_param_type = "CollectionOptions")] options: Option<JsValue>,
    ) -> Result<Collection, JsValue> {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let inner = &self.0;
        inner.ensure_open()?;
        let what = format!("collection({name:?})");
        if name.is_empty() {
            return Err(invalid("collection(): the name must be a non-empty string"));
        }
        let existing = inner.collections.borrow().get(&name).cloned();
        if !options.is_object() {
            return existing
                .map(|def| Collection { inner: Rc::clone(inner), def })
                .ok_or_else(|| {
                    invalid(format!(
                        "unknown collection {name:?}: define it first with client.collection({name:?}, {{ key: 'id' }})"
                    ))
                });
        }
        let key_given = optional_string(&options, "key", &what)?;
        let strategy_given = field(&options, "strategy");
        let strategy = parse_strategy(strategy_given.clone(), &what)?;
        let mutation_fn_given = optional_string(&options, "mutationFn", &what)?;
        let merge_fn = field(&options, "conflict").and_then(|c| c.dyn_into::<Function>().ok());
        let conflict = if merge_fn.is_some() {
            Some(ConflictStrategy::Merge)
        } else {
            match optional_string(&options, "conflict", &what)?.as_deref() {
                None => None,
                Some("rebase") => Some(ConflictStrategy::Rebase),
                Some("server-wins") => Some(ConflictStrategy::ServerWins),
                Some("hold") => Some(ConflictStrategy::Hold),
                Some(other) => {
                    return Err(invalid(format!(
                        "{what}: conflict must be 'rebase', 'server-wins', 'hold' or a merge \
                         function, not {other:?}"
                    )))
                }
            }
        };
        let sync = field(&options, "sync");
        let conflict_given = field(&options, "conflict");
        if let Some(def) = existing {
            // Options left out take the first definition's (a left-out `key` was taken for
            // `'id'`, and refused against a first `{ key: 'uuid' }`); given, they must be the
            // same (the same string, or the very same source object or merge function).
            let same = |given: &Option<JsValue>, first: &Option<JsValue>| match given {
                None => true,
                Some(g) => first.as_ref().is_some_and(|f| js_sys::Object::is(g, f)),
            };
            if key_given.as_ref().is_some_and(|k| *k != def.key_field)
                || (strategy_given.is_some() && def.strategy != strategy)
                || mutation_fn_given
                    .as_ref()
                    .is_some_and(|m| *m != def.mutation_fn)
                || !same(&sync, &def.sync)
                || !same(&conflict_given, &def.conflict)
            {
                return Err(invalid(format!(
                    "{what} is already defined with other options"
                )));
            }
            return Ok(Collection {
                inner: Rc::clone(inner),
                def,
            });
        }
        let def = Rc::new(CollectionDef {
            name: name.clone(),
            key_field: key_given.unwrap_or_else(|| "id".into()),
            strategy,
            mutation_fn: mutation_fn_given.unwrap_or_else(|| name.clone()),
            sync_cleanup: RefCell::new(None),
            sync: sync.clone(),
            conflict: conflict_given,
        });
        inner
            .collections
            .borrow_mut()
            .insert(name.clone(), Rc::clone(&def));
        inner.core.borrow_mut().define_collection(&name);
        if let Some(f) = merge_fn {
            inner.merge_fns.borrow_mut().insert(name.clone(), f);
        }
        if let Some(conflict) = conflict {
            let out = inner.core.borrow_mut().set_conflict(&name, conflict);
            Inner::apply(inner, out);
        }
        if let Some(sync) = sync {
            if let Err(e) = crate::sync::start(inner, &def, &sync) {
                inner.collections.borrow_mut().remove(&name);
                return Err(e);
            }
        }
        Ok(Collection {
            inner: Rc::clone(inner),
            def,
        })
    }

    /// Starts a transaction of several changes: `client.transaction({ mutationFn })
    /// .mutate(() => { todos.insert(…); lists.update(…) })`.
    pub fn transaction(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TransactionOptions")] options: Option<JsValue>,
    ) -> Result<OutboxTransaction, JsValue> {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        self.0.ensure_open()?;
        let what = "transaction()";
        let mutation_fn = optional_string(&options, "mutationFn", what)?;
        let strategy = parse_strategy(field(&options, "strategy"), what)?;
        let auto_commit = field(&options, "autoCommit").is_none_or(|v| v.as_bool() != Some(false));
        let metadata = field(&options, "metadata")
            .map(|m| to_json(&m, "metadata"))
            .transpose()
            .map_err(|e| invalid(format!("{what}: {e}")))?;
        Ok(OutboxTransaction {
            inner: Rc::clone(&self.0),
            building: Building::new(mutation_fn, strategy, auto_commit, metadata),
        })
    }

    /// A reusable action: `const addTodo = client.createAction({ mutationFn, onMutate: (vars)
    /// => todos.insert(vars) })`, then `addTodo(vars)` returns a transaction handle.
    #[wasm_bindgen(js_name = createAction, unchecked_return_type = "(vars: any) => TransactionHandle")]
    pub fn create_action(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActionOptions")] options: JsValue,
    ) -> Result<Function, JsValue> {
        let what = "createAction()";
        let on_mutate = field(&options, "onMutate")
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or_else(|| invalid(format!("{what}: onMutate must be a function")))?;
        let action = Action {
            inner: Rc::clone(&self.0),
            mutation_fn: optional_string(&options, "mutationFn", what)?,
            strategy: parse_strategy(field(&options, "strategy"), what)?,
            on_mutate,
        };
        Ok(bound_method(action.into(), "run"))
    }

    /// Every transaction this tab knows of (its own and other tabs'), unsettled or failed,
    /// with attempts.
    #[wasm_bindgen(unchecked_return_type = "OutboxTransactionRecord[]")]
    pub fn transactions(&self) -> js_sys::Array {
        self.0.transactions_js()
    }

    /// Calls `cb(transactions)` whenever one changes; returns `unsubscribe()`.
    #[wasm_bindgen(js_name = subscribeTransactions, unchecked_return_type = "() => void")]
    pub fn subscribe_transactions(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(transactions: OutboxTransactionRecord[]) => void")]
        cb: Function,
    ) -> Function {
        self.subscribe(Topic::Transactions, cb)
    }

    /// Every transaction in the outbox, dead letters included, as the leader has them.
    #[wasm_bindgen(js_name = peekOutbox, unchecked_return_type = "Promise<OutboxTransactionRecord[]>")]
    pub fn peek_outbox(&self) -> Promise {
        Inner::request(&self.0, "peekOutbox", Request::Peek)
    }

    /// Removes a transaction that is not running (a dead letter, say); its changes roll back
    /// and its handle fails as `OUTBOX_REMOVED`. A transaction the leader refused (it never
    /// was in the outbox) is dismissed from this tab's `transactions()`.
    #[wasm_bindgen(js_name = removeFromOutbox, unchecked_return_type = "Promise<void>")]
    pub fn remove_from_outbox(&self, id: String) -> Promise {
        let id = TransactionId(id);
        if self.0.core.borrow().is_local_failure(&id) {
            // Never in the outbox (the leader refused it): only this tab has it to dismiss.
            let out = self.0.core.borrow_mut().removed(&id);
            Inner::apply(&self.0, out);
            return Promise::resolve(&JsValue::UNDEFINED);
        }
        Inner::request(&self.0, "removeFromOutbox", Request::Remove { id })
    }

    /// Puts a dead letter back in line with a fresh retry budget. One that was never in the
    /// leader's outbox (the leader refused it, or this tab's own executor failed it while the
    /// tab was online-only) is submitted to the leader again, as the same transaction.
    #[wasm_bindgen(js_name = retryDeadLetter, unchecked_return_type = "Promise<void>")]
    pub fn retry_dead_letter(&self, id: String) -> Promise {
        let id = TransactionId(id);
        if let Err(e) = self.0.ensure_open() {
            return Promise::reject(&e);
        }
        let retried = self
            .0
            .core
            .borrow_mut()
            .retry_local_failure(&id, outbox_runtime::clock::now());
        if let Some(out) = retried {
            // No leader has it to put back in line: it is submitted again.
            Inner::apply(&self.0, out);
            return Promise::resolve(&JsValue::UNDEFINED);
        }
        Inner::request(&self.0, "retryDeadLetter", Request::RetryDeadLetter { id })
    }

    /// `{size, bytes, inFlight, deadLetters}` of the outbox.
    #[wasm_bindgen(js_name = queueStats, unchecked_return_type = "Promise<QueueStats>")]
    pub fn queue_stats(&self) -> Promise {
        Inner::request(&self.0, "queueStats", Request::Stats)
    }

    /// Signs the user out of this scope: `{ pending: 'keep' }` keeps the outbox (dead letters
    /// too) for the same user's next sign-in, `{ pending: 'discard' }` deletes it. Resolves with
    /// what the outbox held (`{pending, deadLetters, discarded}`; ask `queueStats()` first to
    /// decide). The leader forgets its credentials and stops; every tab of the scope closes its
    /// client (a `signed_out` event) and connects again for the next user.
    #[wasm_bindgen(js_name = signOut, unchecked_return_type = "Promise<SignOutResult>")]
    pub fn sign_out(
        &self,
        #[wasm_bindgen(unchecked_param_type = "{ pending: 'keep' | 'discard' }")] options: JsValue,
    ) -> Promise {
        let pending = field(&options, "pending").and_then(|v| v.as_string());
        let discard = match pending.as_deref() {
            Some("keep") => false,
            Some("discard") => true,
            _ => {
                return Promise::reject(&invalid(
                    "signOut needs { pending: 'keep' } or { pending: 'discard' }",
                ))
            }
        };
        Inner::request(&self.0, "signOut", Request::SignOut { discard })
    }

    /// Gives the leader credentials (headers added to every call, e.g. `{ authorization:
    /// 'Bearer …' }`), as after a sign-in or when `getCredentials` is not used. Kept in the
    /// leader's memory only; an outbox paused by a 401 goes on. Throws `OUTBOX_INVALID` for
    /// anything but an object of strings.
    #[wasm_bindgen(js_name = provideCredentials)]
    pub fn provide_credentials(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string>")] headers: JsValue,
    ) -> Result<(), JsValue> {
        let headers = crate::inner::credential_headers(&headers).map_err(invalid)?;
        let epoch = self.0.core.borrow().leader();
        if let Some(epoch) = epoch {
            Inner::send(&self.0, Message::Credentials { epoch, headers });
        }
        Ok(())
    }

    /// Says the network is back: scheduled retries run now.
    #[wasm_bindgen(js_name = notifyOnline)]
    pub fn notify_online(&self) {
        if !self.0.closed.get() {
            Inner::send(&self.0, Message::NotifyOnline);
        }
    }

    /// Whether the app should hold back new work: this many unsettled transactions (every
    /// tab's) reach `backOffThreshold`.
    #[wasm_bindgen(js_name = shouldBackOff)]
    pub fn should_back_off(&self) -> bool {
        let core = self.0.core.borrow();
        let seen = core.view().pending_ids().count();
        let told = core.leader_pending().map_or(0, |n| n as usize);
        seen.max(told) >= self.0.options.back_off_threshold as usize
    }

    /// Resolves when every transaction of this tab has settled; rejects with `OUTBOX_INVALID`
    /// if the client is closed first (its transactions stay in the outbox, but this client
    /// hears no more of them).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn drain(&self) -> Promise {
        if self.0.closed.get() {
            return Promise::reject(&invalid(DRAIN_CLOSED));
        }
        let idle = self.0.core.borrow().own_unsettled() == 0 && self.0.building.borrow().is_none();
        if idle {
            return Promise::resolve(&JsValue::UNDEFINED);
        }
        let waiting = Deferred::new();
        let promise = waiting.promise();
        self.0.drains.borrow_mut().push(waiting);
        promise
    }

    /// Disconnects: stops listening, stops the tab's worker or executor, rejects requests
    /// waiting for answers and the promises of transactions not settled yet
    /// (`OUTBOX_CLOSED`: with a leader they stay in the outbox; online-only they are
    /// dropped), and stops sync sources. The client cannot be used afterwards.
    pub fn close(&self) {
        let inner = &self.0;
        if inner.closed.replace(true) {
            return;
        }
        inner.leader_timer.borrow_mut().clear();
        drop(inner.leader_watch.borrow_mut().take());
        Inner::flush_posts(inner);
        drop(inner.channel.borrow_mut().take());
        let local = inner.local.borrow_mut().take();
        if let Some(local) = local {
            local.stop();
        }
        drop(inner.worker.borrow_mut().take());
        drop(inner.page.borrow_mut().take());
        if let Some(decided) = inner.decided.borrow_mut().take() {
            let _ = decided.send(());
        }
        let rejected = inner
            .requests
            .borrow_mut()
            .reject_all("this OutboxClient was closed");
        inner.later(rejected);
        let drains = std::mem::take(&mut *inner.drains.borrow_mut());
        let error = invalid(DRAIN_CLOSED);
        inner.later(drains.iter().filter_map(|d| d.reject_later(error.clone())));
        // Handles still waiting would wait for good: nothing reaches a closed client.
        let handles: Vec<_> = inner.handles.borrow_mut().drain().map(|(_, h)| h).collect();
        let why = if inner.mode.get() == Mode::OnlineOnly {
            CLOSED_ONLINE_ONLY
        } else {
            CLOSED_WITH_LEADER
        };
        let error: JsValue = js_error(ErrorCode::Closed, why).into();
        let mut settle = Vec::new();
        for h in handles {
            h.closed(&error, &mut settle);
        }
        inner.later(settle);
        let cleanups: Vec<Function> = inner
            .collections
            .borrow()
            .values()
            .filter_map(|d| d.sync_cleanup.borrow_mut().take())
            .collect();
        inner.later([Box::new(move || {
            for f in &cleanups {
                call_listener(f, &[]);
            }
        }) as crate::notify::Later]);
        Inner::pump(inner);
    }
}
