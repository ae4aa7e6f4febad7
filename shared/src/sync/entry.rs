//! What the server's change feed and snapshot endpoints send, read defensively.
//!
//! - `GET /api/<collection>` → `{"seq": n, "rows": [{"key": k, "value": row, "seq": m}, …]}`
//!   ([`CollectionSnapshot::parse`]);
//! - `GET /api/changes?since=N&limit=M` → `{"seq": n, "changes": [entry, …]}`
//!   ([`parse_range`]);
//! - the SSE feed's `change` events, one entry each ([`parse_entry`]).
//!
//! An entry is `{"seq": n, "prevSeq": p, "txId": id|null, "changes": [{"collection", "key",
//! "op": "insert"|"update"|"delete", "value": row|null}]}`. Fields the server adds (`by`) are
//! ignored. Parsing never panics: anything else is a [`FeedError`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a body from the server was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// Not JSON, or fields of the wrong shape.
    #[error("malformed feed data: {0}")]
    Malformed(String),
    /// An entry whose sequence number does not follow its previous one.
    #[error("entry {seq} names {prev_seq} as its previous sequence number")]
    BadSequence {
        /// The entry's sequence number.
        seq: u64,
        /// The previous one it names.
        prev_seq: u64,
    },
    /// An insert or update without the row it writes.
    #[error("entry {seq}: change {index} ({op:?}) has no value")]
    MissingValue {
        /// The entry's sequence number.
        seq: u64,
        /// The change's position in the entry.
        index: usize,
        /// Its operation.
        op: ChangeOp,
    },
    /// A change without a collection or key.
    #[error("entry {seq}: change {index} has an empty collection or key")]
    EmptyKey {
        /// The entry's sequence number.
        seq: u64,
        /// The change's position in the entry.
        index: usize,
    },
}

/// What a change did to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// A new row.
    Insert,
    /// A changed row (`value` is the whole row after the change).
    Update,
    /// The row went away.
    Delete,
}

/// One row's change inside a [`FeedEntry`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowChange {
    /// The collection.
    pub collection: String,
    /// The row key.
    pub key: String,
    /// Insert, update or delete.
    pub op: ChangeOp,
    /// The whole row after the change; `None` (`null`) after a delete.
    #[serde(default)]
    pub value: Option<Value>,
}

impl RowChange {
    /// The row after the change: `None` for a delete.
    pub fn row(&self) -> Option<&Value> {
        match self.op {
            ChangeOp::Delete => None,
            ChangeOp::Insert | ChangeOp::Update => self.value.as_ref(),
        }
    }
}

/// One server transaction in the change feed, with its place in the sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedEntry {
    /// Its server sequence number.
    pub seq: u64,
    /// The sequence number of the entry before it (`0` for the first). A receiver that has
    /// applied exactly up to `prev_seq` may apply this entry; otherwise something is missing.
    pub prev_seq: u64,
    /// The transaction that made it, when the server names one.
    #[serde(default)]
    pub tx_id: Option<String>,
    /// The rows it changed, in order.
    pub changes: Vec<RowChange>,
}

impl FeedEntry {
    /// Checks what serde cannot: `prev_seq < seq`, a value on every insert and update, and a
    /// non-empty collection and key on every change.
    pub fn validate(&self) -> Result<(), FeedError> {
        if self.prev_seq >= self.seq {
            return Err(FeedError::BadSequence {
                seq: self.seq,
                prev_seq: self.prev_seq,
            });
        }
        for (index, c) in self.changes.iter().enumerate() {
            if c.collection.is_empty() || c.key.is_empty() {
                return Err(FeedError::EmptyKey {
                    seq: self.seq,
                    index,
                });
            }
            if c.op != ChangeOp::Delete && c.value.as_ref().is_none_or(Value::is_null) {
                return Err(FeedError::MissingValue {
                    seq: self.seq,
                    index,
                    op: c.op,
                });
            }
        }
        Ok(())
    }
}

/// Reads one feed entry (the data of an SSE `change` event) and validates it.
pub fn parse_entry(text: &str) -> Result<FeedEntry, FeedError> {
    let entry: FeedEntry = from_json(text)?;
    entry.validate()?;
    Ok(entry)
}

/// The body of `GET /api/changes`: entries after some number, and the server's current one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRange {
    /// The server's current (highest) sequence number.
    pub seq: u64,
    /// The entries, in order.
    pub changes: Vec<FeedEntry>,
}

/// Reads a `GET /api/changes` body and validates every entry in it.
pub fn parse_range(text: &str) -> Result<ChangeRange, FeedError> {
    let range: ChangeRange = from_json(text)?;
    for e in &range.changes {
        e.validate()?;
    }
    Ok(range)
}

/// A collection's rows at one server sequence number (`GET /api/<collection>`).
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSnapshot {
    /// The collection.
    pub collection: String,
    /// The server sequence number the rows are current at.
    pub seq: u64,
    /// The rows, as (key, row).
    pub rows: Vec<(String, Value)>,
}

