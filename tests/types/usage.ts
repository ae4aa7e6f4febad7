// A small app written against the generated declarations of the client (outbox_client.d.ts),
// checked with `tsc --noEmit` in the test suite: if the API's types drift from what an app
// writes, this stops compiling.
import init, {
  OutboxClient,
  type ConnectOptions,
  type OutboxError,
  type OutboxMode,
  type Row,
  type TransactionState,
} from '../../www/pkg/client/outbox_client.js';

interface Todo extends Row {
  id: string;
  title: string;
  done: boolean;
}

export async function app(render: (rows: Row[]) => void): Promise<void> {
  await init();
  const options: ConnectOptions = {
    app: 'todos',
    workerUrl: '/worker.js',
    sharedWorker: 'auto',
    http: { todos: { url: '/api/mutations', batch: true, maxBatchBytes: 256 * 1024, timeoutMs: 10000 } },
    retry: { maxRetries: 4 },
    getCredentials: async () => ({ Authorization: 'Bearer demo-alice' }),
  };
  const client = await OutboxClient.connect(options);
  const mode: OutboxMode = client.mode;
  client.onModeChange((m: OutboxMode) => console.log('mode', m, mode));

  const todos = client.collection('todos', { key: 'id', strategy: 'ordered' });
  const unsubscribe = todos.subscribe(() => render(todos.rows()));
  const todo: Todo = { id: crypto.randomUUID(), title: 'Buy milk', done: false };
  const handle = todos.insert(todo);
  const state: TransactionState = handle.state;
  console.log(handle.id, state);
  await handle.durable;
  try {
    await handle.completed;
  } catch (e) {
    const err = e as OutboxError;
    console.log(err.code, err.causeId, err.status);
  }
  todos.update(todo.id, { done: true });
  todos.delete(todo.id);
  // Options may be left out: a lookup of a collection already defined, a transaction of the
  // default function.
  const again = client.collection('todos');
  client.transaction().mutate(() => again.update(todo.id, { title: 'Buy oat milk' }));

  const stats = await client.queueStats();
  console.log(stats.size, stats.inFlight, stats.deadLetters, client.shouldBackOff());
  for (const tx of client.transactions()) {
    console.log(tx.id, tx.state, tx.attempts.length, tx.error?.code);
  }
  await client.drain();
  unsubscribe();
}
