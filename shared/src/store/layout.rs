//! How the outbox sits in storage: which records a write puts, and how a new leader reads them
//! back. Both stores (IndexedDB in the worker, [`super::MemOutboxStore`] here) follow this plan.
//!
//! Two kinds of record:
//! - the **outbox** store holds one slot per transaction id: its record, its tombstone, or a
//!   [`Slot::Removed`] marker;
//! - the **packs** store holds *packs*: the transactions a write stored for the first time, all
//!   in one record (`[[id, record], …]`, JSON text). Chromium's IndexedDB makes one round trip
//!   per put, so a put costs about as much whatever its size: 100 puts of 0.8 KB took 15 ms
//!   and one put of 80 KB 0.7 ms (medians, this machine). A write's new transactions go into
//!   one pack when there are at least [`MIN_PACK`] of them.
//!
//! A pack is never changed. A member's later record (an attempt, a failure), its tombstone or
//! its removal is written to its outbox slot, and an outbox slot beats a pack's copy. Once every
//! member of a pack is beaten, the pack is deleted, in the same write. Since a pack's copy would
//! come back were its slot deleted, a slot whose id is in a pack still stored is kept: a
//! tombstone outlives its expiry, and a `Removed` marker stays, until the pack is gone.

use super::{StoredRecord, Tombstone, WriteBatch, TOMBSTONE_TTL_MS};
use crate::model::{Millis, Transaction, TransactionId};
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};

/// The fewest new transactions in one write that go into a pack (below it, each gets a put).
pub const MIN_PACK: usize = 2;

/// The key under which a new leader lists a pack that does not read: the executor quarantines
/// it like any record that does not read ([`Layout::quarantine_target`] knows the prefix).
const BAD_PACK_PREFIX: &str = "\u{0}pack:";

/// What an outbox slot holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The transaction's record.
    Record(StoredRecord),
    /// The transaction completed at this time.
    Tombstone(Millis),
    /// The transaction was removed while a pack held its record: the marker beats that copy.
    Removed,
}

/// One storage operation of a write. Applied in order, in one atomic transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Op<'a> {
    /// Put the record into its slot.
    Put(&'a Transaction),
    /// Put the tombstone into its slot.
    Tombstone(&'a Tombstone),
    /// Put [`Slot::Removed`] into the id's slot.
    Removed(&'a TransactionId),
    /// Delete the id's slot.
    Delete(&'a TransactionId),
    /// Put a pack: its key and its JSON text.
    PutPack(String, String),
    /// Delete a pack.
    DeletePack(String),
}

/// What a write changes in the [`Layout`]; applied once the write commits
/// ([`Layout::commit`]), dropped if it fails.
#[derive(Debug, Default, PartialEq)]
pub struct Delta {
    next_pack: u64,
    packed: Option<(String, Vec<TransactionId>)>,
    beaten: Vec<TransactionId>,
    slotted: Vec<TransactionId>,
    unslotted: Vec<TransactionId>,
    dropped: Vec<String>,
}

/// Where a record to quarantine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuarantineTarget {
    /// In the outbox slot under this key.
    Slot(String),
    /// In a pack: the member `id` of pack `pack` (its slot gets [`Slot::Removed`]).
    Member {
        /// The pack's key.
        pack: String,
        /// The member.
        id: TransactionId,
    },
    /// A whole pack that does not read, under this key in the packs store.
    Pack(String),
}

/// What the leader knows of storage's layout (rebuilt by [`Layout::load`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// The pack holding the current record of each id whose slot is empty.
    members: HashMap<TransactionId, String>,
    /// How many members of each stored pack have no slot.
    unbeaten: HashMap<String, usize>,
    /// Ids with a record or a `Removed` marker in their slot: a put of one is no new
    /// transaction (a pack's copy would lose to the slot).
    slotted: HashSet<TransactionId>,
    next_pack: u64,
}

/// What a new leader reads ([`Layout::load`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Load {
    /// Every current record with the key to quarantine it by: a slot's key, a pack member's id,
    /// or, for a pack that does not read, a key [`Layout::quarantine_target`] maps back to it.
    pub records: Vec<(String, StoredRecord)>,
    /// Tombstones still kept.
    pub tombstones: Vec<Tombstone>,
    /// Slots to delete now: expired tombstones and markers no pack needs.
    pub expired: Vec<String>,
    /// Packs to delete now: every member beaten.
    pub dropped: Vec<String>,
}

