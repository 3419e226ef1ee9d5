import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { ApprovalListQuerySchema, DecisionBodySchema } from '../api/requests';
import type { CursorScope } from '../shared/cursor';
import { decideApproval, getApprovalPreview, listApprovals, requestApproval } from './approvals';
import { ActionIdSchema, ApprovalIdPattern } from '../shared/ids';
import { badRequest, notFound } from '../shared/problem';
import { approvalsDeps } from '../composition/aws';
import type { ApprovalsFunctionDeps, Lazy } from '../composition/deps';
import { bodyViolations, httpApi, queryViolations, type HttpEvent, type HttpRequest, type HttpResult } from '../middleware/http';
import { annotate } from '../middleware/powertools';
import { taskHandler } from '../middleware/task';
import { admitRequest } from '../limits/http';
import { approvalsProblem } from './http';

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
    actionId: ActionIdSchema,
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

// Wire shapes live in api/schemas so the OpenAPI document is generated from them.
export { DecisionBodySchema };

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

/** The approvers' routes. */
function routes(deps: Lazy<ApprovalsFunctionDeps>) {
  return httpApi(
    {
      'GET /v1/approvals': {
        auth: true,
        handle: async (req) => {
          const query = ApprovalListQuerySchema.safeParse(req.query);
          if (!query.success) throw badRequest('The query string is invalid.', queryViolations(query.error));
          const viewer = principalOf(req);
          // Bound to the caller as well: what one person's inbox shows says nothing about another's.
          const scope: CursorScope = { listing: 'approvals', caller: viewer.sub, filter: query.data.status };
          const rt = await deps();
          const cursors = await rt.cursors();
          const startAfter = query.data.cursor === undefined ? undefined : cursors.open(scope, query.data.cursor, ApprovalIdPattern);
          const page = await listApprovals(rt, viewer, { status: query.data.status, limit: query.data.limit, ...(startAfter !== undefined ? { startAfter } : {}) });
          return { status: 200, body: { items: page.items, nextCursor: page.startAfter !== undefined ? cursors.seal(scope, page.startAfter) : null } };
        },
      },

      'GET /v1/approvals/{id}': {
        auth: true,
        handle: async (req) => ({ status: 200, body: await getApprovalPreview(await deps(), principalOf(req), approvalId(req)) }),
      },

      'POST /v1/approvals/{id}/decision': {
        auth: true,
        handle: async (req) => {
          const id = approvalId(req);
          const body = DecisionBodySchema.safeParse(req.body);
          if (!body.success) throw badRequest('The decision body is invalid.', bodyViolations(body.error));
          annotate({ actionId: id.replace(/^apr_/, 'act_') });
          const result = await decideApproval(await deps(), {
            approvalId: id,
            voter: principalOf(req),
            decision: body.data.decision,
            planHash: body.data.planHash,
            ...(body.data.comment ? { comment: body.data.comment } : {}),
          });
          return { status: 200, body: result };
        },
      },
    },
    {
      problems: approvalsProblem,
      nested: true,
      admit: async (req) => admitRequest(await deps().then((rt) => ({ limiter: rt.rateLimiter, tools: rt.tools })), req),
    },
  );
}

/** The saga's RequestApproval task: stores the approval and its task token, then returns; the saga waits for the callback. */
async function runTask(deps: ApprovalsFunctionDeps, event: unknown): Promise<{ approvalId: string; status: string; expiresAt: string }> {
  const parsed = RequestApprovalTaskSchema.safeParse(event);
  if (!parsed.success) {
    // Paths only: the payload holds the task token.
    throw new ApprovalTaskInvalidError(`Invalid approvals task: ${parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ')}`);
  }
  annotate({ actionId: parsed.data.actionId });
  return requestApproval(deps, { actionId: parsed.data.actionId, taskToken: parsed.data.taskToken });
}

function isHttpEvent(event: unknown): event is HttpEvent {
  return typeof event === 'object' && event !== null && typeof (event as { routeKey?: unknown }).routeKey === 'string';
}

/** The approvals function's handler over `deps`: API Gateway events go to the routes, anything else must be the saga task. */
export function createApprovalsHandler(deps: Lazy<ApprovalsFunctionDeps>) {
  const http = routes(deps);
  return taskHandler(async (event: unknown, context: Context): Promise<HttpResult | { approvalId: string; status: string; expiresAt: string }> => {
    if (isHttpEvent(event)) return http(event, context);
    return runTask(await deps(), event);
  });
}

/** Lambda entry point. */
export const handler = createApprovalsHandler(approvalsDeps);
