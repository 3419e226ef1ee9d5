import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoGuardrailStore } from '../../lambdas/adapters/aws/dynamo-guardrails';
import { Breakers, isBreakerFailure } from '../../lambdas/guardrails/breakers';
import { CircuitOpenError } from '../../lambdas/guardrails/errors';
import { parseLimits, readLimitsFile, type BreakerSettings, type LoadedLimits } from '../../lambdas/limits/config';
import type { MetricDimensions, Metrics } from '../../lambdas/ports/metrics';
import { VendorRejectedError, VendorTimeoutError, VendorUnavailableError } from '../../lambdas/tools/errors';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

/**
 * Circuit breakers over the real DynamoDB adapter (dynalite, or DynamoDB Local in CI): counts
 * and moves are conditional writes, so functions sharing a breaker agree; the clock and the
 * jitter are injected, so no test waits for a reset.
 */

let db: TestDynamo;
let store: DynamoGuardrailStore;

beforeAll(async () => {
  db = await startTestDynamo();
  store = new DynamoGuardrailStore({ client: db.client, tableName: db.tableName });
});
afterAll(async () => {
  await db?.close();
});

const SETTINGS: BreakerSettings = { failures: 3, windowSeconds: 10, resetSeconds: 30, jitter: 0.2, halfOpenSuccesses: 2 };

function limitsWith(settings: BreakerSettings): LoadedLimits {
  const base = readLimitsFile().limits;
  return parseLimits(JSON.stringify({ ...base, breakers: { default: settings, connectors: {} } }));
}

class RecordingMetrics implements Metrics {
  readonly counts: { name: string; dimensions: MetricDimensions | undefined }[] = [];
  count(name: string, dimensions?: MetricDimensions): void {
    this.counts.push({ name, dimensions });
  }
  observe(): void {}
}

/** A function's view of the breakers, on a clock the test moves. */
function breakersAt(clock: { t: number }, options: { random?: () => number; metrics?: Metrics; settings?: BreakerSettings } = {}) {
  return new Breakers({
    store,
    limits: limitsWith(options.settings ?? SETTINGS),
    now: () => new Date(clock.t),
    random: options.random ?? (() => 0.5),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    actor: 'test',
  });
}

let n = 0;
const fresh = () => `conn${++n}`;

describe('what counts as a failure', () => {
  it('is a vendor outage, timeout or 5xx, never a refusal on the merits', () => {
    expect(isBreakerFailure(new VendorUnavailableError('down', { vendorStatus: 503 }))).toBe(true);
    expect(isBreakerFailure(new VendorTimeoutError('slow'))).toBe(true);
    expect(isBreakerFailure(new VendorRejectedError('no', { vendorStatus: 400 }))).toBe(false);
    expect(isBreakerFailure(new VendorRejectedError('odd', { vendorStatus: 500 }))).toBe(true);
    expect(isBreakerFailure(new Error('bug'))).toBe(false);
    expect(isBreakerFailure('text')).toBe(false);
  });
});

