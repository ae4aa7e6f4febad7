//! The simulated world: tabs, leaders, storage, a channel and a server, on a virtual clock.

mod check;
mod server;
mod tab;
mod world;

pub use world::run;

use std::fmt;

/// Switches for the simulation.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// Turn the storage's epoch fence off (to prove the simulation catches it).
    pub unfenced: bool,
}

/// What one run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub transactions: u64,
    pub completed: u64,
    pub failed: u64,
    pub rejected: u64,
    pub crashes: u64,
    pub freezes: u64,
    pub fenced_writes: u64,
    pub dropped_replies: u64,
    pub resumed_attempts: u64,
    /// Log entries new leaders found in storage (see `outbox_shared::store::layout`).
    pub entries_loaded: u64,
    pub server_requests: u64,
    pub virtual_ms: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} transactions ({} completed, {} failed, {} rejected), {} crashes ({} freezes), \
             {} fenced writes, {} dropped replies, {} resumed attempts, {} log entries loaded, {} server requests, {} virtual ms",
            self.transactions,
            self.completed,
            self.failed,
            self.rejected,
            self.crashes,
            self.freezes,
            self.fenced_writes,
            self.dropped_replies,
            self.resumed_attempts,
            self.entries_loaded,
            self.server_requests,
            self.virtual_ms
        )
    }
}

/// Sums over many runs.
pub type Totals = Report;

impl Report {
    pub fn add(&mut self, r: &Report) {
        self.transactions += r.transactions;
        self.completed += r.completed;
        self.failed += r.failed;
        self.rejected += r.rejected;
        self.crashes += r.crashes;
        self.freezes += r.freezes;
        self.fenced_writes += r.fenced_writes;
        self.dropped_replies += r.dropped_replies;
        self.resumed_attempts += r.resumed_attempts;
        self.entries_loaded += r.entries_loaded;
        self.server_requests += r.server_requests;
        self.virtual_ms += r.virtual_ms;
    }
}
