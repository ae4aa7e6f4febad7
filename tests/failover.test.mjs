// Failover: close the leader tab while its transactions are mid-attempt (the server slowed down
// so that answers are still on their way); another tab's worker takes the lead, picks the
// outbox up from IndexedDB, and every transaction is applied on the server exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, withDemo } from './harness.mjs';
import { appliedOnce, insertDurable, openTab, role, settledRoles } from './tabs.mjs';

test('closing the leader mid-attempt: another tab leads, each of 20 transactions applied once', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const pages = [];
    for (let i = 0; i < 3; i++) pages.push(await openTab(browser, server, { dedicated: true }));
    const roles = await settledRoles(pages);
    assert.equal(roles.filter((r) => r.isLeaderTab).length, 1, JSON.stringify(roles));
    const leader = pages[roles.findIndex((r) => r.isLeaderTab)];
    const others = pages.filter((p) => p !== leader);
    const oldEpoch = roles[0].leaderEpoch;

    await server.faults({ delayMs: 300 });
    const titles = Array.from({ length: 20 }, (_, i) => `failover ${i}`);
    const txs = await insertDurable(leader, titles);
    // Mid-attempt: the leader has sent at least one request whose answer is held back.
    await eventually(async () => (await server.stats()).requests > 0, { what: 'a first request on the server' });
    const before = await server.stats();

    const closedAt = Date.now();
    await leader.close({ runBeforeUnload: false });

    const next = await eventually(
      async () => {
        for (const p of others) if ((await role(p)).isLeaderTab) return p;
        return false;
      },
      { timeout: 15_000, what: 'a new leader tab' },
    );
    const newRole = await role(next);
    assert.ok(newRole.leaderEpoch > oldEpoch, `the epoch grows (${oldEpoch} → ${newRole.leaderEpoch})`);
    assert.equal((await Promise.all(others.map(role))).filter((r) => r.isLeaderTab).length, 1, 'one new leader');
    await server.faults({ delayMs: 0 });

    const { stats, todos } = await appliedOnce(server, txs);
    for (const { id } of txs) assert.equal(stats.keys[id].applied, 1, `${id} applied once`);
    assert.deepEqual(stats.overApplied, []);
    assert.equal(stats.applied, 20);
    const keys = new Set(todos.rows.map((r) => r.key));
    for (const { key } of txs) assert.ok(keys.has(key), `row ${key} on the server`);
    assert.equal(todos.rows.length, 20);

    // When the new leader took over and first attempted (from its tab's client events).
    const events = await next.evaluate(() => window.__events);
    const lead = events.find((e) => e.type === 'leader' && e.isLeaderTab && e.seenAt >= closedAt);
    const attempt = events.find(
      (e) => e.type === 'state' && e.state === 'persisting' && e.seenAt >= (lead?.seenAt ?? closedAt),
    );
    const resent = Object.values(stats.keys).filter((k) => k.requests > 1).length;
    console.log(
      `failover: requests before close ${before.requests}; leader after ${lead ? lead.seenAt - closedAt : '?'} ms; ` +
        `first attempt event after ${attempt ? attempt.seenAt - closedAt : '?'} ms; ${resent} keys sent more than once`,
    );
  });
});
