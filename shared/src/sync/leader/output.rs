//! What the leader's sync is configured with, and what it asks the glue to do.

use crate::model::{ClientId, Epoch, Millis};
use crate::protocol::Message;
use crate::retry::RetryPolicy;
use crate::sync::{CollectionSnapshot, FeedEntry, RowsPart, DEFAULT_MAX_BUFFERED};
use serde_json::Value;
use std::collections::BTreeMap;

/// How the leader syncs.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderSyncConfig {
    /// The collections to sync (each loaded from `GET /api/<collection>`).
    pub collections: Vec<String>,
    /// Delays between reconnects and snapshot retries (`max_retries` is not used).
    pub backoff: RetryPolicy,
    /// Recent broadcast entries kept to answer tabs that are a little behind.
    pub log_entries: usize,
    /// Entries buffered behind a gap before giving up on it and reloading snapshots.
    pub max_buffered: usize,
    /// The most entries asked for in one [`LeaderSyncOutput::FetchRange`].
    pub range_limit: u32,
    /// Rows per [`RowsPart`] sent to tabs.
    pub rows_per_part: usize,
}

impl LeaderSyncConfig {
    /// Defaults for these collections: the default retry policy's delays (1 s doubling up to
    /// 60 s, 30 % jitter), a log of 1,000 entries, 10,000 buffered, ranges of 1,000, parts of
    /// 500 rows.
    pub fn new(collections: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            collections: collections.into_iter().map(Into::into).collect(),
            backoff: RetryPolicy::default(),
            log_entries: 1000,
            max_buffered: DEFAULT_MAX_BUFFERED,
            range_limit: 1000,
            rows_per_part: 500,
        }
    }
}

/// One write of a [`PersistBatch`], to apply in order.
#[derive(Debug, Clone, PartialEq)]
pub enum RowWrite {
    /// Replace every row of a collection.
    Replace(CollectionSnapshot),
    /// Write a row.
    Put {
        /// The collection.
        collection: String,
        /// The row key.
        key: String,
        /// The row.
        value: Value,
    },
    /// Delete a row.
    Delete {
        /// The collection.
        collection: String,
        /// The row key.
        key: String,
    },
}

/// What to write to storage in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistBatch {
    /// The batch's id: the feed position it brings storage to. Confirm with
    /// [`LeaderSync::persisted`](crate::sync::LeaderSync::persisted)`(seq)`.
    pub seq: u64,
    /// Every collection's sequence number after the batch (store them with the rows: they are
    /// what [`LeaderSync::start`](crate::sync::LeaderSync::start) is given by the next leader).
    pub seqs: BTreeMap<String, u64>,
    /// The writes, in order.
    pub writes: Vec<RowWrite>,
}

/// What the glue must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaderSyncOutput {
    /// Load `GET /api/<collection>`; answer with [`LeaderSync::snapshot_loaded`](crate::sync::LeaderSync::snapshot_loaded) or
    /// [`LeaderSync::snapshot_failed`](crate::sync::LeaderSync::snapshot_failed).
    LoadSnapshot {
        /// The collection.
        collection: String,
    },
    /// Open the feed, `GET /api/feed?since={since}`; answer with [`LeaderSync::feed_opened`](crate::sync::LeaderSync::feed_opened),
    /// then [`LeaderSync::feed_entry`](crate::sync::LeaderSync::feed_entry) per entry and [`LeaderSync::feed_error`](crate::sync::LeaderSync::feed_error) on error (do not
    /// let the browser reconnect by itself).
    OpenFeed {
        /// The last sequence number applied.
        since: u64,
    },
    /// Close the feed.
    CloseFeed,
    /// Load `GET /api/changes?since={since}&limit={limit}`; answer with
    /// [`LeaderSync::range_loaded`](crate::sync::LeaderSync::range_loaded) or [`LeaderSync::range_failed`](crate::sync::LeaderSync::range_failed).
    FetchRange {
        /// The last sequence number applied.
        since: u64,
        /// The most entries wanted.
        limit: u32,
    },
    /// Ask the server's head, its highest sequence number (`GET
    /// /api/changes?since={since}&limit=1`, or the source's `changes`); answer with
    /// [`LeaderSync::head_known`](crate::sync::LeaderSync::head_known), with this `since`.
    /// A failure needs no answer.
    CheckHead {
        /// The last sequence number applied.
        since: u64,
    },
    /// Write this batch in one storage transaction, then call [`LeaderSync::persisted`](crate::sync::LeaderSync::persisted).
    Persist(PersistBatch),
    /// Call [`LeaderSync::timer_fired`](crate::sync::LeaderSync::timer_fired) after this long (one timer: a new one replaces any
    /// other).
    SetTimer {
        /// The delay.
        after_ms: Millis,
    },
    /// Broadcast these entries to every tab ([`crate::protocol::Message::SyncEntries`]).
    Broadcast(Vec<FeedEntry>),
    /// Send these rows ([`crate::protocol::Message::SyncRows`], one per part, in order): to
    /// one tab, or to every tab (`None`: a collection was reloaded).
    SendRows {
        /// The tab; `None` for all.
        to: Option<ClientId>,
        /// The parts, in order.
        parts: Vec<RowsPart>,
    },
    /// The sync has reached `seq` in storage: feed the executor
    /// [`crate::executor::Event::SyncedTo`]` { server_seq: seq }`, so its
    /// `persisted_awaiting_sync` transactions complete.
    SyncedTo {
        /// The feed position every collection has reached, persisted.
        seq: u64,
    },
    /// Send these entries to one tab ([`crate::protocol::Message::SyncEntries`] addressed to
    /// it).
    SendEntries {
        /// The tab.
        to: ClientId,
        /// The entries it misses, in order.
        entries: Vec<FeedEntry>,
    },
}

impl LeaderSyncOutput {
    /// A fan-out output ([`LeaderSyncOutput::Broadcast`], `SendEntries`, `SendRows`) as the
    /// channel messages of the leader of `epoch`, each with its addressee (`None`: every tab),
    /// in order; any other output back as it was.
    pub fn into_messages(self, epoch: Epoch) -> Result<Vec<(Option<ClientId>, Message)>, Self> {
        match self {
            Self::Broadcast(entries) => Ok(vec![(None, Message::SyncEntries { epoch, entries })]),
            Self::SendEntries { to, entries } => {
                Ok(vec![(Some(to), Message::SyncEntries { epoch, entries })])
            }
            Self::SendRows { to, parts } => Ok(parts
                .into_iter()
                .map(|p| {
                    let msg = Message::SyncRows {
                        epoch,
                        collection: p.collection,
                        seq: p.seq,
                        rows: p.rows,
                        more: p.more,
                        restart: p.restart,
                    };
                    (to.clone(), msg)
                })
                .collect()),
            other => Err(other),
        }
    }
}