describe('a breaker through its phases', () => {
  it('opens after N failures within T, refuses with Retry-After, half-opens after a jittered reset, closes after M successes', async () => {
    const c = fresh();
    const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
    const metrics = new RecordingMetrics();
    const b = breakersAt(clock, { metrics, random: () => 1 }); // jitter at its top: reset × 1.2 = 36 s
    await b.check(c);
    await b.recordFailure(c);
    await b.recordFailure(c);
    await b.check(c); // 2 of 3: still closed
    expect((await store.getBreaker(c)).phase).toBe('closed');
    clock.t += 1_000;
    await b.recordFailure(c);
    const open = await store.getBreaker(c);
    expect(open).toMatchObject({ phase: 'open', failures: 3, retryAt: clock.t + 36_000 });

    const refused = await b.check(c).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect((refused as CircuitOpenError).retryAfterSeconds).toBe(36);
    clock.t += 35_500;
    expect(((await b.check(c).catch((e: unknown) => e)) as CircuitOpenError).retryAfterSeconds).toBe(1);

    clock.t += 500;
    await b.check(c); // the reset has passed: a trial goes through
    expect((await store.getBreaker(c)).phase).toBe('half_open');
    await b.recordSuccess(c);
    expect((await store.getBreaker(c)).phase).toBe('half_open');
    await b.recordSuccess(c);
    expect((await store.getBreaker(c))).toMatchObject({ phase: 'closed', failures: 0 });

    const moves = await store.listBreakerTransitions(c);
    expect(moves.map((m) => `${m.from}>${m.to}`)).toEqual(['closed>open', 'open>half_open', 'half_open>closed']);
    expect(moves[0]).toMatchObject({ actor: 'test', figures: { failures: 3, failureLimit: 3, windowSeconds: 10, resetMs: 36_000 } });
    expect(moves[2]!.figures).toMatchObject({ successes: 2, successesNeeded: 2 });
    expect(metrics.counts.filter((m) => m.name === 'BreakerTransition').map((m) => m.dimensions)).toEqual([
      { connector: c, to: 'open' },
      { connector: c, to: 'half_open' },
      { connector: c, to: 'closed' },
    ]);
    expect(metrics.counts.filter((m) => m.name === 'BreakerRejected')).toHaveLength(2);
  });

  it('counts failures only within the window: spread-out failures never open it', async () => {
    const c = fresh();
    const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
    const b = breakersAt(clock);
    for (let i = 0; i < 10; i++) {
      await b.recordFailure(c);
      clock.t += 6_000; // two per 10 s window at most
    }
    expect((await store.getBreaker(c)).phase).toBe('closed');
  });

  it('reopens on a failed trial while half-open, with a fresh reset', async () => {
    const c = fresh();
    const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
    const b = breakersAt(clock, { random: () => 0 }); // jitter at its bottom: 24 s
    for (let i = 0; i < 3; i++) await b.recordFailure(c);
    clock.t += 24_000;
    await b.check(c);
    expect((await store.getBreaker(c)).phase).toBe('half_open');
    await b.recordFailure(c);
    expect(await store.getBreaker(c)).toMatchObject({ phase: 'open', retryAt: clock.t + 24_000 });
  });

  it('jitters the reset within ±jitter of resetSeconds', async () => {
    for (const [random, expected] of [[0, 24_000], [0.25, 27_000], [0.75, 33_000]] as const) {
      const c = fresh();
      const clock = { t: 1_000_000 };
      const b = breakersAt(clock, { random: () => random });
      for (let i = 0; i < 3; i++) await b.recordFailure(c);
      expect((await store.getBreaker(c)).retryAt - clock.t).toBe(expected);
    }
  });

  it('shares one state between functions: one opens it, another refuses within its cache lifetime', async () => {
    const c = fresh();
    const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
    const connector = breakersAt(clock);
    const intake = breakersAt(clock);
    await intake.check(c); // caches "closed"
    for (let i = 0; i < 3; i++) await connector.recordFailure(c);
    await intake.check(c); // still within its 2 s cache
    clock.t += 2_000;
    await expect(intake.check(c)).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('opens exactly once when many functions fail at the same time, and records one move', async () => {
    const c = fresh();
    const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
    const metrics = new RecordingMetrics();
    const fleet = Array.from({ length: 12 }, () => breakersAt(clock, { metrics }));
    await Promise.all(fleet.map((b) => b.recordFailure(c)));
    const state = await store.getBreaker(c);
    expect(state.phase).toBe('open');
    expect(await store.listBreakerTransitions(c)).toHaveLength(1);
    expect(metrics.counts.filter((m) => m.name === 'BreakerTransition')).toHaveLength(1);
  });

  it('closes once when many half-open successes race', async () => {
    const c = fresh();
    const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
    const fleet = Array.from({ length: 8 }, () => breakersAt(clock));
    for (let i = 0; i < 3; i++) await fleet[0]!.recordFailure(c);
    clock.t += 60_000;
    await fleet[0]!.check(c);
    await Promise.all(fleet.map((b) => b.recordSuccess(c)));
    expect((await store.getBreaker(c)).phase).toBe('closed');
    expect((await store.listBreakerTransitions(c)).map((m) => m.to)).toEqual(['open', 'half_open', 'closed']);
  });

  it('opens on the first failure when the limit is 1, and ignores successes while closed (no write)', async () => {
    const c = fresh();
    const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
    const b = breakersAt(clock, { settings: { ...SETTINGS, failures: 1 } });
    await b.recordSuccess(c);
    expect((await store.getBreaker(c)).version).toBe(0);
    await b.recordFailure(c);
    expect((await store.getBreaker(c)).phase).toBe('open');
  });

  it('uses a connector\'s own settings over the default', () => {
    const base = readLimitsFile().limits;
    const limits = parseLimits(JSON.stringify({ ...base, breakers: { default: SETTINGS, connectors: { travel: { ...SETTINGS, failures: 9 } } } }));
    const b = new Breakers({ store, limits, now: () => new Date() });
    expect(b.settings('travel').failures).toBe(9);
    expect(b.settings('payments').failures).toBe(3);
  });
});
