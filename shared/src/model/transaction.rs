//! A transaction: one or more mutations that are persisted together, all or nothing.

use super::{
    Attempt, Epoch, ErrorCode, Key, Millis, PendingMutation, TransactionId, TransactionState,
    TransitionError, TxError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The stored record format this build writes. Records of older versions are upgraded on read;
/// newer ones are refused with [`RecordError::Unsupported`].
pub const RECORD_VERSION: u32 = 1;

/// How many attempts a transaction lists at most: the most recent. Older ones are folded into
/// [`EarlierAttempts`], so a transaction retried for days while offline (an attempt a minute)
/// keeps a record of a fixed size instead of one that grows by every attempt.
pub const ATTEMPTS_KEPT: usize = 16;

/// How a transaction is scheduled against others touching the same keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Runs after every earlier ordered transaction on any of its keys (per-key FIFO). If one of
    /// those fails for good, this one fails too.
    #[default]
    Ordered,
    /// Never queues: its mutation function may run while others on the same keys do.
    Parallel,
}

/// A transaction as the outbox stores it and the protocol carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// The stored record format ([`RECORD_VERSION`]).
    pub version: u32,
    /// The id, which is also the idempotency key.
    pub id: TransactionId,
    /// The name of the mutation function that persists it.
    pub mutation_fn: String,
    /// Ordered or parallel.
    pub strategy: Strategy,
    /// Where it is in its life.
    pub state: TransactionState,
    /// When it was created (in the tab).
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
    /// The changes, in the order they were made. Shared, never changed: every copy of a
    /// transaction (its handle, the tab's record, the optimistic view, a message) holds the
    /// same rows.
    pub mutations: Arc<[PendingMutation]>,
    /// The distinct keys its mutations touch.
    pub keys: Vec<Key>,
    /// The most recent attempts (at most [`ATTEMPTS_KEPT`]), oldest first. Record one with
    /// [`Transaction::record_attempt`].
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// What the attempts older than those in `attempts` add up to.
    #[serde(default, skip_serializing_if = "EarlierAttempts::is_none")]
    pub earlier_attempts: EarlierAttempts,
    /// How many attempts were made before the current retry budget began (a dead letter
    /// retried by the app gets a fresh budget; its earlier attempts stay in the history).
    #[serde(default)]
    pub budget_start: u32,
    /// While queued: the transaction it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_behind: Option<TransactionId>,
    /// Why it failed (or why its last attempt did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TxError>,
    /// The epoch of the leader that last wrote it (0 before any leader has).
    #[serde(default)]
    pub epoch: Epoch,
    /// Its place in the leader's acceptance order; per-key FIFO follows it. 0 until accepted.
    #[serde(default)]
    pub seq: u64,
    /// The server's sequence number for the applied change, when the reply named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_seq: Option<u64>,
    /// App data carried along, untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// The attempts no longer listed in [`Transaction::attempts`]: their count, and what they add to
/// the retry budget and the backoff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EarlierAttempts {
    /// How many (the oldest attempts).
    pub count: u32,
    /// Of those made since the current retry budget began, how many count against it.
    pub counted: u32,
    /// Of those made since the current retry budget began, how many lengthen the backoff.
    pub backed_off: u32,
}

impl EarlierAttempts {
    /// Whether no attempt was folded.
    pub fn is_none(&self) -> bool {
        self.count == 0
    }
}

impl Transaction {
    /// A new `pending` transaction with these mutations.
    pub fn new(
        id: TransactionId,
        mutation_fn: impl Into<String>,
        strategy: Strategy,
        mutations: Vec<PendingMutation>,
        now: Millis,
    ) -> Self {
        let keys = distinct_keys(&mutations);
        Self {
            version: RECORD_VERSION,
            id,
            mutation_fn: mutation_fn.into(),
            strategy,
            state: TransactionState::Pending,
            created_at: now,
            updated_at: now,
            mutations: mutations.into(),
            keys,
            attempts: Vec::new(),
            earlier_attempts: EarlierAttempts::default(),
            budget_start: 0,
            queued_behind: None,
            error: None,
            epoch: Epoch(0),
            seq: 0,
            server_seq: None,
            metadata: None,
        }
    }

    /// Moves to `to` if that is legal; otherwise changes nothing and says why.
    pub fn move_to(&mut self, to: TransactionState, now: Millis) -> Result<(), TransitionError> {
        self.state = self.state.transition(to)?;
        self.updated_at = now;
        if to != TransactionState::Queued {
            self.queued_behind = None;
        }
        Ok(())
    }

