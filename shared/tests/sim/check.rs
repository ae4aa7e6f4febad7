//! The invariants every run must keep.

use super::world::World;
use super::Report;
use outbox_shared::model::{ErrorCode, TransactionId, TransactionState};
use std::collections::HashMap;

/// Checks the end state of a run; returns the problems and fills in the outcome counts.
pub(super) fn invariants(w: &World, report: &mut Report) -> Vec<String> {
    let mut problems = Vec::new();
    let stored: HashMap<TransactionId, (TransactionState, Option<ErrorCode>)> = w
        .store
        .transactions()
        .into_iter()
        .map(|t| (t.id.clone(), (t.state, t.error_code())))
        .collect();
    for tab in &w.tabs {
        for tx in &tab.created {
            let id = &tx.id;
            let applied = w.server.applied(id);
            if applied > 1 {
                problems.push(format!("{id} applied {applied} times"));
            }
            if let Some(code) = tab.rejected(id) {
                report.rejected += 1;
                if applied != 0 || stored.contains_key(id) || w.store.is_completed(id) {
                    problems.push(format!("{id} was rejected ({code}) yet stored or applied"));
                }
                continue;
            }
            if !tab.durable(id) {
                problems.push(format!("{id} never became durable"));
            }
            let heard = tab.heard(id);
            if w.store.is_completed(id) {
                report.completed += 1;
                if applied != 1 {
                    problems.push(format!("{id} completed but applied {applied} times"));
                }
                if heard != Some(TransactionState::Completed) {
                    problems.push(format!("{id} completed but its tab last heard {heard:?}"));
                }
                continue;
            }
            match stored.get(id) {
                None => problems.push(format!("{id} was acknowledged durable and then lost")),
                Some((TransactionState::Failed, code)) => {
                    report.failed += 1;
                    let ok = match code {
                        Some(ErrorCode::NonRetriable | ErrorCode::DependencyFailed) => applied == 0,
                        Some(ErrorCode::RetriesExhausted) => applied <= 1,
                        _ => false,
                    };
                    if !ok {
                        problems.push(format!(
                            "{id} failed with {code:?} but applied {applied} times"
                        ));
                    }
                    if heard != Some(TransactionState::Failed) {
                        problems.push(format!("{id} failed but its tab last heard {heard:?}"));
                    }
                }
                Some((state, _)) => problems.push(format!("{id} stuck in {state}")),
            }
        }
        // Per-tab creation order of ordered transactions holds on the server, per key.
        let created_index: HashMap<&TransactionId, usize> = tab
            .created
            .iter()
            .enumerate()
            .map(|(i, t)| (&t.id, i))
            .collect();
        for (key, log) in &w.server.log {
            let mine: Vec<usize> = log
                .iter()
                .filter_map(|(id, _)| created_index.get(id).copied())
                .collect();
            if mine.windows(2).any(|p| p[0] > p[1]) {
                problems.push(format!(
                    "{}'s ordered transactions on {key} applied out of order: {mine:?}",
                    tab.id()
                ));
            }
        }
    }
    // Across tabs: per key, the leader's acceptance order.
    for (key, log) in &w.server.log {
        let seqs: Vec<u64> = log.iter().map(|(_, s)| *s).collect();
        if seqs.windows(2).any(|p| p[0] >= p[1]) {
            problems.push(format!(
                "ordered transactions on {key} applied out of acceptance order: {log:?}"
            ));
        }
    }
    problems
}
