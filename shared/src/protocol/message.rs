//! The messages themselves.

use crate::model::{ClientId, Epoch, ErrorCode, Transaction, TransactionId, TxError};
use crate::sync::FeedEntry;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message on the channel, with its routing header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The protocol version ([`super::PROTOCOL_VERSION`]).
    pub v: u32,
    /// The channel's scope (the app, and the user scope when there is one). Messages for
    /// another scope are foreign and dropped.
    pub app: String,
    /// The sender's context id.
    pub from: ClientId,
    /// The addressee, for replies; `None` for broadcasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<ClientId>,
    /// What it says: `{"<kind>": {…fields}}`, or `"<kind>"` for kinds without fields.
    pub body: Message,
}

impl Envelope {
    /// A broadcast from `from` on scope `app`.
    pub fn broadcast(app: &str, from: &ClientId, body: Message) -> Self {
        Self {
            v: super::PROTOCOL_VERSION,
            app: app.to_owned(),
            from: from.clone(),
            to: None,
            body,
        }
    }

    /// A reply addressed to `to`.
    pub fn reply(app: &str, from: &ClientId, to: &ClientId, body: Message) -> Self {
        Self::new(app, from, Some(to), body)
    }

    /// A reply to `to`, or a broadcast when there is no `to`.
    pub fn new(app: &str, from: &ClientId, to: Option<&ClientId>, body: Message) -> Self {
        Self {
            to: to.cloned(),
            ..Self::broadcast(app, from, body)
        }
    }

    /// Whether `me` should read it: broadcasts, and replies addressed to `me`.
    pub fn is_for(&self, me: &ClientId) -> bool {
        self.to.as_ref().is_none_or(|to| to == me)
    }
}

/// The message kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// A tab joined and asks who leads. The leader answers with [`Message::Leader`].
    Hello,
    /// The leader announces itself (on taking the lock, and in answer to `hello`).
    Leader {
        /// Its epoch.
        epoch: Epoch,
    },
    /// The leader is alive.
    Heartbeat {
        /// Its epoch.
        epoch: Epoch,
        /// Transactions not yet settled in the outbox.
        pending: u32,
    },
    /// The leader is stepping down (its tab is being frozen or closed).
    Resign {
        /// Its epoch.
        epoch: Epoch,
    },
    /// A tab submits a transaction. Idempotent by the transaction's id: tabs resend until a
    /// leader answers `durable`.
    ///
    /// A submit is addressed to the leader of one epoch; any other leader ignores it (and tells
    /// the tab who leads). A tab resends everything unsettled, in order, when it learns of a
    /// new leader, so a new leader sees each tab's transactions in the order they were made.
    Submit {
        /// The epoch of the leader the tab addresses.
        epoch: Epoch,
        /// The transactions, as the tab created them: one, or the tab's burst of submits in
        /// one message (each is accepted on its own, in order).
        txs: Vec<Transaction>,
    },
    /// The leader committed these transactions to the outbox.
    Durable {
        /// The transactions.
        ids: Vec<TransactionId>,
        /// The epoch of the leader that committed it.
        epoch: Epoch,
    },
    /// The leader could not accept the transaction (quota, invalid).
    Rejected {
        /// The transaction.
        id: TransactionId,
        /// Why.
        error: TxError,
    },
    /// Transactions changed state (with their attempts and errors), as committed to the
    /// outbox. Broadcast to every tab.
    State {
        /// The epoch of the leader saying so. Tabs ignore states from a leader older than the
        /// one they know: it was deposed and speaks of the past.
        epoch: Epoch,
        /// The transactions as the leader now has them.
        txs: Vec<Transaction>,
    },
    /// A tab asks for every unsettled transaction and dead letter (on joining).
    SnapshotRequest,
    /// The answer to `snapshot_request`.
    Snapshot {
        /// The leader's epoch.
        epoch: Epoch,
        /// Unsettled transactions and dead letters, in acceptance order.
        transactions: Vec<Transaction>,
        /// More parts follow (a snapshot too large for one message is sent in parts, in
        /// order; the last has `more: false`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
        /// Transactions removed from the outbox lately (the most recent, in the last part
        /// only): a tab that knew one of them unsettled missed the removal (the leader that
        /// made it went before saying so). Builds before session 20 ignore it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removed: Vec<TransactionId>,
    },
    /// Liveness probe.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// Liveness answer.
    Pong {
        /// The probe's nonce.
        nonce: u64,
    },
    /// The app says the network is back: bring scheduled retries forward.
    NotifyOnline,
    /// A tab became visible: a retry trigger.
    Visible,
    /// A request to the leader that expects a [`Message::Response`].
    Request {
        /// Correlates the response.
        req: u64,
        /// What is asked.
        op: Request,
    },
    /// The answer to a [`Message::Request`].
    Response {
        /// The request's correlation number.
        req: u64,
        /// The result.
        result: Response,
    },
    /// The leader needs credentials for its calls (at the start of a term when it is set to
    /// use them, and after a 401): its outbox is paused until a tab of the scope sends them.
    CredentialsNeeded {
        /// The leader's epoch.
        epoch: Epoch,
    },
    /// A tab's credentials for the leader of this epoch: headers to add to every call. Kept in
    /// the leader's memory only, never stored.
    Credentials {
        /// The epoch of the leader they are for.
        epoch: Epoch,
        /// Header names and values (e.g. `authorization: Bearer …`).
        headers: std::collections::BTreeMap<String, String>,
    },
    /// The user signed out of this scope: tabs close their clients, workers stop leading.
    SignedOut {
        /// The leader's epoch.
        epoch: Epoch,
    },
    /// The leader's feed entries, persisted and in order: broadcast as the feed brings them,
    /// or addressed to one tab that asked with [`Message::SyncFrom`]. Leader-only.
    SyncEntries {
        /// The leader's epoch.
        epoch: Epoch,
        /// The entries, in order.
        entries: Vec<FeedEntry>,
    },
    /// A tab has applied the feed up to `applied` and misses what follows (it joined, or saw a
    /// gap in the leader's entries). The leader answers with entries or rows.
    SyncFrom {
        /// The last sequence number the tab applied.
        applied: u64,
    },
    /// The collections the leader's change feed follows (none: it has no feed), to a tab that
    /// asked for the feed ([`Message::SyncFrom`]), before the entries or rows. A tab following
    /// a collection with `sync: 'leader'` that is not among them learns that no feed will
    /// bring it, rather than waiting for one for good. Leader-only. Builds before session 24
    /// neither send nor read it (they count it as a kind they do not know, and drop it).
    FeedCollections {
        /// The leader's epoch.
        epoch: Epoch,
        /// The collections, as the leader's `sync` option names them.
        collections: Vec<String>,
    },
    /// Some of a collection's synced rows, from the leader: to one tab that asked, or to every
    /// tab after the leader reloaded the collection. A collection too large for one message
    /// comes in parts, in order; the last says `more: false`. Leader-only.
    SyncRows {
        /// The leader's epoch.
        epoch: Epoch,
        /// The collection.
        collection: String,
        /// The sequence number the collection's rows are current at.
        seq: u64,
        /// Rows, as `[key, row]` pairs.
        rows: Vec<(String, Value)>,
        /// More parts of this collection follow.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
        /// The server's numbering restarted: the rows replace the tab's even if its sequence
        /// number is higher (see [`crate::sync::RowsPart::restart`]). Builds before session 20
        /// ignore it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        restart: bool,
    },
    /// Something the app should know (a quarantined record, an unknown mutation function).
    Diagnostic {
        /// Stable code.
        code: ErrorCode,
        /// Plain words.
        message: String,
    },
}

