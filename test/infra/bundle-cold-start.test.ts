import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The functions that ship without Cedar's wasm (connectors: steps/, receipts) must still load:
 * bundled the way the stack bundles them, their module graph may not evaluate Cedar at import
 * (it reads its .wasm from beside the bundle, which only the Cedar functions have).
 */
const out = mkdtempSync(join(tmpdir(), 'airlock-bundle-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('cold start of functions without Cedar', () => {
  it.each(['steps', 'receipts'])('the %s bundle loads and exports its handler', async (name) => {
    // Prepare: an ESM bundle like NodejsFunction's (format esm, require banner).
    const outfile = join(out, `${name}.mjs`);
    await build({
      entryPoints: [join(import.meta.dirname, '..', '..', 'lambdas', name, 'handler.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      outfile,
      logLevel: 'silent',
      banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" },
    });
    // Act: import it as Lambda would at cold start (config is read later, on first use).
    const mod = (await import(pathToFileURL(outfile).href)) as { handler?: unknown };
    // Assess
    expect(typeof mod.handler).toBe('function');
  }, 60_000);
});
