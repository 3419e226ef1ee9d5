import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isoDay } from '../helpers/dates';
import { checkContractOf, forgetContractOrigin } from '../helpers/contract';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(repo, 'bin', 'airlock.mjs');

let stateDir: string;
const children: ChildProcess[] = [];
const servers: Server[] = [];

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'airlock-cli-'));
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  }
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  await rm(stateDir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function airlock(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd: repo,
    env: { ...process.env, AIRLOCK_HOME: stateDir, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function takenPort(): Promise<number> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('airlock dev', () => {
  it('exits 1 with a one-line error when the port is taken', async () => {
    // Prepare
    const port = await takenPort();
    // Act
    const run = airlock(['dev'], { AIRLOCK_PORT: String(port) });
    const code = await within(run.exited, 20_000, 'airlock dev');
    // Assess
    expect(code).toBe(1);
    expect(run.stderr()).toBe(`port ${port} is in use; set AIRLOCK_PORT\n`);
    expect(run.stdout()).toBe('');
    // Nothing was left behind: the port check comes before any state is touched.
    expect(existsSync(join(stateDir, 'runtime.lock'))).toBe(false);
  });

  it('exits 1 with a one-line error, touching no state, when AIRLOCK_DYNAMODB_ENDPOINT is not a URL', async () => {
    const run = airlock(['dev'], { AIRLOCK_PORT: '0', AIRLOCK_DYNAMODB_ENDPOINT: 'http://user:s3cr3t@127.0.0.1:8000' });
    expect(await within(run.exited, 20_000, 'airlock dev')).toBe(1);
    expect(run.stderr()).toBe('AIRLOCK_DYNAMODB_ENDPOINT must be an http(s) URL without user or password, such as http://127.0.0.1:8000\n');
    expect(existsSync(join(stateDir, 'runtime.lock'))).toBe(false);
  });

  it('starts, prints a banner, serves tokens from `airlock token`, and stops cleanly on SIGTERM', async () => {
    const started = new Date();
    const run = airlock(['dev'], { AIRLOCK_PORT: '0' });
    const url = await within(
      new Promise<string>((resolve, reject) => {
        run.child.stdout!.on('data', () => {
          const m = /API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(run.stdout());
          if (m?.[1] && run.stdout().includes('Ctrl-C')) resolve(m[1]);
        });
        void run.exited.then((code) => reject(new Error(`dev exited ${code}: ${run.stderr()}`)));
      }),
      30_000,
      'startup banner',
    );
    expect(run.stdout()).toContain('npx airlock token alice --role Employee');
    // Ready-made tokens for the demo people.
    for (const who of ['alice (employee', 'bob (her manager', 'carol (security admin', 'dave (security admin', 'audrey (auditor', 'olivia (on call']) {
      expect(run.stdout()).toContain(who);
    }
    expect(run.stdout()).toContain(`curl -s ${url}/healthz`);
    expect(run.stdout()).toContain(`web console          ${url}/console`);
    // requireDelegation is off for `npm start`, and the banner says how to turn it on.
    expect(run.stdout()).toMatch(/delegations\s+not required \(turn on: npm start -- --require-delegation, or AIRLOCK_REQUIRE_DELEGATION=1\)/);
    // The example search names the day 30 days ahead of the clock, never a fixed date.
    const searchDay = /"date":"(\d{4}-\d{2}-\d{2})"/.exec(run.stdout())?.[1];
    expect([isoDay(30, started), isoDay(30)]).toContain(searchDay);
    // `airlock dev` serves the published API: hold its answers to the contract too.
    checkContractOf(url);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    const tokenRun = airlock(['token', 'alice', '--role', 'employee', '--manager', 'bob', '--ttl', '5m']);
    expect(await within(tokenRun.exited, 20_000, 'airlock token')).toBe(0);
    const token = tokenRun.stdout().trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const tools = await fetch(`${url}/v1/tools`, { headers: { authorization: `Bearer ${token}` } });
    expect(tools.status).toBe(200);
    await tools.arrayBuffer();

    run.child.kill('SIGTERM');
    expect(await within(run.exited, 15_000, 'shutdown')).toBe(0);
    forgetContractOrigin(url);
    expect(run.stderr()).toBe('');
    expect(existsSync(join(stateDir, 'runtime.lock'))).toBe(false);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('rejects bad token arguments with a usage error and no stack', async () => {
    const run = airlock(['token', 'alice', '--role', 'has space']);
    expect(await within(run.exited, 20_000, 'airlock token')).toBe(2);
    expect(run.stderr()).toMatch(/^airlock token: roles\.0: /);
    expect(run.stderr()).not.toMatch(/\n\s+at /);
  });
});
