import type { Metrics } from '../ports/metrics';
import { DEFAULT_DENY_POLICY, type MetricName } from './catalog';

/**
 * The KPI emitters the capabilities share: one place turns a domain event into its metrics,
 * so the same fact is counted the same way at intake and at run time.
 */

/** A counter of the catalog (the name is checked at compile time). */
export function countKpi(metrics: Metrics | undefined, name: MetricName, dimensions?: Record<string, string>, value?: number): void {
  metrics?.count(name, dimensions, value);
}

/** A policy decision: its outcome, and each deciding policy of a deny. */
export function recordDecision(
  metrics: Metrics | undefined,
  decision: { outcome: string; policyIds: readonly string[] },
  stage: 'intake' | 'run',
): void {
  if (!metrics) return;
  metrics.count('Decision', { outcome: decision.outcome, stage });
  if (decision.outcome !== 'deny') return;
  const ids = decision.policyIds.length > 0 ? new Set(decision.policyIds) : [DEFAULT_DENY_POLICY];
  for (const policy of ids) metrics.count('PolicyDenied', { policy });
}

/** An approval closed (approved, rejected, expired), with the time it waited. */
export function recordApprovalDecided(metrics: Metrics | undefined, outcome: 'approved' | 'rejected' | 'expired', createdAt: string, now: Date): void {
  if (!metrics) return;
  metrics.count('ApprovalDecided', { outcome });
  const waited = (now.getTime() - Date.parse(createdAt)) / 1000;
  if (Number.isFinite(waited) && waited >= 0) metrics.observe('ApprovalTimeToDecision', waited, 'Seconds');
}
