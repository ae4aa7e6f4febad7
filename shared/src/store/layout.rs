//! How the outbox sits in storage: what a write puts, and how a new leader reads it back. Both
//! stores (IndexedDB in the worker, [`super::MemOutboxStore`] here) follow this plan.
//!
//! The outbox is a **log**: a write puts one *entry* for its records (`{"p": [[id, record], …]}`)
//! and one for its marks (`{"d": [[id, completedAt], …], "r": [removed id, …]}`), each JSON
//! text, keyed by a number that grows with every entry. Chromium's IndexedDB makes one round trip
//! per put, so a put costs about as much whatever its size: 100 puts of 0.8 KB took 15 ms, one
//! put of 80 KB 0.7 ms (medians, this machine). A write of any size is one or two puts.
//!
//! An id's **current copy** is the last one in log order: its record, its tombstone (`d`), or a
//! removal (`r`). An entry is deleted, in the write that beats it, once none of its copies is
//! current. Records and marks go into separate entries, so a record entry goes as soon as its
//! transactions move on, while a marks entry stays as long as its tombstones are kept.
//!
//! A new leader reads the log in order ([`Layout::load`]) and deletes what is garbage in the same
//! transaction: an entry whose current copies are all expired tombstones or removals, unless an
//! older entry kept for another reason still holds a copy of one of those ids (that copy would
//! become current again). A tombstone therefore lives at least [`TOMBSTONE_TTL_MS`], sometimes
//! longer.
//!
//! A leader that leads for days does the same as it goes, in the writes that settle something
//! ([`Op::DeleteEntries`]): it remembers its marks entries in spans of an hour (their keys and
//! newest tombstone time, not one number per entry), and deletes the oldest spans, as one key
//! range, once every tombstone in them has expired and no record entry, nor any entry that does
//! not read, is older (their ids' marks may beat copies in them).
//!
//! **Removals** are remembered apart from the log, in one record of their own (the ids and
//! times of those of the last [`TOMBSTONE_TTL_MS`], at most [`REMOVALS_KEPT`]:
//! [`Op::PutRemovals`]), rewritten by every write that removes something: a log entry with a
//! field builds before it do not know would not read there, and they would quarantine it. A
//! removal's `r` mark still beats the id's record in the log, for every build.
//!
//! Builds before the log kept one **slot** per id in the outbox store (the record's text, or the
//! tombstone's time). Slots are read as older than every entry; a slot whose id gets a copy in
//! the log is deleted in that write. Schema 3 also kept *packs* (a write's new records, beaten
//! by any slot of the same id); [`migrate_packs`] turns them into slots when a new leader first
//! reads them.

use super::{Removal, StoredRecord, Tombstone, WriteBatch, TOMBSTONE_TTL_MS};
use crate::model::{Millis, Transaction, TransactionId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// An entry's key: entries are read in this order.
pub type EntryId = u64;

/// The key under which a new leader lists an entry that does not read: the executor quarantines
/// it like any record that does not read ([`Layout::quarantine_target`] knows the prefix).
const BAD_ENTRY_PREFIX: &str = "\u{0}log:";

/// At most this many removals are remembered (the most recent): the record of them is rewritten
/// whole by every write that removes something.
pub const REMOVALS_KEPT: usize = 10_000;

/// What a slot of the outbox store (the layout before the log) holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The transaction's record.
    Record(StoredRecord),
    /// The transaction completed at this time.
    Tombstone(Millis),
}

/// A slot as schema 3 stored it: a slot, or `false` (removed while a pack held the id).
#[derive(Debug, Clone, PartialEq)]
pub enum LegacySlot {
    /// A record or tombstone.
    Slot(Slot),
    /// Removed: the pack's copy is not current.
    Removed,
}

/// The key under which [`migrate_packs`] puts a schema-3 pack that does not read: a slot the
/// executor then quarantines like any record that does not read.
const BAD_PACK_PREFIX: &str = "\u{0}pack:";

/// What schema 3's packs become ([`migrate_packs`]); applied in the new leader's first
/// transaction, before [`Layout::load`] reads `slots`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Migration {
    /// Every slot, as it is once the migration is applied.
    pub slots: Vec<(String, Slot)>,
    /// Slots to put: each pack's current records, and each pack that does not read.
    pub put_slots: Vec<(String, StoredRecord)>,
    /// Slots to delete: the removed markers.
    pub delete_slots: Vec<String>,
    /// Packs to delete: all of them.
    pub delete_packs: Vec<String>,
}

/// Turns schema 3's packs (`[[id, record], …]` JSON text, keyed by a decimal number) into
/// slots. A pack's copy of an id was current when the id had no slot; those become slots.
/// Removed markers go, and so do the packs.
pub fn migrate_packs(
    slots: Vec<(String, LegacySlot)>,
    packs: Vec<(String, StoredRecord)>,
) -> Migration {
    let mut m = Migration::default();
    let mut taken: HashSet<String> = HashSet::new();
    for (key, slot) in slots {
        taken.insert(key.clone());
        match slot {
            LegacySlot::Slot(slot) => m.slots.push((key, slot)),
            LegacySlot::Removed => m.delete_slots.push(key),
        }
    }
    let mut packs = packs;
    // The newest pack first: an id's copy in a later pack is the one to keep.
    packs.sort_by_key(|(k, _)| std::cmp::Reverse(k.parse::<u64>().unwrap_or(0)));
    for (key, value) in packs {
        let members = match &value {
            StoredRecord::Text(text) => serde_json::from_str::<Vec<(String, &RawValue)>>(text).ok(),
            StoredRecord::Value(_) => None,
        };
        match members {
            Some(members) => {
                for (id, raw) in members.into_iter().rev() {
                    if taken.insert(id.clone()) {
                        let record = StoredRecord::Text(raw.get().to_owned());
                        m.slots.push((id.clone(), Slot::Record(record.clone())));
                        m.put_slots.push((id, record));
                    }
                }
            }
            None => {
                let bad = format!("{BAD_PACK_PREFIX}{key}");
                m.slots.push((bad.clone(), Slot::Record(value.clone())));
                m.put_slots.push((bad, value));
            }
        }
        m.delete_packs.push(key);
    }
    m
}

