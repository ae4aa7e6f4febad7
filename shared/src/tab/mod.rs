//! The tab's side of the protocol, without the I/O: what a tab sends, what it makes of what it
//! hears, and the optimistic view of every tab's pending transactions.
//!
//! The browser client (`outbox-client`) feeds it the app's calls and the channel's messages and
//! carries out its [`TabOutput`]s. Rules it keeps:
//! - a submit is addressed to the leader the tab knows; when it learns of a new leader it resends
//!   everything of its own that is not settled, in creation order (submits are idempotent);
//! - states from a leader older than the one it knows are ignored;
//! - a leader is believed only once its claim is verified ([`TabOutput::VerifyLeader`]: the
//!   glue checks the claim's proof lock, [`crate::leadership::proof_lock_name`]); after that,
//!   only messages from that leader's channel id speak for it; the rest are counted as forged;
//! - the view holds every unsettled transaction of every tab; a failure rolls back by taking the
//!   transaction out of the overlay; a completion folds the change into the synced rows of
//!   collections that have no sync of their own (those with a sync wait for it instead);
//! - the leader's change feed ([`Message::SyncEntries`], [`Message::SyncRows`], leader-only
//!   like states) goes through the tab's own cursor into the synced rows, each collection
//!   resolving conflicts with pending changes by its [`ConflictStrategy`] (see `feed.rs`).

mod feed;
mod forget;
mod resubmit;
mod staging;
mod synced;
#[cfg(test)]
mod tests;

pub use feed::ConflictStrategy;

use crate::model::{
    ClientId, Epoch, ErrorCode, Millis, Transaction, TransactionId, TransactionState, TxError,
};
use crate::protocol::{Envelope, Message, Response};
use crate::sync::{CollectionSnapshot, FeedCursor, RowsPart, SyncedRows};
use crate::view::{OptimisticView, RowRef};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// What the tab client should do or tell the app.
#[derive(Debug, Clone, PartialEq)]
pub enum TabOutput {
    /// Broadcast this on the channel.
    Send(Message),
    /// The transaction is durable in the outbox.
    Durable(TransactionId),
    /// A transaction's state changed (any tab's).
    StateChanged(Box<Transaction>),
    /// These rows of the view changed.
    RowsChanged(Vec<RowRef>),
    /// A new leader announced itself and its claim was verified.
    LeaderChanged(Epoch),
    /// The leader of this epoch needs credentials for its calls (its outbox is paused until a
    /// tab sends [`Message::Credentials`]).
    CredentialsNeeded(Epoch),
    /// The user signed out of this scope (the leader of this epoch says so): the client closes.
    SignedOut(Epoch),
    /// Someone claims to lead at this epoch: check that the lock
    /// [`crate::leadership::proof_lock_name`]`(scope, epoch, from)` is held, then call
    /// [`TabCore::leader_verified`] or [`TabCore::leader_refuted`]. Messages under the claim
    /// are held until then: taken in once it is verified (so the states a new leader sends
    /// while it is checked reach the app, as well as its snapshot), dropped if it is refuted.
    VerifyLeader {
        /// The epoch claimed.
        epoch: Epoch,
        /// Who claims it.
        from: ClientId,
    },
    /// The leader of this epoch said it is stepping down.
    LeaderResigned(Epoch),
    /// The answer to one of this tab's requests.
    Response {
        /// The request's correlation number.
        req: u64,
        /// The answer.
        result: Response,
    },
    /// A server change reached a row with pending changes, in a collection whose conflict
    /// strategy is the app's merge function ([`ConflictStrategy::Merge`]): call it with the
    /// server's row and the row as this tab shows it, then give its answer to
    /// [`TabCore::merged`] (or the server's row if it fails).
    Merge {
        /// The collection.
        collection: String,
        /// The row key.
        key: String,
        /// The server's row now (`None`: deleted on the server).
        server: Option<serde_json::Value>,
        /// The row as the tab shows it, pending changes included (`None`: not shown).
        local: Option<serde_json::Value>,
    },
    /// The tab has applied the leader's change feed up to this sequence number (entries or
    /// rows came in).
    FeedAdvanced(u64),
    /// The leader has something to tell the app (a quarantined record, say).
    Diagnostic {
        /// Stable code.
        code: ErrorCode,
        /// Plain words.
        message: String,
    },
}

