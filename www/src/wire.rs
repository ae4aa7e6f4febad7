//! What goes over the wire: incoming transactions (read tolerantly) and the change-feed
//! entries and answers the server sends.

use crate::error::ApiError;
use outbox_shared::model::{nested_within, MAX_ROW_DEPTH};
use outbox_shared::{MutationKind, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;

/// A transaction as the server needs it: its id (also the idempotency key) and its mutations,
/// checked and ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TxIn {
    /// The id and idempotency key.
    pub id: String,
    /// The changes, in order.
    pub mutations: Vec<MutationIn>,
}

/// One checked mutation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MutationIn {
    pub collection: String,
    pub key: String,
    pub kind: MutationKind,
    /// The whole row after the change, when the client sent it.
    pub modified: Option<Value>,
    /// The changed fields (update) or the whole row (insert); `null` when absent.
    pub changes: Value,
}

/// The least a transaction must have, for bodies that are not a full
/// [`outbox_shared::Transaction`] (other clients, or a newer record format).
#[derive(Debug, Deserialize)]
struct LooseTx {
    id: Option<Value>,
    mutations: Option<Vec<LooseMutation>>,
}

#[derive(Debug, Deserialize)]
struct LooseMutation {
    collection: Option<String>,
    key: Option<Value>,
    kind: Option<MutationKind>,
    #[serde(default)]
    modified: Option<Value>,
    #[serde(default)]
    changes: Option<Value>,
}

/// Reads one transaction body. A full shared `Transaction` is checked with its own
/// `validate()`; anything else needs only `id` and `mutations`. Every mutation must name a
/// known collection and a non-empty key, and carry the value its kind needs.
pub(crate) fn parse_tx(body: &[u8], collections: &HashSet<String>) -> Result<TxIn, ApiError> {
    let tx = match serde_json::from_slice::<Transaction>(body) {
        Ok(full) => {
            full.validate()
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            from_full(full)
        }
        Err(_) => {
            let loose: LooseTx = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("not a transaction: {e}")))?;
            from_loose(loose)?
        }
    };
    check(&tx, collections)?;
    Ok(tx)
}

fn from_full(t: Transaction) -> TxIn {
    TxIn {
        id: t.id.0,
        mutations: t
            .mutations
            .iter()
            .map(|m| MutationIn {
                collection: m.collection.clone(),
                key: m.key.clone(),
                kind: m.kind,
                modified: m.modified.as_deref().cloned(),
                changes: Value::clone(&m.changes),
            })
            .collect(),
    }
}

fn from_loose(t: LooseTx) -> Result<TxIn, ApiError> {
    let id = match t.id {
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::bad_request("`id` must be a string")),
        None => return Err(ApiError::bad_request("a transaction needs an `id`")),
    };
    let Some(list) = t.mutations else {
        return Err(ApiError::bad_request("a transaction needs `mutations`"));
    };
    let mut mutations = Vec::with_capacity(list.len());
    for (i, m) in list.into_iter().enumerate() {
        let collection = m
            .collection
            .ok_or_else(|| ApiError::bad_request(format!("mutation {i} has no `collection`")))?;
        let key = match m.key {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            None | Some(Value::Null) => {
                return Err(ApiError::missing_key(format!("mutation {i} has no `key`")))
            }
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "mutation {i}: `key` must be a string"
                )))
            }
        };
        let kind = m.kind.ok_or_else(|| {
            ApiError::bad_request(format!(
                "mutation {i} has no `kind` (insert, update, delete)"
            ))
        })?;
        mutations.push(MutationIn {
            collection,
            key,
            kind,
            modified: m.modified,
            changes: m.changes.unwrap_or(Value::Null),
        });
    }
    Ok(TxIn { id, mutations })
}

/// The longest transaction id and row key taken, in bytes (the client's ids are ~70; both are
/// primary keys, looked up at every write).
pub(crate) const MAX_ID_BYTES: usize = 1024;

fn check(tx: &TxIn, collections: &HashSet<String>) -> Result<(), ApiError> {
    if tx.id.is_empty() {
        return Err(ApiError::bad_request("the transaction id is empty"));
    }
    if tx.id.len() > MAX_ID_BYTES {
        return Err(ApiError::bad_request(format!(
            "the transaction id is over {MAX_ID_BYTES} bytes"
        )));
    }
    if tx.mutations.is_empty() {
        return Err(ApiError::bad_request("a transaction without mutations"));
    }
    for (i, m) in tx.mutations.iter().enumerate() {
        if !collections.contains(&m.collection) {
            return Err(ApiError::unknown_collection(&m.collection));
        }
        if m.key.is_empty() {
            return Err(ApiError::missing_key(format!(
                "mutation {i} has an empty `key`"
            )));
        }
        if m.key.len() > MAX_ID_BYTES {
            return Err(ApiError::bad_request(format!(
                "mutation {i}: the `key` is over {MAX_ID_BYTES} bytes"
            )));
        }
        let too_deep = |v: &Value| !nested_within(v, MAX_ROW_DEPTH);
        if too_deep(&m.changes) || m.modified.as_ref().is_some_and(too_deep) {
            // Taken, it would go out in the change feed inside messages no tab can read.
            return Err(ApiError::bad_request(format!(
                "mutation {i}: a row may nest at most {MAX_ROW_DEPTH} levels"
            )));
        }
        let has_row = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null());
        let needs_value = matches!(m.kind, MutationKind::Insert | MutationKind::Update);
        if needs_value && !has_row(&m.modified) && m.changes.is_null() {
            return Err(ApiError::bad_request(format!(
                "mutation {i} ({:?}) has neither `modified` nor `changes`",
                m.kind
            )));
        }
    }
    Ok(())
}

