// The Rust frontend example (examples/rust-todo): a todo app written in Rust on
// outbox_client::typed, with plain web-sys DOM code. `bash scripts/dev rust-example` builds it into
// <target>/rust-todo (its index.html, its wasm-bindgen output under /app, and the demo's worker
// script /worker.js); `scripts/dev test` does that before the suite. The real server serves it at
// / with the leader's wasm at /pkg. Asserts on what the Rust app renders.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { eventually, TARGET, withDemo } from './harness.mjs';

const SITE = join(TARGET, 'rust-todo');
const options = {
  staticDir: SITE,
  artifacts: [[join(SITE, 'app/outbox_rust_todo.js'), 'bash scripts/dev rust-example']],
};

test('the Rust example in two tabs: added in one, listed in the other and applied once; a toggle in the other reaches the first; an online-only tab follows the feed itself', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    const url = server.url + '/';
    const a = await browser.open(url);
    const b = await browser.open(url);
    const ui = (page) => ({
      status: page.getByRole('status'),
      input: page.getByRole('textbox', { name: 'New todo' }),
      todos: page.getByRole('list', { name: 'Todos' }).getByRole('listitem'),
      row: (title) => page.getByRole('list', { name: 'Todos' }).getByRole('listitem').filter({ hasText: title }),
    });
    const [ua, ub] = [ui(a), ui(b)];

    // Both tabs served by one leader: the SharedWorker both start, so neither tab leads.
    for (const page of [a, b]) {
      await page.locator('[role=status][data-mode="offline-enabled"]').waitFor({ timeout: 15_000 });
    }
    for (const u of [ua, ub]) {
      assert.equal(await u.status.getAttribute('data-leader'), 'false');
      assert.match(await u.status.textContent(), /^offline-enabled · another tab or a shared worker leads$/);
    }
    assert.equal(await a.getByRole('alert').isHidden(), true, 'no problem shown');

    // Added through tab a's form, listed by tab b, applied once by the server.
    await a.bringToFront();
    await ua.input.and(a.locator(':enabled')).waitFor();
    await ua.input.fill('milk');
    await a.getByRole('button', { name: 'Add' }).click();
    await ub.row('milk').waitFor();
    assert.equal(await ua.input.inputValue(), '', 'the form is cleared');
    const rows = await eventually(async () => {
      const { rows } = await server.get('/api/todos');
      return rows.length > 0 && rows;
    }, { what: 'the row on the server' });
    assert.deepEqual(rows.map((r) => [r.value.title, r.value.done]), [['milk', false]]);
    let stats = await server.stats();
    assert.deepEqual(stats.overApplied, []);
    assert.equal(stats.applied, 1);
    for (const u of [ua, ub]) assert.deepEqual(await u.todos.allTextContents(), ['milk✕']);

    // Toggled in tab b: done in tab a (checkbox and class), and on the server.
    await b.bringToFront();
    await ub.row('milk').getByRole('checkbox').check();
    await a.locator('li.done', { hasText: 'milk' }).waitFor();
    assert.equal(await ua.row('milk').getByRole('checkbox').isChecked(), true);
    await eventually(async () => (await server.get('/api/todos')).rows[0]?.value.done === true, {
      what: 'done on the server',
    });
    stats = await server.stats();
    assert.deepEqual(stats.overApplied, []);
    assert.equal(stats.applied, 2, 'the insert and the toggle, once each');

    // A tab without Web Locks is online-only: it sends its own changes and follows the change
    // feed itself (the Rust app's Config::http and Config::sync). Its delete reaches a and b
    // through the server's feed and the leader.
    const c = await browser.context.newPage();
    await c.addInitScript(() => {
      delete Navigator.prototype.locks;
    });
    await c.goto(url);
    const uc = ui(c);
    await c.locator('[role=status][data-mode="online-only"]').waitFor({ timeout: 15_000 }).catch(async (error) => {
      // What the tab shows instead, and how far its page got (for a failure seen once in CI).
      const shown = await c.evaluate(() => ({
        status: document.getElementById('status')?.outerHTML,
        problem: document.getElementById('problem')?.outerHTML,
        locks: 'locks' in navigator,
        readyState: document.readyState,
        resources: performance.getEntriesByType('resource').map((r) => `${r.name} ${Math.round(r.startTime)}+${Math.round(r.duration)}ms`),
        sinceNavigation: Math.round(performance.now()),
      })).catch((e) => `(the page could not be read: ${e.message})`);
      throw new Error(`${error.message}\nthe online-only tab shows: ${JSON.stringify(shown, null, 1)}`);
    });
    assert.equal(await uc.status.getAttribute('data-leader'), 'false');
    await uc.row('milk').waitFor();
    assert.equal(await uc.row('milk').getByRole('checkbox').isChecked(), true);
    await uc.row('milk').getByRole('button', { name: 'Delete milk' }).click();
    for (const u of [uc, ua, ub]) {
      await eventually(async () => (await u.todos.count()) === 0, { what: 'the row gone' });
    }
    assert.deepEqual((await server.get('/api/todos')).rows, []);
    stats = await server.stats();
    assert.deepEqual(stats.overApplied, []);
    assert.equal(stats.applied, 3);
  }, options);
});

test('the Rust example with a dedicated worker per tab: one tab says it leads, and another does once that tab closes', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    await browser.context.addInitScript(() => delete globalThis.SharedWorker);
    const tabs = [await browser.open(server.url + '/'), await browser.open(server.url + '/')];
    const leaders = async (pages) => {
      const flags = await Promise.all(pages.map((p) => p.getByRole('status').getAttribute('data-leader')));
      return pages.filter((_, i) => flags[i] === 'true');
    };
    for (const page of tabs) {
      await page.locator('[role=status][data-mode="offline-enabled"]').waitFor({ timeout: 15_000 });
    }
    const [leader] = await eventually(async () => {
      const now = await leaders(tabs);
      return now.length === 1 && now;
    }, { what: 'one tab leading' });
    assert.equal(await leader.getByRole('status').textContent(), 'offline-enabled · this tab leads');
    const other = tabs.find((p) => p !== leader);
    await leader.close();
    await other.locator('[role=status][data-leader="true"]').waitFor({ timeout: 15_000 });
    assert.equal(await other.getByRole('status').textContent(), 'offline-enabled · this tab leads');
  }, options);
});
