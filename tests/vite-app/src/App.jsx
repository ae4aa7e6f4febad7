// Components on the hooks of outbox/react. The end-to-end test reads what they render, and how
// often two of them did (`window.__renders`).
import { useState } from 'react';
import { useCollection, useOutboxStatus, useTransactions } from 'outbox/react';

export function App({ client, todos }) {
  return (
    <main>
      <Status client={client} />
      <Mode client={client} />
      <Todos todos={todos} />
      <Count client={client} />
      <Transactions client={client} />
    </main>
  );
}

function Status({ client }) {
  const { mode, isLeaderTab, leaderEpoch, queueStats } = useOutboxStatus(client, { queueStats: true });
  return (
    <p role="status" data-mode={mode} data-epoch={leaderEpoch ?? ''}>
      {mode} · leader epoch {leaderEpoch ?? '–'}
      {isLeaderTab ? ' · this tab leads' : ''} · outbox {queueStats ? queueStats.size : '?'}
    </p>
  );
}

const renders = () => (window.__renders ??= { mode: 0, count: 0 });

// The mode alone: nothing it shows changes while the tab's transactions come and go.
function Mode({ client }) {
  const { mode, diagnostic } = useOutboxStatus(client);
  renders().mode++;
  return <p data-testid="mode" data-mode={mode} data-code={diagnostic?.code ?? ''} />;
}

// Looks its collection up as it renders (a new wrapper each time, of the same collection).
function Count({ client }) {
  const { rows } = useCollection(client.collection('todos'));
  renders().count++;
  return <p data-testid="count" data-count={rows.length} />;
}

function Todos({ todos }) {
  const { rows, insert } = useCollection(todos);
  const [title, setTitle] = useState('');
  const add = (event) => {
    event.preventDefault();
    if (!title.trim()) return;
    const tx = insert({ id: crypto.randomUUID(), title: title.trim(), done: false });
    // A failure shows in <Transactions>; the row rolls back by itself.
    tx.durable.catch(() => {});
    tx.completed.catch(() => {});
    setTitle('');
  };
  return (
    <section>
      <form onSubmit={add}>
        <input aria-label="New todo" value={title} onChange={(e) => setTitle(e.target.value)} />
        <button>Add</button>
      </form>
      <ul aria-label="Todos">
        {rows.map((row) => (
          <li key={row.id}>{row.title}</li>
        ))}
      </ul>
    </section>
  );
}

function Transactions({ client }) {
  const transactions = useTransactions(client);
  return (
    <ul aria-label="Transactions">
      {transactions.map((tx) => (
        <li key={tx.id} data-state={tx.state}>
          {tx.mutations.map((m) => m.modified?.title ?? m.key).join(', ')}: {tx.state}
          {tx.error ? ` (${tx.error.code})` : ''} after {tx.attempts.length} attempt(s)
        </li>
      ))}
    </ul>
  );
}
