// One change feed per origin: the leader worker follows the server's feed (`sync` in the
// demo's worker script), stores the rows, and hands every entry to every tab over the channel
// (`sync: 'leader'` on the collection). These tests change rows on the server behind the tabs'
// backs (POST /api/mutations from here) and watch them arrive: in every tab, once, in order,
// through a leader failover, and in a tab that has to follow the feed itself (online-only).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, startServer, withDemo } from './harness.mjs';
import { clientReady, insertDurable, openTab, role, settledRoles } from './tabs.mjs';

/** Writes a row on the server directly (someone else's change): insert or update. */
async function serverWrite(server, row, { kind = 'insert', id = `server-${crypto.randomUUID()}` } = {}) {
  const mutation = { collection: 'todos', key: row.id, kind, modified: row, changes: row };
  await server.post('/api/mutations', { id, mutations: [mutation] }, { 'Idempotency-Key': id });
  return id;
}

/** Records, in a tab, every value each row key takes in the view (from change notifications). */
const watchRows = (page) =>
  page.evaluate(() => {
    window.__seen = {};
    window.outboxDemo.todos.subscribe((rows, keys) => {
      const byKey = new Map(rows.map((r) => [String(r.id), r]));
      for (const k of keys) (window.__seen[k] ??= []).push(byKey.get(k) ?? null);
    });
  });
const seen = (page) => page.evaluate(() => window.__seen);
const rowsOf = (page) =>
  page.evaluate(() =>
    Object.fromEntries(window.outboxDemo.todos.rows().map((r) => [String(r.id), { title: r.title, n: r.n, done: r.done }])),
  );
const serverRows = async (server) => {
  const body = await server.get('/api/todos');
  return { seq: body.seq, rows: Object.fromEntries(body.rows.map((r) => [r.key, { title: r.value.title, n: r.value.n, done: r.value.done }])) };
};

test('a change made on the server reaches every tab once, through the one feed the leader holds', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const tabs = [];
    for (let i = 0; i < 3; i++) tabs.push(await openTab(browser, server, { dedicated: true }));
    await settledRoles(tabs);
    await eventually(async () => (await server.stats()).feedsOpen === 1, { what: 'the leader’s feed open' });
    for (const tab of tabs) await watchRows(tab);

    const row = { id: 'from-the-server', title: 'written behind the tabs’ backs', done: false, createdAt: 1 };
    await serverWrite(server, row);
    for (const tab of tabs) {
      await eventually(async () => (await rowsOf(tab))[row.id]?.title === row.title, { what: 'the row in every tab' });
    }
    const { seq } = await serverRows(server);
    for (const tab of tabs) {
      assert.equal(await tab.evaluate(() => window.outboxDemo.client.feedPosition), seq, 'each tab is at the server’s seq');
      assert.equal((await seen(tab))[row.id].length, 1, 'shown once: no flicker, no second application');
      assert.ok(
        await tab.evaluate((seq) => window.__events.some((e) => e.type === 'synced' && e.seq === seq), seq),
        'the app heard the feed reach it',
      );
    }
    const stats = await server.stats();
    assert.equal(stats.feedsOpen, 1, 'three tabs, one feed connection');
    assert.equal(stats.feedsOpened, 1, 'and it was never reopened');
  });
});

test('a reloaded tab shows the rows its new leader restores from storage, with no change on the server', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    // Enough stored rows that the new leader is still reading them when the tab asks for them.
    const rows = Array.from({ length: 3000 }, (_, i) => ({ id: `stored-${i}`, title: `row ${i}`, done: false, createdAt: i }));
    for (let i = 0; i < rows.length; i += 300) {
      const id = `server-batch-${i}`;
      const mutations = rows.slice(i, i + 300).map((row) => ({ collection: 'todos', key: row.id, kind: 'insert', modified: row, changes: row }));
      await server.post('/api/mutations', { id, mutations }, { 'Idempotency-Key': id });
    }
    const page = await openTab(browser, server, { dedicated: true });
    await settledRoles([page]);
    const count = () => page.evaluate(() => window.outboxDemo.todos.size);
    await eventually(async () => (await count()) === rows.length, { what: 'every server row in the tab' });
    const { seq } = await serverRows(server);
    await eventually(async () => (await page.evaluate(() => window.outboxDemo.client.feedPosition)) === seq, { what: 'the tab at the server’s seq' });

    // The tab's dedicated worker dies with it; the new one leads from the rows it stored.
    await page.reload();
    await clientReady(page);
    await settledRoles([page]);
    await eventually(async () => (await count()) === rows.length, { timeout: 15_000, what: 'the stored rows back in the reloaded tab' });
    assert.equal((await serverRows(server)).seq, seq, 'nothing changed on the server meanwhile');
  });
});

