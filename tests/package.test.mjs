// The npm package in a bundler: tests/vite-app, a small React app built by Vite against the
// packed tarball (`bash scripts/dev vite-app` packs, installs and builds it; `scripts/dev test`
// does that before the suite), served by the reference server. Two tabs: an insert in one shows
// in the other's React component, and a write the server rejects rolls back in both. Asserts on
// what the components render. Also checks that the README's quick start is what the app runs.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { eventually, ROOT, withDemo } from './harness.mjs';

const APP = join(ROOT, 'tests/vite-app');
const DIST = join(APP, 'dist');
const options = {
  staticDir: DIST,
  artifacts: [[join(DIST, 'index.html'), 'bash scripts/dev vite-app (after bash scripts/dev build)']],
};

test("the README's quick start is what the Vite app runs, verbatim", async () => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('Install it in a bundler'));
  assert.ok(section, 'README has a section "Install it in a bundler"');
  // The first two code blocks: the worker script and the page (the React hooks come after).
  const quickStart = [...section.matchAll(/```js\n([\s\S]*?)```/g)]
    .slice(0, 2)
    .flatMap((m) => m[1].split('\n'))
    .map((l) => l.trim())
    .filter(Boolean);
  const app = (await Promise.all(['src/main.jsx', 'src/outbox-worker.js'].map((f) => readFile(join(APP, f), 'utf8'))))
    .join('\n')
    .split('\n')
    .map((l) => l.trim());
  assert.equal(quickStart.length, 5, `the quick start: ${JSON.stringify(quickStart)}`);
  for (const line of quickStart) assert.ok(app.includes(line), `the app does not have the README's line:\n  ${line}`);
});

// Once with the SharedWorker the client prefers, once with a dedicated worker per tab (the test
// hides SharedWorker from the pages; the app is the same).
for (const dedicated of [false, true]) {
  const workers = dedicated ? 'dedicated workers' : 'a SharedWorker';
  test(`the Vite app in two tabs (${workers}): an insert shows in the other tab, a rejected write rolls back in both`, async (t) => {
    await withDemo(t, async ({ server, browser }) => {
      if (dedicated) await browser.context.addInitScript(() => delete globalThis.SharedWorker);
      await twoTabs({ server, browser, dedicated });
    }, options);
  });
}

// Online-only mode runs the executor of the worker's wasm in the page, imported only then: the
// bundler must have kept that import working. No Web Locks, so no leader: the page loads the
// worker's module itself, and an insert still reaches the server, once.
test('the Vite app without Web Locks: online-only, the executor imported into the page, an insert applied once', async (t) => {
  await withDemo(t, async ({ server, browser }) => {
    await browser.context.addInitScript(() => {
      delete Navigator.prototype.locks;
    });
    const page = await browser.open(server.url + '/');
    await page.locator('[role=status][data-mode="online-only"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-testid=mode][data-mode="online-only"][data-code="OUTBOX_NO_WEB_LOCKS"]').waitFor({ state: 'attached' });
    const modeRenders = await page.evaluate(() => window.__renders.mode);
    await page.getByRole('textbox', { name: 'New todo' }).fill('bread');
    await page.getByRole('button', { name: 'Add' }).click();
    const rows = await eventually(async () => {
      const { rows } = await server.get('/api/todos');
      return rows.length > 0 && rows;
    }, { what: 'the row on the server' });
    assert.deepEqual(rows.map((r) => r.value.title), ['bread']);
    await texts(page.getByRole('list', { name: 'Transactions' }).getByRole('listitem'), []);
    await page.locator('[data-testid=count][data-count="1"]').waitFor({ state: 'attached' });
    // useOutboxStatus renders again only when what it holds changes: the online-only
    // diagnostic, a new object at every read, rendered it again at every event before.
    assert.equal(await page.evaluate(() => window.__renders.mode), modeRenders, 'no render of the unchanged mode');
    const stats = await server.stats();
    assert.deepEqual(stats.overApplied, []);
    assert.equal(stats.applied, 1);
    const loaded = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname));
    assert.ok(loaded.some((p) => /outbox_worker_bg[^/]*\.wasm$/.test(p)), `the page loaded the worker's wasm: ${loaded}`);
  }, options);
});

