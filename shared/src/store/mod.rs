//! The outbox storage port: what the leader writes, the epoch fence, and an in-memory store.
//!
//! The browser's IndexedDB store (in `outbox-worker`) follows the same rules: the epoch is
//! bumped in the same atomic step that loads the outbox, and a batch from an older epoch is
//! refused whole ([`check_fence`]).

use crate::model::{Epoch, ErrorCode, Millis, Transaction, TransactionId, TxError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub mod layout;

pub use layout::{
    entry_member, migrate_packs, EntryId, Layout, LegacySlot, Load, Migration, Op,
    QuarantineTarget, Slot,
};

/// Identifies one write batch of one executor.
pub type WriteId = u64;

/// One atomic write: everything in it commits together or not at all.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBatch {
    /// The batch's id (echoed back in `Written` / `WriteFailed`).
    pub id: WriteId,
    /// The epoch of the leader writing it; refused if older than the stored epoch.
    pub epoch: Epoch,
    /// Records to put (insert or replace), by transaction id.
    pub puts: Vec<Transaction>,
    /// Transactions that completed: their records are replaced by tombstones, so a late resend
    /// of the same id is recognised as done.
    pub completed: Vec<Tombstone>,
    /// Records to delete outright (removed by the app, or discarded): storage remembers the
    /// removals as long as tombstones ([`Loaded::removed`]).
    pub deletes: Vec<Removal>,
    /// Whether the server was reachable, when that changed: `Some(false)` after an attempt got
    /// no answer at all, `Some(true)` once one is answered again. The next leader starts from
    /// it ([`Loaded::unreachable`]).
    pub reachable: Option<bool>,
}

impl WriteBatch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty()
            && self.completed.is_empty()
            && self.deletes.is_empty()
            && self.reachable.is_none()
    }
}

/// What is left of a completed transaction: enough to answer a late resend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    /// The transaction.
    pub id: TransactionId,
    /// When it completed.
    pub completed_at: Millis,
}

/// What is left of a transaction removed from the outbox (by the app, a `before_retry` hook or
/// a sign-out that discards): enough to answer a late resend with "removed" rather than take
/// it in anew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The transaction.
    pub id: TransactionId,
    /// When it was removed.
    pub removed_at: Millis,
}

/// How long tombstones (and removals) are kept.
pub const TOMBSTONE_TTL_MS: Millis = 24 * 60 * 60 * 1000;

/// A record as storage gave it: the JSON text Outbox writes (decoded straight into a
/// transaction, without a `Value` in between), or a value of any other shape (someone else
/// wrote it; it is read, or quarantined, all the same).
#[derive(Debug, Clone, PartialEq)]
pub enum StoredRecord {
    /// JSON text.
    Text(String),
    /// Anything else.
    Value(Value),
}

/// What a new leader reads, in the same atomic step that bumps the epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The new epoch.
    pub epoch: Epoch,
    /// Every stored record, undecoded, with its storage key (for quarantine).
    pub records: Vec<(String, StoredRecord)>,
    /// Recent tombstones.
    pub tombstones: Vec<Tombstone>,
    /// Recent removals (those of builds before session 20 were not kept).
    pub removed: Vec<Removal>,
    /// The last leader's last attempt got no answer at all (the server was unreachable): the
    /// new leader starts by probing, one attempt at a time.
    pub unreachable: bool,
    /// Which outbox's epochs these are: an id made with the outbox's storage, the same for
    /// every leader of it. Servers fence epochs per lineage (`Outbox-Scope`): another browser,
    /// or another user's outbox, counts its own. `None` where storage keeps none.
    pub lineage: Option<String>,
}

/// Why a write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The batch's epoch is older than the stored one: another leader has taken over.
    #[error("write from epoch {attempted} refused: storage is at epoch {stored}")]
    Fenced {
        /// The epoch in storage.
        stored: Epoch,
        /// The batch's epoch.
        attempted: Epoch,
    },
    /// Storage is full.
    #[error("storage quota exceeded")]
    QuotaExceeded,
    /// Anything else.
    #[error("storage failed: {0}")]
    Other(String),
}

