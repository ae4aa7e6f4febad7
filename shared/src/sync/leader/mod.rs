//! The leader's side of the sync, without the I/O: one change feed per origin, held by the
//! leader worker, persisted to IndexedDB, then fanned out to every tab.
//!
//! The glue feeds it what happened ([`LeaderSync::start`], [`LeaderSync::snapshot_loaded`],
//! [`LeaderSync::feed_entry`], …) and carries out the [`LeaderSyncOutput`]s each call returns,
//! in order. The rules it keeps:
//!
//! - **Snapshots first, then the feed.** Collections the previous leader did not persist are
//!   loaded (`GET /api/<collection>`); once every collection is in, the feed opens from the
//!   lowest sequence number of any collection ([`SyncedRows::min_seq`]).
//! - **In order, once.** Entries go through a [`FeedCursor`]: duplicates are ignored, a gap is
//!   refetched ([`LeaderSyncOutput::FetchRange`]); too many entries behind a gap, or a range
//!   that fails or does not close the gap, reloads every collection's snapshot.
//! - **Persist before broadcast.** What changed is written
//!   ([`LeaderSyncOutput::Persist`], one batch in flight, later changes grouped into the next);
//!   only once the glue confirms it ([`LeaderSync::persisted`]) are the batch's entries
//!   broadcast. So IndexedDB's sequence numbers are always at least what any tab has applied,
//!   and a new leader resumes from IndexedDB.
//! - **Reconnect with backoff.** A feed error closes the feed and reopens it, from the last
//!   applied sequence number, after a jittered exponential delay (the crate's
//!   [`RetryPolicy::delay`]; its retry budget is not used: the leader never gives up). A
//!   failed snapshot is retried the same way.
//! - **A server that went back.** Once the feed opens, the server's head is asked
//!   ([`LeaderSyncOutput::CheckHead`]): below what the leader has applied, the server has lost
//!   history (its database restored from a backup, or reset), and its feed would send nothing
//!   until it passed the old position. Every collection is loaded again, and the feed reopened
//!   from there.
//! - **Tabs that are behind** ([`LeaderSync::tab_asks`]) get the entries they miss from a
//!   bounded log of recent broadcast entries, or every collection's rows in parts.
//!
//! Transitions (input → what it leads to; every output is a [`LeaderSyncOutput`]):
//!
//! | input | outputs |
//! | --- | --- |
//! | `start(restored)` | `LoadSnapshot` per collection not restored; if none, `SyncedTo` and `OpenFeed{since: min seq}` |
//! | `snapshot_loaded` | `Persist` (replace); when the last is in: cursor reset, `OpenFeed` if closed (`CloseFeed` + `OpenFeed` if entries were dropped meanwhile); below the rows already had (history lost during a reload): as `head_known` below `since` |
//! | `snapshot_failed` | `SetTimer` (backoff); `timer_fired` → `LoadSnapshot` again |
//! | `feed_opened` | `CheckHead{since: applied}` (if anything is applied); `head_known(since, head)` with head below since: `CloseFeed`, `LoadSnapshot` ×all, then `OpenFeed` from the snapshots |
//! | `feed_entry` | in order: `Persist`; a gap: `FetchRange{since, limit}` (one at a time); buffer full: `LoadSnapshot` ×all |
//! | `feed_error` | `CloseFeed`, `SetTimer` (backoff); `timer_fired` → `OpenFeed{since: applied}` |
//! | `range_loaded` | entries applied (`Persist`); gap left with progress: `FetchRange`; without: `LoadSnapshot` ×all |
//! | `range_failed` | `SetTimer` (backoff); `timer_fired` → `LoadSnapshot` ×all |
//! | `persisted(seq)` | `SendRows{to: None}` for reloaded collections, `Broadcast(entries)`, `SyncedTo{seq}`, next `Persist`, waiting tabs' `SendRows` |
//! | `tab_asks(from, applied)` | nothing (up to date), `SendEntries` (log covers it), or `SendRows{to: from}` (now if nothing is unpersisted, else later) |
//! | `stop` | `CloseFeed`; every later input is ignored |

mod fanout;
mod output;
#[cfg(test)]
mod tests;

pub use output::{LeaderSyncConfig, LeaderSyncOutput, PersistBatch, RowWrite};

