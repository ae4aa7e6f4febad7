// Helpers shared by the bench pages and workers.

/** High-resolution wall-clock time in ms (comparable across pages, workers and node). */
export const wallNow = () => performance.timeOrigin + performance.now();

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A row of the `todos` collection, the same for every library. */
export function todoRow(i) {
  return { id: crypto.randomUUID(), title: `bench todo ${i}`, done: false, createdAt: Date.now() };
}

/** Resolves with the first message on `bc` for which `pick(data)` returns something. */
export function nextMessage(bc, pick, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      bc.removeEventListener('message', onMessage);
      reject(new Error(`no answer on BroadcastChannel "${bc.name}" within ${timeoutMs} ms`));
    }, timeoutMs);
    function onMessage(event) {
      const value = pick(event.data);
      if (value === undefined || value === null || value === false) return;
      clearTimeout(timer);
      bc.removeEventListener('message', onMessage);
      resolve(value);
    }
    bc.addEventListener('message', onMessage);
  });
}

/** Opens IndexedDB database `name` (version 1), creating object store `store` in it if new. */
export function openDb(name, store) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(store);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error(`cannot open ${name}`));
    req.onblocked = () => reject(new Error(`opening ${name} is blocked`));
  });
}
