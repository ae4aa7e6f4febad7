// Outbox in a bench page: the wasm client connected to the bench worker, one `todos` collection,
// behind the interface every library gets in the bench (`window.bench`, see measure.js).
import init, { OutboxClient } from '/pkg/client/outbox_client.js';
import { nextMessage, wallNow } from './common.js';

/**
 * `app`: a fresh name per measurement (its own lock, channel, database and worker);
 * `dedicated`: one dedicated worker per tab instead of the SharedWorker; `batch`: batched HTTP;
 * `fetches`: the worker stamps each request it starts (see outbox-worker.js, `watchFetches`).
 */
export async function setup({ app, dedicated = false, batch = true, fetches = false, modeTimeoutMs = 15_000 } = {}) {
  const wasm = await init();
  const client = await OutboxClient.connect({
    app,
    workerUrl: `/outbox-worker.js?batch=${batch ? 1 : 0}${fetches ? '&fetches=1' : ''}`,
    sharedWorker: dedicated ? 'never' : 'auto',
    http: { todos: { url: '/api/mutations', batch } },
  });
  await new Promise((resolve, reject) => {
    if (client.mode === 'offline-enabled') return resolve();
    const timer = setTimeout(
      () => reject(new Error(`Outbox not offline-enabled after ${modeTimeoutMs} ms: mode ${client.mode}, ${JSON.stringify(client.diagnostic)}`)),
      modeTimeoutMs,
    );
    client.onModeChange((mode) => {
      if (mode === 'offline-enabled') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const todos = client.collection('todos', { key: 'id' });
  // Checks of `bench.until`, run again whenever an event or a request stamp comes in.
  const waiters = new Set();
  const notify = () => waiters.forEach((check) => check());
  const bench = {
    lib: 'outbox',
    client,
    todos,
    /** `{ durable, completed }` promises of a one-row insert transaction. */
    insert: (row) => todos.insert(row),
    has: (id) => todos.get(id) !== undefined,
    size: () => todos.size,
    subscribe: (cb) => todos.subscribe(cb),
    isLeaderTab: () => client.isLeaderTab,
    /** Bytes of linear memory of this tab's wasm (grows in 64 KiB pages, never shrinks). */
    wasmBytes: () => wasm.memory.buffer.byteLength,
    /** The leading worker's wasm memory, asked over BroadcastChannel. */
    async workerWasmBytes() {
      const bc = new BroadcastChannel(`bench-mem:${client.scope}`);
      try {
        const answer = nextMessage(bc, (d) => d && d.type === 'mem' && (d.isLeader || d.error) && d, 5_000);
        bc.postMessage({ type: 'mem?' });
        const a = await answer;
        if (a.error) throw new Error(a.error);
        return a.bytes;
      } finally {
        bc.close();
      }
    },
    /** Records the client's events with the wall-clock time they reached this tab. */
    recordEvents() {
      bench.events = [];
      client.onEvent((e) => {
        bench.events.push({ type: e.type, state: e.state, isLeaderTab: e.isLeaderTab, epoch: e.epoch, seenAt: wallNow() });
        notify();
      });
    },
    events: null,
    /** Collects, into `bench.fetches`, the requests any worker of this app starts (`{at, worker}`). */
    watchFetches() {
      bench.fetches = [];
      const bc = new BroadcastChannel(`bench-fetch:${client.scope}`);
      bc.onmessage = (e) => {
        if (e.data && e.data.type === 'fetch') {
          bench.fetches.push({ at: e.data.at, worker: e.data.worker });
          notify();
        }
      };
    },
    /**
     * Resolves with `test()`'s first truthy value, tried now and after each event or request
     * stamp this page records (see recordEvents, watchFetches); rejects after `ms` with what was
     * recorded. A measurement awaits this rather than polling the page from the harness, whose
     * calls would compete for the CPU with what it measures.
     */
    until(test, ms = 20_000) {
      return new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        const check = () => {
          try {
            const value = test();
            if (value) {
              done();
              resolve(value);
            }
          } catch (error) {
            done();
            reject(error);
          }
        };
        const timer = setTimeout(() => {
          done();
          const seen = JSON.stringify({ events: bench.events?.slice(-20), fetches: bench.fetches?.slice(-10) });
          reject(new Error(`not within ${ms} ms; recorded: ${seen}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    fetches: null,
  };
  globalThis.bench = bench;
  return { mode: client.mode, isLeaderTab: client.isLeaderTab, epoch: client.leaderEpoch ?? null };
}
