//! Sync with the server's change feed, without the I/O.
//!
//! One feed per origin: the leader worker holds it ([`LeaderSync`]), persists what it applies,
//! then fans the entries out to every tab over the channel; each tab takes them in through its
//! own [`FeedCursor`] (see [`crate::tab::TabCore::sync_entries`]).
//!
//! - [`entry`](FeedEntry): the server's wire types and their defensive parsing;
//! - [`FeedCursor`]: ordered intake with duplicate and gap detection;
//! - [`SyncedRows`]: the server's rows, by collection and key, with a sequence number each;
//! - [`LeaderSync`]: the leader's state machine (snapshots, feed, refetch, persist, fan-out).

#[cfg(test)]
mod crossing_tests;
mod cursor;
mod entry;
mod leader;
mod rows;
#[cfg(test)]
mod tests;

pub use cursor::{FeedCursor, Gap, Intake, DEFAULT_MAX_BUFFERED};
pub use entry::{
    parse_entry, parse_range, ChangeOp, ChangeRange, CollectionSnapshot, FeedEntry, FeedError,
    RowChange,
};
pub use leader::{LeaderSync, LeaderSyncConfig, LeaderSyncOutput, PersistBatch, RowWrite};
pub use rows::{split_snapshot, ChangedRow, RowsPart, SyncedRows};
