//! The outbox in IndexedDB, through `indexed_db_futures`.
//!
//! Database `outbox:<scope>`, schema version 4, laid out as [`outbox_shared::store::layout`]
//! says:
//! - `meta`: the leadership epoch under the key `epoch`, and the synced collections' sequence
//!   numbers under `syncSeqs` (JSON text, collection → seq);
//! - `log` (since version 4): the outbox, as entries of JSON text keyed by a growing number;
//!   a write puts one for its records and one for its tombstones and removals;
//! - `outbox`: builds before the log kept one slot per transaction here, keyed by its id: the
//!   record's JSON text, or its tombstone (the completion time, a number), or `false` (removed
//!   while a pack held it). Read, beaten by the log, deleted; only a schema-3 migration writes;
//! - `packs` (version 3 only): a write's new records, as JSON text keyed by a number in
//!   decimal. A new leader turns them into slots ([`migrate_packs`]) and deletes them;
//! - `tombstones`: completed ids → completion time (ms), as builds before tombstones moved into
//!   the outbox store kept them; read and expired, never written;
//! - `quarantine`: records that could not be read, moved aside as they were;
//! - `synced` (since version 2): the server's rows from the change feed, keyed
//!   `<collection>\0<key>`, each the row's JSON text. A new leader resumes the feed from them.
//!
//! Every operation is one read-write transaction (a rehearsed takeover: one read-only).
//! [`IdbStore::take_over`] bumps the epoch, loads
//! the outbox and stores the new leader's first writes in the same transaction;
//! [`IdbStore::write`] reads the stored epoch in the same transaction as its puts and rolls
//! everything back if a newer leader has taken over.

use indexed_db_futures::database::Database;
use indexed_db_futures::error::{DomException, Error as IdbError, OpenDbError};
use indexed_db_futures::internals::SystemRepr;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::TransactionMode;
use outbox_runtime::store::{AsyncStore, LocalFuture};
use outbox_shared::model::{Epoch, Millis, Transaction};
use outbox_shared::store::{
    check_fence, entry_member, migrate_packs, EntryId, Layout, LegacySlot, Loaded, Op,
    QuarantineTarget, Slot, StoreError, StoredRecord, Tombstone, WriteBatch, WriteId,
    TOMBSTONE_TTL_MS,
};
use outbox_shared::sync::{CollectionSnapshot, PersistBatch, RowWrite};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// The schema version this build creates and reads.
pub const SCHEMA_VERSION: u32 = 4;
const META: &str = "meta";
const OUTBOX: &str = "outbox";
const PACKS: &str = "packs";
const LOG: &str = "log";
const TOMBSTONES: &str = "tombstones";
const QUARANTINE: &str = "quarantine";
const SYNCED: &str = "synced";
const EPOCH_KEY: &str = "epoch";
/// 1 while the last leader's last attempt got no answer (see `Loaded::unreachable`), else 0.
const UNREACHABLE_KEY: &str = "unreachable";
const SYNC_SEQS_KEY: &str = "syncSeqs";
/// The recent removals, JSON text (see `outbox_shared::store::layout`): since session 20,
/// ignored by builds before it.
const REMOVALS_KEY: &str = "removals";
/// This outbox's lineage (`Loaded::lineage`), a random id made by its first leader.
const LINEAGE_KEY: &str = "lineage";

/// The `synced` store's key of a row.
fn synced_key(collection: &str, key: &str) -> String {
    format!("{collection}\u{0}{key}")
}

/// The name of the database for `scope`.
pub fn database_name(scope: &str) -> String {
    format!("outbox:{scope}")
}

/// An open outbox database.
#[derive(Debug, Clone)]
pub struct IdbStore {
    db: Rc<Database>,
    /// Where this leader's records are (from [`IdbStore::begin_leadership`], then each write).
    layout: Rc<RefCell<Layout>>,
}

