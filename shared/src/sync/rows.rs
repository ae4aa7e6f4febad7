//! The server's rows, by collection and key, each collection current at its own sequence
//! number.

use super::{CollectionSnapshot, FeedEntry};
use serde_json::Value;
use std::collections::BTreeMap;

/// One collection's rows, and the sequence number they are current at.
#[derive(Debug, Clone, Default, PartialEq)]
struct Collection {
    seq: u64,
    rows: BTreeMap<String, Value>,
}

/// A row that changed: its collection, key and new value (`None`: deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedRow {
    /// The collection.
    pub collection: String,
    /// The row key.
    pub key: String,
    /// The row now; `None` when it was deleted.
    pub value: Option<Value>,
}

/// A part of a collection's rows, for sending in pieces ([`SyncedRows::snapshot_parts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RowsPart {
    /// The collection.
    pub collection: String,
    /// The sequence number the collection's rows are current at.
    pub seq: u64,
    /// Some of its rows, as (key, row).
    pub rows: Vec<(String, Value)>,
    /// More parts of this collection follow; the last says `false`.
    pub more: bool,
    /// The server's numbering restarted (it lost history: see
    /// [`super::LeaderSync::head_known`]): these rows replace the tab's whatever its sequence
    /// number, and its feed position goes back to them.
    pub restart: bool,
}

/// The server's rows (no optimistic changes), by collection and key, with a sequence number
/// per collection. A collection loaded from a snapshot at `seq` already holds every entry up
/// to `seq`, so entries apply only to collections that are behind them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncedRows {
    collections: BTreeMap<String, Collection>,
}

impl SyncedRows {
    /// No rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces a collection's rows with a snapshot (at the snapshot's sequence number).
    /// Returns the keys whose row changed (added, removed, or different).
    pub fn load(&mut self, snap: CollectionSnapshot) -> Vec<ChangedRow> {
        let rows: BTreeMap<String, Value> = snap.rows.into_iter().collect();
        let old = self
            .collections
            .insert(
                snap.collection.clone(),
                Collection {
                    seq: snap.seq,
                    rows: rows.clone(),
                },
            )
            .unwrap_or_default();
        let mut changed: Vec<ChangedRow> = old
            .rows
            .iter()
            .filter(|(k, _)| !rows.contains_key(*k))
            .map(|(k, _)| ChangedRow {
                collection: snap.collection.clone(),
                key: k.clone(),
                value: None,
            })
            .collect();
        changed.extend(
            rows.into_iter()
                .filter(|(k, v)| old.rows.get(k) != Some(v))
                .map(|(key, v)| ChangedRow {
                    collection: snap.collection.clone(),
                    key,
                    value: Some(v),
                }),
        );
        changed.sort_by(|a, b| a.key.cmp(&b.key));
        changed
    }

    /// Applies an entry's changes to the collections that are behind it (their sequence number
    /// is below `entry.seq`; a collection not loaded yet counts as at 0), and moves every
    /// collection it touched to `entry.seq`. Returns the rows that changed, in the entry's
    /// order (a row changed twice is named twice).
    pub fn apply(&mut self, entry: &FeedEntry) -> Vec<ChangedRow> {
        let mut changed = Vec::new();
        for c in &entry.changes {
            let col = self.collections.entry(c.collection.clone()).or_default();
            if col.seq >= entry.seq {
                continue;
            }
            match c.row() {
                Some(v) => col.rows.insert(c.key.clone(), v.clone()),
                None => col.rows.remove(&c.key),
            };
            changed.push(ChangedRow {
                collection: c.collection.clone(),
                key: c.key.clone(),
                value: c.row().cloned(),
            });
        }
        for c in &entry.changes {
            if let Some(col) = self.collections.get_mut(&c.collection) {
                col.seq = col.seq.max(entry.seq);
            }
        }
        changed
    }

    /// Moves every known collection to at least `seq` (the feed reached `seq`, and entries
    /// that did not touch a collection changed nothing in it).
    pub fn advance(&mut self, seq: u64) {
        for col in self.collections.values_mut() {
            col.seq = col.seq.max(seq);
        }
    }

    /// A row.
    pub fn get(&self, collection: &str, key: &str) -> Option<&Value> {
        self.collections.get(collection)?.rows.get(key)
    }

    /// A collection's rows, by key.
    pub fn rows(&self, collection: &str) -> impl Iterator<Item = (&String, &Value)> {
        self.collections
            .get(collection)
            .into_iter()
            .flat_map(|c| c.rows.iter())
    }

    /// A collection's sequence number, once it has been loaded or touched.
    pub fn seq(&self, collection: &str) -> Option<u64> {
        self.collections.get(collection).map(|c| c.seq)
    }

    /// Every collection's sequence number.
    pub fn seqs(&self) -> BTreeMap<String, u64> {
        self.collections
            .iter()
            .map(|(n, c)| (n.clone(), c.seq))
            .collect()
    }

    /// The collections known.
    pub fn collections(&self) -> impl Iterator<Item = &String> {
        self.collections.keys()
    }

