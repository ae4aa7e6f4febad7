//! Executor configuration.

use crate::model::{Millis, Transaction};
use crate::retry::RetryPolicy;
use std::collections::BTreeSet;

/// How long a completion's tombstone may wait for a write ([`ExecutorConfig::settle_linger_ms`]).
/// Measured: with every completion written at once, a submit arriving while a completion-only
/// write ran waited for it, and submit → durable took 3 ms instead of 1.3 ms.
pub const DEFAULT_SETTLE_LINGER_MS: Millis = 5;

/// What a `before_retry` filter decides for one transaction about to be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry it.
    Proceed,
    /// Take it out of the outbox instead (it fails with `OUTBOX_REMOVED`, rolled back in
    /// every tab).
    Discard,
}

/// The app's filter, asked before each retry (not before first attempts).
pub type BeforeRetry = Box<dyn FnMut(&Transaction) -> RetryDecision>;

/// How the executor behaves.
pub struct ExecutorConfig {
    /// Calls running at once, at most: calls of functions that do not batch, and requests of
    /// those that do (a request counts once, whatever it carries).
    pub max_concurrency: usize,
    /// After an attempt got no answer at all (offline), attempts start one at a time, at most
    /// once per this long, until one is answered or `online` / `notifyOnline()` / a visible tab
    /// says to try again.
    pub probe_interval_ms: Millis,
    /// Transactions per request of a function that batches, at most.
    pub max_batch: usize,
    /// The mutation functions that batch: the attempts recorded in one write for one of them
    /// are called together ([`super::Command::CallBatch`]), up to `max_batch` per request.
    /// Every other function is called once per transaction ([`super::Command::Call`]).
    pub batching: BTreeSet<String>,
    /// Attempts and backoff.
    pub retry: RetryPolicy,
    /// When a success names the server's sequence number, wait for the sync to pass it
    /// (`persisted_awaiting_sync`) before `completed`.
    pub await_sync: bool,
    /// The app decides when a success is synced (its own `awaitSync`): every success waits
    /// `persisted_awaiting_sync`, the executor asks with [`super::Command::AwaitSync`], and
    /// [`super::Event::Synced`] completes it.
    pub await_sync_hook: bool,
    /// Asked before each retry.
    pub before_retry: Option<BeforeRetry>,
    /// After a failed outbox write (other than a fenced one), try again after this long.
    pub write_retry_ms: Millis,
    /// A completed transaction's tombstone waits up to this long to be written, so that the
    /// writes of new submits (which a tab waits on) do not queue behind completions. A write
    /// that happens anyway after that takes them along; otherwise they are written on their own.
    pub settle_linger_ms: Millis,
    /// Calls need credentials from a tab: each term starts paused and asks for them
    /// ([`crate::protocol::Message::CredentialsNeeded`]), so no call goes out without them.
    pub credentials: bool,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 8,
            probe_interval_ms: 1_000,
            max_batch: 100,
            batching: BTreeSet::new(),
            retry: RetryPolicy::default(),
            await_sync: false,
            await_sync_hook: false,
            before_retry: None,
            write_retry_ms: 1000,
            settle_linger_ms: DEFAULT_SETTLE_LINGER_MS,
            credentials: false,
        }
    }
}

impl std::fmt::Debug for ExecutorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorConfig")
            .field("max_concurrency", &self.max_concurrency)
            .field("probe_interval_ms", &self.probe_interval_ms)
            .field("max_batch", &self.max_batch)
            .field("batching", &self.batching)
            .field("retry", &self.retry)
            .field("await_sync", &self.await_sync)
            .field("await_sync_hook", &self.await_sync_hook)
            .field("before_retry", &self.before_retry.is_some())
            .field("write_retry_ms", &self.write_retry_ms)
            .field("settle_linger_ms", &self.settle_linger_ms)
            .finish()
    }
}