/// One storage operation of a write. Applied in order, in one atomic transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Put an entry: its key and its JSON text.
    PutEntry(EntryId, String),
    /// Delete an entry.
    DeleteEntry(EntryId),
    /// Delete every entry with a key from `from` up to, not including, `below` (in one
    /// request: a range of marks entries whose tombstones have all expired).
    DeleteEntries {
        /// The first key.
        from: EntryId,
        /// The key after the last.
        below: EntryId,
    },
    /// Delete the slot of this id.
    DeleteSlot(TransactionId),
    /// Replace the record of recent removals with this JSON text (`[[id, removedAt], …]`).
    PutRemovals(String),
}

/// Where an id's current copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    Slot,
    Entry(EntryId),
}

/// What a write changes in the [`Layout`]; applied once the write commits
/// ([`Layout::commit`]), dropped if it fails.
#[derive(Debug, Default, PartialEq)]
pub struct Delta {
    next: EntryId,
    created: Vec<(EntryId, usize)>,
    current: Vec<(TransactionId, EntryId)>,
    forgotten: Vec<TransactionId>,
    /// Ids whose current copy is now a mark (a tombstone or a removal): once committed, the
    /// layout forgets them (see [`Layout::commit`]).
    settled: Vec<TransactionId>,
    dropped: Vec<EntryId>,
    /// The recent removals as written, when this write rewrote them.
    removed: Option<Vec<Removal>>,
    /// The marks entry this write puts, and the newest time in it.
    marked: Option<(EntryId, Millis)>,
    /// The entries below this key are deleted (their marks spans compacted).
    compacted_below: Option<EntryId>,
}

/// Marks entries in a row of keys, written within [`SPAN_MS`] of each other: the layout
/// remembers this much of them, not one number per entry, to delete them once every
/// tombstone in them has expired ([`Op::DeleteEntries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MarksSpan {
    first: EntryId,
    last: EntryId,
    /// The time of its first entry.
    opened: Millis,
    /// The newest time of a tombstone in it.
    newest: Millis,
}

/// How long one [`MarksSpan`] spans: an hour, so a leader remembers ~24 of them (a day of
/// tombstones), and a marks entry is deleted at most an hour after it expires.
const SPAN_MS: Millis = TOMBSTONE_TTL_MS / 24;

/// Where a record to quarantine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuarantineTarget {
    /// In the slot under this key.
    Slot(String),
    /// In a log entry: the record of `id` in entry `entry` (a removal beats it).
    Member {
        /// The entry's key.
        entry: EntryId,
        /// The transaction.
        id: TransactionId,
    },
    /// A whole entry that does not read.
    Entry(EntryId),
}

/// What the leader knows of storage's layout (rebuilt by [`Layout::load`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// Where each stored id's current copy is.
    current: HashMap<TransactionId, Place>,
    /// How many current records each stored record entry holds. Marks entries are not
    /// counted: their ids are forgotten at once (see [`Layout::commit`]), so nothing would ever
    /// count against them, and a leader would hold one number per write that settled anything.
    live: BTreeMap<EntryId, usize>,
    /// The marks entries in storage, in spans, oldest first. Once a span's tombstones have
    /// all expired and no record entry (nor any entry that does not read) is older than its
    /// last, a write deletes everything up to it: a leader that leads for days keeps a day of
    /// tombstones in storage, as a new leader's load would, not all of them.
    marks: VecDeque<MarksSpan>,
    /// Entries that do not read, found by the load: never in a range deleted.
    pinned: BTreeSet<EntryId>,
    next: EntryId,
    /// The removals remembered in storage, oldest first.
    removed: Vec<Removal>,
}

/// What a new leader reads ([`Layout::load`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Load {
    /// Every current record with the key to quarantine it by (its id), and every entry that
    /// does not read under a key [`Layout::quarantine_target`] maps back to it.
    pub records: Vec<(String, StoredRecord)>,
    /// Tombstones still kept.
    pub tombstones: Vec<Tombstone>,
    /// Slots to delete now: beaten by the log, or expired tombstones.
    pub expired: Vec<String>,
    /// Entries to delete now (see the module's notes).
    pub dropped: Vec<EntryId>,
}

/// An entry as written.
#[derive(Serialize)]
struct EntryOut<'a> {
    #[serde(rename = "p", skip_serializing_if = "Vec::is_empty")]
    puts: Vec<(&'a str, &'a Transaction)>,
    #[serde(rename = "d", skip_serializing_if = "Vec::is_empty")]
    done: Vec<(&'a str, Millis)>,
    #[serde(rename = "r", skip_serializing_if = "Vec::is_empty")]
    removed: Vec<&'a str>,
}

/// An entry as read: records stay raw text until the executor decodes them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn<'a> {
    #[serde(rename = "p", default, borrow)]
    puts: Vec<(String, &'a RawValue)>,
    #[serde(rename = "d", default)]
    done: Vec<(String, Millis)>,
    #[serde(rename = "r", default)]
    removed: Vec<String>,
}

/// A copy of an id, as read.
enum Copy {
    Record(StoredRecord),
    Done(Millis),
    Removed,
}

