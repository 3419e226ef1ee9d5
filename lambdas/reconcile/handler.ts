import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { reconcileDeps } from '../composition/aws';
import type { Lazy, ReconcileFunctionDeps } from '../composition/deps';
import { admitRequest } from '../limits/http';
import { httpApi, type HttpEvent, type HttpResult } from '../middleware/http';
import { taskHandler } from '../middleware/task';
import { reconcileProblem } from './http';
import { runReconciliation } from './operator';
import { reconcile } from './reconcile';
import { resumeStalledActions } from '../saga/resume';

/**
 * The reconcile function: the target of the EventBridge Scheduler schedule, which reports
 * (findings, metrics, the reconciliation receipt) and never fixes on its own; and, for API
 * Gateway events (they carry a `routeKey`), `POST /v1/reconciliations`, an operator's run
 * (`airlock reconcile [--fix]`), which may fix.
 */

const ScheduledRun = z.object({ task: z.literal('Reconcile'), days: z.number().int().min(1).max(31).optional() }).strict();

function isHttpEvent(event: unknown): event is HttpEvent {
  return typeof event === 'object' && event !== null && typeof (event as { routeKey?: unknown }).routeKey === 'string';
}

function routes(deps: Lazy<ReconcileFunctionDeps>) {
  return httpApi(
    {
      'POST /v1/reconciliations': {
        auth: true,
        handle: async (req) => {
          // The edge guarantees a principal on authenticated routes; this narrows the type.
          if (!req.principal) throw new Error('authenticated route without principal');
          const rt = await deps();
          return { status: 200, body: await runReconciliation(rt, req.principal, req.body) };
        },
      },
    },
    {
      problems: reconcileProblem,
      nested: true,
      admit: async (req) => admitRequest(await deps().then((rt) => ({ limiter: rt.rateLimiter, tools: rt.reconcile.tools })), req),
    },
  );
}

/** The reconcile function's handler over `deps`: API Gateway events go to the route, anything else must be the schedule's task. */
export function createReconcileHandler(deps: Lazy<ReconcileFunctionDeps>) {
  const http = routes(deps);
  return taskHandler(async (event: unknown, context: Context): Promise<HttpResult | unknown> => {
    if (isHttpEvent(event)) return http(event, context);
    const run = ScheduledRun.parse(event);
    const rt = await deps();
    // First the actions a dead workflow left unfinished (an Express run is never retried by Step
    // Functions): the saga resumes them, and the reconciliation below compares what they did.
    const resumed = rt.resume ? await resumeStalledActions(rt.resume) : { resumed: [] };
    const report = await reconcile(rt.reconcile, { ...(run.days ? { days: run.days } : {}), actor: 'airlock' });
    return { runId: report.runId, findings: report.findings.length, unreachable: report.unreachable.length, receiptKey: report.receiptKey, resumed: resumed.resumed.length };
  });
}

/** Lambda entry point. */
export const handler = createReconcileHandler(reconcileDeps);
