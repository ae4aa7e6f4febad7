//! The leader's change feed in a tab: entries and rows from the leader go through the tab's own
//! [`FeedCursor`] into its copy of the server's rows, and from there into the view's synced
//! rows, as each collection's [`ConflictStrategy`] says.
//!
//! A tab that sees a gap in the leader's entries (it joined late, missed a message, or a new
//! leader took over) asks the leader for what follows its sequence number
//! ([`Message::SyncFrom`], sent as a [`TabOutput::Send`]). After each batch the tab calls
//! [`TabCore::synced_to`] with its cursor's position, so `persisted_awaiting_sync`
//! transactions complete in every tab at the same point of the feed.

use super::{TabCore, TabOutput};
use crate::model::{ErrorCode, TransactionState};
use crate::protocol::Message;
use crate::sync::{CollectionSnapshot, FeedCursor, FeedEntry, RowsPart};
use crate::view::RowRef;
use serde_json::Value;
use std::collections::HashSet;

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;

/// What a server change does to a row that has pending changes laid over it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ConflictStrategy {
    /// The server's row becomes the synced row and the pending changes are laid over it again
    /// (the overlay recomputes): the pending changes win until they settle.
    #[default]
    Rebase,
    /// The server's row shows at once: pending changes laid over the row before the server
    /// change are hidden from it (they still run; ones made later show as usual).
    ServerWins,
    /// Seed 001's ordered strategy (`getLockedObjects`): a change to a row that a transaction
    /// still `persisting` or `persisted_awaiting_sync` touches waits until no such transaction
    /// touches it, then shows (the latest server row: later changes to the row wait behind the
    /// first, in order). A `pending` or `queued` transaction (waiting for its first attempt, or
    /// for a retry) does not hold rows back: it is laid over the server's row as with
    /// [`Rebase`](Self::Rebase).
    Hold,
    /// The app's merge function decides: a change to a row that an unsettled transaction
    /// touches asks for a merge ([`TabOutput::Merge`]) of the server's row and the row as
    /// shown; the answer ([`TabCore::merged`]) is what shows. Once no unsettled transaction
    /// touches the row, it shows the server's row again.
    Merge,
}

impl TabCore {
    /// Follow the leader's feed for these collections: they are synced externally (a
    /// completion waits for the feed to show it), and on every new leader, and now if one is
    /// known, the tab asks it for what follows its position. The leader answers first with the
    /// collections its feed follows ([`Message::FeedCollections`]): one it does not follow is
    /// reported, and not waited for (see `check_coverage`).
    pub fn follow_leader_feed<S: AsRef<str>>(&mut self, collections: &[S]) -> Vec<TabOutput> {
        for c in collections {
            self.set_externally_synced(c.as_ref());
            self.followed.insert(c.as_ref().to_owned());
        }
        self.follows_feed = true;
        self.check_coverage();
        if self.leader.is_some() {
            self.ask_feed();
        }
        self.take()
    }

    /// The leader says which collections its feed follows ([`Message::FeedCollections`]).
    pub(super) fn leader_feed_covers(&mut self, collections: Vec<String>) {
        self.feed_covers = Some(collections.into_iter().collect());
        self.check_coverage();
    }

    /// Followed collections the leader's feed does not follow get no feed: each is reported
    /// once (a [`TabOutput::Diagnostic`], `OUTBOX_INVALID`), and synced by completions as a
    /// collection without a sync is, so its completed changes stay in the view and nothing
    /// waits for a feed that will not come (a completion held for it is released). One the
    /// feed follows again (a later leader's) waits for the feed again.
    fn check_coverage(&mut self) {
        let Some(covers) = &self.feed_covers else {
            return;
        };
        let (now_covered, now_uncovered): (Vec<String>, Vec<String>) = self
            .followed
            .iter()
            .cloned()
            .partition(|c| covers.contains(c));
        let mut changed = false;
        for c in now_covered {
            if self.uncovered.remove(&c) {
                self.set_externally_synced(&c);
                changed = true;
            }
        }
        for c in now_uncovered {
            if !self.uncovered.insert(c.clone()) {
                continue;
            }
            changed = true;
            self.externally_synced.remove(&c);
            self.out.push(TabOutput::Diagnostic {
                code: ErrorCode::Invalid,
                message: format!(
                    "collection {c:?} has sync: 'leader', but the leader's change feed does not \
                     follow it (list it in the worker's sync: {{ collections }} option, and in \
                     connect's for a tab that may run online-only): no feed will bring its \
                     rows, so its completed changes are kept as they completed and not waited for"
                ),
            });
        }
        if changed {
            self.release_unsynced();
            self.rebase_on_rows();
        }
    }

    /// How a collection resolves server changes to rows with pending changes (default
    /// [`ConflictStrategy::Rebase`]).
    pub fn set_conflict(&mut self, collection: &str, strategy: ConflictStrategy) -> Vec<TabOutput> {
        self.conflicts.insert(collection.to_owned(), strategy);
        self.release_held();
        self.take()
    }

