//! The event loop of one simulated run.

use super::check;
use super::server::{Faults, Server};
use super::tab::{Tab, SCOPE};
use super::{Knobs, Report};
use outbox_shared::executor::{
    AttemptOutcome, Command, Event, Executor, ExecutorConfig, FinishedAttempt,
};
use outbox_shared::model::{ClientId, Epoch, Transaction, TransactionId, TransactionState};
use outbox_shared::protocol::{Envelope, Message};
use outbox_shared::retry::{AttemptError, RandomSource, SplitMix64};
use outbox_shared::store::{MemOutboxStore, StoreError, WriteBatch, WriteId};
use std::collections::{BTreeMap, HashMap};

/// Faults, crashes and new transactions stop at this virtual time; then everything drains.
const FAULT_PHASE_MS: u64 = 4_000;
/// A run that has not drained by then has a stuck transaction.
const LIMIT_MS: u64 = FAULT_PHASE_MS + 30 * 60 * 1000;
const MAX_CRASHES: u64 = 6;

#[derive(Debug)]
enum Ev {
    Create {
        tab: usize,
    },
    ToLeaders {
        from: usize,
        msg: Message,
    },
    /// A tab's message held for one frozen leader.
    ToLeader {
        gen: u64,
        from: usize,
        msg: Message,
    },
    ToTab {
        tab: usize,
        env: Envelope,
    },
    WriteDone {
        gen: u64,
        write: WriteId,
    },
    WriteResult {
        gen: u64,
        write: WriteId,
        result: Result<(), StoreError>,
    },
    ServerRecv {
        tx: Box<Transaction>,
    },
    /// A batch request reaching the server.
    ServerRecvBatch {
        txs: Vec<Transaction>,
    },
    /// The answer to a batch request: every call's outcome at once.
    Replies {
        gen: u64,
        finished: Vec<(TransactionId, u32, AttemptOutcome)>,
    },
    Reply {
        gen: u64,
        id: TransactionId,
        attempt: u32,
        outcome: AttemptOutcome,
    },
    Timer {
        gen: u64,
        token: u64,
    },
    Crash,
    Elect,
    Wake {
        gen: u64,
    },
    QuotaToggle,
}

#[derive(Debug, PartialEq, Eq)]
enum Life {
    Alive,
    Frozen,
    Dead,
}

struct Leader {
    exec: Executor,
    life: Life,
    writes: HashMap<WriteId, WriteBatch>,
    timer_token: u64,
    /// Events held while frozen, delivered on waking.
    inbox: Vec<Ev>,
    /// Its calls and batch requests whose answers it has not yet been given, by the attempts
    /// each carries.
    requests: Vec<Vec<(TransactionId, u32)>>,
}

pub(super) struct World {
    seed: u64,
    rng: SplitMix64,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    /// Per (sender, receiver) link: the last delivery time, so each link stays in order.
    links: HashMap<(i64, i64), u64>,
    pub store: MemOutboxStore,
    leaders: BTreeMap<u64, Leader>,
    /// The leader holding the lock (a frozen one still holds it until another steals it).
    current: Option<u64>,
    pub tabs: Vec<Tab>,
    pub server: Server,
    faults: Faults,
    keys: u64,
    max_concurrency: usize,
    /// Transactions per batch request, at most.
    max_batch: usize,
    /// Whether the `sync` function batches (`poison` never does).
    batching: bool,
    p_crash_hook: f64,
    p_freeze: f64,
    /// The epoch of the write that turned each transaction into a tombstone.
    pub completed_at_epoch: HashMap<TransactionId, Epoch>,
    pub violations: Vec<String>,
    pub report: Report,
    trace: Vec<String>,
}

