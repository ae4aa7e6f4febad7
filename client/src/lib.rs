//! The per-tab module of Outbox: optimistic collections, durable submits through the leader,
//! and an online-only fallback.
//!
//! ```js
//! const client = await OutboxClient.connect({ app: 'todos', workerUrl: '/outbox-worker.js' });
//! const todos = client.collection('todos', { key: 'id' });
//! const tx = todos.insert({ id: '1', title: 'milk' });   // shows in todos.rows() at once
//! await tx.durable;                                      // in the leader's IndexedDB outbox
//! await tx.completed;                                    // the mutation function succeeded
//! ```
//!
//! The protocol and the optimistic view are [`outbox_shared::tab::TabCore`]; this crate is the
//! glue around it (`inner.rs` is its pump). The rest, one concept per file:
//! [`connect`](mod@connect) and [`mode`] (finding the leader, offline-enabled vs online-only),
//! [`worker`] (starting the tab's worker), [`online_only`] (the tab's own executor),
//! [`collection`], [`building`] (multi-change transactions and actions), [`handle`]
//! (transaction handles), [`requests`] (peek, remove, retry, stats), [`sync`] (sync sources),
//! [`notify`] and [`events`] (listeners), [`testkit`] (for the app's own tests), [`rowdata`] (checking the app's values), [`page`]
//! (page events), [`errors`], [`options`], and [`ts`] (TypeScript declarations).
//!
//! Every type is usable from Rust too (a Leptos, Yew or Dioxus app calls the same methods).
#![deny(missing_docs)]

pub mod building;
pub mod client;
pub mod collection;
pub mod connect;
pub mod errors;
pub mod events;
pub mod handle;
mod inner;
mod listen;
pub mod mode;
pub mod notify;
pub mod online_only;
pub mod options;
pub mod page;
pub mod requests;
mod rowcache;
pub mod rowdata;
pub mod sync;
pub mod testkit;
pub mod ts;
pub mod typed;
pub mod worker;

pub use building::OutboxTransaction;
pub use client::OutboxClient;
pub use collection::Collection;
pub use errors::{Diagnostic, DiagnosticCode, Mode};
pub use events::ClientEvent;
pub use handle::TransactionHandle;
pub use options::ConnectOptions;
pub use outbox_runtime::{channel, convert};
pub use testkit::OutboxTestKit;
