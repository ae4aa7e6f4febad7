//! Encoding and defensive decoding.

use super::{Envelope, Message};
use crate::model::{ErrorCode, Transaction, TransactionId};
use serde::Deserialize;
use serde_json::Value;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 2;

/// The largest message accepted, in bytes of JSON text.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The size a sender cuts a large message's parts to ([`encode_parts`]): smaller than what
/// receivers accept, so that a receiver works on the first part of a snapshot while the rest is
/// encoded and sent. Measured on a reload with 10,000 pending (snapshot to view): 4 MiB parts
/// about 320 ms, 512 KiB 280 ms, 256 KiB 305 ms.
pub const PART_BYTES: usize = 512 * 1024;

/// Why a message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON, not an object, or fields of the wrong shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Another protocol version.
    #[error("unsupported protocol version {0}")]
    Unsupported(u64),
    /// For another app or scope.
    #[error("message for another scope: {0}")]
    Foreign(String),
    /// A kind this version does not know.
    #[error("unknown message kind {0:?}")]
    UnknownKind(String),
}

impl ProtocolError {
    /// The stable code reported for this error.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Invalid
    }
}

/// The routing header, read only to say why a message that did not decode was refused.
#[derive(Deserialize)]
struct Header {
    v: Option<Value>,
    app: Option<Value>,
    body: Option<Kind>,
}