/// Maps an IndexedDB failure to the store's error, recognising quota exhaustion by its
/// DOMException name.
pub fn store_error(e: &IdbError) -> StoreError {
    match e {
        IdbError::DomException(d) if dom_name(d) == "QuotaExceededError" => {
            StoreError::QuotaExceeded
        }
        other => StoreError::Other(other.to_string()),
    }
}

/// Commits `tx`. A commit that fails for want of space aborts the transaction, and the abort
/// names its cause only on the transaction (`IDBTransaction.error`), which is read here: the
/// library reports a bare "aborted".
async fn commit(tx: indexed_db_futures::transaction::Transaction<'_>) -> Result<(), StoreError> {
    let sys: web_sys::IdbTransaction = (**tx.as_sys()).clone();
    match tx.commit().await {
        Ok(()) => Ok(()),
        Err(e) => match sys.error() {
            Some(cause) if cause.name() == "QuotaExceededError" => Err(StoreError::QuotaExceeded),
            Some(cause) => Err(StoreError::Other(format!(
                "{e} ({}: {})",
                cause.name(),
                cause.message()
            ))),
            None => Err(store_error(&e)),
        },
    }
}

fn dom_name(d: &DomException) -> String {
    d.as_sys().name()
}

fn other(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(e.to_string())
}

impl IdbStore {
    /// Opens (creating or upgrading) the outbox database of `scope`.
    pub async fn open(scope: &str) -> Result<Self, StoreError> {
        let db = Database::open(database_name(scope).as_str())
            .with_version(SCHEMA_VERSION)
            .with_on_upgrade_needed(|event, db| {
                let old = event.old_version() as u64;
                if old < 1 {
                    for store in [META, OUTBOX, TOMBSTONES, QUARANTINE] {
                        db.create_object_store(store).build()?;
                    }
                }
                if old < 2 {
                    db.create_object_store(SYNCED).build()?;
                }
                if old < 3 {
                    db.create_object_store(PACKS).build()?;
                }
                if old < 4 {
                    db.create_object_store(LOG).build()?;
                }
                Ok(())
            })
            .await
            .map_err(|e| match &e {
                // Refused rather than opened and misread: a newer build's records may not be ours
                // to interpret. Recognised by the DOMException's name, not by message text.
                OpenDbError::Base(IdbError::DomException(d)) if dom_name(d) == "VersionError" => {
                    StoreError::Other(format!(
                        "the outbox database was written by a newer version of Outbox (its schema \
                         is newer than {SCHEMA_VERSION}); this worker leaves it alone ({e})"
                    ))
                }
                _ => other(e),
            })?;
        Ok(Self {
            db: Rc::new(db),
            layout: Rc::default(),
        })
    }

    /// Takes leadership: bumps the epoch, migrates schema 3's packs, drops what is garbage
    /// (expired tombstones, spent entries), and loads everything, in one transaction.
    pub async fn begin_leadership(&self, now: Millis) -> Result<Loaded, StoreError> {
        let mut kept = None;
        self.take_over(now, |loaded| {
            kept = Some(loaded);
            Vec::new()
        })
        .await?;
        kept.ok_or_else(|| StoreError::Other("nothing was loaded".into()))
    }

    /// Takes leadership as [`IdbStore::begin_leadership`] does, and stores the term's first
    /// writes in the same transaction: `first_writes` gets what was loaded while the
    /// transaction is still open, and what it returns is put before the commit. A new leader's
    /// first attempts so wait for one commit, not two. Returns each of those writes' outcome:
    /// `Ok` once committed, or why it could not be laid out (the rest still commit).
    pub async fn take_over(
        &self,
        now: Millis,
        first_writes: impl FnOnce(Loaded) -> Vec<WriteBatch>,
    ) -> Result<Vec<(WriteId, Result<(), StoreError>)>, StoreError> {
        self.load_and_write(now, None, &[], first_writes).await
    }

