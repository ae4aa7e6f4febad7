// `index.html?auto=outbox|tanstack&app=…[&dedicated=1][&expect=N]`: starts that library as soon as
// the page loads, and notes (ms since navigation start) when it was set up and when its
// collection first held `expect` rows: the restart-replay measurement after a reload.
const params = new URLSearchParams(location.search);
const lib = params.get('auto');
const boot = { lib, scriptAt: performance.now(), readyAt: null, allAt: null, error: null, size: 0 };
globalThis.__boot = boot;

if (lib === 'outbox' || lib === 'tanstack') start().catch((e) => (boot.error = String(e && e.stack ? e.stack : e)));

async function start() {
  const expect = Number(params.get('expect') ?? '0');
  const app = params.get('app') ?? 'bench';
  const mod = lib === 'outbox' ? await import('/outbox-page.js') : await import('/tanstack-page.js');
  const check = () => {
    const size = globalThis.bench ? globalThis.bench.size() : 0;
    boot.size = size;
    if (boot.allAt === null && expect > 0 && size >= expect) boot.allAt = performance.now();
  };
  // setup() resolves (a microtask after the collection is made, before any other message or
  // task can bring rows) once the library is ready; from then on every change is checked.
  await mod.setup({ app, dedicated: params.get('dedicated') === '1' });
  boot.readyAt = performance.now();
  check();
  if (boot.allAt === null) globalThis.bench.subscribe(check);
}