impl Layout {
    /// Reads the stored slots and log entries, as of `now`: the current records and tombstones,
    /// the layout for the writes that follow, and what is garbage (to be deleted in the same
    /// transaction as the read).
    pub fn load(
        slots: Vec<(String, Slot)>,
        entries: Vec<(EntryId, StoredRecord)>,
        now: Millis,
    ) -> (Self, Load) {
        let mut load = Load::default();
        let mut current: HashMap<String, (Place, Copy)> = HashMap::new();
        let slot_ids: Vec<String> = slots.iter().map(|(k, _)| k.clone()).collect();
        for (key, slot) in slots {
            let copy = match slot {
                Slot::Record(r) => Copy::Record(r),
                Slot::Tombstone(at) => Copy::Done(at),
            };
            current.insert(key, (Place::Slot, copy));
        }
        let mut entries = entries;
        entries.sort_by_key(|(id, _)| *id);
        let next = entries.last().map_or(1, |(id, _)| id + 1);
        // The entries holding a copy of each id, current or not.
        let mut holders: HashMap<String, Vec<EntryId>> = HashMap::new();
        let mut readable: Vec<EntryId> = Vec::new();
        let mut pinned: BTreeSet<EntryId> = BTreeSet::new();
        // The newest tombstone time in each entry.
        let mut newest: HashMap<EntryId, Millis> = HashMap::new();
        for (entry, value) in &entries {
            let parsed = match value {
                StoredRecord::Text(text) => serde_json::from_str::<EntryIn<'_>>(text).ok(),
                StoredRecord::Value(_) => None,
            };
            let Some(parsed) = parsed else {
                load.records
                    .push((format!("{BAD_ENTRY_PREFIX}{entry}"), value.clone()));
                pinned.insert(*entry);
                continue;
            };
            readable.push(*entry);
            if let Some(at) = parsed.done.iter().map(|(_, at)| *at).max() {
                newest.insert(*entry, at);
            }
            let place = Place::Entry(*entry);
            let copies = parsed
                .puts
                .into_iter()
                .map(|(id, raw)| (id, Copy::Record(StoredRecord::Text(raw.get().to_owned()))))
                .chain(parsed.done.into_iter().map(|(id, at)| (id, Copy::Done(at))))
                .chain(parsed.removed.into_iter().map(|id| (id, Copy::Removed)));
            for (id, copy) in copies {
                holders.entry(id.clone()).or_default().push(*entry);
                current.insert(id, (place, copy));
            }
        }
        let cutoff = now.saturating_sub(TOMBSTONE_TTL_MS);
        let spent = |copy: &Copy| match copy {
            Copy::Record(_) => false,
            Copy::Done(at) => *at < cutoff,
            Copy::Removed => true,
        };
        // Entries whose current copies are all spent may go, unless one of those ids has a
        // copy in an entry that stays: until no such entry is left out.
        let mut live: BTreeMap<EntryId, usize> = BTreeMap::new();
        let mut unspent: HashSet<EntryId> = HashSet::new();
        for (place, copy) in current.values() {
            if let Place::Entry(e) = place {
                if matches!(copy, Copy::Record(_)) {
                    *live.entry(*e).or_default() += 1;
                }
                if !spent(copy) {
                    unspent.insert(*e);
                }
            }
        }
        let mut dropping: HashSet<EntryId> = readable
            .iter()
            .copied()
            .filter(|e| !unspent.contains(e))
            .collect();
        loop {
            let blocked: Vec<EntryId> = current
                .iter()
                .filter_map(|(id, (place, _))| match place {
                    Place::Entry(e) if dropping.contains(e) => {
                        let held_elsewhere = holders
                            .get(id)
                            .is_some_and(|hs| hs.iter().any(|h| !dropping.contains(h)));
                        held_elsewhere.then_some(*e)
                    }
                    _ => None,
                })
                .collect();
            if blocked.is_empty() {
                break;
            }
            for e in blocked {
                dropping.remove(&e);
            }
        }
        let mut layout = Layout {
            next,
            pinned,
            ..Layout::default()
        };
        for (id, (place, copy)) in current {
            if let Place::Entry(e) = place {
                if dropping.contains(&e) {
                    continue;
                }
            }
            let has_log_copy = holders.contains_key(&id);
            let is_record = matches!(copy, Copy::Record(_));
            match (place, copy) {
                (Place::Slot, Copy::Done(at)) if at < cutoff && !has_log_copy => {
                    load.expired.push(id);
                    continue;
                }
                (_, Copy::Record(record)) => load.records.push((id.clone(), record)),
                (_, Copy::Done(at)) => load.tombstones.push(Tombstone {
                    id: TransactionId(id.clone()),
                    completed_at: at,
                }),
                (_, Copy::Removed) => {}
            }
            // Marks in the log are forgotten as soon as they are loaded, like those written
            // later (see `commit`); slots stay known, so that a write of the same id deletes
            // them.
            if matches!(place, Place::Entry(_)) && !is_record {
                continue;
            }
            layout.current.insert(TransactionId(id), place);
        }
        // Slots the log has beaten (every entry is newer than every slot).
        load.expired
            .extend(slot_ids.into_iter().filter(|id| holders.contains_key(id)));
        let mut dropped: Vec<EntryId> = dropping.into_iter().collect();
        dropped.sort_unstable();
        for e in readable {
            if dropped.binary_search(&e).is_err() {
                match live.get(&e) {
                    Some(n) => {
                        layout.live.insert(e, *n);
                    }
                    // Kept and holding no current record: marks.
                    None => layout.add_marks(e, newest.get(&e).copied().unwrap_or(0)),
                }
            }
        }
        load.dropped = dropped;
        // In key order, whatever order the maps above keep (the executor quarantines and
        // reports in this order, and the simulation replays a seed exactly).
        load.records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        load.tombstones.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        load.expired.sort_unstable();
        (layout, load)
    }

    /// Whether a put of `id` stores it for the first time (nothing of it is stored).
    pub fn is_new(&self, id: &TransactionId) -> bool {
        !self.current.contains_key(id)
    }

    /// The removals storage remembers (the text [`Op::PutRemovals`] last wrote), as of `now`:
    /// those of the last [`TOMBSTONE_TTL_MS`] whose id has no current record (a build that did
    /// not remember them may have taken a resend in again). A text that does not read is taken
    /// for none: it only helps answer resends.
    pub fn recall_removals(&mut self, stored: Option<&str>, now: Millis) -> Vec<Removal> {
        let cutoff = now.saturating_sub(TOMBSTONE_TTL_MS);
        let listed: Vec<(String, Millis)> = stored
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        self.removed = listed
            .into_iter()
            .map(|(id, removed_at)| Removal {
                id: TransactionId(id),
                removed_at,
            })
            .filter(|r| r.removed_at >= cutoff && !self.current.contains_key(&r.id))
            .collect();
        self.removed.sort_by_key(|r| r.removed_at);
        self.removed.clone()
    }

