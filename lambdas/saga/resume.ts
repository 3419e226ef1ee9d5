import type { ActionRecord } from '../actions/action';
import { TerminalStatuses } from '../actions/action';
import type { ActionStore } from '../ports/ledger';
import type { WorkflowStarter } from '../ports/workflow';
import type { Logger } from '../shared/logger';

/**
 * Who restarts an action whose workflow died. Step Functions retries nothing of an Express
 * execution that ends early (the 5-minute cap, a failure outside every Catch), and a Standard
 * saga that ends in RunFailed leaves the action where its last run left it. The scheduled
 * reconcile function (and the local runtime's reconcile timer) calls this: every action of
 * the last days that has not moved for `stalledAfterMs` and is still unfinished (received,
 * running or compensating; or ended without a recorded receipt) is handed to the Standard saga
 * under a fresh execution name. The saga resumes from the ledger: every task is idempotent,
 * so an action that was in fact still moving is only run once more, never acted on twice.
 * Actions awaiting approval are left alone: their saga is waiting.
 */

/** Longer than an Express run may live (5 minutes) with room for its last writes. */
export const STALLED_AFTER_MS = 10 * 60_000;
/** How far back actions are examined (by creation): as far as the reconciliation looks. */
export const RESUME_LOOKBACK_MS = 2 * 86_400_000;
const PAGE = 100;

export interface ResumeDeps {
  actions: Pick<ActionStore, 'listAllActions'>;
  workflow: WorkflowStarter;
  now: () => Date;
  logger: Logger;
}

/** Whether an action was left unfinished by a workflow that is gone (by its last move). */
export function isStalled(action: ActionRecord, now: Date, stalledAfterMs = STALLED_AFTER_MS): boolean {
  if (now.getTime() - Date.parse(action.updatedAt) < stalledAfterMs) return false;
  if (action.status === 'awaiting_approval') return false;
  return !TerminalStatuses.has(action.status) || action.receiptKey === undefined;
}

/** Hands every stalled action to the Standard saga; returns their ids. */
export async function resumeStalledActions(
  deps: ResumeDeps,
  options: { stalledAfterMs?: number; lookbackMs?: number } = {},
): Promise<{ resumed: string[] }> {
  const now = deps.now();
  const stalledAfterMs = options.stalledAfterMs ?? STALLED_AFTER_MS;
  const resumed: string[] = [];
  let startAfter: string | undefined;
  do {
    const page = await deps.actions.listAllActions({
      since: new Date(now.getTime() - (options.lookbackMs ?? RESUME_LOOKBACK_MS)),
      // Created before the stall window: anything newer cannot have stalled yet.
      until: new Date(now.getTime() - stalledAfterMs),
      limit: PAGE,
      ...(startAfter ? { startAfter } : {}),
    });
    for (const action of page.items) {
      if (!isStalled(action, now, stalledAfterMs)) continue;
      await deps.workflow.start(action.id, { actionId: action.id }, 'resumed');
      resumed.push(action.id);
    }
    startAfter = page.lastEvaluated;
  } while (startAfter);
  if (resumed.length > 0) deps.logger.warn('resumed stalled actions', { count: resumed.length, actionIds: resumed.slice(0, 20) });
  return { resumed };
}
