//! The direct line between a tab and its own worker: the worker's `MessagePort` (a SharedWorker)
//! or the dedicated worker itself, carrying the same JSON text as the channel (from the worker,
//! a large part as the bytes of that text: [`Port::sending_bytes`]).
//!
//! A BroadcastChannel message goes through the browser process; a port message does not. On
//! this machine a round trip page ↔ SharedWorker takes ~0.1 ms over the port against ~0.4 ms
//! over BroadcastChannel (`tests/bench`'s limits). So while a tab's own worker
//! leads, the tab sends it everything over the port, and the leader answers that tab's
//! requests (`durable`, snapshots, responses) the same way. Broadcasts stay on the channel,
//! which every tab hears.
//!
//! A tab only switches to its port when it learns of a new leader and that leader is its own
//! worker (it then resends everything unsettled, in order, so nothing sent earlier over the
//! channel can be overtaken). A worker that gets a message on a port while it does not lead
//! forwards it to the channel, as if the tab had posted it there.

use crate::channel::{post_in_parts, ChannelError};
use crate::convert::JsErrorInfo;
use outbox_shared::protocol::Envelope;
pub use outbox_shared::protocol::{Lanes, MAX_LANES};
use wasm_bindgen::{JsCast, JsValue};

/// Parts at least this large go from a worker to its own tab as bytes
/// ([`Port::sending_bytes`]).
pub const BYTES_FROM: usize = 16 * 1024;

/// Something with a `postMessage(data)`: a `MessagePort`, a `Worker`, or a dedicated worker's
/// global scope.
#[derive(Debug, Clone)]
pub struct Port {
    target: JsValue,
    post: js_sys::Function,
    bytes: bool,
}

impl Port {
    /// `target` as a port, if it has a `postMessage` method.
    pub fn new(target: JsValue) -> Option<Self> {
        let post = js_sys::Reflect::get(&target, &JsValue::from_str("postMessage"))
            .ok()?
            .dyn_into::<js_sys::Function>()
            .ok()?;
        Some(Self {
            target,
            post,
            bytes: false,
        })
    }

    /// This port posts parts of [`BYTES_FROM`] bytes or more as an `ArrayBuffer` of their UTF-8
    /// text, transferred rather than copied: the receiver copies the bytes into its wasm memory
    /// as they are, where a string is copied by the post, then decoded and encoded again on
    /// each side (a 10,000-transaction snapshot: ~20 ms of the tab's time, ~10 of the worker's).
    /// For a worker's port to its own tab only: the tab's build reads bytes
    /// ([`crate::Channel::accept`]); what a tab posts, the worker may pass on to the channel,
    /// where every context must read it, so tabs post text.
    pub fn sending_bytes(mut self) -> Self {
        self.bytes = true;
        self
    }

    /// Posts `env` as JSON text, in parts when it is large (as [`crate::Channel::post`] does).
    pub fn post(&self, env: &Envelope) -> Result<(), ChannelError> {
        post_in_parts(env, |text| {
            if self.bytes && text.len() >= BYTES_FROM {
                let bytes = js_sys::Uint8Array::from(text.as_bytes()).buffer();
                self.post
                    .call2(&self.target, &bytes, &js_sys::Array::of1(&bytes))
                    .map(|_| ())
                    .map_err(|e| ChannelError::Post(JsErrorInfo::from_js(&e)))
            } else {
                self.post_data(&JsValue::from_str(&text))
            }
        })
    }

    /// Posts `data` as it is.
    pub fn post_data(&self, data: &JsValue) -> Result<(), ChannelError> {
        self.post
            .call1(&self.target, data)
            .map(|_| ())
            .map_err(|e| ChannelError::Post(JsErrorInfo::from_js(&e)))
    }
}