use super::{CollectionSnapshot, FeedCursor, FeedEntry, Intake, SyncedRows};
use crate::model::ClientId;
use crate::retry::RandomSource;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Something to tell the tabs once it is persisted.
#[derive(Debug, Clone, PartialEq)]
enum Announce {
    /// A collection's rows; `true` if the server's numbering restarted (see
    /// [`RowsPart::restart`](crate::sync::RowsPart::restart)).
    Rows(CollectionSnapshot, bool),
    Entry(FeedEntry),
}

/// Changes not yet confirmed persisted.
#[derive(Debug, Default)]
struct Batch {
    writes: Vec<RowWrite>,
    announce: Vec<Announce>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    Closed,
    Opening,
    Open,
}

/// The leader's sync state machine. Create one per leadership; call
/// [`start`](Self::start) first.
pub struct LeaderSync {
    config: LeaderSyncConfig,
    rng: Box<dyn RandomSource>,
    running: bool,
    /// [`LeaderSync::stop`] was called.
    stopped: bool,
    rows: SyncedRows,
    cursor: FeedCursor,
    /// Snapshots asked for and not loaded yet.
    loading: BTreeSet<String>,
    /// Snapshots that failed, to ask again when the timer fires.
    retry_loads: BTreeSet<String>,
    feed: Feed,
    /// The feed is to reopen when the timer fires.
    reconnect_due: bool,
    timer_set: bool,
    /// Failures in a row (of the feed or of snapshots), for the backoff.
    failures: u32,
    /// The range being refetched.
    range: Option<u64>,
    pending: Batch,
    in_flight: Option<(u64, Batch)>,
    /// Recent broadcast entries, contiguous.
    log: VecDeque<FeedEntry>,
    /// The feed position tabs have been told of (the last persisted batch's).
    announced: Option<u64>,
    /// The cursor's count of entries dropped from a full buffer, as of the last reset.
    overflow_seen: u64,
    /// The server's head was found below what was applied: the snapshots being loaded put the
    /// feed back (see [`LeaderSync::head_known`]).
    went_back: bool,
    /// Tabs waiting for rows until nothing is unpersisted: their applied sequence number.
    asks: BTreeMap<ClientId, u64>,
    out: Vec<LeaderSyncOutput>,
}

