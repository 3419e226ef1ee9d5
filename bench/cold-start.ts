/**
 * Cold start of every function as deployed (`npm run bench:cold-start`). Not a test. Each
 * handler is bundled the way lib/constructs/airlock-function.ts has NodejsFunction bundle it
 * (ESM, minified, names kept, source maps without the sources' text, the SDK inside, Cedar's
 * wasm beside), then
 * imported by a fresh Node process, as Lambda's init phase does, five times each: with
 * `--enable-source-maps` (the stack sets it) and without. Prints bundle sizes and the median
 * init time next to the floor: a fresh process importing nothing.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';

const ROOT = join(import.meta.dirname, '..');
const OUT = join(ROOT, '.bench', 'cold-start');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FUNCTIONS: { name: string; entry: string; cedar: boolean }[] = [
  { name: 'intake', entry: 'lambdas/intake/handler.ts', cedar: true },
  { name: 'saga', entry: 'lambdas/saga/handler.ts', cedar: true },
  { name: 'approvals', entry: 'lambdas/approvals/handler.ts', cedar: true },
  { name: 'steps', entry: 'lambdas/steps/handler.ts', cedar: false },
  { name: 'receipts', entry: 'lambdas/receipts/handler.ts', cedar: false },
  { name: 'keys', entry: 'lambdas/keys/handler.ts', cedar: false },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Milliseconds from process start until the module (if any) is imported, in a fresh process. */
function initMs(file: string | undefined, sourceMaps: boolean): number {
  const script = file
    ? `await import(${JSON.stringify(file)}); console.log(JSON.stringify({ total: performance.now() }));`
    : `console.log(JSON.stringify({ total: performance.now() }));`;
  const run = spawnSync(process.execPath, [...(sourceMaps ? ['--enable-source-maps'] : []), '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, AWS_REGION: 'us-east-1', NODE_OPTIONS: '' },
  });
  if (run.status !== 0) throw new Error(`init of ${file ?? 'nothing'} failed: ${run.stderr.slice(0, 500)}`);
  return (JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { total: number }).total;
}

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const floor = median(Array.from({ length: RUNS }, () => initMs(undefined, false)));
console.log(`cold start, fresh Node ${process.version} process per run, median of ${RUNS}`);
console.log(`floor: a process importing nothing ${floor.toFixed(1)} ms`);
for (const fn of FUNCTIONS) {
  const outfile = join(OUT, `${fn.name}.mjs`);
  await build({
    entryPoints: [join(ROOT, fn.entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    mainFields: ['module', 'main'],
    minify: true,
    keepNames: true,
    sourcemap: true,
    sourcesContent: false,
    outfile,
    logLevel: 'silent',
    external: fn.cedar ? ['@cedar-policy/cedar-wasm'] : [],
    banner: { js: "import { createRequire as __airlockCreateRequire } from 'node:module'; const require = __airlockCreateRequire(import.meta.url);" },
  });
  const bytes = statSync(outfile).size;
  const mapBytes = statSync(`${outfile}.map`).size;
  const gz = gzipSync(readFileSync(outfile)).byteLength;
  const withMaps = median(Array.from({ length: RUNS }, () => initMs(outfile, true)));
  const without = median(Array.from({ length: RUNS }, () => initMs(outfile, false)));
  console.log(
    `${fn.name.padEnd(10)} ${(bytes / 1024).toFixed(0).padStart(6)} KiB (${(gz / 1024).toFixed(0)} KiB gz, map ${(mapBytes / 1024).toFixed(0)} KiB)  init ${withMaps.toFixed(1)} ms with source maps, ${without.toFixed(1)} ms without  (×${(withMaps / floor).toFixed(1)} / ×${(without / floor).toFixed(1)} the floor)`,
  );
}