impl Layout {
    /// Reads the stored slots and packs, as of `now`: the current records and tombstones, the
    /// layout for the writes that follow, and what is garbage (to be deleted in the same
    /// transaction as the read).
    pub fn load(
        slots: Vec<(String, Slot)>,
        packs: Vec<(String, StoredRecord)>,
        now: Millis,
    ) -> (Self, Load) {
        let mut layout = Self::default();
        let mut load = Load::default();
        let slot_keys: HashSet<&str> = slots.iter().map(|(k, _)| k.as_str()).collect();
        // Every member of a readable pack, beaten or not: a slot it needs is kept.
        let mut in_pack: HashMap<String, String> = HashMap::new();
        for (key, value) in packs {
            if let Ok(n) = key.parse::<u64>() {
                layout.next_pack = layout.next_pack.max(n + 1);
            }
            let members = match &value {
                StoredRecord::Text(text) => {
                    serde_json::from_str::<Vec<(String, &RawValue)>>(text).ok()
                }
                StoredRecord::Value(_) => None,
            };
            let Some(members) = members else {
                load.records
                    .push((format!("{BAD_PACK_PREFIX}{key}"), value));
                continue;
            };
            let mut unbeaten = 0;
            for (id, raw) in members {
                if in_pack.contains_key(&id) {
                    continue;
                }
                in_pack.insert(id.clone(), key.clone());
                if !slot_keys.contains(id.as_str()) {
                    unbeaten += 1;
                    load.records
                        .push((id.clone(), StoredRecord::Text(raw.get().to_owned())));
                    layout.members.insert(TransactionId(id), key.clone());
                }
            }
            if unbeaten == 0 {
                load.dropped.push(key);
            } else {
                layout.unbeaten.insert(key, unbeaten);
            }
        }
        let needed = |id: &str| {
            in_pack
                .get(id)
                .is_some_and(|pack| layout.unbeaten.contains_key(pack))
        };
        let cutoff = now.saturating_sub(TOMBSTONE_TTL_MS);
        let mut slotted = HashSet::new();
        for (key, slot) in slots {
            match slot {
                Slot::Record(record) => {
                    slotted.insert(TransactionId(key.clone()));
                    load.records.push((key, record));
                }
                Slot::Tombstone(at) if at < cutoff && !needed(&key) => load.expired.push(key),
                Slot::Tombstone(at) => load.tombstones.push(Tombstone {
                    id: TransactionId(key),
                    completed_at: at,
                }),
                Slot::Removed if needed(&key) => {
                    slotted.insert(TransactionId(key));
                }
                Slot::Removed => load.expired.push(key),
            }
        }
        layout.slotted = slotted;
        (layout, load)
    }

    /// Whether a put of `id` stores it for the first time.
    pub fn is_new(&self, id: &TransactionId) -> bool {
        !self.members.contains_key(id) && !self.slotted.contains(id)
    }

