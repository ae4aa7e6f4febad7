//! The transactions completed (or removed) lately, for answering a late resend (one that
//! crossed a leader change) with "completed" (or "removed") instead of running it again: what
//! storage keeps as tombstones (or removals), kept in memory for as long as storage keeps it
//! ([`TOMBSTONE_TTL_MS`]), so a leader that leads for days does not hold every id it ever
//! settled.

use crate::model::{Millis, TransactionId};
use crate::store::TOMBSTONE_TTL_MS;
use std::collections::{HashSet, VecDeque};

#[derive(Debug, Default)]
pub(super) struct Completed {
    ids: HashSet<TransactionId>,
    /// The same ids with their completion times, oldest first.
    order: VecDeque<(Millis, TransactionId)>,
}

impl Completed {
    /// From the ids and times storage gave at the start of a leadership.
    pub fn loaded(settled: impl IntoIterator<Item = (TransactionId, Millis)>) -> Self {
        let mut settled: Vec<(TransactionId, Millis)> = settled.into_iter().collect();
        settled.sort_by_key(|(_, at)| *at);
        let mut completed = Self::default();
        for (id, at) in settled {
            if completed.ids.insert(id.clone()) {
                completed.order.push_back((at, id));
            }
        }
        completed
    }

    pub fn contains(&self, id: &TransactionId) -> bool {
        self.ids.contains(id)
    }

    /// Notes `id` as completed at `now`, and forgets those storage no longer keeps.
    pub fn insert(&mut self, id: TransactionId, now: Millis) {
        let cutoff = now.saturating_sub(TOMBSTONE_TTL_MS);
        while self.order.front().is_some_and(|(at, _)| *at < cutoff) {
            if let Some((_, old)) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        if self.ids.insert(id.clone()) {
            self.order.push_back((now, id));
        }
    }

    /// The `n` most recent ids, newest first.
    pub fn latest(&self, n: usize) -> Vec<TransactionId> {
        self.order
            .iter()
            .rev()
            .take(n)
            .map(|(_, id)| id.clone())
            .collect()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_as_long_as_storage_keeps_their_tombstones() {
        let mut c = Completed::loaded(vec![("b".into(), 20), ("a".into(), 10)]);
        c.insert("c".into(), 30);
        assert!(c.contains(&"a".into()) && c.contains(&"c".into()));
        // One day after "a": "a" is still kept (storage keeps it until it is older than that).
        c.insert("d".into(), 10 + TOMBSTONE_TTL_MS);
        assert!(c.contains(&"a".into()));
        c.insert("e".into(), 21 + TOMBSTONE_TTL_MS);
        assert!(!c.contains(&"a".into()) && !c.contains(&"b".into()));
        assert!(c.contains(&"c".into()) && c.contains(&"e".into()));
        assert_eq!(c.len(), 3);
    }
}
