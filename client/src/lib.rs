//! The per-tab module of Outbox: the glue between a tab and the leader.
//!
//! For now it holds the two adapters every later piece of the client builds on:
//!
//! - [`channel`]: the protocol's BroadcastChannel (`outbox:<scope>`), which posts
//!   [`Envelope`](outbox_shared::protocol::Envelope)s and delivers the ones meant for this context,
//!   counting and dropping everything malformed instead of throwing it into the app.
//! - [`convert`]: the one place where Rust data becomes JS values and back, and where errors
//!   become real JS `Error` objects with a stable `code`.
//!
//! Both compile for the host too (so `cargo clippy` and `cargo test` cover their pure parts), but
//! only do anything in a browser. Their browser tests live in `tests/browser.rs`.
#![deny(missing_docs)]

pub mod channel;
pub mod convert;

pub use channel::{Channel, ChannelError, DropCounts, DropReason, Inbox, Incoming, MessageData};
pub use convert::{ConvertError, JsErrorInfo, ToJsError};
