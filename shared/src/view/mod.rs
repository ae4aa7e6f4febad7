//! The optimistic view: the synced rows of each collection with the changes of every pending
//! transaction (from every tab) laid over them, in order.
//!
//! The view is kept materialised: a change to the synced rows or to the pending set recomputes
//! only the rows it touches, so reads are plain lookups and a new pending insert costs one row.
//! A transaction that fails is simply taken out of the overlay: the rows it touched are
//! recomputed from the synced rows and the remaining overlay, which is an exact rollback.

use crate::model::{PendingMutation, Row, Transaction, TransactionId};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// How many more keys than its rows a collection's list of changes may hold before it is
/// dropped for "everything changed" (see [`OptimisticView::take_changed`]).
pub const CHANGED_SLACK: usize = 64;

/// A row: its collection and key.
pub type RowRef = (String, String);

/// Synced rows plus the overlay of pending transactions.
#[derive(Debug, Default, Clone)]
pub struct OptimisticView {
    synced: HashMap<String, BTreeMap<String, Row>>,
    /// The materialised result, per collection. A row is shared with the synced rows or the
    /// mutation it comes from where it is the same value.
    view: HashMap<String, BTreeMap<String, Row>>,
    /// Pending transactions' mutations, by overlay order.
    pending: BTreeMap<u64, (TransactionId, Arc<[PendingMutation]>)>,
    order_of: HashMap<TransactionId, u64>,
    /// Per row, the overlay orders that touch it, in increasing order.
    touching: HashMap<RowRef, Vec<u64>>,
    /// Per row, the overlay order at or below which pending changes are not shown (the
    /// server's row won over them, see [`OptimisticView::mask_pending`]).
    masked: HashMap<RowRef, u64>,
    next_order: u64,
    /// Keys whose rows changed since the last [`OptimisticView::take_changed`], per collection
    /// that a reader has asked about: what a reader keeping its own copy of the rows must look
    /// at again. A collection nobody asks about keeps no list (it would only grow); `None`:
    /// more changed than the collection has rows (the list was dropped, the reader copies the
    /// rows whole), so a list its reader stopped taking stays bounded.
    changed: HashMap<String, Option<BTreeSet<String>>>,
}

impl OptimisticView {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lays a transaction's mutations over the view, after every pending one already there.
    /// Adding one that is already there changes nothing. Returns the rows that changed.
    pub fn add_pending(&mut self, tx: &Transaction) -> Vec<RowRef> {
        if self.order_of.contains_key(&tx.id) {
            return Vec::new();
        }
        self.next_order += 1;
        let order = self.next_order;
        self.order_of.insert(tx.id.clone(), order);
        self.pending
            .insert(order, (tx.id.clone(), tx.mutations.clone()));
        let rows = rows_of(&tx.mutations);
        for row in &rows {
            self.touching.entry(row.clone()).or_default().push(order);
        }
        self.recompute(&rows);
        rows
    }

    /// Takes a transaction's changes out of the overlay (it completed and the synced rows now
    /// hold its effect, or it failed and is rolled back). Returns the rows that were touched.
    pub fn remove_pending(&mut self, id: &TransactionId) -> Vec<RowRef> {
        let Some(order) = self.order_of.remove(id) else {
            return Vec::new();
        };
        let Some((_, mutations)) = self.pending.remove(&order) else {
            return Vec::new();
        };
        let rows = rows_of(&mutations);
        for row in &rows {
            if let Some(v) = self.touching.get_mut(row) {
                v.retain(|o| *o != order);
                if v.is_empty() {
                    self.touching.remove(row);
                    self.masked.remove(row);
                }
            }
        }
        self.recompute(&rows);
        rows
    }

    /// Whether the transaction is in the overlay.
    pub fn is_pending(&self, id: &TransactionId) -> bool {
        self.order_of.contains_key(id)
    }

    /// Sets (or, with `None`, deletes) a synced row.
    pub fn set_synced(&mut self, collection: &str, key: &str, row: Option<Value>) -> RowRef {
        self.set_synced_row(collection, key, row.map(Row::new))
    }

    /// [`OptimisticView::set_synced`] with a shared row.
    pub fn set_synced_row(&mut self, collection: &str, key: &str, row: Option<Row>) -> RowRef {
        let rows = self.synced.entry(collection.to_owned()).or_default();
        match row {
            Some(v) => rows.insert(key.to_owned(), v),
            None => rows.remove(key),
        };
        let r = (collection.to_owned(), key.to_owned());
        self.recompute(std::slice::from_ref(&r));
        r
    }

