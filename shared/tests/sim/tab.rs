//! A simulated tab: the real [`TabCore`] with a random workload.

use outbox_shared::model::{
    ClientId, ErrorCode, PendingMutation, Strategy, Transaction, TransactionId, TransactionState,
};
use outbox_shared::protocol::{Envelope, Message};
use outbox_shared::retry::SplitMix64;
use outbox_shared::tab::{TabCore, TabOutput};
use serde_json::json;

pub const SCOPE: &str = "sim";

#[derive(Debug)]
pub struct Tab {
    pub core: TabCore,
    /// Every transaction it created, in creation order.
    pub created: Vec<Transaction>,
    next: u64,
}

impl Tab {
    pub fn new(n: usize) -> Self {
        Self {
            core: TabCore::new(ClientId(format!("tab{n}")), SCOPE),
            created: Vec::new(),
            next: 0,
        }
    }

    pub fn id(&self) -> &ClientId {
        self.core.id()
    }

    /// Makes a transaction on one or two random keys and submits it; returns what to send.
    pub fn create(
        &mut self,
        rng: &mut SplitMix64,
        keys: u64,
        now: u64,
    ) -> (TransactionId, Vec<Message>) {
        self.next += 1;
        let id = TransactionId(format!("{}-{}", self.id(), self.next));
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
        let tx = Transaction::new(id.clone(), f, strategy, mutations, now);
        self.created.push(tx.clone());
        let out = self.core.submit(tx);
        (id, sends(out))
    }

    pub fn start(&mut self) -> Vec<Message> {
        sends(self.core.start())
    }

    /// Reads one message; returns what to send in answer. Every claim of leadership is
    /// verified as true at once: the simulated channel carries no forgeries, and a deposed
    /// leader's claim is older than the newest one anyway.
    pub fn receive(&mut self, now: u64, env: Envelope) -> Vec<Message> {
        let mut out = Vec::new();
        for o in self.core.receive(now, env) {
            match o {
                TabOutput::VerifyLeader { epoch, from } => {
                    out.extend(self.core.leader_verified(now, epoch, from));
                }
                o => out.push(o),
            }
        }
        sends(out)
    }

    pub fn durable(&self, id: &TransactionId) -> bool {
        self.core.is_durable(id)
    }

    /// The last state this tab heard for its transaction.
    pub fn heard(&self, id: &TransactionId) -> Option<TransactionState> {
        self.core.get(id).map(|t| t.state)
    }

    /// Refused by a leader (quota) before it was ever durable.
    pub fn rejected(&self, id: &TransactionId) -> Option<ErrorCode> {
        let tx = self.core.get(id)?;
        (!self.durable(id) && tx.state == TransactionState::Failed).then(|| tx.error_code())?
    }
}

fn sends(out: Vec<TabOutput>) -> Vec<Message> {
    out.into_iter()
        .filter_map(|o| match o {
            TabOutput::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}