#[derive(Debug)]
struct Known {
    tx: Transaction,
    /// For the tab's own transactions, its place in [`TabCore::own_order`].
    own: Option<u64>,
    durable: bool,
}

/// The tab's protocol state and optimistic view.
#[derive(Debug)]
pub struct TabCore {
    me: ClientId,
    scope: String,
    leader: Option<Epoch>,
    /// The verified leader's channel id.
    leader_id: Option<ClientId>,
    /// Claims of leadership being verified.
    claims: HashSet<(Epoch, ClientId)>,
    /// Claims found false, the latest few (so that repeats are not checked again).
    refuted: VecDeque<(Epoch, ClientId)>,
    /// What each claimant said while its claim is checked, the latest [`MAX_UNVERIFIED`].
    unverified: HashMap<(Epoch, ClientId), VecDeque<Envelope>>,
    /// Claims that said more than [`MAX_UNVERIFIED`] while checked (the oldest were dropped):
    /// their held rows parts are not taken in (the tail of a delivery would be taken for the
    /// whole collection); the tab's ask on verifying brings every row.
    overflowed: HashSet<(Epoch, ClientId)>,
    last_heard: Option<Millis>,
    /// When the leader said it resigns, until another speaks ([`TabCore::leader_gone`]).
    resigned_at: Option<Millis>,
    /// The leader's last heartbeat, and the gap before it: how often it speaks when idle.
    last_heartbeat: Option<Millis>,
    heartbeat_gap: Option<Millis>,
    /// Own unsettled transactions, in creation order (keyed by a counter: taking one out
    /// when it settles costs a lookup, not a scan; a burst of 500 settling was quadratic).
    own_order: BTreeMap<u64, TransactionId>,
    /// The counter for [`TabCore::own_order`].
    own_next: u64,
    known: HashMap<TransactionId, Known>,
    view: OptimisticView,
    /// Collections whose synced rows come from a sync source rather than from completions.
    externally_synced: HashSet<String>,
    /// Collections the app defined in this tab ([`TabCore::define_collection`]): other tabs'
    /// completions fold into their synced rows, and only into theirs.
    defined: HashSet<String>,
    /// Transactions still being built, by id: the overlay entries of their mutations so far.
    staged: HashMap<TransactionId, Vec<TransactionId>>,
    /// Unsettled transactions in the outbox, as the leader's last heartbeat said.
    leader_pending: Option<u32>,
    /// Settled transactions the app is done with: late news of them is not taken back in.
    forgotten: forget::Forgotten,
    /// The highest server sequence number a sync source has reported, once one has.
    synced_seq: Option<u64>,
    /// Whether any sync source has reported anything (rows or a sequence number) yet.
    sync_reported: bool,
    /// The ids of a snapshot arriving in parts, until its last part.
    snapshot_ids: Option<HashSet<TransactionId>>,
    /// Completed transactions whose change the sync has not shown yet: server seq, by id.
    /// Their overlay stays (and they read `persisted_awaiting_sync`) until it has.
    awaiting_sync: HashMap<TransactionId, u64>,
    /// Whether the tab follows the leader's feed (asks it for what follows on a new leader).
    follows_feed: bool,
    /// The collections it follows there.
    followed: BTreeSet<String>,
    /// The collections the leader's feed follows, once the leader has said
    /// ([`Message::FeedCollections`]; leaders before session 24 do not).
    feed_covers: Option<HashSet<String>>,
    /// Followed collections the leader's feed does not follow (the app was told): synced by
    /// completions meanwhile, and not waited for.
    uncovered: HashSet<String>,
    /// The tab's intake of the leader's feed entries.
    feed: FeedCursor,
    /// The server's rows as the leader's feed has brought them.
    server: SyncedRows,
    /// Conflict strategies, by collection (default: rebase).
    conflicts: HashMap<String, ConflictStrategy>,
    /// Rows whose server change waits behind a transaction that locks them (hold strategy).
    held: BTreeSet<(String, String)>,
    /// Rows whose synced value is an app merge, until no unsettled transaction touches them.
    merged: BTreeSet<(String, String)>,
    /// Rows from the leader arriving in parts, by collection and sequence number, until the
    /// last part. Two deliveries can interleave (one broadcast, one answering this tab over its
    /// own worker's port): each sequence number gathers apart.
    rows_parts: HashMap<(String, u64), CollectionSnapshot>,
    /// The sequence number of each collection's last rows taken in whole: a delivery of the
    /// same rows again is skipped (its parts may have gone into the first one).
    rows_taken: HashMap<String, u64>,
    /// Per collection, the sequence number of the last rows taken in as a restart of the
    /// server's numbering: a second delivery of them (the leader's broadcast, and its answer
    /// to this tab's ask from the old numbering, travel apart) is not a second restart.
    restarts_taken: HashMap<String, u64>,
    dropped: u64,
    stale: u64,
    forged: u64,
    out: Vec<TabOutput>,
}

