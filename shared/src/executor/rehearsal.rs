//! A standby's rehearsal: one short scripted term on a throwaway executor.
//!
//! WebAssembly is compiled lazily, function by function, the first time each runs. A worker
//! waiting for the lock has never run the executor, so its first term used to spend its first
//! milliseconds compiling (about 5 ms of a ~35 ms failover here). Running the same code once on
//! a throwaway executor while it waits moves that cost out of the failover.

use super::{AttemptSuccess, Command, Event, Executor, ExecutorConfig};
use crate::model::Millis;
use crate::model::{
    ClientId, Epoch, PendingMutation, Strategy, Transaction, TransactionId, TransactionState,
};
use crate::protocol::{self, Envelope, Message};
use crate::retry::{AttemptError, SplitMix64};
use crate::store::{Loaded, StoredRecord, WriteId};
use serde_json::json;

/// Runs a term in memory: take over a stored record, accept a submit, commit, fail an attempt,
/// succeed one, answer a snapshot, and encode and decode every message it sends. Returns the
/// ids of the transactions its decoded `state` messages reported completed (nothing leaves this
/// function; the answer is there to be checked).
pub fn rehearse(config: ExecutorConfig) -> Vec<TransactionId> {
    let tab = ClientId("rehearsal-tab".into());
    let mut r = Rehearsal {
        exec: Executor::new(config, Box::new(SplitMix64::new(1))),
        writes: Vec::new(),
        calls: Vec::new(),
        completed: Vec::new(),
    };
    r.step(
        1,
        Event::BecameLeader(Loaded {
            epoch: Epoch(1),
            records: vec![("stored".into(), stored_text(&tx("stored")))],
            tombstones: Vec::new(),
            removed: Vec::new(),
            unreachable: false,
            lineage: None,
        }),
    );
    let submit = Envelope::broadcast(
        APP,
        &tab,
        Message::Submit {
            epoch: Epoch(1),
            txs: vec![tx("submitted")],
        },
    );
    if let Ok(Envelope {
        body: Message::Submit { txs, .. },
        ..
    }) = protocol::decode(&protocol::encode(&submit), APP)
    {
        for t in txs {
            r.step(
                2,
                Event::Submitted {
                    from: tab.clone(),
                    to: Epoch(1),
                    tx: Box::new(t),
                },
            );
        }
    }
    // Commit what is written and answer the calls (first a failure, then successes) until the
    // term is quiet, within a bound.
    let mut now = 3;
    for round in 0..8 {
        let writes = std::mem::take(&mut r.writes);
        let calls = std::mem::take(&mut r.calls);
        if writes.is_empty() && calls.is_empty() {
            break;
        }
        for write in writes {
            r.step(now, Event::Written { write });
        }
        for (id, attempt) in calls {
            let outcome = if round == 0 {
                Err(AttemptError::retriable("rehearsal"))
            } else {
                Ok(AttemptSuccess::default())
            };
            r.step(
                now,
                Event::AttemptFinished {
                    id,
                    attempt,
                    outcome,
                },
            );
        }
        now += 60_000;
        r.step(now, Event::TimerFired);
    }
    r.step(now, Event::SnapshotRequested { from: tab });
    r.step(now, Event::Stop);
    r.completed
}

const APP: &str = "rehearsal";

fn tx(id: &str) -> Transaction {
    Transaction::new(
        TransactionId(id.into()),
        APP,
        Strategy::Ordered,
        vec![PendingMutation::insert(
            APP,
            id,
            json!({ "id": id, "n": 1.5, "ok": true }),
        )],
        0,
    )
}

/// A record as the worker's store writes and reads it: JSON text of the transaction.
fn stored_text(tx: &Transaction) -> StoredRecord {
    StoredRecord::Text(serde_json::to_string(tx).unwrap_or_default())
}

struct Rehearsal {
    exec: Executor,
    writes: Vec<WriteId>,
    calls: Vec<(TransactionId, u32)>,
    completed: Vec<TransactionId>,
}

impl Rehearsal {
    /// Feeds one event and carries out its commands in memory: records go through their
    /// stored form, messages through the codec.
    fn step(&mut self, now: Millis, event: Event) {
        for c in self.exec.handle(now, event) {
            match c {
                Command::Write(batch) => {
                    for t in &batch.puts {
                        let _ = Transaction::from_stored(stored_text(t));
                    }
                    self.writes.push(batch.id);
                }
                Command::Call { tx, attempt } => self.calls.push((tx.id, attempt)),
                Command::Send { to, msg } => {
                    let me = ClientId("rehearsal".into());
                    let env = Envelope::new(APP, &me, to.as_ref(), msg);
                    for text in protocol::encode_fitting(&env, protocol::MAX_MESSAGE_BYTES) {
                        if let Ok(Envelope {
                            body: Message::State { txs, .. },
                            ..
                        }) = protocol::decode(&text, APP)
                        {
                            self.completed.extend(
                                txs.into_iter()
                                    .filter(|t| t.state == TransactionState::Completed)
                                    .map(|t| t.id),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rehearsal_runs_a_whole_term_to_the_end() {
        // The stored and the submitted transaction: each written, called, failed once,
        // retried and completed, with every message through the codec.
        let mut done = rehearse(ExecutorConfig::default());
        done.sort();
        assert_eq!(
            done,
            vec![
                TransactionId::from("stored"),
                TransactionId::from("submitted")
            ]
        );
    }
}