    /// How many attempts were ever made: those listed and those folded.
    pub fn attempt_count(&self) -> u32 {
        let listed = u32::try_from(self.attempts.len()).unwrap_or(u32::MAX);
        self.earlier_attempts.count.saturating_add(listed)
    }

    /// Lists `attempt` as the newest, folding the oldest listed into
    /// [`Transaction::earlier_attempts`] past [`ATTEMPTS_KEPT`].
    pub fn record_attempt(&mut self, attempt: Attempt) {
        self.attempts.push(attempt);
        let excess = self.attempts.len().saturating_sub(ATTEMPTS_KEPT);
        for old in self.attempts.drain(..excess) {
            let earlier = &mut self.earlier_attempts;
            if earlier.count >= self.budget_start {
                let (counted, backed_off) = (old.counts_against_budget(), old.backs_off());
                earlier.counted = earlier.counted.saturating_add(u32::from(counted));
                earlier.backed_off = earlier.backed_off.saturating_add(u32::from(backed_off));
            }
            earlier.count = earlier.count.saturating_add(1);
        }
    }

    /// Starts a fresh retry budget: the attempts made so far no longer count against it.
    pub fn restart_budget(&mut self) {
        self.budget_start = self.attempt_count();
        self.earlier_attempts.counted = 0;
        self.earlier_attempts.backed_off = 0;
    }

    /// The listed attempts made since the current retry budget began.
    fn in_budget(&self) -> impl Iterator<Item = &Attempt> {
        let before = self
            .budget_start
            .saturating_sub(self.earlier_attempts.count);
        self.attempts
            .iter()
            .skip(usize::try_from(before).unwrap_or(usize::MAX))
    }

    /// Attempts that count against the retry budget.
    pub fn counted_attempts(&self) -> u32 {
        let listed = self
            .in_budget()
            .filter(|a| a.counts_against_budget())
            .count();
        let listed = u32::try_from(listed).unwrap_or(u32::MAX);
        self.earlier_attempts.counted.saturating_add(listed)
    }

    /// Failed attempts that lengthen the backoff (since the budget last started).
    pub fn backoff_failures(&self) -> u32 {
        let listed = self.in_budget().filter(|a| a.backs_off()).count();
        let listed = u32::try_from(listed).unwrap_or(u32::MAX);
        self.earlier_attempts.backed_off.saturating_add(listed)
    }

    /// The attempt that is running or ran last.
    pub fn last_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// When the next attempt is due, if one is scheduled.
    pub fn retry_due(&self) -> Option<Millis> {
        if self.state == TransactionState::Pending {
            self.last_attempt().and_then(|a| a.retry_scheduled_for)
        } else {
            None
        }
    }

    /// Reads a stored record, upgrading older formats. Anything unreadable is a typed error so
    /// the caller can quarantine the record instead of crashing.
    pub fn from_record(record: Value) -> Result<Self, RecordError> {
        let version = record
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| RecordError::Malformed("no numeric `version` field".into()))?;
        if version > u64::from(RECORD_VERSION) || version == 0 {
            return Err(RecordError::Unsupported(version));
        }
        let tx: Transaction =
            serde_json::from_value(record).map_err(|e| RecordError::Malformed(e.to_string()))?;
        tx.validate()?;
        Ok(tx)
    }

    /// Reads a record as storage gave it. JSON text of the current format is decoded straight
    /// into a transaction; anything else (or text that does not decode so) goes through
    /// [`Transaction::from_record`], which upgrades or explains.
    pub fn from_stored(record: crate::store::StoredRecord) -> Result<Self, RecordError> {
        match record {
            crate::store::StoredRecord::Text(text) => {
                match serde_json::from_str::<Transaction>(&text) {
                    Ok(tx) if tx.version == RECORD_VERSION => {
                        tx.validate()?;
                        Ok(tx)
                    }
                    _ => Self::from_record(
                        serde_json::from_str(&text)
                            .map_err(|e| RecordError::Malformed(e.to_string()))?,
                    ),
                }
            }
            crate::store::StoredRecord::Value(value) => Self::from_record(value),
        }
    }

    /// Checks what serde cannot: a non-empty id and keys that match the mutations.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.id.0.is_empty() {
            return Err(RecordError::Malformed("empty transaction id".into()));
        }
        if self.mutations.is_empty() {
            return Err(RecordError::Malformed(
                "a transaction without mutations".into(),
            ));
        }
        if self.keys != distinct_keys(&self.mutations) {
            return Err(RecordError::Malformed(
                "keys do not match the mutations".into(),
            ));
        }
        Ok(())
    }

    /// The record as stored.
    pub fn to_record(&self) -> Value {
        // Serialising this type cannot fail: every field is plain data with string keys.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Fails this transaction with `error`.
    pub fn fail(&mut self, error: TxError, now: Millis) -> Result<(), TransitionError> {
        self.move_to(TransactionState::Failed, now)?;
        self.error = Some(error);
        Ok(())
    }

    /// Whether the transaction's error, if any, has this code.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|e| e.code)
    }
}

