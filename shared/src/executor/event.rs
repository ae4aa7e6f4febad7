//! What goes into the executor and what comes out.

use crate::model::{ClientId, Epoch, Millis, Transaction, TransactionId, TxError};
use crate::protocol::{Message, Request};
use crate::retry::AttemptError;
use crate::store::{Loaded, StoreError, WriteBatch, WriteId};

/// Something that happened.
#[derive(Debug)]
pub enum Event {
    /// This worker took the leader lock; storage bumped the epoch and loaded the outbox.
    BecameLeader(Loaded),
    /// A tab submitted a transaction.
    Submitted {
        /// The submitting context.
        from: ClientId,
        /// The epoch of the leader the tab addressed.
        to: Epoch,
        /// The transaction.
        tx: Box<Transaction>,
    },
    /// A write batch committed.
    Written {
        /// Which.
        write: WriteId,
    },
    /// A write batch failed; nothing in it was stored.
    WriteFailed {
        /// Which.
        write: WriteId,
        /// Why.
        error: StoreError,
    },
    /// A mutation function call finished.
    AttemptFinished {
        /// The transaction.
        id: TransactionId,
        /// The attempt's number.
        attempt: u32,
        /// How it went.
        outcome: AttemptOutcome,
    },
    /// Calls answered together (one batch request's answer): handled as one event, so that
    /// what they change is stored in one write and broadcast in one message.
    AttemptsFinished {
        /// Each call, in the request's order.
        finished: Vec<FinishedAttempt>,
    },
    /// The timer set by [`Command::SetTimer`] fired.
    TimerFired,
    /// The `online` event.
    Online,
    /// A tab became visible.
    TabVisible,
    /// The app called `notifyOnline()`.
    NotifyOnline,
    /// The sync has applied server changes up to this sequence number.
    SyncedTo {
        /// The highest applied server sequence number.
        server_seq: u64,
    },
    /// The app's `awaitSync` for this transaction resolved: its change is in the app's sync.
    Synced {
        /// The transaction.
        id: TransactionId,
    },
    /// A tab asked for the snapshot of unsettled transactions.
    SnapshotRequested {
        /// Who asked.
        from: ClientId,
    },
    /// A tab's request (peek, remove, retry a dead letter, stats).
    Request {
        /// Who asked.
        from: ClientId,
        /// Correlation number.
        req: u64,
        /// What.
        op: Request,
    },
    /// A tab sent credentials (the glue keeps them; the executor only resumes).
    Credentials,
    /// Stop leading (the tab is being frozen or closed, or the lock was lost).
    Stop,
}

impl Event {
    /// A tab's submit message: one [`Event::Submitted`] per transaction, in order, for
    /// [`super::Executor::handle_all`] (so that all of them go into one write).
    pub fn submitted(from: &ClientId, to: Epoch, txs: Vec<Transaction>) -> Vec<Event> {
        txs.into_iter()
            .map(|tx| Event::Submitted {
                from: from.clone(),
                to,
                tx: Box::new(tx),
            })
            .collect()
    }
}

/// How one call of a mutation function went.
pub type AttemptOutcome = Result<AttemptSuccess, AttemptError>;

/// One finished call, in [`Event::AttemptsFinished`].
#[derive(Debug)]
pub struct FinishedAttempt {
    /// The transaction.
    pub id: TransactionId,
    /// The attempt's number.
    pub attempt: u32,
    /// How it went.
    pub outcome: AttemptOutcome,
}

/// A successful call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptSuccess {
    /// The server's sequence number for the applied change, if the reply named one.
    pub server_seq: Option<u64>,
}

/// Something to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Write this batch to the outbox atomically; answer with `Written` or `WriteFailed`.
    Write(WriteBatch),
    /// Call the transaction's mutation function (its record, with this attempt, is committed);
    /// answer with `AttemptFinished`.
    Call {
        /// The transaction, as committed.
        tx: Box<Transaction>,
        /// The attempt's number.
        attempt: u32,
    },
    /// Call a function that batches once for these transactions, in one request (their
    /// records, with these attempts, are committed); answer with one `AttemptsFinished` (or an
    /// `AttemptFinished` for each).
    CallBatch {
        /// The function (every transaction's `mutation_fn`).
        mutation_fn: String,
        /// The transactions, as committed, with their attempts' numbers, in the order the
        /// attempts started; at most `max_batch` of them.
        calls: Vec<(Transaction, u32)>,
    },
    /// (Re)arm the one timer to fire at `at`; answer with `TimerFired`.
    SetTimer {
        /// When.
        at: Millis,
    },
    /// Send a message on the channel: to one context, or to all when `to` is `None`.
    Send {
        /// Addressee.
        to: Option<ClientId>,
        /// The message.
        msg: Message,
    },
    /// Move a stored record that cannot be read out of the outbox, into quarantine.
    Quarantine {
        /// Its storage key.
        key: String,
        /// Why it was unreadable.
        reason: String,
    },
    /// Ask the app's `awaitSync` about this succeeded transaction (its success is committed);
    /// answer with [`Event::Synced`] when it resolves.
    AwaitSync {
        /// The transaction, as committed (`server_seq` set if the reply named one).
        tx: Box<Transaction>,
    },
    /// The user signed out (the answer and the broadcast are sent): forget the credentials and
    /// stop leading; do not wait for the lock again.
    SignedOut,
    /// Another leader has taken over (a write was fenced out): stop serving, release nothing
    /// (the lock is already someone else's), and let the worker wait for the lock again.
    StepDown {
        /// Why.
        error: TxError,
    },
}
