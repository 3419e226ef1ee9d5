import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { ActionIdPattern, ActionIdSchema } from '../shared/ids';
import { notFound } from '../shared/problem';
import { writeDigest, writeReceipt } from './vault';
import { readReceipt } from './read';
import { receiptsProblem } from './http';
import { receiptsDeps } from '../composition/aws';
import { admitRequest } from '../limits/http';
import type { Lazy, ReceiptsFunctionDeps } from '../composition/deps';
import { httpApi, type HttpEvent, type HttpResult } from '../middleware/http';
import { annotate, tracer } from '../middleware/powertools';
import { taskHandler } from '../middleware/task';

/**
 * The receipts function: WriteReceipt (the last task of every saga path) and WriteDigest
 * (hourly from EventBridge; on demand locally), whose errors are thrown by name (the ASL
 * retries WriteReceipt and ends in ReceiptFailed if it keeps failing); and, for API Gateway
 * events (they carry a `routeKey`), GET /v1/actions/{id}/receipt.
 */

const ActionId = ActionIdSchema;

export const ReceiptsTaskSchema = z.discriminatedUnion('task', [
  // `held`: the action's records as the read fast path holds them (vault.ts heldRecordsOf checks them).
  z.object({ task: z.literal('WriteReceipt'), actionId: ActionId, held: z.unknown().optional() }).strict(),
  z.object({ task: z.literal('WriteDigest') }).strict(),
]);
export type ReceiptsTask = z.infer<typeof ReceiptsTaskSchema>;

/** Saga input from WriteReceipt or the digest schedule; untrusted until validated with zod. */
export type ReceiptsEvent = unknown;

/** A task payload that does not match the contract: a bug in the ASL or the schedule, never retried. */
export class ReceiptsTaskInvalidError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReceiptsTaskInvalidError';
  }
}

/** Runs one receipts task. */
async function run(runtime: ReceiptsFunctionDeps, event: ReceiptsEvent): Promise<unknown> {
  const parsed = ReceiptsTaskSchema.safeParse(event);
  if (!parsed.success) throw new ReceiptsTaskInvalidError(`Invalid receipts task: ${parsed.error.issues.map((i) => i.path.join('.') || i.message).join(', ')}`);
  if (parsed.data.task === 'WriteDigest') {
    const written = await writeDigest(runtime.deps);
    return { key: written?.key ?? null, receipts: written?.digest.receipts.length ?? 0 };
  }
  annotate({ actionId: parsed.data.actionId });
  // The X-Ray root of this invocation, the same for every retry within one execution.
  const result = await writeReceipt(runtime.deps, parsed.data.actionId, { traceId: tracer.getRootXrayTraceId() ?? null, held: parsed.data.held });
  // The receipt is stored; a failed local digest must not make the saga write it again.
  await runtime.afterReceipt?.(result).catch((error: unknown) => runtime.deps.logger.warn('digest after receipt failed', { error }));
  return { key: result.key, status: result.status };
}

/** The readers' route. */
function routes(deps: Lazy<ReceiptsFunctionDeps>) {
  return httpApi(
    {
      'GET /v1/actions/{id}/receipt': {
        auth: true,
        handle: async (req) => {
          const id = req.pathParameters.id ?? '';
          if (!ActionIdPattern.test(id)) throw notFound(`No action ${id.slice(0, 40)}.`);
          // The edge guarantees a principal on authenticated routes; this narrows the type.
          if (!req.principal) throw new Error('authenticated route without principal');
          annotate({ actionId: id });
          return { status: 200, body: await readReceipt((await deps()).deps, req.principal, id) };
        },
      },
    },
    {
      problems: receiptsProblem,
      nested: true,
      admit: async (req) => admitRequest(await deps().then((rt) => ({ limiter: rt.rateLimiter, tools: rt.deps.tools })), req),
    },
  );
}

function isHttpEvent(event: unknown): event is HttpEvent {
  return typeof event === 'object' && event !== null && typeof (event as { routeKey?: unknown }).routeKey === 'string';
}

/** The receipts function's handler over `deps`: API Gateway events go to the route, anything else must be a task. */
export function createReceiptsHandler(deps: Lazy<ReceiptsFunctionDeps>) {
  const http = routes(deps);
  return taskHandler(async (event: ReceiptsEvent, context: Context): Promise<HttpResult | unknown> => {
    if (isHttpEvent(event)) return http(event, context);
    return run(await deps(), event);
  });
}

/** Lambda entry point. */
export const handler = createReceiptsHandler(receiptsDeps);
