//! A simulated tab: creates transactions, resends them until a leader says durable, and
//! follows their states.

use outbox_shared::model::{
    ClientId, Epoch, ErrorCode, PendingMutation, Strategy, Transaction, TransactionId,
    TransactionState,
};
use outbox_shared::protocol::Message;
use outbox_shared::retry::SplitMix64;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug)]
pub struct Tab {
    pub id: ClientId,
    /// Every transaction it created, in creation order.
    pub created: Vec<Transaction>,
    pub durable: HashSet<TransactionId>,
    pub rejected: HashMap<TransactionId, ErrorCode>,
    /// The last state it heard for each transaction.
    pub states: BTreeMap<TransactionId, TransactionState>,
    pub epoch: Epoch,
    next: u64,
}

impl Tab {
    pub fn new(n: usize) -> Self {
        Self {
            id: ClientId(format!("tab{n}")),
            created: Vec::new(),
            durable: HashSet::new(),
            rejected: HashMap::new(),
            states: BTreeMap::new(),
            epoch: Epoch(0),
            next: 0,
        }
    }

    /// Makes a transaction on one or two random keys.
    pub fn create(&mut self, rng: &mut SplitMix64, keys: u64, now: u64) -> Transaction {
        self.next += 1;
        let id = TransactionId(format!("{}-{}", self.id, self.next));
        let mut rows = vec![rng.below(keys)];
        if rng.chance(0.3) {
            let other = rng.below(keys);
            if other != rows[0] {
                rows.push(other);
            }
        }
        let mutations = rows
            .iter()
            .map(|r| PendingMutation::insert("todos", &r.to_string(), json!({ "by": id.0 })))
            .collect();
        let strategy = if rng.chance(0.15) {
            Strategy::Parallel
        } else {
            Strategy::Ordered
        };
        let f = if rng.chance(0.04) { "poison" } else { "sync" };
        let tx = Transaction::new(id, f, strategy, mutations, now);
        self.created.push(tx.clone());
        self.states.insert(tx.id.clone(), TransactionState::Pending);
        tx
    }

    /// Transactions to (re)send to a new leader: every one not known to be settled.
    pub fn to_resend(&self) -> Vec<Transaction> {
        self.created
            .iter()
            .filter(|t| !self.rejected.contains_key(&t.id))
            .filter(|t| !self.states.get(&t.id).is_some_and(|s| s.is_settled()))
            .cloned()
            .collect()
    }

    /// Reads one message; returns true when a new leader announced itself.
    pub fn receive(&mut self, msg: &Message) -> bool {
        match msg {
            Message::Leader { epoch } if *epoch > self.epoch => {
                self.epoch = *epoch;
                return true;
            }
            Message::Durable { ids, .. } => self.durable.extend(ids.iter().cloned()),
            Message::Rejected { id, error } => {
                self.rejected.insert(id.clone(), error.code);
            }
            // A late message from a deposed leader speaks of the past.
            Message::State { epoch, .. } if *epoch < self.epoch => {}
            Message::State { txs, .. } => {
                for t in txs {
                    if let Some(s) = self.states.get_mut(&t.id) {
                        if *s != TransactionState::Completed {
                            *s = t.state;
                        }
                    }
                }
            }
            _ => {}
        }
        false
    }
}
