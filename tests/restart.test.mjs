// Reload with transactions pending: while the server cannot be reached, transactions made durable
// in two tabs survive every tab going away (a reload kills a tab's dedicated worker; a SharedWorker
// dies with its last tab). The reopened tabs show them again at once, from the IndexedDB outbox
// (the server has applied nothing and cannot answer), and once the server is back the outbox
// drains: each transaction applied exactly once, in per-row order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { eventually, withDemo } from './harness.mjs';
import { appliedOnce, clientReady, insertDurable, openTab, role, settledRoles, titles } from './tabs.mjs';

const LOCK = 'outbox:todos:leader';

// Three inserts in `a`, two in `b`, and in `b` a rename of `a`'s first row (an update queued behind
// that row's insert). Returns the transactions, the rename, and the titles every tab should show.
async function makePending(a, b) {
  const fromA = await insertDurable(a, ['a1', 'a2', 'a3']);
  const fromB = await insertDurable(b, ['b1', 'b2']);
  const target = fromA[0].key;
  await eventually(() => b.evaluate((k) => window.outboxDemo.todos.get(k) !== undefined, target), {
    what: "a's row shown in b",
  });
  const rename = await b.evaluate(async (key) => {
    const h = window.outboxDemo.todos.update(key, { title: 'a1 renamed in b' });
    h.completed.catch(() => {});
    await h.durable;
    return { id: h.id, key };
  }, target);
  const want = {
    [fromA[0].key]: 'a1 renamed in b',
    [fromA[1].key]: 'a2',
    [fromA[2].key]: 'a3',
    [fromB[0].key]: 'b1',
    [fromB[1].key]: 'b2',
  };
  return { txs: [...fromA, ...fromB, rename], rename, first: fromA[0], want };
}

// The reopened tabs show every pending row, from the outbox, while the server is still offline.
async function assertRestoredOffline(server, pages, { txs, want }) {
  for (const [i, page] of pages.entries()) {
    const rows = await eventually(
      async () => {
        const rows = await titles(page);
        return Object.keys(rows).length === Object.keys(want).length && rows;
      },
      { what: `the ${Object.keys(want).length} pending rows in reopened tab ${i}` },
    );
    assert.deepEqual(rows, want, `reopened tab ${i} shows the optimistic rows`);
    const pending = await page.evaluate(() =>
      window.outboxDemo.client.transactions().map((t) => ({ id: t.id, state: t.state })),
    );
    const ids = new Set(pending.map((t) => t.id));
    for (const { id } of txs) assert.ok(ids.has(id), `tab ${i} knows ${id} from the outbox`);
    assert.ok(
      pending.every((t) => t.state !== 'completed' && t.state !== 'failed'),
      `all still unsettled: ${JSON.stringify(pending)}`,
    );
  }
  const stats = await server.stats();
  assert.equal(stats.applied, 0, 'nothing applied while the server is offline');
  assert.deepEqual(stats.keys, {}, 'no request reached the server');
  assert.deepEqual((await server.get('/_test/faults')).offline, true, 'still offline');
}

// Back online: every transaction applied once, the rename after its insert, rows as shown.
async function assertDrained(server, pages, { txs, rename, first, want }) {
  await server.faults({ offline: false });
  await pages[0].evaluate(() => window.outboxDemo.client.notifyOnline());
  const { stats, todos } = await appliedOnce(server, txs);
  for (const { id } of txs) assert.equal(stats.keys[id].applied, 1, `${id} applied once`);
  assert.deepEqual(stats.overApplied, []);
  assert.equal(stats.applied, txs.length);
  assert.deepEqual(stats.order[`todos/${first.key}`], [first.id, rename.id], 'the insert, then the rename');
  const serverRows = Object.fromEntries(todos.rows.map((r) => [r.key, r.value.title]));
  assert.deepEqual(serverRows, want);
  for (const [i, page] of pages.entries()) {
    await eventually(
      () => page.evaluate(() => window.outboxDemo.client.transactions().length === 0),
      { what: `every transaction settled in tab ${i}` },
    );
    // Once the feed is back (it retries with backoff) the rows come from the server.
    await eventually(async () => isDeepStrictEqual(await titles(page), want), {
      what: `tab ${i} showing the ${Object.keys(want).length} rows after the drain`,
    });
  }
}