/// Runs one seed and checks every invariant; `Err` carries a replayable failure report.
pub fn run(seed: u64, knobs: &Knobs) -> Result<Report, String> {
    let mut w = World::new(seed, knobs);
    w.run();
    let mut problems = std::mem::take(&mut w.violations);
    let mut report = std::mem::take(&mut w.report);
    problems.extend(check::invariants(&w, &mut report));
    w.report = report;
    if problems.is_empty() {
        return Ok(w.report);
    }
    let keep = if std::env::var_os("SIM_TRACE").is_some() {
        usize::MAX
    } else {
        40
    };
    let tail: Vec<&String> = w.trace.iter().rev().take(keep).collect();
    let tail: Vec<&str> = tail.into_iter().rev().map(String::as_str).collect();
    Err(format!(
        "simulation seed {seed} failed:\n  - {}\nreplay: SIM_SEED={seed} cargo test -p outbox-shared --test simulation -- --nocapture\nlast events:\n{}",
        problems.join("\n  - "),
        tail.join("\n")
    ))
}

impl World {
    fn new(seed: u64, knobs: &Knobs) -> Self {
        let mut rng = SplitMix64::new(seed);
        let faults = Faults {
            p_unavailable: rng.next_f64() * 0.3,
            p_drop_reply: rng.next_f64() * 0.15,
            max_delay: rng.below(40),
        };
        let mut store = MemOutboxStore::new();
        store.unfenced = knobs.unfenced;
        let mut w = World {
            seed,
            keys: 2 + rng.below(6),
            max_concurrency: 1 + rng.below(8) as usize,
            max_batch: 1 + rng.below(5) as usize,
            batching: rng.chance(0.5),
            p_crash_hook: 0.002 + rng.next_f64() * 0.02,
            p_freeze: 0.4,
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            links: HashMap::new(),
            store,
            leaders: BTreeMap::new(),
            current: None,
            tabs: Vec::new(),
            server: Server::default(),
            faults,
            completed_at_epoch: HashMap::new(),
            violations: Vec::new(),
            report: Report::default(),
            trace: Vec::new(),
        };
        let tabs = 2 + w.rng.below(3) as usize;
        for t in 0..tabs {
            w.tabs.push(Tab::new(t));
            let hello = w.tabs[t].start();
            w.send_from_tab(t, hello);
            for _ in 0..5 + w.rng.below(20) {
                let at = w.rng.below(FAULT_PHASE_MS);
                w.at(at, Ev::Create { tab: t });
            }
        }
        for _ in 0..w.rng.below(4) {
            let at = w.rng.below(FAULT_PHASE_MS);
            w.at(at, Ev::Crash);
        }
        if w.rng.chance(0.3) {
            for _ in 0..2 {
                let at = w.rng.below(FAULT_PHASE_MS);
                w.at(at, Ev::QuotaToggle);
            }
        }
        w.at(0, Ev::Elect);
        w
    }

    fn at(&mut self, time: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((time.max(self.now), self.seq), ev);
    }

    /// Schedules a delivery on a link, keeping the link first-in first-out.
    fn deliver(&mut self, link: (i64, i64), ev: Ev) {
        let t = (self.now + self.rng.below(3)).max(self.links.get(&link).copied().unwrap_or(0));
        self.links.insert(link, t);
        self.at(t, ev);
    }

    fn send_from_tab(&mut self, tab: usize, msgs: Vec<Message>) {
        for msg in msgs {
            self.deliver((tab as i64, -1), Ev::ToLeaders { from: tab, msg });
        }
    }

    fn faulty(&self) -> bool {
        self.now < FAULT_PHASE_MS
    }

    fn log(&mut self, line: String) {
        if self.trace.len() > 4000 && std::env::var_os("SIM_TRACE").is_none() {
            self.trace.drain(..2000);
        }
        self.trace.push(format!("{:>7} {line}", self.now));
    }

