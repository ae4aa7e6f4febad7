//! Outbox's reference HTTP server.
//!
//! It applies transactions sent by Outbox's HTTP mutation function atomically and exactly once
//! (idempotent by `Idempotency-Key`, recorded in SQLite so it holds across restarts), serves
//! the rows and a resumable change feed, can inject faults for tests, and serves the demo.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /api/mutations` | one transaction → `{"seq","txId"}`; a replay gets the first answer and `Idempotent-Replayed: true` |
//! | `POST /api/mutations/batch` | `{"transactions":[…]}` → `{"results":[{"id","status","body"}…]}` |
//! | `GET /api/<collection>` | `{"seq","rows":[{"key","value","seq"}…]}` |
//! | `GET /api/changes?since=N&limit=M` | `{"seq","changes":[entry…]}` |
//! | `GET /api/feed?since=N` | Server-Sent Events `change`, `id:` = seq; resumes from `Last-Event-ID` |
//! | `POST /api/login` | `{"user","password"}` → `{"token","user"}` |
//! | `POST /api/logout` | revokes the request's bearer token → `204` |
//! | `GET /api/session` | `{"user","auth"}`: who the request acts as |
//! | `/_test/faults`, `/_test/reset`, `/_test/stats` | fault switches and counts (`--faults` only) |
//!
//! Requests may carry `Authorization: Bearer <token>`; with `--auth required` they must (see
//! [`auth`]). An idempotency key belongs to the user who first applied it: another user's
//! request with it is refused with `403 IDEMPOTENCY_KEY_OF_ANOTHER_USER`.
//!
//! A leader sends `Outbox-Epoch: <u64>` (and `Outbox-Scope`) with its mutations; a request whose
//! epoch is below the highest accepted for its user's scope is refused whole with
//! `409 STALE_EPOCH` and `Outbox-Fenced: true` (see [`fence`]).
//!
//! Errors are `{"error":{"code","message"}}` with the codes of [`ErrorCode`]. Start one in
//! process with [`start`]:
//!
//! ```no_run
//! # async fn run() -> Result<(), outbox_www::StartError> {
//! let server = outbox_www::start(outbox_www::Config { port: 0, ..Default::default() }).await?;
//! println!("listening on {}", server.url());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod apply;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod faults;
mod feed;
pub mod fence;
mod routes;
pub mod serve;
mod state;
pub mod wire;
mod writer;

pub use auth::AuthMode;
pub use config::{Config, ConfigError};
pub use error::{ApiError, ErrorCode};
pub use faults::{FaultSettings, Stats};
pub use feed::KEEP_ALIVE;
pub use fence::{EPOCH_HEADER, FENCED_HEADER, SCOPE_HEADER};
pub use routes::REPLAYED_HEADER;
pub use serve::{start, Server, StartError};
pub use wire::{Applied, ChangeEntry, RowChange};