/// Claims verified at once, at most; more wait until one is answered.
const MAX_CLAIMS: usize = 4;
/// Refuted claims remembered.
const MAX_REFUTED: usize = 32;
/// Messages held per claim while it is checked (a check takes a Web Locks query, a few
/// milliseconds); older ones give way. A verified leader's snapshot follows in any case.
const MAX_UNVERIFIED: usize = 64;

/// Who a leader-only message is from, as far as this tab can tell.
enum Sender {
    /// The verified leader.
    Leader,
    /// Someone claiming a newer epoch than the one known, not verified yet.
    Claimant,
    /// A deposed leader's late message, or someone speaking for a leader it is not.
    Other,
}

impl TabCore {
    /// A tab with this context id on this channel scope.
    pub fn new(me: ClientId, scope: impl Into<String>) -> Self {
        Self {
            me,
            scope: scope.into(),
            leader: None,
            leader_id: None,
            claims: HashSet::new(),
            refuted: VecDeque::new(),
            unverified: HashMap::new(),
            overflowed: HashSet::new(),
            last_heard: None,
            resigned_at: None,
            last_heartbeat: None,
            heartbeat_gap: None,
            own_order: BTreeMap::new(),
            own_next: 0,
            known: HashMap::new(),
            view: OptimisticView::new(),
            externally_synced: HashSet::new(),
            defined: HashSet::new(),
            staged: HashMap::new(),
            leader_pending: None,
            forgotten: forget::Forgotten::default(),
            synced_seq: None,
            sync_reported: false,
            snapshot_ids: None,
            awaiting_sync: HashMap::new(),
            follows_feed: false,
            followed: BTreeSet::new(),
            feed_covers: None,
            uncovered: HashSet::new(),
            feed: FeedCursor::new(0),
            server: SyncedRows::new(),
            conflicts: HashMap::new(),
            held: BTreeSet::new(),
            merged: BTreeSet::new(),
            rows_parts: HashMap::new(),
            rows_taken: HashMap::new(),
            restarts_taken: HashMap::new(),
            dropped: 0,
            stale: 0,
            forged: 0,
            out: Vec::new(),
        }
    }

    /// The first messages: ask who leads.
    pub fn start(&mut self) -> Vec<TabOutput> {
        self.out.push(TabOutput::Send(Message::Hello));
        self.take()
    }

    /// This tab's context id.
    pub fn id(&self) -> &ClientId {
        &self.me
    }

    /// The channel scope.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The leader's epoch, once one has been heard.
    pub fn leader(&self) -> Option<Epoch> {
        self.leader
    }

    /// The verified leader's id on the channel.
    pub fn leader_id(&self) -> Option<&ClientId> {
        self.leader_id.as_ref()
    }

    /// When a leader last spoke.
    pub fn last_heard(&self) -> Option<Millis> {
        self.last_heard
    }

    /// Whether the leader this tab follows is gone, as of `now`: silent for `timeout` (or three
    /// of its heartbeat gaps, if longer: a leader may beat slower than tabs wait), or resigned
    /// that long ago with no leader since. A tab whose own worker cannot take over then serves
    /// itself; nothing else would send what it has.
    pub fn leader_gone(&self, now: Millis, timeout: Millis) -> bool {
        let Some(since) = self.last_heard.or(self.resigned_at) else {
            return false;
        };
        let limit = timeout.max(self.heartbeat_gap.unwrap_or(0).saturating_mul(3));
        now.saturating_sub(since) >= limit
    }

    /// Unsettled transactions in the outbox, as the leader's last heartbeat said.
    pub fn leader_pending(&self) -> Option<u32> {
        self.leader_pending
    }

    /// How many of this tab's own transactions are not settled yet.
    pub fn own_unsettled(&self) -> usize {
        self.own_order.len()
    }

