import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FileSecrets } from '../../lambdas/adapters/local/file-secrets';
import { SANDBOX_VENDORS_FILE } from '../../local/control-plane';
import { loadOrCreateIssuer } from '../../local/dev-issuer';
import { SecretNames } from '../../lambdas/ports/secrets';
import { travelPlan } from '../helpers/control-plane';
import { deleteTestTable, testDynamoEndpoint, uniqueTableName } from '../helpers/dynamo';

/**
 * `npm start` killed with SIGKILL while sagas are mid-flight, then started again on the same
 * AIRLOCK_HOME: every action ends completed or compensated, none failed because a vendor
 * forgot what it did, and the vendors' side-effect counters show no duplicate and no orphan.
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(repo, 'bin', 'airlock.mjs');

let home: string;
const children: ChildProcess[] = [];
/** With an external DynamoDB the ledger outlives the process too; give it a table of its own. */
const tableName = testDynamoEndpoint() ? uniqueTableName() : undefined;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'airlock-crash-'));
});
afterAll(async () => {
  // No child outlives the test, whatever happened in it.
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  }
  if (tableName) await deleteTestTable(tableName);
  await rm(home, { recursive: true, force: true });
});

interface Dev {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

/** `airlock dev` (what `npm start` runs) on a free port, resolved once its banner is out. */
async function startDev(): Promise<Dev> {
  const child = spawn(process.execPath, [cli, 'dev'], {
    cwd: repo,
    env: { ...process.env, AIRLOCK_HOME: home, AIRLOCK_PORT: '0', LOG_LEVEL: 'warn', ...(tableName ? { AIRLOCK_DYNAMODB_TABLE: tableName } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`airlock dev printed no banner in 60 s: ${err}`)), 60_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m?.[1] && out.includes('Ctrl-C')) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`airlock dev exited ${code}: ${err}`));
    });
  });
  return { child, url, exited };
}

const VendorsFile = z.object({ baseUrls: z.record(z.string(), z.string()), adminTokens: z.record(z.string(), z.string()) });
const Stats = z.object({ sideEffects: z.record(z.string(), z.number()), requests: z.record(z.string(), z.number()) });
const StepView = z.object({
  id: z.string(),
  status: z.string(),
  error: z.object({ name: z.string(), message: z.string() }).optional(),
  compensation: z.object({ status: z.string() }).optional(),
}).passthrough();
const ActionView = z.object({ id: z.string(), status: z.string(), steps: z.array(StepView) }).passthrough();
type ActionView = z.infer<typeof ActionView>;

async function vendors() {
  return VendorsFile.parse(JSON.parse(await readFile(join(home, SANDBOX_VENDORS_FILE), 'utf8')));
}

