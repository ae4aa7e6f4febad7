// Holds (`?mode=hold`) or waits for (`?mode=wait`) the Web Lock named in `?lock=`, and tells its
// page: {type: 'held'} | {type: 'waiting'}, then {type: 'got', at} with the wall-clock time.
//
// With `?fence=<database>`, the least a fenced takeover does: both sides open that IndexedDB
// database before asking for the lock; the holder writes an epoch once it holds the lock (a
// leader that has written); the waiter, once granted, reads the epoch and puts the next one in
// one read-write transaction, and its 'got' message also carries `fencedAt`, the wall-clock time
// that transaction completed. {type: 'drop'} from the page closes and deletes the database.
import { openDb, wallNow } from './common.js';

const params = new URL(self.location.href).searchParams;
const name = params.get('lock') ?? 'bench-lock';
const mode = params.get('mode') ?? 'hold';
const fence = params.get('fence');
const STORE = 'meta';

/** Reads the epoch and puts the next one, in one read-write transaction; resolves at `complete`. */
function bumpEpoch(db) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    const read = store.get('epoch');
    read.onsuccess = () => {
      store.put((read.result ?? 0) + 1, 'epoch');
      tx.commit();
    };
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('transaction error'));
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

const db = fence ? await openDb(fence, STORE) : null;
navigator.locks.request(name, async () => {
  if (mode === 'hold') {
    if (db) await bumpEpoch(db);
    self.postMessage({ type: 'held' });
  } else {
    const at = wallNow();
    if (db) await bumpEpoch(db);
    self.postMessage({ type: 'got', at, fencedAt: db ? wallNow() : null });
  }
  return new Promise(() => {});
});
if (mode === 'wait') {
  navigator.locks.query().then((q) => {
    if (q.pending.some((l) => l.name === name)) self.postMessage({ type: 'waiting' });
    else self.postMessage({ type: 'waiting', note: 'not pending yet' });
  });
}
self.onmessage = (e) => {
  if (e.data?.type !== 'drop' || !fence) return;
  db?.close();
  const req = indexedDB.deleteDatabase(fence);
  req.onsuccess = req.onerror = req.onblocked = () => self.postMessage({ type: 'dropped' });
};