    /// The last feed sequence number this tab applied.
    pub fn feed_applied(&self) -> u64 {
        self.feed.applied()
    }

    /// The server's rows as this tab has them from the leader (no pending changes, nothing
    /// held back).
    pub fn server_rows(&self) -> &crate::sync::SyncedRows {
        &self.server
    }

    /// Entries from the leader ([`Message::SyncEntries`]; the tab reads them itself from
    /// [`TabCore::receive`], from the verified leader only): applied in order, once; a gap asks
    /// the leader for what follows. A tab that holds its own feed (online-only mode) may call
    /// this directly with the entries it reads.
    pub fn sync_entries(&mut self, entries: Vec<FeedEntry>) -> Vec<TabOutput> {
        let valid = entries.into_iter().filter(|e| e.validate().is_ok());
        let intake = self.feed.offer_all(valid);
        if intake.fetch.is_some() || intake.snapshot {
            self.ask_feed();
        }
        let applied = !intake.ready.is_empty();
        self.apply_entries(intake.ready);
        if applied {
            self.settle_feed();
        }
        self.take()
    }

    /// A part of a collection's rows from the leader ([`Message::SyncRows`], read by
    /// [`TabCore::receive`]; or, with a feed of its own, a snapshot it loaded). Parts are
    /// gathered, per collection and sequence number, until the last (`more: false`); then the
    /// collection's rows are replaced, unless the tab already has them at a later sequence
    /// number, or has just taken in these same rows (a second delivery, whose parts may have
    /// gone into the first: the leader's broadcast and its answer to this tab travel apart) —
    /// or, when the server's numbering restarted ([`RowsPart::restart`]), whatever it has (once
    /// per restart: a second delivery of the same restart's rows is skipped): the tab's feed
    /// then starts again from these rows, and entries of the old numbering it holds are
    /// dropped.
    pub fn sync_rows(&mut self, part: RowsPart) -> Vec<TabOutput> {
        let restart = part.restart;
        let key = (part.collection.clone(), part.seq);
        self.rows_parts
            .entry(key.clone())
            .or_insert_with(|| CollectionSnapshot {
                collection: part.collection.clone(),
                seq: part.seq,
                rows: Vec::new(),
            })
            .rows
            .extend(part.rows);
        if part.more {
            return self.take();
        }
        let Some(snap) = self.rows_parts.remove(&key) else {
            return self.take();
        };
        // Parts of older rows of the collection still gathering will not be taken in.
        self.rows_parts
            .retain(|(c, seq), _| *c != snap.collection || *seq > snap.seq);
        let taken = if restart {
            self.restarts_taken.get(&snap.collection) == Some(&snap.seq)
        } else {
            self.server
                .seq(&snap.collection)
                .is_some_and(|s| s > snap.seq)
                || self.rows_taken.get(&snap.collection) == Some(&snap.seq)
        };
        if taken {
            return self.take(); // older than what the tab has, or taken in already
        }
        self.rows_taken.insert(snap.collection.clone(), snap.seq);
        if restart {
            self.restarts_taken
                .insert(snap.collection.clone(), snap.seq);
        }
        if restart {
            // Entries of the old numbering, applied or waiting behind a gap, mean nothing now
            // (the leader sends the restart's rows before any entry of the new numbering).
            self.feed = FeedCursor::new(snap.seq);
            // Sequence numbers the sync reached in the old numbering say nothing now.
            self.synced_seq = None;
        }
        self.set_externally_synced(&snap.collection);
        let changed = self.server.load(snap);
        let rows: Vec<RowRef> = changed.into_iter().map(|c| (c.collection, c.key)).collect();
        self.server_rows_changed(rows);
        self.rebase_on_rows();
        self.take()
    }

    /// Once every followed collection's rows have come in, the feed goes on from where they
    /// are all current.
    fn rebase_on_rows(&mut self) {
        if let Some(base) = self.feed_base() {
            if base != self.feed.applied() {
                let intake = self.feed.reset(base);
                if intake.fetch.is_some() {
                    self.ask_feed();
                }
                self.apply_entries(intake.ready);
            }
            self.settle_feed();
        }
    }

    /// Forgets partly received rows (a new leader will send its own).
    pub(super) fn feed_leader_changed(&mut self) {
        self.rows_parts.clear();
        if self.follows_feed {
            self.ask_feed();
        }
    }

    /// Where the tab's rows are all current: the lowest sequence number of its collections,
    /// once every followed collection the feed follows has come in.
    fn feed_base(&self) -> Option<u64> {
        if self
            .followed
            .iter()
            .any(|c| !self.uncovered.contains(c) && self.server.seq(c).is_none())
        {
            return None;
        }
        self.server.min_seq()
    }

    fn ask_feed(&mut self) {
        self.out.push(TabOutput::Send(Message::SyncFrom {
            applied: self.feed.applied(),
        }));
    }

    fn apply_entries(&mut self, entries: Vec<FeedEntry>) {
        for e in entries {
            let changed = self.server.apply(&e);
            self.server.advance(e.seq);
            let rows: Vec<RowRef> = changed.into_iter().map(|c| (c.collection, c.key)).collect();
            self.server_rows_changed(rows);
        }
    }

