// The benchmark command (issue #9): `cd tests && npm run bench` (`-- --help` for the options).
//
// One headless Chromium (Debian's, on a fresh on-disk profile: harness.mjs) and two reference
// servers on loopback, both serving the bench pages (tests/bench/pages, plus
// @tanstack/offline-transactions bundled by esbuild into a temp folder) and www/pkg:
// - "faulty" (`--faults`): made offline so that only durability is measured, and for the
//   failover and restart-replay runs;
// - "plain" (no fault switches, so HTTP keep-alive on): the server-acknowledged throughput.
// Every measurement uses a fresh app name (its own Web Lock, channel, IndexedDB and worker).
// Browser limits, Outbox and TanStack run interleaved, rep after rep, in a rotating order; a
// figure is the median of its reps, and a ratio compares medians measured in the same run.
//
// Progress goes to stderr; the markdown table to stdout; everything measured (every rep's
// value, failures and notes) to tests/bench/results.json. A figure that could not be measured
// is reported as such, never filled in.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { ROOT, checkArtifacts, eventually, launchBrowser, startServer } from '../harness.mjs';
import { prepareStatic } from './lib/env.mjs';
import { USAGE, UsageError, parseOptions } from './lib/options.mjs';
import { buildFigures, limitsTable, mainTable } from './lib/report.mjs';
import { median, percentile } from './lib/stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const started = Date.now();
const progress = (msg) => {
  const s = Math.round((Date.now() - started) / 1000);
  process.stderr.write(`[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${msg}\n`);
};
const nodeWallNow = () => performance.timeOrigin + performance.now();
const short = (e) => String(e?.message ?? e).split('\n')[0].slice(0, 300);
const uid = () => Math.random().toString(36).slice(2, 8);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- what was measured -----------------------------------------------------------------------

const samples = {}; // key → one value per rep or trial
const notes = {}; // key → what went wrong or is worth knowing
const rec = (key, value) => {
  if (typeof value === 'number' && Number.isFinite(value)) (samples[key] ??= []).push(value);
};
const note = (key, msg) => {
  (notes[key] ??= []).push(msg);
};

/** Runs one measurement; a failure is noted under `key` (and printed), never thrown. */
async function attempt(key, what, fn) {
  try {
    return await fn();
  } catch (error) {
    progress(`  ! ${what}: ${short(error)}`);
    note(key, `${what}: ${short(error)}`);
    return undefined;
  }
}