impl Message {
    /// The `kind` tag of this message on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Leader { .. } => "leader",
            Self::Heartbeat { .. } => "heartbeat",
            Self::Resign { .. } => "resign",
            Self::Submit { .. } => "submit",
            Self::Durable { .. } => "durable",
            Self::Rejected { .. } => "rejected",
            Self::State { .. } => "state",
            Self::SnapshotRequest => "snapshot_request",
            Self::Snapshot { .. } => "snapshot",
            Self::Ping { .. } => "ping",
            Self::Pong { .. } => "pong",
            Self::NotifyOnline => "notify_online",
            Self::Visible => "visible",
            Self::Request { .. } => "request",
            Self::Response { .. } => "response",
            Self::CredentialsNeeded { .. } => "credentials_needed",
            Self::Credentials { .. } => "credentials",
            Self::SignedOut { .. } => "signed_out",
            Self::Diagnostic { .. } => "diagnostic",
            Self::SyncEntries { .. } => "sync_entries",
            Self::SyncFrom { .. } => "sync_from",
            Self::FeedCollections { .. } => "feed_collections",
            Self::SyncRows { .. } => "sync_rows",
        }
    }

    /// Every kind this version knows.
    pub const KINDS: [&'static str; 24] = [
        "hello",
        "leader",
        "heartbeat",
        "resign",
        "submit",
        "durable",
        "rejected",
        "state",
        "snapshot_request",
        "snapshot",
        "ping",
        "pong",
        "notify_online",
        "visible",
        "request",
        "response",
        "credentials_needed",
        "credentials",
        "signed_out",
        "diagnostic",
        "sync_entries",
        "sync_from",
        "feed_collections",
        "sync_rows",
    ];
}

/// Requests a tab can make of the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Every transaction in the outbox, dead letters included.
    Peek,
    /// Remove a transaction (one not running) from the outbox, dead letter or not.
    Remove {
        /// Which.
        id: TransactionId,
    },
    /// Put a dead letter back in line with a fresh retry budget.
    RetryDeadLetter {
        /// Which.
        id: TransactionId,
    },
    /// Queue statistics.
    Stats,
    /// The user signs out: keep the outbox for their next sign-in, or discard it (dead letters
    /// included). Either way this leader stops calling, forgets its credentials, tells every
    /// tab of the scope ([`Message::SignedOut`]) and stops leading.
    SignOut {
        /// Delete every transaction of the scope.
        discard: bool,
    },
}

/// The leader's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The outbox's transactions.
    Outbox {
        /// In acceptance order.
        transactions: Vec<Transaction>,
    },
    /// Done.
    Done,
    /// Queue statistics.
    Stats {
        /// The figures.
        stats: QueueStats,
    },
    /// Signed out: what the outbox held when it happened.
    SignedOut {
        /// Unsettled transactions.
        pending: u32,
        /// Dead letters.
        dead_letters: u32,
        /// How many were deleted (0 when kept).
        discarded: u32,
    },
    /// It could not be done.
    Error {
        /// Why.
        error: TxError,
    },
}

/// How full the outbox is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    /// Unsettled transactions.
    pub size: u32,
    /// Their approximate stored size in bytes.
    pub bytes: u64,
    /// Transactions whose mutation function is running.
    pub in_flight: u32,
    /// Dead letters.
    pub dead_letters: u32,
}
