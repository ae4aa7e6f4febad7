// Two users on one origin (the demo's `?user=alice` / `?user=bob`, tokens from `POST /api/login`):
// each has an outbox scope of their own — leader, IndexedDB outbox, channel and optimistic view —
// and the server records each change as the user whose token sent it. A user who signs out with
// `keep` leaves their pending changes in their outbox: they are not sent while another user
// works, and go out as theirs at their next sign-in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, withDemo } from './harness.mjs';
import { appliedOnce, clientReady, insertDurable, openTab, role, settledRoles } from './tabs.mjs';

const keys = (page) => page.evaluate(() => window.outboxDemo.todos.rows().map((r) => r.id));
const pendingCount = (page) => page.evaluate(async () => (await window.outboxDemo.client.queueStats()).size);
const byKey = (todos) => new Map(todos.rows.map((r) => [r.key, r]));

test("two users' tabs on one origin never share a leader, an outbox or a view", async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const a1 = await openTab(browser, server, { dedicated: true, user: 'alice' });
    const a2 = await openTab(browser, server, { dedicated: true, user: 'alice' });
    const b = await openTab(browser, server, { dedicated: true, user: 'bob' });
    const alice = await settledRoles([a1, a2]);
    const [bob] = await settledRoles([b]);
    assert.equal(alice.filter((r) => r.isLeaderTab).length, 1, 'one leader among alice\'s tabs');
    assert.ok(bob.isLeaderTab, "bob's only tab leads bob's scope: alice's leader does not serve it");

    await server.faults({ unavailable: true });
    const mine = await insertDurable(a2, ['alice 1', 'alice 2']);
    const his = await insertDurable(b, ['bob 1']);
    // Each user's pending changes show in their own tabs only.
    await eventually(async () => (await keys(a1)).length === 2, { what: "alice's other tab shows her changes" });
    assert.deepEqual((await keys(a1)).sort(), mine.map((m) => m.key).sort());
    assert.deepEqual(await keys(b), [his[0].key]);
    assert.equal(await pendingCount(a1), 2);
    assert.equal(await pendingCount(b), 1);
    const dbs = await b.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
    const scoped = dbs.filter((n) => /alice|bob/.test(n));
    assert.equal(scoped.length, 2, `one outbox database per user: ${dbs}`);

    await server.faults({ unavailable: false });
    for (const tab of [a1, a2, b]) await tab.evaluate(() => window.outboxDemo.client.notifyOnline());
    const { stats, todos } = await appliedOnce(server, [...mine, ...his]);
    assert.deepEqual(stats.overApplied, []);
    const rows = byKey(todos);
    for (const m of mine) assert.equal(rows.get(m.key)?.by, 'alice');
    assert.equal(rows.get(his[0].key)?.by, 'bob');
    assert.equal((await role(a1)).leaderEpoch, alice[0].leaderEpoch, "bob's tab never moved alice's leader");
  });
});

test("alice's pending changes survive her sign-out (keep), are not sent while bob works, and go out as hers when she is back", async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const a = await openTab(browser, server, { dedicated: true, user: 'alice' });
    await settledRoles([a]);
    await server.faults({ unavailable: true });
    const hers = await insertDurable(a, ['alice pending 1', 'alice pending 2']);
    const counts = await a.evaluate(() => window.outboxDemo.client.signOut({ pending: 'keep' }));
    assert.deepEqual(counts, { pending: 2, deadLetters: 0, discarded: 0 });
    await a.close();
    await server.faults({ unavailable: false });
    const tried = await server.stats(); // alice's leader tried once before the outage ended

    const b = await openTab(browser, server, { dedicated: true, user: 'bob' });
    await settledRoles([b]);
    assert.equal(await pendingCount(b), 0, "bob's outbox does not hold alice's changes");
    assert.ok((await keys(b)).every((k) => !hers.some((h) => h.key === k)), "bob's view does not show them");
    const his = await insertDurable(b, ['bob now']);
    const afterBob = await appliedOnce(server, his);
    for (const h of hers) {
      assert.deepEqual(afterBob.stats.keys[h.id], tried.keys[h.id], `${h.id} was not sent while alice was away`);
      assert.equal(afterBob.stats.keys[h.id]?.applied ?? 0, 0);
    }

    const back = await openTab(browser, server, { dedicated: true, user: 'alice' });
    const { stats, todos } = await appliedOnce(server, hers);
    assert.deepEqual(stats.overApplied, []);
    const rows = byKey(todos);
    for (const h of hers) assert.equal(rows.get(h.key)?.by, 'alice', 'sent with her token, not bob\'s');
    assert.equal(rows.get(his[0].key)?.by, 'bob');
    await eventually(async () => (await pendingCount(back)) === 0, { what: "alice's outbox drained" });
  });
});

test("the demo's user switcher signs alice out (keeping her unsent change) and reloads the tab as bob", async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const page = await openTab(browser, server, { dedicated: true, user: 'alice' });
    await settledRoles([page]);
    await server.faults({ unavailable: true });
    const [kept] = await insertDurable(page, ['unsent as alice']);
    await Promise.all([page.waitForNavigation(), page.selectOption('#user', 'bob')]);
    await clientReady(page);
    assert.equal(await page.evaluate(() => window.outboxDemo.user), 'bob');
    assert.equal(await page.inputValue('#user'), 'bob');
    await settledRoles([page]);
    assert.equal(await pendingCount(page), 0, "bob's outbox is empty");
    assert.ok(!(await keys(page)).includes(kept.key), "alice's unsent change is not in bob's view");
    await server.faults({ unavailable: false });
    const back = await openTab(browser, server, { dedicated: true, user: 'alice' });
    await appliedOnce(server, [kept]);
    await eventually(async () => (await pendingCount(back)) === 0, { what: "alice's outbox drained" });
  });
});
