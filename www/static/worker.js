// The demo's Outbox worker: one import, one call. The tab client starts this script as a
// SharedWorker (or a dedicated worker where there is none); whichever copy takes the Web Lock
// leads, owns the IndexedDB outbox and sends each transaction to the server, many per request.
import { startOutboxWorker } from '/pkg/worker/outbox-worker.js';

startOutboxWorker({ app: 'todos', http: { todos: { url: '/api/mutations', batch: true } } });
