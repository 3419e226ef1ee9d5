/**
 * Cold start of every function as deployed (`npm run bench:cold-start`). Not a test. Each
 * handler is bundled by lib/constructs/function-bundle.ts, as the stack bundles it (ESM split
 * into chunks, built-ins required, minified, names kept, source maps without the sources'
 * text, the SDK inside; the limits file beside it, and for the functions that evaluate policy
 * Cedar's wasm and the policy set compiled), then, in a fresh Node process per run, as Lambda does:
 *
 * - init: the bundle imported (Lambda's init phase), wall and CPU milliseconds since the
 *   process started, as deployed (no NODE_OPTIONS) and with `--enable-source-maps` (what the
 *   stack used to set: Node then parses the map at load);
 * - first request: one representative event handed to the handler. The composition is built
 *   on it (environment read, limits file, Cedar and the policy set where the function has
 *   them, SDK clients), and its first AWS call goes to a stub on loopback that answers every
 *   call "ResourceNotFoundException", so the request ends on its error path after one real
 *   HTTP round trip; tracing runs as in Lambda (a trace header, the daemon address);
 * - warm request: the same event again, in the same process: first − warm is what the first
 *   request pays once (composition, lazily loaded modules, the SDK's first call).
 *
 * Prints bundle sizes, medians, the floor (a fresh process importing nothing) and the ratio
 * of init to it. BENCH_BASELINE=<dir> (a copy of .bench/cold-start from another commit) then
 * runs those bundles interleaved with these, so a before/after meets the same machine load.
 * No AWS account or credentials: the stub's fake keys only.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { COMPILED_POLICY_SET_FILE } from '../lambdas/policy/index';
import { BUNDLE_ENTRY_FILE, bundleFunction } from '../lib/constructs/function-bundle';

const ROOT = join(import.meta.dirname, '..');
const OUT = join(ROOT, '.bench', 'cold-start');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ACTION = 'act_01J0000000000000000000BENC';

/** A token API Gateway's authorizer has verified: its claims, and the header they came from. */
function verifiedToken(): { claims: Record<string, unknown>; authorization: string } {
  const payload = { sub: 'bench-user', iss: 'https://issuer.invalid', aud: 'airlock', iat: 1_700_000_000, exp: 4_000_000_000, roles: ['requester', 'approver'] };
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  // API Gateway hands arrays to the function as strings ("[a b]").
  const claims = { ...payload, roles: `[${payload.roles.join(' ')}]` };
  return { claims, authorization: `Bearer ${part({ alg: 'RS256', typ: 'JWT' })}.${part(payload)}.${Buffer.from('sig').toString('base64url')}` };
}

/** An HTTP API (payload 2.0) event for `routeKey` from a verified caller. */
function httpEvent(routeKey: string, path: string): object {
  const token = verifiedToken();
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: '',
    headers: { authorization: token.authorization },
    requestContext: { requestId: 'bench-request', http: { method: routeKey.split(' ')[0], path }, authorizer: { jwt: { claims: token.claims, scopes: [] } } },
    isBase64Encoded: false,
  };
}

interface Fn {
  name: string;
  entry: string;
  cedar: boolean;
  /** The function's environment as the stack sets it (names and ARNs are made up). */
  env: Record<string, string>;
  /** A representative first request. */
  event: object;
}

const ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:bench';
const FN_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:bench';
const FUNCTIONS: Fn[] = [
  {
    name: 'intake',
    entry: 'lambdas/intake/handler.ts',
    cedar: true,
    env: { STATE_MACHINE_ARN: ARN, JWT_ISSUER: 'https://issuer.invalid', JWT_AUDIENCE: '["airlock"]', CURSOR_KEY_SECRET: 'bench-cursor', AUDIT_BUCKET: 'bench-audit', AUDIT_RETENTION_DAYS: '30', READ_FUNCTION_ARN: FN_ARN },
    event: httpEvent('GET /v1/actions/{id}', `/v1/actions/${ACTION}`),
  },
  {
    name: 'saga',
    entry: 'lambdas/saga/handler.ts',
    cedar: true,
    env: { CONNECTOR_FUNCTIONS: JSON.stringify({ echo: FN_ARN }), GRANT_SIGNING_KEY_SECRET: 'bench-grant', RECEIPTS_FUNCTION_ARN: FN_ARN },
    event: { task: 'EvaluatePolicy', actionId: ACTION },
  },
  {
    name: 'approvals',
    entry: 'lambdas/approvals/handler.ts',
    cedar: true,
    env: { CURSOR_KEY_SECRET: 'bench-cursor', APPROVAL_EVENT_BUS: 'bench-bus' },
    event: httpEvent('GET /v1/approvals', '/v1/approvals'),
  },
  {
    name: 'steps',
    entry: 'lambdas/steps/handler.ts',
    cedar: false,
    env: { CONNECTOR_NAME: 'echo', GRANT_SIGNING_KEY_SECRET: 'bench-grant', VENDOR_CREDENTIAL_SECRET: 'bench-vendor' },
    event: { task: 'RunStep', kind: 'forward', actionId: ACTION, stepId: 's1', tool: 'echo.say', input: { text: 'hi' }, planHash: '0'.repeat(64), dryRun: false, grant: 'eyJhbGciOiJIUzI1NiJ9.e30.c2ln' },
  },
  { name: 'receipts', entry: 'lambdas/receipts/handler.ts', cedar: false, env: { AUDIT_BUCKET: 'bench-audit', AUDIT_RETENTION_DAYS: '30', GRANT_SIGNING_KEY_SECRET: 'bench-grant' }, event: { task: 'WriteReceipt', actionId: ACTION } },
  { name: 'reconcile', entry: 'lambdas/reconcile/handler.ts', cedar: false, env: { AUDIT_BUCKET: 'bench-audit', AUDIT_RETENTION_DAYS: '30', VENDOR_BASE_URLS: '{}' }, event: { task: 'Reconcile' } },
  { name: 'gauge', entry: 'lambdas/observability/handler.ts', cedar: false, env: {}, event: { task: 'MeasurePendingApprovals' } },
  {
    name: 'keys',
    entry: 'lambdas/keys/handler.ts',
    cedar: false,
    env: {},
    event: { SecretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:bench', ClientRequestToken: '00000000-0000-0000-0000-000000000000', Step: 'createSecret' },
  },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Every AWS call fails fast, as a missing resource: the request ends after one round trip. */
async function startAwsStub(): Promise<{ url: string; close: () => Promise<void>; calls: () => number }> {
  let calls = 0;
  const server = createServer((req, res) => {
    calls++;
    req.resume();
    req.on('end', () => {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': 'ResourceNotFoundException', 'x-amzn-requestid': 'bench' });
      res.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: 'cold-start bench: no AWS here' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, calls: () => calls, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** The bundle and what the stack ships beside it, built as the stack builds it (lib/constructs/function-bundle.ts). */
async function bundle(fn: Fn): Promise<string> {
  const dir = join(OUT, fn.name);
  await bundleFunction({ entry: fn.entry, outdir: dir, cedar: fn.cedar });
  // BENCH_NO_COMPILED=1 measures a cold start without the policy set compiled at synth.
  if (process.env.BENCH_NO_COMPILED && fn.cedar) rmSync(join(dir, 'policies', COMPILED_POLICY_SET_FILE));
  return join(dir, BUNDLE_ENTRY_FILE);
}

/**
 * Bytes an import of `entry` loads: the file and the chunks it imports statically (a chunk
 * reached through `import()` loads on first use, if ever).
 */
function loadedAtImport(entry: string): number {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:^|[;}\n])\s*import\s*[^;()]*?from\s*["'](\.[^"']+)["']/g)) visit(join(file, '..', m[1]!));
  };
  visit(entry);
  return [...seen].reduce((sum, file) => sum + statSync(file).size, 0);
}

/** Bytes of the JavaScript files under `dir` (chunks included), and of their maps. */
function sizes(dir: string): { js: number; maps: number } {
  const out = { js: 0, maps: 0 };
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    if (entry.name.endsWith('.mjs')) out.js += statSync(file).size;
    else if (entry.name.endsWith('.mjs.map')) out.maps += statSync(file).size;
  }
  return out;
}

interface Run {
  init: number;
  initCpu: number;
  first?: number;
  firstCpu?: number;
  warm?: number;
  warmCpu?: number;
}

/** One fresh process: import `file` (if any), then optionally serve the event twice. */
function runOnce(file: string | undefined, options: { sourceMaps?: boolean; fn?: Fn; stub?: string }): Promise<Run> {
  const serve = options.fn !== undefined;
  const script = [
    file ? `const m = await import(${JSON.stringify(pathToFileURL(file).href)});` : '',
    'const init = performance.now(); const c = process.cpuUsage(); const out = { init, initCpu: (c.user + c.system) / 1000 };',
    ...(serve
      ? [
          `const event = ${JSON.stringify(options.fn!.event)};`,
          `const context = (id) => ({ awsRequestId: id, functionName: 'bench', functionVersion: '$LATEST', invokedFunctionArn: ${JSON.stringify(FN_ARN)}, memoryLimitInMB: '768', logGroupName: 'bench', logStreamName: 'bench', callbackWaitsForEmptyEventLoop: true, getRemainingTimeInMillis: () => 10000 });`,
          `const invoke = async (id) => {
            const t = performance.now(); const c0 = process.cpuUsage(); let r;
            try { r = await m.handler(structuredClone(event), context(id)); } catch (e) { r = String(e); }
            const c = process.cpuUsage(c0); const ms = performance.now() - t;
            if (process.env.BENCH_DEBUG) console.error(id, ms.toFixed(0), 'ms, cpu', ((c.user + c.system) / 1000).toFixed(0), JSON.stringify(r).slice(0, 200));
            return { ms, cpu: (c.user + c.system) / 1000 };
          };`,
          "const first = await invoke('bench-1'); const warm = await invoke('bench-2');",
          'Object.assign(out, { first: first.ms, firstCpu: first.cpu, warm: warm.ms, warmCpu: warm.cpu });',
        ]
      : []),
    "process.stdout.write('\\n@@bench ' + JSON.stringify(out) + '\\n');",
  ].join('\n');
  const dir = file ? join(file, '..') : OUT;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    ...(process.env.BENCH_DEBUG ? { BENCH_DEBUG: '1' } : {}),
    AWS_REGION: 'us-east-1',
    ...(serve
      ? {
          ...options.fn!.env,
          LEDGER_TABLE: 'bench-ledger',
          AIRLOCK_LIMITS_FILE: join(dir, 'policies', 'limits.json'),
          ...(options.fn!.cedar ? { AIRLOCK_POLICY_DIR: join(dir, 'policies') } : {}),
          AWS_ENDPOINT_URL: options.stub!,
          AWS_ACCESS_KEY_ID: 'bench',
          AWS_SECRET_ACCESS_KEY: 'bench',
          AWS_MAX_ATTEMPTS: '1',
          // Lambda's environment for Powertools and the X-Ray SDK: tracing on, as deployed.
          AWS_LAMBDA_FUNCTION_NAME: `airlock-${options.fn!.name}`,
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '768',
          LAMBDA_TASK_ROOT: dir,
          _X_AMZN_TRACE_ID: 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1',
          AWS_XRAY_DAEMON_ADDRESS: '127.0.0.1:2000',
          AWS_XRAY_CONTEXT_MISSING: 'IGNORE_ERROR',
          POWERTOOLS_LOG_LEVEL: 'SILENT',
        }
      : {}),
  };
  return new Promise((resolve, reject) => {
    const profile = process.env.BENCH_PROFILE && serve ? ['--cpu-prof', '--cpu-prof-interval', '200', '--cpu-prof-dir', join(OUT, 'profiles', options.fn!.name)] : [];
    const child = spawn(process.execPath, [...profile, ...(options.sourceMaps ? ['--enable-source-maps'] : []), '--input-type=module', '-e', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('@@bench '));
      if (process.env.BENCH_DEBUG) console.error(stderr.slice(0, 2000));
      if (code !== 0 || !line) reject(new Error(`run of ${file ?? 'nothing'} failed (${code}): ${stderr.slice(0, 800)}`));
      else resolve(JSON.parse(line.slice('@@bench '.length)) as Run);
    });
  });
}

