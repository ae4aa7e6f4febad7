//! What the client throws, and why a tab runs online-only.
//!
//! Everything thrown or rejected is a real JS `Error` with a stable `code` (made by
//! [`outbox_runtime::convert`]). Bad arguments are `OUTBOX_INVALID`, thrown at the call.

use outbox_runtime::convert::{js_error, to_js};
use outbox_shared::ErrorCode;
use serde::Serialize;
use wasm_bindgen::JsValue;

/// An `OUTBOX_INVALID` error with this message, as a JS value to throw.
pub(crate) fn invalid(message: impl AsRef<str>) -> JsValue {
    js_error(ErrorCode::Invalid, message.as_ref()).into()
}

/// Why no leader serves this tab. The string forms are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DiagnosticCode {
    /// The browser has no `navigator.locks`, so no worker can hold the leader lock.
    #[serde(rename = "OUTBOX_NO_WEB_LOCKS")]
    NoWebLocks,
    /// The browser has no `indexedDB` (or it is disabled), so there can be no outbox.
    #[serde(rename = "OUTBOX_NO_INDEXEDDB")]
    NoIndexedDb,
    /// No `BroadcastChannel`: the tab cannot talk to a leader.
    #[serde(rename = "OUTBOX_NO_BROADCAST_CHANNEL")]
    NoBroadcastChannel,
    /// The tab's worker failed to start or reported an error.
    #[serde(rename = "OUTBOX_WORKER_FAILED")]
    WorkerFailed,
    /// No leader answered within `leaderTimeoutMs`.
    #[serde(rename = "OUTBOX_NO_LEADER")]
    NoLeader,
    /// Online-only, the tab's executor (the worker's wasm, loaded into the page) did not load;
    /// what the tab sends waits, and it tries again after 1, 2, 4 … s (at most 30 s apart) and
    /// at once with its next change.
    #[serde(rename = "OUTBOX_ONLINE_EXECUTOR_FAILED")]
    OnlineExecutorFailed,
}

impl DiagnosticCode {
    /// The stable string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoWebLocks => "OUTBOX_NO_WEB_LOCKS",
            Self::NoIndexedDb => "OUTBOX_NO_INDEXEDDB",
            Self::NoBroadcastChannel => "OUTBOX_NO_BROADCAST_CHANNEL",
            Self::WorkerFailed => "OUTBOX_WORKER_FAILED",
            Self::NoLeader => "OUTBOX_NO_LEADER",
            Self::OnlineExecutorFailed => "OUTBOX_ONLINE_EXECUTOR_FAILED",
        }
    }
}

/// Why the tab runs online-only: a stable code and plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The stable code.
    pub code: DiagnosticCode,
    /// Plain words for a log or a support page.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic.
    pub fn new(code: DiagnosticCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// As a plain JS object `{code, message}`.
    pub fn to_js(&self) -> JsValue {
        to_js(self).unwrap_or(JsValue::NULL)
    }
}

/// Whether the tab is served by a leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mode {
    /// Still looking for a leader (only before `connect` resolves).
    #[serde(rename = "connecting")]
    Connecting,
    /// A leader serves this tab: transactions are durable in IndexedDB.
    #[serde(rename = "offline-enabled")]
    OfflineEnabled,
    /// No leader can serve this tab: its own executor runs the mutation functions, in memory.
    #[serde(rename = "online-only")]
    OnlineOnly,
}

impl Mode {
    /// The string form JS sees.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::OfflineEnabled => "offline-enabled",
            Self::OnlineOnly => "online-only",
        }
    }
}
