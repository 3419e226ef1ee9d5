import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Stacks of a bundled function map to the TypeScript sources without `--enable-source-maps`,
 * and the map is read on the first formatted stack, not at import (cold start). Each case runs
 * in its own Node process: the hook replaces `Error.prepareStackTrace` process-wide.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'airlock-maps-'));
const bundle = join(dir, 'index.mjs');
const entry = join(dir, 'entry.ts');

beforeAll(async () => {
  // Prepare: a bundle built like the stack's (ESM, minified, map without the sources' text)
  // whose handler throws from a known line of its source.
  writeFileSync(
    entry,
    [
      `import { mapStacksOnDemand } from ${JSON.stringify(join(ROOT, 'lambdas', 'middleware', 'source-maps.ts'))};`,
      `export const installed = mapStacksOnDemand(import.meta.url);`,
      `export function handler(): never {`,
      `  throw new RangeError('boom from the source');`,
      `}`,
      '',
    ].join('\n'),
  );
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', minify: true, keepNames: true, sourcemap: true, sourcesContent: false, outfile: bundle, logLevel: 'silent' });
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Imports the bundle in a fresh process, runs `script` after it, and returns what it printed. */
function probe(script: string, nodeArgs: string[] = []): { installed: boolean; stack: string } {
  const source = [`const m = await import(${JSON.stringify(pathToFileURL(bundle).href)});`, script, `try { m.handler(); } catch (e) { console.log(JSON.stringify({ installed: m.installed, stack: e.stack })); }`].join('\n');
  const run = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', source], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { installed: boolean; stack: string };
}

describe('source maps on demand', () => {
  it('maps a bundled frame to its source file and line', () => {
    // Act
    const { installed, stack } = probe('');
    // Assess: the throwing line of entry.ts (line 4), not index.mjs:1.
    expect(installed).toBe(true);
    expect(stack.split('\n')[0]).toBe('RangeError: boom from the source');
    expect(stack).toMatch(/at handler \(.*entry\.ts:4:\d+\)/);
    expect(stack).not.toContain('index.mjs');
  });

  it('reads the map when a stack is first formatted, not when the bundle is imported', () => {
    // Act: the map is spoiled after the import; had it been read at import, frames would map.
    const { installed, stack } = probe(`(await import('node:fs')).writeFileSync(${JSON.stringify(`${bundle}.map`)}, 'not json');`);
    // Assess: the error still has its stack, at the bundle's positions.
    expect(installed).toBe(true);
    expect(stack.split('\n')[0]).toBe('RangeError: boom from the source');
    expect(stack).toMatch(/index\.mjs:\d+:\d+/);
    expect(stack).not.toContain('entry.ts');
  });

  it('leaves stacks to Node when it maps them itself (--enable-source-maps)', () => {
    // Prepare: a fresh map (the previous case spoiled it).
    return build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', minify: true, keepNames: true, sourcemap: true, sourcesContent: false, outfile: bundle, logLevel: 'silent' }).then(() => {
      // Act
      const { installed, stack } = probe('', ['--enable-source-maps']);
      // Assess
      expect(installed).toBe(false);
      expect(stack).toMatch(/entry\.ts:4:\d+/);
    });
  }, 60_000);

  it('does nothing for a module without a map beside it (tsx, tests, the local runtime)', async () => {
    // Act
    const { mapStacksOnDemand } = await import('../../lambdas/middleware/source-maps');
    const before = Error.prepareStackTrace;
    // Assess
    expect(mapStacksOnDemand(pathToFileURL(join(dir, 'no-such-bundle.mjs')).href)).toBe(false);
    expect(mapStacksOnDemand('node:internal')).toBe(false);
    expect(Error.prepareStackTrace).toBe(before);
  });
});

describe('source maps of a split bundle', () => {
  it('maps frames in the chunks beside index.mjs, whichever file installs the hook', async () => {
    // Prepare: a bundle split like the stack's (lib/constructs/function-bundle.ts): the hook is
    // installed from a chunk shared by two entries, and the error is thrown in a lazily loaded one.
    const split = join(dir, 'split');
    const source = (name: string, lines: string[]) => {
      writeFileSync(join(dir, name), lines.join('\n'));
      return join(dir, name);
    };
    source('install.ts', [`import { mapStacksOnDemand } from ${JSON.stringify(join(ROOT, 'lambdas', 'middleware', 'source-maps.ts'))};`, `export const installed = mapStacksOnDemand(import.meta.url);`, '']);
    source('thrower.ts', [`export function boom(): never {`, `  throw new TypeError('boom from a chunk');`, `}`, '']);
    const index = source('split-entry.ts', [`export { installed } from './install';`, `export const handler = async () => (await import('./thrower')).boom();`, '']);
    const other = source('other-entry.ts', [`export { installed } from './install';`, '']);
    await build({
      entryPoints: { index, other },
      bundle: true,
      platform: 'node',
      format: 'esm',
      splitting: true,
      outdir: split,
      outExtension: { '.js': '.mjs' },
      chunkNames: 'chunks/[name]-[hash]',
      minify: true,
      keepNames: true,
      sourcemap: true,
      sourcesContent: false,
      logLevel: 'silent',
    });
    const script = [
      `const m = await import(${JSON.stringify(pathToFileURL(join(split, 'index.mjs')).href)});`,
      `try { await m.handler(); } catch (e) { console.log(JSON.stringify({ installed: m.installed, stack: e.stack })); }`,
    ].join('\n');
    // Act
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    // Assess: the hook came from a chunk, the throwing frame is thrower.ts line 2, no bundle position left.
    expect(run.stderr).toBe('');
    const { installed, stack } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { installed: boolean; stack: string };
    expect(installed).toBe(true);
    expect(stack.split('\n')[0]).toBe('TypeError: boom from a chunk');
    expect(stack).toMatch(/at boom \(.*thrower\.ts:2:\d+\)/);
    expect(stack).not.toMatch(/\.mjs:\d+/);
  }, 60_000);
});