    /// The operations that store `batch`, and the change to apply once they commit.
    pub fn plan<'a>(
        &self,
        batch: &'a WriteBatch,
    ) -> Result<(Vec<Op<'a>>, Delta), serde_json::Error> {
        let mut ops = Vec::new();
        let mut delta = Delta {
            next_pack: self.next_pack,
            ..Delta::default()
        };
        let mut beaten_in: HashMap<&str, usize> = HashMap::new();
        let (new, old): (Vec<&Transaction>, Vec<&Transaction>) =
            batch.puts.iter().partition(|t| self.is_new(&t.id));
        if new.len() >= MIN_PACK {
            let key = delta.next_pack.to_string();
            delta.next_pack += 1;
            let members: Vec<(&str, &Transaction)> =
                new.iter().map(|t| (t.id.as_str(), *t)).collect();
            ops.push(Op::PutPack(key.clone(), serde_json::to_string(&members)?));
            delta.packed = Some((key, new.iter().map(|t| t.id.clone()).collect()));
        } else {
            for t in new {
                ops.push(Op::Put(t));
                delta.slotted.push(t.id.clone());
            }
        }
        for t in old {
            ops.push(Op::Put(t));
            self.beat(&t.id, &mut delta, &mut beaten_in);
            delta.slotted.push(t.id.clone());
        }
        for t in &batch.completed {
            ops.push(Op::Tombstone(t));
            self.beat(&t.id, &mut delta, &mut beaten_in);
            delta.unslotted.push(t.id.clone());
        }
        for id in &batch.deletes {
            if self.members.contains_key(id) {
                ops.push(Op::Removed(id));
                self.beat(id, &mut delta, &mut beaten_in);
                delta.slotted.push(id.clone());
            } else {
                ops.push(Op::Delete(id));
                delta.unslotted.push(id.clone());
            }
        }
        self.drop_beaten(beaten_in, &mut ops, &mut delta);
        Ok((ops, delta))
    }

    /// Where the record loaded under `key` is, to quarantine it.
    pub fn quarantine_target(&self, key: &str) -> QuarantineTarget {
        if let Some(pack) = key.strip_prefix(BAD_PACK_PREFIX) {
            return QuarantineTarget::Pack(pack.to_owned());
        }
        match self.members.get(&TransactionId::from(key)) {
            Some(pack) => QuarantineTarget::Member {
                pack: pack.clone(),
                id: key.into(),
            },
            None => QuarantineTarget::Slot(key.to_owned()),
        }
    }

    /// Quarantining pack member `id` (moved out by the caller): the operations that hide the
    /// pack's copy, and the change to apply once they commit.
    pub fn plan_quarantine<'a>(&self, id: &'a TransactionId) -> (Vec<Op<'a>>, Delta) {
        let mut ops = vec![Op::Removed(id)];
        let mut delta = Delta {
            next_pack: self.next_pack,
            ..Delta::default()
        };
        let mut beaten_in = HashMap::new();
        self.beat(id, &mut delta, &mut beaten_in);
        delta.slotted.push(id.clone());
        self.drop_beaten(beaten_in, &mut ops, &mut delta);
        (ops, delta)
    }

    /// Applies a committed write's change.
    pub fn commit(&mut self, delta: Delta) {
        self.next_pack = self.next_pack.max(delta.next_pack);
        if let Some((key, ids)) = delta.packed {
            self.unbeaten.insert(key.clone(), ids.len());
            for id in ids {
                self.members.insert(id, key.clone());
            }
        }
        for id in delta.beaten {
            if let Some(pack) = self.members.remove(&id) {
                if let Some(n) = self.unbeaten.get_mut(&pack) {
                    *n = n.saturating_sub(1);
                }
            }
        }
        for pack in delta.dropped {
            self.unbeaten.remove(&pack);
        }
        for id in delta.unslotted {
            self.slotted.remove(&id);
        }
        self.slotted.extend(delta.slotted);
    }

    /// `id`'s pack copy is beaten by this write (if it has one).
    fn beat<'a>(
        &'a self,
        id: &TransactionId,
        delta: &mut Delta,
        beaten_in: &mut HashMap<&'a str, usize>,
    ) {
        if let Some(pack) = self.members.get(id) {
            delta.beaten.push(id.clone());
            *beaten_in.entry(pack.as_str()).or_default() += 1;
        }
    }

    /// Deletes the packs whose last unbeaten members this write beats.
    fn drop_beaten(
        &self,
        beaten_in: HashMap<&str, usize>,
        ops: &mut Vec<Op<'_>>,
        delta: &mut Delta,
    ) {
        let mut dropped: Vec<String> = beaten_in
            .into_iter()
            .filter(|(pack, n)| self.unbeaten.get(*pack).is_some_and(|left| left <= n))
            .map(|(pack, _)| pack.to_owned())
            .collect();
        dropped.sort();
        for pack in dropped {
            ops.push(Op::DeletePack(pack.clone()));
            delta.dropped.push(pack);
        }
    }
}

