//! The pure core of Outbox, an offline-first mutation outbox for web apps.
//!
//! Nothing here touches a browser API: time, randomness and incoming bytes are inputs, and the
//! commands to run and messages to send are outputs. The leader (`outbox-worker`) and the tab
//! client (`outbox-client`) are thin adapters that feed browser events into these types and
//! carry out what they return.
//!
//! - [`model`]: transactions, mutations, attempts, the lifecycle and its legal transitions.
//! - [`retry`]: the retry policy, backoff with injected randomness, error classification.
//! - [`scheduler`]: the key scheduler (per-key FIFO for ordered transactions).
//! - [`executor`]: the leader's executor as a sans-IO state machine.
//! - [`store`]: the outbox storage port, epoch fencing, and an in-memory store.
//! - [`protocol`]: the versioned BroadcastChannel wire protocol.
//! - [`patch`]: JSON Patch (RFC 6902) application and inverse patches.
//! - [`view`]: the optimistic view (synced rows plus the overlay of pending transactions).
//! - [`leadership`]: how a leader proves its claim, and how a silent one is noticed.
#![deny(missing_docs)]

pub mod executor;
pub mod http;
pub mod leadership;
pub mod model;
pub mod patch;
pub mod protocol;
pub mod retry;
pub mod scheduler;
pub mod sse;
pub mod store;
pub mod tab;
pub mod view;

pub use model::{
    Attempt, Epoch, ErrorCode, Key, Millis, MutationKind, PendingMutation, Strategy, Transaction,
    TransactionId, TransactionState, TxError,
};
