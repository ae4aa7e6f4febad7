//! Transactions the app is still building (`client.transaction().mutate(…)`): their changes show
//! in the view at once, but nothing is sent until the transaction is submitted.
//!
//! Each staged mutation lies in the overlay as an entry of its own (`<id>#staged#<n>`), so
//! adding one costs one row however large the transaction grows. Submitting takes those entries
//! out and lays the whole transaction in; discarding takes them out (an exact rollback).

use super::{TabCore, TabOutput};
use crate::model::{PendingMutation, Strategy, Transaction, TransactionId};
use crate::view::RowRef;

impl TabCore {
    /// Lays one more mutation of the unsubmitted transaction `id` over the view.
    pub fn stage(&mut self, id: &TransactionId, mutation: PendingMutation) -> Vec<TabOutput> {
        if self.known.contains_key(id) {
            return Vec::new();
        }
        let entries = self.staged.entry(id.clone()).or_default();
        let entry = TransactionId(format!("{id}#staged#{}", entries.len()));
        entries.push(entry.clone());
        let part = Transaction::new(entry, "", Strategy::Parallel, vec![mutation], 0);
        let rows = self.view.add_pending(&part);
        self.out.push(TabOutput::RowsChanged(rows));
        self.take()
    }

    /// Takes a staged transaction's changes out of the view (the app rolled it back).
    pub fn discard_staged(&mut self, id: &TransactionId) -> Vec<TabOutput> {
        let rows = self.drop_staged(id);
        if !rows.is_empty() {
            self.out.push(TabOutput::RowsChanged(rows));
        }
        self.take()
    }

    /// Whether `id` is being staged.
    pub fn is_staged(&self, id: &TransactionId) -> bool {
        self.staged.contains_key(id)
    }

    /// Removes the overlay entries of a staged transaction; returns the rows they touched.
    pub(super) fn drop_staged(&mut self, id: &TransactionId) -> Vec<RowRef> {
        let mut rows: Vec<RowRef> = Vec::new();
        for entry in self.staged.remove(id).unwrap_or_default() {
            for r in self.view.remove_pending(&entry) {
                if !rows.contains(&r) {
                    rows.push(r);
                }
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{ClientId, Epoch, PendingMutation, Strategy, Transaction, TransactionId};
    use crate::protocol::{Envelope, Message};
    use crate::tab::{TabCore, TabOutput};
    use serde_json::json;

    fn core() -> TabCore {
        TabCore::new(ClientId("me".into()), "todos")
    }

    #[test]
    fn staged_changes_show_at_once_and_are_not_sent() {
        let mut t = core();
        t.receive(
            0,
            Envelope::broadcast(
                "todos",
                &ClientId("l".into()),
                Message::Leader { epoch: Epoch(1) },
            ),
        );
        let id = TransactionId::from("t");
        let out = t.stage(
            &id,
            PendingMutation::insert("todos", "1", json!({"id": "1"})),
        );
        assert!(out.iter().all(|o| !matches!(o, TabOutput::Send(_))));
        let before = json!({"id": "1"});
        let out = t.stage(
            &id,
            PendingMutation::update("todos", "1", before, json!({"done": true})),
        );
        assert!(out.iter().all(|o| !matches!(o, TabOutput::Send(_))));
        assert_eq!(
            t.view().get("todos", "1"),
            Some(&json!({"id": "1", "done": true}))
        );
        assert!(t.is_staged(&id));
        assert!(t.get(&id).is_none(), "not a transaction until submitted");
    }

    #[test]
    fn submitting_a_staged_transaction_replaces_its_parts() {
        let mut t = core();
        let id = TransactionId::from("t");
        t.stage(
            &id,
            PendingMutation::insert("todos", "1", json!({"id": "1"})),
        );
        t.stage(
            &id,
            PendingMutation::insert("todos", "2", json!({"id": "2"})),
        );
        let tx = Transaction::new(
            id.clone(),
            "f",
            Strategy::Ordered,
            vec![
                PendingMutation::insert("todos", "1", json!({"id": "1"})),
                PendingMutation::insert("todos", "2", json!({"id": "2"})),
            ],
            0,
        );
        t.submit(tx);
        assert!(!t.is_staged(&id));
        let pending: Vec<&str> = t.view().pending_ids().map(TransactionId::as_str).collect();
        assert_eq!(pending, vec!["t"]);
        assert_eq!(t.view().rows("todos").count(), 2);
    }

    #[test]
    fn discarding_a_staged_transaction_rolls_its_rows_back() {
        let mut t = core();
        t.set_synced("todos", "1", Some(json!({"id": "1", "title": "a"})));
        let id = TransactionId::from("t");
        t.stage(
            &id,
            PendingMutation::update(
                "todos",
                "1",
                json!({"id": "1", "title": "a"}),
                json!({"title": "b"}),
            ),
        );
        t.stage(
            &id,
            PendingMutation::insert("todos", "2", json!({"id": "2"})),
        );
        let out = t.discard_staged(&id);
        assert!(matches!(&out[..], [TabOutput::RowsChanged(rows)] if rows.len() == 2));
        assert_eq!(
            t.view().get("todos", "1"),
            Some(&json!({"id": "1", "title": "a"}))
        );
        assert_eq!(t.view().get("todos", "2"), None);
        assert_eq!(t.view().pending_ids().count(), 0);
    }
}
