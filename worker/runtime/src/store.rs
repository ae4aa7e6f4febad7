//! The outbox storage port as the runtime needs it: asynchronous, and shareable.

use outbox_shared::store::{MemOutboxStore, StoreError, WriteBatch};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;

/// A boxed future that stays on this thread.
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Where the executor's writes go. The leader's is IndexedDB; a tab in online-only mode keeps
/// its outbox in memory ([`MemoryStore`]).
pub trait AsyncStore {
    /// Writes a batch atomically, or refuses it whole.
    fn write(&self, batch: WriteBatch) -> LocalFuture<Result<(), StoreError>>;
    /// Moves an unreadable record out of the outbox.
    fn quarantine(&self, key: String) -> LocalFuture<()>;
}

/// An outbox in memory: what a tab without a leader has. Nothing survives the tab.
#[derive(Debug, Default)]
pub struct MemoryStore(RefCell<MemOutboxStore>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bumps the epoch and loads, like a leader taking over.
    pub fn begin(&self, now: u64) -> outbox_shared::store::Loaded {
        self.0.borrow_mut().begin_leadership(now)
    }
}

impl AsyncStore for MemoryStore {
    fn write(&self, batch: WriteBatch) -> LocalFuture<Result<(), StoreError>> {
        let result = self.0.borrow_mut().write(&batch);
        Box::pin(async move { result })
    }

    fn quarantine(&self, key: String) -> LocalFuture<()> {
        self.0.borrow_mut().quarantine(&key);
        Box::pin(async {})
    }
}
