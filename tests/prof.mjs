// Temporary profiler (not committed): CPU profile of insert() in the bench page.
import { launchBrowser } from './harness.mjs';
import { prepareStatic, startBenchServer } from './bench/lib/env.mjs';
const { dir: staticDir } = await prepareStatic();
const server = await startBenchServer({ staticDir, faults: false });
const browser = await launchBrowser();
const page = await browser.context.newPage();
await page.goto(server.url + "/index.html");
await page.evaluate(async () => {
  const mod = await import('/outbox-page.js');
  globalThis.M = await import('/measure.js');
  await mod.setup({ app: 'prof' + Date.now() });
});
const cdp = await browser.context.newCDPSession(page);
await cdp.send('Profiler.enable');
await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
for (const subscriber of [false, true]) {
  await cdp.send('Profiler.start');
  const r = await page.evaluate((s) => M.insertView({ samples: 10, perSample: 100, subscriber: s }), subscriber);
  const { profile } = await cdp.send('Profiler.stop');
  const med = [...r.perInsert].sort((a, b) => a - b)[5];
  const self = new Map();
  const dt = profile.timeDeltas;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  profile.samples.forEach((id, i) => counts.set(id, (counts.get(id) ?? 0) + (dt[i] ?? 0)));
  for (const [id, t] of counts) {
    const n = byId.get(id);
    const name = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}`;
    self.set(name, (self.get(name) ?? 0) + t);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`\nsubscriber=${subscriber} median per insert ${med.toFixed(3)} ms; profile total ${(total / 1000).toFixed(0)} ms`);
  for (const [name, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${(t / 1000).toFixed(1).padStart(8)} ms  ${name}`);
}
await browser.close();
server.stop?.();
process.exit(0);
