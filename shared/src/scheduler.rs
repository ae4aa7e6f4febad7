//! The key scheduler: ordered transactions run first-in first-out per key and in parallel
//! across disjoint keys; parallel-strategy transactions never queue.

use crate::model::{Key, Strategy, TransactionId};
use std::collections::{HashMap, VecDeque};

/// Per-key FIFO queues of the ordered transactions that have not yet been persisted.
///
/// A transaction enters when the leader accepts it (in acceptance order) and leaves when it is
/// persisted, fails, or is removed. An ordered transaction may run only when it is at the front
/// of the queue of every key it touches.
#[derive(Debug, Default)]
pub struct KeyScheduler {
    queues: HashMap<Key, VecDeque<TransactionId>>,
}

impl KeyScheduler {
    /// An empty scheduler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a transaction at the back of each of its keys' queues. Parallel transactions are
    /// not queued. Returns the transaction it waits behind, if any.
    pub fn enqueue(
        &mut self,
        id: &TransactionId,
        strategy: Strategy,
        keys: &[Key],
    ) -> Option<TransactionId> {
        if strategy == Strategy::Parallel {
            return None;
        }
        for k in keys {
            self.queues
                .entry(k.clone())
                .or_default()
                .push_back(id.clone());
        }
        self.blocker(id, strategy, keys)
    }

    /// The first transaction ahead of `id` on any of its keys, or `None` if it may run.
    pub fn blocker(
        &self,
        id: &TransactionId,
        strategy: Strategy,
        keys: &[Key],
    ) -> Option<TransactionId> {
        if strategy == Strategy::Parallel {
            return None;
        }
        keys.iter().find_map(|k| match self.queues.get(k)?.front() {
            Some(front) if front != id => Some(front.clone()),
            _ => None,
        })
    }

    /// Takes `id` out of its keys' queues (wherever it stands) and returns the transactions
    /// that became the front of a queue because of it, so the caller can re-check them.
    pub fn remove(&mut self, id: &TransactionId, keys: &[Key]) -> Vec<TransactionId> {
        let mut promoted = Vec::new();
        for k in keys {
            let Some(q) = self.queues.get_mut(k) else {
                continue;
            };
            let was_front = q.front() == Some(id);
            q.retain(|x| x != id);
            if was_front {
                if let Some(next) = q.front() {
                    if !promoted.contains(next) {
                        promoted.push(next.clone());
                    }
                }
            }
            if q.is_empty() {
                self.queues.remove(k);
            }
        }
        promoted
    }

    /// Every transaction queued behind `id` on any of its keys (not transitively).
    pub fn behind(&self, id: &TransactionId, keys: &[Key]) -> Vec<TransactionId> {
        let mut out = Vec::new();
        for k in keys {
            if let Some(q) = self.queues.get(k) {
                let mut seen = false;
                for x in q {
                    if seen && !out.contains(x) {
                        out.push(x.clone());
                    }
                    seen |= x == id;
                }
            }
        }
        out
    }

    /// Number of keys with a non-empty queue.
    pub fn busy_keys(&self) -> usize {
        self.queues.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Strategy;
    use proptest::prelude::*;

    fn id(s: &str) -> TransactionId {
        TransactionId(s.to_owned())
    }
    fn keys(ks: &[&str]) -> Vec<Key> {
        ks.iter().map(|k| Key((*k).to_owned())).collect()
    }

    #[test]
    fn ordered_transactions_queue_per_key_and_disjoint_keys_run_in_parallel() {
        let mut s = KeyScheduler::new();
        assert_eq!(s.enqueue(&id("a"), Strategy::Ordered, &keys(&["x"])), None);
        assert_eq!(s.enqueue(&id("b"), Strategy::Ordered, &keys(&["y"])), None);
        assert_eq!(
            s.enqueue(&id("c"), Strategy::Ordered, &keys(&["y", "x"])),
            Some(id("b"))
        );
        assert_eq!(s.remove(&id("b"), &keys(&["y"])), vec![id("c")]);
        assert_eq!(
            s.blocker(&id("c"), Strategy::Ordered, &keys(&["y", "x"])),
            Some(id("a"))
        );
        assert_eq!(s.remove(&id("a"), &keys(&["x"])), vec![id("c")]);
        assert_eq!(
            s.blocker(&id("c"), Strategy::Ordered, &keys(&["y", "x"])),
            None
        );
    }

    #[test]
    fn parallel_transactions_never_queue_nor_block() {
        let mut s = KeyScheduler::new();
        assert_eq!(s.enqueue(&id("p"), Strategy::Parallel, &keys(&["x"])), None);
        assert_eq!(s.enqueue(&id("a"), Strategy::Ordered, &keys(&["x"])), None);
        assert_eq!(s.enqueue(&id("q"), Strategy::Parallel, &keys(&["x"])), None);
    }

    #[test]
    fn behind_lists_direct_followers_on_every_key() {
        let mut s = KeyScheduler::new();
        s.enqueue(&id("a"), Strategy::Ordered, &keys(&["x", "y"]));
        s.enqueue(&id("b"), Strategy::Ordered, &keys(&["x"]));
        s.enqueue(&id("c"), Strategy::Ordered, &keys(&["y"]));
        s.enqueue(&id("d"), Strategy::Ordered, &keys(&["z"]));
        assert_eq!(
            s.behind(&id("a"), &keys(&["x", "y"])),
            vec![id("b"), id("c")]
        );
        assert!(s.behind(&id("d"), &keys(&["z"])).is_empty());
    }

    proptest! {
        /// Draining the scheduler by always running a random runnable transaction runs every
        /// transaction, and for every key the run order is the enqueue order.
        #[test]
        fn drains_in_per_key_fifo_order(
            txs in prop::collection::vec(prop::collection::btree_set(0u8..5, 1..3), 1..40),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 40),
        ) {
            let mut s = KeyScheduler::new();
            let all: Vec<(TransactionId, Vec<Key>)> = txs.iter().enumerate().map(|(i, ks)| {
                (TransactionId(i.to_string()), ks.iter().map(|k| Key(k.to_string())).collect())
            }).collect();
            for (i, ks) in &all {
                s.enqueue(i, Strategy::Ordered, ks);
            }
            let mut left = all.clone();
            let mut ran: Vec<usize> = Vec::new();
            let mut pick = picks.iter().cycle();
            while !left.is_empty() {
                let runnable: Vec<usize> = (0..left.len())
                    .filter(|&j| s.blocker(&left[j].0, Strategy::Ordered, &left[j].1).is_none())
                    .collect();
                prop_assert!(!runnable.is_empty(), "deadlock");
                let j = runnable[pick.next().unwrap().index(runnable.len())];
                let (i, ks) = left.remove(j);
                s.remove(&i, &ks);
                ran.push(i.0.parse().unwrap());
            }
            for k in 0u8..5 {
                let order: Vec<usize> = ran.iter().copied()
                    .filter(|&i| txs[i].contains(&k)).collect();
                let mut sorted = order.clone();
                sorted.sort_unstable();
                prop_assert_eq!(order, sorted);
            }
            prop_assert_eq!(s.busy_keys(), 0);
        }
    }
}
