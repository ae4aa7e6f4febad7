// Failures for good and dead letters: a 4xx fails a transaction as non-retriable and fails the
// transaction queued behind it on the same row as a dependency, naming it; a failed transaction
// stays in the outbox as a dead letter, which `retryDeadLetter` sends again (applied once) and
// `removeFromOutbox` discards for good (never applied, gone from every tab and from storage); a
// persistent 5xx is tried exactly 5 times, with the policy's backoff, then fails with a stable code.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, withDemo } from './harness.mjs';
import { hasRow, insertAndSettle, openTab, role, settledRoles } from './tabs.mjs';

const known = (page, id) => page.evaluate((id) => window.outboxDemo.client.transactions().find((t) => t.id === id) ?? null, id);
const peek = (page) => page.evaluate(() => window.outboxDemo.client.peekOutbox());

test('a 422 fails the transaction for good, and the one queued behind it on the row as its dependency', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const page = await openTab(browser, server);
    await settledRoles([page]);
    // The refusal is held back a little, so the update is surely queued behind the insert.
    await server.faults({ failNext: { count: 1, status: 422 }, delayMs: 300 });
    const out = await page.evaluate(async () => {
      const { todos } = window.outboxDemo;
      const key = crypto.randomUUID();
      const insert = todos.insert({ id: key, title: 'refused', done: false, createdAt: Date.now() });
      const update = todos.update(key, { title: 'refused, renamed' });
      const settle = (h) =>
        h.completed.then(
          () => null,
          (e) => ({ name: e.name, code: e.code, status: e.status, causeId: e.causeId, message: String(e.message) }),
        );
      const [first, second] = await Promise.all([settle(insert), settle(update)]);
      return { key, insert: insert.id, update: update.id, first, second, row: todos.get(key) ?? null };
    });
    await server.faults({ delayMs: 0 });

    assert.equal(out.first?.code, 'OUTBOX_NON_RETRIABLE', JSON.stringify(out.first));
    assert.equal(out.first.status, 422);
    assert.equal(out.first.name, 'OutboxError');
    assert.equal(out.second?.code, 'OUTBOX_DEPENDENCY_FAILED', JSON.stringify(out.second));
    assert.equal(out.second.causeId, out.insert, 'causeId names the failed insert');
    assert.ok(out.second.message.includes(out.insert), `the message names it too: ${out.second.message}`);
    assert.equal(out.row, null, 'both rolled back');

    const stats = await server.stats();
    assert.deepEqual(stats.keys[out.insert], { requests: 1, applied: 0 }, 'the insert was sent once');
    assert.equal(stats.keys[out.update], undefined, 'the update was never sent');
    // Both are dead letters, with their errors.
    const dead = await peek(page);
    const byId = Object.fromEntries(dead.map((t) => [t.id, t]));
    assert.equal(byId[out.insert]?.state, 'failed');
    assert.equal(byId[out.insert].error.code, 'OUTBOX_NON_RETRIABLE');
    assert.equal(byId[out.update]?.state, 'failed');
    assert.equal(byId[out.update].error.code, 'OUTBOX_DEPENDENCY_FAILED');
    assert.equal(byId[out.update].error.cause, out.insert);
  });
});