function timed(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---- pages -----------------------------------------------------------------------------------

let browser;

async function openPage(server, path = '/') {
  const page = await browser.context.newPage();
  page.__errors = [];
  page.on('pageerror', (e) => page.__errors.push(e.message));
  await page.goto(server.url + path, { timeout: 30_000 });
  return page;
}

const closePage = (page) => page?.close({ runBeforeUnload: false }).catch(() => {});

const evalIn = (page, fn, arg, ms, what) => timed(page.evaluate(fn, arg), ms, what);

/**
 * `page.evaluate(fn, arg)` started now and awaited later (`timed`); meanwhile a failure of it is
 * held, not unhandled.
 */
function armed(page, fn, arg) {
  const call = page.evaluate(fn, arg);
  call.catch(() => {});
  return call;
}

/** A page with `lib` ('outbox' | 'tanstack') set up for `app`, and measure.js loaded as `M`. */
async function libPage(lib, server, { app, dedicated = false, batch = true, fetches = false, requireLeader = lib === 'tanstack' }) {
  const page = await openPage(server);
  try {
    const role = await evalIn(
      page,
      async ({ lib, app, dedicated, batch, fetches }) => {
        const mod = await import(lib === 'outbox' ? '/outbox-page.js' : '/tanstack-page.js');
        globalThis.M = await import('/measure.js');
        return mod.setup({ app, dedicated, batch, fetches });
      },
      { lib, app, dedicated, batch, fetches },
      60_000,
      `${lib} setup`,
    );
    if (requireLeader && !role.isLeaderTab) throw new Error(`${lib} tab is not the leader: ${JSON.stringify(role)}`);
    page.__role = role;
    return page;
  } catch (error) {
    const extra = page.__errors.length ? ` (page errors: ${page.__errors.slice(0, 3).join(' | ')})` : '';
    await closePage(page);
    throw new Error(`${short(error)}${extra}`);
  }
}

/** Runs `fn(page)` on a fresh `lib` page, closing it after whatever happens. */
async function withLib(lib, server, options, fn) {
  const page = await libPage(lib, server, options);
  try {
    return await fn(page);
  } finally {
    await closePage(page);
  }
}

const LIBS = { outbox: 'Outbox', tanstack: 'TanStack' };

// ---- 1. browser limits -----------------------------------------------------------------------

async function limitsRep(server, opts) {
  progress('  browser limits: IndexedDB, BroadcastChannel');
  const page = await openPage(server);
  try {
    const idb = await attempt('limit.idb', 'IndexedDB', () =>
      evalIn(
        page,
        async ({ n, bytes }) => {
          const L = await import('/limits.js');
          return {
            def: await L.idbPutCommit({ n, bytes }),
            relaxed: await L.idbPutCommit({ n, bytes, durability: 'relaxed' }),
            batch: await L.idbBatch({ n: 1000, bytes }),
          };
        },
        { n: opts.idbN, bytes: opts.recordBytes },
        120_000,
        'IndexedDB',
      ),
    );
    if (idb) {
      rec('limit.idb.default.p50', median(idb.def));
      rec('limit.idb.default.p99', percentile(idb.def, 99));
      rec('limit.idb.relaxed.p50', median(idb.relaxed));
      rec('limit.idb.relaxed.p99', percentile(idb.relaxed, 99));
      rec('limit.idb.batch1000.perSecond', 1000_000 / median(idb.batch));
    }
    const bcPage = await attempt('limit.bc.page', 'BroadcastChannel page↔page', async () => {
      const echo = await openPage(server);
      try {
        const name = `bench-bc-${uid()}`;
        await evalIn(echo, (name) => import('/limits.js').then((L) => L.bcEcho(name)), name, 10_000, 'echo page');
        return await evalIn(page, ({ name, n }) => import('/limits.js').then((L) => L.bcPing(name, { n })), { name, n: opts.bcN }, 60_000, 'ping');
      } finally {
        await closePage(echo);
      }
    });
    if (bcPage) {
      rec('limit.bc.page.p50', median(bcPage));
      rec('limit.bc.page.p99', percentile(bcPage, 99));
    }
    // Round trips page ↔ worker: over BroadcastChannel, and over the worker's own port.
    const pings = [['bc', 'BroadcastChannel', 'bcPingWorker'], ['port', 'MessagePort', 'portPingWorker']];
    for (const [via, what, fn] of pings) {
      for (const kind of ['dedicated', 'shared']) {
        const times = await attempt(`limit.${via}.${kind}`, `${what} page↔${kind} worker`, () =>
          evalIn(page, ({ fn, kind, n }) => import('/limits.js').then((L) => L[fn](kind, { n })), { fn, kind, n: opts.bcN }, 60_000, kind),
        );
        if (times) {
          rec(`limit.${via}.${kind}.p50`, median(times));
          rec(`limit.${via}.${kind}.p99`, percentile(times, 99));
        }
      }
    }
    // The floor of the path Outbox takes while a tab's own worker leads: the port, not the channel.
    if (idb && samples['limit.port.shared.p50']) {
      rec('limit.durablePort.p50', median(idb.def) + samples['limit.port.shared.p50'].at(-1));
    }
    // The floor under submit → durable, from this rep's own measurements: a tab's message to
    // the (shared) worker and back, plus one IndexedDB commit.
    if (idb && samples['limit.bc.shared.p50']) {
      const bc = samples['limit.bc.shared.p50'].at(-1);
      rec('limit.durable.p50', median(idb.def) + bc);
      rec('limit.durable.p99', percentile(idb.def, 99) + samples['limit.bc.shared.p99'].at(-1));
      rec('limit.durable.perSecond1', 1000 / (median(idb.def) + bc));
    }
  } finally {
    await closePage(page);
  }
}

// ---- 2 and 3. the same workload through each library -----------------------------------------

async function libRep(lib, { faulty, plain }, opts) {
  const name = LIBS[lib];
  const fresh = (what) => `${lib}-${what}-${uid()}`;
  progress(`  ${name}: insert → view`);
  for (const [key, subscriber] of [['bare', false], ['sub', true]]) {
    const r = await attempt(`${lib}.insertView.${key}`, `${name} insert → view (${key})`, () =>
      withLib(lib, faulty, { app: fresh('view') }, (page) =>
        evalIn(page, (o) => M.insertView(o), { ...opts.insertView, subscriber }, 300_000, 'insertView'),
      ),
    );
    if (r) {
      rec(`${lib}.insertView.${key}`, median(r.perInsert));
      rec(`${lib}.insertView.${key}.cold`, median(r.coldPerInsert));
      if (r.missing) note(`${lib}.insertView.${key}`, `${r.missing} inserted rows were not in the view right after insert()`);
      if (subscriber && r.syncNotified === false) note(`${lib}.insertView.sub`, 'the subscriber was not told synchronously (the timing does not include its notification)');
    }
  }
  progress(`  ${name}: submit → durable (server offline)`);
  const lat = await attempt(`${lib}.durable`, `${name} submit → durable`, () =>
    withLib(lib, faulty, { app: fresh('durable') }, (page) =>
      evalIn(page, (n) => M.durableLatency({ n }), opts.durableLatencyN, 300_000, 'durableLatency'),
    ),
  );
  if (lat) {
    rec(`${lib}.durable.p50`, median(lat));
    rec(`${lib}.durable.p99`, percentile(lat, 99));
  }
  for (const inFlight of [1, 10, 100]) {
    const total = opts.durableThroughput[inFlight];
    const r = await attempt(`${lib}.durable.perSecond${inFlight}`, `${name} durable tx/s (${inFlight} in flight)`, () =>
      withLib(lib, faulty, { app: fresh(`tps${inFlight}`) }, async (page) => {
        const first = await evalIn(page, (o) => M.durableThroughput(o), { total, inFlight, warmup: opts.durableColdWarmup }, 600_000, 'durableThroughput');
        if (inFlight !== 100) return { first };
        // The same count again on the same page, once it has run `durableWarmup` more.
        const warm = await evalIn(page, (o) => M.durableThroughput(o), { total, inFlight, warmup: opts.durableWarmup }, 600_000, 'durableThroughput (warm)');
        return { first, warm };
      }),
    );
    if (r) rec(`${lib}.durable.perSecond${inFlight}`, r.first.perSecond);
    if (r?.warm) rec(`${lib}.durable.perSecond${inFlight}.warm`, r.warm.perSecond);
  }
  const variants = lib === 'outbox' ? [['', true], ['.nobatch', false]] : [['', true]];
  for (const [suffix, batch] of variants) {
    progress(`  ${name}: server-acknowledged throughput${suffix ? ' (one request per transaction)' : ''}`);
    const r = await attempt(`${lib}.acked${suffix}`, `${name} server-acked tx/s${suffix}`, () =>
      withLib(lib, plain, { app: fresh('acked'), batch }, (page) =>
        evalIn(page, (total) => M.ackedThroughput({ total }), opts.ackedCount, 600_000, 'ackedThroughput'),
      ),
    );
    if (r) {
      rec(`${lib}.acked${suffix}.perSecond`, r.perSecond);
      rec(`${lib}.acked${suffix}.allCompletedMs`, r.ms);
      rec(`${lib}.acked${suffix}.allDurableMs`, r.durableMs);
    }
  }
}

// ---- failover ------------------------------------------------------------------------------

// `where`: 'page' (page → page), 'worker' (dedicated worker → worker), or 'fenced' (worker →
// worker, the new holder then reading and bumping an epoch in IndexedDB: the least a fenced
// takeover does before its first attempt).
async function lockTrial(server, where) {
  const key = `limit.lock.${where}`;
  await attempt(key, `Web Locks handoff (${where})`, async () => {
    const a = await openPage(server);
    const b = await openPage(server);
    const name = `bench-lock-${uid()}`;
    const fence = where === 'fenced' ? name : undefined;
    try {
      if (where === 'page') {
        await evalIn(a, (n) => import('/limits.js').then((L) => L.holdLock(n)), name, 10_000, 'hold');
        const waiting = await evalIn(b, (n) => import('/limits.js').then((L) => L.waitLock(n)), name, 10_000, 'wait');
        if (!waiting) throw new Error('tab B is not waiting for the lock');
      } else {
        await evalIn(a, ([n, f]) => import('/limits.js').then((L) => L.lockInWorker(n, 'hold', f)), [name, fence], 10_000, 'hold');
        await evalIn(b, ([n, f]) => import('/limits.js').then((L) => L.lockInWorker(n, 'wait', f)), [name, fence], 10_000, 'wait');
        await eventually(() => b.evaluate((n) => import('/limits.js').then((L) => L.pending(n)), name), { timeout: 5_000, interval: 5, what: 'B waiting' });
      }
      // Awaited in the page, not polled: the harness's calls would compete for the CPU.
      const grant = armed(b, () => globalThis.__lockGot);
      await b.evaluate(() => 0); // the call above is running in the page
      const closedAt = nodeWallNow();
      await a.close({ runBeforeUnload: false });
      const { at: got, fencedAt } = await timed(grant, 15_000, 'the lock in tab B');
      if (fence) {
        if (typeof fencedAt !== 'number') throw new Error('the epoch was not bumped in tab B');
        rec(key, fencedAt - closedAt);
        rec(`${key}.commit`, fencedAt - got);
        await evalIn(b, () => import('/limits.js').then((L) => L.dropLockDb()), undefined, 10_000, 'drop the database');
      } else {
        rec(key, got - closedAt);
      }
    } finally {
      await closePage(a);
      await closePage(b);
    }
  });
}

async function outboxFailoverTrial(server) {
  await attempt('outbox.failover', 'Outbox failover', async () => {
    const app = `outbox-failover-${uid()}`;
    let a;
    let b;
    try {
      a = await libPage('outbox', server, { app, dedicated: true, fetches: true });
      await eventually(() => a.evaluate(() => bench.isLeaderTab()), { timeout: 15_000, what: 'tab A leading' });
      b = await libPage('outbox', server, { app, dedicated: true, fetches: true });
      if (await b.evaluate(() => bench.isLeaderTab())) throw new Error('tab B leads, not tab A');
      await b.evaluate(() => {
        bench.recordEvents();
        bench.watchFetches();
      });
      // Pending work (the server is offline): durable, attempted once, and waiting for a retry,
      // so that the new leader has something to attempt at once.
      await evalIn(
        a,
        async () => {
          const { todoRow } = await import('/common.js');
          const hs = [0, 1, 2].map((i) => bench.insert(todoRow(i)));
          hs.forEach((h) => h.completed.catch(() => {}));
          await Promise.all(hs.map((h) => h.durable));
        },
        undefined,
        15_000,
        'pending work',
      );
      await eventually(
        () => a.evaluate(() => {
          const txs = bench.client.transactions();
          return txs.length >= 3 && txs.every((t) => t.attempts.length >= 1 && t.state !== 'persisting');
        }),
        { timeout: 15_000, interval: 10, what: 'a first failed attempt of each transaction' },
      );
      // A's worker made every request so far (the first attempts): its id.
      const before = await b.evaluate(() => [...new Set(bench.fetches.map((f) => f.worker))]);
      if (before.length !== 1) {
        const seen = await b.evaluate(() => JSON.stringify({ fetches: bench.fetches, events: bench.events.slice(0, 30) }));
        throw new Error(`expected requests from A's worker only, saw ${before.length} workers: ${seen}`);
      }
      const oldEpoch = await b.evaluate(() => bench.client.leaderEpoch ?? 0);
      // Awaited in the page as its events and request stamps come in, not polled: the harness's
      // calls would compete for the CPU with the takeover. Before the close tab B does not lead
      // and only A's worker makes requests, so nothing recorded earlier can satisfy it.
      const outcome = armed(b, ({ oldEpoch, old }) => bench.until(() => {
        const ev = bench.events;
        // Elected: the tab knows its own worker leads. The attempt: the first `persisting`
        // after the tab heard of the new epoch at all (the `leader` broadcast can overtake
        // the worker's word that it is this tab's, and the attempt's state can come between).
        const lead = ev.find((e) => e.type === 'leader' && e.isLeaderTab);
        const heard = ev.find((e) => e.type === 'leader' && e.epoch > oldEpoch);
        const attempt = heard && ev.find((e) => e.type === 'state' && e.state === 'persisting' && e.seenAt >= heard.seenAt);
        const started = bench.fetches.find((f) => f.worker !== old);
        return lead && attempt && started ? { lead: lead.seenAt, attempt: attempt.seenAt, started: started.at } : false;
      }, 20_000), { oldEpoch, old: before[0] });
      await b.evaluate(() => 0); // the call above is running in the page
      const closedAt = nodeWallNow();
      await a.close({ runBeforeUnload: false });
      const seen = await timed(outcome, 25_000, "tab B's worker leading and attempting");
      rec('outbox.failover.leader', seen.lead - closedAt);
      rec('outbox.failover.attempt', seen.started - closedAt);
      rec('outbox.failover.attemptSeen', seen.attempt - closedAt);
    } finally {
      await closePage(a);
      await closePage(b);
    }
  });
}

/** TanStack: tab A leads (first), B does not; close A; watch B. */
async function tanstackLeaderCloseTrial(server, opts) {
  await attempt('tanstack.failover', 'TanStack leader tab closed', async () => {
    const app = `tanstack-failover-${uid()}`;
    let a;
    let b;
    try {
      a = await libPage('tanstack', server, { app });
      b = await libPage('tanstack', server, { app, requireLeader: false });
      const bWasLeader = await b.evaluate(() => bench.isLeaderTab());
      await evalIn(
        a,
        async () => {
          const { todoRow } = await import('/common.js');
          const hs = [0, 1, 2].map((i) => bench.insert(todoRow(i)));
          hs.forEach((h) => h.completed.catch(() => {}));
          await Promise.all(hs.map((h) => h.durable));
        },
        undefined,
        15_000,
        'pending work',
      );
      const callsBefore = await b.evaluate(() => bench.calls.count);
      const closedAt = nodeWallNow();
      await a.close({ runBeforeUnload: false });
      const deadline = Date.now() + opts.tanstackWatchMs;
      let state;
      while (Date.now() < deadline) {
        state = await b.evaluate(() => ({ leading: bench.isLeaderTab(), leadership: bench.leadership, calls: bench.calls.count }));
        if (state.leading) break;
        await sleep(50);
      }
      // A change made in B now: written to an outbox (offline-capable) or not?
      const bInsert = await evalIn(
        b,
        async () => {
          const { todoRow } = await import('/common.js');
          const before = bench.writes.count;
          const h = bench.insert(todoRow(0));
          h.completed.catch(() => {});
          const durable = await Promise.race([h.durable.then(() => true), new Promise((r) => setTimeout(() => r(false), 1000))]);
          return { durable, outboxWrites: bench.writes.count - before };
        },
        undefined,
        10_000,
        'insert in B',
      );
      const tookOver = state.leadership.find((l) => l.isLeader && l.at >= closedAt);
      rec('tanstack.failover.tookOver', tookOver || state.leading ? 1 : 0);
      if (tookOver) rec('tanstack.failover.leader', tookOver.at - closedAt);
      return {
        bWasLeader,
        leadingAfter: state.leading,
        watchedMs: opts.tanstackWatchMs,
        callsInB: state.calls - callsBefore,
        bInsertDurable: bInsert.durable,
        bInsertOutboxWrites: bInsert.outboxWrites,
      };
    } finally {
      await closePage(a);
      await closePage(b);
    }
  }).then((r) => r && (tanstackTrials.push(r), r));
}
const tanstackTrials = [];

// ---- restart replay and memory -------------------------------------------------------------

async function heapAndWasm(page) {
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send('HeapProfiler.collectGarbage');
    const { usedSize } = await cdp.send('Runtime.getHeapUsage');
    const wasm = await page.evaluate(() => bench.wasmBytes());
    const workerWasm = await evalIn(page, () => bench.workerWasmBytes(), undefined, 10_000, 'worker memory');
    return { heap: usedSize, wasm, workerWasm };
  } finally {
    await cdp.detach().catch(() => {});
  }
}

