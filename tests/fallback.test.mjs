// Online-only fallback: a page without Web Locks (navigator.locks removed), or without IndexedDB
// (removed, or throwing when read, as in some private modes), cannot have a leader or a durable
// outbox. The tab says so (mode `online-only`, a diagnostic naming the cause, shown by the demo)
// and still sends its changes itself: each reaches the server and is applied once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withDemo } from './harness.mjs';
import { appliedOnce, openTab, role } from './tabs.mjs';

const CASES = [
  {
    name: 'no navigator.locks',
    code: 'OUTBOX_NO_WEB_LOCKS',
    words: /Web Locks/,
    script: () => {
      delete Navigator.prototype.locks;
    },
    check: () => navigator.locks === undefined,
  },
  {
    name: 'no indexedDB',
    code: 'OUTBOX_NO_INDEXEDDB',
    words: /IndexedDB/,
    script: () => {
      Object.defineProperty(globalThis, 'indexedDB', { value: undefined, configurable: true });
    },
    check: () => globalThis.indexedDB === undefined,
  },
  {
    name: 'indexedDB throwing when read',
    code: 'OUTBOX_NO_INDEXEDDB',
    words: /IndexedDB/,
    script: () => {
      Object.defineProperty(globalThis, 'indexedDB', {
        get() {
          throw new DOMException('The user denied permission to access the database.', 'SecurityError');
        },
        configurable: true,
      });
    },
    check: () => {
      try {
        return void globalThis.indexedDB, false;
      } catch {
        return true;
      }
    },
  },
];

for (const c of CASES) {
  test(`${c.name}: online-only with ${c.code}, and changes still reach the server once`, async (t) => {
    await withDemo(t, async ({ server, browser }) => {
      await browser.context.addInitScript(c.script);
      const page = await openTab(browser, server);
      assert.equal(await page.evaluate(c.check), true, 'the init script took effect');

      const r = await role(page);
      assert.equal(r.mode, 'online-only');
      assert.equal(r.diagnostic?.code, c.code, JSON.stringify(r.diagnostic));
      assert.match(r.diagnostic.message, c.words);
      assert.equal(r.isLeaderTab, false);
      assert.equal(r.leaderEpoch, null, 'no leader');
      // The demo tells the user.
      const notice = page.locator('#diagnostic');
      await notice.waitFor({ state: 'visible' });
      assert.match(await notice.textContent(), new RegExp(c.code));
      assert.equal(await page.locator('#role').getAttribute('data-role'), 'online-only');

      const txs = await page.evaluate(async () => {
        const { todos } = window.outboxDemo;
        const key = crypto.randomUUID();
        const insert = todos.insert({ id: key, title: 'sent by the tab', done: false, createdAt: Date.now() });
        const update = todos.update(key, { done: true });
        const shown = todos.get(key);
        await Promise.all([insert.completed, update.completed]);
        return { shown, list: [{ id: insert.id, key }, { id: update.id, key }] };
      });
      assert.deepEqual({ title: txs.shown.title, done: txs.shown.done }, { title: 'sent by the tab', done: true }, 'shown at once');
      const { stats, todos } = await appliedOnce(server, txs.list);
      for (const { id } of txs.list) assert.equal(stats.keys[id].applied, 1, `${id} applied once`);
      assert.deepEqual(stats.overApplied, []);
      assert.deepEqual(stats.order[`todos/${txs.list[0].key}`], txs.list.map((x) => x.id), 'in order');
      assert.equal(todos.rows.length, 1);
      assert.equal(todos.rows[0].value.done, true);
      assert.equal((await role(page)).mode, 'online-only', 'still online-only');
    });
  });
}

// Online-only mode's executor is the worker's wasm, imported into the page when the tab needs it.
// If it cannot load (offline, and not cached), the app hears OUTBOX_ONLINE_EXECUTOR_FAILED (the
// page's listener hears the retries' failures: the first may come before it listens) and what the
// tab made waits; once a retry loads the executor, every change reaches the server, once each.
test('online-only, the executor not loading at first: OUTBOX_ONLINE_EXECUTOR_FAILED, then every change sent once', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    await browser.context.addInitScript(CASES[0].script);
    let blocked = true;
    await browser.context.route(/outbox_worker_bg\.wasm$/, (route) => (blocked ? route.abort() : route.continue()));
    const page = await openTab(browser, server);
    assert.equal((await role(page)).mode, 'online-only');
    await page.evaluate(() => {
      window.heard = [];
      window.outboxDemo.client.onEvent((e) => e.type === 'diagnostic' && window.heard.push(e.code));
    });
    const insert = (title) =>
      page.evaluate((title) => {
        const key = crypto.randomUUID();
        const tx = window.outboxDemo.todos.insert({ id: key, title, done: false, createdAt: Date.now() });
        window.completed = [...(window.completed ?? []), tx.completed];
        return { id: tx.id, key, title };
      }, title);
    const first = await insert('while the executor cannot load');
    await page.waitForFunction(() => window.heard.includes('OUTBOX_ONLINE_EXECUTOR_FAILED'));
    assert.equal((await server.stats()).applied, 0, 'nothing sent yet');

    blocked = false;
    const second = await insert('once it can');
    await page.evaluate(() => Promise.all(window.completed));
    const { stats, todos } = await appliedOnce(server, [first, second]);
    for (const { id } of [first, second]) assert.equal(stats.keys[id].applied, 1, `${id} applied once`);
    assert.deepEqual(stats.overApplied, []);
    assert.deepEqual(todos.rows.map((r) => r.value.title).sort(), [first.title, second.title].sort());
    assert.equal((await role(page)).mode, 'online-only', 'still online-only');
  });
});

// The executor of the worker's wasm reads the tab's `connect` options, so whatever `connect`
// accepted it must accept too: settings connect rounds (`maxBatch: 2.5`), leaves at their default
// (`retry: null`) or does not read (`awaitSync`, meant for the worker script).
test('online-only with options connect accepts loosely: the executor still sends, once', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    await browser.context.addInitScript(CASES[0].script);
    const page = await openTab(browser, server);
    assert.equal((await role(page)).mode, 'online-only');
    const tx = await page.evaluate(async () => {
      const { OutboxClient } = await import('/pkg/client/outbox_client.js');
      const client = await OutboxClient.connect({
        app: 'todos',
        workerUrl: '/worker.js',
        http: { todos: { url: '/api/mutations', batch: true } },
        maxBatch: 2.5,
        maxConcurrency: 1.5,
        retry: null,
        awaitSync: 'yes',
      });
      // Were the executor to refuse the options, the app would hear a diagnostic, not `completed`.
      const refused = new Promise((_, reject) =>
        client.onEvent((e) => e.code === 'OUTBOX_ONLINE_EXECUTOR_FAILED' && reject(new Error(`${e.code}: ${e.message}`))),
      );
      const todos = client.collection('todos', { key: 'id' });
      const key = crypto.randomUUID();
      const insert = todos.insert({ id: key, title: 'loose options', done: false, createdAt: Date.now() });
      await Promise.race([insert.completed, refused]);
      const mode = client.mode;
      client.close();
      return { id: insert.id, key, mode };
    });
    assert.equal(tx.mode, 'online-only');
    const { stats } = await appliedOnce(server, [tx]);
    assert.equal(stats.keys[tx.id].applied, 1);
    assert.deepEqual(stats.overApplied, []);
  });
});
