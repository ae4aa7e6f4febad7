// Storage quota exhausted: with transactions already durable in the outbox (the server offline, so
// they stay there), large rows are submitted until one cannot be stored. That submit fails, to its
// submitter, with OUTBOX_QUOTA_EXCEEDED and is rolled back; everything accepted before is intact,
// and once the quota is back and the server answers, drained: each applied once, the refused one
// never sent.
//
// The origin's quota is made small with DevTools' Storage.overrideQuotaForOrigin *before* the page
// opens: Chromium's IndexedDB keeps the space left for an origin while its databases are open and
// only asks again when that runs out, so an override made later is not seen (checked by hand:
// 1 MB written under a 300 kB override). The small rows fit; the large ones exhaust it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, withDemo } from './harness.mjs';
import { appliedOnce, insertDurable, openTab, settledRoles } from './tabs.mjs';

// Submits one row with a `size`-character title of random hex (IndexedDB compresses values, so
// repeated text would hardly use any quota); resolves once it is durable or refused.
const insertLarge = (page, size) =>
  page.evaluate(async (size) => {
    let noise = '';
    while (noise.length < size) {
      noise += Array.from(crypto.getRandomValues(new Uint8Array(32_768)), (b) => b.toString(16).padStart(2, '0')).join('');
    }
    const key = crypto.randomUUID();
    const h = window.outboxDemo.todos.insert({ id: key, title: noise.slice(0, size), done: false, createdAt: Date.now() });
    const completed = h.completed.then(
      () => null,
      (e) => ({ name: e.name, code: e.code, message: String(e.message) }),
    );
    const durable = await h.durable.then(
      () => null,
      (e) => ({ name: e.name, code: e.code, message: String(e.message) }),
    );
    if (!durable) {
      window.__handles ??= {};
      window.__handles[h.id] = h;
      return { id: h.id, key, durable: true };
    }
    return { id: h.id, key, durable: false, error: durable, completed: await completed, shown: window.outboxDemo.todos.get(key) !== undefined };
  }, size);

test('quota exhausted: the submit that cannot be stored fails with OUTBOX_QUOTA_EXCEEDED, earlier ones are kept and drained', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    // The persistent context's first, blank page becomes the demo tab (browser.open reuses it).
    const blank = browser.context.pages().find((p) => p.url() === 'about:blank');
    const cdp = await browser.context.newCDPSession(blank);
    const origin = server.url;
    const quota = 400_000;
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: quota });
    const page = await openTab(browser, server);
    assert.equal(page, blank);
    await settledRoles([page]);
    await server.faults({ offline: true });
    const early = await insertDurable(page, ['early 1', 'early 2', 'early 3']);
    const { usage, quota: seen } = await cdp.send('Storage.getUsageAndQuota', { origin });
    assert.equal(seen, quota, 'the override is in force');
    assert.ok(usage < quota - 100_000, `room left for small rows only (usage ${usage})`);

    // 100 kB rows (each record holds the row twice): one may fit, then one does not.
    const large = [];
    let refused = null;
    for (let i = 0; i < 8 && !refused; i++) {
      const tx = await insertLarge(page, 100_000);
      if (tx.durable) large.push(tx);
      else refused = tx;
    }
    assert.ok(refused, `a submit was refused within 8 large rows (quota ${quota})`);
    assert.equal(refused.error.name, 'OutboxError');
    assert.equal(refused.completed?.code, refused.error.code, '`completed` rejects too, alike');
    assert.equal(refused.shown, false, 'the refused row is rolled back');

    // Everything accepted before is intact, in the outbox and on screen.
    const kept = [...early, ...large];
    const outbox = await page.evaluate(() => window.outboxDemo.client.peekOutbox());
    assert.deepEqual(outbox.map((t) => t.id).sort(), kept.map((t) => t.id).sort(), 'the outbox holds exactly the accepted ones');
    // (Unsettled: while storage is full even their attempt records may not be writable.)
    assert.ok(outbox.every((t) => !['completed', 'failed'].includes(t.state)), JSON.stringify(outbox.map((t) => t.state)));
    for (const { key } of kept) assert.ok(await page.evaluate((k) => window.outboxDemo.todos.get(k) !== undefined, key), `row ${key} shown`);
    assert.equal((await server.stats()).applied, 0);

    // Quota back, server back: the accepted ones drain, each once; the refused one never left.
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });
    await server.faults({ offline: false });
    await page.evaluate(() => window.outboxDemo.client.notifyOnline());
    const { stats, todos } = await appliedOnce(server, kept);
    for (const { id } of kept) assert.equal(stats.keys[id].applied, 1, `${id} applied once`);
    assert.deepEqual(stats.overApplied, []);
    assert.equal(stats.keys[refused.id], undefined, 'the refused transaction was never sent');
    assert.deepEqual(todos.rows.map((r) => r.key).sort(), kept.map((t) => t.key).sort());
    await eventually(async () => (await page.evaluate(() => window.outboxDemo.client.queueStats())).size === 0, {
      what: 'the outbox empty',
    });

    // And storage works again: a new large row is durable and applied.
    const after = await insertLarge(page, 100_000);
    assert.equal(after.durable, true, JSON.stringify(after.error));
    await appliedOnce(server, [after]);

    // The refused one was never in the outbox: the app can still dismiss it from this tab.
    const listed = () => page.evaluate((id) => window.outboxDemo.client.transactions().some((t) => t.id === id), refused.id);
    assert.equal(await listed(), true, 'the refused transaction is listed, failed');
    await page.evaluate((id) => window.outboxDemo.client.removeFromOutbox(id), refused.id);
    assert.equal(await listed(), false, 'dismissed');

    // What the submitter was told (checked last, so that a wrong code does not hide the rest).
    assert.equal(refused.error.code, 'OUTBOX_QUOTA_EXCEEDED', JSON.stringify(refused.error));
    assert.match(refused.error.message, /quota/i);
  });
});
