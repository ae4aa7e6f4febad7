//! The protocol's BroadcastChannel: `outbox:<scope>`, one JSON text per message.
//!
//! [`Channel`] posts [`Envelope`]s and delivers the ones meant for this context, as a callback
//! ([`Channel::open`]) or as a stream ([`Channel::open_stream`]). Everything else is counted by
//! [`DropReason`] and dropped, never thrown: data that is not a string, every
//! [`ProtocolError`], and replies addressed to another context. The sorting itself is
//! [`Inbox`], which has no browser dependency and is tested natively.
//!
//! A `BroadcastChannel` never delivers a message to the object that posted it, but does deliver it
//! to every other object of the same name in the same origin, this context included.

use crate::convert::JsErrorInfo;
use futures_channel::mpsc;
use outbox_shared::model::ClientId;
use outbox_shared::protocol::{self, Envelope, ProtocolError};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};

/// The name of the BroadcastChannel for `scope`.
pub fn channel_name(scope: &str) -> String {
    format!("outbox:{scope}")
}

/// Why an incoming message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The data was not a string, nor an `ArrayBuffer` of UTF-8 text (a number, an object, a
    /// `Blob`, …).
    NotText,
    /// Larger than [`protocol::MAX_MESSAGE_BYTES`].
    TooLarge,
    /// Not JSON, or not an envelope of the expected shape.
    Malformed,
    /// Another protocol version.
    Unsupported,
    /// For another scope.
    Foreign,
    /// A kind this version does not know.
    UnknownKind,
    /// A well-formed reply addressed to another context. Not an error: just not ours.
    NotForMe,
}

impl From<&ProtocolError> for DropReason {
    fn from(e: &ProtocolError) -> Self {
        match e {
            ProtocolError::TooLarge { .. } => Self::TooLarge,
            ProtocolError::Malformed(_) => Self::Malformed,
            ProtocolError::Unsupported(_) => Self::Unsupported,
            ProtocolError::Foreign(_) => Self::Foreign,
            ProtocolError::UnknownKind(_) => Self::UnknownKind,
        }
    }
}

/// How many incoming messages were dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// [`DropReason::NotText`].
    pub not_text: u64,
    /// [`DropReason::TooLarge`].
    pub too_large: u64,
    /// [`DropReason::Malformed`].
    pub malformed: u64,
    /// [`DropReason::Unsupported`].
    pub unsupported: u64,
    /// [`DropReason::Foreign`].
    pub foreign: u64,
    /// [`DropReason::UnknownKind`].
    pub unknown_kind: u64,
    /// [`DropReason::NotForMe`].
    pub not_for_me: u64,
}

impl DropCounts {
    /// Counts one drop.
    pub fn count(&mut self, reason: DropReason) {
        let n = match reason {
            DropReason::NotText => &mut self.not_text,
            DropReason::TooLarge => &mut self.too_large,
            DropReason::Malformed => &mut self.malformed,
            DropReason::Unsupported => &mut self.unsupported,
            DropReason::Foreign => &mut self.foreign,
            DropReason::UnknownKind => &mut self.unknown_kind,
            DropReason::NotForMe => &mut self.not_for_me,
        };
        *n = n.saturating_add(1);
    }

    /// Messages dropped as invalid: every reason but [`DropReason::NotForMe`].
    pub fn invalid(&self) -> u64 {
        [
            self.not_text,
            self.too_large,
            self.malformed,
            self.unsupported,
            self.foreign,
            self.unknown_kind,
        ]
        .iter()
        .fold(0u64, |a, n| a.saturating_add(*n))
    }
}

/// What an incoming message's data turned out to be, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageData {
    /// A string.
    Text(String),
    /// A string known to be too large without reading it (its UTF-16 length alone exceeds the
    /// byte limit, and UTF-8 is never shorter).
    TooLarge,
    /// Anything but a string.
    NotText,
}

/// Sorts incoming data for one context: delivers envelopes meant for it, counts the rest.
#[derive(Debug, Clone)]
pub struct Inbox {
    scope: String,
    me: ClientId,
    drops: Rc<Cell<DropCounts>>,
}

impl Inbox {
    /// An inbox for context `me` on `scope`.
    pub fn new(scope: &str, me: ClientId) -> Self {
        Self {
            scope: scope.to_owned(),
            me,
            drops: Rc::default(),
        }
    }

