// From the samples to the figures, and the figures to markdown tables.
import { median } from './stats.mjs';

const ms = (v) => (v < 0.1 ? `${v.toFixed(3)} ms` : v < 10 ? `${v.toFixed(2)} ms` : v < 100 ? `${v.toFixed(1)} ms` : `${Math.round(v).toLocaleString('en-US')} ms`);
const perSecond = (v) => `${Math.round(v).toLocaleString('en-US')} tx/s`;
const recordsPerSecond = (v) => `${Math.round(v).toLocaleString('en-US')} records/s`;
const bytes = (v) => (Math.abs(v) >= 10_000 ? `${(v / 1000).toFixed(1)} kB` : `${Math.round(v).toLocaleString('en-US')} B`);
const FORMAT = { ms, perSecond, recordsPerSecond, bytes };

/**
 * Every row of the main table, with the numbers behind it. `o` and `r` name sample keys (or
 * give `value`s); a row whose Outbox value was never measured says so.
 */
export function buildFigures(results, opts) {
  const { samples, sizes, tanstackLeaderClose = [], replayDiagnostics = {}, meta } = results;
  const m = (key) => (key ? median(samples[key] ?? []) : null);
  const n = (key) => (key ? (samples[key] ?? []).length : 0);
  const peer = 'TanStack';
  const N = opts.peerReplayCount;
  const rows = [];
  const add = (row) => {
    const o = row.oValue ?? m(row.o);
    const r = row.rValue ?? m(row.r);
    const ratio = o !== null && r !== null && r !== 0 ? o / r : null;
    let met = '—';
    if (row.check) met = o === null || (row.needsRef && r === null) ? 'n/a' : row.check(o, r) ? 'yes' : 'no';
    rows.push({ ...row, outbox: o, ref: r, ratio, met, oReps: row.oValue !== undefined ? null : n(row.o), rReps: row.rValue !== undefined ? null : n(row.r) });
  };

  const rowsTo = opts.insertView.samples * opts.insertView.perSample;
  const rowsTo2 = (2 * rowsTo).toLocaleString('en-US');
  add({ id: 'insertView.bare', figure: `insert() → optimistic view, per insert, warm (no subscriber; inserts ${rowsTo + 1}–${rowsTo2} of the page, view of ${rowsTo} → ${rowsTo2} rows)`, unit: 'ms', o: 'outbox.insertView.bare', refLabel: peer, r: 'tanstack.insertView.bare', target: '≤ 0.05 ms', check: (o) => o <= 0.05 });
  add({ id: 'insertView.sub', figure: `insert() → optimistic view, per insert, warm (one subscriber; inserts ${rowsTo + 1}–${rowsTo2}, view of ${rowsTo} → ${rowsTo2} rows)`, unit: 'ms', o: 'outbox.insertView.sub', refLabel: peer, r: 'tanstack.insertView.sub', target: '≤ 0.05 ms', check: (o) => o <= 0.05 });
  add({ id: 'insertView.bare.cold', figure: `insert() → optimistic view, per insert, cold (no subscriber; the first ${rowsTo} inserts of a fresh page)`, unit: 'ms', o: 'outbox.insertView.bare.cold', refLabel: peer, r: 'tanstack.insertView.bare.cold' });
  add({ id: 'insertView.sub.cold', figure: `insert() → optimistic view, per insert, cold (one subscriber; the first ${rowsTo} inserts of a fresh page)`, unit: 'ms', o: 'outbox.insertView.sub.cold', refLabel: peer, r: 'tanstack.insertView.sub.cold' });
  add({ id: 'durable.p50.limit', figure: 'submit → durable, p50', unit: 'ms', o: 'outbox.durable.p50', refLabel: 'IDB commit + BC round trip (page↔SharedWorker)', r: 'limit.durable.p50', target: '≤ 1.5 × limit', check: (o, r) => o <= 1.5 * r, needsRef: true });
  add({ id: 'durable.p50.port', figure: 'submit → durable, p50', unit: 'ms', o: 'outbox.durable.p50', refLabel: 'IDB commit + MessagePort round trip (page↔SharedWorker: the path Outbox takes while the tab\'s own worker leads)', r: 'limit.durablePort.p50' });
  add({ id: 'durable.p99.limit', figure: 'submit → durable, p99', unit: 'ms', o: 'outbox.durable.p99', refLabel: 'IDB commit p99 + BC round trip p99', r: 'limit.durable.p99' });
  add({ id: 'durable.p50.peer', figure: 'submit → durable, p50', unit: 'ms', o: 'outbox.durable.p50', refLabel: `${peer} (its outbox put request succeeded)`, r: 'tanstack.durable.p50' });
  add({ id: 'durable.tps1.limit', figure: 'durable tx/s, 1 in flight', unit: 'perSecond', o: 'outbox.durable.perSecond1', refLabel: '1 / (IDB commit + BC round trip)', r: 'limit.durable.perSecond1' });
  add({ id: 'durable.tps1.peer', figure: 'durable tx/s, 1 in flight', unit: 'perSecond', o: 'outbox.durable.perSecond1', refLabel: peer, r: 'tanstack.durable.perSecond1' });
  add({ id: 'durable.tps10.peer', figure: 'durable tx/s, 10 in flight', unit: 'perSecond', o: 'outbox.durable.perSecond10', refLabel: peer, r: 'tanstack.durable.perSecond10' });
  const tps100 = opts.durableThroughput[100].toLocaleString('en-US');
  const before = (opts.durableColdWarmup + opts.durableThroughput[100] + opts.durableWarmup).toLocaleString('en-US');
  add({ id: 'durable.tps100.limit', figure: `durable tx/s, 100 in flight, warm (the ${tps100} after a page's first ${before})`, unit: 'perSecond', o: 'outbox.durable.perSecond100.warm', refLabel: 'IDB: 1,000 records in one transaction', r: 'limit.idb.batch1000.perSecond', target: '≥ 10,000 tx/s', check: (o) => o >= 10_000 });
  add({ id: 'durable.tps100.peer', figure: `durable tx/s, 100 in flight, warm (as above)`, unit: 'perSecond', o: 'outbox.durable.perSecond100.warm', refLabel: peer, r: 'tanstack.durable.perSecond100.warm' });
  add({ id: 'durable.tps100.cold.limit', figure: `durable tx/s, 100 in flight, cold (the first ${tps100} of a fresh page, after ${opts.durableColdWarmup})`, unit: 'perSecond', o: 'outbox.durable.perSecond100', refLabel: 'IDB: 1,000 records in one transaction', r: 'limit.idb.batch1000.perSecond' });
  add({ id: 'durable.tps100.cold.peer', figure: `durable tx/s, 100 in flight, cold (as above)`, unit: 'perSecond', o: 'outbox.durable.perSecond100', refLabel: peer, r: 'tanstack.durable.perSecond100' });
  add({ id: 'acked', figure: `server-acknowledged tx/s (${opts.ackedCount} submitted at once)`, unit: 'perSecond', o: 'outbox.acked.perSecond', refLabel: peer, r: 'tanstack.acked.perSecond', target: '≥ 10 × peer', check: (o, r) => o >= 10 * r, needsRef: true });
  add({ id: 'acked.nobatch', figure: `server-acknowledged tx/s, Outbox with one request per transaction`, unit: 'perSecond', o: 'outbox.acked.nobatch.perSecond', refLabel: peer, r: 'tanstack.acked.perSecond' });
  add({ id: 'failover.limit', figure: 'failover: leader tab closed → new leader’s first attempt', unit: 'ms', o: 'outbox.failover.attempt', refLabel: 'Web Locks handoff, dedicated worker → worker', r: 'limit.lock.worker', target: '≤ 1.5 × limit', check: (o, r) => o <= 1.5 * r, needsRef: true });
  add({ id: 'failover.fenced', figure: 'failover: leader tab closed → new leader’s first attempt', unit: 'ms', o: 'outbox.failover.attempt', refLabel: 'Web Locks handoff, dedicated worker → worker, then an epoch read and bumped in one IndexedDB transaction', r: 'limit.lock.fenced' });
  add({ id: 'failover.seen', figure: 'failover: leader tab closed → the new leader’s tab hears of its first attempt', unit: 'ms', o: 'outbox.failover.attemptSeen', refLabel: 'Web Locks handoff, dedicated worker → worker', r: 'limit.lock.worker' });
  add({ id: 'failover.leader', figure: 'failover: leader tab closed → new leader elected', unit: 'ms', o: 'outbox.failover.leader', refLabel: 'Web Locks handoff, page → page', r: 'limit.lock.page' });
  if (meta.tanstack && !meta.tanstack.error && (tanstackLeaderClose.length || samples['tanstack.failover.tookOver'])) {
    const took = samples['tanstack.failover.tookOver'] ?? [];
    const yes = took.filter((v) => v === 1).length;
    const watch = (opts.tanstackWatchMs / 1000).toFixed(0);
    let text = took.length
      ? yes === 0
        ? `no takeover within ${watch} s (${took.length}/${took.length} trials)`
        : `took over in ${yes}/${took.length} trials${samples['tanstack.failover.leader'] ? `, median ${ms(median(samples['tanstack.failover.leader']))}` : ''}`
      : 'not measured';
    if (tanstackLeaderClose.length) {
      const sent = tanstackLeaderClose.reduce((a, t) => a + t.callsInB, 0);
      const written = tanstackLeaderClose.filter((t) => t.bInsertOutboxWrites > 0).length;
      text += `; the other tab sent ${sent} of the closed tab's pending transactions, and wrote its own new change to an outbox in ${written}/${tanstackLeaderClose.length} trials`;
    }
    add({ id: 'failover.peer', figure: 'failover: leader tab closed → another tab leads', unit: 'ms', o: 'outbox.failover.leader', refLabel: peer, rText: text, rValue: yes === took.length && took.length ? m('tanstack.failover.leader') : null });
  }
  const full = opts.replayCount;
  const ready = (count) => (m(`outbox.replay.${count}.ready`) === null ? '' : ` (client connected at ${ms(m(`outbox.replay.${count}.ready`))})`);
  add({ id: 'replay.full', figure: `reload with ${full.toLocaleString('en-US')} pending → view back (from navigation start)`, unit: 'ms', o: `outbox.replay.${full}`, oExtra: ready(full), refLabel: '', target: '< 300 ms', check: (o) => o < 300, failure: replayDiagnostics[`outbox.replay.${full}`] });
  add({ id: 'replay.limit', figure: `reload with ${full.toLocaleString('en-US')} pending → view back (from navigation start)`, unit: 'ms', o: `outbox.replay.${full}`, refLabel: 'the same page without Outbox, reading and parsing every record of that outbox while it instantiates the client wasm', r: `limit.replay.${full}` });
  if (full !== N) {
    add({ id: 'replay.peer', figure: `reload with ${N.toLocaleString('en-US')} pending → view back`, unit: 'ms', o: `outbox.replay.${N}`, oExtra: ready(N), refLabel: peer, r: `tanstack.replay.${N}`, failure: replayDiagnostics[`outbox.replay.${N}`] });
  }
  const drained = `reload with ${N.toLocaleString('en-US')} pending behind a backoff (the server answered 503), as the server comes back`;
  add({ id: 'drain.first', figure: `${drained} → its first request (from navigation start)`, unit: 'ms', o: `outbox.drain.${N}.first`, refLabel: peer, r: `tanstack.drain.${N}.first` });
  add({ id: 'drain.all', figure: `${drained} → all ${N.toLocaleString('en-US')} applied by the server`, unit: 'ms', o: `outbox.drain.${N}.all`, refLabel: peer, r: `tanstack.drain.${N}.all` });
  add({ id: 'mem.peer', figure: `memory per pending transaction, ${N.toLocaleString('en-US')} pending (Outbox: page JS heap + growth of the client's and worker's wasm memory)`, unit: 'bytes', o: `outbox.mem.${N}.perTx`, refLabel: `${peer} (page JS heap)`, r: `tanstack.mem.${N}.perTx` });
  if (full !== N) add({ id: 'mem.full', figure: `memory per pending transaction, ${full.toLocaleString('en-US')} pending (as above)`, unit: 'bytes', o: `outbox.mem.${full}.perTx`, refLabel: '' });
  if (sizes) {
    const tanMin = meta.tanstack && !meta.tanstack.error ? meta.tanstack.minGzipBytes : null;
    add({ id: 'size.clientWasm', figure: 'client wasm, gzip -9', unit: 'bytes', oValue: sizes.clientWasm.gzip, refLabel: `${peer} bundle (JS, minified, gzip -9)`, rValue: tanMin, target: '< 100 kB', check: (o) => o < 100_000 });
    add({ id: 'size.clientAll', figure: 'client wasm + JS glue, gzip -9', unit: 'bytes', oValue: sizes.clientWasm.gzip + sizes.clientJs.gzip, refLabel: `${peer} bundle (JS, minified, gzip -9)`, rValue: tanMin });
    add({ id: 'size.clientWasmRaw', figure: 'client wasm, raw', unit: 'bytes', oValue: sizes.clientWasm.raw, refLabel: `${peer} bundle (JS, minified)`, rValue: meta.tanstack?.minBytes ?? null });
    add({ id: 'size.workerWasm', figure: 'worker wasm, gzip -9 (raw)', unit: 'bytes', oValue: sizes.workerWasm.gzip, oExtra: ` (${bytes(sizes.workerWasm.raw)})`, refLabel: '' });
  }
  return rows;
}

