//! The BroadcastChannel wire protocol between tabs and the leader.
//!
//! Every message is one JSON text: `{"v":1,"app":…,"from":…,"to"?:…,"kind":…, …fields}`.
//! Decoding never panics: oversized, malformed, foreign, unknown-version and unknown-kind
//! messages each decode to a typed [`ProtocolError`], which receivers count and drop.

mod codec;
mod message;

pub use codec::{
    decode, encode, encode_fitting, ProtocolError, MAX_MESSAGE_BYTES, PROTOCOL_VERSION,
};
pub use message::{Envelope, Message, QueueStats, Request, Response};