const replayDiagnostics = {};

/**
 * A page of auto.js after a navigation: its `__boot` once it has settled (`allAt` or `error`
 * set), or null after `ms`. Awaited in the page; until auto.js has run, the page checks every
 * 5 ms itself (a timer, where a call from here would cost the page and the browser far more).
 */
async function bootSettled(page, ms) {
  const settled = armed(page, () =>
    new Promise((resolve) => {
      const wait = () => (globalThis.__bootDone ? globalThis.__bootDone.then(resolve) : setTimeout(wait, 5));
      wait();
    }),
  );
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(null), Math.max(0, ms))));
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function replayTrial(lib, server, count, opts) {
  const name = LIBS[lib];
  const key = `${lib}.replay.${count}`;
  return attempt(key, `${name} replay of ${count}`, async () => {
    const app = `${lib}-replay-${uid()}`;
    const page = await libPage(lib, server, { app, dedicated: true });
    try {
      const before = await attempt(`${lib}.mem.${count}`, `${name} memory before`, () => heapAndWasm(page));
      progress(`    ${name}: ${count} pending (server offline)…`);
      const fill = await evalIn(page, (total) => M.fillPending({ total }), count, 900_000, 'fillPending');
      rec(`${lib}.fill.${count}.submitMs`, fill.submittedMs);
      rec(`${lib}.fill.${count}.durableMs`, fill.durableMs);
      const after = before && (await attempt(`${lib}.mem.${count}`, `${name} memory after`, () => heapAndWasm(page)));
      if (before && after) {
        const d = { heap: after.heap - before.heap, wasm: after.wasm - before.wasm, workerWasm: after.workerWasm - before.workerWasm };
        rec(`${lib}.mem.${count}.perTx`, (d.heap + d.wasm + d.workerWasm) / count);
        rec(`${lib}.mem.${count}.heapPerTx`, d.heap / count);
        rec(`${lib}.mem.${count}.wasmPerTx`, (d.wasm + d.workerWasm) / count);
      }
      progress(`    ${name}: reload, waiting for the ${count} rows…`);
      const navigated = Date.now();
      await page.goto(`${server.url}/?auto=${lib}&app=${app}&dedicated=1&expect=${count}`, { waitUntil: 'commit', timeout: 30_000 });
      const left = opts.replayTimeoutMs - (Date.now() - navigated);
      const settled = await bootSettled(page, left);
      const boot = settled
        ? settled
        : await timed(
            page.evaluate(() => {
              const b = globalThis.__boot;
              if (!b) return null;
              const c = globalThis.bench?.client;
              return { ...b, messageStats: c ? c.messageStats : null };
            }),
            5_000,
            'page',
          ).catch(() => ({ busy: true }));
      if (boot?.error) throw new Error(`after the reload: ${boot.error}`);
      if (!boot || boot.allAt === null || boot.allAt === undefined) {
        const diag = boot?.busy
          ? 'the page did not answer (its main thread busy)'
          : `the view had ${boot?.size ?? 0} of ${count} rows` +
            (boot?.messageStats?.tooLarge ? `; the tab refused ${boot.messageStats.tooLarge} channel message(s) as too large (the leader's snapshot)` : '');
        replayDiagnostics[key] = diag;
        throw new Error(`not back within ${opts.replayTimeoutMs / 1000} s: ${diag}`);
      }
      rec(key, boot.allAt);
      if (boot.readyAt !== null) rec(`${lib}.replay.${count}.ready`, boot.readyAt);
      if (lib === 'outbox') await idbReadTrial(page, server, app, count, opts);
      return boot;
    } finally {
      await closePage(page);
    }
  });
}