test('a server restored to an earlier state is followed again: its old rows go and its new numbering applies', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const tabs = [];
    for (let i = 0; i < 2; i++) tabs.push(await openTab(browser, server, { dedicated: true }));
    await settledRoles(tabs);
    for (let i = 0; i < 5; i++) {
      await serverWrite(server, { id: `before-${i}`, title: `before ${i}`, done: false, createdAt: i });
    }
    const { seq: before } = await serverRows(server);
    for (const tab of tabs) {
      await eventually(async () => (await tab.evaluate(() => window.outboxDemo.client.feedPosition)) === before, { what: 'every tab at the server’s seq' });
    }
    // The same origin, a database restored to empty: its sequence numbers start again below
    // what the tabs have applied (and its feed, asked from there, would send nothing).
    const port = new URL(server.url).port;
    await server.stop();
    const restored = await startServer({ args: ['--port', port] });
    t.after(() => restored.stop());
    const row = { id: 'after-restore', title: 'written after the restore', done: false, createdAt: 9 };
    await serverWrite(restored, row);
    const { seq: after } = await serverRows(restored);
    assert.ok(after < before, `the restored server numbers from below (${after} < ${before})`);
    for (const tab of tabs) {
      await eventually(async () => {
        const rows = await rowsOf(tab);
        return rows[row.id]?.title === row.title && !('before-0' in rows);
      }, { timeout: 20_000, what: 'the restored server’s rows, and only those, in every tab' });
      await eventually(async () => (await tab.evaluate(() => window.outboxDemo.client.feedPosition)) === after, { what: 'the tab at the restored server’s seq' });
    }
    // And the feed goes on in the new numbering.
    const next = { id: 'after-restore-2', title: 'and another', done: false, createdAt: 10 };
    await serverWrite(restored, next);
    for (const tab of tabs) {
      await eventually(async () => (await rowsOf(tab))[next.id]?.title === next.title, { what: 'the next change in every tab' });
    }
  });
});

test('leader failover mid-feed: the new leader resumes the feed, no tab loses or reorders an entry', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const tabs = [];
    for (let i = 0; i < 3; i++) tabs.push(await openTab(browser, server, { dedicated: true }));
    const roles = await settledRoles(tabs);
    await eventually(async () => (await server.stats()).feedsOpen === 1, { what: 'the leader’s feed open' });
    const leader = tabs[roles.findIndex((r) => r.isLeaderTab)];
    const rest = tabs.filter((p) => p !== leader);
    for (const tab of rest) await watchRows(tab);

    const KEYS = ['a', 'b', 'c', 'd'];
    for (const k of KEYS) await serverWrite(server, { id: k, title: k, n: 0, createdAt: 1 });
    let closed = false;
    for (let n = 1; n <= 40; n++) {
      const k = KEYS[n % KEYS.length];
      await serverWrite(server, { id: k, title: k, n, createdAt: 1 }, { kind: 'update' });
      if (n === 15) {
        await leader.close(); // mid-feed: entries keep coming while no one leads
        closed = true;
      }
    }
    assert.ok(closed);
    const want = await serverRows(server);
    for (const tab of rest) {
      await eventually(async () => JSON.stringify(await rowsOf(tab)) === JSON.stringify(want.rows), {
        timeout: 15_000,
        what: 'every remaining tab on the server’s rows',
      });
      assert.equal(await tab.evaluate(() => window.outboxDemo.client.feedPosition), want.seq);
      // In order: a row's counter never goes back in any tab.
      const history = await seen(tab);
      for (const k of KEYS) {
        const ns = history[k].filter(Boolean).map((r) => r.n);
        for (let i = 1; i < ns.length; i++) assert.ok(ns[i] >= ns[i - 1], `${k} went back: ${ns}`);
      }
    }
    const after = await settledRoles(rest);
    assert.notEqual(after[0].leaderEpoch, roles[0].leaderEpoch, 'a new leader');
    const stats = await server.stats();
    assert.equal(stats.feedsOpen, 1, 'the new leader holds the one feed');
  });
});

