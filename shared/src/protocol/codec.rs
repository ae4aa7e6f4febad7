//! Encoding and defensive decoding.

use super::{Envelope, Message};
use crate::model::{ErrorCode, Transaction};
use serde::Deserialize;
use serde_json::Value;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest message accepted, in bytes of JSON text.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

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

/// The routing header, read before the body so that version, scope and kind are checked first.
#[derive(Deserialize)]
struct Header {
    v: Option<Value>,
    app: Option<Value>,
    kind: Option<Value>,
}

/// Decodes one message for scope `app`.
pub fn decode(text: &str, app: &str) -> Result<Envelope, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge {
            len: text.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let header: Header =
        serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let v = header
        .v
        .as_ref()
        .and_then(Value::as_u64)
        .ok_or_else(|| ProtocolError::Malformed("no numeric `v`".into()))?;
    if v != u64::from(PROTOCOL_VERSION) {
        return Err(ProtocolError::Unsupported(v));
    }
    match header.app.as_ref().and_then(Value::as_str) {
        Some(a) if a == app => {}
        Some(a) => return Err(ProtocolError::Foreign(a.to_owned())),
        None => return Err(ProtocolError::Malformed("no string `app`".into())),
    }
    let kind = header
        .kind
        .as_ref()
        .and_then(Value::as_str)
        .ok_or_else(|| ProtocolError::Malformed("no string `kind`".into()))?;
    if !Message::KINDS.contains(&kind) {
        return Err(ProtocolError::UnknownKind(kind.chars().take(64).collect()));
    }
    let env: Envelope =
        serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let carried: &[Transaction] = match &env.body {
        Message::Submit { tx, .. } => std::slice::from_ref(&**tx),
        Message::State { txs, .. }
        | Message::Snapshot {
            transactions: txs, ..
        } => txs,
        _ => &[],
    };
    for tx in carried {
        tx.validate()
            .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    }
    Ok(env)
}

/// Encodes one message.
pub fn encode(env: &Envelope) -> String {
    // Every field is plain data with string keys, so serialising cannot fail; an empty string
    // would be dropped by every receiver as malformed.
    serde_json::to_string(env).unwrap_or_default()
}
