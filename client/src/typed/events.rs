//! Typed events: [`OutboxEvent`] (from `on_event`) and [`Leadership`].

use super::parse_mode;
use crate::errors::Mode;
use outbox_shared::model::TransactionState;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A new leader serves the tab, or this tab's worker started or stopped leading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Leadership {
    /// The leader's epoch.
    pub epoch: u64,
    /// Whether this tab's own worker leads.
    pub is_leader_tab: bool,
}

/// Something that happened, for logging and metrics
/// ([`Outbox::on_event`](super::Outbox::on_event)).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// When, in ms since the Unix epoch.
    pub at: u64,
    /// What.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum EventKind {
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
        state: TransactionState,
        /// Attempts so far.
        attempts: usize,
        /// The error code, when it failed or its last attempt did.
        #[serde(default)]
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
        /// The new mode.
        #[serde(deserialize_with = "mode_named")]
        mode: Mode,
        /// Why, for online-only: a diagnostic code such as `OUTBOX_NO_LEADER`.
        #[serde(default)]
        reason: Option<String>,
    },
    /// The leader or the tab's worker reported something.
    Diagnostic {
        /// Stable code.
        code: String,
        /// Plain words.
        message: String,
    },
    /// The leader needs credentials; its outbox waits for them.
    CredentialsNeeded {
        /// The leader's epoch.
        epoch: u64,
    },
    /// The user signed out of this scope; the client is closed.
    SignedOut {
        /// The leader's epoch.
        epoch: u64,
    },
    /// The tab's worker started.
    WorkerReady,
    /// An event this version does not know, as the client sent it.
    #[serde(skip)]
    Other(Value),
}

fn mode_named<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
    String::deserialize(d).map(|name| parse_mode(&name))
}

impl OutboxEvent {
    /// Reads the JS event object `{type, at, …}`; an unknown shape becomes
    /// [`EventKind::Other`].
    pub(crate) fn from_value(value: Value) -> Self {
        let at = value.get("at").and_then(Value::as_u64).unwrap_or(0);
        let kind = serde_json::from_value(value.clone()).unwrap_or(EventKind::Other(value));
        Self { at, kind }
    }
}