/** The scenario, in tabs `a` and `b` of the Vite app. */
async function twoTabs({ server, browser, dedicated }) {
  const a = await browser.open(server.url + '/');
  const b = await browser.open(server.url + '/');
  const ui = (page) => ({
    status: page.getByRole('status'),
    todos: page.getByRole('list', { name: 'Todos' }).getByRole('listitem'),
    transactions: page.getByRole('list', { name: 'Transactions' }).getByRole('listitem'),
  });
  const [ua, ub] = [ui(a), ui(b)];

  // useOutboxStatus: both tabs served by one leader, its queue empty. With dedicated workers
  // one tab's worker leads ("this tab leads"); a SharedWorker is no tab's.
  for (const page of [a, b]) await page.locator('[role=status][data-mode="offline-enabled"]').waitFor({ timeout: 15_000 });
  const epochs = await Promise.all([ua, ub].map((u) => u.status.getAttribute('data-epoch')));
  assert.ok(epochs[0] && epochs[0] === epochs[1], `one leader epoch: ${epochs}`);
  const leading = async () => (await Promise.all([ua, ub].map((u) => u.status.textContent()))).filter((s) => s.includes('this tab leads')).length;
  if (dedicated) await eventually(async () => (await leading()) === 1, { what: 'one tab leading' });
  else assert.equal(await leading(), 0);
  for (const u of [ua, ub]) await hasText(u.status, /outbox 0$/);

  // useCollection: typed and added in tab a, listed in tab b; applied once on the server.
  await a.bringToFront();
  await a.getByRole('textbox', { name: 'New todo' }).fill('milk');
  await a.getByRole('button', { name: 'Add' }).click();
  await ub.todos.filter({ hasText: 'milk' }).waitFor();
  const todos = await eventually(async () => {
    const { rows } = await server.get('/api/todos');
    return rows.length > 0 && rows;
  }, { what: 'the row on the server' });
  assert.deepEqual(todos.map((r) => r.value.title), ['milk']);
  const stats = await server.stats();
  assert.deepEqual(stats.overApplied, []);
  assert.equal(stats.applied, 1);
  // A component that looks its collection up as it renders counts it too (it looped, React's
  // "Maximum update depth exceeded", before).
  for (const page of [a, b]) await page.locator('[data-testid=count][data-count="1"]').waitFor({ state: 'attached' });
  // useTransactions: once completed, no transaction is left in either tab; the row stays.
  for (const u of [ua, ub]) {
    await texts(u.transactions, []);
    await texts(u.todos, ['milk']);
  }

  // A write the server refuses (422, answered after 1 s): shown in both tabs meanwhile, with
  // the outbox holding it, then rolled back in both, failed for good in both transaction lists.
  await server.faults({ delayMs: 1000, failNext: { count: 1, status: 422 } });
  await a.getByRole('textbox', { name: 'New todo' }).fill('refused');
  await a.getByRole('button', { name: 'Add' }).click();
  for (const u of [ub, ua]) await u.todos.filter({ hasText: 'refused' }).waitFor();
  await hasText(ub.status, /outbox 1$/);
  for (const u of [ua, ub]) {
    await u.transactions.filter({ hasText: 'refused: failed (OUTBOX_NON_RETRIABLE) after 1 attempt(s)' }).waitFor();
    await texts(u.todos, ['milk']);
  }
  await server.faults({ delayMs: 0 });
  assert.deepEqual((await server.get('/api/todos')).rows.map((r) => r.value.title), ['milk']);
  assert.equal((await server.stats()).applied, 1, 'nothing more applied');
}

/** Waits until the element's text matches `re`. */
const hasText = (locator, re) =>
  eventually(async () => re.test(await locator.textContent()), { what: `text matching ${re}` });

/** Waits until the list items' texts are exactly `want`. */
const texts = (items, want) =>
  eventually(async () => JSON.stringify(await items.allTextContents()) === JSON.stringify(want), {
    what: `the items ${JSON.stringify(want)}`,
  });
