// @tanstack/offline-transactions (with @tanstack/db) in a bench page, behind the same interface
// as outbox-page.js. Bundled for the browser by esbuild at bench time (→ /tanstack-page.js).
//
// Wiring, from the package's README and types:
// - one collection `todos` (`createCollection`, key `id`, a sync source that is ready at once and
//   brings nothing: the rows shown are the optimistic ones, as in the Outbox pages);
// - its executor (`startOfflineExecutor`) with IndexedDB storage and Web Locks leader election,
//   both named after `app` so that measurements do not share state;
// - one mutation function that POSTs each transaction to the reference server's
//   `/api/mutations`, with the transaction's idempotency key as `Idempotency-Key` and body `id`
//   (the loose transaction shape of www/src/wire.rs); a 4xx answer is a NonRetriableError.
// "Durable" here is when the library's own storage adapter resolves the write of the
// transaction's outbox record (a subclass of its IndexedDBAdapter notes the moment).
import { createCollection } from '@tanstack/db';
import {
  IndexedDBAdapter,
  NonRetriableError,
  WebLocksLeader,
  startOfflineExecutor,
} from '@tanstack/offline-transactions';

const wallNow = () => performance.timeOrigin + performance.now();

export async function setup({ app, initTimeoutMs = 60_000 } = {}) {
  const waiters = new Map();
  const writes = { count: 0 };
  class TimedAdapter extends IndexedDBAdapter {
    async set(key, value) {
      await super.set(key, value);
      writes.count++;
      const w = waiters.get(key);
      if (w) {
        waiters.delete(key);
        w();
      }
    }
  }

  const todos = createCollection({
    id: 'todos',
    getKey: (row) => row.id,
    startSync: true,
    sync: {
      sync: ({ markReady }) => {
        markReady();
      },
    },
  });

  const calls = { count: 0, first: null, log: [] };
  const leadership = [];
  const executor = startOfflineExecutor({
    collections: { todos },
    storage: new TimedAdapter(`tanstack:${app}`, 'transactions'),
    leaderElection: new WebLocksLeader(`tanstack:${app}:leader`),
    onLeadershipChange: (isLeader) => leadership.push({ isLeader, at: wallNow() }),
    mutationFns: {
      todos: async ({ transaction, idempotencyKey }) => {
        calls.count++;
        if (calls.first === null) calls.first = wallNow();
        const body = {
          id: idempotencyKey,
          mutations: transaction.mutations.map((m) => ({
            collection: 'todos',
            key: String(m.key ?? (m.modified && m.modified.id)),
            kind: m.type,
            modified: m.modified ?? null,
            changes: m.changes ?? null,
          })),
        };
        const res = await fetch('/api/mutations', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
          body: JSON.stringify(body),
        });
        const text = await res.text();
        if (res.status >= 400 && res.status < 500) throw new NonRetriableError(`HTTP ${res.status}: ${text}`);
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${text}`);
        return text ? JSON.parse(text) : null;
      },
    },
  });
  let timer;
  await Promise.race([
    executor.waitForInit(),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`TanStack executor not initialised after ${initTimeoutMs} ms`)), initTimeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));

  const bench = {
    lib: 'tanstack',
    executor,
    todos,
    calls,
    leadership,
    writes,
    insert(row) {
      const otx = executor.createOfflineTransaction({ mutationFnName: 'todos', autoCommit: true });
      const durable = new Promise((resolve) => waiters.set(`tx:${otx.id}`, resolve));
      const tx = otx.mutate(() => todos.insert(row)) ?? otx;
      return { id: otx.id, durable, completed: tx.isPersisted.promise };
    },
    has: (id) => todos.get(id) !== undefined,
    size: () => todos.size,
    subscribe(cb) {
      const subscription = todos.subscribeChanges(() => cb());
      return () => subscription.unsubscribe();
    },
    isLeaderTab: () => executor.isOfflineEnabled,
    wasmBytes: () => 0,
    workerWasmBytes: async () => 0,
    recordEvents() {},
    events: null,
  };
  globalThis.bench = bench;
  return { mode: executor.mode, isLeaderTab: executor.isOfflineEnabled, epoch: null };
}
