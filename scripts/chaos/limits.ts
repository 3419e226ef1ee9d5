import { parseLimits, readLimitsFile, type LoadedLimits, type RateLimit, type SpendCap } from '../../lambdas/limits/config';

/**
 * The storm's limits file: the shipped policies/limits.json plus limits tight enough that the
 * storm runs into them, so `429 quota-exceeded` and spend-cap refusals happen at every size:
 * a per-second limit on granting roles (bursts of duplicate POSTs exceed it) and payment caps
 * per principal and per department that a share of the storm's payments passes. They scale
 * with the storm so a 10,000-action run is throttled, not starved. The control plane runs
 * under exactly this file, and the invariants judge by it.
 */

/** The tight rate limit: `iam.grant_role` requests per second. */
export function chaosRateLimit(actions: number): RateLimit {
  return { id: 'chaos-grant-burst', scope: 'tool', only: ['iam.grant_role'], limit: 2 + Math.floor(actions / 2500), windowSeconds: 1, shards: 1, lease: 1 };
}

/** The tight spend caps on payments, in the base currency's major units. */
export function chaosSpendCaps(actions: number): SpendCap[] {
  return [
    { id: 'chaos-payments-principal-daily', scope: 'principal', period: 'day', amount: Math.max(1_000, actions * 8), connectors: ['payments'] },
    { id: 'chaos-payments-department-daily', scope: 'department', period: 'day', amount: Math.max(5_000, actions * 150), connectors: ['payments'] },
  ];
}

/** The storm's limits: the shipped file with the tight entries added. */
export function chaosLimits(actions: number): { text: string; loaded: LoadedLimits } {
  const shipped = readLimitsFile().limits;
  const limits = { ...shipped, rateLimits: [...shipped.rateLimits, chaosRateLimit(actions)], spendCaps: [...shipped.spendCaps, ...chaosSpendCaps(actions)] };
  const text = JSON.stringify(limits, null, 2);
  return { text, loaded: parseLimits(text, 'chaos-limits.json') };
}
