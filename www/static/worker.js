// The demo's Outbox worker: one import, one call. The tab client starts this script as a
// SharedWorker (or a dedicated worker where there is none); whichever copy takes the Web Lock
// leads, owns the IndexedDB outbox and sends each transaction to the server, many per request.
import { startOutboxWorker } from '/pkg/worker/outbox-worker.js';

// `credentials: 'scoped'`: a signed-in user's outbox sends nothing before a tab has given it
// that user's token; the anonymous outbox needs none.
startOutboxWorker({
  app: 'todos',
  http: { todos: { url: '/api/mutations', batch: true } },
  credentials: 'scoped',
});