    /// Replaces every synced row of a collection (a snapshot).
    pub fn replace_synced(&mut self, collection: &str, rows: BTreeMap<String, Value>) {
        let rows = rows.into_iter().map(|(k, v)| (k, Row::new(v))).collect();
        let old = self
            .synced
            .insert(collection.to_owned(), rows)
            .unwrap_or_default();
        let mut touched: Vec<RowRef> = old
            .into_keys()
            .map(|k| (collection.to_owned(), k))
            .collect();
        if let Some(now) = self.synced.get(collection) {
            touched.extend(now.keys().map(|k| (collection.to_owned(), k.clone())));
        }
        touched.sort();
        touched.dedup();
        self.recompute(&touched);
    }

    /// Hides the pending changes now laid over a row, so the row shows its synced value (a
    /// server change won over them); transactions added later are laid over it as usual. The
    /// hidden transactions stay pending (and are still taken out when they settle). Returns
    /// the row.
    pub fn mask_pending(&mut self, collection: &str, key: &str) -> RowRef {
        let r = (collection.to_owned(), key.to_owned());
        if self.touching.contains_key(&r) {
            self.masked.insert(r.clone(), self.next_order);
            self.recompute(std::slice::from_ref(&r));
        }
        r
    }

    /// The row as the app should see it.
    pub fn get(&self, collection: &str, key: &str) -> Option<&Value> {
        self.view.get(collection)?.get(key).map(|row| &**row)
    }

    /// The row as the app should see it, shared.
    pub fn get_row(&self, collection: &str, key: &str) -> Option<&Row> {
        self.view.get(collection)?.get(key)
    }

    /// How many rows a collection has.
    pub fn len(&self, collection: &str) -> usize {
        self.view.get(collection).map_or(0, BTreeMap::len)
    }

    /// Every row of a collection, by key.
    pub fn rows(&self, collection: &str) -> impl Iterator<Item = (&String, &Value)> {
        self.view
            .get(collection)
            .into_iter()
            .flatten()
            .map(|(key, row)| (key, &**row))
    }

    /// The keys of `collection` whose rows changed (to a different value, added or removed)
    /// since the last call for it, and forgets them. Every change of the view goes through
    /// here, so a reader that applies these to its copy stays equal to
    /// [`OptimisticView::rows`]. `None` says to copy [`OptimisticView::rows`] whole instead:
    /// the first call for a collection (which starts the list), and one after more keys
    /// changed than [`CHANGED_SLACK`] past the collection's rows.
    pub fn take_changed(&mut self, collection: &str) -> Option<BTreeSet<String>> {
        match self.changed.get_mut(collection) {
            Some(Some(keys)) => Some(std::mem::take(keys)),
            Some(slot) => {
                *slot = Some(BTreeSet::new());
                None
            }
            None => {
                self.changed
                    .insert(collection.to_owned(), Some(BTreeSet::new()));
                None
            }
        }
    }

    /// The synced row, without the overlay.
    pub fn synced(&self, collection: &str, key: &str) -> Option<&Value> {
        self.synced_row(collection, key).map(|row| &**row)
    }

    fn synced_row(&self, collection: &str, key: &str) -> Option<&Row> {
        self.synced.get(collection)?.get(key)
    }

    /// Pending transactions in overlay order.
    pub fn pending_ids(&self) -> impl Iterator<Item = &TransactionId> {
        self.pending.values().map(|(id, _)| id)
    }

    fn recompute(&mut self, rows: &[RowRef]) {
        for row_ref in rows {
            let (collection, key) = row_ref;
            let mut row = self.synced_row(collection, key).cloned();
            if let Some(orders) = self.touching.get(row_ref) {
                let floor = self.masked.get(row_ref).copied().unwrap_or(0);
                // In overlay order: orders are only ever pushed in increasing order.
                for o in orders.iter().filter(|o| **o > floor) {
                    if let Some((_, muts)) = self.pending.get(o) {
                        for m in muts
                            .iter()
                            .filter(|m| m.collection == *collection && m.key == *key)
                        {
                            row = m.apply_to(row.as_deref());
                        }
                    }
                }
            }
            let col = match self.view.get_mut(collection) {
                Some(col) => col,
                None => self.view.entry(collection.clone()).or_default(),
            };
            // The same value stays the same row (`Arc`'s equality looks at the pointer first):
            // a reader's copy of it need not change.
            if col.get(key) == row.as_ref() {
                continue;
            }
            match row {
                Some(v) => {
                    col.insert(key.clone(), v);
                }
                None => {
                    col.remove(key);
                }
            }
            if let Some(slot) = self.changed.get_mut(collection) {
                if let Some(keys) = slot {
                    keys.insert(key.clone());
                    if keys.len() > col.len() + CHANGED_SLACK {
                        *slot = None;
                    }
                }
            }
        }
    }
}

fn rows_of(mutations: &[PendingMutation]) -> Vec<RowRef> {
    let mut rows: Vec<RowRef> = Vec::new();
    for m in mutations {
        let r = (m.collection.clone(), m.key.clone());
        if !rows.contains(&r) {
            rows.push(r);
        }
    }
    rows
}

#[cfg(test)]
mod tests;