/// The distinct keys of `mutations`, in first-touched order.
pub fn distinct_keys(mutations: &[PendingMutation]) -> Vec<Key> {
    let mut keys: Vec<Key> = Vec::with_capacity(mutations.len());
    if mutations.len() <= FEW_MUTATIONS {
        for m in mutations {
            let k = m.scheduling_key();
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        return keys;
    }
    // A search of the list per mutation was quadratic: a channel message of 60,000 mutations
    // (under the size limit) held every tab that decoded it for seconds.
    let mut seen: BTreeSet<Key> = BTreeSet::new();
    for m in mutations {
        let k = m.scheduling_key();
        if !seen.contains(&k) {
            seen.insert(k.clone());
            keys.push(k);
        }
    }
    keys
}

/// Up to this many mutations, their keys are told apart by a search of the list.
const FEW_MUTATIONS: usize = 16;

/// A stored record that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Written by a newer (or impossible) record format.
    #[error("unsupported record version {0}")]
    Unsupported(u64),
    /// Not a transaction record.
    #[error("malformed record: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tx() -> Transaction {
        Transaction::new(
            "t1".into(),
            "syncTodos",
            Strategy::Ordered,
            vec![
                PendingMutation::insert("todos", "1", json!({"id": "1"})),
                PendingMutation::update("todos", "1", json!({"id": "1"}), json!({"x": 1})),
                PendingMutation::insert("todos", "2", json!({"id": "2"})),
            ],
            5,
        )
    }

    fn attempt(number: u32, code: Option<ErrorCode>) -> Attempt {
        Attempt {
            id: format!("t1#{number}"),
            number,
            started_at: u64::from(number),
            completed_at: Some(u64::from(number)),
            error: code.map(|c| TxError::new(c, "failed")),
            retry_scheduled_for: None,
            epoch: Epoch(1),
        }
    }

    #[test]
    fn past_the_kept_attempts_the_oldest_are_folded_and_still_counted() {
        let mut t = tx();
        // 40 attempts: every third got no answer (it backs off, does not use up the budget),
        // every fifth was cut short by its leader going away (neither).
        for n in 1..=40u32 {
            let code = match n {
                n if n % 5 == 0 => ErrorCode::LeaderLost,
                n if n % 3 == 0 => ErrorCode::Network,
                _ => ErrorCode::Retriable,
            };
            t.record_attempt(attempt(n, Some(code)));
        }
        assert_eq!(t.attempts.len(), ATTEMPTS_KEPT);
        assert_eq!(
            t.attempts[0].number,
            40 - ATTEMPTS_KEPT as u32 + 1,
            "the newest kept"
        );
        assert_eq!(t.attempt_count(), 40);
        let lost = (1..=40).filter(|n| n % 5 == 0).count() as u32;
        let network = (1..=40).filter(|n| n % 5 != 0 && n % 3 == 0).count() as u32;
        assert_eq!(t.counted_attempts(), 40 - lost - network);
        assert_eq!(t.backoff_failures(), 40 - lost);
        // The fold survives the record.
        let back = Transaction::from_record(t.to_record()).unwrap();
        assert_eq!(
            (
                back.counted_attempts(),
                back.backoff_failures(),
                back.attempt_count()
            ),
            (40 - lost - network, 40 - lost, 40)
        );
    }

    #[test]
    fn a_fresh_budget_counts_only_later_attempts_whether_listed_or_folded() {
        let mut t = tx();
        for n in 1..=5 {
            t.record_attempt(attempt(n, Some(ErrorCode::Retriable)));
        }
        t.restart_budget();
        assert_eq!((t.counted_attempts(), t.backoff_failures()), (0, 0));
        // Enough more that the budget's start is folded away too.
        for n in 6..=30 {
            t.record_attempt(attempt(n, Some(ErrorCode::Retriable)));
        }
        assert_eq!(t.attempts.len(), ATTEMPTS_KEPT);
        assert_eq!((t.counted_attempts(), t.backoff_failures()), (25, 25));
        t.restart_budget();
        t.record_attempt(attempt(31, Some(ErrorCode::Retriable)));
        assert_eq!((t.counted_attempts(), t.attempt_count()), (1, 31));
    }

    #[test]
    fn keys_are_distinct_in_first_touched_order() {
        assert_eq!(
            tx().keys,
            vec![Key::new("todos", "1"), Key::new("todos", "2")]
        );
    }

    #[test]
    fn many_mutations_have_their_keys_in_first_touched_order_too() {
        // Past the list search: every third mutation touches a key seen before.
        let mutations: Vec<PendingMutation> = (0..30_000)
            .map(|i| {
                let key = if i % 3 == 2 { i - 2 } else { i }.to_string();
                PendingMutation::insert("todos", &key, json!({ "id": key }))
            })
            .collect();
        let keys = distinct_keys(&mutations);
        assert_eq!(keys.len(), 20_000);
        assert_eq!(
            keys[..3],
            [
                Key::new("todos", "0"),
                Key::new("todos", "1"),
                Key::new("todos", "3")
            ]
        );
        let t = Transaction::new("big".into(), "sync", Strategy::Ordered, mutations, 0);
        assert_eq!(t.keys, keys);
        assert_eq!(t.validate(), Ok(()));
        let mut forged = t.clone();
        forged.keys.swap(0, 1);
        assert!(forged.validate().is_err(), "keys out of order are refused");
    }

    #[test]
    fn records_round_trip() {
        let t = tx();
        assert_eq!(Transaction::from_record(t.to_record()), Ok(t));
    }

    #[test]
    fn stored_text_reads_like_the_value_it_holds() {
        use crate::store::StoredRecord::{Text, Value as Stored};
        let t = tx();
        let text = t.to_record().to_string();
        assert_eq!(Transaction::from_stored(Text(text)), Ok(t.clone()));
        assert_eq!(Transaction::from_stored(Stored(t.to_record())), Ok(t));
        let mut newer = tx().to_record();
        newer["version"] = json!(RECORD_VERSION + 1);
        assert_eq!(
            Transaction::from_stored(Text(newer.to_string())),
            Err(RecordError::Unsupported(u64::from(RECORD_VERSION) + 1))
        );
        let mut unversioned = tx().to_record();
        unversioned.as_object_mut().unwrap().remove("version");
        let mut foreign_keys = tx().to_record();
        foreign_keys["keys"] = json!([]);
        for bad in [
            "{ not json".to_owned(),
            "42".to_owned(),
            unversioned.to_string(),
            foreign_keys.to_string(),
        ] {
            assert!(
                matches!(
                    Transaction::from_stored(Text(bad.clone())),
                    Err(RecordError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn newer_or_missing_versions_are_refused() {
        let mut r = tx().to_record();
        r["version"] = json!(RECORD_VERSION + 1);
        assert_eq!(
            Transaction::from_record(r),
            Err(RecordError::Unsupported(u64::from(RECORD_VERSION) + 1))
        );
        let mut r = tx().to_record();
        r.as_object_mut().unwrap().remove("version");
        assert!(matches!(
            Transaction::from_record(r),
            Err(RecordError::Malformed(_))
        ));
    }

    #[test]
    fn corrupt_records_are_typed_errors() {
        for bad in [
            json!(null),
            json!("text"),
            json!({"version": 1}),
            json!({"version": 1, "id": 3}),
        ] {
            assert!(Transaction::from_record(bad).is_err());
        }
        let mut r = tx().to_record();
        r["keys"] = json!(["other/1"]);
        assert!(matches!(
            Transaction::from_record(r),
            Err(RecordError::Malformed(_))
        ));
    }

    #[test]
    fn an_illegal_move_changes_nothing() {
        let mut t = tx();
        let before = t.clone();
        assert!(t.move_to(TransactionState::Completed, 9).is_err());
        assert_eq!(t, before);
    }
}
