// A hostile script on the origin posts garbage and forged messages on the Outbox channel: a
// claim of leadership without its proof lock, transaction states under it, someone else
// speaking for the real leader, a forged refusal, and a resubmission of an existing
// transaction with different content. Every tab ignores and counts them; nothing breaks, no
// transaction changes, and the real leader goes on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, withDemo } from './harness.mjs';
import { appliedOnce, insertDurable, openTab, role, settledRoles } from './tabs.mjs';

const stats = (page) => page.evaluate(() => window.outboxDemo.client.messageStats);

test('garbage and forged channel messages are ignored and counted; no transaction changes', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const pages = [];
    for (let i = 0; i < 3; i++) pages.push(await openTab(browser, server, { dedicated: true }));
    const roles = await settledRoles(pages);
    const epoch = roles[0].leaderEpoch;
    await server.faults({ unavailable: true });
    const txs = await insertDurable(pages[1], ['one', 'two', 'three']);
    const before = await Promise.all(pages.map(stats));

    // The hostile script runs in a page of the same origin that is not an Outbox tab.
    const hostile = await browser.open(`${server.url}/_test/stats`);
    const victim = txs[0];
    const tabId = await pages[1].evaluate(() => window.outboxDemo.client.clientId);
    // A genuine transaction as the template for the forgeries (the wire form of a transaction).
    const template = await pages[1].evaluate(
      (id) => window.outboxDemo.client.transactions().find((t) => t.id === id),
      victim.id,
    );
    assert.ok(template, 'the victim transaction as the tab knows it');
    await hostile.evaluate(
      ({ epoch, victim, tabId, template }) => {
        const ch = new BroadcastChannel('outbox:todos');
        const post = (m) => ch.postMessage(typeof m === 'string' ? m : JSON.stringify(m));
        const env = (kind, fields = {}) => ({ v: 2, app: 'todos', from: 'mallory', body: { [kind]: fields } });
        const failedTx = { ...template, state: 'failed', error: { code: 'OUTBOX_NON_RETRIABLE', message: 'forged' } };
        const hijacked = structuredClone(template);
        for (const m of hijacked.mutations) for (const f of ['modified', 'changes']) if (m[f]) m[f].title = 'HIJACKED';
        // Garbage.
        ch.postMessage(42);
        ch.postMessage({ an: 'object' });
        post('{ not json');
        post({ v: 99, app: 'todos', from: 'mallory', body: 'hello' });
        post({ v: 2, app: 'another-app', from: 'mallory', body: 'hello' });
        post(env('no-such-kind'));
        post(env('state', { epoch: 'not a number', txs: 'nope' }));
        // Forgeries.
        post(env('leader', { epoch: epoch + 1000 }));
        post(env('state', { epoch: epoch + 1000, txs: [failedTx] }));
        post(env('state', { epoch, txs: [failedTx] }));
        post(env('durable', { epoch, ids: [victim.id] }));
        post({ ...env('rejected', { id: victim.id, error: failedTx.error }), to: tabId });
        post(env('resign', { epoch }));
        // A resubmission of an existing transaction with other content, addressed to the
        // real leader: submits are idempotent by id, so the original stands.
        post(env('submit', { epoch, tx: hijacked }));
        ch.close();
      },
      { epoch, victim, tabId, template },
    );

    // Each tab counts the garbage and the forgeries.
    for (const [i, p] of pages.entries()) {
      let seen;
      await eventually(
        async () => {
          const s = (seen = await stats(p));
          // The refused claim, and the state, durable and resign in the leader's name; the tab
          // the forged refusal was addressed to counts that too.
          const forged = before[i].forged + (p === pages[1] ? 5 : 4);
          return s.forged >= forged && s.malformed >= before[i].malformed + 2 && s;
        },
        { what: `tab ${i} counting the forgeries (before ${JSON.stringify(before[i])}, now ${JSON.stringify(seen)})` },
      ).catch((e) => {
        throw new Error(`${e.message}; now ${JSON.stringify(seen)} before ${JSON.stringify(before[i])}`);
      });
    }
    const after = await Promise.all(pages.map(stats));
    for (const [i, s] of after.entries()) {
      assert.ok(s.notText >= before[i].notText + 2, `tab ${i}: not text ${JSON.stringify(s)}`);
      assert.ok(s.unsupported > before[i].unsupported, `tab ${i}: unknown version`);
      assert.ok(s.foreign > before[i].foreign, `tab ${i}: another app`);
      assert.ok(s.unknownKind > before[i].unknownKind, `tab ${i}: unknown kind`);
    }
    // Nobody follows the forger; no transaction changed.
    const now = await Promise.all(pages.map(role));
    assert.deepEqual(now.map((r) => r.leaderEpoch), [epoch, epoch, epoch]);
    assert.equal(now.filter((r) => r.isLeaderTab).length, 1);
    for (const p of pages) {
      const states = await p.evaluate(
        (ids) => ids.map((id) => window.outboxDemo.client.transactions().find((t) => t.id === id)?.state),
        txs.map((x) => x.id),
      );
      assert.ok(states.every((s) => s && s !== 'failed' && s !== 'completed'), JSON.stringify(states));
    }

    // The real leader goes on: everything is applied once, with its original content.
    await server.faults({ unavailable: false });
    await pages[0].evaluate(() => window.outboxDemo.client.notifyOnline());
    const more = await insertDurable(pages[2], ['four']);
    const { stats: applied, todos } = await appliedOnce(server, [...txs, ...more]);
    for (const { id } of [...txs, ...more]) assert.equal(applied.keys[id].applied, 1);
    assert.deepEqual(applied.overApplied, []);
    const titles = todos.rows.map((r) => r.value.title).sort();
    assert.deepEqual(titles, ['four', 'one', 'three', 'two']);
  });
});
