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

/** What {@link agentsInWorker} reports: each request's milliseconds, and the statuses seen. */
export interface WorkerLoad {
  latencies: number[];
  statuses: Record<string, number>;
  seconds: number;
}

/**
 * `n` POST /v1/actions from `concurrency` simulated agents in a worker thread, as agents are
 * other processes: their HTTP client (fetch, JSON) runs on the other core instead of taking
 * the control plane's event loop, which a load generator in the same thread does (about a
 * millisecond a request here). Bodies are `body(i)` for i in [0, n); each key `${tag}-${i}`.
 */
export async function agentsInWorker(
  cp: { rt: { url: string }; token: string },
  options: { n: number; concurrency: number; tag: string; prefer?: string; body: (i: number) => unknown },
): Promise<WorkerLoad> {
  const { Worker } = await import('node:worker_threads');
  const bodies = Array.from({ length: options.n }, (_, i) => JSON.stringify(options.body(i)));
  // Plain JavaScript (no loader in the worker): fetch, a pool, the latencies.
  const source = `
    const { parentPort, workerData: w } = require('node:worker_threads');
    (async () => {
      const latencies = [], statuses = {};
      let next = 0;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: Math.min(w.concurrency, w.bodies.length) }, async () => {
        while (next < w.bodies.length) {
          const i = next++;
          const s = performance.now();
          const res = await fetch(w.url + '/v1/actions', { method: 'POST', body: w.bodies[i], headers: {
            authorization: 'Bearer ' + w.token, 'content-type': 'application/json', 'idempotency-key': w.tag + '-' + i, ...(w.prefer ? { prefer: w.prefer } : {}) } });
          const json = await res.json();
          latencies.push(performance.now() - s);
          const k = res.status + ' ' + json.status;
          statuses[k] = (statuses[k] ?? 0) + 1;
        }
      }));
      parentPort.postMessage({ latencies, statuses, seconds: (performance.now() - t0) / 1000 });
    })().catch((e) => { throw e; });`;
  const worker = new Worker(source, { eval: true, workerData: { url: cp.rt.url, token: cp.token, bodies, concurrency: options.concurrency, tag: options.tag, prefer: options.prefer } });
  try {
    return await new Promise<WorkerLoad>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`load worker exited ${code}`)));
    });
  } finally {
    await worker.terminate();
  }
}
