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

#[cfg(web_sys_unstable_apis)]
pub mod idb;
#[cfg(web_sys_unstable_apis)]
pub mod leader;
#[cfg(web_sys_unstable_apis)]
pub mod online;
#[cfg(web_sys_unstable_apis)]
pub mod options;

#[cfg(web_sys_unstable_apis)]
mod exports {
    use crate::leader::{to_js_error, Leader};
    use outbox_shared::model::ErrorCode;
    use wasm_bindgen::prelude::*;

    /// A running Outbox worker (leading, or waiting to lead), as JS sees it.
    #[wasm_bindgen]
    #[derive(Debug)]
    pub struct LeaderHandle(Leader);

    #[wasm_bindgen]
    impl LeaderHandle {
        /// Stops leading and asks for nothing until `resume()` (the tab is being frozen or
        /// closed).
        pub fn resign(&self) {
            self.0.resign();
        }

        /// Waits for the lock again after `resign()`.
        pub fn resume(&self) {
            self.0.resume();
        }

        /// Takes leadership from a leader that no longer answers (Web Locks `steal`); its late
        /// writes are fenced out by the epoch.
        pub fn steal(&self) {
            self.0.steal();
        }

        /// Whether this worker leads now.
        #[wasm_bindgen(getter, js_name = isLeader)]
        pub fn is_leader(&self) -> bool {
            self.0.epoch().is_some()
        }

        /// The epoch while leading, else `undefined`.
        #[wasm_bindgen(getter)]
        pub fn epoch(&self) -> Option<f64> {
            self.0.epoch().map(|e| e.0 as f64)
        }

        /// The scope served.
        #[wasm_bindgen(getter)]
        pub fn scope(&self) -> String {
            self.0.scope().to_owned()
        }

        /// Its id on the channel: a tab whose own worker this is talks to it over the port while
        /// the leader has this id.
        #[wasm_bindgen(getter)]
        pub fn id(&self) -> String {
            self.0.id().0.clone()
        }

        /// A message a tab posted on `port` (the worker's port to that tab, or the dedicated
        /// worker's global scope): taken like one from the channel.
        #[wasm_bindgen(js_name = fromTab)]
        pub fn from_tab(&self, data: JsValue, port: JsValue) {
            self.0.from_tab(&data, port);
        }

        /// Queue statistics while leading (`{size, bytes, inFlight, deadLetters}`), else `null`
        /// (also from inside `beforeRetry`).
        pub fn stats(&self) -> JsValue {
            self.0
                .stats()
                .and_then(|s| outbox_runtime::convert::to_js(&s).ok())
                .unwrap_or(JsValue::NULL)
        }
    }

    /// Starts the worker for `scope` with the app's options (called by the JS bootstrap,
    /// `startOutboxWorker`). Rejects with an `OutboxError` whose `code` says why: bad options
    /// (`OUTBOX_INVALID`) or no IndexedDB (`OUTBOX_STORAGE`).
    ///
    /// `on_role`, when given, is called with the epoch (a number) whenever this worker starts
    /// leading, and with `null` when it stops.
    #[wasm_bindgen(js_name = startLeader)]
    pub async fn start_leader(
        options: JsValue,
        scope: Option<String>,
        on_role: Option<js_sys::Function>,
    ) -> Result<LeaderHandle, JsValue> {
        let parsed =
            crate::options::parse(&options).map_err(|m| to_js_error(ErrorCode::Invalid, &m))?;
        let scope = scope.unwrap_or_else(|| parsed.options.app.clone());
        let leader = Leader::start(scope, parsed)
            .await
            .map_err(|(code, message)| to_js_error(code, &message))?;
        if let Some(f) = on_role {
            let report = move |epoch: Option<outbox_shared::model::Epoch>| {
                let arg = epoch.map_or(JsValue::NULL, |e| JsValue::from(e.0 as f64));
                // The bootstrap's hook only posts a message; an exception there is not ours.
                let _ = f.call1(&JsValue::NULL, &arg);
            };
            if let Some(epoch) = leader.epoch() {
                report(Some(epoch));
            }
            leader.on_role_change(report);
        }
        Ok(LeaderHandle(leader))
    }
}

#[cfg(web_sys_unstable_apis)]
pub use exports::{start_leader, LeaderHandle};
#[cfg(web_sys_unstable_apis)]
pub use online::{start_online_executor, OnlineExecutor};
