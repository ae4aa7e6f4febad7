// Chaos, seeded: 5 tabs with dedicated workers (so closing or reloading the leader's tab forces a
// failover) take over 2,000 transactions on 60 row keys, while tabs are closed (and replaced, to
// keep 5), reloaded, and the server goes through short windows of 503s, dropped connections,
// dropped replies, failed requests and delays. Afterwards: every transaction acknowledged
// durable is on the server exactly once (or failed for a stated reason), no transaction is on it
// twice, per-key order held (within each tab, and for any transaction submitted after another
// on the same key was acknowledged durable), and nothing is stuck (every tab's outbox drains).
//
// Every random choice comes from a seeded PRNG (mulberry32): the plan of steps, the fault
// windows and each batch's keys and operations. The seed is printed; replay one with
//   cd tests && OUTBOX_CHAOS_SEED=<seed> node --test chaos.test.mjs
// (the timing of the browser and the server is not replayed, only the choices).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, withDemo } from './harness.mjs';
import { openTab, role, settledRoles } from './tabs.mjs';

const TABS = 5;
const KEYS = 60;
const TRANSACTIONS = 2000; // submitted at least
const BATCH = [10, 30]; // transactions per page.evaluate
const CLOSES = 8;
const RELOADS = 6;
const PACE_MS = [0, 150]; // a random pause between two steps (the workload's rhythm)
const FAULT_GAP_MS = [2500, 5000];
const DRAIN_TIMEOUT_MS = 90_000;

const SEED = seedFromEnv();
const REPLAY = `cd tests && OUTBOX_CHAOS_SEED=${SEED} node --test chaos.test.mjs`;

