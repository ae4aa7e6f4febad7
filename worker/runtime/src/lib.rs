//! Outbox's browser runtime: the pieces both the leader worker and a tab stand on.
//!
//! - [`channel`]: the protocol's BroadcastChannel (`outbox:<scope>`), posting
//!   [`Envelope`](outbox_shared::protocol::Envelope)s and delivering the ones meant for this
//!   context, counting and dropping everything malformed instead of throwing it into the app.
//! - [`convert`]: the one place where Rust data becomes JS values and back, and where errors
//!   become real JS `Error` objects with a stable `code`.
//! - [`driver`]: runs the shared executor with real storage, timers, `fetch` and JS mutation
//!   functions ([`calls`]) — in the leader, and in a tab that has to go online-only.
//! - [`lane`]: the direct line between a tab and its own worker, for the leader's traffic with
//!   that tab while the worker leads.
//! - [`local`]: the executor a tab runs itself when no leader can serve it (online-only mode).
//! - [`locks`]: which Web Locks are held (checking a leader's proof).
//! - [`store`]: the storage port as the driver needs it, and an in-memory store.
//! - [`sync`]: runs the shared leader sync (one change feed) with real requests and timers.
//! - [`stream`]: Server-Sent Events over `fetch`, and JSON GETs, for a change feed.
//! - [`clock`], [`timer`]: the browser's clock, randomness and timeouts, in one place each.
//!
//! Everything compiles for the host too (so `cargo clippy` and `cargo test` cover the pure parts)
//! but only does anything in a browser. Browser tests live in `tests/browser.rs`.
#![deny(missing_docs)]

pub mod calls;
pub mod channel;
pub mod clock;
pub mod convert;
pub mod driver;
pub mod lane;
pub mod local;
pub mod locks;
pub mod store;
pub mod stream;
pub mod sync;
pub mod timer;

pub use channel::{Channel, ChannelError, DropCounts, DropReason, Inbox, Incoming, MessageData};
pub use convert::{ConvertError, JsErrorInfo, ToJsError};
