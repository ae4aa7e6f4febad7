// While a tab's own worker leads, the tab and its leader talk over the worker's port, not the
// BroadcastChannel: a port message skips the browser process (see worker/runtime/src/lane.rs).
// A spy on the channel (a page of the same origin that is no Outbox tab) shows which way each
// message went: the leader tab's submits and their `durable` never cross the channel; a
// follower tab's do; the leader's state broadcasts reach every tab either way, and the server
// applies every transaction once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withDemo } from './harness.mjs';
import { appliedOnce, insertDurable, openTab, settledRoles } from './tabs.mjs';

/** Listens on the demo's channel from a page that is no Outbox tab; `seen()` lists what passed. */
async function spyOn(browser, server) {
  const spy = await browser.open(`${server.url}/_test/stats`);
  await spy.evaluate(() => {
    window.__seen = [];
    const ch = new BroadcastChannel('outbox:todos');
    ch.onmessage = (e) => {
      try {
        const env = JSON.parse(e.data);
        const kind = typeof env.body === 'string' ? env.body : Object.keys(env.body)[0];
        const body = env.body[kind] ?? {};
        const ids = body.ids ?? (body.txs ?? []).map((t) => t.id);
        window.__seen.push({ kind, from: env.from, to: env.to ?? null, ids });
      } catch {
        window.__seen.push({ kind: 'unreadable' });
      }
    };
  });
  return { seen: () => spy.evaluate(() => window.__seen) };
}

const clientId = (page) => page.evaluate(() => window.outboxDemo.client.clientId);
const about = (seen, kind, id) => seen.filter((m) => m.kind === kind && m.ids.includes(id));

test('the leader tab talks to its own worker over the port; a follower tab over the channel', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const leaderTab = await openTab(browser, server, { dedicated: true });
    await settledRoles([leaderTab]);
    const follower = await openTab(browser, server, { dedicated: true });
    const roles = await settledRoles([leaderTab, follower]);
    assert.deepEqual(
      roles.map((r) => r.isLeaderTab),
      [true, false],
      'the first tab leads',
    );
    const spy = await spyOn(browser, server);
    const [mine] = await insertDurable(leaderTab, ['from the leader tab']);
    const [theirs] = await insertDurable(follower, ['from the follower']);
    await appliedOnce(server, [mine, theirs]);
    const [leaderId, followerId] = [await clientId(leaderTab), await clientId(follower)];

    const seen = await spy.seen();
    assert.deepEqual(about(seen, 'submit', mine.id), [], "the leader tab's submit is not on the channel");
    assert.deepEqual(about(seen, 'durable', mine.id), [], "nor its durable");
    assert.ok(about(seen, 'state', mine.id).length > 0, 'its states are broadcast (the spy hears the channel)');
    assert.ok(
      about(seen, 'submit', theirs.id).some((m) => m.from === followerId),
      "the follower's submit is on the channel",
    );
    assert.ok(
      about(seen, 'durable', theirs.id).some((m) => m.to === followerId),
      "and so is its durable, addressed to it",
    );
    assert.ok(!seen.some((m) => m.from === leaderId), `the leader tab posted nothing on the channel: ${JSON.stringify(seen)}`);
    // Each tab shows both rows: the follower heard the leader tab's transaction over the channel.
    for (const page of [leaderTab, follower]) {
      const keys = await page.evaluate(() => window.outboxDemo.todos.rows().map((r) => String(r.id)));
      assert.ok(keys.includes(mine.key) && keys.includes(theirs.key), `both rows in every tab: ${keys}`);
    }
  });
});

test('with a SharedWorker leading, every tab talks to it over its own port', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const pages = [await openTab(browser, server), await openTab(browser, server)];
    await settledRoles(pages);
    const spy = await spyOn(browser, server);
    const txs = [];
    for (const [i, page] of pages.entries()) txs.push(...(await insertDurable(page, [`tab ${i}`])));
    await appliedOnce(server, txs);
    const seen = await spy.seen();
    const ids = await Promise.all(pages.map(clientId));
    assert.ok(!seen.some((m) => ids.includes(m.from)), `no tab posted on the channel: ${JSON.stringify(seen)}`);
    assert.ok(!seen.some((m) => m.kind === 'durable'), 'no durable crossed the channel');
    for (const tx of txs) assert.ok(about(seen, 'state', tx.id).length > 0, 'the states are broadcast');
  });
});
