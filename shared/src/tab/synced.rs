//! The synced rows: what a collection's sync source says, and what completions fold in for
//! collections that have no sync source.

use super::{TabCore, TabOutput};
use crate::model::{Transaction, TransactionId, TransactionState};
use crate::view::RowRef;
use serde_json::Value;
use std::collections::BTreeMap;

impl TabCore {
    /// Marks a collection as fed by a sync source: completions do not touch its synced rows.
    pub fn set_externally_synced(&mut self, collection: &str) {
        self.externally_synced.insert(collection.to_owned());
    }

    /// The collection's sync source failed to start (its `setup` threw): nothing will sync it,
    /// so it is synced by completions again, as a collection without a sync source is (a
    /// completed change stays in the view instead of leaving it for a sync that never comes),
    /// and completions of it held for the sync are released.
    pub fn sync_source_failed(&mut self, collection: &str) -> Vec<TabOutput> {
        self.externally_synced.remove(collection);
        self.release_unsynced();
        self.take()
    }

    /// Completions held for a sync ([`TabCore::must_await_sync`]) whose collections no sync
    /// source follows any more complete now.
    pub(super) fn release_unsynced(&mut self) {
        let mut released: Vec<(u64, TransactionId)> = self
            .awaiting_sync
            .iter()
            .filter(|(id, _)| {
                self.known.get(*id).is_none_or(|k| {
                    !k.tx
                        .mutations
                        .iter()
                        .any(|m| self.externally_synced.contains(&m.collection))
                })
            })
            .map(|(id, s)| (*s, id.clone()))
            .collect();
        released.sort();
        for (_, id) in released {
            self.awaiting_sync.remove(&id);
            if let Some(mut done) = self.known.get(&id).map(|k| k.tx.clone()) {
                done.state = TransactionState::Completed;
                self.update(done, true);
            }
        }
    }

    /// Sets a synced row (from the collection's sync source).
    pub fn set_synced(
        &mut self,
        collection: &str,
        key: &str,
        row: Option<Value>,
    ) -> Vec<TabOutput> {
        self.sync_reported = true;
        let r = self.view.set_synced(collection, key, row);
        self.out.push(TabOutput::RowsChanged(vec![r]));
        self.take()
    }

    /// Replaces every synced row of a collection (a snapshot from its sync source).
    pub fn replace_synced(
        &mut self,
        collection: &str,
        rows: BTreeMap<String, Value>,
    ) -> Vec<TabOutput> {
        self.sync_reported = true;
        let mut touched: Vec<RowRef> = self
            .view
            .rows(collection)
            .map(|(k, _)| (collection.to_owned(), k.clone()))
            .collect();
        touched.extend(rows.keys().map(|k| (collection.to_owned(), k.clone())));
        touched.sort();
        touched.dedup();
        self.view.replace_synced(collection, rows);
        self.out.push(TabOutput::RowsChanged(touched));
        self.take()
    }

    /// A sync source has applied server changes up to `seq`. Completed transactions it now
    /// covers leave the overlay (their change is in the synced rows) and read `completed`.
    pub fn synced_to(&mut self, seq: u64) -> Vec<TabOutput> {
        self.sync_reported = true;
        let seen = self.synced_seq.map_or(seq, |s| s.max(seq));
        self.synced_seq = Some(seen);
        self.release_awaiting(seen);
        self.take()
    }

    /// A sync source reported rows without a sequence number. If it has never given one, it is
    /// a source that does not (it is not waited for): the completions held until its first
    /// report are released too, or they would wait for a number that never comes.
    pub fn synced_without_seq(&mut self) -> Vec<TabOutput> {
        self.sync_reported = true;
        if self.synced_seq.is_none() {
            self.release_awaiting(u64::MAX);
        }
        self.take()
    }

    /// Completed transactions waiting for a sequence number up to `seen` read `completed`.
    fn release_awaiting(&mut self, seen: u64) {
        let mut released: Vec<(u64, TransactionId)> = self
            .awaiting_sync
            .iter()
            .filter(|(_, s)| **s <= seen)
            .map(|(id, s)| (*s, id.clone()))
            .collect();
        released.sort();
        for (_, id) in released {
            self.awaiting_sync.remove(&id);
            if let Some(tx) = self.known.get(&id).map(|k| k.tx.clone()) {
                let mut done = tx;
                done.state = TransactionState::Completed;
                self.update(done, true);
            }
        }
    }

    /// For a completed transaction: the server sequence number to wait for, when its reply
    /// named one, it touches a collection with a sync source, and that source has not reached
    /// it: it reported a lower sequence number, or has reported nothing yet (still loading, or
    /// its server unreachable). A source that reports rows but never sequence numbers is not
    /// waited for.
    pub(super) fn must_await_sync(&self, tx: &Transaction) -> Option<u64> {
        if tx.state != TransactionState::Completed {
            return None;
        }
        let seq = tx.server_seq?;
        let behind = match self.synced_seq {
            Some(synced) => seq > synced,
            None => !self.sync_reported,
        };
        let external = tx
            .mutations
            .iter()
            .any(|m| self.externally_synced.contains(&m.collection));
        (external && behind).then_some(seq)
    }

    /// The app uses `collection` in this tab: other tabs' completed changes to it are kept
    /// (see `TabCore::fold_into_synced`).
    pub fn define_collection(&mut self, collection: &str) {
        if !self.defined.contains(collection) {
            self.defined.insert(collection.to_owned());
        }
    }

    /// A completed transaction's effect becomes part of the synced rows of collections that have
    /// no sync source of their own (there is nothing else that would ever show it): those
    /// this tab defined, and any its `own` transaction touched. Another tab's changes to a
    /// collection this tab does not use are not kept (a tab would otherwise hold every row
    /// any tab ever wrote, in every collection).
    pub(super) fn fold_into_synced(&mut self, tx: &Transaction, own: bool) {
        for m in tx.mutations.iter() {
            if self.externally_synced.contains(&m.collection)
                || !(own || self.defined.contains(&m.collection))
            {
                continue;
            }
            let row = m.apply_to(self.view.synced(&m.collection, &m.key));
            self.view.set_synced_row(&m.collection, &m.key, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::ClientId;
    use crate::tab::{TabCore, TabOutput};
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn a_snapshot_replaces_the_synced_rows_and_names_every_row_it_touched() {
        let mut t = TabCore::new(ClientId("me".into()), "todos");
        t.set_synced("todos", "1", Some(json!({"id": "1"})));
        t.set_synced("todos", "2", Some(json!({"id": "2"})));
        let rows = BTreeMap::from([
            ("2".to_owned(), json!({"id": "2", "v": 2})),
            ("3".to_owned(), json!({"id": "3"})),
        ]);
        let out = t.replace_synced("todos", rows);
        let [TabOutput::RowsChanged(touched)] = &out[..] else {
            panic!("{out:?}")
        };
        let keys: Vec<&str> = touched.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(keys, vec!["1", "2", "3"]);
        assert_eq!(t.view().get("todos", "1"), None);
        assert_eq!(
            t.view().get("todos", "2"),
            Some(&json!({"id": "2", "v": 2}))
        );
    }
}
