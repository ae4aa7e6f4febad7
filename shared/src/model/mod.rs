//! The data model: what a transaction is, what it changes, and how it moves through its life.

mod attempt;
mod error;
mod ids;
mod mutation;
mod state;
mod transaction;

pub use attempt::{Attempt, AttemptId};
pub use error::{ErrorCode, TxError};
pub use ids::{ClientId, Epoch, Key, Millis, TransactionId};
pub use mutation::{nested_within, MutationKind, PendingMutation, Row, MAX_ROW_DEPTH};
pub use state::{TransactionState, TransitionError};
pub use transaction::{
    EarlierAttempts, RecordError, Strategy, Transaction, ATTEMPTS_KEPT, RECORD_VERSION,
};
