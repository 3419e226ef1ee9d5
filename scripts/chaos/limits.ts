import { parseLimits, readLimitsFile, type LoadedLimits, type RateLimit, type SpendCap } from '../../lambdas/limits/config';

/**
 * The storm's limits file: the shipped policies/limits.json plus limits tight enough that the
 * storm runs into them, so `429 quota-exceeded` and spend-cap refusals happen at every size:
 * a per-second limit on granting roles (bursts of duplicate POSTs exceed it) and payment caps
 * per principal and per department that a share of the storm's payments passes. They scale
 * with the storm so a 10,000-action run is throttled, not starved. The control plane runs
 * under exactly this file, and the invariants judge by it.
 */

/**
 * The tight rate limit: `iam.grant_role` requests per second: 2 up to 499 actions, 3 from 500,
 * 4 from 1,000. Every POST naming the tool counts, copies, retries and plans an open breaker
 * refuses after the limiter admitted them included: at 2, seed 7 at 1,000 actions (2.6
 * actions/s) kept a queue of agents waiting out `429` (500 refusals a minute at its peak) that
 * did not drain, and 32 of them gave up after 12 retries. Demand follows the storm's throughput
 * (bounded by the control plane's CPU), not its length, hence the ceiling: bursts still exceed it.
 */
export function chaosRateLimit(actions: number): RateLimit {
  return { id: 'chaos-grant-burst', scope: 'tool', only: ['iam.grant_role'], limit: Math.min(4, 2 + Math.floor(actions / 500)), windowSeconds: 1, shards: 1, lease: 1 };
}

/** The tight spend caps on payments, in the base currency's major units. */
export function chaosSpendCaps(actions: number): SpendCap[] {
  return [
    { id: 'chaos-payments-principal-daily', scope: 'principal', period: 'day', amount: Math.max(1_000, actions * 8), connectors: ['payments'] },
    { id: 'chaos-payments-department-daily', scope: 'department', period: 'day', amount: Math.max(5_000, actions * 150), connectors: ['payments'] },
  ];
}

/**
 * Seconds an open breaker stays open in the storm (shipped: 30). Every breaker still opens,
 * refuses and half-opens as shipped; a shorter open spell only means agents refused with
 * `503 circuit-open` wait less: at 30 s, seed 7 at 1,000 actions had 32 agents retrying for
 * 2–5 minutes (plans touching all four connectors meet some open breaker most of the time).
 */
export const CHAOS_BREAKER_RESET_SECONDS = 10;

/** The storm's limits: the shipped file with the tight entries added and breakers that reset sooner. */
export function chaosLimits(actions: number): { text: string; loaded: LoadedLimits } {
  const shipped = readLimitsFile().limits;
  const sooner = <T extends { resetSeconds: number }>(b: T): T => ({ ...b, resetSeconds: Math.min(b.resetSeconds, CHAOS_BREAKER_RESET_SECONDS) });
  const breakers = { default: sooner(shipped.breakers.default), connectors: Object.fromEntries(Object.entries(shipped.breakers.connectors).map(([k, b]) => [k, sooner(b)])) };
  const limits = { ...shipped, rateLimits: [...shipped.rateLimits, chaosRateLimit(actions)], spendCaps: [...shipped.spendCaps, ...chaosSpendCaps(actions)], breakers };
  const text = JSON.stringify(limits, null, 2);
  return { text, loaded: parseLimits(text, 'chaos-limits.json') };
}