/** The main table: figure | Outbox | limit or peer | ratio | target | met? */
export function mainTable(results, opts) {
  const rows = results.figures;
  const head = [
    `Outbox bench, ${results.meta.date.slice(0, 10)}${results.meta.quick ? ' — QUICK RUN (smoke test, not representative)' : ''}: ` +
      `medians of ${opts.reps} interleaved reps (failover: ${opts.failoverTrials} trials; replay: ${opts.replayReps} rep(s)); ` +
      `${results.meta.machine.cpus} cores, Chromium ${results.meta.chromium ?? '?'} headless. Ratio = Outbox ÷ reference.`,
    '',
    '| figure | Outbox | limit or peer | ratio | target | met? |',
    '| --- | ---: | --- | ---: | --- | --- |',
  ];
  const lines = rows.map((r) => {
    const fmt = FORMAT[r.unit] ?? String;
    const partial = (v, reps, want) => (v !== null && reps !== null && want && reps < want ? ` (${reps} of ${want})` : '');
    const outbox =
      r.outbox === null
        ? `not measured${r.failure ? `: ${r.failure}` : ''}`
        : fmt(r.outbox) + (r.oExtra ?? '') + partial(r.outbox, r.oReps, wanted(r.o, opts));
    let ref = '';
    if (r.refLabel || r.rText) {
      const value = r.rText ?? (r.ref === null ? (r.r || r.rValue !== undefined ? 'not measured' : '') : fmt(r.ref));
      ref = r.refLabel ? `${r.refLabel}: ${value}` : value;
    }
    const ratio = r.ratio === null ? '' : `${r.ratio >= 10 ? r.ratio.toFixed(0) : r.ratio >= 1 ? r.ratio.toFixed(1) : r.ratio.toFixed(2)}×`;
    return `| ${r.figure} | ${outbox} | ${ref} | ${ratio} | ${r.target ?? ''} | ${r.met} |`;
  });
  return [...head, ...lines].join('\n');
}

