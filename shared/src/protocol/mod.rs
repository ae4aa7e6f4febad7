//! The BroadcastChannel wire protocol between tabs and the leader.
//!
//! Every message is one JSON text: `{"v":2,"app":…,"from":…,"to"?:…,"body":{"<kind>":{…fields}}}`
//! (`"body":"<kind>"` for kinds without fields). The body is externally tagged so that a
//! message decodes in one pass, without buffering it first.
//! Decoding never panics: oversized, malformed, foreign, unknown-version and unknown-kind
//! messages each decode to a typed [`ProtocolError`], which receivers count and drop.

mod codec;
mod lanes;
mod message;

pub use codec::{
    decode, encode, encode_fitting, encode_parts, oversized_transactions, ProtocolError,
    MAX_MESSAGE_BYTES, PART_BYTES, PROTOCOL_VERSION,
};
pub use lanes::{Lanes, MAX_LANES};
pub use message::{Envelope, Message, QueueStats, Request, Response};