#[derive(Deserialize)]
struct SnapshotBody {
    seq: u64,
    rows: Vec<SnapshotRow>,
}

#[derive(Deserialize)]
struct SnapshotRow {
    key: String,
    value: Value,
}

impl CollectionSnapshot {
    /// Reads the body of `GET /api/<collection>` for `collection`.
    pub fn parse(collection: &str, text: &str) -> Result<Self, FeedError> {
        let body: SnapshotBody = from_json(text)?;
        let mut rows = Vec::with_capacity(body.rows.len());
        for (i, r) in body.rows.into_iter().enumerate() {
            if r.key.is_empty() {
                return Err(FeedError::Malformed(format!("row {i} has an empty key")));
            }
            rows.push((r.key, r.value));
        }
        Ok(Self {
            collection: collection.to_owned(),
            seq: body.seq,
            rows,
        })
    }
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, FeedError> {
    serde_json::from_str(text).map_err(|e| FeedError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_entry_as_the_server_writes_it_reads_and_writes_back_the_same() {
        let text = r#"{"seq":7,"prevSeq":6,"txId":"t1","changes":[
            {"collection":"todos","key":"a","op":"insert","value":{"title":"x"}},
            {"collection":"todos","key":"b","op":"delete","value":null}],"by":"alice"}"#;
        let e = parse_entry(text).unwrap();
        assert_eq!(e.seq, 7);
        assert_eq!(e.prev_seq, 6);
        assert_eq!(e.tx_id.as_deref(), Some("t1"));
        assert_eq!(e.changes[0].row(), Some(&json!({"title": "x"})));
        assert_eq!(e.changes[1].row(), None);
        let back = serde_json::to_value(&e).unwrap();
        assert_eq!(back["prevSeq"], 6);
        assert_eq!(back["txId"], "t1");
        assert_eq!(back["changes"][1]["op"], "delete");
    }

    #[test]
    fn a_null_or_absent_tx_id_and_a_delete_without_value_are_fine() {
        let e = parse_entry(
            r#"{"seq":1,"prevSeq":0,"txId":null,"changes":[{"collection":"c","key":"k","op":"delete"}]}"#,
        )
        .unwrap();
        assert_eq!(e.tx_id, None);
        assert!(parse_entry(r#"{"seq":1,"prevSeq":0,"changes":[]}"#).is_ok());
    }

    #[test]
    fn malformed_entries_are_typed_errors() {
        let cases = [
            ("", "malformed"),
            ("[]", "malformed"),
            (r#"{"seq":-1,"prevSeq":0,"changes":[]}"#, "malformed"),
            (r#"{"seq":1,"changes":[]}"#, "malformed"),
            (
                r#"{"seq":1,"prevSeq":0,"changes":[{"collection":"c","key":"k","op":"zap"}]}"#,
                "malformed",
            ),
            (r#"{"seq":3,"prevSeq":3,"changes":[]}"#, "sequence"),
            (
                r#"{"seq":3,"prevSeq":2,"changes":[{"collection":"c","key":"k","op":"insert"}]}"#,
                "value",
            ),
            (
                r#"{"seq":3,"prevSeq":2,"changes":[{"collection":"c","key":"k","op":"update","value":null}]}"#,
                "value",
            ),
            (
                r#"{"seq":3,"prevSeq":2,"changes":[{"collection":"c","key":"","op":"delete"}]}"#,
                "empty",
            ),
        ];
        for (text, what) in cases {
            let err = parse_entry(text).unwrap_err();
            let ok = match what {
                "malformed" => matches!(err, FeedError::Malformed(_)),
                "sequence" => matches!(err, FeedError::BadSequence { .. }),
                "value" => matches!(err, FeedError::MissingValue { .. }),
                _ => matches!(err, FeedError::EmptyKey { .. }),
            };
            assert!(ok, "{text}: {err:?}");
        }
    }

    #[test]
    fn a_range_and_a_snapshot_read_from_the_server_bodies() {
        let r =
            parse_range(r#"{"seq":9,"changes":[{"seq":9,"prevSeq":8,"txId":"t","changes":[]}]}"#)
                .unwrap();
        assert_eq!((r.seq, r.changes.len()), (9, 1));
        assert!(
            parse_range(r#"{"seq":9,"changes":[{"seq":9,"prevSeq":9,"changes":[]}]}"#).is_err()
        );
        let s = CollectionSnapshot::parse(
            "todos",
            r#"{"seq":4,"rows":[{"key":"a","value":{"t":1},"seq":2,"by":"bob"}]}"#,
        )
        .unwrap();
        assert_eq!(s.seq, 4);
        assert_eq!(s.rows, vec![("a".to_owned(), json!({"t": 1}))]);
        assert!(CollectionSnapshot::parse("todos", r#"{"rows":[]}"#).is_err());
        assert!(
            CollectionSnapshot::parse("todos", r#"{"seq":1,"rows":[{"key":"","value":1}]}"#)
                .is_err()
        );
    }
}