describe('the source map decoder', () => {
  it('finds the same origin as Node for any position of a real bundle', async () => {
    // Prepare: a function's bundle (thousands of segments over few, long lines).
    const { BundleMap } = await import('../../lambdas/middleware/source-maps');
    const { SourceMap } = await import('node:module');
    const fc = (await import('fast-check')).default;
    const file = join(dir, 'keys.mjs');
    await build({
      entryPoints: [join(ROOT, 'lambdas', 'keys', 'handler.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      minify: true,
      keepNames: true,
      sourcemap: true,
      sourcesContent: false,
      outfile: file,
      logLevel: 'silent',
    });
    const payload = JSON.parse(readFileSync(`${file}.map`, 'utf8')) as ConstructorParameters<typeof SourceMap>[0];
    const node = new SourceMap(payload);
    const ours = new BundleMap(`${file}.map`);
    const lines = readFileSync(file, 'utf8').split('\n');
    // Act + Assess
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: lines.length }).chain((line) => fc.tuple(fc.constant(line), fc.integer({ min: 1, max: Math.max(1, lines[line - 1]!.length) }))),
        ([line, column]) => {
          // findEntry (0-based), the segment's own position: what Node prints in a mapped stack.
          const expected = node.findEntry(line - 1, column - 1) as { generatedLine?: number; originalSource?: string; originalLine?: number; originalColumn?: number };
          const got = ours.origin(line, column);
          // Node answers a line without segments with the last segment of an earlier line
          // (columns come out negative); ours leaves such a frame unmapped.
          if (expected.originalSource === undefined || expected.generatedLine !== line - 1) return got === undefined;
          return (
            got !== undefined &&
            got.lineNumber === expected.originalLine! + 1 &&
            got.columnNumber === expected.originalColumn! + 1 &&
            got.fileName.endsWith(expected.originalSource.replace(/^(\.\.\/)+/, ''))
          );
        },
      ),
      { numRuns: 2_000 },
    );
  }, 60_000);

  it('reads the index built beside a map as the map itself, and ignores one that does not fit it', async () => {
    // Prepare: a function's bundle and the index the bundler writes beside its map.
    const { BundleMap, encodeMapIndex, MAP_INDEX_SUFFIX } = await import('../../lambdas/middleware/source-maps');
    const fc = (await import('fast-check')).default;
    const file = join(dir, 'indexed.mjs');
    await build({ entryPoints: [join(ROOT, 'lambdas', 'keys', 'handler.ts')], bundle: true, platform: 'node', format: 'esm', minify: true, keepNames: true, sourcemap: true, sourcesContent: false, outfile: file, logLevel: 'silent' });
    const mapFile = `${file}.map`;
    const mapText = readFileSync(mapFile, 'utf8');
    const decoded = new BundleMap(mapFile);
    // Maps positions from the map alone, read before any index exists.
    decoded.origin(1, 1);
    writeFileSync(mapFile + MAP_INDEX_SUFFIX, encodeMapIndex(mapText)!);
    const indexed = new BundleMap(mapFile);
    const lines = readFileSync(file, 'utf8').split('\n');
    // Act + Assess: every position maps alike.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: lines.length }).chain((line) => fc.tuple(fc.constant(line), fc.integer({ min: 1, max: Math.max(1, lines[line - 1]!.length) }))),
        ([line, column]) => {
          expect(indexed.origin(line, column)).toEqual(decoded.origin(line, column));
        },
      ),
      { numRuns: 2_000 },
    );
    // An index of another map (here: the map changed after it was built) is not used.
    const other = JSON.parse(mapText) as { sources: string[] };
    writeFileSync(mapFile + MAP_INDEX_SUFFIX, encodeMapIndex(JSON.stringify({ ...other, sources: other.sources.map((s) => `${s}.stale`) }))!);
    const stale = new BundleMap(mapFile);
    for (let column = 1; column < Math.min(lines[0]!.length, 5_000); column += 97) expect(stale.origin(1, column)).toEqual(decoded.origin(1, column));
  }, 60_000);
});