function seedFromEnv() {
  const given = process.env.OUTBOX_CHAOS_SEED;
  if (given === undefined || given === '') return Math.floor(Math.random() * 2 ** 32);
  if (!/^\d+$/.test(given) || Number(given) >= 2 ** 32) {
    throw new Error(`OUTBOX_CHAOS_SEED must be an integer in [0, 2^32): ${JSON.stringify(given)}`);
  }
  return Number(given);
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const intIn = (rnd, [lo, hi]) => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = (rnd, items) => items[Math.floor(rnd() * items.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The whole plan from the seed: batches (tab slot, size, seed of the batch's own PRNG) with the
 * closes and reloads spread among them at random positions.
 */
function makePlan(rnd) {
  const steps = [];
  let planned = 0;
  while (planned < TRANSACTIONS) {
    const size = intIn(rnd, BATCH);
    steps.push({ kind: 'batch', slot: intIn(rnd, [0, TABS - 1]), size, seed: Math.floor(rnd() * 2 ** 32) });
    planned += size;
  }
  const disruptions = [
    ...Array.from({ length: CLOSES }, () => ({ kind: 'close' })),
    ...Array.from({ length: RELOADS }, () => ({ kind: 'reload' })),
  ];
  for (const [i, d] of disruptions.entries()) {
    // The leader's tab (a failover: always for the first close and the first reload), the tab
    // that has just submitted a batch (with no pause between: some of its transactions are not
    // durable yet), or any tab.
    const r = rnd();
    d.target = i === 0 || i === CLOSES || r < 0.4 ? 'leader' : r < 0.7 ? 'last' : intIn(rnd, [0, TABS - 1]);
    // Not among the first few batches, so that there is something in flight to disrupt.
    const at = intIn(rnd, [3, steps.length]);
    steps.splice(at, 0, d);
  }
  for (const [i, s] of steps.entries()) s.pauseMs = steps[i + 1]?.target === 'last' ? 0 : intIn(rnd, PACE_MS);
  return steps;
}

/** The fault windows, one after another, from their own PRNG (so they do not shift the plan). */
function makeFaults(rnd) {
  return () => {
    const kind = pick(rnd, ['unavailable', 'offline', 'dropReplies', 'delay', 'failNext']);
    const w = { kind, ms: intIn(rnd, [1000, 3000]), gapMs: intIn(rnd, FAULT_GAP_MS) };
    if (kind === 'unavailable') w.set = { unavailable: true };
    if (kind === 'offline') w.set = { offline: true };
    if (kind === 'dropReplies') w.set = { dropReplies: intIn(rnd, [1, 4]) };
    if (kind === 'delay') w.set = { delayMs: intIn(rnd, [200, 1500]) };
    if (kind === 'failNext') w.set = { failNext: { count: intIn(rnd, [1, 6]), status: pick(rnd, [500, 502, 503]) } };
    return w;
  };
}
const NO_FAULTS = { delayMs: 0, failNext: null, unavailable: false, dropReplies: 0, offline: false };

/**
 * In the page: `size` transactions on random keys, the operation chosen by what the tab's view
 * has (insert a missing row; update or delete a present one). Each handle reports `durable`
 * and its outcome to node through `window.__chaosReport` as it happens.
 */
function submitBatch({ tab, size, seed, keys }) {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const { client, todos } = window.outboxDemo;
  // (A report from a tab that is going away may fail: nothing to do then.)
  const report = (r) => window.__chaosReport(r).catch(() => {});
  window.__chaosHandles ??= [];
  window.__chaosCount ??= 0;
  const made = [];
  for (let i = 0; i < size; i++) {
    const key = keys[Math.floor(rnd() * keys.length)];
    const n = window.__chaosCount++;
    const roll = rnd();
    let op;
    let h;
    if (todos.get(key) === undefined) {
      op = 'insert';
      h = todos.insert({ id: key, title: `${tab} #${n}`, done: false, createdAt: Date.now() });
    } else if (roll < 0.8) {
      op = 'update';
      h = todos.update(key, { title: `${tab} #${n}`, done: roll < 0.4 });
    } else {
      op = 'delete';
      h = todos.delete(key);
    }
    const id = h.id;
    window.__chaosHandles.push(h);
    h.durable.then(
      () => report({ kind: 'durable', id }),
      () => {},
    );
    h.completed.then(
      () => report({ kind: 'completed', id }),
      (e) => report({ kind: 'failed', id, code: e?.code ?? String(e) }),
    );
    made.push({ id, key, op, n });
  }
  return { made, mode: client.mode };
}

/**
 * In the page: names the tab, records every client event on `window.__events` (for a failure's
 * diagnosis) and forwards leadership and mode changes to node as they happen.
 */
function watchTab(tab) {
  const { client } = window.outboxDemo;
  window.__chaosTab = tab;
  if (!window.__events) {
    window.__events = [];
    client.onEvent((e) => window.__events.push({ ...e, seenAt: Date.now() }));
  }
  client.onEvent((e) => {
    if (['leader', 'leader_resigned', 'mode', 'diagnostic'].includes(e.type)) {
      window.__chaosReport({ kind: 'event', tab, event: e }).catch(() => {});
    }
  });
  return { mode: client.mode, isLeaderTab: client.isLeaderTab, epoch: client.leaderEpoch ?? null };
}

/** In the page: what the tab knows of transactions `ids` (its list, its events) and rows `keys`. */
function tabKnows({ ids, keys }) {
  const { client: c, todos } = window.outboxDemo;
  const wanted = new Set(ids);
  const brief = (t) => ({
    id: t.id,
    state: t.state,
    seq: t.seq,
    epoch: t.epoch,
    queuedBehind: t.queuedBehind,
    error: t.error?.code,
    attempts: t.attempts.map((a) => `#${a.number}@e${a.epoch}${a.error ? `:${a.error.code}${a.error.status ? `/${a.error.status}` : ''}` : ''}`).join(' '),
  });
  return {
    tab: window.__chaosTab,
    leads: c.isLeaderTab,
    epoch: c.leaderEpoch ?? null,
    txs: c.transactions().filter((t) => wanted.has(t.id)).map(brief),
    events: (window.__events ?? [])
      .filter((e) => wanted.has(e.id))
      .map((e) => ({ at: e.seenAt, id: e.id, type: e.type, state: e.state, attempts: e.attempts, code: e.code })),
    rows: Object.fromEntries(keys.map((k) => [k, todos.get(k) ?? null])),
  };
}

/** Waits until a (re)loaded demo page has a client with a mode. */
const clientUp = (page) =>
  page.waitForFunction(() => window.outboxDemo && window.outboxDemo.client.mode !== 'connecting', null, {
    timeout: 15_000,
  });

test(`chaos: 5 tabs, ${TRANSACTIONS}+ transactions, closes, reloads and server faults (seed ${SEED})`, async (t) => {
  console.log(`chaos seed ${SEED} (replay: ${REPLAY})`);
  const startedAt = Date.now();
  await withDemo(t, async ({ server, browser }) => {
    try {
      await chaos(server, browser, startedAt);
    } catch (error) {
      if (error instanceof Error) error.message = `chaos seed ${SEED} — replay: ${REPLAY}\n${error.message}`;
      throw error;
    }
  });
});

async function chaos(server, browser, startedAt) {
  const rnd = mulberry32(SEED);
  const plan = makePlan(mulberry32(Math.floor(rnd() * 2 ** 32)));
  const nextFault = makeFaults(mulberry32(Math.floor(rnd() * 2 ** 32)));
  const keys = Array.from({ length: KEYS }, (_, i) => `k${String(i).padStart(2, '0')}`);
  let chaosStart = Date.now();
  const rel = (at) => (at === undefined ? '—' : `+${((at - chaosStart) / 1000).toFixed(3)}s`);

  // What node saw, as it happened: every transaction submitted, when each was acknowledged
  // durable, how each ended (as far as a live tab told), and a timeline of the disruptions.
  const txs = new Map(); // id → { id, key, op, tab, n, submittedAt, mode }
  const durableAt = new Map(); // id → node time of its durable acknowledgement
  const outcome = new Map(); // id → 'completed' | error code
  const timeline = [];
  const mark = (what) => timeline.at(-1)?.what !== what && timeline.push({ at: Date.now(), what });
  const epochs = new Set();
  let leaderTab = null; // the tab whose worker last said it leads
  await browser.context.exposeBinding('__chaosReport', (_source, report) => {
    if (report.kind === 'durable') {
      if (!durableAt.has(report.id)) durableAt.set(report.id, Date.now());
    } else if (report.kind === 'event') {
      const e = report.event;
      if (e.type === 'leader') epochs.add(e.epoch);
      if (e.type === 'leader' && e.isLeaderTab) leaderTab = report.tab;
      if (e.type !== 'leader' || e.isLeaderTab) mark(`${report.tab}: ${e.type} ${JSON.stringify({ ...e, type: undefined, at: undefined })}`);
    } else {
      outcome.set(report.id, report.kind === 'completed' ? 'completed' : report.code);
    }
  });

  // Five tabs, each a slot whose page changes when it is closed (and replaced) or reloaded.
  const slots = [];
  let generation = 0;
  const arrive = async (page) => {
    const tab = `tab${++generation}`;
    const r = await page.evaluate(watchTab, tab);
    mark(`${tab} up: ${r.mode}${r.isLeaderTab ? ', leads' : ''}, epoch ${r.epoch}`);
    if (r.isLeaderTab) leaderTab = tab;
    return tab;
  };
  for (let i = 0; i < TABS; i++) {
    const page = await openTab(browser, server, { dedicated: true });
    slots.push({ page, tab: await arrive(page) });
  }
  const pagesNow = () => slots.map((s) => s.page);
  const roles = await settledRoles(pagesNow());
  assert.equal(roles.filter((r) => r.isLeaderTab).length, 1, `one leader tab: ${JSON.stringify(roles)}`);
  const firstEpoch = roles[0].leaderEpoch;
  epochs.add(firstEpoch);

  const leaderSlot = async () => {
    const all = await Promise.all(slots.map((s) => role(s.page)));
    const i = all.findIndex((r) => r.isLeaderTab);
    return i >= 0 ? i : null;
  };

  /** Everything known about transactions `ids`, for a failure message. */
  const diagnose = async (ids, title) => {
    ids = [...new Set(ids)].slice(0, 12);
    const stats = await server.stats().catch(() => null);
    const lines = [title];
    const place = new Map();
    for (const [row, order] of Object.entries(stats?.order ?? {})) order.forEach((id, i) => place.set(id, `${row}[${i}]`));
    for (const id of ids) {
      const tx = txs.get(id);
      const k = stats?.keys[id];
      lines.push(
        `  ${id}: ${tx ? `${tx.tab} #${tx.n} ${tx.op} ${tx.key}, submitted ${rel(tx.submittedAt)} (${tx.mode})` : 'not submitted by this test'}` +
          `, durable ${rel(durableAt.get(id))}, outcome ${outcome.get(id) ?? '?'}` +
          `, server requests ${k?.requests ?? 0} applied ${k?.applied ?? 0} at ${place.get(id) ?? '—'}`,
      );
    }
    const rowKeys = [...new Set(ids.map((id) => txs.get(id)?.key).filter(Boolean))];
    const onServer = await server.get('/api/todos').catch(() => ({ rows: [] }));
    for (const k of rowKeys) lines.push(`  server row ${k}: ${JSON.stringify(onServer.rows.find((r) => r.key === k)?.value ?? null)}`);
    for (const s of slots) {
      const known = await s.page.evaluate(tabKnows, { ids, keys: rowKeys }).catch((e) => ({ tab: s.tab, error: String(e) }));
      lines.push(`  ${known.tab}${known.leads ? ' (leads)' : ''} epoch ${known.epoch}${known.error ? ` ${known.error}` : ''}:`);
      for (const [k, row] of Object.entries(known.rows ?? {})) lines.push(`    row ${k}: ${JSON.stringify(row)}`);
      for (const t of known.txs ?? []) lines.push(`    tx ${JSON.stringify(t)}`);
      for (const e of known.events ?? []) lines.push(`    ${rel(e.at)} ${e.id.slice(0, 8)} ${e.type} ${e.state ?? ''} ${e.attempts ?? ''} ${e.code ?? ''}`);
    }
    const held = await slots[0].page
      .evaluate((ids) => window.outboxDemo.client.peekOutbox().then((all) => all.filter((t) => ids.includes(t.id)).map((t) => `${t.id} ${t.state} seq ${t.seq} attempts ${t.attempts.length} ${t.error?.code ?? ''}`)), ids)
      .catch((e) => [`peekOutbox failed: ${e}`]);
    lines.push(`  leader's outbox: ${held.length ? held.join('; ') : 'none of them'}`);
    lines.push('  timeline:', ...timeline.map((m) => `    ${rel(m.at)} ${m.what}`));
    return lines.join('\n');
  };

  // Fault windows, switched on and off between steps.
  const faultLog = [];
  let fault = null; // { kind, set, endsAt }
  let nextFaultAt = Date.now() + 1500;
  const tickFaults = async () => {
    const now = Date.now();
    if (fault && now >= fault.endsAt) {
      await server.faults(NO_FAULTS);
      mark(`faults off (${fault.kind})`);
      fault = null;
    }
    if (!fault && now >= nextFaultAt) {
      const w = nextFault();
      await server.faults(w.set);
      mark(`faults on: ${JSON.stringify(w.set)} for ${w.ms} ms`);
      fault = { ...w, endsAt: now + w.ms };
      nextFaultAt = fault.endsAt + w.gapMs;
      faultLog.push(w.kind);
    }
  };

  let closes = 0;
  let reloads = 0;
  let onlineOnlyBatches = 0;
  let batchMs = 0;
  let lastSlot = 0;
  let notDurableAtDisruption = 0;
  let disruptMs = 0;
  chaosStart = Date.now();
  for (const step of plan) {
    await tickFaults();
    if (step.kind === 'batch') {
      const slot = slots[step.slot];
      lastSlot = step.slot;
      const submittedAt = Date.now();
      const { made, mode } = await slot.page.evaluate(submitBatch, { tab: slot.tab, size: step.size, seed: step.seed, keys });
      batchMs += Date.now() - submittedAt;
      if (mode !== 'offline-enabled') onlineOnlyBatches++;
      for (const m of made) txs.set(m.id, { ...m, tab: slot.tab, submittedAt, mode });
    } else {
      const t0 = Date.now();
      const i = step.target === 'leader' ? ((await leaderSlot()) ?? lastSlot) : step.target === 'last' ? lastSlot : step.target;
      const slot = slots[i];
      const unacked = [...txs.values()].filter((tx) => tx.tab === slot.tab && !durableAt.has(tx.id)).length;
      mark(`${step.kind} ${slot.tab}${slot.tab === leaderTab ? ' (the leader)' : ''}, ${unacked} of its transactions not acknowledged durable`);
      notDurableAtDisruption += unacked;
      if (step.kind === 'close') {
        await slot.page.close({ runBeforeUnload: false });
        slot.page = await openTab(browser, server, { dedicated: true });
        closes++;
      } else {
        await slot.page.reload();
        await clientUp(slot.page);
        reloads++;
      }
      slot.tab = await arrive(slot.page);
      disruptMs += Date.now() - t0;
    }
    await sleep(step.pauseMs);
  }
  const chaosMs = Date.now() - chaosStart;
  await server.faults(NO_FAULTS);
  if (fault) mark(`faults off (${fault.kind})`);
  fault = null;

  // Drain: the leader's outbox empties and every tab's transactions settle.
  const drainStart = Date.now();
  mark('drain');
  const pages = pagesNow();
  for (const p of pages) await p.evaluate(() => window.outboxDemo.client.notifyOnline());
  try {
    await eventually(
      async () => {
        const q = await pages[0].evaluate(() => window.outboxDemo.client.queueStats());
        return q.size === 0 && q.inFlight === 0 && q;
      },
      { timeout: DRAIN_TIMEOUT_MS, interval: 250, what: 'the outbox to drain (queueStats().size === 0)' },
    );
  } catch (error) {
    const left = await pages[0].evaluate(() =>
      window.outboxDemo.client.peekOutbox().then((all) => all.filter((t) => t.state !== 'failed').map((t) => t.id)),
    );
    throw new Error(`${error.message}\n${await diagnose(left, `stuck in the outbox: ${left.length}`)}`);
  }
  for (const [i, p] of pages.entries()) {
    const unsettled = () =>
      p.evaluate(() => window.outboxDemo.client.transactions().filter((t) => t.state !== 'failed').map((t) => t.id));
    try {
      await eventually(async () => (await unsettled()).length === 0, {
        timeout: 30_000,
        interval: 100,
        what: `every transaction settled in ${slots[i].tab}`,
      });
    } catch (error) {
      const left = await unsettled();
      throw new Error(`${error.message}\n${await diagnose(left, `unsettled in ${slots[i].tab} (the outbox is empty): ${left.length}`)}`);
    }
    await p.evaluate(() => window.outboxDemo.client.drain());
  }
  const drainMs = Date.now() - drainStart;
  const finalRoles = await settledRoles(pages);
  assert.equal(finalRoles.filter((r) => r.isLeaderTab).length, 1, `one leader at the end: ${JSON.stringify(finalRoles)}`);
  const queue = await pages[0].evaluate(() => window.outboxDemo.client.queueStats());
  assert.equal(queue.size, 0, 'nothing left in the outbox');

  // Failures for a stated reason: heard by a live tab, or dead letters in the leader's outbox.
  const deadLetters = await pages[0].evaluate(() =>
    window.outboxDemo.client
      .peekOutbox()
      .then((all) =>
        all
          .filter((t) => t.state === 'failed')
          .map((t) => ({
            id: t.id,
            code: t.error?.code,
            causeId: t.error?.cause,
            attempts: t.attempts.map((a) => ({ at: a.startedAt, epoch: a.epoch, code: a.error?.code, status: a.error?.status })),
          })),
      ),
  );
  for (const d of deadLetters) if (!outcome.has(d.id) || outcome.get(d.id) === 'completed') outcome.set(d.id, d.code);
  assert.equal(queue.deadLetters, deadLetters.length, 'dead letters counted as listed');

  const stats = await server.stats();
  const applied = (id) => stats.keys[id]?.applied ?? 0;
  const fail = async (ids, title) => assert.fail(await diagnose(ids, title));

  // Never twice; nothing on the server that was not submitted.
  if (stats.overApplied.length) await fail(stats.overApplied, `applied more than once: ${stats.overApplied.length}`);
  const twice = [...txs.keys()].filter((id) => applied(id) > 1);
  if (twice.length) await fail(twice, `applied more than once: ${twice.length}`);
  const unknown = Object.keys(stats.keys).filter((id) => !txs.has(id));
  if (unknown.length) await fail(unknown, `the server saw ids this test never submitted: ${unknown.length}`);

  // Every durable transaction exactly once, unless it failed for a stated reason; and every
  // transaction its tab saw complete, too.
  const stated = new Set(['OUTBOX_RETRIES_EXHAUSTED', 'OUTBOX_DEPENDENCY_FAILED']);
  const failedDurable = [];
  const badFailures = [];
  const lost = [];
  for (const id of durableAt.keys()) {
    const why = outcome.get(id);
    if (why && why !== 'completed') (stated.has(why) ? failedDurable : badFailures).push(id);
    else if (applied(id) !== 1) lost.push(id);
  }
  for (const [id, why] of outcome) if (why === 'completed' && applied(id) !== 1 && !lost.includes(id)) lost.push(id);
  if (badFailures.length) await fail(badFailures, `durable transactions failed for an unexpected reason: ${badFailures.length}`);
  if (lost.length) await fail(lost, `durable or completed transactions not on the server exactly once: ${lost.length}`);

  // Per-key order. `pos`: each transaction's place in its row's applied order.
  const pos = new Map();
  for (const ids of Object.values(stats.order)) ids.forEach((id, i) => pos.set(id, i));
  const byKey = new Map();
  for (const tx of txs.values()) if (pos.has(tx.id)) (byKey.get(tx.key) ?? byKey.set(tx.key, []).get(tx.key)).push(tx);
  const disorder = [];
  let orderChecks = 0;
  for (const [key, list] of byKey) {
    const order = stats.order[`todos/${key}`];
    assert.ok(order, `stats.order has todos/${key}`);
    for (const b of list) {
      for (const a of list) {
        if (a === b) continue;
        // Within each tab: in submission order.
        const sameTab = a.tab === b.tab && a.n < b.n;
        // Across tabs: a transaction submitted after another was acknowledged durable runs after it.
        const after = durableAt.has(a.id) && durableAt.get(a.id) < b.submittedAt;
        if (!sameTab && !after) continue;
        orderChecks++;
        if (pos.get(a.id) > pos.get(b.id)) disorder.push({ key, a, b, rule: sameTab ? 'same tab' : 'submitted after durable' });
      }
    }
  }
  if (disorder.length) {
    const shown = disorder.slice(0, 4);
    await fail(
      shown.flatMap(({ a, b }) => [a.id, b.id]),
      `per-key order broken (${disorder.length} pairs), e.g.\n` +
        shown.map(({ key, a, b, rule }) => `  row ${key} (${rule}): ${a.id} (${a.tab} #${a.n}) applied after ${b.id} (${b.tab} #${b.n})`).join('\n'),
    );
  }

  // Every tab converges on the server's rows (the feed caught up, nothing optimistic left).
  const canonical = (rows) =>
    JSON.stringify(rows.map((r) => Object.fromEntries(Object.entries(r).sort())).sort((x, y) => (x.id < y.id ? -1 : 1)));
  const want = canonical((await server.get('/api/todos')).rows.map((r) => r.value));
  for (const [i, p] of pages.entries()) {
    await eventually(async () => canonical(await p.evaluate(() => window.outboxDemo.todos.rows())) === want, {
      timeout: 20_000,
      interval: 200,
      what: `${slots[i].tab}'s rows equal to the server's`,
    });
  }

  const lastEpoch = finalRoles[0].leaderEpoch;
  assert.ok(txs.size >= TRANSACTIONS, `${txs.size} transactions submitted`);
  assert.ok(lastEpoch > firstEpoch, `leadership moved (epoch ${firstEpoch} → ${lastEpoch})`);
  const appliedCount = [...txs.keys()].filter((id) => applied(id) === 1).length;
  console.log(
    `chaos seed ${SEED}: ${txs.size} transactions, ${durableAt.size} durable, ${appliedCount} applied ` +
      `(${failedDurable.length} durable failed for a stated reason, ${deadLetters.length} dead letters); ` +
      `${closes} closes, ${reloads} reloads (${notDurableAtDisruption} transactions not yet durable when their tab went), ${faultLog.length} fault windows (${faultLog.join(' ')}); ` +
      `${epochs.size - 1} failovers (epoch ${firstEpoch} → ${lastEpoch}); ${onlineOnlyBatches} batches online-only; ` +
      `${orderChecks} order checks; batches ${(batchMs / 1000).toFixed(1)} s, disruptions ${(disruptMs / 1000).toFixed(1)} s; chaos ${(chaosMs / 1000).toFixed(1)} s, drain ${(drainMs / 1000).toFixed(1)} s, ` +
      `total ${((Date.now() - startedAt) / 1000).toFixed(1)} s`,
  );
  if (deadLetters.length) {
    const codes = {};
    for (const d of deadLetters) codes[d.code] = (codes[d.code] ?? 0) + 1;
    const exhausted = deadLetters.filter((d) => d.code === 'OUTBOX_RETRIES_EXHAUSTED');
    console.log(
      `chaos seed ${SEED}: dead letters ${JSON.stringify(codes)}; retries exhausted:\n` +
        exhausted
          .map((d) => `  ${d.id} (${txs.get(d.id)?.key}): ${d.attempts.map((a) => `${rel(a.at)} e${a.epoch} ${a.code ?? 'ok'}${a.status ? `/${a.status}` : ''}`).join(', ')}`)
          .join('\n') +
        `\n  timeline:\n${timeline.map((m) => `    ${rel(m.at)} ${m.what}`).join('\n')}`,
    );
  }
}
