import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { ApprovalListQuerySchema, DecisionBodySchema } from '../api/schemas';
import type { CursorScope } from '../shared/cursor';
import { decideApproval, getApprovalPreview, listApprovals, requestApproval } from './approvals';
import { ActionIdPattern } from '../shared/ids';
import { badRequest, notFound, serviceUnavailable, type Violation } from '../shared/problem';
import { ApprovalIdPattern } from '../ports/approvals';
import { LedgerThrottledError } from '../ports/ledger';
import { approvalsRuntime } from '../composition/approvals-runtime';
import { cursorCodec } from '../composition/aws';
import { boundedErrors } from '../middleware/bounded-errors';
import { httpApi, type HttpEvent, type HttpRequest, type HttpResult } from '../middleware/http';

/**
 * The approvals function. Two callers, told apart by the event's shape:
 * - the saga's WaitForApproval task (`{ task: "RequestApproval", actionId, taskToken }`, no
 *   routeKey), which stores the approval and returns; the saga waits for the callback;
 * - API Gateway (events with a `routeKey`): list, preview and decide.
 * Task tokens arrive only through the first; no route accepts or returns one.
 */

export const RequestApprovalTaskSchema = z
  .object({
    task: z.literal('RequestApproval'),
    actionId: z.string().regex(ActionIdPattern),
    // Step Functions tokens are up to 2,048 characters (SendTaskSuccess's limit).
    taskToken: z.string().min(1).max(2048),
  })
  .strict();

/** A task payload that does not match the contract: a bug in the ASL, never retried. */
export class ApprovalTaskInvalidError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApprovalTaskInvalidError';
  }
}

// Wire shapes live in core/api-schemas so the OpenAPI document is generated from them.
const ListQuery = ApprovalListQuerySchema;
export { DecisionBodySchema };

function violations(error: z.ZodError, where: 'body' | 'query'): Violation[] {
  return error.issues.map((i) => ({ path: where === 'body' ? `/${i.path.join('/')}` : `query:${i.path.join('.') || '(root)'}`, message: i.message }));
}

function principalOf(req: HttpRequest) {
  // The edge guarantees a principal on authenticated routes; this narrows the type.
  if (!req.principal) throw new Error('authenticated route without principal');
  return req.principal;
}

function approvalId(req: HttpRequest): string {
  const id = req.pathParameters.id ?? '';
  if (!ApprovalIdPattern.test(id)) throw notFound(`No approval ${id.slice(0, 40)}.`);
  return id;
}

async function ledger<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    if (error instanceof LedgerThrottledError) throw serviceUnavailable('The ledger is busy; retry shortly.', 1, error);
    throw error;
  }
}

const http = httpApi({
  'GET /v1/approvals': {
    auth: true,
    handle: async (req) => {
      const query = ListQuery.safeParse(req.query);
      if (!query.success) throw badRequest('The query string is invalid.', violations(query.error, 'query'));
      const viewer = principalOf(req);
      // Bound to the caller as well: what one person's inbox shows says nothing about another's.
      const scope: CursorScope = { listing: 'approvals', caller: viewer.sub, filter: query.data.status };
      const cursors = await cursorCodec();
      const startAfter = query.data.cursor === undefined ? undefined : cursors.open(scope, query.data.cursor, ApprovalIdPattern);
      const deps = await approvalsRuntime();
      const page = await ledger(() =>
        listApprovals(deps, viewer, { status: query.data.status, limit: query.data.limit, ...(startAfter !== undefined ? { startAfter } : {}) }),
      );
      return { status: 200, body: { items: page.items, nextCursor: page.startAfter !== undefined ? cursors.seal(scope, page.startAfter) : null } };
    },
  },

  'GET /v1/approvals/{id}': {
    auth: true,
    handle: async (req) => {
      const id = approvalId(req);
      const deps = await approvalsRuntime();
      return { status: 200, body: await ledger(() => getApprovalPreview(deps, principalOf(req), id)) };
    },
  },

  'POST /v1/approvals/{id}/decision': {
    auth: true,
    handle: async (req) => {
      const id = approvalId(req);
      const body = DecisionBodySchema.safeParse(req.body);
      if (!body.success) throw badRequest('The decision body is invalid.', violations(body.error, 'body'));
      const deps = await approvalsRuntime();
      const result = await ledger(() =>
        decideApproval(deps, {
          approvalId: id,
          voter: principalOf(req),
          decision: body.data.decision,
          planHash: body.data.planHash,
          ...(body.data.comment ? { comment: body.data.comment } : {}),
        }),
      );
      return { status: 200, body: result };
    },
  },
});

async function runTask(event: unknown): Promise<{ approvalId: string; status: string; expiresAt: string }> {
  const parsed = RequestApprovalTaskSchema.safeParse(event);
  if (!parsed.success) {
    // Paths only: the payload holds the task token.
    throw new ApprovalTaskInvalidError(`Invalid approvals task: ${parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ')}`);
  }
  return requestApproval(await approvalsRuntime(), { actionId: parsed.data.actionId, taskToken: parsed.data.taskToken });
}

function isHttpEvent(event: unknown): event is HttpEvent {
  return typeof event === 'object' && event !== null && typeof (event as { routeKey?: unknown }).routeKey === 'string';
}

/** Lambda entry point: API Gateway events go to the routes, anything else must be the saga task. */
export const handler = middy<unknown, unknown>().use(boundedErrors()).handler(async (event: unknown, context: Context): Promise<HttpResult | { approvalId: string; status: string; expiresAt: string }> => {
  if (isHttpEvent(event)) return http(event, context);
  return runTask(event);
});
