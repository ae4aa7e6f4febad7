//! The direct line between a tab and its own worker: the worker's `MessagePort` (a SharedWorker)
//! or the dedicated worker itself, carrying the same JSON text as the channel.
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

use crate::channel::ChannelError;
use crate::convert::JsErrorInfo;
use outbox_shared::model::ClientId;
use outbox_shared::protocol::{self, Envelope};
use std::collections::VecDeque;
use wasm_bindgen::{JsCast, JsValue};

/// Something with a `postMessage(data)`: a `MessagePort`, a `Worker`, or a dedicated worker's
/// global scope.
#[derive(Debug, Clone)]
pub struct Port {
    target: JsValue,
    post: js_sys::Function,
}

impl Port {
    /// `target` as a port, if it has a `postMessage` method.
    pub fn new(target: JsValue) -> Option<Self> {
        let post = js_sys::Reflect::get(&target, &JsValue::from_str("postMessage"))
            .ok()?
            .dyn_into::<js_sys::Function>()
            .ok()?;
        Some(Self { target, post })
    }

    /// Posts `env` as JSON text, in parts when it is large (as [`crate::Channel::post`] does).
    pub fn post(&self, env: &Envelope) -> Result<(), ChannelError> {
        let mut posted = Ok(());
        protocol::encode_parts(env, protocol::PART_BYTES, &mut |text| {
            if posted.is_ok() {
                posted = self.post_data(&JsValue::from_str(&text));
            }
        });
        posted
    }

    /// Posts `data` as it is.
    pub fn post_data(&self, data: &JsValue) -> Result<(), ChannelError> {
        self.post
            .call1(&self.target, data)
            .map(|_| ())
            .map_err(|e| ChannelError::Post(JsErrorInfo::from_js(&e)))
    }
}

/// How many tabs' lines a leader keeps: the newest that spoke. A SharedWorker never hears that
/// a tab went away; a tab beyond this many is answered over the channel, as without a line.
pub const MAX_LANES: usize = 64;

/// The leader's lines to the tabs that talk to it over a port, by the tab's id: the most
/// recent [`MAX_LANES`].
#[derive(Debug)]
pub struct Lanes<P> {
    lines: VecDeque<(ClientId, P)>,
}

impl<P> Default for Lanes<P> {
    fn default() -> Self {
        Self {
            lines: VecDeque::new(),
        }
    }
}

impl<P> Lanes<P> {
    /// `tab` spoke over `port`: its line is this port, and the newest.
    pub fn heard(&mut self, tab: &ClientId, port: P) {
        if self.lines.back().is_some_and(|(id, _)| id == tab) {
            if let Some(last) = self.lines.back_mut() {
                last.1 = port;
            }
            return;
        }
        self.lines.retain(|(id, _)| id != tab);
        self.lines.push_back((tab.clone(), port));
        while self.lines.len() > MAX_LANES {
            self.lines.pop_front();
        }
    }

    /// The line to `tab`, if it has one.
    pub fn get(&self, tab: &ClientId) -> Option<&P> {
        self.lines
            .iter()
            .rev()
            .find(|(id, _)| id == tab)
            .map(|(_, p)| p)
    }

    /// Forgets every line (the worker stopped leading).
    pub fn clear(&mut self) {
        self.lines.clear();
    }

    /// How many lines it keeps.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether it keeps none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tab(n: usize) -> ClientId {
        ClientId(format!("tab-{n}"))
    }

    #[test]
    fn a_tab_is_answered_on_the_port_it_last_spoke_on() {
        let mut lanes = Lanes::default();
        lanes.heard(&tab(1), 10);
        lanes.heard(&tab(2), 20);
        lanes.heard(&tab(1), 11);
        assert_eq!(lanes.get(&tab(1)), Some(&11));
        assert_eq!(lanes.get(&tab(2)), Some(&20));
        assert_eq!(lanes.get(&tab(3)), None);
        assert_eq!(lanes.len(), 2);
    }

    #[test]
    fn only_the_newest_lines_are_kept() {
        let mut lanes = Lanes::default();
        for n in 0..MAX_LANES + 5 {
            lanes.heard(&tab(n), n);
        }
        // tab 0 speaks again: it becomes the newest, and survives the next evictions.
        lanes.heard(&tab(5), 5);
        lanes.heard(&tab(1000), 1000);
        assert_eq!(lanes.len(), MAX_LANES);
        assert_eq!(lanes.get(&tab(0)), None);
        assert_eq!(lanes.get(&tab(5)), Some(&5));
        assert_eq!(lanes.get(&tab(6)), None, "the oldest went");
        assert_eq!(lanes.get(&tab(1000)), Some(&1000));
        lanes.clear();
        assert!(lanes.is_empty());
    }
}
