//! Calls in flight, counted as they reach the server.
//!
//! An attempt of a function that does not batch is a call of its own. Attempts of a function
//! that batches ride in requests: one request takes the attempts recorded for that function
//! until the write holding their records is taken (they are called together once it commits),
//! up to `max_batch` of them. `max_concurrency` limits calls and requests together: a request
//! counts once, however many transactions it carries, and its place is free again when the last
//! of them has finished.
//!
//! Until the server has answered an attempt of a batching function (since the leader started,
//! or since an attempt got no answer at all: the network is down), its new requests count once
//! per transaction they carry, as calls of other functions do: offline, every attempt costs an
//! attempt record and a broadcast, and filling requests would only multiply that wasted work.

use crate::model::TransactionId;
use std::collections::{HashMap, HashSet};

/// A batch request, by number.
pub(super) type RequestId = u64;

/// Where an attempt about to start goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// A call of its own.
    Alone,
    /// The request of its function still being filled.
    Join(RequestId),
    /// A new request of its function.
    New,
}

/// One batch request: its function, and how many of its attempts are still running.
#[derive(Debug)]
struct BatchRequest {
    mutation_fn: String,
    running: usize,
    /// Attempts it took in all (it takes no more at `max_batch`).
    taken: usize,
    /// Made while its function got no answers: it counts once per running attempt.
    per_transaction: bool,
}

impl BatchRequest {
    /// Its share of `max_concurrency`.
    fn weight(&self) -> usize {
        if self.per_transaction {
            self.running
        } else {
            1
        }
    }
}

/// The calls and requests in flight.
#[derive(Debug, Default)]
pub(super) struct CallsInFlight {
    /// Attempts running in calls of their own.
    alone: HashSet<TransactionId>,
    /// Batch requests running, or being filled.
    requests: HashMap<RequestId, BatchRequest>,
    /// Per function: the request still being filled (its attempts' records are not yet taken
    /// into a write).
    open: HashMap<String, RequestId>,
    /// The request of each running batched attempt.
    request_of: HashMap<TransactionId, RequestId>,
    /// Batching functions not answered yet, or whose last attempt got no answer.
    unanswered: HashSet<String>,
    next: RequestId,
}

impl CallsInFlight {
    /// Nothing in flight; `batching` functions are not known to be reachable yet.
    pub fn new(batching: impl IntoIterator<Item = String>) -> Self {
        Self {
            unanswered: batching.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Calls and requests running (or being filled): what `max_concurrency` limits.
    pub fn calls(&self) -> usize {
        self.alone.len()
            + self
                .requests
                .values()
                .map(BatchRequest::weight)
                .sum::<usize>()
    }

    /// Attempts running, whichever way they go.
    pub fn attempts(&self) -> usize {
        self.alone.len() + self.request_of.len()
    }

    /// Whether request `q`, being filled, may take another attempt.
    fn has_room(&self, q: &BatchRequest, max_batch: usize, max_concurrency: usize) -> bool {
        q.taken < max_batch.max(1) && (!q.per_transaction || self.calls() < max_concurrency.max(1))
    }

    /// Whether some request still being filled has room.
    pub fn has_open_room(&self, max_batch: usize, max_concurrency: usize) -> bool {
        self.open.values().any(|r| {
            self.requests
                .get(r)
                .is_some_and(|q| self.has_room(q, max_batch, max_concurrency))
        })
    }

    /// Where an attempt of `mutation_fn` (`batching` if that function batches) can start now;
    /// `None` when there is no room for it.
    pub fn slot(
        &self,
        mutation_fn: &str,
        batching: bool,
        max_batch: usize,
        max_concurrency: usize,
    ) -> Option<Slot> {
        if batching {
            let open = self.open.get(mutation_fn).copied();
            if let Some(r) = open.filter(|r| {
                self.requests
                    .get(r)
                    .is_some_and(|q| self.has_room(q, max_batch, max_concurrency))
            }) {
                return Some(Slot::Join(r));
            }
        }
        if self.calls() >= max_concurrency.max(1) {
            return None;
        }
        Some(if batching { Slot::New } else { Slot::Alone })
    }

    /// The attempt of `id` started in `slot` (from [`Self::slot`], with nothing started since).
    pub fn start(&mut self, id: &TransactionId, mutation_fn: &str, slot: Slot) {
        let request = match slot {
            Slot::Alone => {
                self.alone.insert(id.clone());
                return;
            }
            Slot::Join(r) if self.requests.contains_key(&r) => r,
            Slot::Join(_) | Slot::New => {
                self.next += 1;
                let r = self.next;
                self.requests.insert(
                    r,
                    BatchRequest {
                        mutation_fn: mutation_fn.to_owned(),
                        running: 0,
                        taken: 0,
                        per_transaction: self.unanswered.contains(mutation_fn),
                    },
                );
                self.open.insert(mutation_fn.to_owned(), r);
                r
            }
        };
        if let Some(q) = self.requests.get_mut(&request) {
            q.running += 1;
            q.taken += 1;
        }
        self.request_of.insert(id.clone(), request);
    }

    /// The attempts started so far are in the write just taken: they are called together once
    /// it commits, so later attempts go into new requests.
    pub fn close(&mut self) {
        self.open.clear();
    }

    /// An attempt of the batching function `mutation_fn` finished: `answered` if the server
    /// answered it (whatever it said), not if the network failed.
    pub fn answered(&mut self, mutation_fn: &str, answered: bool) {
        if answered {
            self.unanswered.remove(mutation_fn);
        } else if !self.unanswered.contains(mutation_fn) {
            self.unanswered.insert(mutation_fn.to_owned());
        }
    }

    /// The request the running attempt of `id` rides in, if it is batched.
    pub fn request_of(&self, id: &TransactionId) -> Option<RequestId> {
        self.request_of.get(id).copied()
    }

    /// The attempt of `id` is over (answered, or never sent): its call, or its share of a
    /// request, is free again. Nothing happens if it is not running.
    pub fn finish(&mut self, id: &TransactionId) {
        if self.alone.remove(id) {
            return;
        }
        let Some(r) = self.request_of.remove(id) else {
            return;
        };
        let Some(q) = self.requests.get_mut(&r) else {
            return;
        };
        q.running = q.running.saturating_sub(1);
        if q.running == 0 {
            if self.open.get(&q.mutation_fn) == Some(&r) {
                self.open.remove(&q.mutation_fn);
            }
            self.requests.remove(&r);
        }
    }
}