    /// The envelope in `data` if it is meant for this context; otherwise counts why not.
    pub fn accept(&self, data: MessageData) -> Option<Envelope> {
        let text = match data {
            MessageData::Text(text) => text,
            MessageData::TooLarge => return self.drop_for(DropReason::TooLarge),
            MessageData::NotText => return self.drop_for(DropReason::NotText),
        };
        match protocol::decode(&text, &self.scope) {
            Err(e) => self.drop_for(DropReason::from(&e)),
            Ok(env) if !env.is_for(&self.me) => self.drop_for(DropReason::NotForMe),
            Ok(env) => Some(env),
        }
    }

    /// What has been dropped so far.
    pub fn drops(&self) -> DropCounts {
        self.drops.get()
    }

    /// The scope it accepts.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The context it accepts replies for.
    pub fn me(&self) -> &ClientId {
        &self.me
    }

    fn drop_for(&self, reason: DropReason) -> Option<Envelope> {
        let mut counts = self.drops.get();
        counts.count(reason);
        self.drops.set(counts);
        None
    }
}

/// What went wrong with the channel itself (not with a message: those are counted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// `new BroadcastChannel()` threw (no BroadcastChannel in this context).
    #[error("cannot open BroadcastChannel {name:?}: {cause}")]
    Open {
        /// The channel's name.
        name: String,
        /// What JS threw.
        cause: JsErrorInfo,
    },
    /// `postMessage` threw (for example on a closed channel).
    #[error("cannot post on BroadcastChannel: {0}")]
    Post(JsErrorInfo),
    /// A part larger than any receiver takes ([`protocol::MAX_MESSAGE_BYTES`]: a single
    /// transaction, entry or row that big) was not posted; the rest of the message was.
    #[error("a part of {len} bytes is larger than any receiver takes")]
    TooLarge {
        /// The part's size.
        len: usize,
    },
}

/// The envelopes delivered to a channel opened with [`Channel::open_stream`]. Ends when the
/// channel is dropped.
pub type Incoming = mpsc::UnboundedReceiver<Envelope>;

/// A `BroadcastChannel` named `outbox:<scope>` speaking the wire protocol.
///
/// Dropping it removes its listener and closes the underlying channel.
#[derive(Debug)]
pub struct Channel {
    raw: BroadcastChannel,
    inbox: Inbox,
    on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Channel {
    /// Opens the channel for `scope` as context `me`, calling `deliver` with every envelope
    /// meant for this context, in arrival order. `deliver` runs in the message event; it may post
    /// on the channel.
    pub fn open(
        scope: &str,
        me: ClientId,
        mut deliver: impl FnMut(Envelope) + 'static,
    ) -> Result<Self, ChannelError> {
        let name = channel_name(scope);
        let raw = BroadcastChannel::new(&name).map_err(|e| ChannelError::Open {
            name: name.clone(),
            cause: JsErrorInfo::from_js(&e),
        })?;
        let inbox = Inbox::new(scope, me);
        let sorter = inbox.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(env) = sorter.accept(read_data(&event.data())) {
                deliver(env);
            }
        });
        raw.add_event_listener_with_callback("message", on_message.as_ref().unchecked_ref())
            .map_err(|e| ChannelError::Open {
                name,
                cause: JsErrorInfo::from_js(&e),
            })?;
        Ok(Self {
            raw,
            inbox,
            on_message,
        })
    }

    /// Opens the channel for `scope` as context `me`, delivering envelopes meant for this
    /// context as a stream.
    pub fn open_stream(scope: &str, me: ClientId) -> Result<(Self, Incoming), ChannelError> {
        let (tx, rx) = mpsc::unbounded();
        let channel = Self::open(scope, me, move |env| {
            // The receiver may be gone (the app stopped listening); the message is then dropped
            // like any other nobody waits for.
            let _ = tx.unbounded_send(env);
        })?;
        Ok((channel, rx))
    }

    /// Posts `env` to every other context on the channel, as JSON text.
    pub fn post(&self, env: &Envelope) -> Result<(), ChannelError> {
        post_in_parts(env, |text| self.post_data(&JsValue::from_str(&text)))
    }

    /// Posts `data` as it is: one part of [`Channel::post`], or a message that came in on a
    /// [`crate::lane::Port`], passed on.
    pub fn post_data(&self, data: &JsValue) -> Result<(), ChannelError> {
        self.raw
            .post_message(data)
            .map_err(|e| ChannelError::Post(JsErrorInfo::from_js(&e)))
    }

    /// The envelope in `data` (from a port, say) if it is meant for this context, sorted and
    /// counted like the channel's own messages.
    pub fn accept(&self, data: &JsValue) -> Option<Envelope> {
        self.inbox.accept(read_data(data))
    }

    /// Incoming messages dropped so far, by reason.
    pub fn drops(&self) -> DropCounts {
        self.inbox.drops()
    }

    /// The scope this channel speaks for.
    pub fn scope(&self) -> &str {
        self.inbox.scope()
    }

    /// This context's id.
    pub fn me(&self) -> &ClientId {
        self.inbox.me()
    }

    /// The underlying BroadcastChannel's name (`outbox:<scope>`).
    pub fn name(&self) -> String {
        self.raw.name()
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // Removing a listener that is registered cannot fail; either way the channel is closed
        // next, after which no event reaches the closure that is freed with `self`.
        let _ = self.raw.remove_event_listener_with_callback(
            "message",
            self.on_message.as_ref().unchecked_ref(),
        );
        self.raw.close();
    }
}

