// A follower tab's insert goes through the leader: it is durable in the leader's outbox, every
// other tab shows the optimistic row while the server has not applied it, and closing the
// follower right after `durable` loses nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, withDemo } from './harness.mjs';
import { appliedOnce, hasRow, insertDurable, openTab, settledRoles } from './tabs.mjs';

test("a follower's insert is durable through the leader, shown everywhere, and survives its tab", async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const pages = [];
    for (let i = 0; i < 3; i++) pages.push(await openTab(browser, server, { dedicated: true }));
    const roles = await settledRoles(pages);
    assert.equal(roles.filter((r) => r.isLeaderTab).length, 1, JSON.stringify(roles));
    const leader = pages[roles.findIndex((r) => r.isLeaderTab)];
    const [follower, other] = pages.filter((p) => p !== leader);

    // The server refuses everything (503, retried later), so nothing can be applied and the feed
    // cannot bring the row back: whatever the other tabs show is the optimistic change.
    await server.faults({ unavailable: true });
    const [tx] = await insertDurable(follower, ['from the follower']);
    await follower.close({ runBeforeUnload: false });

    for (const tab of [leader, other]) {
      await eventually(() => hasRow(tab, tx.key), { what: `the optimistic row in ${tab === leader ? 'the leader' : 'the other follower'}` });
    }
    const during = await server.stats();
    assert.equal(during.keys[tx.id]?.applied ?? 0, 0, 'not applied while the server refuses');
    assert.equal(during.applied, 0);

    await server.faults({ unavailable: false });
    await leader.evaluate(() => window.outboxDemo.client.notifyOnline());
    const { stats, todos } = await appliedOnce(server, [tx]);
    assert.equal(stats.keys[tx.id].applied, 1, 'applied once');
    assert.deepEqual(stats.overApplied, []);
    assert.deepEqual(todos.rows.map((r) => r.key), [tx.key]);
    assert.equal(todos.rows[0].value.title, 'from the follower');
    // And the row stays in the remaining tabs once settled.
    for (const tab of [leader, other]) {
      await eventually(
        () => tab.evaluate((id) => !window.outboxDemo.client.transactions().some((t) => t.id === id), tx.id),
        { what: 'the transaction settled in every remaining tab' },
      );
      assert.ok(await hasRow(tab, tx.key));
    }
  });
});

test("a follower's insert is shown in the other tabs before the server's answer (delayMs)", async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const pages = [];
    for (let i = 0; i < 3; i++) pages.push(await openTab(browser, server, { dedicated: true }));
    const roles = await settledRoles(pages);
    const leader = pages[roles.findIndex((r) => r.isLeaderTab)];
    const [follower, other] = pages.filter((p) => p !== leader);

    await server.faults({ delayMs: 3000 });
    const [tx] = await insertDurable(follower, ['slow answer']);
    await follower.evaluate((id) => {
      window.__answered = false;
      window.__handles[id].completed.then(() => (window.__answered = true));
    }, tx.id);
    for (const tab of [leader, other]) await eventually(() => hasRow(tab, tx.key), { what: 'the row in another tab' });
    assert.equal(await follower.evaluate(() => window.__answered), false, 'shown before the answer arrived');
    await server.faults({ delayMs: 0 });
    await follower.waitForFunction(() => window.__answered, null, { timeout: 15_000 });
    const { stats } = await appliedOnce(server, [tx]);
    assert.equal(stats.keys[tx.id].applied, 1);
  });
});