test('a rejected change rolls back in every tab to exactly the row the feed gave', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const a = await openTab(browser, server, { dedicated: true });
    const b = await openTab(browser, server, { dedicated: true });
    await settledRoles([a, b]);
    const row = { id: 'kept', title: 'as the server has it', done: false, createdAt: 1 };
    await serverWrite(server, row);
    for (const tab of [a, b]) await eventually(async () => (await rowsOf(tab)).kept !== undefined, { what: 'the row in both tabs' });
    const before = await b.evaluate(() => window.outboxDemo.todos.get('kept'));

    await server.faults({ failNext: { count: 1, status: 422 }, delayMs: 300 });
    const failed = await a.evaluate(async () => {
      const h = window.outboxDemo.todos.update('kept', { title: 'refused', done: true });
      return h.completed.then(() => null, (e) => e.code);
    });
    assert.equal(failed, 'OUTBOX_NON_RETRIABLE');
    for (const tab of [a, b]) {
      await eventually(async () => (await tab.evaluate(() => window.outboxDemo.todos.get('kept').title)) === row.title, {
        what: 'rolled back in every tab',
      });
      assert.deepEqual(await tab.evaluate(() => window.outboxDemo.todos.get('kept')), before);
    }
  });
});

test('a completed change stays shown in every tab until the feed brings it (awaitSync): nothing flickers', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const a = await openTab(browser, server, { dedicated: true });
    const b = await openTab(browser, server, { dedicated: true });
    await settledRoles([a, b]);
    for (const tab of [a, b]) await watchRows(tab);
    const [tx] = await insertDurable(a, ['held until the feed has it']);
    for (const tab of [a, b]) {
      await eventually(
        async () => (await tab.evaluate((id) => window.outboxDemo.client.transactions().some((t) => t.id === id), tx.id)) === false,
        { what: 'the transaction settled in every tab' },
      );
      const history = (await seen(tab))[tx.key];
      assert.ok(history.length >= 1);
      assert.ok(history.every(Boolean), `never missing in between: ${JSON.stringify(history)}`);
      assert.equal((await rowsOf(tab))[tx.key]?.title, 'held until the feed has it');
    }
    const { seq } = await serverRows(server);
    assert.equal(await b.evaluate(() => window.outboxDemo.client.feedPosition), seq);
  });
});

test('an online-only tab follows the feed itself', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    await browser.context.addInitScript(() => {
      delete Navigator.prototype.locks;
    });
    const page = await openTab(browser, server);
    assert.equal((await role(page)).mode, 'online-only');
    await eventually(async () => (await server.stats()).feedsOpen === 1, { what: 'the tab’s own feed open' });
    await serverWrite(server, { id: 'seen-alone', title: 'no leader needed', done: false, createdAt: 1 });
    await eventually(async () => (await rowsOf(page))['seen-alone']?.title === 'no leader needed', { what: 'the row' });
  });
});

test("the app's merge function decides how a row with a pending change shows a server change", async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const page = await browser.open(`${server.url}/?worker=dedicated&conflict=merge`);
    await clientReady(page);
    await settledRoles([page]);
    await serverWrite(server, { id: 'm', title: 'first', done: false, createdAt: 1 });
    await eventually(async () => (await rowsOf(page)).m?.title === 'first', { what: 'the row' });
    // This tab's change is refused once (503) and waits for its retry: still unsettled.
    await server.faults({ failNext: { count: 1, status: 503 } });
    const before = (await server.stats()).requests;
    const id = await page.evaluate(() => {
      const h = window.outboxDemo.todos.update('m', { title: 'mine' });
      h.completed.catch(() => {});
      return h.id;
    });
    await eventually(async () => (await server.stats()).requests > before, { what: 'the refused attempt' });
    await serverWrite(server, { id: 'm', title: 'theirs', done: false, createdAt: 1 }, { kind: 'update' });
    await eventually(async () => (await rowsOf(page)).m?.title === 'mine ⇄ theirs', { what: 'the merge shown' });
    // The retry goes through; the feed brings this tab's change back and the row is the server's.
    await page.evaluate(() => window.outboxDemo.client.notifyOnline());
    await eventually(async () => (await server.stats()).keys[id]?.applied === 1, { what: 'the change applied' });
    await eventually(async () => (await rowsOf(page)).m?.title === 'mine', { what: 'the server row after it settled' });
  });
});
