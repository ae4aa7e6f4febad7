// What the browser itself can do, measured the way Outbox uses it: IndexedDB read-write
// transactions holding one string record each, BroadcastChannel messages between a page and
// another page or a worker, and a Web Lock passed on when its holder goes away.
import { nextMessage, openDb as openStoreDb, wallNow } from './common.js';

const STORE = 'outbox';
const openDb = (name) => openStoreDb(name, STORE);

const committed = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('transaction error'));
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });

function dropDb(db, name) {
  db.close();
  indexedDB.deleteDatabase(name);
}

/** A string the size of an outbox record (Outbox stores each record as its JSON text). */
const recordText = (bytes, i) => JSON.stringify({ id: `rec-${i}`, pad: 'x'.repeat(Math.max(0, bytes - 40)) });

/**
 * Latency of one put + commit (until `complete`), `n` in a row, each its own read-write
 * transaction; `durability` undefined = the browser's default. Returns the times in ms.
 */
export async function idbPutCommit({ n = 200, warmup = 10, durability, bytes = 600 } = {}) {
  const name = `bench-idb-${crypto.randomUUID()}`;
  const db = await openDb(name);
  const times = [];
  try {
    for (let i = 0; i < n + warmup; i++) {
      const value = recordText(bytes, i);
      const t0 = performance.now();
      const tx = durability ? db.transaction(STORE, 'readwrite', { durability }) : db.transaction(STORE, 'readwrite');
      tx.objectStore(STORE).put(value, `k${i}`);
      await committed(tx);
      if (i >= warmup) times.push(performance.now() - t0);
    }
  } finally {
    dropDb(db, name);
  }
  return times;
}

/** `n` records put in one read-write transaction (default durability): ms until `complete`. */
export async function idbBatch({ n = 1000, bytes = 600, rounds = 3 } = {}) {
  const name = `bench-idb-${crypto.randomUUID()}`;
  const db = await openDb(name);
  const times = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const values = Array.from({ length: n }, (_, i) => recordText(bytes, i));
      const t0 = performance.now();
      const tx = db.transaction(STORE, 'readwrite');
      const store = tx.objectStore(STORE);
      for (let i = 0; i < n; i++) store.put(values[i], `r${r}-${i}`);
      await committed(tx);
      times.push(performance.now() - t0);
    }
  } finally {
    dropDb(db, name);
  }
  return times;
}

// ---- BroadcastChannel ------------------------------------------------------------------------

/** Answers every ping on channel `name` (in this page) until the page goes. */
export function bcEcho(name) {
  const bc = new BroadcastChannel(name);
  bc.onmessage = (e) => {
    if (e.data && e.data.ping !== undefined) bc.postMessage({ pong: e.data.ping });
  };
  globalThis.__benchEcho = bc;
  return true;
}

/** `n` round trips (ping, pong) on channel `name`, one at a time. Returns the times in ms. */
export async function bcPing(name, { n = 200, warmup = 20 } = {}) {
  const bc = new BroadcastChannel(name);
  const times = [];
  try {
    for (let i = 0; i < n + warmup; i++) {
      const t0 = performance.now();
      const answered = nextMessage(bc, (d) => d && d.pong === i, 5_000);
      bc.postMessage({ ping: i });
      await answered;
      if (i >= warmup) times.push(performance.now() - t0);
    }
  } finally {
    bc.close();
  }
  return times;
}

/**
 * An echoing worker (`kind`: 'dedicated' | 'shared') listening on BroadcastChannel `name` and on
 * its port: `{ port, stop }` (the SharedWorker's MessagePort, started, or the dedicated worker).
 */
function echoWorker(kind, name) {
  const url = `/echo-worker.js?ch=${encodeURIComponent(name)}`;
  if (kind === 'shared') {
    const worker = new SharedWorker(url, { type: 'module', name });
    worker.port.start();
    return { port: worker.port, stop: () => worker.port.postMessage('close') };
  }
  const worker = new Worker(url, { type: 'module' });
  return { port: worker, stop: () => worker.terminate() };
}