/// The kind of a body, `"<kind>"` or `{"<kind>": …}`, without reading what it carries.
struct Kind(String);

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Kind;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a kind, or an object with one kind")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Kind, E> {
                Ok(Kind(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
                let kind: String = map
                    .next_key()?
                    .ok_or_else(|| serde::de::Error::custom("an empty body"))?;
                map.next_value::<serde::de::IgnoredAny>()?;
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Kind(kind))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Decodes one message for scope `app`: one pass over the text for a good message; a message
/// that does not decode is read again for its header to say why.
pub fn decode(text: &str, app: &str) -> Result<Envelope, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge {
            len: text.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let env = match serde_json::from_str::<Envelope>(text) {
        Ok(env) => env,
        Err(e) => return Err(refusal(text, app).unwrap_or_else(|| malformed(&e))),
    };
    if env.v != PROTOCOL_VERSION {
        return Err(ProtocolError::Unsupported(u64::from(env.v)));
    }
    if env.app != app {
        return Err(ProtocolError::Foreign(env.app.chars().take(64).collect()));
    }
    let carried: &[Transaction] = match &env.body {
        Message::Submit { txs, .. }
        | Message::State { txs, .. }
        | Message::Snapshot {
            transactions: txs, ..
        } => txs,
        _ => &[],
    };
    for tx in carried {
        tx.validate()
            .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    }
    match &env.body {
        Message::SyncEntries { entries, .. } => {
            for e in entries {
                e.validate()
                    .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
            }
        }
        Message::SyncRows {
            collection, rows, ..
        } if collection.is_empty() || rows.iter().any(|(k, _)| k.is_empty()) => {
            return Err(ProtocolError::Malformed(
                "sync_rows with an empty collection or key".into(),
            ));
        }
        _ => {}
    }
    Ok(env)
}

fn malformed(e: &impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Malformed(e.to_string())
}

/// Why a message that did not decode is refused, when its header says more than "malformed":
/// another version, another scope, or a kind this version does not know.
fn refusal(text: &str, app: &str) -> Option<ProtocolError> {
    let header: Header = serde_json::from_str(text).ok()?;
    let Some(v) = header.v.as_ref().and_then(Value::as_u64) else {
        return Some(ProtocolError::Malformed("no numeric `v`".into()));
    };
    if v != u64::from(PROTOCOL_VERSION) {
        return Some(ProtocolError::Unsupported(v));
    }
    match header.app.as_ref().and_then(Value::as_str) {
        Some(a) if a == app => {}
        Some(a) => return Some(ProtocolError::Foreign(a.chars().take(64).collect())),
        None => return Some(ProtocolError::Malformed("no string `app`".into())),
    }
    match header.body {
        Some(Kind(kind)) if !Message::KINDS.contains(&kind.as_str()) => {
            Some(ProtocolError::UnknownKind(kind.chars().take(64).collect()))
        }
        Some(_) => None,
        None => Some(ProtocolError::Malformed("no `body`".into())),
    }
}

/// Encodes one message.
pub fn encode(env: &Envelope) -> String {
    // Every field is plain data with string keys, so serialising cannot fail; an empty string
    // would be dropped by every receiver as malformed.
    serde_json::to_string(env).unwrap_or_default()
}

/// The transactions of a `submit` too large for any receiver to take: each alone, in a part
/// of its own, would be over [`MAX_MESSAGE_BYTES`]. They can never reach a leader (a sender
/// finds them when posting a part fails as too large, and fails them itself).
pub fn oversized_transactions(env: &Envelope) -> Vec<(TransactionId, usize)> {
    let Message::Submit { epoch, txs } = &env.body else {
        return Vec::new();
    };
    let frame = encode(&Envelope {
        v: env.v,
        app: env.app.clone(),
        from: env.from.clone(),
        to: env.to.clone(),
        body: Message::Submit {
            epoch: *epoch,
            txs: Vec::new(),
        },
    })
    .len();
    txs.iter()
        .filter_map(|tx| {
            let len = frame + serde_json::to_vec(tx).map_or(usize::MAX - frame, |t| t.len());
            (len > MAX_MESSAGE_BYTES).then(|| (tx.id.clone(), len))
        })
        .collect()
}

/// Encodes one message as one or more texts of at most `max` bytes each: a `submit`, `state`,
/// `durable`, `snapshot`, `sync_entries` or `sync_rows` too large for one message is split into
/// parts (in order; snapshot and rows parts say `more` until the last), so no receiver has to
/// refuse it. Anything else, or a single transaction, entry or row larger than `max`, is
/// encoded whole (receivers then drop it as too large and count it).
pub fn encode_fitting(env: &Envelope, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    encode_parts(env, max, &mut |text| parts.push(text));
    parts
}

/// [`encode_fitting`], handing each part to `emit` as soon as it is complete (a large snapshot's
/// first part can be on its way while the rest is encoded). Every item is encoded once: the
/// parts are put together from the message's text around its list and the items' texts.
pub fn encode_parts(env: &Envelope, max: usize, emit: &mut dyn FnMut(String)) {
    let with = |body: Message| Envelope {
        body,
        ..env.clone()
    };
    match &env.body {
        Message::State { epoch, txs } if txs.len() > 1 => {
            let empty = |_| {
                with(Message::State {
                    epoch: *epoch,
                    txs: Vec::new(),
                })
            };
            pack(env, &empty, "txs", txs, false, max, emit);
        }
        Message::Submit { epoch, txs } if txs.len() > 1 => {
            let empty = |_| {
                with(Message::Submit {
                    epoch: *epoch,
                    txs: Vec::new(),
                })
            };
            pack(env, &empty, "txs", txs, false, max, emit);
        }
        Message::Durable { ids, epoch } if ids.len() > 1 => {
            let empty = |_| {
                with(Message::Durable {
                    ids: Vec::new(),
                    epoch: *epoch,
                })
            };
            pack(env, &empty, "ids", ids, false, max, emit);
        }
        Message::Snapshot {
            epoch,
            transactions,
            more,
            removed,
        } if transactions.len() > 1 => {
            // The removals go with the last part (`more` as the whole says), once.
            let empty = |more| {
                with(Message::Snapshot {
                    epoch: *epoch,
                    transactions: Vec::new(),
                    more,
                    removed: if more { Vec::new() } else { removed.clone() },
                })
            };
            pack(env, &empty, "transactions", transactions, *more, max, emit);
        }
        Message::SyncEntries { epoch, entries } if entries.len() > 1 => {
            let empty = |_| {
                with(Message::SyncEntries {
                    epoch: *epoch,
                    entries: Vec::new(),
                })
            };
            pack(env, &empty, "entries", entries, false, max, emit);
        }
        Message::SyncRows {
            epoch,
            collection,
            seq,
            rows,
            more,
            restart,
        } if rows.len() > 1 => {
            let empty = |more| {
                with(Message::SyncRows {
                    epoch: *epoch,
                    collection: collection.clone(),
                    seq: *seq,
                    rows: Vec::new(),
                    more,
                    restart: *restart,
                })
            };
            pack(env, &empty, "rows", rows, *more, max, emit);
        }
        _ => emit(encode(env)),
    }
}

/// The text of `env` around its empty list `key`: what goes before the items and after them.
fn around(env: &Envelope, key: &str) -> Option<(String, String)> {
    let text = encode(env);
    // Inside a JSON string every `"` is escaped, so the first unescaped `"key":[]` is the field.
    let needle = format!("\"{key}\":[]");
    let at = text.find(&needle)? + needle.len() - 1;
    Some((text[..at].to_owned(), text[at..].to_owned()))
}

/// Puts the texts of `items` (the list of `whole`) into parts of at most `max` bytes (an item too large for any part
/// goes alone), in order. `empty(more)` is the message with an empty list `key`; every part but
/// the last says `more: true`, the last says `last_more`.
fn pack<T: serde::Serialize>(
    whole: &Envelope,
    empty: &dyn Fn(bool) -> Envelope,
    key: &str,
    items: &[T],
    last_more: bool,
    max: usize,
    emit: &mut dyn FnMut(String),
) {
    let (Some((pre, post)), Some((last_pre, last_post))) =
        (around(&empty(true), key), around(&empty(last_more), key))
    else {
        // Not reached (every such message has its list): whole rather than lost.
        return emit(encode(whole));
    };
    let frame = pre.len().max(last_pre.len()) + post.len().max(last_post.len());
    let mut list = String::new();
    for item in items {
        let text = serde_json::to_string(item).unwrap_or_default();
        if !list.is_empty() && frame + list.len() + 1 + text.len() > max {
            emit(format!("{pre}{list}{post}"));
            list.clear();
        }
        if !list.is_empty() {
            list.push(',');
        }
        list.push_str(&text);
    }
    emit(format!("{last_pre}{list}{last_post}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientId, Epoch, PendingMutation, Strategy, TransactionId};
    use crate::sync::{ChangeOp, FeedEntry, RowChange};
    use serde_json::json;

    fn big_tx(n: usize) -> Transaction {
        Transaction::new(
            TransactionId(format!("t{n}")),
            "todos",
            Strategy::Ordered,
            vec![PendingMutation::insert(
                "todos",
                &n.to_string(),
                json!({ "id": n, "blob": "x".repeat(1000) }),
            )],
            0,
        )
    }

    #[test]
    fn a_submit_names_the_transactions_no_receiver_could_take() {
        let huge = |id: &str, bytes: usize| {
            Transaction::new(
                TransactionId(id.into()),
                "todos",
                Strategy::Ordered,
                vec![PendingMutation::insert(
                    "todos",
                    id,
                    json!({ "id": id, "blob": "x".repeat(bytes) }),
                )],
                0,
            )
        };
        // An insert's row is in `changes` and `modified`: 2.1 MB of row is over 4 MiB.
        let txs = vec![big_tx(1), huge("h", 2_100_000), huge("fits", 1_000_000)];
        let env = Envelope::broadcast(
            "todos",
            &ClientId("tab".into()),
            Message::Submit {
                epoch: Epoch(1),
                txs,
            },
        );
        let over = oversized_transactions(&env);
        assert_eq!(over.len(), 1, "{over:?}");
        assert_eq!(over[0].0, TransactionId("h".into()));
        assert!(over[0].1 > MAX_MESSAGE_BYTES);
        // It is what a receiver refuses: alone in its part, too large to decode.
        let parts = encode_parts_vec(&env);
        let refused = parts.iter().filter(|p| decode(p, "todos").is_err()).count();
        assert_eq!(refused, 1, "the part holding it, and only that one");
        // Other kinds have none.
        let heartbeat = Message::Heartbeat {
            epoch: Epoch(1),
            pending: 0,
        };
        let env = Envelope::broadcast("todos", &ClientId("tab".into()), heartbeat);
        assert!(oversized_transactions(&env).is_empty());
    }

    fn encode_parts_vec(env: &Envelope) -> Vec<String> {
        let mut parts = Vec::new();
        encode_parts(env, PART_BYTES, &mut |p| parts.push(p));
        parts
    }

    #[test]
    fn a_snapshot_too_large_for_one_message_goes_in_parts_that_each_decode() {
        let txs: Vec<Transaction> = (0..100).map(big_tx).collect();
        let env = Envelope::broadcast(
            "todos",
            &ClientId("leader".into()),
            Message::Snapshot {
                epoch: Epoch(3),
                transactions: txs.clone(),
                more: false,
                removed: vec!["gone".into()],
            },
        );
        let max = 20_000;
        let parts = encode_fitting(&env, max);
        assert!(parts.len() >= 5, "{} parts", parts.len());
        let (mut got, mut removals) = (Vec::new(), Vec::new());
        for (i, text) in parts.iter().enumerate() {
            assert!(text.len() <= max, "part {i}: {} bytes", text.len());
            let Message::Snapshot {
                transactions,
                more,
                removed,
                ..
            } = decode(text, "todos").unwrap().body
            else {
                panic!("part {i} is not a snapshot");
            };
            assert_eq!(more, i + 1 < parts.len(), "part {i}");
            assert_eq!(removed.is_empty(), more, "removals in the last part only");
            got.extend(transactions);
            removals.extend(removed);
        }
        assert_eq!(got, txs, "every transaction once, in order");
        assert_eq!(removals, [TransactionId::from("gone")]);
    }

    fn entry(seq: u64) -> FeedEntry {
        FeedEntry {
            seq,
            prev_seq: seq - 1,
            tx_id: Some(format!("t{seq}")),
            changes: vec![RowChange {
                collection: "todos".into(),
                key: seq.to_string(),
                op: ChangeOp::Insert,
                value: Some(json!({ "blob": "x".repeat(1000) })),
            }],
        }
    }

    #[test]
    fn sync_messages_round_trip() {
        let leader = ClientId("leader".into());
        for body in [
            Message::SyncEntries {
                epoch: Epoch(2),
                entries: vec![entry(1), entry(2)],
            },
            Message::SyncFrom { applied: 41 },
            Message::FeedCollections {
                epoch: Epoch(2),
                collections: vec!["todos".into()],
            },
            Message::FeedCollections {
                epoch: Epoch(2),
                collections: vec![],
            },
            Message::SyncRows {
                epoch: Epoch(2),
                collection: "todos".into(),
                seq: 9,
                rows: vec![("a".into(), json!({"t": 1}))],
                more: true,
                restart: true,
            },
        ] {
            let env = Envelope::reply("todos", &leader, &ClientId("tab".into()), body);
            assert_eq!(decode(&encode(&env), "todos").unwrap(), env);
        }
    }

    #[test]
    fn malformed_sync_messages_are_dropped() {
        let bad = [
            r#"{"v":2,"app":"todos","from":"l","body":{"sync_entries":{"epoch":1,"entries":[{"seq":2,"prevSeq":2,"changes":[]}]}}}"#,
            r#"{"v":2,"app":"todos","from":"l","body":{"sync_entries":{"epoch":1,"entries":[{"seq":2,"prevSeq":1,"changes":[{"collection":"c","key":"k","op":"insert"}]}]}}}"#,
            r#"{"v":2,"app":"todos","from":"l","body":{"sync_entries":{"epoch":1}}}"#,
            r#"{"v":2,"app":"todos","from":"l","body":{"sync_from":{"applied":-1}}}"#,
            r#"{"v":2,"app":"todos","from":"l","body":{"sync_rows":{"epoch":1,"collection":"c","seq":1,"rows":[["",1]]}}}"#,
            r#"{"v":2,"app":"todos","from":"l","body":{"sync_rows":{"epoch":1,"collection":"c","seq":1,"rows":[{"key":"a"}]}}}"#,
            r#"{"v":2,"app":"todos","from":"l","body":{"sync_rows":{"epoch":1,"collection":"","seq":1,"rows":[]}}}"#,
        ];
        for text in bad {
            assert!(
                matches!(decode(text, "todos"), Err(ProtocolError::Malformed(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn large_sync_entries_and_rows_go_in_parts_that_each_decode() {
        let leader = ClientId("leader".into());
        let entries: Vec<FeedEntry> = (1..=50).map(entry).collect();
        let env = Envelope::broadcast(
            "todos",
            &leader,
            Message::SyncEntries {
                epoch: Epoch(1),
                entries: entries.clone(),
            },
        );
        let parts = encode_fitting(&env, 10_000);
        assert!(parts.len() >= 5);
        let mut got = Vec::new();
        for p in &parts {
            assert!(p.len() <= 10_000);
            let Message::SyncEntries { entries, .. } = decode(p, "todos").unwrap().body else {
                panic!("not entries")
            };
            got.extend(entries);
        }
        assert_eq!(got, entries);

        let rows: Vec<(String, Value)> = (0..50)
            .map(|i| (i.to_string(), json!({ "blob": "y".repeat(1000) })))
            .collect();
        let env = Envelope::broadcast(
            "todos",
            &leader,
            Message::SyncRows {
                epoch: Epoch(1),
                collection: "todos".into(),
                seq: 5,
                rows: rows.clone(),
                more: false,
                restart: false,
            },
        );
        let parts = encode_fitting(&env, 10_000);
        let mut got = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= 10_000);
            let Message::SyncRows {
                rows, more, seq, ..
            } = decode(p, "todos").unwrap().body
            else {
                panic!("not rows")
            };
            assert_eq!((more, seq), (i + 1 < parts.len(), 5), "part {i}");
            got.extend(rows);
        }
        assert_eq!(got, rows);
    }

    #[test]
    fn refusals_say_why() {
        type Expect = fn(&ProtocolError) -> bool;
        let cases: [(&str, Expect); 9] = [
            (r#"{"v":3,"app":"todos","from":"x","body":"hello"}"#, |e| {
                matches!(e, ProtocolError::Unsupported(3))
            }),
            (r#"{"v":1,"app":"todos","from":"x","kind":"hello"}"#, |e| {
                matches!(e, ProtocolError::Unsupported(1))
            }),
            (
                r#"{"v":2,"app":"other","from":"x","body":"hello"}"#,
                |e| matches!(e, ProtocolError::Foreign(a) if a == "other"),
            ),
            (
                r#"{"v":2,"app":"todos","from":"x","body":{"gossip":{"a":1}}}"#,
                |e| matches!(e, ProtocolError::UnknownKind(k) if k == "gossip"),
            ),
            (
                r#"{"v":2,"app":"todos","from":"x","body":"gossip"}"#,
                |e| matches!(e, ProtocolError::UnknownKind(k) if k == "gossip"),
            ),
            (
                r#"{"v":2,"app":"todos","from":"x","body":{"state":{"epoch":"no","txs":1}}}"#,
                |e| matches!(e, ProtocolError::Malformed(_)),
            ),
            (r#"{"v":2,"app":"todos","from":"x"}"#, |e| {
                matches!(e, ProtocolError::Malformed(_))
            }),
            (r#"{"app":"todos","from":"x","body":"hello"}"#, |e| {
                matches!(e, ProtocolError::Malformed(_))
            }),
            ("[1,2", |e| matches!(e, ProtocolError::Malformed(_))),
        ];
        for (text, expected) in cases {
            let got = decode(text, "todos");
            assert!(got.as_ref().is_err_and(expected), "{text}: {got:?}");
        }
    }

    #[test]
    fn every_kind_round_trips_and_bodies_are_tagged_by_kind() {
        let tx = big_tx(1);
        let bodies = [
            Message::Hello,
            Message::Leader { epoch: Epoch(1) },
            Message::Heartbeat {
                epoch: Epoch(1),
                pending: 2,
            },
            Message::Resign { epoch: Epoch(1) },
            Message::Submit {
                epoch: Epoch(1),
                txs: vec![tx.clone()],
            },
            Message::Durable {
                ids: vec![tx.id.clone()],
                epoch: Epoch(1),
            },
            Message::State {
                epoch: Epoch(1),
                txs: vec![tx.clone()],
            },
            Message::SnapshotRequest,
            Message::Snapshot {
                epoch: Epoch(1),
                transactions: vec![tx],
                more: true,
                removed: vec![],
            },
            Message::Ping { nonce: 7 },
            Message::Pong { nonce: 7 },
            Message::NotifyOnline,
            Message::Visible,
            Message::Request {
                req: 1,
                op: crate::protocol::Request::SignOut { discard: true },
            },
            Message::Response {
                req: 1,
                result: crate::protocol::Response::Done,
            },
            Message::CredentialsNeeded { epoch: Epoch(1) },
            Message::SignedOut { epoch: Epoch(1) },
        ];
        for body in bodies {
            let kind = body.kind();
            let env = Envelope::reply("todos", &ClientId("l".into()), &ClientId("t".into()), body);
            let text = encode(&env);
            let json: Value = serde_json::from_str(&text).unwrap();
            let tagged = json["body"].as_str() == Some(kind) || json["body"].get(kind).is_some();
            assert!(tagged, "{kind}: {text}");
            assert_eq!(decode(&text, "todos").unwrap(), env, "{kind}");
        }
    }

    #[test]
    fn small_messages_are_one_text_and_states_split_too() {
        let small = Envelope::broadcast("todos", &ClientId("l".into()), Message::Hello);
        assert_eq!(encode_fitting(&small, 1000), vec![encode(&small)]);
        let state = Envelope::broadcast(
            "todos",
            &ClientId("l".into()),
            Message::State {
                epoch: Epoch(1),
                txs: (0..10).map(big_tx).collect(),
            },
        );
        let parts = encode_fitting(&state, 3_000);
        assert_eq!(parts.len(), 10);
        assert!(parts.iter().all(|p| decode(p, "todos").is_ok()));
        // One that fits is put together byte for byte as it encodes whole.
        assert_eq!(encode_fitting(&state, 1 << 20), vec![encode(&state)]);
        let snapshot = Envelope::reply(
            "todos",
            &ClientId("l".into()),
            &ClientId("tab \"1\"".into()),
            Message::Snapshot {
                epoch: Epoch(1),
                transactions: (0..3).map(big_tx).collect(),
                more: true,
                removed: vec![],
            },
        );
        assert_eq!(encode_fitting(&snapshot, 1 << 20), vec![encode(&snapshot)]);
    }
}
