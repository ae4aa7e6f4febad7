// The app's Outbox worker: the README's two lines. Vite builds it on its own (the page imports
// it with `?worker&url`); the client starts it as a SharedWorker, or a dedicated worker.
import { startOutboxWorker } from 'outbox/worker';
startOutboxWorker({ app: 'todos', http: { todos: { url: '/api/mutations', batch: true } } });
