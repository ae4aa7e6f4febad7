//! The outbox storage port as the runtime needs it: asynchronous, and shareable.

use outbox_shared::model::Epoch;
use outbox_shared::store::{check_fence, Loaded, StoreError, WriteBatch};
use std::cell::Cell;
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

/// An outbox in memory: what a tab without a leader has. The executor keeps every transaction
/// in its own memory, and nothing survives the tab, so a write has nowhere further to go: this
/// only keeps the epoch fence. (Not [`outbox_shared::store::MemOutboxStore`], which lays records
/// out as IndexedDB does, for the simulations; the tab's module does not need that code.)
#[derive(Debug, Default)]
pub struct MemoryStore(Cell<Epoch>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bumps the epoch and loads (nothing), like a leader taking over.
    pub fn begin(&self, _now: u64) -> Loaded {
        let epoch = self.0.get().next();
        self.0.set(epoch);
        Loaded {
            epoch,
            ..Loaded::default()
        }
    }
}

impl AsyncStore for MemoryStore {
    fn write(&self, batch: WriteBatch) -> LocalFuture<Result<(), StoreError>> {
        let result = check_fence(self.0.get(), batch.epoch);
        Box::pin(async move { result })
    }

    fn quarantine(&self, _key: String) -> LocalFuture<()> {
        Box::pin(async {})
    }
}
