// Server failures seen by the whole outbox: a 4xx fails a transaction for good and rolls it back
// in every tab; a reply lost after the server applied is retried under the same key and
// applied once; an answer reached through a redirect is not taken for success.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, withDemo } from './harness.mjs';
import { hasRow, insertAndSettle, openTab, settledRoles } from './tabs.mjs';

test('a 422 fails the transaction as non-retriable and rolls it back in every tab', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const a = await openTab(browser, server);
    const b = await openTab(browser, server);
    await settledRoles([a, b]);
    await server.faults({ failNext: { count: 1, status: 422 } });
    const tx = await insertAndSettle(a, 'refused');
    assert.equal(tx.error?.code, 'OUTBOX_NON_RETRIABLE', JSON.stringify(tx.error));
    assert.equal(tx.error?.status, 422);
    for (const tab of [a, b]) {
      await eventually(async () => !(await hasRow(tab, tx.key)), { what: 'the row rolled back' });
    }
    const stats = await server.stats();
    assert.equal(stats.keys[tx.id]?.requests, 1, 'sent once, not retried');
    assert.equal(stats.keys[tx.id]?.applied, 0);
    assert.equal((await server.get('/api/todos')).rows.length, 0);
  });
});

test('a reply dropped after the server applied: retried with the same key, applied once', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const a = await openTab(browser, server);
    await settledRoles([a]);
    await server.faults({ dropReplies: 1 });
    const tx = await insertAndSettle(a, 'reply lost');
    assert.equal(tx.error, null, 'completed');
    const stats = await server.stats();
    assert.ok(stats.keys[tx.id].requests >= 2, `requests ${stats.keys[tx.id].requests}`);
    assert.equal(stats.keys[tx.id].applied, 1);
    assert.deepEqual(stats.overApplied, []);
    const todos = await server.get('/api/todos');
    assert.deepEqual(todos.rows.map((r) => r.key), [tx.key]);
    assert.equal(todos.seq, 1);
  });
});

test('an answer from where a redirect led (a sign-in page) is not taken for success: nothing is lost', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const a = await openTab(browser, server);
    await settledRoles([a]);
    // A proxy whose session expired answers the POST with 302 to its sign-in page; the browser
    // follows as a GET without the body and gets a page with 200. Before, that was success.
    await server.faults({ redirect: '/' });
    const tx = await insertAndSettle(a, 'redirected');
    assert.equal(tx.error?.code, 'OUTBOX_NON_RETRIABLE', JSON.stringify(tx.error));
    assert.match(tx.error.message, /redirected/);
    const stats = await server.stats();
    assert.equal(stats.keys[tx.id]?.requests, 1);
    assert.equal(stats.keys[tx.id]?.applied, 0);
    await eventually(async () => !(await hasRow(a, tx.key)), { what: 'the row rolled back' });
    // Signed in again: the dead letter, retried, is applied once.
    await server.faults({ redirect: null });
    await a.evaluate((id) => window.outboxDemo.client.retryDeadLetter(id), tx.id);
    await eventually(async () => (await server.stats()).keys[tx.id]?.applied === 1, { what: 'applied after the retry' });
    await eventually(() => hasRow(a, tx.key), { what: 'the row back' });
  });
});
