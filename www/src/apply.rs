//! Applying one transaction inside an open SQLite transaction: the idempotency check (a key
//! belongs to the user who first applied it), the row changes, the change-feed entry and the
//! stored answer. The caller wraps each call in a
//! savepoint and rolls it back unless the outcome is [`Outcome::Applied`].

use crate::db::to_i64;
use crate::error::ApiError;
use crate::wire::{Applied, ChangeEntry, MutationIn, RowChange, TxIn};
use outbox_shared::MutationKind;
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

/// The HTTP status of an applied transaction's answer.
pub(crate) const APPLIED_STATUS: u16 = 200;

/// What became of one transaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Applied now, as change `seq`.
    Applied {
        /// Its server sequence number.
        seq: u64,
        /// The transaction's id.
        tx_id: String,
        /// The answer (`{"seq","txId"}`), as stored for replays.
        body: String,
        /// The change-feed entry, as JSON.
        entry: String,
        /// The rows it touched, `collection/key`, in mutation order.
        row_keys: Vec<String>,
    },
    /// Applied before: the first answer, applied nothing.
    Replayed {
        /// The first answer's status.
        status: u16,
        /// The first answer's body.
        body: String,
    },
    /// Not applied; nothing written.
    Refused(ApiError),
}

/// The most a transaction's change-feed entry may hold of rows, in bytes of JSON: clients
/// read the feed's entries in messages of at most
/// [`outbox_shared::protocol::MAX_MESSAGE_BYTES`], with room left for the message around it.
pub(crate) const MAX_ENTRY_BYTES: usize = outbox_shared::protocol::MAX_MESSAGE_BYTES - 256 * 1024;