    /// The operations that store `batch`, and the change to apply once they commit.
    pub fn plan(&self, batch: &WriteBatch) -> Result<(Vec<Op>, Delta), serde_json::Error> {
        self.plan_with(batch, true)
    }

    /// [`Layout::plan`]; the batch's removals are remembered only if `remember`.
    fn plan_with(
        &self,
        batch: &WriteBatch,
        remember: bool,
    ) -> Result<(Vec<Op>, Delta), serde_json::Error> {
        let mut plan = Planner {
            layout: self,
            ops: Vec::new(),
            delta: Delta {
                next: self.next.max(1),
                ..Delta::default()
            },
            beaten: HashMap::new(),
            seen: HashSet::new(),
        };
        if !batch.puts.is_empty() {
            let entry = plan.new_entry();
            let mut out = EntryOut {
                puts: Vec::with_capacity(batch.puts.len()),
                done: Vec::new(),
                removed: Vec::new(),
            };
            for t in &batch.puts {
                plan.beat(&t.id, entry);
                out.puts.push((t.id.as_str(), t));
            }
            plan.put(entry, &out)?;
        }
        let mut out = EntryOut {
            puts: Vec::new(),
            done: Vec::with_capacity(batch.completed.len()),
            removed: Vec::new(),
        };
        let marks = plan.delta.next;
        for t in &batch.completed {
            plan.beat(&t.id, marks);
            plan.delta.settled.push(t.id.clone());
            out.done.push((t.id.as_str(), t.completed_at));
        }
        for Removal { id, .. } in &batch.deletes {
            match self.current.get(id) {
                // Nothing older than a slot: deleting it leaves no copy.
                Some(Place::Slot) => {
                    plan.ops.push(Op::DeleteSlot(id.clone()));
                    plan.delta.forgotten.push(id.clone());
                }
                Some(Place::Entry(_)) => {
                    plan.beat(id, marks);
                    plan.delta.settled.push(id.clone());
                    out.removed.push(id.as_str());
                }
                None => {}
            }
        }
        if !out.done.is_empty() || !out.removed.is_empty() {
            let entry = plan.new_entry();
            debug_assert_eq!(entry, marks);
            plan.put(entry, &out)?;
            let at = out.done.iter().map(|(_, at)| *at).max().unwrap_or(0);
            plan.delta.marked = Some((entry, at));
        }
        if remember && !batch.deletes.is_empty() {
            plan.remember(&batch.deletes)?;
        }
        if remember {
            let now = batch
                .completed
                .iter()
                .map(|t| t.completed_at)
                .chain(batch.deletes.iter().map(|r| r.removed_at))
                .max();
            if let Some(now) = now {
                plan.compact(now);
            }
        }
        Ok(plan.finish())
    }

    /// Remembers a marks entry kept in storage, with the newest tombstone time in it.
    fn add_marks(&mut self, entry: EntryId, at: Millis) {
        match self.marks.back_mut() {
            Some(span) if at.saturating_sub(span.opened) < SPAN_MS => {
                span.last = entry;
                span.newest = span.newest.max(at);
            }
            _ => self.marks.push_back(MarksSpan {
                first: entry,
                last: entry,
                opened: at,
                newest: at,
            }),
        }
    }

    /// Where the record loaded under `key` is, to quarantine it.
    pub fn quarantine_target(&self, key: &str) -> QuarantineTarget {
        if let Some(entry) = key
            .strip_prefix(BAD_ENTRY_PREFIX)
            .and_then(|n| n.parse().ok())
        {
            return QuarantineTarget::Entry(entry);
        }
        match self.current.get(&TransactionId::from(key)) {
            Some(Place::Entry(entry)) => QuarantineTarget::Member {
                entry: *entry,
                id: key.into(),
            },
            _ => QuarantineTarget::Slot(key.to_owned()),
        }
    }

    /// Quarantining the current record of `id`, found in an entry (moved out by the caller):
    /// the operations that beat it with a removal, and the change to apply once they commit.
    pub fn plan_quarantine(
        &self,
        id: &TransactionId,
    ) -> Result<(Vec<Op>, Delta), serde_json::Error> {
        self.plan_with(
            &WriteBatch {
                id: 0,
                epoch: crate::model::Epoch(0),
                puts: Vec::new(),
                completed: Vec::new(),
                deletes: vec![Removal {
                    id: id.clone(),
                    removed_at: 0,
                }],
                reachable: None,
            },
            false,
        )
    }

