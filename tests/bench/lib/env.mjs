// What the bench serves: a static folder (the bench pages, plus @tanstack/offline-transactions
// bundled for the browser), which the harness's reference server serves next to www/pkg.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const PAGES = join(HERE, '..', 'pages');
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
