// Credentials against the real server with `--auth required`: the leader's first call gets a
// 401, which pauses the whole outbox (nothing fails, nothing is retried in a storm) and asks the
// tabs for credentials; once a tab provides a bearer token the outbox drains, each change
// applied once and recorded as the user's. Signing out with `keep` leaves what is pending for
// the next sign-in; with `discard` it is gone. A 401 on the change feed asks the tabs too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, withDemo } from './harness.mjs';
import { hasRow, insertDurable, openTab, settledRoles } from './tabs.mjs';

test('a 401 pauses the outbox until a tab provides a token; then each change is applied once, as that user', async (t) => {
  await withDemo(
    t,
    async ({ server, browser }) => {
      const a = await openTab(browser, server, { dedicated: true });
      const b = await openTab(browser, server, { dedicated: true });
      await settledRoles([a, b]);
      const txs = await insertDurable(a, ['one', 'two', 'three']);
      // The leader tried, was refused, and asked every tab for credentials.
      for (const tab of [a, b]) {
        await eventually(
          () => tab.evaluate(() => window.__events.some((e) => e.type === 'credentials_needed')),
          { what: 'the call for credentials in every tab' },
        );
      }
      const before = await server.stats();
      const requests = Object.values(before.keys).reduce((n, k) => n + k.requests, 0);
      assert.equal(before.applied, 0);
      assert.ok(requests >= 1 && requests <= txs.length, `refused once, no storm: ${requests} requests`);
      const states = await a.evaluate(() => window.outboxDemo.client.transactions().map((t) => t.state));
      assert.ok(states.every((s) => s === 'pending'), `paused, not failed: ${states}`);

      // A tab signs in (here: the demo token) and hands the leader its header.
      await b.evaluate(() => window.outboxDemo.client.provideCredentials({ authorization: 'Bearer demo-alice' }));
      const stats = await eventually(
        async () => {
          const s = await server.stats();
          return txs.every(({ id }) => s.keys[id]?.applied === 1) && s;
        },
        { what: 'every change applied once with the token' },
      );
      assert.deepEqual(stats.overApplied, []);
      const rows = await (await fetch(`${server.url}/api/todos`, { headers: { authorization: 'Bearer demo-bob' } })).json();
      const mine = rows.rows.filter((r) => txs.some((x) => x.key === r.key));
      assert.equal(mine.length, 3);
      assert.ok(mine.every((r) => r.by === 'alice'), JSON.stringify(mine));
    },
    { serverArgs: ['--auth', 'required'] },
  );
});

test('signOut keeps or discards what is pending, and every tab of the scope closes', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const a = await openTab(browser, server, { dedicated: true });
    const b = await openTab(browser, server, { dedicated: true });
    await settledRoles([a, b]);
    await server.faults({ unavailable: true });
    await insertDurable(a, ['pending 1', 'pending 2']);
    const stats = await a.evaluate(() => window.outboxDemo.client.queueStats());
    assert.equal(stats.size, 2, 'what the app sees before it decides');
    const result = await a.evaluate(() => window.outboxDemo.client.signOut({ pending: 'discard' }));
    assert.deepEqual(result, { pending: 2, deadLetters: 0, discarded: 2 });
    for (const tab of [a, b]) {
      await eventually(
        () => tab.evaluate(() => window.__events.some((e) => e.type === 'signed_out')),
        { what: 'signed_out in every tab' },
      );
      const closed = await tab.evaluate(() => window.outboxDemo.client.queueStats().then(() => false, () => true));
      assert.ok(closed, 'the client is closed');
    }
    await server.faults({ unavailable: false });
    assert.equal((await server.stats()).applied, 0, 'nothing discarded was sent');
  });
});

test('a 401 on the change feed asks the tabs for credentials: a tab that only reads is not left behind', async (t) => {
  await withDemo(
    t,
    async ({ server, browser }) => {
      // Someone else's row, on the server before the tab opens.
      const id = `server-${crypto.randomUUID()}`;
      const row = { id: 'from-bob', title: 'from bob', done: false, createdAt: Date.now() };
      const mutation = { collection: 'todos', key: row.id, kind: 'insert', modified: row, changes: row };
      await server.post('/api/mutations', { id, mutations: [mutation] }, { 'Idempotency-Key': id, authorization: 'Bearer demo-bob' });
      const a = await openTab(browser, server, { dedicated: true });
      await settledRoles([a]);
      // No change of its own: only the sync's reads were refused, and the tab is asked. Before,
      // nothing asked, and the feed retried the stale (here: no) token for good.
      await eventually(
        () => a.evaluate(() => window.__events.some((e) => e.type === 'credentials_needed')),
        { what: 'the call for credentials', timeout: 15_000 },
      );
      assert.equal(await hasRow(a, row.id), false);
      await a.evaluate(() => window.outboxDemo.client.provideCredentials({ authorization: 'Bearer demo-alice' }));
      await eventually(() => hasRow(a, row.id), { what: "bob's row, through the feed" });
    },
    { serverArgs: ['--auth', 'required'] },
  );
});
