import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlaneOptions } from '../local/control-plane';
import { silentLogger } from '../local/server';
import { isoDay } from '../test/helpers/dates';
import { parseLimits, readLimitsFile, type LoadedLimits, type RateLimit } from '../lambdas/limits/config';

/**
 * The shipped limits file with its rate limits replaced: `[]` turns counting off, and
 * `scaled(k)` keeps every shipped policy (scopes, windows, shards, leases) with k times its
 * limit, so a benchmark counts like production without being refused.
 */
export function limitsWith(rateLimits: RateLimit[] | ((shipped: RateLimit[]) => RateLimit[])): LoadedLimits {
  const shipped = readLimitsFile().limits;
  const rates = typeof rateLimits === 'function' ? rateLimits(shipped.rateLimits) : rateLimits;
  return parseLimits(JSON.stringify({ ...shipped, rateLimits: rates }), 'bench-limits.json');
}
export const scaled = (k: number) => (shipped: RateLimit[]) => shipped.map((r) => ({ ...r, limit: r.limit * k }));

/** Percentile of a sorted list (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summarize(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
  return { n: samples.length, mean, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

export const ms = (v: number) => `${v.toFixed(1)} ms`;

/** The local control plane on a free port with a throwaway state dir, as `npm start` runs it. */
export async function benchControlPlane(controlPlane: ControlPlaneOptions = {}) {
  const stateDir = await mkdtemp(join(tmpdir(), 'airlock-bench-'));
  const rt = await startControlPlane({ port: 0, stateDir, inMemoryDynamo: true, logger: silentLogger, controlPlane });
  const token = await rt.issuer.sign({ sub: 'bench', roles: ['Employee'], manager: 'boss' }, '1h');
  return {
    rt,
    token,
    async post(body: unknown, key: string, prefer?: string) {
      const t0 = performance.now();
      const res = await fetch(`${rt.url}/v1/actions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'idempotency-key': key,
          ...(prefer ? { prefer } : {}),
        },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as Record<string, unknown>;
      return { status: res.status, ms: performance.now() - t0, body: json, replayed: res.headers.get('idempotent-replayed') === 'true' };
    },
    async close() {
      await rt.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** Runs `task(i)` for i in [0, n) with at most `concurrency` in flight. */
export async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

/**
 * The benches' 4-step travel plan (search, hold, authorize, book; $274.50), or its first `steps`
 * steps. Days 1 to 28 ahead, so runs spread over 28 flights and none has departed.
 */
export function travelPlan(i: number, steps = 4) {
  const date = isoDay(1 + (i % 28));
  return {
    agent: { name: 'bench' },
    plan: [
      { id: 'search', tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date } },
      { id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: `SB102-${date}`, seats: 1 } },
      { id: 'pay', tool: 'payments.authorize', arguments: { amount: 274.5, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa' } },
      {
        id: 'book',
        tool: 'travel.book_flight',
        arguments: { holdId: { $ref: 'steps.hold.output.holdId' }, travelers: [{ firstName: 'Ada', lastName: 'Lovelace' }], contact: { email: 'ada@example.com' }, price: { amount: 274.5, currency: 'USD' } },
      },
    ].slice(0, steps),
  };
}