    /// Where the feed must resume from: the lowest sequence number of any collection (`None`
    /// when there is none).
    pub fn min_seq(&self) -> Option<u64> {
        self.collections.values().map(|c| c.seq).min()
    }

    /// A collection's rows as a snapshot at its sequence number.
    pub fn snapshot(&self, collection: &str) -> Option<CollectionSnapshot> {
        let c = self.collections.get(collection)?;
        Some(CollectionSnapshot {
            collection: collection.to_owned(),
            seq: c.seq,
            rows: c.rows.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }

    /// Every collection's rows in parts of at most `max_rows` rows (at least 1), collection by
    /// collection; the last part of each says `more: false`. An empty collection is one empty
    /// part.
    pub fn snapshot_parts(&self, max_rows: usize) -> Vec<RowsPart> {
        self.collections
            .keys()
            .flat_map(|name| self.collection_parts(name, max_rows))
            .collect()
    }

    /// One collection's rows in parts, as [`snapshot_parts`](Self::snapshot_parts) does.
    pub fn collection_parts(&self, collection: &str, max_rows: usize) -> Vec<RowsPart> {
        self.snapshot(collection)
            .map(|s| split_snapshot(s, max_rows))
            .unwrap_or_default()
    }
}

/// A snapshot in parts of at most `max_rows` rows (at least 1); the last says `more: false`.
pub fn split_snapshot(snap: CollectionSnapshot, max_rows: usize) -> Vec<RowsPart> {
    let max_rows = max_rows.max(1);
    let mut parts: Vec<RowsPart> = snap
        .rows
        .chunks(max_rows)
        .map(|chunk| RowsPart {
            collection: snap.collection.clone(),
            seq: snap.seq,
            rows: chunk.to_vec(),
            more: true,
            restart: false,
        })
        .collect();
    match parts.last_mut() {
        Some(last) => last.more = false,
        None => parts.push(RowsPart {
            collection: snap.collection,
            seq: snap.seq,
            rows: Vec::new(),
            more: false,
            restart: false,
        }),
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{ChangeOp, RowChange};
    use serde_json::json;

    fn snap(collection: &str, seq: u64, rows: &[(&str, i64)]) -> CollectionSnapshot {
        CollectionSnapshot {
            collection: collection.into(),
            seq,
            rows: rows.iter().map(|(k, v)| ((*k).into(), json!(v))).collect(),
        }
    }

    fn entry(seq: u64, changes: &[(&str, &str, Option<i64>)]) -> FeedEntry {
        FeedEntry {
            seq,
            prev_seq: seq - 1,
            tx_id: None,
            changes: changes
                .iter()
                .map(|(c, k, v)| RowChange {
                    collection: (*c).into(),
                    key: (*k).into(),
                    op: if v.is_some() {
                        ChangeOp::Update
                    } else {
                        ChangeOp::Delete
                    },
                    value: v.map(|v| json!(v)),
                })
                .collect(),
        }
    }

    #[test]
    fn a_load_replaces_a_collection_and_names_what_changed() {
        let mut r = SyncedRows::new();
        r.load(snap("a", 3, &[("1", 1), ("2", 2)]));
        let changed = r.load(snap("a", 5, &[("2", 2), ("3", 3)]));
        let keys: Vec<(&str, bool)> = changed
            .iter()
            .map(|c| (c.key.as_str(), c.value.is_some()))
            .collect();
        assert_eq!(keys, [("1", false), ("3", true)]);
        assert_eq!(r.seq("a"), Some(5));
    }

    #[test]
    fn an_entry_applies_only_to_collections_behind_it() {
        let mut r = SyncedRows::new();
        r.load(snap("a", 3, &[]));
        r.load(snap("b", 6, &[("k", 0)]));
        assert_eq!(r.min_seq(), Some(3));
        let changed = r.apply(&entry(5, &[("a", "k", Some(5)), ("b", "k", Some(5))]));
        assert_eq!(changed.len(), 1, "b at 6 already has entry 5");
        assert_eq!(r.get("a", "k"), Some(&json!(5)));
        assert_eq!(r.get("b", "k"), Some(&json!(0)));
        r.apply(&entry(7, &[("b", "k", None)]));
        assert_eq!(r.get("b", "k"), None);
        assert_eq!((r.seq("a"), r.seq("b")), (Some(5), Some(7)));
        r.advance(7);
        assert_eq!(r.min_seq(), Some(7));
    }

    #[test]
    fn parts_hold_every_row_once_and_the_last_of_each_collection_says_so() {
        let mut r = SyncedRows::new();
        r.load(snap("a", 1, &[("1", 1), ("2", 2), ("3", 3)]));
        r.load(snap("b", 2, &[]));
        let parts = r.snapshot_parts(2);
        let shape: Vec<(&str, usize, bool)> = parts
            .iter()
            .map(|p| (p.collection.as_str(), p.rows.len(), p.more))
            .collect();
        assert_eq!(shape, [("a", 2, true), ("a", 1, false), ("b", 0, false)]);
    }
}