    /// Runs [`IdbStore::take_over`] on at most `limit` records of each store, in a read-only
    /// transaction that writes none of it. A worker waiting for the lock does this once, so that
    /// the code of a takeover is compiled (WebAssembly and its glue compile at their first run)
    /// before it is needed. When the outbox holds no records yet, `stand_ins` are laid out and
    /// loaded in their place (in memory only), so that the paths of a takeover with records run.
    pub async fn rehearse_take_over(
        &self,
        now: Millis,
        limit: u32,
        stand_ins: &[Transaction],
        first_writes: impl FnOnce(Loaded) -> Vec<WriteBatch>,
    ) -> Result<(), StoreError> {
        self.load_and_write(now, Some(limit), stand_ins, first_writes)
            .await
            .map(drop)
    }

    /// The transaction of [`IdbStore::take_over`]. With a `limit`, a rehearsal: a read-only
    /// transaction that reads that many records of each store at most and works out everything
    /// a takeover would write, but writes none of it (a takeover's deletes are only right for
    /// the whole outbox, and the epoch is the real leader's).
    async fn load_and_write(
        &self,
        now: Millis,
        limit: Option<u32>,
        stand_ins: &[Transaction],
        first_writes: impl FnOnce(Loaded) -> Vec<WriteBatch>,
    ) -> Result<Vec<(WriteId, Result<(), StoreError>)>, StoreError> {
        let stores = [META, OUTBOX, PACKS, LOG, TOMBSTONES];
        let real = limit.is_none();
        // The rehearsal takes the same calls as the takeover (only the mode and the limit
        // differ), so that it compiles the code the takeover runs: WebAssembly compiles each
        // function at its first call. With separate paths, a new leader's first attempt came
        // 1.4–1.8 ms later after its lock grant (medians of 15 failovers each way, twice).
        let tx = self
            .db
            .transaction(stores)
            .with_mode(if real {
                TransactionMode::Readwrite
            } else {
                TransactionMode::Readonly
            })
            .build()
            .map_err(|e| store_error(&e))?;
        let meta = tx.object_store(META).map_err(|e| store_error(&e))?;
        let outbox = tx.object_store(OUTBOX).map_err(|e| store_error(&e))?;
        let packs = tx.object_store(PACKS).map_err(|e| store_error(&e))?;
        let log = tx.object_store(LOG).map_err(|e| store_error(&e))?;
        let tombs = tx.object_store(TOMBSTONES).map_err(|e| store_error(&e))?;
        // Every read is issued before the first is awaited: one round trip to the database
        // instead of one per read (they still run in order, before the epoch's put).
        let epoch_req = meta
            .get::<f64, _, _>(EPOCH_KEY)
            .primitive()
            .map_err(|e| store_error(&e))?;
        let unreachable_req = meta
            .get::<f64, _, _>(UNREACHABLE_KEY)
            .primitive()
            .map_err(|e| store_error(&e))?;
        let removals_req = meta
            .get::<JsValue, _, _>(REMOVALS_KEY)
            .primitive()
            .map_err(|e| store_error(&e))?;
        let lineage_req = meta
            .get::<JsValue, _, _>(LINEAGE_KEY)
            .primitive()
            .map_err(|e| store_error(&e))?;
        let slots = issue_read_all(&outbox, limit)?;
        let pack_records = issue_read_all(&packs, limit)?;
        let entry_records = issue_read_all(&log, limit)?;
        let tomb_records = issue_read_all(&tombs, limit)?;
        let epoch = epoch_of(epoch_req.await.map_err(|e| store_error(&e))?).next();
        // Anything but a stored 1 (nothing, or a value this build does not know) is reachable.
        let unreachable = unreachable_req.await.map_err(|e| store_error(&e))? == Some(1.0);
        // Anything but text (nothing, or a value this build did not write) is no removals.
        let removals: Option<String> = removals_req
            .await
            .map_err(|e| store_error(&e))?
            .and_then(|v: JsValue| v.as_string());
        let lineage = match lineage_req
            .await
            .map_err(|e| store_error(&e))?
            .and_then(|v: JsValue| v.as_string())
        {
            Some(id) if !id.is_empty() => id,
            // The first leader (or the first of a build that keeps one) makes it.
            _ => {
                let id = outbox_runtime::clock::random_id();
                if real {
                    meta.put(id.as_str())
                        .with_key(LINEAGE_KEY)
                        .primitive()
                        .map_err(|e| store_error(&e))?;
                }
                id
            }
        };
        if real {
            meta.put(epoch.0 as f64)
                .with_key(EPOCH_KEY)
                .primitive()
                .map_err(|e| store_error(&e))?;
        }
        let (keys, values) = slots.await?;
        let slots = keys
            .into_iter()
            .zip(values)
            .map(|(k, v)| (k.as_string().unwrap_or_default(), slot_value(v)))
            .collect();
        let (keys, values) = pack_records.await?;
        let packs_read = keys
            .into_iter()
            .zip(values)
            .map(|(k, v)| (k.as_string().unwrap_or_default(), record_value(v)))
            .collect();
        let mut migration = migrate_packs(slots, packs_read);
        if !real {
            migration.put_slots.clear();
            migration.delete_slots.clear();
            migration.delete_packs.clear();
        }
        for (key, record) in migration.put_slots {
            let text = match record {
                StoredRecord::Text(text) => text,
                StoredRecord::Value(v) => v.to_string(),
            };
            outbox
                .put(text)
                .with_key(key)
                .primitive()
                .map_err(|e| store_error(&e))?;
        }
        for key in &migration.delete_slots {
            delete(&outbox, key.as_str())?;
        }
        for key in &migration.delete_packs {
            delete(&packs, key.as_str())?;
        }
        // Keys this build did not write (not numbers) are left where they are, unread.
        let (keys, values) = entry_records.await?;
        let mut entries: Vec<_> = keys
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| Some((entry_id(&k)?, record_value(v))))
            .collect();
        if !real && entries.is_empty() && migration.slots.is_empty() {
            entries = laid_out(stand_ins, epoch)?;
        }
        let (mut layout, load) = Layout::load(migration.slots, entries, now);
        if real {
            for key in &load.expired {
                delete(&outbox, key.as_str())?;
            }
            for entry in &load.dropped {
                delete(&log, *entry as f64)?;
            }
        }
        let removed = layout.recall_removals(removals.as_deref(), now);
        let mut tombstones = load.tombstones;
        // Tombstones of builds that kept them in a store of their own.
        let cutoff = now.saturating_sub(TOMBSTONE_TTL_MS);
        let (tkeys, tvalues) = tomb_records.await?;
        for (k, v) in tkeys.into_iter().zip(tvalues) {
            let Some(id) = k.as_string() else { continue };
            let at = v.as_f64().unwrap_or(0.0) as Millis;
            if at >= cutoff {
                tombstones.push(Tombstone {
                    id: id.as_str().into(),
                    completed_at: at,
                });
            } else if real {
                delete(&tombs, id.as_str())?;
            }
        }
        let writes = first_writes(Loaded {
            epoch,
            records: load.records,
            tombstones,
            removed,
            unreachable,
            lineage: Some(lineage),
        });
        // Still inside the transaction (nothing was awaited since the last read): the term's
        // first writes go in with the epoch. Each is laid out after the one before.
        let mut outcomes = Vec::with_capacity(writes.len());
        for batch in &writes {
            match layout.plan(batch) {
                Ok((ops, delta)) => {
                    if real {
                        apply(&meta, &outbox, &log, ops)?;
                        if let Some(reachable) = batch.reachable {
                            put_reachable(&meta, reachable)?;
                        }
                    }
                    layout.commit(delta);
                    outcomes.push((batch.id, Ok(())));
                }
                Err(e) => outcomes.push((batch.id, Err(other(e)))),
            }
        }
        if !real {
            // A rehearsal wrote nothing: let it end.
            drop(tx);
            return Ok(outcomes);
        }
        commit(tx).await?;
        *self.layout.borrow_mut() = layout;
        Ok(outcomes)
    }

    /// Writes a batch atomically, refusing it whole if storage has moved past its epoch.
    pub async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let (ops, delta) = self.layout.borrow().plan(batch).map_err(other)?;
        let tx = self.readwrite([META, OUTBOX, LOG])?;
        let meta = tx.object_store(META).map_err(|e| store_error(&e))?;
        // Requests run in order within the transaction: the epoch read sees the state before
        // the puts below, and if it says we are fenced the whole transaction is rolled back.
        let epoch_req = meta
            .get::<f64, _, _>(EPOCH_KEY)
            .primitive()
            .map_err(|e| store_error(&e))?;
        let outbox = tx.object_store(OUTBOX).map_err(|e| store_error(&e))?;
        let log = tx.object_store(LOG).map_err(|e| store_error(&e))?;
        apply(&meta, &outbox, &log, ops)?;
        if let Some(reachable) = batch.reachable {
            put_reachable(&meta, reachable)?;
        }
        let stored = epoch_of(epoch_req.await.map_err(|e| store_error(&e))?);
        // Dropping `tx` without committing rolls it back.
        check_fence(stored, batch.epoch)?;
        commit(tx).await?;
        self.layout.borrow_mut().commit(delta);
        Ok(())
    }

    /// Moves the record loaded under `key` into quarantine: out of its slot, or out of its log
    /// entry (a removal beats it there), or a whole entry that does not read.
    pub async fn quarantine(&self, key: &str) -> Result<(), StoreError> {
        let target = self.layout.borrow().quarantine_target(key);
        let tx = self.readwrite([META, OUTBOX, LOG, QUARANTINE])?;
        let meta = tx.object_store(META).map_err(|e| store_error(&e))?;
        let quarantine = tx.object_store(QUARANTINE).map_err(|e| store_error(&e))?;
        let outbox = tx.object_store(OUTBOX).map_err(|e| store_error(&e))?;
        let log = tx.object_store(LOG).map_err(|e| store_error(&e))?;
        let (store, stored_key): (_, JsValue) = match &target {
            QuarantineTarget::Slot(k) => (&outbox, k.as_str().into()),
            QuarantineTarget::Entry(e) | QuarantineTarget::Member { entry: e, .. } => {
                (&log, (*e as f64).into())
            }
        };
        let value: Option<JsValue> = store
            .get(&stored_key)
            .primitive()
            .map_err(|e| store_error(&e))?
            .await
            .map_err(|e| store_error(&e))?;
        let Some(value) = value else {
            return commit(tx).await;
        };
        let mut delta = None;
        match &target {
            QuarantineTarget::Slot(_) | QuarantineTarget::Entry(_) => {
                quarantine
                    .put(value)
                    .with_key(key)
                    .primitive()
                    .map_err(|e| store_error(&e))?;
                delete(store, &stored_key)?;
            }
            QuarantineTarget::Member { id, .. } => {
                let Some(raw) = entry_member(&record_value(value), id.as_str()) else {
                    return commit(tx).await;
                };
                let (ops, d) = self.layout.borrow().plan_quarantine(id).map_err(other)?;
                quarantine
                    .put(raw)
                    .with_key(key)
                    .primitive()
                    .map_err(|e| store_error(&e))?;
                apply(&meta, &outbox, &log, ops)?;
                delta = Some(d);
            }
        }
        commit(tx).await?;
        if let Some(delta) = delta {
            self.layout.borrow_mut().commit(delta);
        }
        Ok(())
    }

    /// The synced rows the last leader stored, by collection, each at its sequence number;
    /// `None` when there are none. A collection with a row that does not read is left out
    /// whole, so it is loaded from the server again (without the row, it would lack it until
    /// the server changed it again); keys of no collection are ignored.
    pub async fn load_synced(&self) -> Result<Option<Vec<CollectionSnapshot>>, StoreError> {
        let tx = self.readwrite([META, SYNCED])?;
        let meta = tx.object_store(META).map_err(|e| store_error(&e))?;
        let seqs: Option<String> = meta
            .get(SYNC_SEQS_KEY)
            .primitive()
            .map_err(|e| store_error(&e))?
            .await
            .map_err(|e| store_error(&e))?;
        let Some(seqs) = seqs.and_then(|t| serde_json::from_str::<BTreeMap<String, u64>>(&t).ok())
        else {
            return Ok(None);
        };
        let (keys, values) =
            read_all(&tx.object_store(SYNCED).map_err(|e| store_error(&e))?).await?;
        commit(tx).await?;
        let mut by: BTreeMap<String, CollectionSnapshot> = seqs
            .into_iter()
            .map(|(collection, seq)| {
                let snap = CollectionSnapshot {
                    collection: collection.clone(),
                    seq,
                    rows: Vec::new(),
                };
                (collection, snap)
            })
            .collect();
        let mut unreadable = std::collections::BTreeSet::new();
        for (k, v) in keys.into_iter().zip(values) {
            let Some(k) = k.as_string() else {
                continue;
            };
            let Some((collection, key)) = k.split_once('\u{0}') else {
                continue;
            };
            let Some(text) = v.as_string() else {
                unreadable.insert(collection.to_owned());
                continue;
            };
            let Some(snap) = by.get_mut(collection) else {
                continue;
            };
            match serde_json::from_str(&text) {
                Ok(row) => snap.rows.push((key.to_owned(), row)),
                Err(_) => {
                    unreadable.insert(collection.to_owned());
                }
            }
        }
        by.retain(|collection, _| !unreadable.contains(collection));
        Ok(Some(by.into_values().collect()))
    }

    /// Writes a batch of synced rows and the new sequence numbers atomically, refusing it
    /// whole if storage has moved past `epoch` (a deposed leader must not put older rows over
    /// a newer leader's).
    pub async fn write_synced(&self, epoch: Epoch, batch: &PersistBatch) -> Result<(), StoreError> {
        let tx = self.readwrite([META, SYNCED])?;
        let meta = tx.object_store(META).map_err(|e| store_error(&e))?;
        check_fence(read_epoch(&meta).await?, epoch)?;
        let synced = tx.object_store(SYNCED).map_err(|e| store_error(&e))?;
        for write in &batch.writes {
            match write {
                RowWrite::Replace(snap) => {
                    // The collection's keys are `<collection>\0<key>`: every one of them is in
                    // `[<collection>\0, <collection>\u{1})`, one ranged delete (every stored
                    // row of every collection was read, values and all, to find them).
                    let (from, below) = (
                        synced_key(&snap.collection, ""),
                        format!("{}\u{1}", snap.collection),
                    );
                    synced
                        .delete(from..below)
                        .primitive()
                        .map(drop)
                        .map_err(|e| store_error(&e))?;
                    for (key, row) in &snap.rows {
                        let text = serde_json::to_string(row).map_err(other)?;
                        synced
                            .put(text)
                            .with_key(synced_key(&snap.collection, key))
                            .primitive()
                            .map_err(|e| store_error(&e))?;
                    }
                }
                RowWrite::Put {
                    collection,
                    key,
                    value,
                } => {
                    let text = serde_json::to_string(value).map_err(other)?;
                    synced
                        .put(text)
                        .with_key(synced_key(collection, key))
                        .primitive()
                        .map_err(|e| store_error(&e))?;
                }
                RowWrite::Delete { collection, key } => {
                    delete(&synced, synced_key(collection, key).as_str())?;
                }
            }
        }
        let seqs = serde_json::to_string(&batch.seqs).map_err(other)?;
        meta.put(seqs)
            .with_key(SYNC_SEQS_KEY)
            .primitive()
            .map_err(|e| store_error(&e))?;
        commit(tx).await
    }

    /// Forgets the synced rows (at sign-out: the server's data of a user who left is not kept
    /// on the device; the next sign-in loads it again).
    pub async fn clear_synced(&self) -> Result<(), StoreError> {
        let tx = self.readwrite([META, SYNCED])?;
        tx.object_store(SYNCED)
            .map_err(|e| store_error(&e))?
            .clear()
            .map_err(|e| store_error(&e))?;
        delete(
            &tx.object_store(META).map_err(|e| store_error(&e))?,
            SYNC_SEQS_KEY,
        )?;
        commit(tx).await
    }

    /// A read-write transaction over `stores`.
    fn readwrite<S: indexed_db_futures::database::ObjectStoreName>(
        &self,
        stores: S,
    ) -> Result<indexed_db_futures::transaction::Transaction<'_>, StoreError> {
        self.db
            .transaction(stores)
            .with_mode(TransactionMode::Readwrite)
            .build()
            .map_err(|e| store_error(&e))
    }

    /// The underlying database (tests plant records through it).
    pub fn database(&self) -> &Database {
        &self.db
    }
}