/**
 * The limit of a replay: the same page navigates again, without a library, to read and parse
 * every record of the outbox the replay left while it instantiates the client's wasm.
 */
async function idbReadTrial(page, server, app, count, opts) {
  const key = `limit.replay.${count}`;
  await attempt(key, `IndexedDB read of the outbox of ${count}`, async () => {
    await page.goto(`${server.url}/?auto=idb&db=${encodeURIComponent(`outbox:${app}`)}`, { waitUntil: 'commit', timeout: 30_000 });
    const boot = await bootSettled(page, opts.replayTimeoutMs);
    if (!boot) throw new Error(`the outbox not read within ${opts.replayTimeoutMs / 1000} s`);
    if (boot.error) throw new Error(boot.error);
    if (boot.size === 0) throw new Error('no records read');
    rec(key, boot.allAt);
    rec(`${key}.read`, boot.readAt);
    rec(`${key}.wasm`, boot.wasmAt);
  });
}

// ---- restart drain -------------------------------------------------------------------------

/**
 * `count` transactions pending behind a backoff (the server answered 503), then the tab reloads
 * as the server comes back: from navigation start, when the server sees the first request and
 * when it has applied all `count` (its totals, polled every 10 ms from here).
 */
async function drainTrial(lib, server, count) {
  const name = LIBS[lib];
  const key = `${lib}.drain.${count}`;
  return attempt(key, `${name} drain of ${count} after a reload`, async () => {
    const app = `${lib}-drain-${uid()}`;
    const page = await libPage(lib, server, { app, dedicated: true });
    try {
      await server.faults({ offline: false, unavailable: true });
      const before = await server.totals();
      await evalIn(page, (total) => M.fillPending({ total }), count, 900_000, 'fillPending');
      // A first attempt answered 503: a backoff is running when the tab goes.
      await eventually(async () => (await server.totals()).requests > before.requests, {
        timeout: 30_000,
        interval: 10,
        what: `a first attempt by ${name}`,
      });
      progress(`    ${name}: reload as the server comes back, waiting for ${count} applied…`);
      const base = await server.totals();
      const navigated = nodeWallNow();
      await server.faults({ unavailable: false });
      await page.goto(`${server.url}/?auto=${lib}&app=${app}&dedicated=1`, { waitUntil: 'commit', timeout: 30_000 });
      let first = null;
      let all = null;
      const deadline = navigated + 120_000;
      while (all === null && nodeWallNow() < deadline) {
        const t = await server.totals();
        const at = nodeWallNow() - navigated;
        if (first === null && t.requests > base.requests) first = at;
        if (t.applied - base.applied >= count) all = at;
        else await sleep(10);
      }
      if (all === null) throw new Error(`not all ${count} applied within 120 s`);
      rec(`${key}.first`, first);
      rec(`${key}.all`, all);
      return { first, all };
    } finally {
      await server.faults({ offline: true, unavailable: false }).catch(() => {});
      await closePage(page);
    }
  });
}

