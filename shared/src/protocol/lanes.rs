//! Which tabs a leader answers on a port of its own instead of the channel (the *lane*; the
//! browser side is `outbox_runtime::lane`): a bounded map from a tab's id to the port it last
//! spoke on.

use crate::model::ClientId;
use std::collections::VecDeque;

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
        // tab 5 speaks again: it becomes the newest, and survives the next evictions.
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