async function setFaults(vendor: string, faults: unknown): Promise<void> {
  const v = await vendors();
  const res = await fetch(`${v.baseUrls[vendor]}/_admin/faults`, {
    method: 'POST',
    headers: { 'x-admin-token': v.adminTokens[vendor]!, 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  expect(res.status).toBe(200);
}

async function sideEffects(vendor: string): Promise<Record<string, number>> {
  const v = await vendors();
  const res = await fetch(`${v.baseUrls[vendor]}/_admin/stats`, { headers: { 'x-admin-token': v.adminTokens[vendor]! } });
  return Stats.parse(await res.json()).sideEffects;
}

/** A vendor's own listing, read with the connector's credential from the state dir. */
async function vendorList(vendor: string, path: string): Promise<Array<Record<string, unknown>>> {
  const v = await vendors();
  const key = await new FileSecrets(join(home, 'secrets')).getSecret(SecretNames.vendorCredential(vendor));
  const res = await fetch(`${v.baseUrls[vendor]}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return z.object({ data: z.array(z.record(z.string(), z.unknown())) }).parse(await res.json()).data;
}

async function getAction(dev: Dev, token: string, id: string): Promise<ActionView> {
  const res = await fetch(`${dev.url}/v1/actions/${id}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return ActionView.parse(await res.json());
}

/** A date the sandbox flies on: weeks ahead of today's clock, never a literal. */
function flightDate(daysAhead: number): string {
  return new Date(Date.now() + daysAhead * 86_400_000).toISOString().slice(0, 10);
}

/** The travel plan, paid with a card the payments sandbox declines: it must be compensated. */
function declinedPlan(date: string) {
  const plan = travelPlan({ date });
  return { ...plan, plan: plan.plan.map((s) => (s.id === 'pay' ? { ...s, arguments: { ...s.arguments, paymentMethod: 'pm_card_declined' } } : s)) };
}

const TERMINAL = new Set(['completed', 'compensated', 'failed', 'denied', 'rejected', 'expired', 'cancelled']);

describe('SIGKILL of `npm start` mid-saga, then a restart on the same AIRLOCK_HOME', () => {
  it('ends every action completed or compensated, with no side effect lost, repeated or orphaned', async () => {
    // Prepare: slow vendors, so that several sagas are inside a vendor call when the process dies.
    const first = await startDev();
    const issuer = await loadOrCreateIssuer(home);
    const alice = await issuer.sign({ sub: 'alice', roles: ['Employee'], manager: 'bob', department: 'sales' }, '1h');
    await setFaults('travel', { latencyMs: 400 });
    await setFaults('payments', { latencyMs: 2_500 });
    const bodies = [
      travelPlan({ date: flightDate(20) }),
      travelPlan({ date: flightDate(21) }),
      declinedPlan(flightDate(22)),
      travelPlan({ date: flightDate(23) }),
    ];
    const ids: string[] = [];
    for (const [i, body] of bodies.entries()) {
      const res = await fetch(`${first.url}/v1/actions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json', 'idempotency-key': `crash-${i}`, prefer: 'respond-async' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(202);
      ids.push(z.object({ id: z.string() }).parse(await res.json()).id);
    }
    // Wait until a committed step is behind some saga and a vendor call is in flight.
    await expect
      .poll(
        async () => {
          const views = await Promise.all(ids.map((id) => getAction(first, alice, id)));
          const committed = views.some((a) => a.steps.some((s) => s.id === 'hold' && s.status === 'completed'));
          const inFlight = views.some((a) => a.steps.some((s) => s.status === 'running'));
          return committed && inFlight;
        },
        { timeout: 60_000, interval: 100 },
      )
      .toBe(true);

    // Act: kill it where it stands, and start again on the same state.
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    const second = await startDev();
    let finalViews: ActionView[] = [];
    await expect
      .poll(
        async () => {
          finalViews = await Promise.all(ids.map((id) => getAction(second, alice, id)));
          return finalViews.every((a) => TERMINAL.has(a.status));
        },
        { timeout: 90_000, interval: 250 },
      )
      .toBe(true);

    // Assess: outcomes.
    expect(finalViews.map((a) => a.status)).toEqual(['completed', 'completed', 'compensated', 'completed']);
    for (const a of finalViews) {
      for (const s of a.steps) {
        // A vendor that forgot its holds or payments answers *_not_found to a resumed step or a compensation.
        expect(s.error?.message ?? '').not.toMatch(/not_found|404/);
        if (s.compensation) expect(s.compensation.status).toBe('completed');
      }
    }
    const compensated = finalViews[2]!;
    expect(compensated.steps.find((s) => s.id === 'pay')?.error?.message).toMatch(/card_declined/);
    expect(compensated.steps.find((s) => s.id === 'hold')?.compensation?.status).toBe('completed');

    // Assess: side effects, counted across both processes (the counters are durable too).
    expect(await sideEffects('travel')).toEqual({ hold_seat: 4, book_flight: 3, release_hold: 1 });
    expect(await sideEffects('payments')).toEqual({ authorize: 3 });
    const holds = await vendorList('travel', '/v1/holds');
    expect(holds).toHaveLength(4);
    expect(holds.filter((h) => h.status === 'booked')).toHaveLength(3);
    expect(holds.filter((h) => h.status === 'released')).toHaveLength(1);
    const bookings = await vendorList('travel', '/v1/bookings');
    expect(bookings.map((b) => b.status)).toEqual(['confirmed', 'confirmed', 'confirmed']);
    const authorizations = await vendorList('payments', '/v1/authorizations');
    expect(authorizations.map((p) => p.status)).toEqual(['authorized', 'authorized', 'authorized']);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 240_000);
});
