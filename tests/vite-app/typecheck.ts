// Type-checks the package's declarations as an app sees them (`tsc -p vite-app` in `npm test`):
// the generated ones and the hand-written ones for index.js, the worker bootstrap and react.js.
import { connect, type OutboxClient, type OutboxTransactionRecord, type Row } from 'outbox';
import { startOutboxWorker, type OutboxWorkerOptions } from 'outbox/worker';
import { useCollection, useOutboxStatus, useTransactions, type OutboxStatus } from 'outbox/react';

interface Todo extends Row {
  id: string;
  title: string;
  done: boolean;
}

export async function page(): Promise<OutboxClient> {
  const client = await connect({ app: 'todos', workerUrl: '/w.js', http: { todos: { url: '/api/mutations' } } });
  const todos = client.collection('todos', { key: 'id' });
  const { rows, insert, update, delete: remove } = useCollection<Todo>(todos);
  const first: Todo | undefined = rows[0];
  insert({ id: '1', title: 'milk', done: false }).completed.catch(() => {});
  update('1', (draft) => void (draft.done = true));
  remove('1');
  const txs: readonly OutboxTransactionRecord[] = useTransactions(client);
  const status: OutboxStatus = useOutboxStatus(client, { queueStats: true });
  const size: number | undefined = status.queueStats?.size;
  const epoch: number | null = status.leaderEpoch;
  console.log(first, txs.length, size, epoch, status.mode === 'online-only', status.isLeaderTab);
  return client;
}

export function worker(): void {
  const options: OutboxWorkerOptions = {
    app: 'todos',
    http: { todos: { url: '/api/mutations', batch: true, timeoutMs: 10000 } },
    sync: { collections: ['todos'], feedSilenceMs: 30000 },
  };
  startOutboxWorker(options).then((leader) => console.log(leader.isLeader, leader.epoch));
}