impl StoreError {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Fenced { .. } => ErrorCode::Fenced,
            Self::QuotaExceeded => ErrorCode::QuotaExceeded,
            Self::Other(_) => ErrorCode::Storage,
        }
    }

    /// As a transaction error.
    pub fn to_tx_error(&self) -> TxError {
        TxError::new(self.code(), self.to_string())
    }
}

/// The fence: a write from `attempted` may proceed only if storage is not past it.
pub fn check_fence(stored: Epoch, attempted: Epoch) -> Result<(), StoreError> {
    if attempted < stored {
        Err(StoreError::Fenced { stored, attempted })
    } else {
        Ok(())
    }
}

/// An in-memory outbox store with the same semantics and the same [`Layout`] as the IndexedDB
/// one. Used by native tests and simulations.
#[derive(Debug, Clone, Default)]
pub struct MemOutboxStore {
    epoch: Epoch,
    slots: BTreeMap<String, Slot>,
    log: BTreeMap<EntryId, StoredRecord>,
    quarantine: BTreeMap<String, StoredRecord>,
    /// The recent removals' text ([`Op::PutRemovals`]).
    removals: Option<String>,
    layout: Layout,
    unreachable: bool,
    /// When set, writes that add records fail with [`StoreError::QuotaExceeded`].
    pub quota_exhausted: bool,
    /// Disables the epoch fence. Only for proving, in tests, that the fence matters.
    pub unfenced: bool,
}

impl MemOutboxStore {
    /// An empty store at epoch 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes leadership: bumps the epoch and loads everything (deleting what expired),
    /// atomically.
    pub fn begin_leadership(&mut self, now: Millis) -> Loaded {
        self.epoch = self.epoch.next();
        let (mut layout, load) = self.read(now);
        for key in &load.expired {
            self.slots.remove(key);
        }
        for entry in &load.dropped {
            self.log.remove(entry);
        }
        let removed = layout.recall_removals(self.removals.as_deref(), now);
        self.layout = layout;
        Loaded {
            epoch: self.epoch,
            records: load.records,
            tombstones: load.tombstones,
            removed,
            unreachable: self.unreachable,
            lineage: None,
        }
    }

    fn read(&self, now: Millis) -> (Layout, Load) {
        Layout::load(
            self.slots
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            self.log.iter().map(|(k, v)| (*k, v.clone())).collect(),
            now,
        )
    }

    /// Applies a batch atomically, or refuses it whole.
    pub fn write(&mut self, batch: &WriteBatch) -> Result<(), StoreError> {
        if !self.unfenced {
            check_fence(self.epoch, batch.epoch)?;
        }
        if self.quota_exhausted && batch.puts.iter().any(|t| self.layout.is_new(&t.id)) {
            return Err(StoreError::QuotaExceeded);
        }
        let (ops, delta) = self
            .layout
            .plan(batch)
            .map_err(|e| StoreError::Other(e.to_string()))?;
        self.apply(ops);
        self.layout.commit(delta);
        if let Some(reachable) = batch.reachable {
            self.unreachable = !reachable;
        }
        Ok(())
    }

    fn apply(&mut self, ops: Vec<Op>) {
        for op in ops {
            match op {
                Op::PutEntry(key, text) => {
                    self.log.insert(key, StoredRecord::Text(text));
                }
                Op::DeleteEntry(key) => {
                    self.log.remove(&key);
                }
                Op::DeleteEntries { from, below } => {
                    self.log.retain(|key, _| *key < from || *key >= below);
                }
                Op::DeleteSlot(id) => {
                    self.slots.remove(id.as_str());
                }
                Op::PutRemovals(text) => self.removals = Some(text),
            }
        }
    }

    /// Moves the record loaded under `key` into quarantine.
    pub fn quarantine(&mut self, key: &str) {
        match self.layout.quarantine_target(key) {
            QuarantineTarget::Slot(key) => {
                if let Some(Slot::Record(v)) = self.slots.get(&key).cloned() {
                    self.slots.remove(&key);
                    self.quarantine.insert(key, v);
                }
            }
            QuarantineTarget::Entry(entry) => {
                if let Some(v) = self.log.remove(&entry) {
                    self.quarantine.insert(key.to_owned(), v);
                }
            }
            QuarantineTarget::Member { entry, id } => {
                let Some(raw) = self
                    .log
                    .get(&entry)
                    .and_then(|e| entry_member(e, id.as_str()))
                else {
                    return;
                };
                let Ok((ops, delta)) = self.layout.plan_quarantine(&id) else {
                    return;
                };
                self.quarantine.insert(id.0, StoredRecord::Text(raw));
                self.apply(ops);
                self.layout.commit(delta);
            }
        }
    }