// How many values a key should have, to flag figures some of whose reps failed.
function wanted(key, opts) {
  if (!key) return 0;
  if (key.includes('.failover.')) return opts.failoverTrials;
  if (key.includes('.replay.') || key.includes('.mem.') || key.includes('.drain.')) return opts.replayReps;
  return opts.reps;
}

/** The browser's own figures. */
export function limitsTable(results) {
  const s = results.samples;
  const m = (k) => median(s[k] ?? []);
  const rows = [
    ['IndexedDB put + commit, default durability', 'limit.idb.default.p50', 'limit.idb.default.p99', ms],
    ['IndexedDB put + commit, durability: relaxed', 'limit.idb.relaxed.p50', 'limit.idb.relaxed.p99', ms],
    ['IndexedDB, 1,000 records in one transaction', 'limit.idb.batch1000.perSecond', null, recordsPerSecond],
    ['BroadcastChannel round trip, page ↔ page', 'limit.bc.page.p50', 'limit.bc.page.p99', ms],
    ['BroadcastChannel round trip, page ↔ dedicated worker', 'limit.bc.dedicated.p50', 'limit.bc.dedicated.p99', ms],
    ['BroadcastChannel round trip, page ↔ SharedWorker', 'limit.bc.shared.p50', 'limit.bc.shared.p99', ms],
    ['MessagePort round trip, page ↔ dedicated worker (its own port; each sample the mean of 10)', 'limit.port.dedicated.p50', 'limit.port.dedicated.p99', ms],
    ['MessagePort round trip, page ↔ SharedWorker (each sample the mean of 10)', 'limit.port.shared.p50', 'limit.port.shared.p99', ms],
    ['Web Locks handoff, holder tab closed (page → page)', 'limit.lock.page', null, ms],
    ['Web Locks handoff, holder tab closed (dedicated worker → worker)', 'limit.lock.worker', null, ms],
    ['… then an epoch read and bumped in one IndexedDB transaction (from the close)', 'limit.lock.fenced', null, ms],
    ['… that transaction alone (from the grant)', 'limit.lock.fenced.commit', null, ms],
  ];
  for (const count of Object.keys(s).map((k) => /^limit\.replay\.(\d+)$/.exec(k)?.[1]).filter(Boolean)) {
    const n = Number(count).toLocaleString('en-US');
    rows.push(
      [`Reload of a page reading and parsing an outbox of ${n} pending (no library), from navigation start: all records read and parsed, and the client wasm instantiated`, `limit.replay.${count}`, null, ms],
      [`… the records alone`, `limit.replay.${count}.read`, null, ms],
      [`… the client wasm alone`, `limit.replay.${count}.wasm`, null, ms],
    );
  }
  const lines = rows.map(([label, k50, k99, fmt]) => {
    const v = m(k50);
    const p99 = k99 ? m(k99) : null;
    return `| ${label} | ${v === null ? 'not measured' : fmt(v)} | ${p99 === null ? '' : fmt(p99)} | ${(s[k50] ?? []).length} |`;
  });
  return [
    `Browser limits (records of ${results.meta.recordBytes} bytes, as Outbox's):`,
    '',
    '| limit | median | p99 (median over reps) | reps/trials |',
    '| --- | ---: | ---: | ---: |',
    ...lines,
  ].join('\n');
}