/// The ids of a batch's items, read as loosely as possible (for request counting).
pub(crate) fn batch_ids(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Ids {
        transactions: Vec<IdOnly>,
    }
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<Value>,
    }
    serde_json::from_slice::<Ids>(body)
        .map(|b| {
            b.transactions
                .into_iter()
                .filter_map(|t| match t.id {
                    Some(Value::String(s)) => Some(s),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One row's change inside a feed entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowChange {
    /// The collection.
    pub collection: String,
    /// The row key.
    pub key: String,
    /// What happened: `insert`, `update` or `delete`.
    pub op: MutationKind,
    /// The row after the change; `null` after a delete.
    pub value: Option<Value>,
}

/// One applied transaction in the change feed. Sequence numbers start at 1 and have no gaps:
/// `prev_seq` is always `seq - 1`, so a client can spot a missing entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEntry {
    /// This entry's server sequence number.
    pub seq: u64,
    /// The one before it.
    pub prev_seq: u64,
    /// The transaction that made it.
    pub tx_id: String,
    /// The rows it changed, in the order of its mutations.
    pub changes: Vec<RowChange>,
    /// The user it was applied for; absent (empty) for the anonymous user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
}

/// The answer to an applied transaction, stored for replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The server sequence number of the change.
    pub seq: u64,
    /// The transaction's id.
    pub tx_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_shared::PendingMutation;
    use serde_json::json;

    fn todos() -> HashSet<String> {
        HashSet::from(["todos".to_owned()])
    }

    #[test]
    fn a_full_shared_transaction_is_read() {
        let t = Transaction::new(
            "t1".into(),
            "http",
            outbox_shared::Strategy::Ordered,
            vec![PendingMutation::insert("todos", "a", json!({"title": "x"}))],
            1,
        );
        let body = serde_json::to_vec(&t).unwrap();
        let tx = parse_tx(&body, &todos()).unwrap();
        assert_eq!(tx.id, "t1");
        assert_eq!(tx.mutations[0].modified, Some(json!({"title": "x"})));
    }

    #[test]
    fn a_loose_transaction_needs_only_id_and_mutations() {
        let body = json!({"id": "t", "mutations": [
            {"collection": "todos", "key": 7, "kind": "update", "changes": {"done": true}}
        ]});
        let tx = parse_tx(body.to_string().as_bytes(), &todos()).unwrap();
        assert_eq!(tx.mutations[0].key, "7");
    }

    #[test]
    fn bad_bodies_get_their_codes() {
        use crate::error::ErrorCode::*;
        let cases = [
            (
                json!({"id": "t", "mutations": [{"collection": "x", "key": "a", "kind": "delete"}]}),
                UnknownCollection,
            ),
            (
                json!({"id": "t", "mutations": [{"collection": "todos", "kind": "delete"}]}),
                MissingKey,
            ),
            (
                json!({"id": "t", "mutations": [{"collection": "todos", "key": "", "kind": "delete"}]}),
                MissingKey,
            ),
            (
                json!({"id": "t", "mutations": [{"collection": "todos", "key": "a", "kind": "insert"}]}),
                BadRequest,
            ),
            (
                json!({"id": "t", "mutations": [{"collection": "todos", "key": "a", "kind": "zap"}]}),
                BadRequest,
            ),
            (json!({"id": "t", "mutations": []}), BadRequest),
            (json!({"mutations": []}), BadRequest),
            (json!([1]), BadRequest),
        ];
        for (body, code) in cases {
            let err = parse_tx(body.to_string().as_bytes(), &todos()).unwrap_err();
            assert_eq!(err.code, code, "{body}");
        }
        assert_eq!(parse_tx(b"{nope", &todos()).unwrap_err().code, BadRequest);
    }

    #[test]
    fn a_row_nested_deeper_than_a_tab_reads_is_refused() {
        let nested = |levels: usize| (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }));
        let body = |row: Value| {
            json!({"id": "t", "mutations": [
                {"collection": "todos", "key": "a", "kind": "insert", "changes": row}
            ]})
            .to_string()
        };
        // Within what serde_json reads whole, but past what a tab reads from the feed.
        let err = parse_tx(body(nested(122)).as_bytes(), &todos()).unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::BadRequest);
        assert!(err.message.contains("64 levels"), "{}", err.message);
        assert!(parse_tx(body(nested(MAX_ROW_DEPTH)).as_bytes(), &todos()).is_ok());
        // A full transaction's `modified` is checked too.
        let deep = Transaction::new(
            "t".into(),
            "sync",
            outbox_shared::Strategy::Ordered,
            vec![PendingMutation::insert(
                "todos",
                "a",
                nested(MAX_ROW_DEPTH + 1),
            )],
            0,
        );
        let text = serde_json::to_string(&deep).unwrap();
        assert!(parse_tx(text.as_bytes(), &todos()).is_err());
    }
}