    /// Applies a committed write's change.
    pub fn commit(&mut self, delta: Delta) {
        self.next = self.next.max(delta.next);
        for (entry, n) in delta.created {
            self.live.insert(entry, n);
        }
        for (id, entry) in delta.current {
            if let Some(Place::Entry(old)) = self.current.insert(id, Place::Entry(entry)) {
                if old != entry {
                    if let Some(n) = self.live.get_mut(&old) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
        // A mark is never beaten in practice (the executor answers a completed id's resend from
        // its tombstones and never writes it again), so the layout need not remember where it
        // is: a leader that leads for days would otherwise hold every id it ever settled. Its
        // entry stays in storage until a new leader's load finds it spent; should the id be
        // written again, the new copy is simply current (the load reads the log in order).
        for id in delta.forgotten.into_iter().chain(delta.settled) {
            self.current.remove(&id);
        }
        for entry in delta.dropped {
            self.live.remove(&entry);
        }
        if let Some(removed) = delta.removed {
            self.removed = removed;
        }
        if let Some(below) = delta.compacted_below {
            while self.marks.front().is_some_and(|span| span.last < below) {
                self.marks.pop_front();
            }
        }
        if let Some((entry, at)) = delta.marked {
            self.add_marks(entry, at);
        }
    }
}

/// Builds one write's operations.
struct Planner<'a> {
    layout: &'a Layout,
    ops: Vec<Op>,
    delta: Delta,
    /// Copies this write beats, per entry.
    beaten: HashMap<EntryId, usize>,
    seen: HashSet<TransactionId>,
}

impl Planner<'_> {
    fn new_entry(&mut self) -> EntryId {
        let entry = self.delta.next;
        self.delta.next += 1;
        entry
    }

    /// `id`'s copy in `entry` becomes current.
    fn beat(&mut self, id: &TransactionId, entry: EntryId) {
        if self.seen.insert(id.clone()) {
            match self.layout.current.get(id) {
                Some(Place::Slot) => self.ops.push(Op::DeleteSlot(id.clone())),
                Some(Place::Entry(old)) => *self.beaten.entry(*old).or_default() += 1,
                None => {}
            }
        }
        self.delta.current.push((id.clone(), entry));
    }

    fn put(&mut self, entry: EntryId, out: &EntryOut<'_>) -> Result<(), serde_json::Error> {
        self.ops
            .push(Op::PutEntry(entry, serde_json::to_string(out)?));
        if !out.puts.is_empty() {
            self.delta.created.push((entry, out.puts.len()));
        }
        Ok(())
    }

    /// Rewrites the recent removals with `deletes` added: those older than a day before the
    /// newest go, and the oldest beyond [`REMOVALS_KEPT`].
    fn remember(&mut self, deletes: &[Removal]) -> Result<(), serde_json::Error> {
        let newest = deletes.iter().map(|r| r.removed_at).max().unwrap_or(0);
        let cutoff = newest.saturating_sub(TOMBSTONE_TTL_MS);
        let fresh: HashSet<&TransactionId> = deletes.iter().map(|r| &r.id).collect();
        let mut removed: Vec<Removal> = self
            .layout
            .removed
            .iter()
            .filter(|r| r.removed_at >= cutoff && !fresh.contains(&r.id))
            .chain(deletes)
            .cloned()
            .collect();
        removed.sort_by_key(|r| r.removed_at);
        let excess = removed.len().saturating_sub(REMOVALS_KEPT);
        removed.drain(..excess);
        let listed: Vec<(&str, Millis)> = removed
            .iter()
            .map(|r| (r.id.as_str(), r.removed_at))
            .collect();
        self.ops
            .push(Op::PutRemovals(serde_json::to_string(&listed)?));
        self.delta.removed = Some(removed);
        Ok(())
    }

    /// Deletes, as of `now`, the oldest spans of marks entries whose tombstones have all
    /// expired, as long as nothing older must stay: a record entry (its ids' copies in those
    /// marks beat its records, which would be current again), or an entry that does not read.
    /// Slots are older than every entry and are not in the range.
    fn compact(&mut self, now: Millis) {
        let cutoff = now.saturating_sub(TOMBSTONE_TTL_MS);
        let kept = [
            self.layout.live.keys().next(),
            self.layout.pinned.iter().next(),
        ]
        .into_iter()
        .flatten()
        .min()
        .copied();
        let Some(from) = self.layout.marks.front().map(|span| span.first) else {
            return;
        };
        let mut below = None;
        for span in &self.layout.marks {
            if span.newest >= cutoff || kept.is_some_and(|k| span.last >= k) {
                break;
            }
            below = Some(span.last + 1);
        }
        if let Some(below) = below {
            self.ops.push(Op::DeleteEntries { from, below });
            self.delta.compacted_below = Some(below);
        }
    }

    /// Deletes the entries whose last current copies this write beats.
    fn finish(mut self) -> (Vec<Op>, Delta) {
        let mut dropped: Vec<EntryId> = self
            .beaten
            .iter()
            .filter(|(e, n)| self.layout.live.get(e).is_some_and(|left| left <= n))
            .map(|(e, _)| *e)
            .collect();
        dropped.sort_unstable();
        for e in dropped {
            self.ops.push(Op::DeleteEntry(e));
            self.delta.dropped.push(e);
        }
        (self.ops, self.delta)
    }
}

/// Finds the record of `id` in an entry's text (to quarantine it).
pub fn entry_member(entry: &StoredRecord, id: &str) -> Option<String> {
    let StoredRecord::Text(text) = entry else {
        return None;
    };
    serde_json::from_str::<EntryIn<'_>>(text)
        .ok()?
        .puts
        .into_iter()
        .rev()
        .find(|(member, _)| member == id)
        .map(|(_, raw)| raw.get().to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{batch, tx};
    use super::super::{MemOutboxStore, StoreError};
    use super::*;
    use crate::model::TransactionState;

    fn done(id: &str, at: Millis) -> Tombstone {
        Tombstone {
            id: id.into(),
            completed_at: at,
        }
    }

    fn gone(id: &str, at: Millis) -> Removal {
        Removal {
            id: id.into(),
            removed_at: at,
        }
    }

    fn removed_ids(loaded: &super::super::Loaded) -> Vec<(&str, Millis)> {
        loaded
            .removed
            .iter()
            .map(|r| (r.id.as_str(), r.removed_at))
            .collect()
    }

    #[test]
    fn removals_are_remembered_for_a_day_across_leaderships() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch.0;
        s.write(&batch(epoch, vec![tx("a"), tx("b"), tx("c")]))
            .unwrap();
        let mut b = batch(epoch, vec![]);
        b.deletes = vec![gone("a", 10)];
        s.write(&b).unwrap();
        let mut b = batch(epoch, vec![]);
        b.deletes = vec![gone("b", 20)];
        s.write(&b).unwrap();
        let loaded = s.begin_leadership(30);
        assert_eq!(removed_ids(&loaded), [("a", 10), ("b", 20)]);
        assert_eq!(ids(&s), ["c"], "the removals' marks beat the records");
        // Kept a day, like tombstones: the next removal's write leaves out those older than a
        // day before it, and a load those older than a day before it.
        let mut b = batch(loaded.epoch.0, vec![]);
        b.deletes = vec![gone("c", 15 + TOMBSTONE_TTL_MS)];
        s.write(&b).unwrap();
        let loaded = s.begin_leadership(15 + TOMBSTONE_TTL_MS);
        assert_eq!(
            removed_ids(&loaded),
            [("b", 20), ("c", 15 + TOMBSTONE_TTL_MS)]
        );
        let loaded = s.begin_leadership(21 + TOMBSTONE_TTL_MS);
        assert_eq!(removed_ids(&loaded), [("c", 15 + TOMBSTONE_TTL_MS)]);
    }

    #[test]
    fn a_removal_is_not_recalled_once_the_id_has_a_record_again_nor_a_quarantine_at_all() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch.0;
        s.write(&batch(epoch, vec![tx("a"), tx("q")])).unwrap();
        let mut b = batch(epoch, vec![]);
        b.deletes = vec![gone("a", 10)];
        s.write(&b).unwrap();
        // A build that does not remember removals took a resend of "a" in again.
        s.write(&batch(epoch, vec![tx("a")])).unwrap();
        s.quarantine("q");
        let loaded = s.begin_leadership(30);
        assert!(loaded.removed.is_empty(), "{:?}", loaded.removed);
        assert_eq!(ids(&s), ["a"]);
    }