/// The stored epoch (0 when there is none, or it does not read as one).
fn epoch_of(stored: Option<f64>) -> Epoch {
    Epoch(stored.filter(|e| e.is_finite() && *e >= 0.0).unwrap_or(0.0) as u64)
}

/// `txs` as log entries of a fresh outbox, as a write of them would put them.
fn laid_out(txs: &[Transaction], epoch: Epoch) -> Result<Vec<(EntryId, StoredRecord)>, StoreError> {
    if txs.is_empty() {
        return Ok(Vec::new());
    }
    let batch = WriteBatch {
        id: 0,
        epoch,
        puts: txs.to_vec(),
        completed: Vec::new(),
        deletes: Vec::new(),
        reachable: None,
    };
    let (ops, _) = Layout::default().plan(&batch).map_err(other)?;
    Ok(ops
        .into_iter()
        .filter_map(|op| match op {
            Op::PutEntry(entry, text) => Some((entry, StoredRecord::Text(text))),
            _ => None,
        })
        .collect())
}

/// Reads the stored epoch now.
async fn read_epoch(
    meta: &indexed_db_futures::object_store::ObjectStore<'_>,
) -> Result<Epoch, StoreError> {
    let stored: Option<f64> = meta
        .get(EPOCH_KEY)
        .primitive()
        .map_err(|e| store_error(&e))?
        .await
        .map_err(|e| store_error(&e))?;
    Ok(epoch_of(stored))
}

