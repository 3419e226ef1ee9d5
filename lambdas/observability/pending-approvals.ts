import type { PendingApprovalsReader } from '../ports/approvals';
import type { Metrics } from '../ports/metrics';

/**
 * The live approvals gauge: how many approvals wait for a decision and how long the oldest
 * has waited, sampled on a schedule (EventBridge Scheduler in AWS, a timer locally). The
 * `ApprovalsPendingTooLong` alarm reads the age, so an approval nobody decides pages while it
 * still waits, not only once it is decided or expires.
 */

/** How often the deployed gauge samples (the stack's schedule, and the alarm's period). */
export const PENDING_APPROVALS_SAMPLE_SECONDS = 300;

/** How often the local runtime samples: a minute, so `GET /v1/metrics` is never far behind. */
export const LOCAL_PENDING_APPROVALS_SAMPLE_MS = 60_000;

/** Dependencies of {@link measurePendingApprovals}. */
export interface PendingApprovalsGaugeDeps {
  approvals: PendingApprovalsReader;
  metrics: Metrics;
  now: () => Date;
}

/** One sample of the gauge, as emitted. */
export interface PendingApprovalsGauge {
  pending: number;
  /** Seconds since the oldest pending approval was requested (0 when none waits). */
  oldestAgeSeconds: number;
}

/**
 * Reads the pending approvals and emits `ApprovalsPending` and `ApprovalOldestPendingAge`.
 * The age is emitted as 0 when nothing waits (and never negative when a clock is behind), so
 * the alarm sees a data point every run and a stopped job shows as missing data.
 */
export async function measurePendingApprovals(deps: PendingApprovalsGaugeDeps): Promise<PendingApprovalsGauge> {
  const summary = await deps.approvals.summarizePending();
  const created = summary.oldestCreatedAt !== undefined ? Date.parse(summary.oldestCreatedAt) : NaN;
  const age = Number.isFinite(created) ? Math.max(0, Math.floor((deps.now().getTime() - created) / 1000)) : 0;
  const gauge = { pending: summary.count, oldestAgeSeconds: summary.count > 0 ? age : 0 };
  deps.metrics.observe('ApprovalsPending', gauge.pending, 'Count');
  deps.metrics.observe('ApprovalOldestPendingAge', gauge.oldestAgeSeconds, 'Seconds');
  return gauge;
}