/** Starts an echoing worker (`kind`: 'dedicated' | 'shared') and pings it over BroadcastChannel. */
export async function bcPingWorker(kind, opts) {
  const name = `bench-bc-${crypto.randomUUID()}`;
  const bc = new BroadcastChannel(name);
  const ready = nextMessage(bc, (d) => d && d.ready === true, 10_000);
  const echo = echoWorker(kind, name);
  try {
    await ready;
    return await bcPing(name, opts);
  } finally {
    bc.close();
    echo.stop();
  }
}

/**
 * Starts an echoing worker (`kind`: 'dedicated' | 'shared') and pings it over its port (the
 * SharedWorker's MessagePort, or the dedicated worker's): `n` samples, each the mean of `burst`
 * round trips one after the other (a round trip takes less than the page's 0.1 ms timer
 * resolution).
 */
export async function portPingWorker(kind, { n = 200, warmup = 20, burst = 10 } = {}) {
  const { port, stop } = echoWorker(kind, `bench-port-${crypto.randomUUID()}`);
  const pong = (i, ms) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no pong ${i} within ${ms} ms`)), ms);
      port.onmessage = (e) => {
        if (e.data && e.data.pong === i) {
          clearTimeout(timer);
          resolve();
        }
      };
    });
  const times = [];
  try {
    // The first answer also says the worker runs.
    const first = pong(-1, 10_000);
    port.postMessage({ ping: -1 });
    await first;
    for (let i = 0; i < n + warmup; i++) {
      const t0 = performance.now();
      for (let j = 0; j < burst; j++) {
        const id = i * burst + j;
        const answered = pong(id, 5_000);
        port.postMessage({ ping: id });
        await answered;
      }
      if (i >= warmup) times.push((performance.now() - t0) / burst);
    }
  } finally {
    stop();
  }
  return times;
}

// ---- Web Locks -------------------------------------------------------------------------------

/** Takes lock `name` and holds it for as long as this page lives. */
export function holdLock(name) {
  return new Promise((resolve, reject) => {
    navigator.locks
      .request(name, () => {
        resolve(true);
        return new Promise(() => {});
      })
      .catch(reject);
  });
}

/**
 * A promise of the next lock grant in this page (`{ at, fencedAt }`, wall-clock times), for the
 * harness to await instead of polling the page while the handoff runs.
 */
function expectGrant() {
  let granted;
  globalThis.__lockGot = new Promise((resolve) => (granted = resolve));
  return granted;
}

/** Asks for lock `name` (waiting); `window.__lockGot` is a promise of the grant (expectGrant). */
export async function waitLock(name) {
  const granted = expectGrant();
  navigator.locks.request(name, () => {
    granted({ at: wallNow(), fencedAt: null });
    return new Promise(() => {});
  });
  return pending(name);
}

/** Whether someone waits for lock `name`. */
export async function pending(name) {
  const q = await navigator.locks.query();
  return q.pending.some((l) => l.name === name);
}

/**
 * As holdLock/waitLock, but in a dedicated worker of this page. With `fence` (a database name),
 * the worker also does what a fenced takeover must (see lock-worker.js): the grant's `fencedAt` is the
 * wall-clock time its epoch transaction completed.
 */
export function lockInWorker(name, mode, fence) {
  return new Promise((resolve, reject) => {
    const query = `lock=${encodeURIComponent(name)}&mode=${mode}${fence ? `&fence=${encodeURIComponent(fence)}` : ''}`;
    const w = new Worker(`/lock-worker.js?${query}`, { type: 'module' });
    globalThis.__lockWorker = w;
    const granted = expectGrant();
    w.onmessage = (e) => {
      if (e.data.type === 'held' || e.data.type === 'waiting') resolve(e.data.type);
      if (e.data.type === 'got') {
        granted({ at: e.data.at, fencedAt: e.data.fencedAt ?? null });
      }
    };
    w.onerror = (e) => reject(new Error(`lock worker: ${e.message}`));
  });
}

/** Closes and deletes the database of this page's fenced lock worker. */
export function dropLockDb() {
  const w = globalThis.__lockWorker;
  if (!w) return Promise.resolve();
  return new Promise((resolve) => {
    w.addEventListener('message', (e) => e.data.type === 'dropped' && resolve());
    w.postMessage({ type: 'drop' });
  });
}