test('dedicated workers: reloading every tab keeps the pending outbox, which drains once back online', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const pages = [await openTab(browser, server, { dedicated: true }), await openTab(browser, server, { dedicated: true })];
    const before = await settledRoles(pages);
    assert.equal(before.filter((r) => r.isLeaderTab).length, 1);
    await server.faults({ offline: true });
    const made = await makePending(pages[0], pages[1]);

    // Both tabs reload at once: both dedicated workers die with their pages.
    await Promise.all(pages.map((p) => p.reload()));
    await Promise.all(pages.map(clientReady));
    const after = await settledRoles(pages);
    assert.equal(after.filter((r) => r.isLeaderTab).length, 1, JSON.stringify(after));
    assert.ok(after[0].leaderEpoch > before[0].leaderEpoch, `a new leader (${before[0].leaderEpoch} → ${after[0].leaderEpoch})`);

    await assertRestoredOffline(server, pages, made);
    await assertDrained(server, pages, made);
  });
});

test('SharedWorker: closing every tab and reopening keeps the pending outbox, which drains once back online', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const pages = [await openTab(browser, server), await openTab(browser, server)];
    const before = await settledRoles(pages);
    await server.faults({ offline: true });
    const made = await makePending(pages[0], pages[1]);

    // A page of the origin that runs no Outbox, to watch the leader lock from outside.
    const watcher = await browser.context.newPage();
    await watcher.goto(`${server.url}/_test/faults`);
    const lockHeld = () =>
      watcher.evaluate(async (name) => (await navigator.locks.query()).held.some((l) => l.name === name), LOCK);
    assert.equal(await lockHeld(), true, 'the SharedWorker holds the leader lock');

    for (const p of pages) await p.close({ runBeforeUnload: false });
    // The SharedWorker goes with its last tab, and its lock with it.
    await eventually(async () => !(await lockHeld()), { what: 'the leader lock released (the SharedWorker gone)' });

    const reopened = [await openTab(browser, server), await openTab(browser, server)];
    const after = await settledRoles(reopened);
    assert.ok(after[0].leaderEpoch > before[0].leaderEpoch, `a new SharedWorker leads (${before[0].leaderEpoch} → ${after[0].leaderEpoch})`);
    assert.equal((await role(reopened[0])).isLeaderTab, false);

    await assertRestoredOffline(server, reopened, made);
    await assertDrained(server, reopened, made);
  });
});

// The view must not lose a row between "completed" and the sync showing it. A tab opened while the
// server is offline has had no word from its sync source yet; its completed changes still have to
// stay shown until the feed has them, as they do in a tab whose feed loaded before.
test('a tab reopened while the server is offline keeps showing its rows while the outbox drains', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const page = await openTab(browser, server, { dedicated: true });
    await settledRoles([page]);
    await server.faults({ offline: true });
    const txs = await insertDurable(page, ['x1', 'x2', 'x3']);
    const want = Object.fromEntries(txs.map(({ key }, i) => [key, `x${i + 1}`]));
    await page.reload();
    await clientReady(page);
    await settledRoles([page]);
    await eventually(async () => isDeepStrictEqual(await titles(page), want), { what: 'the pending rows after the reload' });

    // From now on, every change of the view is checked for the three rows.
    await page.evaluate((keys) => {
      window.__gaps = [];
      window.outboxDemo.todos.subscribe((rows) => {
        const have = new Set(rows.map((r) => String(r.id)));
        const missing = keys.filter((k) => !have.has(k));
        const states = window.outboxDemo.client.transactions().map((t) => t.state);
        if (missing.length) window.__gaps.push({ at: Date.now(), missing, states });
        else if (window.__gaps.length && !window.__backAt) window.__backAt = Date.now();
      });
    }, Object.keys(want));
    const back = Date.now();
    await server.faults({ offline: false });
    await page.evaluate(() => window.outboxDemo.client.notifyOnline());
    const { stats } = await appliedOnce(server, txs);
    for (const { id } of txs) assert.equal(stats.keys[id].applied, 1);
    await eventually(() => page.evaluate(() => window.outboxDemo.client.transactions().length === 0), { what: 'all settled' });
    await eventually(async () => isDeepStrictEqual(await titles(page), want), { what: 'the rows from the feed' });

    const { gaps, backAt } = await page.evaluate(() => ({ gaps: window.__gaps, backAt: window.__backAt }));
    const shown = gaps.map((g) => `+${g.at - back} ms: ${g.missing.length} missing (transactions: ${g.states.join(',') || 'none'})`);
    if (backAt) shown.push(`+${backAt - back} ms: all shown again (from the feed)`);
    assert.deepEqual(shown, [], 'the rows stayed shown from the reload until the feed had them');
  });
});