/// Posts `env` as JSON text through `post`: large states and snapshots in parts that each fit
/// what receivers accept, each posted as soon as it is encoded, stopping at the first failure.
/// A part too large for any receiver is left out, and said ([`ChannelError::TooLarge`]).
pub(crate) fn post_in_parts(
    env: &Envelope,
    mut post: impl FnMut(String) -> Result<(), ChannelError>,
) -> Result<(), ChannelError> {
    let mut posted = Ok(());
    let mut too_large = None;
    protocol::encode_parts(env, protocol::PART_BYTES, &mut |text| {
        if text.len() > protocol::MAX_MESSAGE_BYTES {
            // Every receiver would drop it, after a copy to each of them.
            too_large = Some(text.len());
        } else if posted.is_ok() {
            posted = post(text);
        }
    });
    posted?;
    too_large.map_or(Ok(()), |len| Err(ChannelError::TooLarge { len }))
}

/// Reads a message event's data without copying an oversized message into wasm memory: a
/// string, or the UTF-8 bytes of one in an `ArrayBuffer` (how a worker hands its own tab a
/// large part, see [`crate::lane::Port::sending_bytes`]).
fn read_data(data: &JsValue) -> MessageData {
    let too_large =
        |len: u32| usize::try_from(len).unwrap_or(usize::MAX) > protocol::MAX_MESSAGE_BYTES;
    if let Some(s) = data.dyn_ref::<js_sys::JsString>() {
        if too_large(s.length()) {
            return MessageData::TooLarge;
        }
        return MessageData::Text(String::from(s));
    }
    if let Some(bytes) = data.dyn_ref::<js_sys::ArrayBuffer>() {
        if too_large(bytes.byte_length()) {
            return MessageData::TooLarge;
        }
        return match String::from_utf8(js_sys::Uint8Array::new(bytes).to_vec()) {
            Ok(text) => MessageData::Text(text),
            Err(_) => MessageData::NotText,
        };
    }
    MessageData::NotText
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_shared::protocol::Message;

    fn env(scope: &str, to: Option<&str>) -> String {
        let from = ClientId::from("tab-b");
        let to = to.map(ClientId::from);
        let env = Envelope::new(scope, &from, to.as_ref(), Message::Hello);
        protocol::encode(&env)
    }

    #[test]
    fn each_drop_is_counted_under_its_reason() {
        let inbox = Inbox::new("app", ClientId::from("tab-a"));
        let garbage = [
            MessageData::NotText,
            MessageData::TooLarge,
            MessageData::Text("{".into()),
            MessageData::Text(r#"{"v":3,"app":"app","from":"x","body":"hello"}"#.into()),
            MessageData::Text(env("other", None)),
            MessageData::Text(r#"{"v":2,"app":"app","from":"x","body":{"gossip":{}}}"#.into()),
            MessageData::Text(env("app", Some("tab-c"))),
            MessageData::Text("x".repeat(protocol::MAX_MESSAGE_BYTES + 1)),
        ];
        for g in garbage {
            assert_eq!(inbox.accept(g), None);
        }
        let counts = inbox.drops();
        assert_eq!(
            counts,
            DropCounts {
                not_text: 1,
                too_large: 2,
                malformed: 1,
                unsupported: 1,
                foreign: 1,
                unknown_kind: 1,
                not_for_me: 1,
            }
        );
        assert_eq!(counts.invalid(), 7);
    }

    #[test]
    fn broadcasts_and_replies_to_me_are_delivered() {
        let inbox = Inbox::new("app", ClientId::from("tab-a"));
        assert!(inbox.accept(MessageData::Text(env("app", None))).is_some());
        assert!(inbox
            .accept(MessageData::Text(env("app", Some("tab-a"))))
            .is_some());
        assert_eq!(inbox.drops(), DropCounts::default());
    }
}
