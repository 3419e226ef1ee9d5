import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../local/control-plane';
import { silentLogger, type LocalRuntime, type LocalRuntimeOptions } from '../../local/server';
import { parseLimits, readLimitsFile, type LoadedLimits } from '../../lambdas/limits/config';
import { isoDay } from './dates';
import { runtimeTable } from './dynamo';
import { checkContractOf, forgetContractOrigin } from './contract';
import type { TestTokenOptions } from './local-runtime';

export interface TestControlPlane {
  url: string;
  stateDir: string;
  runtime: LocalRuntime;
  cp: ControlPlane;
  token(sub: string, options?: TestTokenOptions): Promise<string>;
  /** POST /v1/actions as `token`, returning status, headers and parsed body. */
  post(token: string, body: unknown, options?: { key?: string; prefer?: string }): Promise<{ status: number; headers: Headers; body: any }>;
  get(token: string, path: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

/**
 * The whole local control plane (API, saga runner, sandbox vendors, dynalite in memory unless
 * a state dir is given, or a table of its own on AIRLOCK_DYNAMODB_ENDPOINT) on a free port,
 * with fast saga retries.
 */
/**
 * The shipped limits with circuit breakers that do not open: a test that is not about breakers
 * injects vendor faults on purpose, and on a loaded machine a 1 s vendor timeout counts too, so
 * the shipped 5 failures in 30 s would open a breaker that later tests in the file then meet.
 * The breaker tests (test/guardrails/) pass their own limits.
 */
export function quietBreakers(): LoadedLimits {
  const shipped = readLimitsFile().limits;
  return parseLimits(JSON.stringify({ ...shipped, breakers: { ...shipped.breakers, default: { ...shipped.breakers.default, failures: 10_000 } } }), 'test-limits.json');
}

export async function startTestControlPlane(
  options: Omit<LocalRuntimeOptions, 'port'> & { controlPlane?: ControlPlaneOptions } = {},
): Promise<TestControlPlane> {
  const owned = options.stateDir === undefined;
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'airlock-cp-')));
  const table = runtimeTable(owned ? undefined : stateDir);
  let runtime: Awaited<ReturnType<typeof startControlPlane>>;
  try {
    runtime = await startControlPlane({
      logger: silentLogger,
      inMemoryDynamo: owned,
      ...(table.tableName ? { tableName: table.tableName } : {}),
      ...options,
      port: 0,
      stateDir,
      // Timers that read the ledger on their own clock (the approvals gauge, reconciliation, the
      // delegation expiry sweep) are off unless a test asks: they would land in call counts and
      // in timing-sensitive tests at random.
      controlPlane: {
        retryIntervalMs: 5,
        vendorTimeoutMs: 1_000,
        limits: quietBreakers(),
        approvalGaugeIntervalMs: 0,
        reconcileIntervalMs: 0,
        delegationExpiryIntervalMs: 0,
        ...options.controlPlane,
      },
    });
  } catch (error) {
    await table.cleanup();
    if (owned) await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
  // Custom route tables are not the published API; only the default one is held to it.
  const contract = options.routes === undefined;
  if (contract) checkContractOf(runtime.url);
  let n = 0;
  const token = (sub: string, o: TestTokenOptions = {}) =>
    runtime.issuer.sign(
      { ...o.claims, sub, roles: o.roles ?? [], ...(o.manager ? { manager: o.manager } : {}), ...(o.department ? { department: o.department } : {}) },
      o.ttl ?? '1h',
    );
  return {
    url: runtime.url,
    stateDir,
    runtime,
    cp: runtime.controlPlane,
    token,
    async post(tok, body, o = {}) {
      const res = await fetch(`${runtime.url}/v1/actions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${tok}`,
          'content-type': 'application/json',
          'idempotency-key': o.key ?? `test-${Date.now()}-${n++}`,
          ...(o.prefer ? { prefer: o.prefer } : {}),
        },
        body: JSON.stringify(body),
      });
      return { status: res.status, headers: res.headers, body: await res.json() };
    },
    async get(tok, path) {
      const res = await fetch(`${runtime.url}${path}`, { headers: { authorization: `Bearer ${tok}` } });
      return { status: res.status, body: await res.json() };
    },
    async close() {
      await runtime.close();
      await table.cleanup();
      if (contract) forgetContractOrigin(runtime.url);
      if (owned) await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** The four-step travel plan: search → hold → authorize → book ($274.50, under every approval threshold). */
export function travelPlan(overrides: { mode?: 'execute' | 'dry_run'; date?: string } = {}) {
  const date = overrides.date ?? isoDay(14);
  return {
    agent: { name: 'trip-bot', model: 'test-model' },
    reason: 'Conference in New York',
    ...(overrides.mode ? { mode: overrides.mode } : {}),
    plan: [
      { id: 'search', tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date } },
      { id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: `SB102-${date}`, seats: 1 } },
      {
        id: 'pay',
        tool: 'payments.authorize',
        arguments: { amount: 274.5, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa', customerEmail: 'ada@example.com' },
      },
      {
        id: 'book',
        tool: 'travel.book_flight',
        arguments: {
          holdId: { $ref: 'steps.hold.output.holdId' },
          travelers: [{ firstName: 'Ada', lastName: 'Lovelace', passportNumber: 'X1234567' }],
          contact: { email: 'ada@example.com' },
          price: { amount: 274.5, currency: 'USD' },
        },
      },
    ],
  };
}

/** Four seats on SB100 ($329 each): $1,316, over an employee's $1,000 travel limit. */
export function bigTrip(date = isoDay(20)) {
  const total = 1316;
  return {
    agent: { name: 'trip-bot' },
    reason: 'Team offsite',
    plan: [
      { id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: `SB100-${date}`, seats: 4 } },
      { id: 'pay', tool: 'payments.authorize', arguments: { amount: total, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa' } },
      {
        id: 'book',
        tool: 'travel.book_flight',
        arguments: {
          holdId: { $ref: 'steps.hold.output.holdId' },
          travelers: ['Ada', 'Grace', 'Edsger', 'Barbara'].map((firstName) => ({ firstName, lastName: 'Team' })),
          contact: { email: 'team@example.com' },
          price: { amount: total, currency: 'USD' },
        },
      },
    ],
  };
}