/// Every key and value of a store, in key order (both lists come from the same transaction).
async fn read_all(
    store: &indexed_db_futures::object_store::ObjectStore<'_>,
) -> Result<Listing, StoreError> {
    issue_read_all(store, None)?.await
}

/// A store's keys and values, in key order.
type Listing = (Vec<JsValue>, Vec<JsValue>);

/// Issues the reads of [`read_all`] now; the future only collects their answers, so reads
/// issued together cost one round trip to the database.
fn issue_read_all<'a>(
    store: &indexed_db_futures::object_store::ObjectStore<'a>,
    limit: Option<u32>,
) -> Result<impl std::future::Future<Output = Result<Listing, StoreError>> + 'a, StoreError> {
    // No limit is the largest count IndexedDB takes: one path for the takeover and its
    // rehearsal (see `load_and_write`).
    let n = limit.unwrap_or(u32::MAX);
    let (keys, values) = (
        store.get_all_keys::<JsValue>().with_limit(n).primitive(),
        store.get_all::<JsValue>().with_limit(n).primitive(),
    );
    let keys = keys.map_err(|e| store_error(&e))?;
    let values = values.map_err(|e| store_error(&e))?;
    Ok(async move {
        let keys = keys
            .await
            .map_err(|e| store_error(&e))?
            .map(|k| k.unwrap_or(JsValue::UNDEFINED))
            .collect();
        let values = values
            .await
            .map_err(|e| store_error(&e))?
            .map(|v| v.unwrap_or(JsValue::UNDEFINED))
            .collect();
        Ok((keys, values))
    })
}

