#!/usr/bin/env node
// `npm run test:mcp-conformance`: the official MCP conformance suite (pinned in package.json)
// against `npm start`. Starts the local runtime on a free loopback port with a fresh state
// directory, mints a dev-issuer token, and runs the suite's server scenarios for each protocol
// revision Airlock serves, with the committed baseline (test/mcp/conformance-baseline.yml) of
// scenarios that need fixtures Airlock does not have. Stops everything it started on every
// exit path.
//
// The suite's server command takes no headers, and /mcp requires a verified token like every
// other route: a loopback proxy adds `Authorization: Bearer <token>` and forwards everything
// else untouched (Host and Origin included, so the DNS-rebinding scenario still tests the
// runtime's own checks).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const REVISIONS = (process.env.MCP_CONFORMANCE_REVISIONS ?? '2026-07-28,2025-11-25').split(',');
const BASELINE = join(repo, 'test/mcp/conformance-baseline.yml');
const READY_TIMEOUT_MS = 120_000;

function log(message) {
  process.stderr.write(`mcp-conformance: ${message}\n`);
}

/** A free loopback port (bound, then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`the runtime did not answer ${url} within ${READY_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function run(cmd, args, env) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: repo, env, stdio: 'inherit' });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const home = mkdtempSync(join(tmpdir(), 'airlock-mcp-conformance-'));
const env = { ...process.env, AIRLOCK_HOME: home };
let runtime;
let proxy;

async function main() {
  const runtimePort = await freePort();
  runtime = spawn(process.execPath, ['bin/airlock.mjs', 'dev'], {
    cwd: repo,
    // The suite's test_* fixture tools (lambdas/mcp/conformance-fixtures.ts): this run only, never `npm start`.
    env: { ...env, AIRLOCK_PORT: String(runtimePort), AIRLOCK_MCP_CONFORMANCE_FIXTURES: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitReady(`http://127.0.0.1:${runtimePort}/healthz`);
  const token = execFileSync(process.execPath, ['bin/airlock.mjs', 'token', 'conformance', '--role', 'Employee', '--manager', 'bob', '--ttl', '1h'], {
    cwd: repo,
    env,
    encoding: 'utf8',
  }).trim();

  proxy = createServer((req, res) => {
    const upstream = request(
      { host: '127.0.0.1', port: runtimePort, method: req.method, path: req.url, headers: { ...req.headers, authorization: `Bearer ${token}` } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${proxy.address().port}/mcp`;

  const bin = join(repo, 'node_modules/.bin/conformance');
  // Extra arguments run one ad-hoc invocation instead (`-- --scenario caching --spec-version 2026-07-28 --force`).
  const extra = process.argv.slice(2);
  if (extra.length > 0) return run(bin, ['server', '--url', url, ...extra], env);
  let failed = 0;
  for (const revision of REVISIONS) {
    log(`revision ${revision} against ${url}`);
    const code = await run(bin, ['server', '--url', url, '--requirements', revision, '--expected-failures', BASELINE], env);
    if (code !== 0) failed++;
  }
  return failed === 0 ? 0 : 1;
}

// Ctrl-C or a CI timeout: stop the runtime too, never leave it behind.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    proxy?.close();
    runtime?.kill('SIGTERM');
    rmSync(home, { recursive: true, force: true });
    process.exit(1);
  });
}

let code = 1;
try {
  code = await main();
} catch (error) {
  log(error instanceof Error ? error.message : String(error));
} finally {
  proxy?.close();
  if (runtime && runtime.exitCode === null) {
    const exited = new Promise((r) => runtime.once('exit', r));
    runtime.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (runtime.exitCode === null) runtime.kill('SIGKILL');
  }
  rmSync(home, { recursive: true, force: true });
}
process.exit(code);
