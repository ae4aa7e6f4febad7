// The worker bootstrap: the one import an app's worker script needs.
//
//   import { startOutboxWorker } from './outbox-worker.js';
//   startOutboxWorker({ app: 'todos', http: { todos: { url: '/api/mutations', batch: true } } });
//
// The same script works as a SharedWorker and as a dedicated (module) worker. Control messages
// from the tab that owns the worker ({type: 'outbox:resign'} when it is being frozen or closed,
// {type: 'outbox:resume'} when it comes back, {type: 'outbox:steal'} to replace a leader that
// no longer answers) arrive on the worker's port(s); the worker answers
// {type: 'outbox:ready'} once it runs, or {type: 'outbox:error', code, message} if it cannot
// (for example without IndexedDB), and {type: 'outbox:leading', epoch} / {type:
// 'outbox:following'} as it starts and stops leading. `ready` also says the worker's `id` on the
// channel and `lane: true`: while this worker leads (the leader's id is this `id`), its tab may
// post the protocol's JSON text on the port instead of the BroadcastChannel, and is answered
// there (a text on the port of a worker that does not lead is passed on to the channel).
// Everything else goes over the BroadcastChannel.
import init, { startLeader } from './outbox_worker.js';

const PREFIX = 'outbox:';

export function startOutboxWorker(options) {
  const isShared =
    typeof SharedWorkerGlobalScope !== 'undefined' && self instanceof SharedWorkerGlobalScope;
  // The scope comes from the worker's name (`outbox:<scope>`, set by the client), else the app.
  const scope =
    typeof self.name === 'string' && self.name.startsWith(PREFIX)
      ? self.name.slice(PREFIX.length)
      : options && options.app;
  const ports = [];
  let leader = null;
  let status = null;

  const tell = (message) => {
    status = message;
    if (isShared) for (const port of ports) port.postMessage(message);
    else self.postMessage(message);
  };
  const control = (data, port) => {
    if (!leader || !data) return;
    if (typeof data === 'string') return leader.fromTab(data, port);
    if (typeof data !== 'object') return;
    if (data.type === 'outbox:resign') leader.resign();
    else if (data.type === 'outbox:resume') leader.resume();
    else if (data.type === 'outbox:steal') leader.steal();
  };
  // Ports must be collected before anything is awaited, or early connects are lost.
  if (isShared) {
    self.addEventListener('connect', (event) => {
      for (const port of event.ports) {
        ports.push(port);
        port.onmessage = (m) => control(m.data, port);
        if (status) port.postMessage(status);
        if (role) port.postMessage(role);
      }
    });
  } else {
    self.addEventListener('message', (m) => control(m.data, self));
  }

  // Which role this worker has: a dedicated worker's tab is "the leader tab" while it leads.
  let role = null;
  const onRole = (epoch) => {
    role = epoch === null ? { type: 'outbox:following' } : { type: 'outbox:leading', epoch };
    if (isShared) for (const port of ports) port.postMessage(role);
    else self.postMessage(role);
  };

  // `wasmUrl`: where the wasm is, when not next to outbox_worker.js (bundlers resolve it there).
  const wasmUrl = options && options.wasmUrl;
  return init(wasmUrl ? { module_or_path: wasmUrl } : undefined)
    .then(() => startLeader(options, scope, onRole))
    .then(
      (handle) => {
        leader = handle;
        tell({ type: 'outbox:ready', scope, id: handle.id, lane: true });
        return handle;
      },
      (error) => {
        tell({
          type: 'outbox:error',
          code: (error && error.code) || 'OUTBOX_INVALID',
          message: String((error && error.message) || error),
        });
        throw error;
      },
    );
}