    #[test]
    fn removals_that_do_not_read_are_taken_for_none() {
        let mut layout = Layout::default();
        assert!(layout.recall_removals(Some("{not json"), 0).is_empty());
        assert!(layout.recall_removals(Some("[[1, 2]]"), 0).is_empty());
        assert_eq!(
            layout.recall_removals(Some(r#"[["x", 5]]"#), 6),
            vec![gone("x", 5)]
        );
    }

    #[test]
    fn at_most_the_latest_removals_are_remembered() {
        let mut layout = Layout::default();
        let mut b = batch(1, vec![]);
        b.deletes = (0..REMOVALS_KEPT as u64 + 5)
            .map(|i| gone(&format!("t{i}"), i))
            .collect();
        let (ops, delta) = layout.plan(&b).unwrap();
        layout.commit(delta);
        let Some(Op::PutRemovals(text)) = ops.last() else {
            panic!("no removals written: {:?}", ops.last())
        };
        let recalled = Layout::default().recall_removals(Some(text), REMOVALS_KEPT as u64 + 5);
        assert_eq!(recalled.len(), REMOVALS_KEPT);
        assert_eq!(recalled[0], gone("t5", 5), "the oldest go first");
    }

    fn ids(store: &MemOutboxStore) -> Vec<String> {
        let mut ids: Vec<String> = store.transactions().into_iter().map(|t| t.id.0).collect();
        ids.sort();
        ids
    }

    fn put_keys(ops: &[Op]) -> Vec<EntryId> {
        ops.iter()
            .filter_map(|op| match op {
                Op::PutEntry(k, _) => Some(*k),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_write_is_one_entry_for_its_records_and_one_for_its_marks() {
        let mut layout = Layout::default();
        let (ops, delta) = layout
            .plan(&batch(1, vec![tx("a"), tx("b"), tx("c")]))
            .unwrap();
        assert_eq!(put_keys(&ops), [1]);
        layout.commit(delta);
        let mut b = batch(1, vec![tx("d")]);
        b.completed = vec![done("a", 5), done("b", 5)];
        b.deletes = vec![gone("c", 5)];
        let (ops, _) = layout.plan(&b).unwrap();
        assert_eq!(
            put_keys(&ops),
            [2, 3],
            "d's record, then a's and b's marks and c's removal"
        );
        assert!(
            ops.contains(&Op::DeleteEntry(1)),
            "every copy in entry 1 beaten: it goes: {ops:?}"
        );
    }

    #[test]
    fn an_entry_goes_in_the_write_that_beats_its_last_current_copy() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch.0;
        s.write(&batch(epoch, vec![tx("a"), tx("b"), tx("c")]))
            .unwrap();
        assert_eq!(s.entry_count(), 1);
        let mut a = tx("a");
        a.state = TransactionState::Failed;
        s.write(&batch(epoch, vec![a.clone()])).unwrap();
        assert_eq!(s.entry_count(), 2, "entry 1 still holds b and c");
        let mut marks = batch(epoch, vec![]);
        marks.completed.push(done("b", 5));
        marks.deletes.push(gone("c", 5));
        s.write(&marks).unwrap();
        assert_eq!(
            s.entry_count(),
            2,
            "entry 1 beaten whole: a's record and the marks stay"
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
    fn the_layout_forgets_settled_ids_once_their_marks_commit_and_when_it_loads() {
        let known = |s: &MemOutboxStore| {
            let mut ids: Vec<String> = s.layout.current.keys().map(|id| id.0.clone()).collect();
            ids.sort();
            ids
        };
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch.0;
        s.write(&batch(epoch, vec![tx("a"), tx("b"), tx("c")]))
            .unwrap();
        let mut marks = batch(epoch, vec![]);
        marks.completed.push(done("a", 5));
        marks.deletes.push(gone("b", 5));
        s.write(&marks).unwrap();
        assert_eq!(
            known(&s),
            ["c"],
            "a leader does not hold every id it settled"
        );
        assert_eq!(s.entry_count(), 2, "entry 1 still holds c");
        let mut last = batch(epoch, vec![]);
        last.completed.push(done("c", 6));
        s.write(&last).unwrap();
        assert_eq!(
            s.entry_count(),
            2,
            "entry 1 beaten whole: it went; the marks stay"
        );
        assert!(known(&s).is_empty());
        assert!(
            s.layout.live.is_empty(),
            "nor a count for the marks entries"
        );
        // A new leader gets the tombstones (to answer resends) and keeps only records' places.
        let loaded = s.begin_leadership(10);
        assert_eq!(loaded.tombstones, vec![done("a", 5), done("c", 6)]);
        assert!(known(&s).is_empty());
        assert!(s.layout.live.is_empty(), "{:?}", s.layout.live);
        s.write(&batch(loaded.epoch.0, vec![tx("d")])).unwrap();
        assert_eq!(known(&s), ["d"]);
    }

    #[test]
    fn a_long_leadership_holds_nothing_per_write_that_settled() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch.0;
        for i in 0..1_000 {
            let id = format!("t{i}");
            s.write(&batch(epoch, vec![tx(&id)])).unwrap();
            let mut marks = batch(epoch, vec![]);
            marks.completed.push(done(&id, i));
            s.write(&marks).unwrap();
        }
        assert!(s.layout.current.is_empty());
        assert!(
            s.layout.live.is_empty(),
            "{} entries counted",
            s.layout.live.len()
        );
        // What storage holds is unchanged: the marks stay for the next leader.
        assert_eq!(s.entry_count(), 1_000);
        let loaded = s.begin_leadership(1_000);
        assert_eq!(loaded.tombstones.len(), 1_000);
    }

    /// Settles `n` transactions named `{prefix}{i}`, one every `step` from `start`, each put
    /// and then marked done in a write of its own (as the executor does); checks after each
    /// that storage holds no more than `most` entries, if given.
    fn settle_over_time(
        s: &mut MemOutboxStore,
        epoch: u64,
        prefix: &str,
        (start, step, n): (Millis, Millis, u64),
        most: Option<usize>,
    ) {
        for i in 0..n {
            let id = format!("{prefix}{i}");
            s.write(&batch(epoch, vec![tx(&id)])).unwrap();
            let mut marks = batch(epoch, vec![]);
            marks.completed.push(done(&id, start + i * step));
            s.write(&marks).unwrap();
            if let Some(most) = most {
                assert!(
                    s.entry_count() <= most,
                    "{} entries after {id}",
                    s.entry_count()
                );
            }
        }
    }

    #[test]
    fn a_long_leadership_deletes_its_marks_once_their_tombstones_expire() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch.0;
        // Three days, a transaction settled every ten minutes: a day of marks entries is 144,
        // and a span (an hour) more may wait to go.
        let step = SPAN_MS / 6;
        let n = 3 * 24 * 6;
        settle_over_time(&mut s, epoch, "t", (0, step, n), Some(144 + 6 + 1));
        assert!(s.layout.marks.len() <= 26, "{} spans", s.layout.marks.len());
        assert!(s.entry_count() >= 144, "a day of tombstones stays");
        // Nothing that had not expired went: a new leader gets every tombstone of the last
        // day, as it would have from the whole log.
        let now = (n - 1) * step;
        let loaded = s.begin_leadership(now);
        let want: Vec<Tombstone> = (0..n)
            .filter(|i| i * step >= now - TOMBSTONE_TTL_MS)
            .map(|i| done(&format!("t{i}"), i * step))
            .collect();
        let mut got = loaded.tombstones.clone();
        got.sort_by_key(|t| t.completed_at);
        assert_eq!(got, want);
        // The load's layout goes on compacting what it kept.
        let epoch = loaded.epoch.0;
        settle_over_time(
            &mut s,
            epoch,
            "u",
            (now + step, step, 2 * 24 * 6),
            Some(144 + 6 + 1),
        );
    }

    #[test]
    fn marks_stay_in_storage_while_an_older_record_or_an_entry_that_does_not_read_stays() {
        let step = SPAN_MS / 6;
        let day = 24 * 6;
        // A transaction still pending from the start: its record entry is older than every
        // marks entry, and some of them may beat copies in it (here "a", which shared its
        // entry): nothing is deleted past it.
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch.0;
        s.write(&batch(epoch, vec![tx("a"), tx("stuck")])).unwrap();
        let mut a = batch(epoch, vec![]);
        a.completed.push(done("a", 0));
        s.write(&a).unwrap();
        settle_over_time(&mut s, epoch, "t", (step, step, 2 * day), None);
        assert_eq!(s.entry_count(), 2 + 2 * day as usize, "nothing deleted");
        assert!(s.is_completed(&"a".into()));
        // Once it settles, the next write deletes every expired span.
        let now = 2 * day * step + step;
        let mut b = batch(epoch, vec![]);
        b.completed.push(done("stuck", now));
        s.write(&b).unwrap();
        let mut c = batch(epoch, vec![]);
        c.completed.push(done("last", now));
        s.write(&c).unwrap();
        assert!(
            s.entry_count() <= day as usize + 6 + 2,
            "{}",
            s.entry_count()
        );
        let loaded = s.begin_leadership(now);
        assert!(loaded
            .tombstones
            .iter()
            .all(|t| t.completed_at >= now - TOMBSTONE_TTL_MS));
        assert_eq!(
            loaded.tombstones.len(),
            s.entry_count(),
            "every marks entry left holds one unexpired tombstone"
        );
        // An entry that does not read stays for the quarantine, and so do the marks after it.
        let mut s = MemOutboxStore::new();
        s.put_raw_entry(1, StoredRecord::Text("{\"p\": [[\"x\", {\"trunc".into()));
        let epoch = s.begin_leadership(0).epoch.0;
        settle_over_time(&mut s, epoch, "t", (0, step, 2 * day), None);
        assert_eq!(s.entry_count(), 1 + 2 * day as usize, "nothing deleted");
        s.quarantine("\u{0}log:1");
        let loaded = s.begin_leadership(2 * day * step);
        assert_eq!(loaded.tombstones.len(), s.entry_count());
    }

    #[test]
    fn a_spent_entry_stays_while_an_older_kept_entry_holds_a_copy_of_its_ids() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch.0;
        s.write(&batch(epoch, vec![tx("a"), tx("b")])).unwrap();
        let mut b = batch(epoch, vec![]);
        b.completed.push(done("a", 5));
        b.deletes.push(gone("b", 5));
        s.write(&b).unwrap();
        assert_eq!(s.entry_count(), 1, "entry 1 beaten whole");
        s.write(&batch(epoch, vec![tx("c"), tx("d")])).unwrap();
        let mut b = batch(epoch, vec![]);
        b.completed.push(done("c", 5));
        s.write(&b).unwrap();
        let late = 5 + TOMBSTONE_TTL_MS + 1;
        let loaded = s.begin_leadership(late);
        // a's marks went; c's stay past expiry: entry 3 (kept for d) holds c's record, which
        // would come back.
        assert_eq!(loaded.tombstones, vec![done("c", 5)]);
        assert_eq!(ids(&s), ["d"]);
        assert_eq!(s.entry_count(), 2);
        assert!(!s.is_completed(&"a".into()));
        let epoch = loaded.epoch.0;
        let mut b = batch(epoch, vec![]);
        b.completed.push(done("d", late));
        s.write(&b).unwrap();
        let loaded = s.begin_leadership(late);
        assert_eq!(loaded.tombstones, vec![done("d", late)]);
        assert!(loaded.records.is_empty());
        assert_eq!(s.entry_count(), 1, "only d's marks: c's went with entry 3");
    }

    #[test]
    fn a_failed_write_changes_nothing_and_its_retry_takes_the_same_key() {
        let mut s = MemOutboxStore::new();
        let epoch = s.begin_leadership(0).epoch.0;
        s.quota_exhausted = true;
        let b = batch(epoch, vec![tx("a"), tx("b")]);
        assert_eq!(s.write(&b), Err(StoreError::QuotaExceeded));
        assert_eq!(s.entry_count(), 0);
        s.quota_exhausted = false;
        s.write(&b).unwrap();
        assert_eq!((s.entry_count(), ids(&s).len()), (1, 2));
    }

    #[test]
    fn an_entry_that_does_not_read_is_quarantined_whole_and_a_bad_member_alone() {
        let mut s = MemOutboxStore::new();
        s.put_raw_entry(7, StoredRecord::Text("{\"p\": [[\"x\", {\"trunc".into()));
        let good = serde_json::to_string(&tx("a")).unwrap();
        s.put_raw_entry(
            8,
            StoredRecord::Text(format!(
                "{{\"p\": [[\"a\", {good}], [\"bad\", {{\"v\": 99}}]]}}"
            )),
        );
        let loaded = s.begin_leadership(0);
        let mut keys: Vec<&str> = loaded.records.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["\u{0}log:7", "a", "bad"]);
        s.quarantine("\u{0}log:7");
        s.quarantine("bad");
        assert_eq!(s.quarantined(), ["\u{0}log:7", "bad"]);
        assert_eq!(ids(&s), ["a"]);
        let loaded = s.begin_leadership(0);
        assert_eq!(loaded.records.len(), 1, "quarantined records stay out");
        // New entries take keys after every stored one.
        let (layout, _) = Layout::load(vec![], vec![(8, StoredRecord::Text("{}".into()))], 0);
        let (ops, _) = layout.plan(&batch(1, vec![tx("c")])).unwrap();
        assert_eq!(put_keys(&ops), [9]);
    }

    #[test]
    fn the_log_beats_older_slots_and_expired_slot_tombstones_go() {
        let record = StoredRecord::Text(serde_json::to_string(&tx("a")).unwrap());
        let slots = vec![
            ("a".to_owned(), Slot::Record(record.clone())),
            ("b".to_owned(), Slot::Record(record)),
            ("old".to_owned(), Slot::Tombstone(1)),
            ("new".to_owned(), Slot::Tombstone(TOMBSTONE_TTL_MS + 5)),
        ];
        let entry = StoredRecord::Text(format!("{{\"d\": [[\"a\", {}]]}}", TOMBSTONE_TTL_MS + 9));
        let (layout, load) = Layout::load(slots, vec![(1, entry)], TOMBSTONE_TTL_MS + 10);
        let mut expired = load.expired.clone();
        expired.sort();
        assert_eq!(expired, ["a", "old"]);
        let mut kept: Vec<&str> = load.records.iter().map(|(k, _)| k.as_str()).collect();
        kept.sort();
        assert_eq!(kept, ["b"]);
        let mut tombs: Vec<&str> = load.tombstones.iter().map(|t| t.id.as_str()).collect();
        tombs.sort();
        assert_eq!(tombs, ["a", "new"]);
        // Completing b deletes its slot in the same write.
        let mut b = batch(1, vec![]);
        b.completed.push(done("b", 20));
        let (ops, _) = layout.plan(&b).unwrap();
        assert_eq!(ops[0], Op::DeleteSlot("b".into()));
    }

    #[test]
    fn schema_3_packs_become_slots_where_no_slot_beat_them() {
        let a = serde_json::to_string(&tx("a")).unwrap();
        let slots = vec![
            ("b".to_owned(), LegacySlot::Slot(Slot::Tombstone(4))),
            ("c".to_owned(), LegacySlot::Removed),
        ];
        let packs = vec![
            (
                "2".to_owned(),
                StoredRecord::Text(format!("[[\"a\", {a}], [\"b\", {a}], [\"c\", {a}]]")),
            ),
            ("3".to_owned(), StoredRecord::Text("[[\"x\"".into())),
        ];
        let m = migrate_packs(slots, packs);
        assert_eq!(m.delete_slots, ["c"]);
        let mut gone = m.delete_packs.clone();
        gone.sort();
        assert_eq!(gone, ["2", "3"]);
        let put: Vec<&str> = m.put_slots.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(put, ["\u{0}pack:3", "a"]);
        let (_, load) = Layout::load(m.slots, vec![], 5);
        let mut records: Vec<&str> = load.records.iter().map(|(k, _)| k.as_str()).collect();
        records.sort();
        assert_eq!(records, ["\u{0}pack:3", "a"]);
        assert_eq!(load.tombstones, vec![done("b", 4)]);
    }
}