    fn run(&mut self) {
        while let Some(((t, _), ev)) = self.queue.pop_first() {
            if t > LIMIT_MS {
                self.violations
                    .push(format!("still busy at {LIMIT_MS} virtual ms"));
                break;
            }
            self.now = t;
            self.step(ev);
        }
        self.report.virtual_ms = self.now;
        self.report.transactions = self.tabs.iter().map(|t| t.created.len() as u64).sum();
        self.report.server_requests = self.server.requests.len() as u64;
        let _ = self.seed;
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Create { tab } => {
                let keys = self.keys;
                let now = self.now;
                let (id, msgs) = self.tabs[tab].create(&mut self.rng, keys, now);
                self.log(format!("{} creates {id}", self.tabs[tab].id()));
                self.send_from_tab(tab, msgs);
            }
            Ev::ToLeaders { from, msg } => {
                let gens: Vec<u64> = self
                    .leaders
                    .iter()
                    .filter(|(_, l)| l.life != Life::Dead)
                    .map(|(g, _)| *g)
                    .collect();
                for gen in gens {
                    self.step(Ev::ToLeader {
                        gen,
                        from,
                        msg: msg.clone(),
                    });
                }
            }
            Ev::ToLeader {
                gen,
                from,
                msg: Message::Submit { epoch, txs },
            } if txs.len() > 1 => {
                // A burst of submits in one message is accepted one by one, in order.
                for tx in txs {
                    self.step(Ev::ToLeader {
                        gen,
                        from,
                        msg: Message::Submit {
                            epoch,
                            txs: vec![tx],
                        },
                    });
                }
            }
            Ev::ToLeader { gen, from, msg } => {
                let event = match &msg {
                    Message::Hello => {
                        // Answered like the worker's glue does: with who leads.
                        let epoch = self.leaders.get(&gen).map(|l| l.exec.epoch());
                        if let (Some(epoch), Some(Life::Alive)) =
                            (epoch, self.leaders.get(&gen).map(|l| &l.life))
                        {
                            self.run_commands(
                                gen,
                                vec![Command::Send {
                                    to: Some(self.tabs[from].id().clone()),
                                    msg: Message::Leader { epoch },
                                }],
                            );
                        }
                        return;
                    }
                    Message::SnapshotRequest => Event::SnapshotRequested {
                        from: self.tabs[from].id().clone(),
                    },
                    Message::Submit { txs, epoch } => {
                        // Fanned out and handled in one turn, like the worker's glue does.
                        let events = Event::submitted(self.tabs[from].id(), *epoch, txs.clone());
                        self.feed_or_hold(gen, events, || Ev::ToLeader { gen, from, msg });
                        return;
                    }
                    _ => return,
                };
                self.feed_or_hold(gen, vec![event], || Ev::ToLeader { gen, from, msg });
            }
            Ev::ToTab { tab, env } => {
                let now = self.now;
                let msgs = self.tabs[tab].receive(now, env);
                let resends = msgs
                    .iter()
                    .filter(|m| matches!(m, Message::Submit { .. }))
                    .count();
                if resends > 0 {
                    self.log(format!("{} resends {resends}", self.tabs[tab].id()));
                }
                self.send_from_tab(tab, msgs);
            }
            Ev::WriteDone { gen, write } => self.write_done(gen, write),
            Ev::WriteResult { gen, write, result } => self.write_result(gen, write, result),
            Ev::ServerRecv { tx } => self.server_recv(tx),
            Ev::ServerRecvBatch { txs } => self.server_recv_batch(txs),
            Ev::Replies { gen, finished } => {
                let event = Event::AttemptsFinished {
                    finished: finished
                        .iter()
                        .map(|(id, attempt, outcome)| FinishedAttempt {
                            id: id.clone(),
                            attempt: *attempt,
                            outcome: outcome.clone(),
                        })
                        .collect(),
                };
                self.feed_or_hold(gen, vec![event], || Ev::Replies { gen, finished });
            }
            Ev::Reply {
                gen,
                id,
                attempt,
                outcome,
            } => {
                self.feed_or_hold(
                    gen,
                    vec![Event::AttemptFinished {
                        id: id.clone(),
                        attempt,
                        outcome: outcome.clone(),
                    }],
                    || Ev::Reply {
                        gen,
                        id,
                        attempt,
                        outcome,
                    },
                );
            }
            Ev::Timer { gen, token } => {
                if self
                    .leaders
                    .get(&gen)
                    .is_some_and(|l| l.timer_token == token)
                {
                    self.feed_or_hold(gen, vec![Event::TimerFired], || Ev::Timer { gen, token });
                }
            }
            Ev::Crash => {
                self.crash();
            }
            Ev::Elect => self.elect(),
            Ev::Wake { gen } => {
                let Some(l) = self.leaders.get_mut(&gen) else {
                    return;
                };
                if l.life != Life::Frozen {
                    return;
                }
                l.life = Life::Alive;
                let held = std::mem::take(&mut l.inbox);
                self.log(format!(
                    "zombie gen {gen} wakes with {} held events",
                    held.len()
                ));
                for ev in held {
                    self.step(ev);
                }
            }
            Ev::QuotaToggle => {
                self.store.quota_exhausted = self.faulty() && !self.store.quota_exhausted;
            }
        }
        if !self.faulty() && self.store.quota_exhausted {
            self.store.quota_exhausted = false;
        }
    }

    /// Feeds an event to leader `gen`, holds it if the leader is frozen, drops it if dead.
    fn feed_or_hold(&mut self, gen: u64, events: Vec<Event>, held: impl FnOnce() -> Ev) {
        let Some(l) = self.leaders.get_mut(&gen) else {
            return;
        };
        match l.life {
            Life::Dead => {}
            Life::Frozen => l.inbox.push(held()),
            Life::Alive => {
                let answered: Vec<(&TransactionId, u32)> = events
                    .iter()
                    .flat_map(|event| match event {
                        Event::AttemptFinished { id, attempt, .. } => vec![(id, *attempt)],
                        Event::AttemptsFinished { finished } => {
                            finished.iter().map(|f| (&f.id, f.attempt)).collect()
                        }
                        _ => Vec::new(),
                    })
                    .collect();
                for r in &mut l.requests {
                    r.retain(|(x, a)| !answered.contains(&(x, *a)));
                }
                l.requests.retain(|r| !r.is_empty());
                let cmds = l.exec.handle_all(self.now, events);
                self.run_commands(gen, cmds);
            }
        }
    }

    /// Notes a call or batch request of leader `gen`, and checks it keeps to the limits.
    fn calling(&mut self, gen: u64, attempts: Vec<(TransactionId, u32)>) {
        let (max_concurrency, max_batch) = (self.max_concurrency, self.max_batch);
        let Some(l) = self.leaders.get_mut(&gen) else {
            return;
        };
        let size = attempts.len();
        l.requests.push(attempts);
        let running = l.requests.len();
        if running > max_concurrency {
            self.violations.push(format!(
                "gen {gen} had {running} calls running, more than max_concurrency {max_concurrency}"
            ));
        }
        if size > max_batch {
            self.violations.push(format!(
                "gen {gen} sent {size} transactions in one request, more than max_batch {max_batch}"
            ));
        }
    }

    fn run_commands(&mut self, gen: u64, cmds: Vec<Command>) {
        for c in cmds {
            match c {
                Command::Write(b) => {
                    let id = b.id;
                    if let Some(l) = self.leaders.get_mut(&gen) {
                        l.writes.insert(id, b);
                    }
                    let t = self.now + self.rng.below(3);
                    self.at(t, Ev::WriteDone { gen, write: id });
                }
                Command::Call { tx, attempt } => {
                    self.log(format!("gen {gen} calls {} #{attempt}", tx.id));
                    self.calling(gen, vec![(tx.id.clone(), attempt)]);
                    let t = self.now + 1 + self.rng.below(3);
                    self.at(t, Ev::ServerRecv { tx });
                    if self.rng.chance(self.p_crash_hook) {
                        self.at(self.now, Ev::Crash);
                    }
                }
                Command::CallBatch { calls, .. } => {
                    let names: Vec<String> = calls
                        .iter()
                        .map(|(tx, attempt)| format!("{} #{attempt}", tx.id))
                        .collect();
                    self.log(format!("gen {gen} calls [{}]", names.join(", ")));
                    let attempts = calls.iter().map(|(t, a)| (t.id.clone(), *a)).collect();
                    self.calling(gen, attempts);
                    // One request: the server gets them together, and answers them together
                    // or (as a driver may) one by one.
                    let t = self.now + 1 + self.rng.below(3);
                    let txs: Vec<Transaction> = calls.into_iter().map(|(tx, _)| tx).collect();
                    if self.rng.chance(0.5) {
                        self.at(t, Ev::ServerRecvBatch { txs });
                    } else {
                        for tx in txs {
                            self.at(t, Ev::ServerRecv { tx: Box::new(tx) });
                        }
                    }
                    if self.rng.chance(self.p_crash_hook) {
                        self.at(self.now, Ev::Crash);
                    }
                }
                Command::SetTimer { at } => {
                    if let Some(l) = self.leaders.get_mut(&gen) {
                        l.timer_token += 1;
                        let token = l.timer_token;
                        self.at(at, Ev::Timer { gen, token });
                    }
                }
                Command::Send { to, msg } => {
                    let from = ClientId(format!("leader{gen}"));
                    let env = Envelope::new(SCOPE, &from, to.as_ref(), msg);
                    for tab in 0..self.tabs.len() {
                        if env.is_for(self.tabs[tab].id()) {
                            self.deliver(
                                (-1 - gen as i64, tab as i64),
                                Ev::ToTab {
                                    tab,
                                    env: env.clone(),
                                },
                            );
                        }
                    }
                }
                Command::Quarantine { key, .. } => self.store.quarantine(&key),
                Command::StepDown { error } => {
                    self.log(format!("gen {gen} steps down: {error}"));
                    if let Some(l) = self.leaders.get_mut(&gen) {
                        l.life = Life::Dead;
                    }
                }
                // The simulated tabs never sign out.
                Command::SignedOut | Command::AwaitSync { .. } => {}
            }
        }
    }

    fn write_done(&mut self, gen: u64, write: WriteId) {
        let Some(l) = self.leaders.get_mut(&gen) else {
            return;
        };
        match l.life {
            Life::Frozen => {
                l.inbox.push(Ev::WriteDone { gen, write });
                return;
            }
            Life::Dead => {
                // The tab died with the write in IndexedDB's hands: it committed, or not.
                let batch = l.writes.remove(&write);
                if let Some(b) = batch {
                    if self.rng.chance(0.5) {
                        let _ = self.commit(&b);
                    }
                }
                return;
            }
            Life::Alive => {}
        }
        let Some(b) = l.writes.remove(&write) else {
            return;
        };
        let result = self.commit(&b);
        if result.is_ok() && self.rng.chance(self.p_crash_hook * 3.0) && self.crash() {
            // Crashed between the commit and the acks: a frozen leader hears of the commit
            // when it wakes, a dead one never does.
            self.log(format!("gen {gen} crashed between commit and ack"));
        }
        self.write_result(gen, write, result);
    }

    fn write_result(&mut self, gen: u64, write: WriteId, result: Result<(), StoreError>) {
        let event = match result.clone() {
            Ok(()) => Event::Written { write },
            Err(error) => {
                if matches!(error, StoreError::Fenced { .. }) {
                    self.report.fenced_writes += 1;
                }
                Event::WriteFailed { write, error }
            }
        };
        self.feed_or_hold(gen, vec![event], || Ev::WriteResult { gen, write, result });
    }

    fn commit(&mut self, b: &WriteBatch) -> Result<(), StoreError> {
        let r = self.store.write(b);
        if r.is_ok() {
            for t in &b.completed {
                self.completed_at_epoch.insert(t.id.clone(), b.epoch);
            }
        }
        self.log(format!(
            "write {} epoch {} puts {} done {} -> {:?}",
            b.id,
            b.epoch,
            b.puts.len(),
            b.completed.len(),
            r
        ));
        r
    }

    fn server_recv(&mut self, tx: Box<Transaction>) {
        let (gen, id, attempt, outcome, delay) = self.server_answer(&tx);
        self.at(
            self.now + delay,
            Ev::Reply {
                gen,
                id,
                attempt,
                outcome,
            },
        );
        self.crash_after_apply();
    }

    /// A batch request: the server applies each transaction, and answers them all at once.
    fn server_recv_batch(&mut self, txs: Vec<Transaction>) {
        let (mut gen, mut delay) = (0, 0);
        let mut finished = Vec::new();
        for tx in &txs {
            let (g, id, attempt, outcome, d) = self.server_answer(tx);
            (gen, delay) = (g, delay.max(d));
            finished.push((id, attempt, outcome));
        }
        self.at(self.now + delay, Ev::Replies { gen, finished });
        self.crash_after_apply();
    }

    fn crash_after_apply(&mut self) {
        if self.faulty() && self.rng.chance(self.p_crash_hook) {
            // Crash after the server applied it, before the reply arrives.
            self.at(self.now, Ev::Crash);
        }
    }

    /// What the server does with one call: the caller's epoch, the call, and the outcome the
    /// caller will get after the delay.
    fn server_answer(
        &mut self,
        tx: &Transaction,
    ) -> (u64, TransactionId, u32, AttemptOutcome, u64) {
        if let Some(done) = self.completed_at_epoch.get(&tx.id) {
            if tx.epoch >= *done {
                self.violations.push(format!(
                    "{} was sent again by epoch {} after its completion committed at epoch {}",
                    tx.id, tx.epoch, done
                ));
            }
        }
        let gen = tx.epoch.0;
        let attempt = tx.last_attempt().map_or(0, |a| a.number);
        let faults = self.faulty().then(|| self.faults.clone());
        let handled = self.server.handle(tx, faults.as_ref(), &mut self.rng);
        let outcome = if handled.reply_lost {
            self.report.dropped_replies += 1;
            // As the browser reports it (no answer at all), or as a mutation function that
            // classifies it itself: both paths, stored lazily or at once.
            if self.rng.next_f64() < 0.5 {
                Err(AttemptError::network("connection closed"))
            } else {
                Err(AttemptError::retriable("network error: connection closed"))
            }
        } else {
            handled.outcome
        };
        self.log(format!(
            "server gets {} #{attempt} -> {:?}",
            tx.id,
            outcome
                .as_ref()
                .map(|s| s.server_seq)
                .map_err(|e| e.error.code)
        ));
        (gen, tx.id.clone(), attempt, outcome, handled.delay)
    }

    /// Crashes or freezes the current leader; false if it did not (quiet phase, budget spent).
    fn crash(&mut self) -> bool {
        if !self.faulty() || self.report.crashes >= MAX_CRASHES {
            return false;
        }
        let Some(gen) = self.current.take() else {
            return false;
        };
        let Some(l) = self.leaders.get_mut(&gen) else {
            return false;
        };
        self.report.crashes += 1;
        if self.rng.chance(self.p_freeze) {
            l.life = Life::Frozen;
            self.report.freezes += 1;
            let wake = self.now + 50 + self.rng.below(3000);
            self.at(wake, Ev::Wake { gen });
            self.log(format!("gen {gen} freezes until {wake}"));
        } else {
            l.life = Life::Dead;
            self.log(format!("gen {gen} dies"));
        }
        let t = self.now + 5 + self.rng.below(60);
        self.at(t, Ev::Elect);
        true
    }

    fn elect(&mut self) {
        if self.current.is_some() {
            return;
        }
        self.report.entries_loaded += self.store.entry_count() as u64;
        let loaded = self.store.begin_leadership(self.now);
        let gen = loaded.epoch.0;
        self.current = Some(gen);
        self.report.resumed_attempts += loaded
            .records
            .iter()
            .filter(|(_, v)| {
                Transaction::from_stored((*v).clone())
                    .is_ok_and(|t| t.state == TransactionState::Persisting)
            })
            .count() as u64;
        self.log(format!(
            "gen {gen} leads with {} records",
            loaded.records.len()
        ));
        let config = ExecutorConfig {
            max_concurrency: self.max_concurrency,
            max_batch: self.max_batch,
            batching: if self.batching {
                ["sync".to_owned()].into()
            } else {
                Default::default()
            },
            ..ExecutorConfig::default()
        };
        let exec = Executor::new(config, Box::new(SplitMix64::new(self.seed ^ gen)));
        self.leaders.insert(
            gen,
            Leader {
                exec,
                life: Life::Alive,
                writes: HashMap::new(),
                timer_token: 0,
                inbox: Vec::new(),
                requests: Vec::new(),
            },
        );
        self.feed_or_hold(gen, vec![Event::BecameLeader(loaded)], || Ev::Elect);
    }
}
