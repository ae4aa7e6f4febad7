//! Tabs' requests to the leader: peek, remove, retry a dead letter, stats.

use super::writes::AfterCommit;
use super::Executor;
use crate::model::{ClientId, ErrorCode, Millis, TransactionState, TxError};
use crate::protocol::{Message, Request, Response};

impl Executor {
    pub(super) fn request(&mut self, now: Millis, from: &ClientId, req: u64, op: Request) {
        let immediate = match op {
            Request::Peek => Some(Response::Outbox {
                transactions: self.transactions(),
            }),
            Request::Stats => Some(Response::Stats {
                stats: self.stats(),
            }),
            Request::Remove { id } => match self.txs.get(&id).map(|e| e.tx.state) {
                None => Some(unknown(&id)),
                Some(TransactionState::Persisting) => Some(Response::Error {
                    error: TxError::new(
                        ErrorCode::Invalid,
                        format!("transaction {id} is running and cannot be removed now"),
                    ),
                }),
                Some(_) => {
                    self.remove(
                        now,
                        &id,
                        TxError::new(ErrorCode::Removed, "removed from the outbox by the app"),
                    );
                    None
                }
            },
            Request::RetryDeadLetter { id } => match self.txs.get_mut(&id) {
                None => Some(unknown(&id)),
                Some(e) if e.tx.state != TransactionState::Failed => Some(Response::Error {
                    error: TxError::new(
                        ErrorCode::Invalid,
                        format!("transaction {id} is {} and not a dead letter", e.tx.state),
                    ),
                }),
                Some(e) => {
                    let _ = e.tx.move_to(TransactionState::Pending, now);
                    e.tx.error = None;
                    e.tx.restart_budget();
                    if let Some(a) = e.tx.attempts.last_mut() {
                        a.retry_scheduled_for = None;
                    }
                    e.tx.seq = self.next_seq;
                    self.next_seq += 1;
                    let (strategy, keys) = (e.tx.strategy, e.tx.keys.clone());
                    self.scheduler.enqueue(&id, strategy, &keys);
                    self.writes.put(&id);
                    self.recheck(now, &id);
                    None
                }
            },
            Request::SignOut { discard } => {
                self.sign_out(now, from, req, discard);
                return;
            }
        };
        match immediate {
            Some(result) => self.send_to(Some(from.clone()), Message::Response { req, result }),
            None => self.writes.after_commit(AfterCommit::Reply {
                to: from.clone(),
                req,
                response: Response::Done,
            }),
        }
    }
}

impl Executor {
    /// Signs out: counts, discards if asked (a call already on the wire cannot be recalled),
    /// stops calling, and once that is committed answers, tells every tab and stops.
    fn sign_out(&mut self, now: Millis, from: &ClientId, req: u64, discard: bool) {
        let stats = self.stats();
        let mut discarded = 0;
        if discard {
            let ids: Vec<_> = self.txs.keys().cloned().collect();
            for id in ids {
                self.remove(
                    now,
                    &id,
                    TxError::new(ErrorCode::Removed, "discarded when the user signed out"),
                );
                discarded += 1;
            }
        }
        self.paused = true;
        self.signed_out = true;
        self.writes.after_commit(AfterCommit::Reply {
            to: from.clone(),
            req,
            response: Response::SignedOut {
                pending: stats.size,
                dead_letters: stats.dead_letters,
                discarded,
            },
        });
        // Answered after a commit (an empty batch still commits, with the epoch check).
        self.writes.after_commit(AfterCommit::SignedOut);
    }
}

fn unknown(id: &crate::model::TransactionId) -> Response {
    Response::Error {
        error: TxError::new(
            ErrorCode::Invalid,
            format!("no transaction {id} in the outbox"),
        ),
    }
}
