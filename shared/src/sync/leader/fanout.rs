//! Persisting what was applied, then telling the tabs: the group-committed batches, the
//! broadcasts that follow them, and answers to tabs that are behind.

use super::{Announce, Batch, LeaderSync, LeaderSyncOutput, PersistBatch};
use crate::model::ClientId;
use crate::sync::{split_snapshot, FeedEntry};

impl LeaderSync {
    /// Writes the pending changes, unless a batch is in flight.
    pub(super) fn persist_next(&mut self) {
        if self.in_flight.is_some()
            || (self.pending.writes.is_empty() && self.pending.announce.is_empty())
        {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let seq = self.cursor.applied();
        self.out.push(LeaderSyncOutput::Persist(PersistBatch {
            seq,
            seqs: self.rows.seqs(),
            writes: batch.writes.clone(),
        }));
        self.in_flight = Some((
            seq,
            Batch {
                writes: Vec::new(),
                announce: batch.announce,
            },
        ));
    }

    /// Tells the tabs what was persisted, in order: rows of reloaded collections (the log
    /// starts again after them), entries (kept in the log).
    pub(super) fn announce(&mut self, items: Vec<Announce>) {
        let mut entries: Vec<FeedEntry> = Vec::new();
        for item in items {
            match item {
                Announce::Rows(snap, restart) => {
                    if !entries.is_empty() {
                        self.out
                            .push(LeaderSyncOutput::Broadcast(std::mem::take(&mut entries)));
                    }
                    self.log.clear();
                    let mut parts = split_snapshot(snap, self.config.rows_per_part);
                    for p in &mut parts {
                        p.restart = restart;
                    }
                    self.out
                        .push(LeaderSyncOutput::SendRows { to: None, parts });
                }
                Announce::Entry(e) => {
                    self.log.push_back(e.clone());
                    if self.log.len() > self.config.log_entries {
                        self.log.pop_front();
                    }
                    entries.push(e);
                }
            }
        }
        if !entries.is_empty() {
            self.out.push(LeaderSyncOutput::Broadcast(entries));
        }
    }

    pub(super) fn quiescent(&self) -> bool {
        self.loading.is_empty()
            && self.in_flight.is_none()
            && self.pending.writes.is_empty()
            && self.pending.announce.is_empty()
    }

    pub(super) fn answer(&mut self, to: ClientId, applied: u64) {
        // A tab ahead of what tabs were told is at a position of a numbering the server has
        // since restarted (storage is never behind a tab otherwise): it gets every row, to
        // replace its own.
        let ahead = self.announced.is_some_and(|a| applied > a);
        // A tab at 0 has no rows: it gets them, even from a server whose rows are at 0 (its
        // change log empty: data from before the feed, an import), where it was told it was up
        // to date and showed nothing.
        let bare = applied == 0
            && self
                .rows
                .collections()
                .any(|c| self.rows.rows(c).next().is_some());
        if !ahead && !bare && self.announced.is_some_and(|a| applied >= a) {
            return; // up to date with what tabs were told
        }
        if !ahead && !bare && self.log.front().is_some_and(|f| f.prev_seq <= applied) {
            let entries: Vec<FeedEntry> = self
                .log
                .iter()
                .filter(|e| e.seq > applied)
                .cloned()
                .collect();
            self.out.push(LeaderSyncOutput::SendEntries { to, entries });
        } else if self.quiescent() {
            let mut parts = self.rows.snapshot_parts(self.config.rows_per_part);
            for p in &mut parts {
                p.restart = ahead;
            }
            self.out.push(LeaderSyncOutput::SendRows {
                to: Some(to),
                parts,
            });
        } else {
            self.asks.insert(to, applied);
        }
    }

    pub(super) fn answer_waiting(&mut self) {
        if self.quiescent() {
            for (to, applied) in std::mem::take(&mut self.asks) {
                self.answer(to, applied);
            }
        }
    }
}
