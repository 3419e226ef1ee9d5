/**
 * Rate limits (`npm run bench:limits`). Not a test: prints numbers, asserts nothing.
 *
 * 1. What counting costs at the front door: POST /v1/actions (echo.say, respond-async, the
 *    saga left out as in bench/intake.ts's "front door only") with rate limits off — the floor —
 *    then with the shipped policies (limits ×100 so nothing is refused; default leases and
 *    shards), then with `lease: 1` (one conditional write per request per policy). Ratios are
 *    to the floor measured in the same run.
 * 2. Exactness: 16 limiter instances (as 16 Lambda instances) race on one window in dynalite;
 *    admitted vs the limit, with a write per request, with leased blocks, and sharded.
 */
import { startDynalite } from '../lambdas/adapters/local/dynalite';
import { ensureTables } from '../lambdas/adapters/local/dynamo-tables';
import { DynamoRateCounters } from '../lambdas/adapters/aws/dynamo-rate-counters';
import { RateLimitSchema, type RateLimit } from '../lambdas/limits/config';
import { RateLimiter } from '../lambdas/limits/rate-limiter';
import { RateLimitExceededError } from '../lambdas/limits/rate-limits';
import { benchControlPlane, limitsWith, ms, pool, scaled, summarize } from './support';

const N = Number(process.env.BENCH_ACTIONS ?? 1_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

async function intakeRound(label: string, rates: Parameters<typeof limitsWith>[0]) {
  const cp = await benchControlPlane({ limits: limitsWith(rates) });
  cp.rt.controlPlane.composition.intake.workflow = { start: async () => undefined };
  const body = (i: number) => ({ tool: 'echo.say', arguments: { message: `hello ${i}` }, agent: { name: 'bench' } });
  await pool(50, 8, async (i) => void (await cp.post(body(-i - 1), `warm-${i}`, 'respond-async')));
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  const started = performance.now();
  await pool(N, CONCURRENCY, async (i) => {
    const res = await cp.post(body(i), `key-${label.replace(/[^a-z0-9]+/gi, "-")}-${i}`, 'respond-async');
    latencies.push(res.ms);
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  });
  const seconds = (performance.now() - started) / 1000;
  await cp.close();
  return { label, rps: N / seconds, ...summarize(latencies), statuses };
}

async function exactness(p: RateLimit, attempts: number) {
  const dynalite = await startDynalite();
  try {
    const tableName = 'bench-limits';
    await ensureTables(dynalite.client, tableName);
    const counters = new DynamoRateCounters({ client: dynalite.client, tableName });
    let writes = 0;
    const counting = { take: (...a: Parameters<DynamoRateCounters['take']>) => (writes++, counters.take(...a)), read: counters.read.bind(counters) };
    // A window that does not turn during the run: the figure is about concurrency, not the clock.
    const now = () => new Date(Date.UTC(2030, 0, 1, 0, 30));
    const instances = Array.from({ length: 16 }, () => new RateLimiter({ policies: [p], counters: counting, now }));
    let admitted = 0;
    // 16 requests in flight at any moment, each on the next instance.
    await pool(attempts, 16, async (i) => {
      try {
        await instances[i % 16]!.admit({ principal: 'bench', tools: [] });
        admitted++;
      } catch (error) {
        if (!(error instanceof RateLimitExceededError)) throw error;
      }
    });
    return { admitted, writes };
  } finally {
    await dynalite.close();
  }
}

console.log(`rate limits: intake front door, local mode, echo.say, concurrency ${CONCURRENCY}, ${N} requests`);
const off = await intakeRound('limits off (floor)', []);
const on = await intakeRound('shipped policies ×100', scaled(100));
const exact = await intakeRound('same, lease 1', (shipped) => scaled(100)(shipped).map((r) => ({ ...r, lease: 1 })));
for (const r of [off, on, exact]) {
  const codes = [...r.statuses].map(([s, n]) => `${s}×${n}`).join(' ');
  console.log(
    `${r.label.padEnd(24)} ${r.rps.toFixed(0).padStart(5)} req/s (×${(r.rps / off.rps).toFixed(2)})  p50 ${ms(r.p50)} (×${(r.p50 / off.p50).toFixed(2)})  p99 ${ms(r.p99)} (×${(r.p99 / off.p99).toFixed(2)})  ${codes}`,
  );
}

console.log('\nexactness: 16 instances racing on one window (dynalite), 4× the limit attempted');
const policy = (p: Partial<RateLimit>) => RateLimitSchema.parse({ id: 'bench', scope: 'principal', limit: 500, windowSeconds: 3_600, ...p });
for (const [label, p] of [
  ['a write per request', policy({ lease: 1 })],
  ['leases of 10', policy({ lease: 10 })],
  ['8 shards, lease 1', policy({ scope: 'global', shards: 8, lease: 1 })],
  ['8 shards, leases of 5', policy({ scope: 'global', shards: 8, lease: 5 })],
] as const) {
  const r = await exactness(p, p.limit * 4);
  console.log(`${label.padEnd(24)} admitted ${String(r.admitted).padStart(4)} of limit ${p.limit}  (${(r.admitted / p.limit).toFixed(3)})  conditional writes ${r.writes}`);
}
