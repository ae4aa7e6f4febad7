//! The per-tab module of Outbox: the glue between a tab and the leader.
//!
//! It stands on [`outbox_runtime`] (the channel, conversions and the executor driver) and on
//! the shared tab core ([`outbox_shared::tab`]).
#![deny(missing_docs)]

pub use outbox_runtime::{channel, convert};
