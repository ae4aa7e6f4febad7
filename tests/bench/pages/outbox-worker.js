// The bench's Outbox worker script: what an app's worker script is (one import, one call; see
// www/static/worker.js), with two additions for the bench:
// - `?batch=0` sends one HTTP request per transaction instead of batches;
// - retries are not capped at the default 4, so that transactions kept pending on purpose (server
//   offline) stay pending for the whole bench instead of becoming dead letters;
// - it answers `{type: 'mem?'}` on BroadcastChannel `bench-mem:<scope>` with the size of its wasm
//   memory, for the memory-per-pending-transaction figure.
import { startOutboxWorker } from '/pkg/worker/outbox-worker.js';
import initWasm from '/pkg/worker/outbox_worker.js';

const batch = new URL(self.location.href).searchParams.get('batch') !== '0';
const started = startOutboxWorker({
  app: 'bench',
  http: { todos: { url: '/api/mutations', batch } },
  retry: { maxRetries: 1000 },
});

const scope = typeof self.name === 'string' && self.name.startsWith('outbox:') ? self.name.slice(7) : 'bench';
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
