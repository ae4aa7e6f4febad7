// Server offline: while every request gets a 503, and then while every connection is dropped
// unanswered, the outbox grows and loses nothing; back online it drains in per-row order (each
// row's updates applied in the order they were made, each once). And a retry scheduled seconds
// ahead is brought forward by `notifyOnline()` and by the browser's `online` event: the server
// sees it before the time it was scheduled for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, withDemo } from './harness.mjs';
import { appliedOnce, openTab, settledRoles } from './tabs.mjs';

const stats = (page) => page.evaluate(() => window.outboxDemo.client.queueStats());

// Submits `make(todos)`'s transactions in one go (in order), waits until all are durable, and
// returns `{ id, key }` of each.
const submit = (page, rounds) =>
  page.evaluate(async (rounds) => {
    const { todos } = window.outboxDemo;
    const made = [];
    for (const { op, key, title } of rounds) {
      const h = op === 'insert' ? todos.insert({ id: key, title, done: false, createdAt: Date.now() }) : todos.update(key, { title });
      h.completed.catch(() => {});
      made.push({ id: h.id, key, h });
    }
    await Promise.all(made.map((m) => m.h.durable));
    return made.map(({ id, key }) => ({ id, key }));
  }, rounds);

test('offline (503, then dropped connections): the outbox grows, loses nothing, and drains in per-row order', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const page = await openTab(browser, server);
    await settledRoles([page]);
    const keys = ['row-a', 'row-b', 'row-c'];

    // Every request answered 503: three inserts and two rounds of renames of each row.
    await server.faults({ unavailable: true });
    const first = await submit(page, [
      ...keys.map((key) => ({ op: 'insert', key, title: `${key} v0` })),
      ...[1, 2].flatMap((v) => keys.map((key) => ({ op: 'update', key, title: `${key} v${v}` }))),
    ]);
    assert.equal((await stats(page)).size, 9, 'nine transactions in the outbox');
    await eventually(async () => (await server.stats()).requests > 0, { what: 'a first (refused) request' });

    // Every connection dropped unanswered: a third round of renames.
    await server.faults({ unavailable: false, offline: true });
    const second = await submit(page, keys.map((key) => ({ op: 'update', key, title: `${key} v3` })));
    assert.equal((await stats(page)).size, 12, 'the outbox grew to twelve');
    // A retry meets the dropped connection (a network error, not an answer).
    await eventually(
      () =>
        page.evaluate((id) => {
          const tx = window.outboxDemo.client.transactions().find((t) => t.id === id);
          return tx?.attempts.some((a) => a.error && a.error.status === undefined && /network/i.test(a.error.message));
        }, first[0].id),
      { what: 'an attempt failed by a dropped connection', timeout: 8_000 },
    );

    const all = [...first, ...second];
    const outbox = await page.evaluate(() => window.outboxDemo.client.peekOutbox());
    assert.deepEqual(outbox.map((t) => t.id).sort(), all.map((t) => t.id).sort(), 'every transaction is in the outbox');
    // Unsettled, every one: waiting for a retry, queued behind its row, or (a retry due just
    // now) being attempted — none completed or failed.
    const unsettled = ['pending', 'queued', 'persisting'];
    assert.ok(outbox.every((t) => unsettled.includes(t.state)), JSON.stringify(outbox.map((t) => t.state)));
    const during = await server.stats();
    assert.equal(during.applied, 0, 'nothing applied while offline');
    for (const key of keys) {
      assert.equal(await page.evaluate((k) => window.outboxDemo.todos.get(k)?.title, key), `${key} v3`, 'the view shows the latest rename');
    }

    await server.faults({ offline: false });
    await page.evaluate(() => window.outboxDemo.client.notifyOnline());
    const { stats: after, todos } = await appliedOnce(server, all);
    assert.deepEqual(after.overApplied, []);
    assert.equal(after.applied, all.length);
    for (const { id } of all) assert.equal(after.keys[id].applied, 1, `${id} applied once`);
    for (const key of keys) {
      const submitted = all.filter((t) => t.key === key).map((t) => t.id);
      assert.deepEqual(after.order[`todos/${key}`], submitted, `${key}: applied in submission order`);
    }
    assert.deepEqual(
      Object.fromEntries(todos.rows.map((r) => [r.key, r.value.title])),
      Object.fromEntries(keys.map((k) => [k, `${k} v3`])),
    );
    await eventually(async () => (await stats(page)).size === 0, { what: 'the outbox empty' });
  });
});

// Fails `page`'s new insert three times (503) and returns it with the time its next retry is
// scheduled for (backoff after the third failure: 4 s and up), read from its attempt records.
async function failThrice(server, page) {
  await server.faults({ unavailable: true });
  const id = await page.evaluate(() => {
    const h = window.outboxDemo.todos.insert({ id: crypto.randomUUID(), title: 'retry me', done: false, createdAt: Date.now() });
    h.completed.catch(() => {});
    return h.id;
  });
  const tx = await eventually(
    () =>
      page.evaluate((id) => {
        const tx = window.outboxDemo.client.transactions().find((t) => t.id === id);
        return tx?.state === 'pending' && tx.attempts.length === 3 && tx.attempts[2].retryScheduledFor ? tx : false;
      }, id),
    { what: 'three failed attempts', timeout: 10_000 },
  );
  const scheduled = tx.attempts[2].retryScheduledFor;
  assert.ok(scheduled - tx.attempts[2].completedAt >= 4_000, `the fourth attempt is scheduled ≥ 4 s ahead: ${JSON.stringify(tx.attempts[2])}`);
  assert.equal((await server.stats()).keys[id].requests, 3);
  await server.faults({ unavailable: false });
  return { id, scheduled };
}

// The server applied `id` (on its fourth request) before the time its retry was scheduled for.
async function assertBroughtForward(server, page, { id, scheduled }) {
  const s = await eventually(async () => {
    const s = await server.stats();
    return s.keys[id]?.applied === 1 && s;
  }, { what: 'the retry applied', timeout: 10_000 });
  const appliedBy = Date.now();
  assert.equal(s.keys[id].requests, 4, 'one more request, not more');
  assert.ok(appliedBy < scheduled, `seen applied ${scheduled - appliedBy} ms before the retry was due`);
  // The tab hears of it: the attempt that succeeded started before the retry was due.
  const started = await page.evaluate(
    (id) =>
      new Promise((resolve) => {
        const it = (e) => e.type === 'state' && e.id === id && e.state === 'persisting' && e.attempts === 4;
        const seen = window.__events.find(it);
        if (seen) return resolve(seen);
        const stop = window.outboxDemo.client.onEvent((e) => it(e) && (stop(), resolve(e)));
      }),
    id,
  );
  assert.ok(started.at < scheduled, `the fourth attempt started ${scheduled - started.at} ms before it was due`);
}

test('notifyOnline() brings a retry scheduled seconds ahead forward', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const page = await openTab(browser, server);
    await settledRoles([page]);
    const tx = await failThrice(server, page);
    await page.evaluate(() => window.outboxDemo.client.notifyOnline());
    await assertBroughtForward(server, page, tx);
  });
});

test("the browser's online event brings a retry scheduled seconds ahead forward", async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const page = await openTab(browser, server);
    await settledRoles([page]);
    await page.evaluate(() => {
      window.__online = 0;
      addEventListener('online', () => window.__online++);
    });
    const tx = await failThrice(server, page);
    await browser.context.setOffline(true);
    await browser.context.setOffline(false);
    await page.waitForFunction(() => window.__online === 1);
    await assertBroughtForward(server, page, tx);
  });
});