async function runs(n: number, once: () => Promise<Run>): Promise<Run[]> {
  const out: Run[] = [];
  for (let i = 0; i < n; i++) out.push(await once());
  return out;
}

const ms = (v: number) => v.toFixed(0).padStart(5);

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const stub = await startAwsStub();
try {
  const floorRuns = await runs(RUNS, () => runOnce(undefined, {}));
  const floor = median(floorRuns.map((r) => r.init));
  const floorCpu = median(floorRuns.map((r) => r.initCpu));
  console.log(`cold start, fresh Node ${process.version} process per run, median of ${RUNS}, milliseconds since the process started`);
  console.log(`floor: a process importing nothing ${floor.toFixed(1)} ms (CPU ${floorCpu.toFixed(1)} ms)`);
  console.log(`function   KiB at import (index.mjs, gzip, all, maps) init   CPU  CPU−floor ×floor  +maps   first  warm  init+first−warm (CPU, −floor)`);
  // BENCH_ONLY=intake,keys: only those functions (profiling one with BENCH_PROFILE=1).
  const only = process.env.BENCH_ONLY?.split(',');
  for (const fn of FUNCTIONS.filter((f) => !only || only.includes(f.name))) {
    const file = await bundle(fn);
    const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)}`;
    const all = sizes(join(file, '..'));
    const size = `${kib(loadedAtImport(file)).padStart(5)} (${kib(statSync(file).size)}, ${kib(gzipSync(readFileSync(file)).byteLength)}, ${kib(all.js)}, ${kib(all.maps)})`;
    // BENCH_SERVED_WITH_MAPS=1: serve with --enable-source-maps (the stack's setting before maps were read on error).
    const served = await runs(RUNS, () => runOnce(file, { fn, stub: stub.url, sourceMaps: process.env.BENCH_SERVED_WITH_MAPS === '1' }));
    const withMaps = await runs(RUNS, () => runOnce(file, { sourceMaps: true }));
    const init = median(served.map((r) => r.init));
    const initCpu = median(served.map((r) => r.initCpu));
    const first = median(served.map((r) => r.first!));
    const warm = median(served.map((r) => r.warm!));
    // Composition included: what the first request pays once, beyond a warm one.
    const coldCpu = median(served.map((r) => r.initCpu + r.firstCpu! - r.warmCpu!));
    console.log(
      `${fn.name.padEnd(10)} ${size.padEnd(34)} ${ms(init)} ${ms(initCpu)}    ${ms(initCpu - floorCpu)}   ×${(initCpu / floorCpu).toFixed(1).padEnd(4)} ${ms(median(withMaps.map((r) => r.init)))}   ${ms(first)} ${ms(warm)}  ${ms(init + first - warm)} (${ms(coldCpu)}, ${ms(coldCpu - floorCpu)})`,
    );
  }
  // BENCH_BASELINE=<dir>: bundles built earlier (a copy of .bench/cold-start from another
  // commit) run interleaved with these, baseline then current, so both meet the same load.
  const baseline = process.env.BENCH_BASELINE;
  if (baseline) {
    console.log(`\nagainst ${baseline}, interleaved (baseline, current) ×${RUNS}, CPU ms (×floor): init, init+first−warm`);
    for (const fn of FUNCTIONS.filter((f) => (!only || only.includes(f.name)) && existsSync(join(baseline, f.name, BUNDLE_ENTRY_FILE)))) {
      const pair = [join(baseline, fn.name, BUNDLE_ENTRY_FILE), join(OUT, fn.name, BUNDLE_ENTRY_FILE)] as const;
      const before: Run[] = [];
      const after: Run[] = [];
      const floors: Run[] = [];
      for (let i = 0; i < RUNS; i++) {
        floors.push(await runOnce(undefined, {}));
        before.push(await runOnce(pair[0], { fn, stub: stub.url }));
        after.push(await runOnce(pair[1], { fn, stub: stub.url }));
      }
      const f = median(floors.map((r) => r.initCpu));
      const init = (rs: Run[]) => median(rs.map((r) => r.initCpu));
      const cold = (rs: Run[]) => median(rs.map((r) => r.initCpu + r.firstCpu! - r.warmCpu!));
      const both = (v: (rs: Run[]) => number) => `${ms(v(before))} → ${ms(v(after))} (×${(v(before) / f).toFixed(1)} → ×${(v(after) / f).toFixed(1)})`;
      const kib = (file: string) => (loadedAtImport(file) / 1024).toFixed(0);
      console.log(`${fn.name.padEnd(10)} KiB ${kib(pair[0])} → ${kib(pair[1])}  init ${both(init)}  init+first−warm ${both(cold)}  floor ${f.toFixed(0)}`);
    }
  }
  console.log(`KiB at import: index.mjs and the chunks it imports statically, what V8 compiles at init (index.mjs alone, gzipped; every chunk, loaded or not; all maps).`);
  console.log(`init: the bundle imported, as deployed (no --enable-source-maps), wall and CPU ms; ×floor: its CPU over the floor's; +maps: wall with --enable-source-maps.`);
  console.log(`first/warm: the first and second invocation in that process (composition built on the first; every AWS call answered by a stub, ${stub.calls()} calls).`);
} finally {
  await stub.close();
}