/// Applies `tx` for `user` (`""` = anonymous) as change number `seq`, unless its id was
/// applied before: then the same user gets the first answer, and another user is refused with
/// `403 IDEMPOTENCY_KEY_OF_ANOTHER_USER`. Keys stored before users existed (`NULL`) are the
/// anonymous user's.
pub(crate) fn apply_tx(
    conn: &Connection,
    tx: &TxIn,
    seq: u64,
    user: &str,
) -> Result<Outcome, ApiError> {
    if let Some((owner, status, body)) = conn
        .prepare_cached("SELECT user, status, body FROM idempotency WHERE key = ?1")?
        .query_row([&tx.id], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, u16>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .optional()?
    {
        if owner.as_deref().unwrap_or_default() != user {
            return Ok(Outcome::Refused(ApiError::key_of_another_user(&tx.id)));
        }
        return Ok(Outcome::Replayed { status, body });
    }

    let mut changes = Vec::with_capacity(tx.mutations.len());
    let mut row_keys = Vec::with_capacity(tx.mutations.len());
    // The entry's size as it grows (each change holds its whole row): refused before it is
    // built past what a client reads in one message.
    let mut entry_bytes = 0usize;
    for (i, m) in tx.mutations.iter().enumerate() {
        let value = match m.kind {
            MutationKind::Delete => {
                conn.prepare_cached("DELETE FROM rows WHERE collection = ?1 AND key = ?2")?
                    .execute((&m.collection, &m.key))?;
                None
            }
            MutationKind::Insert | MutationKind::Update => {
                let current = if m.kind == MutationKind::Update {
                    current_row(conn, m)?
                } else {
                    None
                };
                let Some(row) = new_row(m, current) else {
                    return Ok(Outcome::Refused(ApiError::bad_request(format!(
                        "mutation {i}: an update of a missing row needs `modified` or object `changes`"
                    ))));
                };
                let text = serde_json::to_string(&row)
                    .map_err(|e| ApiError::internal(format!("row to JSON: {e}")))?;
                entry_bytes = entry_bytes.saturating_add(text.len());
                if entry_bytes > MAX_ENTRY_BYTES {
                    return Ok(Outcome::Refused(ApiError::entry_too_large(MAX_ENTRY_BYTES)));
                }
                conn.prepare_cached(
                    "INSERT INTO rows (collection, key, value, seq, by_user)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (collection, key) DO UPDATE
                     SET value = excluded.value, seq = excluded.seq, by_user = excluded.by_user",
                )?
                .execute((&m.collection, &m.key, &text, to_i64(seq), user))?;
                Some(row)
            }
        };
        row_keys.push(format!("{}/{}", m.collection, m.key));
        changes.push(RowChange {
            collection: m.collection.clone(),
            key: m.key.clone(),
            op: m.kind,
            value,
        });
    }

    let entry = ChangeEntry {
        seq,
        prev_seq: seq.saturating_sub(1),
        tx_id: tx.id.clone(),
        changes,
        by: user.to_owned(),
    };
    let entry = serde_json::to_string(&entry)
        .map_err(|e| ApiError::internal(format!("entry to JSON: {e}")))?;
    let body = serde_json::to_string(&Applied {
        seq,
        tx_id: tx.id.clone(),
    })
    .map_err(|e| ApiError::internal(format!("answer to JSON: {e}")))?;
    conn.prepare_cached("INSERT INTO changes (seq, tx_id, payload) VALUES (?1, ?2, ?3)")?
        .execute((to_i64(seq), &tx.id, &entry))?;
    conn.prepare_cached(
        "INSERT INTO idempotency (key, user, status, body, seq) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((&tx.id, user, APPLIED_STATUS, &body, to_i64(seq)))?;
    Ok(Outcome::Applied {
        seq,
        tx_id: tx.id.clone(),
        body,
        entry,
        row_keys,
    })
}

fn current_row(conn: &Connection, m: &MutationIn) -> Result<Option<Value>, ApiError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM rows WHERE collection = ?1 AND key = ?2")?
        .query_row((&m.collection, &m.key), |r| r.get(0))
        .optional()?;
    match text {
        Some(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| ApiError::internal(format!("stored row is not JSON: {e}"))),
        None => Ok(None),
    }
}

/// The row after an insert or update: an insert sets `modified` (or `changes`); an update
/// merges object `changes` over the current row, field by field, and falls back to
/// `modified` when the row is missing or `changes` is absent.
fn new_row(m: &MutationIn, current: Option<Value>) -> Option<Value> {
    let modified = m.modified.clone().filter(|v| !v.is_null());
    if m.kind == MutationKind::Insert {
        return modified.or_else(|| Some(m.changes.clone()).filter(|v| !v.is_null()));
    }
    match (current, &m.changes) {
        (Some(Value::Object(base)), Value::Object(delta)) => {
            Some(Value::Object(merge(base, delta)))
        }
        (Some(_), Value::Null) | (None, _) => {
            modified.or_else(|| Some(m.changes.clone()).filter(Value::is_object))
        }
        (Some(_), other) => Some(other.clone()),
    }
}

fn merge(mut base: Map<String, Value>, delta: &Map<String, Value>) -> Map<String, Value> {
    for (k, v) in delta {
        base.insert(k.clone(), v.clone());
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(kind: MutationKind, modified: Option<Value>, changes: Value) -> MutationIn {
        MutationIn {
            collection: "todos".into(),
            key: "a".into(),
            kind,
            modified,
            changes,
        }
    }

    #[test]
    fn update_merges_over_the_current_row() {
        let u = m(
            MutationKind::Update,
            Some(json!({"t": "old", "done": true})),
            json!({"done": true}),
        );
        let now = json!({"t": "newer", "done": false});
        assert_eq!(
            new_row(&u, Some(now)),
            Some(json!({"t": "newer", "done": true}))
        );
        assert_eq!(new_row(&u, None), Some(json!({"t": "old", "done": true})));
    }

    #[test]
    fn insert_sets_modified_or_changes() {
        let i = m(MutationKind::Insert, None, json!({"t": 1}));
        assert_eq!(new_row(&i, None), Some(json!({"t": 1})));
        let i = m(MutationKind::Insert, Some(json!({"t": 2})), json!({"t": 1}));
        assert_eq!(new_row(&i, None), Some(json!({"t": 2})));
    }

    #[test]
    fn update_of_a_missing_row_without_a_whole_row_is_refused() {
        let u = m(MutationKind::Update, None, json!(5));
        assert_eq!(new_row(&u, None), None);
    }
}