/// Stores whether the server was reachable at the last attempt (see `Loaded::unreachable`).
fn put_reachable(
    meta: &indexed_db_futures::object_store::ObjectStore<'_>,
    reachable: bool,
) -> Result<(), StoreError> {
    meta.put(if reachable { 0.0 } else { 1.0 })
        .with_key(UNREACHABLE_KEY)
        .primitive()
        .map_err(|e| store_error(&e))?;
    Ok(())
}

/// Issues a write's operations on the outbox and log stores.
fn apply(
    meta: &indexed_db_futures::object_store::ObjectStore<'_>,
    outbox: &indexed_db_futures::object_store::ObjectStore<'_>,
    log: &indexed_db_futures::object_store::ObjectStore<'_>,
    ops: Vec<Op>,
) -> Result<(), StoreError> {
    for op in ops {
        match op {
            Op::PutEntry(entry, text) => log
                .put(text)
                .with_key(entry as f64)
                .primitive()
                .map(drop)
                .map_err(|e| store_error(&e))?,
            Op::DeleteEntry(entry) => delete(log, entry as f64)?,
            Op::DeleteEntries { from, below } => log
                .delete(from as f64..below as f64)
                .primitive()
                .map(drop)
                .map_err(|e| store_error(&e))?,
            Op::DeleteSlot(id) => delete(outbox, id.as_str())?,
            Op::PutRemovals(text) => meta
                .put(text)
                .with_key(REMOVALS_KEY)
                .primitive()
                .map(drop)
                .map_err(|e| store_error(&e))?,
        }
    }
    Ok(())
}