// ---- sizes ---------------------------------------------------------------------------------

async function sizes() {
  const out = {};
  const files = {
    clientWasm: 'www/pkg/client/outbox_client_bg.wasm',
    clientJs: 'www/pkg/client/outbox_client.js',
    workerWasm: 'www/pkg/worker/outbox_worker_bg.wasm',
    workerJs: 'www/pkg/worker/outbox_worker.js',
    workerBootstrap: 'www/pkg/worker/outbox-worker.js',
  };
  for (const [k, rel] of Object.entries(files)) {
    const bytes = await readFile(join(ROOT, rel));
    out[k] = { path: rel, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  }
  return out;
}

/** The size of one outbox record as Outbox stores it, for the raw IndexedDB figures. */
async function outboxRecordBytes(server) {
  return withLib('outbox', server, { app: `outbox-record-${uid()}` }, (page) =>
    evalIn(
      page,
      async () => {
        const { todoRow } = await import('/common.js');
        const h = bench.insert(todoRow(0));
        h.completed.catch(() => {});
        await h.durable;
        const [rec] = await bench.client.peekOutbox();
        return JSON.stringify(rec).length;
      },
      undefined,
      30_000,
      'record size',
    ),
  );
}

// ---- main ----------------------------------------------------------------------------------

async function main() {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`bench: ${error.message}\n(\`npm run bench -- --help\` lists the options)\n`);
      return 2;
    }
    throw error;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    checkArtifacts();
  } catch (error) {
    process.stderr.write(`bench: ${error.message.replace('end-to-end tests need', 'the bench needs')}\n`);
    return 2;
  }
  const outPath = resolve(opts.out ?? join(HERE, 'results.json'));
  progress(
    `bench${opts.quick ? ' (QUICK: a smoke run, figures not representative)' : ''}: ${opts.reps} reps, ` +
      `${opts.failoverTrials} failover trials, replay of ${opts.replayCount} (Outbox) and ${opts.peerReplayCount} (side by side) ×${opts.replayReps}` +
      (opts.tanstack ? '' : ', TanStack skipped (--no-tanstack)'),
  );

  const staticDir = await prepareStatic();
  const skipped = [];
  let tanstack = opts.tanstack;
  if (!opts.tanstack) skipped.push('@tanstack/offline-transactions: skipped on request (--no-tanstack)');
  else if (staticDir.tanstack.error) {
    tanstack = false;
    skipped.push(`@tanstack/offline-transactions: ${staticDir.tanstack.error}`);
    progress(`! ${staticDir.tanstack.error}`);
  } else {
    progress(`bundled @tanstack/offline-transactions ${staticDir.tanstack.version} (@tanstack/db ${staticDir.tanstack.dbVersion})`);
  }
  const libs = tanstack ? ['outbox', 'tanstack'] : ['outbox'];

  let faulty;
  let plain;
  const meta = {
    date: new Date().toISOString(),
    quick: opts.quick,
    options: { ...opts, out: outPath },
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? null, memoryGiB: Math.round(totalmem() / 2 ** 30) },
    node: process.version,
    tanstack: staticDir.tanstack,
  };
  try {
    faulty = await startServer({ staticDir: staticDir.dir, faults: true });
    plain = await startServer({ staticDir: staticDir.dir, faults: false });
    browser = await launchBrowser();
    meta.chromium = browser.context.browser()?.version() ?? null;
    await faulty.faults({ offline: true });

    opts.recordBytes = (await attempt('limit.recordBytes', 'outbox record size', () => outboxRecordBytes(faulty))) ?? 600;
    meta.recordBytes = opts.recordBytes;
    progress(`an outbox record is ${opts.recordBytes} bytes of JSON: the raw IndexedDB figures write records of that size`);

    // 1-3: interleaved reps, in a rotating order.
    const groups = [
      ['browser limits', () => limitsRep(faulty, opts)],
      ...libs.map((lib) => [LIBS[lib], () => libRep(lib, { faulty, plain }, opts)]),
    ];
    for (let rep = 0; rep < opts.reps; rep++) {
      const order = groups.map((_, i) => groups[(i + rep) % groups.length]);
      progress(`rep ${rep + 1}/${opts.reps}: ${order.map(([n]) => n).join(', ')}`);
      for (const [, run] of order) await run();
    }

    // Failover: raw lock handoffs and Outbox's takeover, trial after trial.
    progress(`failover: ${opts.failoverTrials} trials (Web Locks handoff page→page, worker→worker and worker→worker with an epoch bumped, Outbox with dedicated workers)`);
    for (let i = 0; i < opts.failoverTrials; i++) {
      const steps = [() => lockTrial(faulty, 'page'), () => lockTrial(faulty, 'worker'), () => lockTrial(faulty, 'fenced'), () => outboxFailoverTrial(faulty)];
      for (let j = 0; j < steps.length; j++) await steps[(i + j) % steps.length]();
      progress(`  trial ${i + 1}/${opts.failoverTrials}: Outbox ${fmtMs(samples['outbox.failover.attempt']?.at(-1))} (tab hears ${fmtMs(samples['outbox.failover.attemptSeen']?.at(-1))}), lock worker→worker ${fmtMs(samples['limit.lock.worker']?.at(-1))}, with an epoch bumped ${fmtMs(samples['limit.lock.fenced']?.at(-1))}`);
    }
    if (tanstack) {
      progress(`TanStack: closing the leader tab, ${opts.tanstackTrials} trial(s), watching the other tab for ${opts.tanstackWatchMs / 1000} s`);
      for (let i = 0; i < opts.tanstackTrials; i++) await tanstackLeaderCloseTrial(faulty, opts);
    }

    // Restart replay (and memory per pending transaction): side by side at the peer count,
    // then Outbox alone at the full count. A failed full-count replay is not repeated.
    progress(`restart replay: ${opts.replayReps} rep(s)`);
    let fullFailed = false;
    for (let r = 0; r < opts.replayReps; r++) {
      progress(`  rep ${r + 1}/${opts.replayReps}`);
      const order = r % 2 ? [...libs].reverse() : libs;
      for (const lib of order) await replayTrial(lib, faulty, opts.peerReplayCount, opts);
      if (opts.replayCount !== opts.peerReplayCount) {
        if (fullFailed) {
          note(`outbox.replay.${opts.replayCount}`, `rep ${r + 1}: not run (the replay of ${opts.replayCount} failed before)`);
        } else {
          const ok = await replayTrial('outbox', faulty, opts.replayCount, opts);
          if (!ok) fullFailed = true;
        }
      }
    }
    // Restart drain: pending behind a backoff, the tab reloads as the server comes back.
    progress(`restart drain: ${opts.replayReps} rep(s) of ${opts.peerReplayCount}`);
    for (let r = 0; r < opts.replayReps; r++) {
      const order = r % 2 ? [...libs].reverse() : libs;
      for (const lib of order) await drainTrial(lib, faulty, opts.peerReplayCount);
    }
  } finally {
    await browser?.close();
    await faulty?.stop();
    await plain?.stop();
    await staticDir.remove();
  }

  const size = await sizes();
  const results = { meta, skipped, samples, notes, sizes: size, tanstackLeaderClose: tanstackTrials, replayDiagnostics };
  results.figures = buildFigures(results, opts);
  results.tables = { main: mainTable(results, opts), limits: limitsTable(results) };
  await mkdir(dirname(outPath), { recursive: true });
  await writeFile(outPath, JSON.stringify(results, null, 2) + '\n');

  process.stdout.write('\n' + results.tables.main + '\n\n' + results.tables.limits + '\n');
  if (skipped.length) process.stdout.write(`\nSkipped:\n${skipped.map((s) => `- ${s}`).join('\n')}\n`);
  const failed = Object.entries(notes).filter(([k]) => !k.startsWith('limit.recordBytes'));
  if (failed.length) {
    process.stdout.write(`\nNotes and failures (a figure that failed in every rep is shown as "not measured"):\n`);
    for (const [k, list] of failed) for (const n of [...new Set(list)]) process.stdout.write(`- ${k}: ${n}\n`);
  }
  progress(`done in ${Math.round((Date.now() - started) / 1000)} s; results in ${outPath}`);
  return 0;
}

const fmtMs = (v) => (typeof v === 'number' ? `${v.toFixed(1)} ms` : '—');

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`bench failed: ${error?.stack ?? error}\n`);
    process.exit(1);
  },
);
