import { actionDetailView, actionView, canView } from '../actions/view';
import { ActionListQuerySchema } from '../api/schemas';
import type { CursorScope } from '../shared/cursor';
import { toolCatalog } from '../tools/catalog';
import { ActionIdPattern } from '../shared/ids';
import { acceptAction, previewDecision } from './intake';
import { openApiDocument } from '../api/openapi';
import { badRequest, notFound, serviceUnavailable } from '../shared/problem';
import { LedgerThrottledError } from '../ports/ledger';
import { httpApi, type HttpRequest } from '../middleware/http';
import { cursorCodec, runtime } from '../composition/aws';

/** The intake function: the agent-facing front door (tools, actions). */

// The query schema lives with the other wire shapes so the OpenAPI document shows it.
const ListQuery = ActionListQuerySchema;

/** The X-Ray trace root of this invocation, when Lambda runs with tracing. */
function traceRoot(): string | undefined {
  return /Root=([^;]+)/.exec(process.env._X_AMZN_TRACE_ID ?? '')?.[1];
}

function principalOf(req: HttpRequest) {
  // The edge guarantees a principal on authenticated routes; this narrows the type.
  if (!req.principal) throw new Error('authenticated route without principal');
  return req.principal;
}

async function readLedger<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    if (error instanceof LedgerThrottledError) throw serviceUnavailable('The ledger is busy; retry shortly.', 1, error);
    throw error;
  }
}

export const handler = httpApi({
  'GET /healthz': { auth: false, handle: async () => ({ status: 200, body: { status: 'ok' } }) },

  // Public like the health check: the contract is no secret and clients fetch it before they have a token.
  'GET /openapi.json': { auth: false, handle: async () => ({ status: 200, body: openApiDocument() }) },

  'GET /v1/tools': { auth: true, handle: async () => ({ status: 200, body: { tools: toolCatalog() } }) },

  'POST /v1/actions': {
    auth: true,
    handle: async (req) => {
      const rt = await runtime();
      const res = await acceptAction(
        {
          principal: principalOf(req),
          idempotencyKey: req.headers['idempotency-key'],
          body: req.body,
          prefer: req.headers.prefer,
          traceId: traceRoot() ?? req.requestId,
        },
        {
          actions: rt.actions,
          idempotency: rt.idempotency,
          workflow: rt.workflow,
          decider: rt.decider,
          config: rt.intake,
          logger: req.logger,
          ...(rt.steps ? { steps: rt.steps } : {}),
        },
      );
      return { status: res.status, headers: res.headers, body: res.body };
    },
  },

  'POST /v1/decisions': {
    auth: true,
    handle: async (req) => {
      const rt = await runtime();
      const preview = await readLedger(() => previewDecision({ principal: principalOf(req), body: req.body }, { decider: rt.decider }));
      return { status: 200, body: preview };
    },
  },

  'GET /v1/actions/{id}': {
    auth: true,
    handle: async (req) => {
      const id = req.pathParameters.id ?? '';
      if (!ActionIdPattern.test(id)) throw notFound(`No action ${id.slice(0, 40)}.`);
      const rt = await runtime();
      const action = await readLedger(() => rt.actions.getAction(id));
      if (!action || !canView(principalOf(req), action)) throw notFound(`No action ${id}.`);
      const steps = rt.steps ? await readLedger(() => rt.steps!.listSteps(id)) : undefined;
      return { status: 200, body: steps ? actionDetailView(action, steps) : actionView(action) };
    },
  },

  'GET /v1/actions': {
    auth: true,
    handle: async (req) => {
      const query = ListQuery.safeParse(req.query);
      if (!query.success) {
        throw badRequest(
          'The query string is invalid.',
          query.error.issues.map((i) => ({ path: `query:${i.path.join('.') || '(root)'}`, message: i.message })),
        );
      }
      const principal = principalOf(req);
      // A cursor continues one caller's listing with one filter; the page size may change.
      const scope: CursorScope = { listing: 'actions', caller: principal.sub, filter: query.data.status ?? '' };
      const cursors = await cursorCodec();
      const startAfter = query.data.cursor === undefined ? undefined : cursors.open(scope, query.data.cursor, ActionIdPattern);
      const rt = await runtime();
      const page = await readLedger(() =>
        rt.actions.listActions({
          principalSub: principal.sub,
          limit: query.data.limit,
          ...(query.data.status ? { status: query.data.status } : {}),
          ...(startAfter !== undefined ? { startAfter } : {}),
        }),
      );
      return {
        status: 200,
        body: { items: page.items.map((a) => actionView(a)), nextCursor: page.lastEvaluated ? cursors.seal(scope, page.lastEvaluated) : null },
      };
    },
  },
});
