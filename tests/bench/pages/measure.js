// The workloads, written once against `globalThis.bench` (set up by outbox-page.js or the
// TanStack bundle), so that every library runs exactly the same code.
import { sleep, todoRow } from './common.js';

const quiet = (h) => {
  h.durable?.catch?.(() => {});
  h.completed?.catch?.(() => {});
  return h;
};

const need = () => {
  const b = globalThis.bench;
  if (!b) throw new Error('no library set up in this page (globalThis.bench missing)');
  return b;
};

/**
 * insert → optimistic view: `samples` timings of `perSample` one-row inserts in a row, each
 * followed by a read of the row from the collection (it must be there). performance.now() is
 * coarsened to 100 µs in a page that is not cross-origin isolated, so each sample times a run of
 * inserts and divides. `subscriber`: with one change subscriber on the collection (a counter),
 * as an app showing the rows has. The same `samples` runs are timed twice on the page: first on
 * the fresh page (`coldPerInsert`: the engine still compiling the code), then again after them
 * (`perInsert`: warm, as in a page that has been in use; the view then holds the first runs'
 * rows too). Returns ms per insert, one value per sample, and whether the subscriber had been
 * told synchronously (before insert() returned).
 */
export async function insertView({ samples = 20, perSample = 100, subscriber = false } = {}) {
  const b = need();
  let notified = 0;
  const unsubscribe = subscriber
    ? b.subscribe(() => {
        notified++;
      })
    : null;
  const coldPerInsert = [];
  const perInsert = [];
  let missing = 0;
  let syncNotified = true;
  try {
    for (let s = 0; s < 2 * samples; s++) {
      const rows = Array.from({ length: perSample }, (_, i) => todoRow(i));
      const handles = new Array(perSample);
      const before = notified;
      const t0 = performance.now();
      for (let i = 0; i < perSample; i++) {
        handles[i] = b.insert(rows[i]);
        if (!b.has(rows[i].id)) missing++;
      }
      const t1 = performance.now();
      if (subscriber && notified - before < perSample) syncNotified = false;
      handles.forEach(quiet);
      (s < samples ? coldPerInsert : perInsert).push((t1 - t0) / perSample);
      await sleep(20); // let the library's asynchronous work for this run go on outside the timing
    }
  } finally {
    unsubscribe?.();
  }
  return { perInsert, coldPerInsert, missing, syncNotified: subscriber ? syncNotified : null, rowsAtEnd: b.size() };
}

/** submit → durable, one transaction at a time: ms per transaction. */
export async function durableLatency({ n = 200, warmup = 10, timeoutMs = 60_000 } = {}) {
  const b = need();
  const times = [];
  const run = async () => {
    for (let i = 0; i < n + warmup; i++) {
      const row = todoRow(i);
      const t0 = performance.now();
      const h = quiet(b.insert(row));
      await h.durable;
      const dt = performance.now() - t0;
      if (i >= warmup) times.push(dt);
    }
  };
  await withTimeout(run(), timeoutMs, `${n} transactions durable one at a time`);
  return times;
}

/**
 * Durable transactions per second with `inFlight` submitted and not yet durable at any time,
 * after `warmup` transactions run the same way and not counted (the engine compiles the hot
 * code on the way: the first thousands after a page load are slower, for every library).
 * One timeout guards a whole run: a timer per transaction cost the page more than some of the
 * work measured.
 */
export async function durableThroughput({ total = 1000, inFlight = 10, warmup = 200, timeoutMs = 60_000 } = {}) {
  const b = need();
  const run = async (n) => {
    const rows = Array.from({ length: n }, (_, i) => todoRow(i));
    let next = 0;
    const t0 = performance.now();
    const lane = async () => {
      while (next < n) {
        const h = quiet(b.insert(rows[next++]));
        await h.durable;
      }
    };
    const lanes = Promise.all(Array.from({ length: Math.min(inFlight, n) }, lane));
    await withTimeout(lanes, timeoutMs, `${n} durable with ${inFlight} in flight`);
    return performance.now() - t0;
  };
  if (warmup > 0) await run(warmup);
  const ms = await run(total);
  return { total, warmup, ms, perSecond: (total * 1000) / ms };
}

/** `total` transactions submitted at once; ms until every one is durable, then completed. */
export async function ackedThroughput({ total = 500, timeoutMs = 120_000 } = {}) {
  const b = need();
  const rows = Array.from({ length: total }, (_, i) => todoRow(i));
  const t0 = performance.now();
  const handles = rows.map((r) => quiet(b.insert(r)));
  const durableAll = Promise.all(handles.map((h) => h.durable)).then(() => performance.now() - t0);
  const ms = await withTimeout(
    Promise.all(handles.map((h) => h.completed)).then(() => performance.now() - t0),
    timeoutMs,
    `${total} completed`,
  );
  const durableMs = await durableAll;
  return { total, ms, perSecond: (total * 1000) / ms, durableMs };
}

/** Submits `total` one-row transactions in runs of `chunk`; resolves once all are durable. */
export async function fillPending({ total = 10_000, chunk = 500, timeoutMs = 600_000 } = {}) {
  const b = need();
  const t0 = performance.now();
  const durables = [];
  for (let done = 0; done < total; done += chunk) {
    const n = Math.min(chunk, total - done);
    for (let i = 0; i < n; i++) durables.push(quiet(b.insert(todoRow(done + i))).durable);
    await sleep(0);
  }
  const submittedMs = performance.now() - t0;
  await withTimeout(Promise.all(durables), timeoutMs, `${total} durable`);
  return { total, submittedMs, durableMs: performance.now() - t0, size: b.size() };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
