//! What every request handler shares.

use crate::config::Config;
use crate::db::Readers;
use crate::faults::Faults;
use crate::feed::FeedItem;
use crate::writer::Writer;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The server's shared state, cloned into each handler.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// The settings it started with.
    pub config: Arc<Config>,
    /// The collections mutations may touch.
    pub collections: Arc<HashSet<String>>,
    /// The one writer.
    pub writer: Arc<Writer>,
    /// Read connections.
    pub readers: Readers,
    /// Applied changes, live, for the feed.
    pub feed: broadcast::Sender<Arc<FeedItem>>,
    /// The fault switches, when on.
    pub faults: Option<Arc<Faults>>,
}
