//! A fake server: idempotent by key, with faults drawn per request.

use outbox_shared::executor::{AttemptOutcome, AttemptSuccess};
use outbox_shared::model::{Epoch, Key, Strategy, Transaction, TransactionId};
use outbox_shared::retry::{classify_http, AttemptError, SplitMix64};
use std::collections::HashMap;

/// How the server misbehaves during the fault phase.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Answer 500 or 503 before applying (one spends an attempt, the other does not).
    pub p_unavailable: f64,
    /// Apply, then lose the reply (the client sees a network error).
    pub p_drop_reply: f64,
    /// Longest extra delay, in ms.
    pub max_delay: u64,
}

/// What the server did with one request.
#[derive(Debug)]
pub struct Handled {
    pub outcome: AttemptOutcome,
    pub reply_lost: bool,
    pub delay: u64,
}

#[derive(Debug, Default)]
pub struct Server {
    /// The first answer per idempotency key (the server sequence number).
    answers: HashMap<TransactionId, u64>,
    /// Times each key was applied (must never exceed 1).
    pub applied: HashMap<TransactionId, u32>,
    /// Per row: the ordered transactions applied to it, with their leader-assigned order.
    pub log: HashMap<Key, Vec<(TransactionId, u64)>>,
    /// Requests per key, with the epoch of the leader that sent them.
    pub requests: Vec<(TransactionId, Epoch)>,
    seq: u64,
    /// The newest leader epoch heard from: older callers are fenced out.
    max_epoch: Epoch,
}

impl Server {
    pub fn handle(
        &mut self,
        tx: &Transaction,
        faults: Option<&Faults>,
        rng: &mut SplitMix64,
    ) -> Handled {
        self.requests.push((tx.id.clone(), tx.epoch));
        let delay = faults.map_or(0, |f| rng.below(f.max_delay + 1)) + 1 + rng.below(5);
        if let Some(f) = faults {
            if rng.chance(f.p_unavailable) {
                let status = if rng.chance(0.5) { 500 } else { 503 };
                return Handled {
                    outcome: Err(classify_http(status, None)
                        .unwrap_or_else(|| AttemptError::retriable("5xx"))),
                    reply_lost: false,
                    delay,
                };
            }
        }
        if tx.epoch < self.max_epoch {
            return Handled {
                outcome: Err(AttemptError::fenced("a newer leader has called")),
                reply_lost: false,
                delay,
            };
        }
        self.max_epoch = tx.epoch;
        if tx.mutation_fn == "poison" {
            return Handled {
                outcome: Err(
                    classify_http(422, None).unwrap_or_else(|| AttemptError::non_retriable("422"))
                ),
                reply_lost: false,
                delay,
            };
        }
        let seq = match self.answers.get(&tx.id) {
            Some(seq) => *seq,
            None => {
                self.seq += 1;
                self.answers.insert(tx.id.clone(), self.seq);
                *self.applied.entry(tx.id.clone()).or_default() += 1;
                if tx.strategy == Strategy::Ordered {
                    for k in &tx.keys {
                        self.log
                            .entry(k.clone())
                            .or_default()
                            .push((tx.id.clone(), tx.seq));
                    }
                }
                self.seq
            }
        };
        let reply_lost = faults.is_some_and(|f| rng.chance(f.p_drop_reply));
        Handled {
            outcome: Ok(AttemptSuccess {
                server_seq: Some(seq),
            }),
            reply_lost,
            delay,
        }
    }

    pub fn applied(&self, id: &TransactionId) -> u32 {
        self.applied.get(id).copied().unwrap_or(0)
    }
}
