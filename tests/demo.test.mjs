// The demo's smoke test (issue 5): load it, add a todo through the UI, see it in the list, and
// see it on the server, applied exactly once under the transaction's id as idempotency key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoReady, eventually, withDemo } from './harness.mjs';

test('a todo added in the demo is listed and applied on the server exactly once', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const tab = await browser.open(server.url);
    await demoReady(tab);

    await tab.getByRole('textbox', { name: 'New todo' }).fill('Buy oat milk');
    await tab.getByRole('button', { name: 'Add', exact: true }).click();

    // Listed at once (optimistic), then on the server.
    const list = tab.getByRole('list', { name: 'Todo list' });
    const item = list.getByRole('listitem').filter({ hasText: 'Buy oat milk' });
    await item.waitFor({ timeout: 5_000 });
    const key = await item.getAttribute('data-key');
    assert.ok(key, 'the list item carries its row key');

    const todos = await eventually(
      async () => {
        const body = await server.get('/api/todos');
        return body.rows.some((r) => r.key === key) && body;
      },
      { what: `the todo ${key} in GET /api/todos` },
    );
    assert.equal(todos.rows.length, 1);
    assert.equal(todos.rows[0].value.title, 'Buy oat milk');
    assert.equal(todos.rows[0].value.done, false);
    assert.equal(todos.seq, 1, 'one applied transaction');

    // The outbox panel shows the transaction done; its id is the key the server counted.
    const done = tab.locator('#txs tr[data-state="completed"]');
    await done.waitFor({ timeout: 10_000 });
    const txId = await done.getAttribute('data-id');
    const stats = await server.stats();
    assert.deepEqual(Object.keys(stats.keys), [txId], 'one idempotency key, the transaction id');
    assert.equal(stats.keys[txId].applied, 1, 'applied exactly once');
    assert.equal(stats.applied, 1);
    assert.deepEqual(stats.overApplied, []);
    assert.deepEqual(stats.order[`todos/${key}`], [txId]);

    // The row is still listed once the transaction has settled (now from the change feed).
    await tab.locator('#feed', { hasText: '#1' }).waitFor({ timeout: 5_000 });
    assert.equal(await list.getByRole('listitem').filter({ hasText: 'Buy oat milk' }).count(), 1);
    assert.equal(await tab.getByRole('alert').isVisible(), false, 'no problem shown');
  });
});

test('changes reach every tab: through the outbox, and from the server change feed', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const a = await browser.open(server.url);
    await demoReady(a);
    const b = await browser.open(server.url);
    await demoReady(b);
    const item = (tab, title) =>
      tab.getByRole('list', { name: 'Todo list' }).getByRole('listitem').filter({ hasText: title });

    // Added in tab A: shown in tab B. (A tab is brought to the front before it is clicked:
    // Playwright waits for animation frames, which a background tab gets few of.)
    await a.bringToFront();
    await a.getByRole('textbox', { name: 'New todo' }).fill('Water the plants');
    await a.getByRole('button', { name: 'Add', exact: true }).click();
    await item(b, 'Water the plants').waitFor({ timeout: 5_000 });
    const key = await item(b, 'Water the plants').getAttribute('data-key');

    // Ticked in tab B: ticked in tab A.
    await b.bringToFront();
    await b.getByRole('checkbox', { name: 'Water the plants' }).check();
    await a.getByRole('checkbox', { name: 'Water the plants' }).and(a.locator(':checked')).waitFor({ timeout: 5_000 });

    // Changed on the server by someone else (no Outbox involved): both tabs hear it on the feed.
    const id = `server-edit-${Date.now()}`;
    const mutation = (value) => ({ collection: 'todos', key, kind: 'update', modified: value, changes: { title: value.title } });
    const row = { id: key, title: 'Water the plants twice', done: true };
    await server.post('/api/mutations', { id, mutations: [mutation(row)] }, { 'Idempotency-Key': id });
    await item(a, 'Water the plants twice').waitFor({ timeout: 5_000 });
    await item(b, 'Water the plants twice').waitFor({ timeout: 5_000 });

    const { rows } = await eventually(async () => {
      const body = await server.get('/api/todos');
      return body.seq === 3 && body;
    }, { what: 'three applied transactions (insert, tick, server edit)' });
    assert.deepEqual(rows.map((r) => r.value.title), ['Water the plants twice']);
    const stats = await server.stats();
    assert.equal(stats.applied, 3);
    assert.deepEqual(stats.overApplied, []);
  });
});
