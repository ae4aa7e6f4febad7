// What the bench runs on: a static folder (the bench pages, plus @tanstack/offline-transactions
// bundled for the browser), and the reference server serving it next to www/pkg.
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../../harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
export const PAGES = join(HERE, '..', 'pages');
const SERVER = process.env.OUTBOX_SERVER ?? join(ROOT, 'target/release/outbox-server');
const KEEP = process.env.OUTBOX_KEEP === '1';

/**
 * A temporary static folder: the pages, and `tanstack-page.js` bundled from
 * `pages/tanstack-entry.js` (its absence is reported in `tanstack.error`, not thrown, so that the
 * rest of the bench still runs). Also bundles a minified copy to report the peer's size.
 */
export async function prepareStatic() {
  const dir = await mkdtemp(join(tmpdir(), 'outbox-bench-static-'));
  await cp(PAGES, dir, { recursive: true, filter: (src) => !src.endsWith('tanstack-entry.js') });
  const tanstack = { error: null, version: null, dbVersion: null, minBytes: null, minGzipBytes: null };
  try {
    const { build } = await import('esbuild');
    const entry = join(PAGES, 'tanstack-entry.js');
    const common = { entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'silent' };
    await build({ ...common, outfile: join(dir, 'tanstack-page.js') });
    const min = await build({ ...common, minify: true, write: false, outfile: 'min.js' });
    const bytes = min.outputFiles[0].contents;
    const { gzipSync } = await import('node:zlib');
    tanstack.minBytes = bytes.length;
    tanstack.minGzipBytes = gzipSync(bytes, { level: 9 }).length;
    const { createRequire } = await import('node:module');
    const require = createRequire(join(HERE, '..', '..', 'package.json'));
    tanstack.version = require('@tanstack/offline-transactions/package.json').version;
    tanstack.dbVersion = require('@tanstack/db/package.json').version;
  } catch (error) {
    tanstack.error =
      `could not bundle @tanstack/offline-transactions (is it installed? \`cd tests && npm ci\`): ` +
      (error?.errors?.map((e) => e.text).join('; ') || error?.message || String(error));
  }
  return { dir, tanstack, remove: () => (KEEP ? Promise.resolve() : rm(dir, { recursive: true, force: true })) };
}

/**
 * The reference server on a free loopback port with a fresh data dir, serving `staticDir` at `/`
 * and www/pkg at `/pkg/`. `faults`: the fault switches (they also turn HTTP keep-alive off).
 */
export async function startBenchServer({ staticDir, faults, startTimeoutMs = 15_000 }) {
  const dataDir = await mkdtemp(join(tmpdir(), 'outbox-bench-data-'));
  const args = ['--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--static', staticDir, '--pkg', join(ROOT, 'www/pkg')];
  if (faults) args.push('--faults');
  const proc = spawn(SERVER, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  const log = [];
  proc.stderr.on('data', (c) => {
    log.push(String(c));
    if (log.length > 200) log.shift();
  });
  const exited = new Promise((done) => proc.once('exit', (code, signal) => done({ code, signal })));
  let url;
  try {
    url = await new Promise((ok, fail) => {
      let out = '';
      const timer = setTimeout(() => fail(new Error(`no "listening on" line in ${startTimeoutMs} ms`)), startTimeoutMs);
      proc.stdout.on('data', (chunk) => {
        out += chunk;
        const m = out.match(/listening on (http:\/\/\S+)/);
        if (m) {
          clearTimeout(timer);
          ok(m[1].replace(/\/$/, ''));
        }
      });
      proc.once('error', (e) => (clearTimeout(timer), fail(e)));
      exited.then(({ code, signal }) => (clearTimeout(timer), fail(new Error(`exited (${code ?? signal})`))));
    });
  } catch (error) {
    await stop(proc, exited);
    await rm(dataDir, { recursive: true, force: true });
    throw new Error(`outbox-server did not start: ${error.message}\n${log.join('')}`);
  }
  const request = async (method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    url,
    faults: (patch) => request('POST', '/_test/faults', patch),
    stats: () => request('GET', '/_test/stats'),
    /** `{requests, applied}` so far, every app's: cheap enough to poll. */
    totals: () => request('GET', '/_test/totals'),
    log: () => log.join(''),
    async stop() {
      await stop(proc, exited);
      running.delete(proc);
      if (!KEEP) await rm(dataDir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
    },
  };
}

const running = new Set();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

async function stop(proc, exited) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
