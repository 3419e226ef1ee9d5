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

describe('what a bundle carries into every cold start', () => {
  it.each(['keys', 'saga', 'intake'])('the %s bundle holds zod without its locales (it is imported as a namespace)', async (name) => {
    // Prepare: `import { z } from 'zod'` makes esbuild keep zod's whole namespace, with ~50
    // locales and the JSON Schema import (~350 KiB parsed at every cold start);
    // `import * as z from 'zod'` lets it keep what the code uses.
    const result = await build({
      entryPoints: [join(import.meta.dirname, '..', '..', 'lambdas', name, 'handler.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      mainFields: ['module', 'main'],
      write: false,
      outfile: join(out, `${name}-meta.mjs`),
      metafile: true,
      logLevel: 'silent',
      external: ['@cedar-policy/cedar-wasm'],
    });
    // Act: the modules with code in the output (inputs lists the tree-shaken ones too).
    const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint)!;
    const inputs = Object.entries(output.inputs)
      .filter(([path, use]) => path.includes('node_modules/zod/') && use.bytesInOutput > 0)
      .map(([path]) => path);
    // Assess: zod is there, its English messages only.
    expect(inputs.length).toBeGreaterThan(0);
    expect(inputs.filter((path) => /\/locales\/(?!en\.js$|index\.js$)/.test(path))).toEqual([]);
    expect(inputs.filter((path) => path.includes('from-json-schema'))).toEqual([]);
  }, 60_000);
});