/// Finds member `id`'s record in a pack's text (to quarantine it).
pub fn pack_member(pack: &StoredRecord, id: &str) -> Option<String> {
    let StoredRecord::Text(text) = pack else {
        return None;
    };
    serde_json::from_str::<Vec<(String, &RawValue)>>(text)
        .ok()?
        .into_iter()
        .find(|(member, _)| member == id)
        .map(|(_, raw)| raw.get().to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::{MemOutboxStore, StoreError};
    use super::*;
    use crate::model::{Epoch, PendingMutation, Strategy, TransactionState};
    use serde_json::json;

    fn tx(id: &str) -> Transaction {
        Transaction::new(
            id.into(),
            "f",
            Strategy::Ordered,
            vec![PendingMutation::insert("c", id, json!({}))],
            0,
        )
    }

    fn batch(epoch: Epoch, puts: Vec<Transaction>) -> WriteBatch {
        WriteBatch {
            id: 1,
            epoch,
            puts,
            completed: vec![],
            deletes: vec![],
            reachable: None,
        }
    }

    fn done(id: &str, at: Millis) -> Tombstone {
        Tombstone {
            id: id.into(),
            completed_at: at,
        }
    }

    fn ids(store: &MemOutboxStore) -> Vec<String> {
        let mut ids: Vec<String> = store.transactions().into_iter().map(|t| t.id.0).collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_writes_new_transactions_share_one_pack_and_a_lone_one_gets_its_slot() {
        let layout = Layout::default();
        let b = batch(Epoch(1), vec![tx("a"), tx("b")]);
        let (ops, _) = layout.plan(&b).unwrap();
        assert!(matches!(ops.as_slice(), [Op::PutPack(key, _)] if key == "0"));
        let b = batch(Epoch(1), vec![tx("c")]);
        let (ops, _) = layout.plan(&b).unwrap();
        assert!(matches!(ops.as_slice(), [Op::Put(t)] if t.id.as_str() == "c"));
    }

    #[test]
    fn a_members_later_record_beats_its_pack_copy_and_the_last_one_drops_the_pack() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch;
        s.write(&batch(epoch, vec![tx("a"), tx("b"), tx("c")]))
            .unwrap();
        assert_eq!(s.pack_count(), 1);
        let mut a = tx("a");
        a.state = TransactionState::Failed;
        s.write(&batch(epoch, vec![a.clone()])).unwrap();
        let mut gone = batch(epoch, vec![]);
        gone.completed.push(done("b", 5));
        gone.deletes.push("c".into());
        // A new leader reads a's later record, b's tombstone, and nothing of c.
        let mut again = s.clone();
        let loaded = again.begin_leadership(10);
        assert_eq!(loaded.records.len(), 3, "nothing beaten yet but a");
        s.write(&gone).unwrap();
        assert_eq!(
            s.pack_count(),
            0,
            "every member beaten: the pack goes in that write"
        );
        let loaded = s.begin_leadership(10);
        let records: Vec<Transaction> = loaded
            .records
            .into_iter()
            .map(|(_, r)| Transaction::from_stored(r).unwrap())
            .collect();
        assert_eq!(records, vec![a]);
        assert_eq!(loaded.tombstones, vec![done("b", 5)]);
    }

    #[test]
    fn a_tombstone_outlives_its_expiry_while_its_pack_holds_an_unfinished_sibling() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch;
        s.write(&batch(epoch, vec![tx("a"), tx("b")])).unwrap();
        let mut b = batch(epoch, vec![]);
        b.completed.push(done("a", 5));
        s.write(&b).unwrap();
        let late = 5 + TOMBSTONE_TTL_MS + 1;
        let loaded = s.begin_leadership(late);
        assert_eq!(
            loaded.tombstones,
            vec![done("a", 5)],
            "kept: the pack still holds a"
        );
        assert_eq!(ids(&s), ["b"]);
        // Once b is done too, the pack goes, and a's tombstone may expire.
        let epoch = loaded.epoch;
        let mut b = batch(epoch, vec![]);
        b.completed.push(done("b", late));
        s.write(&b).unwrap();
        assert_eq!(s.pack_count(), 0);
        let loaded = s.begin_leadership(late);
        assert_eq!(loaded.tombstones, vec![done("b", late)]);
        assert!(loaded.records.is_empty());
    }

    #[test]
    fn a_removed_members_marker_stays_while_its_pack_does_and_hides_the_copy() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch;
        s.write(&batch(epoch, vec![tx("a"), tx("b")])).unwrap();
        let mut b = batch(epoch, vec![]);
        b.deletes.push("a".into());
        s.write(&b).unwrap();
        let epoch = s.begin_leadership(TOMBSTONE_TTL_MS * 2).epoch;
        assert_eq!(
            ids(&s),
            ["b"],
            "the marker outlives any expiry while the pack stays"
        );
        // The same id, added again, gets its slot (a pack's copy would lose to the marker).
        s.write(&batch(epoch, vec![tx("a"), tx("c"), tx("d")]))
            .unwrap();
        assert_eq!(ids(&s), ["a", "b", "c", "d"]);
        assert_eq!(s.pack_count(), 2, "c and d in a new pack, a in its slot");
    }

    #[test]
    fn a_failed_write_changes_nothing_and_its_retry_packs_again() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch;
        s.quota_exhausted = true;
        let b = batch(epoch, vec![tx("a"), tx("b")]);
        assert_eq!(s.write(&b), Err(StoreError::QuotaExceeded));
        assert_eq!(s.pack_count(), 0);
        s.quota_exhausted = false;
        s.write(&b).unwrap();
        assert_eq!((s.pack_count(), ids(&s).len()), (1, 2));
    }

    #[test]
    fn a_pack_that_does_not_read_is_quarantined_whole_and_a_bad_member_alone() {
        let mut s = MemOutboxStore::new();
        s.put_raw_pack("7", StoredRecord::Text("[[\"x\", {\"trunc".into()));
        let good = serde_json::to_string(&tx("a")).unwrap();
        s.put_raw_pack(
            "8",
            StoredRecord::Text(format!("[[\"a\", {good}], [\"bad\", {{\"v\": 99}}]]")),
        );
        let loaded = s.begin_leadership(0);
        let mut keys: Vec<&str> = loaded.records.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["\u{0}pack:7", "a", "bad"]);
        s.quarantine("\u{0}pack:7");
        s.quarantine("bad");
        assert_eq!(s.quarantined(), ["\u{0}pack:7", "bad"]);
        assert_eq!(ids(&s), ["a"]);
        let loaded = s.begin_leadership(0);
        assert_eq!(loaded.records.len(), 1, "quarantined records stay out");
        // New packs do not reuse a stored pack's key.
        let (layout, _) = Layout::load(
            vec![],
            vec![("8".into(), StoredRecord::Text("[]".into()))],
            0,
        );
        let next = batch(loaded.epoch, vec![tx("c"), tx("d")]);
        let (ops, _) = layout.plan(&next).unwrap();
        assert!(matches!(ops.as_slice(), [Op::PutPack(key, _)] if key == "9"));
    }
}
