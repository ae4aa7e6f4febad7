//! The leader of Outbox: the worker that holds the Web Lock, owns the IndexedDB outbox and runs
//! the executor (see DESIGN.md).
//!
//! What is here so far is the browser glue the leader stands on, each piece tested in a dedicated
//! and in a shared worker of headless Chromium (`tests/dedicated.rs`, `tests/shared.rs`):
//!
//! - [`lock`]: `navigator.locks` as a future that resolves when an exclusive lock is held, and a
//!   guard that releases it.
//!
//! The same tests show that BroadcastChannel and IndexedDB work in both worker kinds.
//!
//! [`lock`] needs `--cfg=web_sys_unstable_apis` (LockManager is an unstable web-sys API). The
//! workspace's `.cargo/config.toml` sets it for wasm32; a `RUSTFLAGS` variable in the environment
//! replaces that setting, which is why a wasm32 build without it stops here with an error. Host
//! builds (`cargo clippy`, `cargo test`) have no browser and leave the module out.
#![deny(missing_docs)]

#[cfg(all(target_arch = "wasm32", not(web_sys_unstable_apis)))]
compile_error!(
    "outbox-worker needs `--cfg=web_sys_unstable_apis` for navigator.locks. .cargo/config.toml \
     sets it for wasm32-unknown-unknown; a RUSTFLAGS variable in the environment overrides that \
     (unset it, or add the flag to it)."
);

#[cfg(web_sys_unstable_apis)]
pub mod lock;

#[cfg(web_sys_unstable_apis)]
pub use lock::{request_lock, LockError, LockGuard, LockRequest};
