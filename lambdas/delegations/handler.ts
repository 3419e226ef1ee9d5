import * as z from 'zod';
import { delegationExpiryDeps } from '../composition/aws';
import type { DelegationExpiryFunctionDeps, Lazy } from '../composition/deps';
import { taskHandler } from '../middleware/task';
import { sweepExpiredDelegations } from './expiry';

/**
 * The delegation expiry function: the target of an EventBridge Scheduler schedule
 * (`{"task":"SweepExpiredDelegations"}`, every minute), which ends the delegations whose expiry
 * has passed: their pending approvals cancelled, their running sagas stopped, an expiry receipt
 * each (lambdas/delegations/expiry.ts). The HTTP routes of delegations are the intake function's.
 */

const ScheduledRun = z.object({ task: z.literal('SweepExpiredDelegations') }).strict();

/** The handler over `deps` (tests pass their own). */
export function createDelegationExpiryHandler(deps: Lazy<DelegationExpiryFunctionDeps>) {
  return taskHandler(async (event: unknown) => {
    ScheduledRun.parse(event);
    const report = await sweepExpiredDelegations(await deps());
    // Ids only: the counts are what an operator reads in the function's result.
    return { expired: report.expired, cancelled: report.stopped.cancelled.length, stopping: report.stopped.stopping.length };
  });
}

/** Lambda entry point. */
export const handler = createDelegationExpiryHandler(delegationExpiryDeps);
