//! Calls in flight, counted as they reach the server.
//!
//! An attempt of a function that does not batch is a call of its own. Attempts of a function
//! that batches ride in requests: one request takes the attempts recorded for that function
//! until the write holding their records is taken (they are called together once it commits),
//! up to `max_batch` of them. `max_concurrency` limits calls and requests together: a request
//! counts once, however many transactions it carries, and its place is free again when the last
//! of them has finished.
//!
//! After an attempt of a batching function got no answer at all (the network is down; or the
//! last leader's did, see [`crate::store::Loaded::unreachable`]) and until the server answers
//! one again, the function has one request running at a time: offline, every attempt costs an
//! attempt record and a broadcast, and many full requests would only multiply that wasted work.
//! Once it answers, it may have as many as `max_concurrency` allows.

use crate::model::TransactionId;
use std::collections::HashMap;

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

/// One batch request.
#[derive(Debug)]
struct BatchRequest {
    id: RequestId,
    mutation_fn: String,
    /// Its attempts still running.
    running: usize,
    /// Attempts it took in all (it takes no more at `max_batch`).
    taken: usize,
    /// It still takes attempts: their records are not yet in a write.
    filling: bool,
}

/// The calls and requests in flight.
#[derive(Debug, Default)]
pub(super) struct CallsInFlight {
    /// Running attempts: the request each rides in, or `None` for a call of its own.
    running: HashMap<TransactionId, Option<RequestId>>,
    /// Attempts running in calls of their own.
    alone: usize,
    /// Batch requests running or being filled (at most `max_concurrency` of them).
    requests: Vec<BatchRequest>,
    /// Batching functions whose last attempt got no answer: one request at a time.
    unanswered: Vec<String>,
    next: RequestId,
}

impl CallsInFlight {
    /// Calls and requests running (or being filled): what `max_concurrency` limits.
    pub fn calls(&self) -> usize {
        self.alone + self.requests.len()
    }

    /// Attempts running, whichever way they go.
    pub fn attempts(&self) -> usize {
        self.running.len()
    }

    /// Whether request `q`, being filled, may take another attempt.
    fn has_room(q: &BatchRequest, max_batch: usize) -> bool {
        q.filling && q.taken < max_batch.max(1)
    }

    /// Whether some request still being filled has room.
    pub fn has_open_room(&self, max_batch: usize) -> bool {
        self.requests.iter().any(|q| Self::has_room(q, max_batch))
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
            let mut mine = self
                .requests
                .iter()
                .filter(|q| q.mutation_fn == mutation_fn);
            if let Some(q) = mine.clone().find(|q| Self::has_room(q, max_batch)) {
                return Some(Slot::Join(q.id));
            }
            if mine.next().is_some() && self.unanswered.iter().any(|f| f == mutation_fn) {
                // Not known to be reachable: one request at a time.
                return None;
            }
        }
        if self.calls() >= max_concurrency.max(1) {
            return None;
        }
        Some(if batching { Slot::New } else { Slot::Alone })
    }

    /// The attempt of `id` started in `slot` (from [`Self::slot`], with nothing started since).
    pub fn start(&mut self, id: &TransactionId, mutation_fn: &str, slot: Slot) {
        let joined = match slot {
            Slot::Alone => {
                self.alone += 1;
                self.running.insert(id.clone(), None);
                return;
            }
            Slot::Join(r) => self.requests.iter_mut().find(|q| q.id == r && q.filling),
            Slot::New => None,
        };
        let request = match joined {
            Some(q) => q,
            None => {
                // A function has one request being filled at most.
                for q in self.requests.iter_mut() {
                    if q.mutation_fn == mutation_fn {
                        q.filling = false;
                    }
                }
                self.next += 1;
                self.requests.push(BatchRequest {
                    id: self.next,
                    mutation_fn: mutation_fn.to_owned(),
                    running: 0,
                    taken: 0,
                    filling: true,
                });
                let Some(q) = self.requests.last_mut() else {
                    return;
                };
                q
            }
        };
        request.running += 1;
        request.taken += 1;
        self.running.insert(id.clone(), Some(request.id));
    }

    /// The attempts started so far are in the write just taken: they are called together once
    /// it commits, so later attempts go into new requests.
    pub fn close(&mut self) {
        for q in &mut self.requests {
            q.filling = false;
        }
    }

    /// An attempt of the batching function `mutation_fn` finished: `answered` if the server
    /// answered it (whatever it said), not if the network failed.
    pub fn answered(&mut self, mutation_fn: &str, answered: bool) {
        let known = self.unanswered.iter().position(|f| f == mutation_fn);
        match (answered, known) {
            (true, Some(i)) => {
                // Reachable: more requests may go.
                self.unanswered.swap_remove(i);
            }
            (false, None) => self.unanswered.push(mutation_fn.to_owned()),
            _ => {}
        }
    }

    /// The request the running attempt of `id` rides in, if it is batched.
    pub fn request_of(&self, id: &TransactionId) -> Option<RequestId> {
        self.running.get(id).copied().flatten()
    }

    /// The attempt of `id` is over (answered, or never sent): its call, or its share of a
    /// request, is free again. Nothing happens if it is not running.
    pub fn finish(&mut self, id: &TransactionId) {
        match self.running.remove(id) {
            None => {}
            Some(None) => self.alone = self.alone.saturating_sub(1),
            Some(Some(r)) => {
                if let Some(i) = self.requests.iter().position(|q| q.id == r) {
                    let q = &mut self.requests[i];
                    q.running = q.running.saturating_sub(1);
                    if q.running == 0 {
                        self.requests.swap_remove(i);
                    }
                }
            }
        }
    }
}
