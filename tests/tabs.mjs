// Helpers for the multi-tab tests: tabs of the demo page, driven through the client it keeps on
// `window.outboxDemo` ({ client, todos }), with every client event recorded on `window.__events`.
import { eventually } from './harness.mjs';

/**
 * Opens a demo tab (`dedicated`: `/?worker=dedicated`; `user`: as that demo user, `&user=alice`)
 * and waits until its client has a mode.
 */
export async function openTab(browser, server, { dedicated = false, user } = {}) {
  const query = new URLSearchParams();
  if (dedicated) query.set('worker', 'dedicated');
  if (user) query.set('user', user);
  const page = await browser.open(`${server.url}/${query.size ? `?${query}` : ''}`);
  return clientReady(page);
}

/** Waits until a demo tab (just opened or reloaded) has a client with a mode; records its events. */
export async function clientReady(page) {
  await page.waitForFunction(
    () => window.outboxDemo && window.outboxDemo.client.mode !== 'connecting',
    null,
    { timeout: 15_000 },
  );
  await page.evaluate(() => {
    if (window.__events) return;
    window.__events = [];
    window.outboxDemo.client.onEvent((e) => window.__events.push({ ...e, seenAt: Date.now() }));
  });
  return page;
}

/** `{ mode, isLeaderTab, leaderEpoch, diagnostic }` of a tab's client. */
export const role = (page) =>
  page.evaluate(() => {
    const c = window.outboxDemo.client;
    return { mode: c.mode, isLeaderTab: c.isLeaderTab, leaderEpoch: c.leaderEpoch ?? null, diagnostic: c.diagnostic };
  });

/** Waits until every tab is offline-enabled under one epoch; returns the roles. */
export async function settledRoles(pages, { timeout = 15_000 } = {}) {
  return eventually(
    async () => {
      const roles = await Promise.all(pages.map(role));
      const epochs = new Set(roles.map((r) => r.leaderEpoch));
      const ok = roles.every((r) => r.mode === 'offline-enabled') && epochs.size === 1 && !epochs.has(null);
      return ok ? roles : false;
    },
    { timeout, what: 'every tab offline-enabled under one leader epoch' },
  );
}

/**
 * Inserts `titles` as one transaction each in `page`; keeps the handles on `window.__handles`
 * (their rejections handled) and returns `{ id, key }` per transaction once all are durable.
 */
export const insertDurable = (page, titles) =>
  page.evaluate(async (titles) => {
    const { todos } = window.outboxDemo;
    window.__handles ??= {};
    const made = titles.map((title) => {
      const key = crypto.randomUUID();
      const h = todos.insert({ id: key, title, done: false, createdAt: Date.now() });
      h.completed.catch(() => {});
      h.durable.catch(() => {});
      window.__handles[h.id] = h;
      return { id: h.id, key, h };
    });
    await Promise.all(made.map((m) => m.h.durable));
    return made.map(({ id, key }) => ({ id, key }));
  }, titles);

/** Whether a tab's collection has the row `key`. */
export const hasRow = (page, key) => page.evaluate((key) => window.outboxDemo.todos.get(key) !== undefined, key);

/** Waits until the server has applied each id exactly once and lists each key; returns the stats. */
export async function appliedOnce(server, txs, { timeout = 30_000 } = {}) {
  const stats = await eventually(
    async () => {
      const s = await server.stats();
      return txs.every(({ id }) => s.keys[id]?.applied >= 1) && s;
    },
    { timeout, what: `${txs.length} transactions applied on the server` },
  );
  const todos = await server.get('/api/todos');
  return { stats, todos };
}

/** A tab's rows as the app sees them: `{ [key]: title }`. */
export const titles = (page) =>
  page.evaluate(() => Object.fromEntries(window.outboxDemo.todos.rows().map((r) => [String(r.id), r.title])));

/** Inserts one row in `page`; resolves with `{ id, key, error }` once `completed` settles. */
export const insertAndSettle = (page, title) =>
  page.evaluate(async (title) => {
    const key = crypto.randomUUID();
    const h = window.outboxDemo.todos.insert({ id: key, title, done: false, createdAt: Date.now() });
    h.durable.catch(() => {});
    try {
      await h.completed;
      return { id: h.id, key, error: null };
    } catch (e) {
      const error = { name: e?.name, code: e?.code, status: e?.status, causeId: e?.causeId, message: String(e?.message) };
      return { id: h.id, key, error };
    }
  }, title);
