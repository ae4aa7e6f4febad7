// The end-to-end harness: the reference server on a free loopback port with a fresh database and
// its fault switches on, and Debian's Chromium (headless) on a fresh on-disk profile, whose pages
// behave as tabs of one browser (they share Web Locks, BroadcastChannel, SharedWorker and
// IndexedDB). Everything is torn down after each test, failed or not.
//
// It runs what is built and builds nothing: `bash scripts/dev test` builds first. By hand:
//   bash scripts/dev build && cargo build --release -p outbox-www && (cd tests && npm test)
//
// Environment: OUTBOX_SERVER (server binary), OUTBOX_CHROMIUM (browser), OUTBOX_KEEP=1 (keep the
// data dir and the profile of each test, printed on teardown).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Cargo's target dir: CARGO_TARGET_DIR (relative to the repository root), else target/.
export const TARGET = resolve(ROOT, process.env.CARGO_TARGET_DIR ?? 'target');
const SERVER = process.env.OUTBOX_SERVER ?? join(TARGET, 'release/outbox-server');
const CHROMIUM = process.env.OUTBOX_CHROMIUM ?? '/usr/bin/chromium';
const KEEP = process.env.OUTBOX_KEEP === '1';
const CHROMIUM_ARGS = [
  '--no-sandbox', // required as root
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Fails with one clear message naming whatever is missing and the command that builds it;
 * `extra` adds `[path, command]` pairs.
 */
export function checkArtifacts(extra = []) {
  const need = [
    ...extra,
    [SERVER, 'cargo build --release -p outbox-www'],
    [join(ROOT, 'www/pkg/client/outbox_client.js'), 'bash scripts/dev build'],
    [join(ROOT, 'www/pkg/worker/outbox-worker.js'), 'bash scripts/dev build'],
    [join(ROOT, 'www/static/index.html'), '(the demo is missing from www/static)'],
    [CHROMIUM, 'apt-get install -y chromium (or bash scripts/dev setup)'],
  ];
  const missing = need.filter(([path]) => !existsSync(path));
  if (missing.length) {
    const lines = missing.map(([path, fix]) => `  ${path}\n    → ${fix}`);
    throw new Error(
      `end-to-end tests need built artifacts (\`bash scripts/dev test\` builds them first):\n${lines.join('\n')}`,
    );
  }
}

/**
 * Starts the reference server: `--port 0`, a fresh data dir, `--faults`. Resolves once it
 * prints `listening on http://…`.
 */
export async function startServer({
  faults = true,
  pkgDir = join(ROOT, 'www/pkg'),
  staticDir = join(ROOT, 'www/static'),
  startTimeoutMs = 15_000,
  args: extra = [],
} = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'outbox-e2e-data-'));
  const args = ['--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir,
    '--static', staticDir, '--pkg', pkgDir];
  if (faults) args.push('--faults');
  args.push(...extra);
  const proc = spawn(SERVER, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = [];
  const keep = (stream) => (chunk) => {
    for (const line of String(chunk).split('\n')) if (line) log.push(`[${stream}] ${line}`);
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  proc.stderr.on('data', keep('stderr'));
  const exited = new Promise((done) => proc.once('exit', (code, signal) => done({ code, signal })));
  killOnExit.add(proc);

  let url;
  try {
    url = await new Promise((ok, fail) => {
      let out = '';
      const timer = setTimeout(() => fail(new Error(`no "listening on" line in ${startTimeoutMs} ms`)), startTimeoutMs);
      proc.stdout.on('data', (chunk) => {
        keep('stdout')(chunk);
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
    await stopProcess(proc, exited);
    await removeDir(dataDir);
    throw new Error(`outbox-server did not start: ${error.message}\n${log.join('\n')}`);
  }

  const request = async (method, path, body, headers = {}) => {
    const res = await fetch(url + path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };

  return {
    url,
    dataDir,
    log: () => log.join('\n'),
    get: (path) => request('GET', path),
    post: (path, body, headers) => request('POST', path, body, headers),
    /** Sets fault switches (`POST /_test/faults`). */
    faults: (patch) => request('POST', '/_test/faults', patch),
    /** `GET /_test/stats`: requests and applications per idempotency key. */
    stats: () => request('GET', '/_test/stats'),
    /** `GET /_test/totals`: `{requests, applied}` so far, cheap enough to poll. */
    totals: () => request('GET', '/_test/totals'),
    async stop() {
      await stopProcess(proc, exited);
      killOnExit.delete(proc);
      if (!KEEP) await removeDir(dataDir);
    },
  };
}

/** Debian's Chromium on a fresh on-disk profile. `open(url)` opens a tab. */
export async function launchBrowser() {
  const profile = await mkdtemp(join(tmpdir(), 'outbox-e2e-profile-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1200, height: 800 },
    });
  } catch (error) {
    await removeDir(profile);
    throw error;
  }
  const messages = [];
  const watch = (page) => {
    const name = () => `tab ${context.pages().indexOf(page)}`;
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') messages.push(`[${name()} ${m.type()}] ${m.text()}`);
    });
    page.on('pageerror', (e) => messages.push(`[${name()} pageerror] ${e.message}`));
  };
  context.on('page', watch);
  context.pages().forEach(watch);

  return {
    context,
    profile,
    console: () => messages.join('\n'),
    /**
     * A new tab at `url`. The persistent context's own first, blank page is reused. The newest
     * tab is in front; `page.bringToFront()` before clicking in another, or Playwright's
     * actionability checks wait on the few animation frames a background tab gets.
     */
    async open(url) {
      const blank = context.pages().find((p) => p.url() === 'about:blank');
      const page = blank ?? (await context.newPage());
      await page.goto(url);
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      if (!KEEP) await removeDir(profile);
    },
  };
}

/**
 * Runs `fn({ server, browser })` with a fresh server and browser, tearing both down after it
 * whatever happens. A failure carries the server's log and the pages' console errors.
 * `staticDir` serves another app at `/` than the demo; `artifacts` are more `[path, command]`
 * pairs for checkArtifacts.
 */
export async function withDemo(t, fn, { faults = true, serverArgs = [], staticDir, artifacts = [] } = {}) {
  checkArtifacts(artifacts);
  const server = await startServer({ faults, args: serverArgs, ...(staticDir && { staticDir }) });
  let browser;
  try {
    browser = await launchBrowser();
    await fn({ server, browser });
  } catch (error) {
    const extra = [
      browser && `--- browser console (errors, warnings):\n${browser.console() || '(none)'}`,
      `--- server log (last lines):\n${server.log().split('\n').slice(-40).join('\n')}`,
    ].filter(Boolean);
    if (error instanceof Error) error.message += `\n${extra.join('\n')}`;
    throw error;
  } finally {
    await browser?.close();
    await server.stop();
    if (KEEP) t.diagnostic?.(`kept: ${server.dataDir} ${browser?.profile ?? ''}`);
  }
}

/** Waits until the demo tab is ready (its form enabled), or fails with the problem it shows. */
export async function demoReady(page, timeout = 15_000) {
  const input = page.getByRole('textbox', { name: 'New todo' });
  const problem = page.getByRole('alert');
  const which = await Promise.race([
    input.and(page.locator(':enabled')).waitFor({ timeout }).then(() => 'ready'),
    problem.waitFor({ timeout }).then(() => 'problem'),
  ]);
  if (which === 'problem') throw new Error(`the demo shows a problem: ${await problem.textContent()}`);
}

/** Polls `fn` until it returns something truthy (and returns it), or fails after `timeout` ms. */
export async function eventually(fn, { timeout = 10_000, interval = 50, what = 'condition' } = {}) {
  const start = Date.now();
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() - start > timeout) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

// ---- cleanup -------------------------------------------------------------------------------

// Servers still running when node exits (a crash, an interrupted run) are killed with it.
const killOnExit = new Set();
process.once('exit', () => {
  for (const proc of killOnExit) proc.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

async function stopProcess(proc, exited) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

const removeDir = (dir) => rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