test('dead letters: retryDeadLetter sends one again (applied once), removeFromOutbox discards one for good', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const pages = [await openTab(browser, server, { dedicated: true }), await openTab(browser, server, { dedicated: true })];
    const roles = await settledRoles(pages);
    const leader = pages[roles.findIndex((r) => r.isLeaderTab)];
    const other = pages.find((p) => p !== leader);

    // Two inserts refused (422) one after the other, from the tab that does not lead.
    await server.faults({ failNext: { count: 1, status: 422 } });
    const kept = await insertAndSettle(other, 'to retry');
    await server.faults({ failNext: { count: 1, status: 422 } });
    const dropped = await insertAndSettle(other, 'to discard');
    for (const tx of [kept, dropped]) assert.equal(tx.error?.code, 'OUTBOX_NON_RETRIABLE', JSON.stringify(tx.error));

    // How a dead letter looks: in the outbox as `failed`, with its error; counted apart.
    const dead = await peek(other);
    assert.deepEqual(dead.map((t) => t.id).sort(), [kept.id, dropped.id].sort());
    for (const d of dead) {
      assert.equal(d.state, 'failed');
      assert.deepEqual([d.error.code, d.error.status], ['OUTBOX_NON_RETRIABLE', 422]);
      assert.equal(d.attempts.length, 1);
    }
    const qs = await other.evaluate(() => window.outboxDemo.client.queueStats());
    assert.deepEqual([qs.size, qs.deadLetters, qs.inFlight], [0, 2, 0], JSON.stringify(qs));
    for (const p of pages) {
      for (const tx of [kept, dropped]) {
        await eventually(async () => (await known(p, tx.id))?.state === 'failed', { what: `dead letter ${tx.id} listed in every tab` });
        assert.equal(await hasRow(p, tx.key), false, 'rolled back');
      }
    }

    // Retry: sent once more, applied once, its row back everywhere (from the server).
    await other.evaluate((id) => window.outboxDemo.client.retryDeadLetter(id), kept.id);
    const applied = await eventually(async () => {
      const s = await server.stats();
      return s.keys[kept.id]?.applied === 1 && s;
    }, { what: 'the retried dead letter applied' });
    assert.equal(applied.keys[kept.id].requests, 2, 'refused once, then sent once');
    for (const p of pages) {
      await eventually(() => hasRow(p, kept.key), { what: 'the retried row shown' });
      await eventually(async () => (await known(p, kept.id)) === null, { what: 'the retried transaction settled' });
    }
    const completed = await other.evaluate(
      (id) => window.__events.some((e) => e.type === 'state' && e.id === id && e.state === 'completed'),
      kept.id,
    );
    assert.ok(completed, 'the submitting tab heard it complete');

    // Discard (from the leader's tab): gone from the outbox and from every tab, never applied.
    await leader.evaluate((id) => window.outboxDemo.client.removeFromOutbox(id), dropped.id);
    assert.deepEqual(await peek(other), [], 'no dead letter left');
    assert.equal(await known(leader, dropped.id), null, 'gone from the tab that discarded it');
    // The other tab hears of the removal (the leader's last word on it says OUTBOX_REMOVED).
    await eventually(
      async () => {
        const tx = await known(other, dropped.id);
        return tx === null || tx.error?.code === 'OUTBOX_REMOVED';
      },
      { what: 'the removal heard in the other tab' },
    );
    const lingering = [];
    for (const [i, p] of pages.entries()) {
      assert.equal(await hasRow(p, dropped.key), false);
      const still = await known(p, dropped.id);
      const panel = await p.locator(`#dead li[data-id="${dropped.id}"]`).count();
      if (still || panel) lingering.push(`tab ${i}${p === leader ? ' (leader, discarded it)' : ''}: transactions() has it as ${still?.state} ${still?.error?.code}; dead-letter panel items: ${panel}`);
    }
    await assert.rejects(
      other.evaluate((id) => window.outboxDemo.client.retryDeadLetter(id), dropped.id),
      /OUTBOX_INVALID|no transaction/,
      'it cannot be retried any more',
    );

    // For good: the next leader, loading the outbox from IndexedDB, has neither.
    const before = (await role(other)).leaderEpoch;
    await leader.close({ runBeforeUnload: false });
    await eventually(async () => (await role(other)).isLeaderTab, { what: 'the other tab leading' });
    assert.ok((await role(other)).leaderEpoch > before);
    assert.deepEqual(await peek(other), []);
    const s = await server.stats();
    assert.deepEqual(s.keys[dropped.id], { requests: 1, applied: 0 }, 'the discarded one was never applied');
    assert.deepEqual(s.keys[kept.id], { requests: 2, applied: 1 });
    assert.deepEqual((await server.get('/api/todos')).rows.map((r) => r.key), [kept.key]);
    assert.deepEqual(lingering, [], 'the discarded dead letter is gone from every tab');
  });
});

test('a persistent 500: exactly 5 attempts with the backoff of the policy, then OUTBOX_RETRIES_EXHAUSTED', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const page = await openTab(browser, server);
    await settledRoles([page]);
    await server.faults({ failNext: { count: 100, status: 500 } });
    const tx = await insertAndSettle(page, 'never accepted');
    assert.equal(tx.error?.code, 'OUTBOX_RETRIES_EXHAUSTED', JSON.stringify(tx.error));
    assert.equal(tx.error.status, 500);
    assert.match(tx.error.message, /5 attempts/);

    const [dead] = await peek(page);
    assert.equal(dead?.id, tx.id);
    assert.equal(dead.state, 'failed');
    assert.equal(dead.error.code, 'OUTBOX_RETRIES_EXHAUSTED');
    assert.equal(dead.attempts.length, 5);
    // Each wait: min(1000·2^n, 60000) ms plus up to 30 %, and no attempt before it was due.
    for (let n = 0; n < 4; n++) {
      const a = dead.attempts[n];
      const wait = a.retryScheduledFor - a.completedAt;
      const base = Math.min(1000 * 2 ** n, 60_000);
      assert.ok(wait >= base && wait <= base * 1.3 + 1, `attempt ${n + 1}: retry after ${wait} ms (base ${base})`);
      assert.ok(dead.attempts[n + 1].startedAt >= a.retryScheduledFor, `attempt ${n + 2} not before it was due`);
      assert.equal(a.error.status, 500);
    }
    assert.equal(dead.attempts[4].retryScheduledFor, undefined, 'no sixth attempt scheduled');

    const stats = await server.stats();
    assert.deepEqual(stats.keys[tx.id], { requests: 5, applied: 0 }, 'exactly 5 requests');
    await server.faults({ failNext: null });
  });
});