impl std::fmt::Debug for LeaderSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderSync")
            .field("running", &self.running)
            .field("applied", &self.cursor.applied())
            .field("loading", &self.loading)
            .field("feed", &self.feed)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl LeaderSync {
    /// A leader's sync with this configuration and random source (for backoff jitter).
    pub fn new(config: LeaderSyncConfig, rng: Box<dyn RandomSource>) -> Self {
        let cursor = FeedCursor::with_capacity(0, config.max_buffered);
        Self {
            config,
            rng,
            running: false,
            stopped: false,
            rows: SyncedRows::new(),
            cursor,
            loading: BTreeSet::new(),
            retry_loads: BTreeSet::new(),
            feed: Feed::Closed,
            reconnect_due: false,
            timer_set: false,
            failures: 0,
            range: None,
            pending: Batch::default(),
            in_flight: None,
            log: VecDeque::new(),
            announced: None,
            overflow_seen: 0,
            went_back: false,
            asks: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    /// The server's rows as this leader has them (persisted or not).
    pub fn rows(&self) -> &SyncedRows {
        &self.rows
    }

    /// The last feed sequence number applied.
    pub fn applied(&self) -> u64 {
        self.cursor.applied()
    }

    /// Duplicate entries ignored (count).
    pub fn duplicates(&self) -> u64 {
        self.cursor.duplicates()
    }

    /// Starts syncing. `restored` is what the previous leader persisted (each collection's
    /// rows at its sequence number); configured collections it lacks are loaded from the
    /// server, and the feed opens once all are in. Restored collections that are no longer
    /// configured are ignored.
    pub fn start(&mut self, restored: Option<Vec<CollectionSnapshot>>) -> Vec<LeaderSyncOutput> {
        if self.running {
            return Vec::new();
        }
        self.running = true;
        for snap in restored.unwrap_or_default() {
            if self.config.collections.contains(&snap.collection) {
                self.rows.load(snap);
            }
        }
        let missing: Vec<String> = self
            .config
            .collections
            .iter()
            .filter(|c| self.rows.seq(c).is_none())
            .cloned()
            .collect();
        // With a collection to load, storage does not hold every collection yet: the
        // position is said (`SyncedTo`) once it does, by the first batch persisted. Set here,
        // it was never said, and what the last leader left awaiting the feed at or below it
        // waited for the next entry.
        self.announced = if missing.is_empty() {
            self.rows.min_seq()
        } else {
            None
        };
        self.load(missing);
        if self.loading.is_empty() {
            if let Some(seq) = self.announced {
                // Storage already holds every collection up to here.
                self.out.push(LeaderSyncOutput::SyncedTo { seq });
            }
            self.all_loaded();
        }
        self.take()
    }

    /// A snapshot asked for came in: it replaces the collection's rows (persisted, then sent
    /// to every tab). Once every collection asked for is in, the cursor resumes from the
    /// lowest of their sequence numbers and the feed opens if it is closed.
    pub fn snapshot_loaded(&mut self, snap: CollectionSnapshot) -> Vec<LeaderSyncOutput> {
        if !self.running || !self.loading.remove(&snap.collection) {
            return Vec::new();
        }
        if let Some(had) = self
            .rows
            .seq(&snap.collection)
            .filter(|had| snap.seq < *had)
        {
            // Rows older than those already had: the server lost history while the collection
            // was being loaded again (a reload for a gap, say, that met a restored database),
            // which no head check was asked about. Taken as a restart, as `head_known` does.
            if !self.went_back {
                // Every collection is loaded again (this one too), and the feed closes.
                return self.head_known(had, snap.seq);
            }
        }
        self.retry_loads.remove(&snap.collection);
        self.failures = 0;
        self.rows.load(snap.clone());
        self.pending
            .writes
            .retain(|w| !matches!(w, RowWrite::Replace(s) if s.collection == snap.collection));
        self.pending.writes.push(RowWrite::Replace(snap.clone()));
        self.pending
            .announce
            .push(Announce::Rows(snap, self.went_back));
        if self.loading.is_empty() {
            self.all_loaded();
        }
        if !self.went_back {
            // After the server went back, the reloaded collections are stored together, once
            // all are in: stored one by one, a leader gone between two left storage with
            // collections of two numberings, and the next, starting from the lowest, never
            // noticed (the old one skipped every entry until the server passed it again).
            self.persist_next();
        }
        self.take()
    }

    /// A snapshot could not be loaded: it is asked again after a backoff.
    pub fn snapshot_failed(&mut self, collection: &str) -> Vec<LeaderSyncOutput> {
        if self.running && self.loading.contains(collection) {
            self.retry_loads.insert(collection.to_owned());
            self.backoff();
        }
        self.take()
    }

    /// The feed is open: the server's head is asked, if anything is applied (see
    /// [`LeaderSync::head_known`]).
    pub fn feed_opened(&mut self) -> Vec<LeaderSyncOutput> {
        if self.running && self.feed == Feed::Opening {
            self.feed = Feed::Open;
            // The server took the feed: a later cut (a proxy's limit on a request's length, a
            // deploy) starts the backoff afresh. Only entries reset it, before, so on a quiet
            // server every cut waited longer, up to a minute behind.
            self.failures = 0;
            let since = self.cursor.applied();
            if since > 0 {
                self.out.push(LeaderSyncOutput::CheckHead { since });
            }
        }
        self.take()
    }

    /// The server's head, its highest sequence number, in answer to the
    /// [`LeaderSyncOutput::CheckHead`] asked at `since`. Below `since`, the server has lost
    /// history (a database restored from a backup, or reset): what it numbers from now on
    /// would be taken for duplicates. The feed closes (its entries would be of the new
    /// numbering, laid over rows of the old), every collection is loaded again, and once they
    /// are in, the feed reopens from them.
    ///
    /// The head is compared with `since`, not with what is applied by the time the answer
    /// comes: the feed goes on meanwhile, and entries the server numbered after it answered
    /// are no sign of lost history.
    pub fn head_known(&mut self, since: u64, head: u64) -> Vec<LeaderSyncOutput> {
        if self.running && head < since && !self.went_back {
            self.went_back = true;
            if self.feed != Feed::Closed {
                self.feed = Feed::Closed;
                self.out.push(LeaderSyncOutput::CloseFeed);
            }
            // Every collection, even while some are loading already: none of them may keep
            // rows of the old numbering.
            self.load(self.config.collections.clone());
        }
        self.take()
    }

    /// An entry from the feed: applied if it follows on (persisted, then broadcast),
    /// buffered behind a gap (which is refetched), or ignored as a duplicate. An entry that
    /// fails [`FeedEntry::validate`] is ignored, and so is one that comes while the feed is
    /// closed (late from a stream being closed: the feed reopens from what is applied).
    pub fn feed_entry(&mut self, entry: FeedEntry) -> Vec<LeaderSyncOutput> {
        if !self.running || self.feed == Feed::Closed || entry.validate().is_err() {
            return Vec::new();
        }
        self.failures = 0;
        let intake = self.cursor.offer(entry);
        self.take_in(intake);
        self.take()
    }

    /// The feed failed or closed: it is closed and reopened after a backoff, from the last
    /// applied sequence number.
    pub fn feed_error(&mut self) -> Vec<LeaderSyncOutput> {
        if !self.running || self.feed == Feed::Closed {
            return Vec::new();
        }
        self.feed = Feed::Closed;
        self.out.push(LeaderSyncOutput::CloseFeed);
        self.reconnect_due = true;
        self.backoff();
        self.take()
    }

    /// A refetched range came in. If it leaves a gap without having made progress (the server
    /// no longer has those entries), every snapshot is reloaded; with progress, the rest is
    /// fetched.
    pub fn range_loaded(&mut self, entries: Vec<FeedEntry>) -> Vec<LeaderSyncOutput> {
        if !self.running {
            return Vec::new();
        }
        let before = self.cursor.applied();
        self.range = None;
        let valid = entries.into_iter().filter(|e| e.validate().is_ok());
        let intake = self.cursor.offer_all(valid);
        self.take_in(intake);
        if self.range.is_none() && self.cursor.gap().is_some() {
            if self.cursor.applied() > before {
                self.fetch_gap();
            } else {
                self.reload();
            }
        }
        self.take()
    }

    /// A refetch failed: every snapshot is reloaded, after a backoff (a range that keeps
    /// failing, a source without `changes`, reloaded everything back to back, before).
    pub fn range_failed(&mut self) -> Vec<LeaderSyncOutput> {
        if self.running {
            self.range = None;
            if self.loading.is_empty() {
                for c in &self.config.collections {
                    self.loading.insert(c.clone());
                    self.retry_loads.insert(c.clone());
                }
                self.backoff();
            }
        }
        self.take()
    }

    /// The batch `seq` is in storage: what it holds is sent to the tabs (reloaded
    /// collections' rows, then entries), the executor is told how far the sync has come
    /// ([`LeaderSyncOutput::SyncedTo`]), the next batch is written, and tabs waiting for rows
    /// are answered once nothing is left unpersisted.
    pub fn persisted(&mut self, seq: u64) -> Vec<LeaderSyncOutput> {
        if !self.running || self.in_flight.as_ref().is_none_or(|(s, _)| *s != seq) {
            return Vec::new();
        }
        if let Some((_, batch)) = self.in_flight.take() {
            let before = self.announced;
            self.announced = Some(before.map_or(seq, |a| a.max(seq)));
            self.announce(batch.announce);
            if before.is_none_or(|b| seq > b) {
                self.out.push(LeaderSyncOutput::SyncedTo { seq });
            }
        }
        self.persist_next();
        self.answer_waiting();
        self.take()
    }

    /// The timer set by [`LeaderSyncOutput::SetTimer`] fired: failed snapshots are asked
    /// again, and a closed feed reopens (once every snapshot is in).
    pub fn timer_fired(&mut self) -> Vec<LeaderSyncOutput> {
        if !self.running {
            return Vec::new();
        }
        self.timer_set = false;
        for collection in std::mem::take(&mut self.retry_loads) {
            self.out.push(LeaderSyncOutput::LoadSnapshot { collection });
        }
        if self.reconnect_due && self.loading.is_empty() {
            self.open_feed();
        }
        self.take()
    }

    /// A tab says it has applied up to `applied` and misses what follows (it joined, or saw a
    /// gap in the broadcasts). It gets the entries after `applied` from the log when the log
    /// reaches back that far; otherwise every collection's rows, as soon as nothing is left
    /// unpersisted. A tab already up to date gets nothing.
    pub fn tab_asks(&mut self, from: ClientId, applied: u64) -> Vec<LeaderSyncOutput> {
        if !self.running {
            if self.stopped {
                // For the sync that replaces this one ([`LeaderSync::waiting_asks`]): a tab
                // asks once for a gap.
                self.asks.insert(from, applied);
            }
            return Vec::new();
        }
        self.answer(from, applied);
        self.take()
    }

    /// The tabs waiting for rows (asked while something was unpersisted), with the position
    /// each asked from: a host that replaces this sync (its storage failed) asks the new one
    /// for them, or they would wait for an answer that never comes (a tab asks once for a
    /// gap).
    pub fn waiting_asks(&self) -> Vec<(ClientId, u64)> {
        self.asks.iter().map(|(c, a)| (c.clone(), *a)).collect()
    }

    /// Stops: the feed closes, and nothing more is done or answered.
    pub fn stop(&mut self) -> Vec<LeaderSyncOutput> {
        if !self.running {
            return Vec::new();
        }
        self.running = false;
        self.stopped = true;
        if self.feed != Feed::Closed {
            self.feed = Feed::Closed;
            self.out.push(LeaderSyncOutput::CloseFeed);
        }
        self.take()
    }

    fn load(&mut self, collections: Vec<String>) {
        for collection in collections {
            if self.loading.insert(collection.clone()) {
                self.out.push(LeaderSyncOutput::LoadSnapshot { collection });
            }
        }
    }

    /// Every collection is in: the cursor resumes from the lowest sequence number, and the
    /// feed opens if it is closed. If entries were dropped from a full buffer meanwhile, an
    /// open feed is reopened from there too (nothing else would bring them back).
    fn all_loaded(&mut self) {
        let Some(seq) = self.rows.min_seq() else {
            return; // nothing to sync
        };
        let went_back = std::mem::take(&mut self.went_back);
        if went_back {
            // The server's history since then is not ours: entries of the old numbering
            // neither answer a tab nor follow on, and a tab still at a position of it is ahead
            // of what is announced from now on (it is sent every row: see `answer`).
            self.log.clear();
            self.cursor = FeedCursor::with_capacity(0, self.config.max_buffered);
            self.overflow_seen = 0;
            self.announced = None;
        }
        let intake = self.cursor.reset(seq);
        self.take_in(intake);
        let dropped = self.cursor.overflowed() > self.overflow_seen;
        self.overflow_seen = self.cursor.overflowed();
        if (dropped || went_back) && self.feed != Feed::Closed {
            self.feed = Feed::Closed;
            self.out.push(LeaderSyncOutput::CloseFeed);
        }
        if self.feed == Feed::Closed && !self.timer_set {
            self.open_feed();
        } else if self.feed == Feed::Closed {
            self.reconnect_due = true;
        }
    }

    /// Reloads every collection (a gap that cannot be filled).
    fn reload(&mut self) {
        if self.loading.is_empty() {
            self.load(self.config.collections.clone());
        }
    }

    fn open_feed(&mut self) {
        self.reconnect_due = false;
        self.feed = Feed::Opening;
        self.out.push(LeaderSyncOutput::OpenFeed {
            since: self.cursor.applied(),
        });
    }

    fn backoff(&mut self) {
        self.failures = self.failures.saturating_add(1);
        if !self.timer_set {
            self.timer_set = true;
            let after_ms = self
                .config
                .backoff
                .delay(self.failures, None, self.rng.as_mut());
            self.out.push(LeaderSyncOutput::SetTimer { after_ms });
        }
    }

    /// Applies what a cursor made ready, and follows up on a gap or a full buffer.
    fn take_in(&mut self, intake: Intake) {
        for mut e in intake.ready {
            // A feed may carry collections this app does not sync (the reference server's
            // carries every one): kept, they were stored, sent to every tab, and, sitting at
            // the feed's position, held the cursor behind a gap a reload had closed.
            e.changes
                .retain(|c| self.config.collections.contains(&c.collection));
            for c in self.rows.apply(&e) {
                self.pending.writes.push(match c.value {
                    Some(value) => RowWrite::Put {
                        collection: c.collection,
                        key: c.key,
                        value,
                    },
                    None => RowWrite::Delete {
                        collection: c.collection,
                        key: c.key,
                    },
                });
            }
            self.rows.advance(e.seq);
            self.pending.announce.push(Announce::Entry(e));
        }
        if intake.snapshot {
            self.reload();
        } else if intake.fetch.is_some() && self.range.is_none() && self.loading.is_empty() {
            self.fetch_gap();
        }
        self.persist_next();
    }

    fn fetch_gap(&mut self) {
        if let Some(gap) = self.cursor.gap() {
            self.range = Some(gap.after);
            self.out.push(LeaderSyncOutput::FetchRange {
                since: gap.after,
                limit: gap.len().clamp(1, self.config.range_limit.max(1)),
            });
        }
    }

    fn take(&mut self) -> Vec<LeaderSyncOutput> {
        std::mem::take(&mut self.out)
    }
}
