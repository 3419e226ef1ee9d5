import * as z from 'zod';
import { approvalGaugeDeps } from '../composition/aws';
import type { ApprovalGaugeFunctionDeps, Lazy } from '../composition/deps';
import { taskHandler } from '../middleware/task';
import { measurePendingApprovals, type PendingApprovalsGauge } from './pending-approvals';

/**
 * The approvals gauge function: the target of an EventBridge Scheduler schedule
 * (`{"task":"MeasurePendingApprovals"}`), which samples the pending approvals into
 * `ApprovalsPending` and `ApprovalOldestPendingAge` (published as EMF after the invocation).
 */

const ScheduledRun = z.object({ task: z.literal('MeasurePendingApprovals') }).strict();

/** The handler over `deps` (tests pass their own). */
export function createApprovalGaugeHandler(deps: Lazy<ApprovalGaugeFunctionDeps>) {
  return taskHandler(async (event: unknown): Promise<PendingApprovalsGauge> => {
    ScheduledRun.parse(event);
    return measurePendingApprovals(await deps());
  });
}

/** Lambda entry point. */
export const handler = createApprovalGaugeHandler(approvalGaugeDeps);
