//! Offline-enabled or online-only, and the moves between them.
//!
//! A tab starts `connecting`. The first leader it hears on the channel (its answer to `hello`,
//! an announcement, a heartbeat) whose claim checks out (its proof lock is held, see
//! `outbox_shared::leadership`) makes it `offline-enabled`. When no leader can serve
//! it (no Web Locks, no IndexedDB, no BroadcastChannel, its worker failed, or no leader within
//! `leaderTimeoutMs`) it goes `online-only` and starts its own executor. A leader heard later
//! takes over: the tab's executor stops, and the tab core resends every unsettled transaction
//! to the leader (same ids, so nothing runs twice at a server that dedups by idempotency key).

use crate::errors::{Diagnostic, DiagnosticCode, Mode};
use crate::events::ClientEvent;
use crate::inner::Inner;
use crate::notify::{later_call_all, Topic};
use crate::online_only::LocalExecutor;
use outbox_runtime::clock::now;
use outbox_runtime::locks::claim_holds;
use outbox_runtime::timer::Interval;
use outbox_shared::model::Epoch;
use outbox_shared::protocol::{Envelope, Message};
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

impl Inner {
    /// Sets the mode and tells listeners; the first decision also lets `connect` resolve.
    pub fn set_mode(this: &Rc<Self>, mode: Mode, diagnostic: Option<Diagnostic>) {
        let previous = this.mode.replace(mode);
        *this.diagnostic.borrow_mut() = diagnostic.clone();
        if let Some(decided) = this.decided.borrow_mut().take() {
            // `connect` may have given up waiting (its future dropped): nothing to tell then.
            let _ = decided.send(());
        }
        if previous == mode {
            return;
        }
        this.emit(|| ClientEvent::Mode {
            mode: mode.as_str().to_owned(),
            reason: diagnostic.as_ref().map(|d| d.code.as_str().to_owned()),
        });
        let listeners = this.subs.borrow().of(&Topic::Mode);
        if !listeners.is_empty() {
            let diag = diagnostic.map_or(JsValue::NULL, |d| d.to_js());
            this.later([later_call_all(
                listeners,
                vec![JsValue::from_str(mode.as_str()), diag],
            )]);
        }
    }

    /// A message from the channel.
    pub fn on_channel(this: &Rc<Self>, env: Envelope) {
        if this.closed.get() {
            return;
        }
        if this.mode.get() == Mode::OnlineOnly {
            // The tab's own executor serves it; other tabs' traffic is not for it. A leader's
            // word is, once its claim checks out.
            if let Message::Leader { epoch } | Message::Heartbeat { epoch, .. } = env.body {
                Self::check_before_hand_over(this, epoch, env);
            }
            return;
        }
        let out = this.core.borrow_mut().receive(now(), env);
        Self::apply(this, out);
    }

    /// A verified leader serves the tab: the first one decides the mode.
    pub fn leader_verified(this: &Rc<Self>) {
        if this.mode.get() == Mode::Connecting {
            this.leader_timer.borrow_mut().clear();
            Self::set_mode(this, Mode::OfflineEnabled, None);
            Self::watch_leader(this);
        }
    }

    /// While a leader serves the tab, checks twice per `leaderTimeoutMs` that it is still
    /// there ([`Inner::check_leader`]).
    fn watch_leader(this: &Rc<Self>) {
        let weak = Rc::downgrade(this);
        let every = (this.options.leader_timeout_ms / 2).max(50);
        *this.leader_watch.borrow_mut() = Interval::new(every, move || {
            if let Some(inner) = weak.upgrade() {
                Self::check_leader(&inner);
            }
        });
    }

    /// The leader went away (closed without a word, or resigned) and none followed within
    /// `leaderTimeoutMs`: a tab whose own worker waits to take over waits for it; one with no
    /// worker, or a failed one (its leader was another tab's), would wait for good, every
    /// change it makes shown and never sent. If it has mutation functions of its own
    /// (`mutationFns` or `http` in `connect`), it goes online-only, as if it had found no leader
    /// when it connected: its own executor sends its unsettled transactions (the same ids: a
    /// leader that has them in its outbox later sends nothing twice to a server that dedups),
    /// and a leader heard later takes over again.
    fn check_leader(this: &Rc<Self>) {
        if this.closed.get() || this.mode.get() != Mode::OfflineEnabled {
            drop(this.leader_watch.borrow_mut().take());
            return;
        }
        let can_take_over = this.worker.borrow().is_some() && !this.worker_failed.get();
        let timeout = u64::from(this.options.leader_timeout_ms);
        // A tab given no mutation function of its own could send nothing itself: it waits.
        if can_take_over || this.fns.is_empty() || !this.core.borrow().leader_gone(now(), timeout) {
            return;
        }
        drop(this.leader_watch.borrow_mut().take());
        this.core.borrow_mut().forget_leader();
        let message = format!(
            "the leader went away and none followed within {timeout} ms; this tab has no \
             worker of its own to take over"
        );
        Self::set_mode(
            this,
            Mode::OnlineOnly,
            Some(Diagnostic::new(DiagnosticCode::NoLeader, message)),
        );
        LocalExecutor::start(this);
        Self::pump(this);
    }

    /// Online-only, a leader speaks: if its proof lock is held, hand over to it, then let the
    /// tab core take in its message (the core checks the claim again, cheaply).
    fn check_before_hand_over(this: &Rc<Self>, epoch: Epoch, env: Envelope) {
        if this.checking_leader.replace(true) {
            return; // one check at a time; the leader speaks again at its next heartbeat
        }
        let holds = claim_holds(&this.scope, epoch, &env.from);
        let weak = Rc::downgrade(this);
        spawn_local(async move {
            let held = holds.await;
            let Some(this) = weak.upgrade() else { return };
            this.checking_leader.set(false);
            if held && this.mode.get() == Mode::OnlineOnly && !this.closed.get() {
                Self::hand_over(&this);
                Self::on_channel(&this, env);
            }
        });
    }

    /// A leader appeared while the tab ran online-only: stop the tab's executor and let the
    /// tab core resend everything unsettled to the leader.
    pub(crate) fn hand_over(this: &Rc<Self>) {
        let local = this.local.borrow_mut().take();
        if let Some(local) = local {
            local.stop();
        }
        this.clear_incoming();
        this.core.borrow_mut().forget_leader();
        Self::set_mode(this, Mode::OfflineEnabled, None);
        Self::watch_leader(this);
    }

    /// No leader can serve the tab (decided while connecting; once a leader serves, a failing
    /// worker of this tab changes nothing until that leader goes: see `check_leader`).
    pub fn go_online_only(this: &Rc<Self>, diagnostic: Diagnostic) {
        if this.closed.get() || this.mode.get() != Mode::Connecting {
            this.emit(|| ClientEvent::Diagnostic {
                code: diagnostic.code.as_str().to_owned(),
                message: diagnostic.message.clone(),
            });
            Self::pump(this);
            return;
        }
        this.leader_timer.borrow_mut().clear();
        Self::set_mode(this, Mode::OnlineOnly, Some(diagnostic));
        LocalExecutor::start(this);
        Self::pump(this);
    }
}