    /// The feed's position is final for this batch: completions it covers settle, and rows
    /// held back for them show.
    fn settle_feed(&mut self) {
        let seq = self.feed.applied();
        let mut out = self.synced_to(seq);
        out.push(TabOutput::FeedAdvanced(seq));
        self.out = out;
        self.release_held();
    }

    /// Server rows changed: each shows in the view as its collection's strategy says.
    fn server_rows_changed(&mut self, mut rows: Vec<RowRef>) {
        rows.dedup();
        if rows.is_empty() {
            return;
        }
        self.sync_reported = true;
        let holds = self
            .conflicts
            .values()
            .any(|s| *s == ConflictStrategy::Hold);
        let locked = if holds {
            self.locked_rows()
        } else {
            HashSet::new()
        };
        let mut touched = Vec::new();
        for r in rows {
            let strategy = self.conflicts.get(&r.0).copied().unwrap_or_default();
            if strategy == ConflictStrategy::Hold && (locked.contains(&r) || self.held.contains(&r))
            {
                self.held.insert(r);
                continue;
            }
            if strategy == ConflictStrategy::Merge && self.unsettled_rows().contains(&r) {
                self.merged.insert(r.clone());
                self.out.push(TabOutput::Merge {
                    server: self.server.get(&r.0, &r.1).cloned(),
                    local: self.view.get(&r.0, &r.1).cloned(),
                    collection: r.0,
                    key: r.1,
                });
                continue;
            }
            let value = self.server.get(&r.0, &r.1).cloned();
            self.view.set_synced(&r.0, &r.1, value);
            if strategy == ConflictStrategy::ServerWins {
                self.view.mask_pending(&r.0, &r.1);
            }
            if !touched.contains(&r) {
                touched.push(r);
            }
        }
        if !touched.is_empty() {
            self.out.push(TabOutput::RowsChanged(touched));
        }
    }

    /// Rows touched by a transaction still `persisting` or `persisted_awaiting_sync`.
    fn locked_rows(&self) -> HashSet<RowRef> {
        self.known
            .values()
            .filter(|k| {
                matches!(
                    k.tx.state,
                    TransactionState::Persisting | TransactionState::PersistedAwaitingSync
                ) && self.view.is_pending(&k.tx.id)
            })
            .flat_map(|k| k.tx.mutations.iter())
            .map(|m| (m.collection.clone(), m.key.clone()))
            .collect()
    }

    /// The app's merge of a row ([`TabOutput::Merge`]): shown as it is (the pending changes it
    /// merged are not laid over it again; later ones are) until no unsettled transaction
    /// touches the row. A row that settled meanwhile is left alone.
    pub fn merged(&mut self, collection: &str, key: &str, row: Option<Value>) -> Vec<TabOutput> {
        let r = (collection.to_owned(), key.to_owned());
        if self.merged.contains(&r) {
            self.view.set_synced(collection, key, row);
            let changed = self.view.mask_pending(collection, key);
            self.out.push(TabOutput::RowsChanged(vec![changed]));
        }
        self.take()
    }

    /// Rows touched by a transaction not settled yet (shown over the server's rows).
    fn unsettled_rows(&self) -> HashSet<RowRef> {
        self.known
            .values()
            .filter(|k| self.view.is_pending(&k.tx.id))
            .flat_map(|k| k.tx.mutations.iter())
            .map(|m| (m.collection.clone(), m.key.clone()))
            .collect()
    }

    /// Merged rows no unsettled transaction touches any more show the server's row.
    fn release_merged(&mut self) {
        if self.merged.is_empty() {
            return;
        }
        let touched = self.unsettled_rows();
        let free: Vec<RowRef> = self
            .merged
            .iter()
            .filter(|r| !touched.contains(*r))
            .cloned()
            .collect();
        for r in &free {
            self.merged.remove(r);
            let value = self.server.get(&r.0, &r.1).cloned();
            self.view.set_synced(&r.0, &r.1, value);
        }
        if !free.is_empty() {
            self.out.push(TabOutput::RowsChanged(free));
        }
    }

    /// Held rows no transaction locks any more (or whose collection no longer holds) show the
    /// server's row; merged rows no transaction touches show it again too.
    pub(super) fn release_held(&mut self) {
        self.release_merged();
        if self.held.is_empty() {
            return;
        }
        let locked = self.locked_rows();
        let free: Vec<RowRef> = self
            .held
            .iter()
            .filter(|r| {
                !locked.contains(*r)
                    || self.conflicts.get(&r.0).copied().unwrap_or_default()
                        != ConflictStrategy::Hold
            })
            .cloned()
            .collect();
        if free.is_empty() {
            return;
        }
        for r in &free {
            self.held.remove(r);
            let value = self.server.get(&r.0, &r.1).cloned();
            self.view.set_synced(&r.0, &r.1, value);
        }
        self.out.push(TabOutput::RowsChanged(free));
    }
}