    /// Puts a raw record (for tests that plant corrupt data).
    pub fn put_raw(&mut self, key: &str, value: Value) {
        self.slots
            .insert(key.to_owned(), Slot::Record(StoredRecord::Value(value)));
    }

    /// Puts a raw log entry (for tests that plant corrupt data).
    pub fn put_raw_entry(&mut self, key: EntryId, value: StoredRecord) {
        self.log.insert(key, value);
    }

    /// The stored epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Stored records, decoded where possible.
    pub fn transactions(&self) -> Vec<Transaction> {
        self.read(0)
            .1
            .records
            .into_iter()
            .filter_map(|(_, v)| Transaction::from_stored(v).ok())
            .collect()
    }

    /// How many log entries are stored.
    pub fn entry_count(&self) -> usize {
        self.log.len()
    }

    /// Whether a tombstone exists for `id`.
    pub fn is_completed(&self, id: &TransactionId) -> bool {
        self.read(0).1.tombstones.iter().any(|t| &t.id == id)
    }

    /// Keys of quarantined records.
    pub fn quarantined(&self) -> Vec<String> {
        self.quarantine.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PendingMutation, Strategy};
    use serde_json::json;

    pub(super) fn tx(id: &str) -> Transaction {
        Transaction::new(
            id.into(),
            "f",
            Strategy::Ordered,
            vec![PendingMutation::insert("c", id, json!({}))],
            0,
        )
    }

    pub(super) fn batch(epoch: u64, puts: Vec<Transaction>) -> WriteBatch {
        WriteBatch {
            reachable: None,
            id: 1,
            epoch: Epoch(epoch),
            puts,
            completed: vec![],
            deletes: vec![],
        }
    }

    #[test]
    fn a_stale_epoch_is_fenced_out_whole() {
        let mut s = MemOutboxStore::new();
        assert_eq!(s.begin_leadership(0).epoch, Epoch(1));
        s.write(&batch(1, vec![tx("a")])).unwrap();
        assert_eq!(s.begin_leadership(0).epoch, Epoch(2));
        let err = s.write(&batch(1, vec![tx("b")])).unwrap_err();
        assert_eq!(
            err,
            StoreError::Fenced {
                stored: Epoch(2),
                attempted: Epoch(1)
            }
        );
        assert_eq!(err.code(), ErrorCode::Fenced);
        assert_eq!(s.transactions().len(), 1);
        s.write(&batch(2, vec![tx("b")])).unwrap();
        assert_eq!(s.transactions().len(), 2);
    }

    #[test]
    fn quota_refuses_new_records_but_not_updates() {
        let mut s = MemOutboxStore::new();
        s.begin_leadership(0);
        s.write(&batch(1, vec![tx("a")])).unwrap();
        s.quota_exhausted = true;
        assert_eq!(
            s.write(&batch(1, vec![tx("b")])),
            Err(StoreError::QuotaExceeded)
        );
        s.write(&batch(1, vec![tx("a")])).unwrap();
        assert_eq!(s.transactions().len(), 1);
    }

    #[test]
    fn completed_records_become_tombstones_that_expire() {
        let mut s = MemOutboxStore::new();
        s.begin_leadership(0);
        s.write(&batch(1, vec![tx("a")])).unwrap();
        let mut b = batch(1, vec![]);
        b.completed.push(Tombstone {
            id: "a".into(),
            completed_at: 10,
        });
        s.write(&b).unwrap();
        assert!(s.transactions().is_empty());
        assert_eq!(s.begin_leadership(20).tombstones.len(), 1);
        assert!(s
            .begin_leadership(10 + TOMBSTONE_TTL_MS + 1)
            .tombstones
            .is_empty());
    }
}