/// Issues the delete of `key` in `store`.
fn delete<K>(
    store: &indexed_db_futures::object_store::ObjectStore<'_>,
    key: K,
) -> Result<(), StoreError>
where
    K: indexed_db_futures::primitive::TryToJs,
{
    store
        .delete(key)
        .primitive()
        .map(drop)
        .map_err(|e| store_error(&e))
}

/// A log entry's key as this build writes it: a whole number.
fn entry_id(key: &JsValue) -> Option<EntryId> {
    key.as_f64()
        .filter(|k| k.fract() == 0.0 && *k >= 0.0 && *k < 2f64.powi(53))
        .map(|k| k as EntryId)
}

/// An outbox slot as stored: a record's text, a tombstone's time, `false` for removed; any
/// other value is a record that does not read (quarantined).
fn slot_value(v: JsValue) -> LegacySlot {
    if let Some(at) = v.as_f64() {
        LegacySlot::Slot(Slot::Tombstone(at as Millis))
    } else if v.as_bool() == Some(false) {
        LegacySlot::Removed
    } else {
        LegacySlot::Slot(Slot::Record(record_value(v)))
    }
}

/// A stored value as JSON: records are JSON text; anything else is read as a plain JS value,
/// and what cannot be read at all becomes `null` (which the executor quarantines).
fn record_value(v: JsValue) -> StoredRecord {
    match v.as_string() {
        Some(text) => StoredRecord::Text(text),
        None => StoredRecord::Value(
            serde_wasm_bindgen::from_value(v).unwrap_or(serde_json::Value::Null),
        ),
    }
}

impl AsyncStore for IdbStore {
    fn write(&self, batch: WriteBatch) -> LocalFuture<Result<(), StoreError>> {
        let me = self.clone();
        Box::pin(async move { IdbStore::write(&me, &batch).await })
    }

    fn quarantine(&self, key: String) -> LocalFuture<()> {
        let me = self.clone();
        Box::pin(async move {
            let _ = IdbStore::quarantine(&me, &key).await;
        })
    }
}
