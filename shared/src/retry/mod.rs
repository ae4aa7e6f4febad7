//! Retry policy: how many attempts, how long between them, and which errors are worth retrying.

mod backoff;
mod classify;
mod rng;

pub use backoff::RetryPolicy;
pub use classify::{classify_http, parse_retry_after, AttemptError, ErrorKind};
pub use rng::{RandomSource, SplitMix64};
