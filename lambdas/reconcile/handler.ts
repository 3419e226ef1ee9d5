import { z } from 'zod';
import { reconcileDeps } from '../composition/aws';
import type { Lazy } from '../composition/deps';
import { taskHandler } from '../middleware/task';
import { reconcile, type ReconcileDeps } from './reconcile';

/**
 * The reconcile function: the target of the EventBridge Scheduler schedule. It reports
 * (findings, metrics, the reconciliation receipt) and never fixes on its own: running a
 * missing compensation is an operator's call (`airlock reconcile --fix`).
 */

const ScheduledRun = z.object({ task: z.literal('Reconcile'), days: z.number().int().min(1).max(31).optional() }).strict();

export function createReconcileHandler(deps: Lazy<ReconcileDeps>) {
  return taskHandler(async (event: unknown) => {
    const run = ScheduledRun.parse(event);
    const report = await reconcile(await deps(), { ...(run.days ? { days: run.days } : {}), actor: 'airlock' });
    return { runId: report.runId, findings: report.findings.length, unreachable: report.unreachable.length, receiptKey: report.receiptKey };
  });
}

/** Lambda entry point. */
export const handler = createReconcileHandler(reconcileDeps);
