// The bench's Outbox worker script: what an app's worker script is (one import, one call; see
// www/static/worker.js), with two additions for the bench:
// - `?batch=0` sends one HTTP request per transaction instead of batches;
// - retries are not capped at the default 4, so that transactions kept pending on purpose (server
//   offline) stay pending for the whole bench instead of becoming dead letters;
// - it answers `{type: 'mem?'}` on BroadcastChannel `bench-mem:<scope>` with the size of its wasm
//   memory, for the memory-per-pending-transaction figure;
// - with `?fetches=1`, it posts `{type: 'fetch', at, worker}` on BroadcastChannel
//   `bench-fetch:<scope>` as each API request (`/api/…`) starts: the wall-clock time, taken here in the worker
//   (as lock-worker.js takes the time it gets its lock), and an id of this worker. The failover
//   figure's "first attempt" is the new leader's first request. The real `fetch` does the rest.
import { startOutboxWorker } from '/pkg/worker/outbox-worker.js';
import initWasm from '/pkg/worker/outbox_worker.js';

const params = new URL(self.location.href).searchParams;
const batch = params.get('batch') !== '0';
const scope = typeof self.name === 'string' && self.name.startsWith('outbox:') ? self.name.slice(7) : 'bench';
if (params.get('fetches') === '1') {
  const realFetch = self.fetch.bind(self);
  const stamps = new BroadcastChannel(`bench-fetch:${scope}`);
  const worker = Math.random().toString(36).slice(2);
  self.fetch = (...args) => {
    const url = String(args[0]?.url ?? args[0]);
    if (new URL(url, self.location.href).pathname.startsWith('/api/')) {
      stamps.postMessage({ type: 'fetch', at: performance.timeOrigin + performance.now(), worker });
    }
    return realFetch(...args);
  };
}
const started = startOutboxWorker({
  app: 'bench',
  http: { todos: { url: '/api/mutations', batch } },
  retry: { maxRetries: 1000 },
});

const mem = new BroadcastChannel(`bench-mem:${scope}`);
mem.onmessage = async (e) => {
  if (!e.data || e.data.type !== 'mem?') return;
  try {
    const handle = await started;
    const wasm = await initWasm(); // already initialised: returns the instance's exports
    mem.postMessage({ type: 'mem', bytes: wasm.memory.buffer.byteLength, isLeader: handle.isLeader });
  } catch (error) {
    mem.postMessage({ type: 'mem', error: String(error) });
  }
};
