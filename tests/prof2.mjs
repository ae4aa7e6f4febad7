// Temporary profiler (not committed): only the synchronous insert() loop.
import { launchBrowser } from './harness.mjs';
import { prepareStatic, startBenchServer } from './bench/lib/env.mjs';
const { dir: staticDir } = await prepareStatic();
const server = await startBenchServer({ staticDir, faults: false });
const browser = await launchBrowser();
const page = await browser.context.newPage();
await page.goto(server.url + '/index.html');
await page.evaluate(async () => {
  const mod = await import('/outbox-page.js');
  await mod.setup({ app: 'prof' + Date.now() });
});
const cdp = await browser.context.newCDPSession(page);
await cdp.send('Profiler.enable');
await cdp.send('Profiler.setSamplingInterval', { interval: 20 });
const done = new Promise((r) => cdp.on('Profiler.consoleProfileFinished', (e) => r(e.profile)));
const ms = await page.evaluate(() => {
  const rows = Array.from({ length: 3000 }, (_, i) => ({ id: `r${i}`, title: `todo ${i}`, done: false, createdAt: i }));
  console.profile('ins');
  const t0 = performance.now();
  for (const r of rows) bench.insert(r);
  const t1 = performance.now();
  console.profileEnd('ins');
  return (t1 - t0) / rows.length;
});
const profile = await done;
const self = new Map();
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const counts = new Map();
profile.samples.forEach((id, i) => counts.set(id, (counts.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
for (const [id, t] of counts) {
  const n = byId.get(id);
  const name = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}`.slice(0, 150);
  self.set(name, (self.get(name) ?? 0) + t);
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(`per insert ${ms.toFixed(3)} ms; profile ${(total / 1000).toFixed(0)} ms`);
for (const [name, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${(t / 1000).toFixed(1).padStart(8)} ms  ${name}`);
await browser.close();
process.exit(0);
