// `index.html?auto=outbox|tanstack&app=…[&dedicated=1][&expect=N]`: starts that library as soon as
// the page loads, and notes (ms since navigation start) when it was set up and when its
// collection first held `expect` rows: the restart-replay measurement after a reload.
//
// `index.html?auto=idb&db=…`: the limit of that measurement. No library: as the page loads, it
// reads every record of IndexedDB database `db` (the outbox the replay left) and parses each
// string as JSON, and, at the same time, loads and instantiates the client's wasm; it notes when
// the records were read and parsed (`readAt`), when the wasm was ready (`wasmAt`), and when both
// were (`allAt`).
const params = new URLSearchParams(location.search);
const lib = params.get('auto');
const boot = { lib, scriptAt: performance.now(), readyAt: null, allAt: null, error: null, size: 0 };
globalThis.__boot = boot;
// Settles once `allAt` or `error` is set: the harness awaits it rather than polling the page
// (its calls would compete with the page's work for the CPU).
let settle;
globalThis.__bootDone = new Promise((resolve) => (settle = resolve));
const done = (at) => {
  if (boot.allAt === null) boot.allAt = at;
  settle(boot);
};

const fail = (e) => {
  boot.error = String(e && e.stack ? e.stack : e);
  settle(boot);
};
if (lib === 'outbox' || lib === 'tanstack') start().catch(fail);
if (lib === 'idb') readAll().catch(fail);

async function readAll() {
  const wasm = import('/pkg/client/outbox_client.js')
    .then((m) => m.default())
    .then(() => (boot.wasmAt = performance.now()));
  const db = await new Promise((resolve, reject) => {
    const req = indexedDB.open(params.get('db'));
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const stores = [...db.objectStoreNames];
  const tx = db.transaction(stores, 'readonly');
  const lists = await Promise.all(
    stores.map(
      (s) =>
        new Promise((resolve, reject) => {
          const req = tx.objectStore(s).getAll();
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        }),
    ),
  );
  let parsed = 0;
  for (const values of lists) {
    for (const v of values) {
      // Records are JSON text; a few values of `meta` are plain strings (the lineage's id).
      if (typeof v === 'string' && (v[0] === '{' || v[0] === '[')) {
        JSON.parse(v);
        parsed++;
      }
    }
  }
  boot.readAt = performance.now();
  boot.size = parsed;
  db.close();
  await wasm;
  done(performance.now());
}

async function start() {
  const expect = Number(params.get('expect') ?? '0');
  const app = params.get('app') ?? 'bench';
  const mod = lib === 'outbox' ? await import('/outbox-page.js') : await import('/tanstack-page.js');
  const check = () => {
    const size = globalThis.bench ? globalThis.bench.size() : 0;
    boot.size = size;
    if (boot.allAt === null && expect > 0 && size >= expect) done(performance.now());
  };
  // setup() resolves (a microtask after the collection is made, before any other message or
  // task can bring rows) once the library is ready; from then on every change is checked.
  await mod.setup({ app, dedicated: params.get('dedicated') === '1' });
  boot.readyAt = performance.now();
  check();
  if (boot.allAt === null) globalThis.bench.subscribe(check);
}
