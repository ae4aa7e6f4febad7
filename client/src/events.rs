//! The events hook (`client.onEvent(cb)`): one plain object per thing that happened, for
//! logging and metrics. Events are only built when someone listens.

use serde::Serialize;

/// Something that happened, as `{type, at, …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ClientEvent {
    /// This tab made a transaction.
    Submitted {
        /// The transaction.
        id: String,
        /// Its mutation function.
        mutation_fn: String,
        /// How many mutations it holds.
        mutations: usize,
    },
    /// The leader has committed a transaction of this tab.
    Durable {
        /// The transaction.
        id: String,
    },
    /// A transaction (this tab's or another's) changed state.
    State {
        /// The transaction.
        id: String,
        /// Its state.
        state: String,
        /// Attempts so far (listed or not).
        attempts: usize,
        /// The error code, when it failed or its last attempt did.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
    /// A new leader serves this tab.
    Leader {
        /// Its epoch.
        epoch: u64,
        /// Whether this tab's own worker leads.
        is_leader_tab: bool,
    },
    /// The leader said it is stepping down.
    LeaderResigned {
        /// Its epoch.
        epoch: u64,
    },
    /// The mode changed.
    Mode {
        /// `offline-enabled` or `online-only`.
        mode: String,
        /// Why, for online-only.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The leader or the tab's worker reported something.
    Diagnostic {
        /// Stable code.
        code: String,
        /// Plain words.
        message: String,
    },
    /// The leader needs credentials for its calls; its outbox waits for them (the app's
    /// `getCredentials()` is asked, or the app calls `provideCredentials`).
    CredentialsNeeded {
        /// The leader's epoch.
        epoch: u64,
    },
    /// The user signed out of this scope; this client is closed.
    SignedOut {
        /// The leader's epoch.
        epoch: u64,
    },
    /// The change feed reached this server sequence number in this tab (collections with
    /// `sync: 'leader'`): its entries are in the rows.
    Synced {
        /// The feed position.
        seq: u64,
    },
    /// The tab's worker started.
    WorkerReady,
}

/// An event with the time it happened.
#[derive(Debug, Serialize)]
pub(crate) struct Stamped<'a> {
    #[serde(flatten)]
    pub event: &'a ClientEvent,
    /// ms since the Unix epoch.
    pub at: u64,
}