    /// Messages of kinds a tab does not read (what other tabs say to the leader) (count).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Late news from deposed leaders, ignored (count).
    pub fn stale(&self) -> u64 {
        self.stale
    }

    /// Messages that spoke for a leader without being it: refuted claims of leadership, and
    /// leader-only messages from anyone but the verified leader (count).
    pub fn forged(&self) -> u64 {
        self.forged
    }

    /// The optimistic view.
    pub fn view(&self) -> &OptimisticView {
        &self.view
    }

    /// The keys of `collection` whose rows changed since the last call, or `None`: copy the
    /// rows whole (see [`OptimisticView::take_changed`]).
    pub fn take_view_changes(&mut self, collection: &str) -> Option<BTreeSet<String>> {
        self.view.take_changed(collection)
    }

    /// A transaction this tab knows (its own, or another tab's it heard of).
    pub fn get(&self, id: &TransactionId) -> Option<&Transaction> {
        self.known.get(id).map(|k| &k.tx)
    }

    /// Whether the leader has confirmed the transaction durable.
    pub fn is_durable(&self, id: &TransactionId) -> bool {
        self.known.get(id).is_some_and(|k| k.durable)
    }

    /// Every transaction known, own and others'.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.known.values().map(|k| &k.tx)
    }

    /// Own transactions not yet durable, in creation order.
    pub fn unacknowledged(&self) -> Vec<&Transaction> {
        self.own_order
            .values()
            .filter_map(|id| self.known.get(id))
            .filter(|k| !k.durable)
            .map(|k| &k.tx)
            .collect()
    }

    /// The app made a transaction: show it at once, and submit it to the leader. A
    /// transaction staged under the same id gives way to it.
    pub fn submit(&mut self, tx: Transaction) -> Vec<TabOutput> {
        let id = tx.id.clone();
        if self.known.contains_key(&id) {
            return Vec::new();
        }
        let mut rows = self.drop_staged(&id);
        for r in self.view.add_pending(&tx) {
            if !rows.contains(&r) {
                rows.push(r);
            }
        }
        if let Some(epoch) = self.leader {
            self.out.push(TabOutput::Send(Message::Submit {
                epoch,
                txs: vec![tx.clone()],
            }));
        }
        self.own_next += 1;
        self.own_order.insert(self.own_next, id.clone());
        self.known.insert(
            id,
            Known {
                tx,
                own: Some(self.own_next),
                durable: false,
            },
        );
        self.out.push(TabOutput::RowsChanged(rows));
        self.take()
    }

    /// A message from the channel (already decoded and checked for scope). Taken by value: a
    /// leader's transactions and rows move into the tab's state as they are.
    pub fn receive(&mut self, now: Millis, env: Envelope) -> Vec<TabOutput> {
        if env.from == self.me || !env.is_for(&self.me) {
            return Vec::new();
        }
        let epoch = match &env.body {
            Message::Leader { epoch }
            | Message::Heartbeat { epoch, .. }
            | Message::Resign { epoch }
            | Message::Durable { epoch, .. }
            | Message::State { epoch, .. }
            | Message::Snapshot { epoch, .. }
            | Message::CredentialsNeeded { epoch }
            | Message::SignedOut { epoch }
            | Message::SyncEntries { epoch, .. }
            | Message::FeedCollections { epoch, .. }
            | Message::SyncRows { epoch, .. } => Some(*epoch),
            Message::Rejected { .. } | Message::Response { .. } => None,
            Message::Diagnostic { code, message } => {
                // Anyone may tell the app something (a waiting worker that cannot lead, say);
                // it changes no transaction.
                self.out.push(TabOutput::Diagnostic {
                    code: *code,
                    message: message.clone(),
                });
                return self.take();
            }
            // What tabs send to the leader, and kinds a tab does not read.
            _ => {
                self.dropped += 1;
                return self.take();
            }
        };
        match self.sender(&env, epoch) {
            Sender::Leader => self.leader_said(now, env),
            Sender::Claimant => self.hold(env, epoch),
            Sender::Other => {
                if epoch.is_some_and(|e| self.leader.is_some_and(|known| e < known)) {
                    self.stale += 1; // a deposed leader's late news
                } else {
                    self.forged += 1;
                }
            }
        }
        self.take()
    }

    /// Whether `env` (a leader-only message, of `epoch` if it names one) comes from the verified
    /// leader; starts verifying a claim of a newer epoch.
    fn sender(&mut self, env: &Envelope, epoch: Option<Epoch>) -> Sender {
        let is_leader = self.leader_id.as_ref() == Some(&env.from);
        match epoch {
            None if is_leader => Sender::Leader,
            None => Sender::Other,
            Some(e) if Some(e) == self.leader && is_leader => Sender::Leader,
            Some(e) if self.leader.is_none_or(|known| e > known) => {
                let claim = (e, env.from.clone());
                if self.refuted.contains(&claim) {
                    return Sender::Other;
                }
                if !self.claims.contains(&claim) && self.claims.len() < MAX_CLAIMS {
                    self.claims.insert(claim);
                    self.out.push(TabOutput::VerifyLeader {
                        epoch: e,
                        from: env.from.clone(),
                    });
                }
                Sender::Claimant
            }
            Some(_) => Sender::Other,
        }
    }

    /// A message from the verified leader.
    fn leader_said(&mut self, now: Millis, env: Envelope) {
        let to_me = env.to.as_ref() == Some(&self.me);
        match env.body {
            Message::Leader { .. } => self.last_heard = Some(now),
            Message::Heartbeat { pending, .. } => {
                self.last_heard = Some(now);
                self.leader_pending = Some(pending);
                self.heartbeat_gap = self.last_heartbeat.map(|at| now.saturating_sub(at));
                self.last_heartbeat = Some(now);
            }
            Message::Resign { epoch } => {
                self.last_heard = None;
                self.resigned_at = Some(now);
                self.last_heartbeat = None;
                self.heartbeat_gap = None;
                self.out.push(TabOutput::LeaderResigned(epoch));
            }
            Message::Response { req, result } if to_me => {
                self.out.push(TabOutput::Response { req, result });
            }
            Message::Durable { ids, .. } => {
                self.last_heard = Some(now);
                for id in ids {
                    if let Some(k) = self.known.get_mut(&id) {
                        if !k.durable {
                            k.durable = true;
                            self.out.push(TabOutput::Durable(id));
                        }
                    }
                }
            }
            Message::Rejected { id, error } if to_me => self.rejected(&id, error),
            Message::CredentialsNeeded { epoch } => {
                self.out.push(TabOutput::CredentialsNeeded(epoch));
            }
            Message::SignedOut { epoch } => self.out.push(TabOutput::SignedOut(epoch)),
            // A tab that follows no collection of the feed leaves it alone: it asked for what
            // it missed (its cursor at 0, every broadcast a gap) and was sent, and kept, every
            // row of every collection.
            Message::SyncEntries { .. } | Message::SyncRows { .. } if !self.follows_feed => {
                self.last_heard = Some(now);
            }
            Message::SyncEntries { entries, .. } => {
                self.last_heard = Some(now);
                let out = self.sync_entries(entries);
                self.out = out;
            }
            Message::FeedCollections { collections, .. } => {
                self.leader_feed_covers(collections);
            }
            Message::SyncRows {
                collection,
                seq,
                rows,
                more,
                restart,
                ..
            } => {
                let out = self.sync_rows(RowsPart {
                    collection,
                    seq,
                    rows,
                    more,
                    restart,
                });
                self.out = out;
            }
            Message::State { txs, .. } => {
                self.last_heard = Some(now);
                for tx in txs {
                    self.update(tx, true);
                }
            }
            Message::Snapshot {
                transactions,
                more,
                removed,
                ..
            } => {
                self.known.reserve(transactions.len());
                let seen = self.snapshot_ids.get_or_insert_with(HashSet::new);
                seen.extend(transactions.iter().map(|t| t.id.clone()));
                for tx in transactions {
                    self.update(tx, true);
                }
                for id in &removed {
                    // Removed while this tab did not hear of it: it fails as removed (its
                    // change leaves the view) rather than being taken as completed below.
                    if self.known.get(id).is_some_and(|k| !k.tx.state.is_settled()) {
                        let out = self.removed(id);
                        self.out.extend(out);
                    }
                }
                if !more {
                    if let Some(seen) = self.snapshot_ids.take() {
                        self.settle_missing_from(&seen);
                    }
                }
            }
            _ => self.dropped += 1,
        }
    }

    /// Keeps what a claimant said under its claim (of `epoch`) until the claim is checked.
    fn hold(&mut self, env: Envelope, epoch: Option<Epoch>) {
        let Some(epoch) = epoch else { return };
        let claim = (epoch, env.from.clone());
        if !self.claims.contains(&claim) {
            return;
        }
        let held = self.unverified.entry(claim.clone()).or_default();
        if held.len() >= MAX_UNVERIFIED {
            held.pop_front();
            self.dropped += 1;
            self.overflowed.insert(claim);
        }
        held.push_back(env);
    }

    /// The claim of `from` to lead at `epoch` is true (its proof lock is held): follow it, ask
    /// it for a snapshot, resend everything of ours not known settled, in creation order, and
    /// take in what it said while it was checked.
    pub fn leader_verified(&mut self, now: Millis, epoch: Epoch, from: ClientId) -> Vec<TabOutput> {
        let claim = (epoch, from);
        self.claims.remove(&claim);
        let mut held = self.unverified.remove(&claim).unwrap_or_default();
        if self.overflowed.remove(&claim) {
            held.retain(|env| !matches!(env.body, Message::SyncRows { .. }));
        }
        if self.leader.is_some_and(|known| known >= epoch) {
            return Vec::new(); // a newer leader was verified first
        }
        // Claims of older epochs than this one are moot, and so is what they said.
        self.unverified.retain(|(e, _), _| *e > epoch);
        self.overflowed.retain(|(e, _)| *e > epoch);
        let (epoch, from) = claim;
        self.leader = Some(epoch);
        self.leader_id = Some(from);
        self.leader_pending = None;
        self.snapshot_ids = None;
        self.feed_covers = None;
        self.last_heard = Some(now);
        self.resigned_at = None;
        self.last_heartbeat = None;
        self.heartbeat_gap = None;
        self.out.push(TabOutput::LeaderChanged(epoch));
        self.out.push(TabOutput::Send(Message::SnapshotRequest));
        let resend: Vec<Transaction> = self
            .own_order
            .values()
            .filter_map(|id| self.known.get(id))
            .filter(|k| !k.tx.state.is_settled())
            .map(|k| k.tx.clone())
            .collect();
        if !resend.is_empty() {
            self.out
                .push(TabOutput::Send(Message::Submit { epoch, txs: resend }));
        }
        self.feed_leader_changed();
        for env in held {
            self.leader_said(now, env);
        }
        self.take()
    }

    /// The claim of `from` to lead at `epoch` is false (no such proof lock is held): it is
    /// counted, and its messages (held, and from now on) are ignored.
    pub fn leader_refuted(&mut self, epoch: Epoch, from: ClientId) {
        let claim = (epoch, from);
        self.unverified.remove(&claim);
        self.overflowed.remove(&claim);
        if self.claims.remove(&claim) {
            self.forged += 1;
            if self.refuted.len() >= MAX_REFUTED {
                self.refuted.pop_front();
            }
            self.refuted.push_back(claim);
        }
    }

    /// A leader's snapshot holds every transaction still in the outbox. Another tab's
    /// transaction this tab knows as unsettled but the snapshot lacks has left the outbox: it
    /// completed (a leader stepping down may not have said so before it went), or, rarely, the
    /// app removed it, which this tab cannot tell apart. It is taken as completed, so its
    /// change joins the synced rows instead of hanging in the overlay. (This
    /// tab knows other tabs' transactions only from a leader's states, sent after they were
    /// committed, so any such transaction is in storage for every later leader to load.)
    fn settle_missing_from(&mut self, present: &HashSet<TransactionId>) {
        let missing: Vec<Transaction> = self
            .known
            .values()
            .filter(|k| k.own.is_none() && !k.tx.state.is_settled() && !present.contains(&k.tx.id))
            .map(|k| k.tx.clone())
            .collect();
        for mut tx in missing {
            // Completed: a success the sync has not shown yet keeps its server sequence number,
            // so it still waits for the sync ([`TabCore::must_await_sync`]) and nothing
            // flickers back.
            tx.state = TransactionState::Completed;
            self.update(tx, true);
        }
    }

    /// The app removed a transaction from the outbox (the leader said it is done, or it never
    /// was in the outbox: the leader refused it). It fails here at once as `OUTBOX_REMOVED`,
    /// its changes leave the view, and it is forgotten: late news of it is not taken back in.
    pub fn removed(&mut self, id: &TransactionId) -> Vec<TabOutput> {
        let gone = self
            .known
            .get(id)
            .is_some_and(|k| k.tx.error_code() != Some(ErrorCode::Removed));
        if gone {
            self.rejected(
                id,
                TxError::new(ErrorCode::Removed, "removed from the outbox by the app"),
            );
        }
        self.forget(id);
        self.take()
    }

    /// This tab cannot send its transaction `id` (too large for any receiver to take, see
    /// [`crate::protocol::oversized_transactions`]): it fails here at once with `error`, as one
    /// the leader refused would, and its changes leave the view. One already durable is left
    /// alone.
    pub fn refuse(&mut self, id: &TransactionId, error: TxError) -> Vec<TabOutput> {
        let sendable = self
            .known
            .get(id)
            .is_some_and(|k| k.own.is_some() && !k.durable && !k.tx.state.is_settled());
        if sendable {
            self.rejected(id, error);
        }
        self.take()
    }

    /// Whether the transaction failed without ever being in the outbox (the leader refused
    /// it, or it failed in the tab's own executor): only this tab knows it.
    pub fn is_local_failure(&self, id: &TransactionId) -> bool {
        self.known
            .get(id)
            .is_some_and(|k| !k.durable && k.tx.state == TransactionState::Failed)
    }

    fn rejected(&mut self, id: &TransactionId, error: TxError) {
        let Some(k) = self.known.get(id) else { return };
        let mut tx = k.tx.clone();
        tx.state = TransactionState::Failed;
        tx.error = Some(error);
        self.update(tx, false);
    }

    /// Takes in a transaction's latest state; `from_leader` when a leader said so (it speaks
    /// only of what it has committed, so the transaction is durable).
    fn update(&mut self, mut tx: Transaction, from_leader: bool) {
        let id = tx.id.clone();
        if let Some(seq) = self.must_await_sync(&tx) {
            // Completed, but the sync has not shown it yet: hold the change in the overlay so
            // nothing flickers back, and say where it stands.
            tx.state = TransactionState::PersistedAwaitingSync;
            self.awaiting_sync.insert(id.clone(), seq);
        }
        let prev = self.known.get(&id).map(|k| k.tx.state);
        let prev_code = self.known.get(&id).and_then(|k| k.tx.error_code());
        if prev == Some(TransactionState::Completed) {
            return;
        }
        let settled = tx.state.is_settled();
        if !self.forgotten.admit(&id, settled) {
            return;
        }
        let rows = if settled {
            if tx.state == TransactionState::Completed {
                let own = self.known.get(&id).is_some_and(|k| k.own.is_some());
                self.fold_into_synced(&tx, own);
            }
            self.view.remove_pending(&id)
        } else {
            self.view.add_pending(&tx)
        };
        match self.known.get_mut(&id) {
            Some(k) => {
                if from_leader && !k.durable {
                    k.durable = true;
                    if k.own.is_some() {
                        self.out.push(TabOutput::Durable(id.clone()));
                    }
                }
                k.tx = tx.clone();
            }
            None => {
                self.known.insert(
                    id.clone(),
                    Known {
                        tx: tx.clone(),
                        own: None,
                        durable: from_leader,
                    },
                );
            }
        }
        match self.known.get(&id).map(|k| k.own) {
            Some(Some(place)) if settled => {
                self.own_order.remove(&place);
            }
            // A dead letter of ours back in line (retried): unsettled again, in its old place.
            Some(Some(place)) => {
                self.own_order.entry(place).or_insert_with(|| id.clone());
            }
            // Another tab's, done: nothing here will ask about it again.
            Some(None) if tx.state == TransactionState::Completed => {
                self.known.remove(&id);
            }
            _ => {}
        }
        if !rows.is_empty() {
            self.out.push(TabOutput::RowsChanged(rows));
        }
        let removed = tx.error_code() == Some(ErrorCode::Removed);
        if prev != Some(tx.state) || !settled || prev_code != tx.error_code() {
            self.out.push(TabOutput::StateChanged(Box::new(tx)));
        }
        if removed {
            // Taken out of the outbox for good (a discarded dead letter): gone from every tab,
            // and late news of it is not taken back in.
            self.forget(&id);
        }
        // A transaction that stopped locking rows lets held server changes show.
        self.release_held();
    }

    fn take(&mut self) -> Vec<TabOutput> {
        std::mem::take(&mut self.out)
    }
}
