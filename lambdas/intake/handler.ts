import type { z } from 'zod';
import { actionDetailView, actionView, canView } from '../actions/view';
import { listAllActions, listedActionView } from '../actions/list-all';
import { ActionListQuerySchema, CancelBodySchema, LimitsQuerySchema, MetricsQuerySchema, ToolsQuerySchema } from '../api/requests';
import { cancelAction } from '../actions/cancel';
import { actionsProblem } from '../actions/http';
import { observabilityProblem } from '../observability/http';
import { readKpis } from '../observability/metrics-view';
import { intakeDeps } from '../composition/aws';
import type { IntakeFunctionDeps, Lazy } from '../composition/deps';
import { bodyViolations, errorToResult, httpApi, queryViolations, type HttpRequest, type RouteTable } from '../middleware/http';
import type { HttpAnswer, McpBackend } from '../mcp/server';
import type { Principal } from '../shared/principal';
import { annotate, tracer } from '../middleware/powertools';
import type { CursorScope } from '../shared/cursor';
import { ActionIdPattern } from '../shared/ids';
import { badRequest, notFound } from '../shared/problem';
import { toolCatalog } from '../tools/catalog';
import { functionToolExport } from '../tools/function-calling';
import { admitRequest } from '../limits/http';
import { rateRequestOf } from '../limits/rate-limits';
import { intakeProblem, postAction } from './http';
import { askedWaitMs, awaitChange, previewDecision } from './intake';
import { createHalt, haltView, listHalts, resumeHalt } from '../guardrails/halts';
import { guardrailProblem } from '../guardrails/http';
import { createDelegation, delegationView, listDelegations, revokeDelegation } from '../delegations/delegations';

/** The intake function: the agent-facing front door (tools, actions, decisions). */

/**
 * The MCP SDK (a third of this bundle) is evaluated on the first /mcp request, not at every
 * cold start: most instances only serve /v1 (bench/cold-start.ts measures the difference).
 */
const mcpHttp = () => import('../mcp/http');

/** The OpenAPI document's builder (and the response schemas only it uses), loaded when a client fetches it. */
const openApi = () => import('../api/openapi');

function principalOf(req: HttpRequest) {
  // The edge guarantees a principal on authenticated routes; this narrows the type.
  if (!req.principal) throw new Error('authenticated route without principal');
  return req.principal;
}

/**
 * `GET /v1/actions?scope=all`: every principal's actions, for auditors. The cursor is bound to
 * the filters as sent (a default `since` moves with the clock, the cursor must not break).
 */
async function listAll(rt: IntakeFunctionDeps, principal: Principal, query: z.infer<typeof ActionListQuerySchema>, req: HttpRequest) {
  const filter = JSON.stringify(['all', query.status ?? '', query.tool ?? '', query.principal ?? '', query.since ?? '', query.until ?? '']);
  const scope: CursorScope = { listing: 'actions', caller: principal.sub, filter };
  // The composition's clock (tests inject it), the one cancel reads too.
  const deps = { actions: rt.actions, accessLog: rt.accessLog, tools: rt.tools, now: rt.cancel.now, logger: req.logger };
  // The role is checked (and a refusal recorded) before the cursor is opened.
  const cursors = await rt.cursors();
  const page = await listAllActions(deps, principal, {
    limit: query.limit,
    ...(query.status ? { status: query.status } : {}),
    ...(query.tool ? { tool: query.tool } : {}),
    ...(query.principal ? { principal: query.principal } : {}),
    ...(query.since ? { since: query.since } : {}),
    ...(query.until ? { until: query.until } : {}),
    ...(query.cursor !== undefined ? { cursor: () => cursors.open(scope, query.cursor!, ActionIdPattern) } : {}),
  });
  return {
    status: 200,
    body: { items: page.items.map((a) => listedActionView(a, principal, rt.tools)), nextCursor: page.lastEvaluated ? cursors.seal(scope, page.lastEvaluated) : null },
  };
}

/**
 * The agent a request is tracked as: the verified agent its token names, else the name the
 * body declares (self-declared: a baseline key, never an identity), bounded.
 */
function agentOf(principal: Principal, body: unknown): { agent: string; verified: boolean } {
  if (principal.agent !== undefined) return { agent: principal.agent, verified: true };
  const name = (body as { agent?: { name?: unknown } } | null)?.agent?.name;
  return { agent: typeof name === 'string' && name.length > 0 && name.length <= 128 ? name : 'unnamed', verified: false };
}

/** Counts one POST /v1/actions for the anomaly guard: in memory; I/O only on an anomaly. */
async function observeAgent(rt: IntakeFunctionDeps, req: HttpRequest, outcome: { denied: boolean; retry: boolean; spend: boolean }): Promise<void> {
  if (!rt.anomaly || !req.principal) return;
  await rt.anomaly.record({
    ...agentOf(req.principal, req.body),
    principal: req.principal.sub,
    denied: outcome.denied,
    retry: outcome.retry,
    spendMinor: outcome.spend && !outcome.retry ? rt.anomaly.spendOf(req.body) : 0,
  });
}

/** The intake function's handler over `deps` (Lambda: the AWS composition; locally: local.ts). */
export function createIntakeHandler(deps: Lazy<IntakeFunctionDeps>) {
  const table: RouteTable = {
      'GET /healthz': { auth: false, handle: async () => ({ status: 200, body: { status: 'ok' } }) },

      // Public like the health check: the contract is no secret and clients fetch it before they have a token.
      'GET /openapi.json': { auth: false, handle: async () => ({ status: 200, body: (await openApi()).openApiDocument() }) },

      'GET /v1/tools': {
        auth: true,
        handle: async (req) => {
          const query = ToolsQuerySchema.safeParse(req.query);
          if (!query.success) throw badRequest('The query string is invalid.', queryViolations(query.error));
          const { tools } = await deps();
          const format = query.data.format;
          return { status: 200, body: format ? functionToolExport(tools, format) : { tools: toolCatalog(tools) } };
        },
      },

      'POST /v1/actions': {
        auth: true,
        handle: async (req) => {
          const rt = await deps();
          let res: Awaited<ReturnType<typeof postAction>>;
          try {
            res = await postAction(
              {
                principal: principalOf(req),
                idempotencyKey: req.headers['idempotency-key'],
                body: req.body,
                prefer: req.headers.prefer,
                traceId: tracer.getRootXrayTraceId() ?? req.requestId,
              },
              { ...rt, config: rt.intake, logger: req.logger },
            );
          } catch (error) {
            // A refused request (bad input, halted, conflict) counts as a denial for the agent's baseline.
            await observeAgent(rt, req, { denied: true, retry: false, spend: false });
            throw error;
          }
          await observeAgent(rt, req, { denied: res.status === 403, retry: res.headers?.['idempotent-replayed'] === 'true', spend: res.status < 300 });
          const body = res.body as { id?: unknown; actionId?: unknown; status?: unknown } | null;
          const id = body?.id ?? body?.actionId;
          const tool = (req.body as { tool?: unknown } | null)?.tool;
          // The tool only when the registry knows it: annotations are indexed, never free text.
          const known = typeof tool === 'string' && rt.tools.find(tool) ? tool : undefined;
          if (typeof id === 'string') annotate({ actionId: id, tool: known ?? 'plan', outcome: typeof body?.status === 'string' ? body.status : res.status === 403 ? 'denied' : String(res.status) });
          return res;
        },
      },

      'POST /v1/actions/{id}/cancel': {
        auth: true,
        handle: async (req) => {
          const id = req.pathParameters.id ?? '';
          if (!ActionIdPattern.test(id)) throw notFound(`No action ${id.slice(0, 40)}.`);
          const body = CancelBodySchema.safeParse(req.body === undefined ? {} : req.body);
          if (!body.success) throw badRequest('The cancel body is invalid.', bodyViolations(body.error));
          const rt = await deps();
          annotate({ actionId: id });
          const outcome = await cancelAction({ ...rt.cancel, logger: req.logger }, principalOf(req), id, body.data.reason ? { reason: body.data.reason } : {});
          return { status: outcome.state === 'cancelled' ? 200 : 202, body: actionDetailView(outcome.action, await rt.steps.listSteps(id)) };
        },
      },

      'POST /v1/decisions': {
        auth: true,
        handle: async (req) => ({ status: 200, body: await previewDecision({ principal: principalOf(req), body: req.body }, await deps()) }),
      },

      'GET /v1/actions/{id}': {
        auth: true,
        handle: async (req) => {
          const id = req.pathParameters.id ?? '';
          if (!ActionIdPattern.test(id)) throw notFound(`No action ${id.slice(0, 40)}.`);
          const rt = await deps();
          let action = await rt.actions.getAction(id);
          if (!action || !canView(principalOf(req), action)) throw notFound(`No action ${id}.`);
          annotate({ actionId: id });
          // `Prefer: wait=N`: a long poll, answered when the status changes (or the receipt of an end is written).
          const waitMs = askedWaitMs(req.headers.prefer, rt.intake);
          if (waitMs === undefined) return { status: 200, body: actionDetailView(action, await rt.steps.listSteps(id)) };
          action = await awaitChange(rt, action, Date.now() + waitMs);
          return { status: 200, headers: { 'preference-applied': `wait=${Math.ceil(waitMs / 1000)}` }, body: actionDetailView(action, await rt.steps.listSteps(id)) };
        },
      },

      'GET /v1/limits': {
        auth: true,
        handle: async (req) => {
          const query = LimitsQuerySchema.safeParse(req.query);
          if (!query.success) throw badRequest('The query string is invalid.', queryViolations(query.error));
          const rt = await deps();
          const { agent, tool } = query.data;
          if (tool !== undefined && !rt.tools.find(tool)) {
            throw badRequest(`Unknown tool "${tool.slice(0, 100)}".`, [{ path: 'query:tool', message: 'not a tool GET /v1/tools lists' }]);
          }
          // The quotas an action with this agent and tool would be counted by.
          // A token naming a verified agent is counted as that agent whatever `agent` says.
          const principal = principalOf(req);
          const request = rateRequestOf(principal.sub, { ...(agent ? { agent: { name: agent } } : {}), ...(tool ? { tool } : {}) }, {
            countsTools: true,
            isTool: () => true,
            verifiedAgent: principal.agent,
          });
          // A kill-switch holder also sees the budget their halt calls count against.
          const killSwitch = rt.rateLimiter.killSwitchRole !== undefined && principal.roles.includes(rt.rateLimiter.killSwitchRole);
          return { status: 200, body: { policies: await rt.rateLimiter.quotas(request, { killSwitch }) } };
        },
      },

      'GET /v1/actions': {
        auth: true,
        handle: async (req) => {
          const query = ActionListQuerySchema.safeParse(req.query);
          if (!query.success) throw badRequest('The query string is invalid.', queryViolations(query.error));
          const principal = principalOf(req);
          const rt = await deps();
          if (query.data.scope === 'all') return listAll(rt, principal, query.data, req);
          const onlyAll = (['tool', 'principal', 'since', 'until'] as const).filter((k) => query.data[k] !== undefined);
          if (onlyAll.length > 0) throw badRequest('The query string is invalid.', onlyAll.map((k) => ({ path: `query:${k}`, message: 'only with scope=all' })));
          // A cursor continues one caller's listing with one filter; the page size may change.
          const scope: CursorScope = { listing: 'actions', caller: principal.sub, filter: query.data.status ?? '' };
          const cursors = await rt.cursors();
          const startAfter = query.data.cursor === undefined ? undefined : cursors.open(scope, query.data.cursor, ActionIdPattern);
          const page = await rt.actions.listActions({
            principalSub: principal.sub,
            limit: query.data.limit,
            ...(query.data.status ? { status: query.data.status } : {}),
            ...(startAfter !== undefined ? { startAfter } : {}),
          });
          return {
            status: 200,
            body: { items: page.items.map((a) => actionView(a)), nextCursor: page.lastEvaluated ? cursors.seal(scope, page.lastEvaluated) : null },
          };
        },
      },

      // The kill switch (guardrails/halts.ts): only the limits file's killSwitch.role may use it.
      'GET /v1/halts': {
        auth: true,
        handle: async (req) => ({ status: 200, body: { items: (await listHalts((await deps()).halts, principalOf(req))).map(haltView) } }),
      },

      'POST /v1/halts': {
        auth: true,
        handle: async (req) => {
          const rt = await deps();
          const halt = await createHalt(rt.halts, principalOf(req), req.body);
          // This function enforces it at once; the others within killSwitch.propagationSeconds.
          rt.guardrails.halts.invalidate();
          return { status: 201, headers: { location: `/v1/halts/${halt.id}` }, body: haltView(halt) };
        },
      },

      'DELETE /v1/halts/{id}': {
        auth: true,
        handle: async (req) => {
          const rt = await deps();
          const halt = await resumeHalt(rt.halts, principalOf(req), req.pathParameters.id ?? '', req.body);
          rt.guardrails.halts.invalidate();
          return { status: 200, body: haltView(halt) };
        },
      },

      // Delegations (delegations/delegations.ts): a principal's own; an agent's token is refused.
      'GET /v1/delegations': {
        auth: true,
        handle: async (req) => {
          const rt = await deps();
          const now = rt.delegationRoutes.now();
          return { status: 200, body: { items: (await listDelegations(rt.delegationRoutes, principalOf(req))).map((d) => delegationView(d, now)) } };
        },
      },

      'POST /v1/delegations': {
        auth: true,
        handle: async (req) => {
          const rt = await deps();
          const delegation = await createDelegation(rt.delegationRoutes, principalOf(req), req.body);
          return { status: 201, headers: { location: `/v1/delegations/${delegation.id}` }, body: delegationView(delegation, rt.delegationRoutes.now()) };
        },
      },

      'DELETE /v1/delegations/{id}': {
        auth: true,
        handle: async (req) => {
          const rt = await deps();
          const { delegation, stopped } = await revokeDelegation({ ...rt.delegationRoutes, logger: req.logger }, principalOf(req), req.pathParameters.id ?? '', req.body);
          return { status: 200, body: { ...delegationView(delegation, rt.delegationRoutes.now()), stopped } };
        },
      },

      // Local runtime only (routes.ts marks it): in AWS the KPIs are on the CloudWatch dashboard.
      'GET /v1/metrics': {
        auth: true,
        handle: async (req) => {
          const query = MetricsQuerySchema.safeParse(req.query);
          if (!query.success) throw badRequest('The query string is invalid.', queryViolations(query.error));
          const rt = await deps();
          return { status: 200, body: await readKpis(principalOf(req), query.data.since, rt.metricsReader, new Date()) };
        },
      },
  };

  /**
   * MCP's tools/call runs these very routes (not a copy of what they do), so an MCP call meets
   * every check, limit and problem an HTTP call meets; a thrown error becomes the problem
   * document the HTTP client would have received.
   */
  const backend =
    (req: HttpRequest) =>
    (principal: Principal): McpBackend => {
      const run = async (routeKey: string, part: Partial<HttpRequest>): Promise<HttpAnswer> => {
        const route = table[routeKey]!;
        const inner: HttpRequest = { ...req, routeKey, method: routeKey.split(' ')[0]!, headers: {}, pathParameters: {}, query: {}, body: undefined, principal, ...part };
        delete inner.rawBody;
        try {
          // Counted like the HTTP route it runs: a looping agent over MCP meets the same limits.
          if (routeKey === 'POST /v1/actions') {
            const rt = await deps();
            await admitRequest({ limiter: rt.rateLimiter, tools: rt.tools }, { routeKey, principal, body: inner.body, logger: req.logger });
          }
          const res = await route.handle(inner);
          return { status: res.status, headers: res.headers ?? {}, body: res.body };
        } catch (error) {
          const result = errorToResult(error, req.requestId, req.logger, (e) => intakeProblem(e) ?? actionsProblem(e) ?? guardrailProblem(e) ?? observabilityProblem(e));
          return { status: result.statusCode ?? 500, headers: (result.headers ?? {}) as Record<string, string>, body: JSON.parse(String(result.body ?? 'null')) };
        }
      };
      return {
        postAction: (body, idempotencyKey) =>
          run('POST /v1/actions', { path: '/v1/actions', body, headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey } }),
        getAction: (id) => run('GET /v1/actions/{id}', { path: `/v1/actions/${id}`, pathParameters: { id } }),
        listActions: (query) => run('GET /v1/actions', { path: '/v1/actions', query }),
        cancelAction: (id) => run('POST /v1/actions/{id}/cancel', { path: `/v1/actions/${id}/cancel`, pathParameters: { id }, body: {}, headers: { 'content-type': 'application/json' } }),
      };
    };

  table['POST /mcp'] = {
    auth: false, // verified in serveMcp: its 401 must name the resource metadata (see mcp/http.ts)
    rawBody: true,
    handle: async (req) => {
      const rt = await deps();
      const { serveMcp } = await mcpHttp();
      return serveMcp(
        req,
        { tools: rt.tools, tokens: rt.tokens, ...(rt.mcpAllowedHosts ? { allowedHosts: rt.mcpAllowedHosts } : {}), ...(rt.consoleUrl ? { consoleUrl: rt.consoleUrl } : {}), ...(rt.mcpConformanceFixtures ? { conformanceFixtures: true } : {}) },
        backend(req),
      );
    },
  };
  const metadata = { auth: false, handle: async (req: HttpRequest) => (await mcpHttp()).protectedResourceMetadata(req, (await deps()).tokens) };
  table['GET /.well-known/oauth-protected-resource'] = metadata;
  table['GET /.well-known/oauth-protected-resource/mcp'] = metadata;

  return httpApi(table, {
    problems: (error) => intakeProblem(error) ?? actionsProblem(error) ?? guardrailProblem(error) ?? observabilityProblem(error),
    admit: async (req) => admitRequest(await deps().then((rt) => ({ limiter: rt.rateLimiter, tools: rt.tools })), req),
  });
}

/** Lambda entry point. */
export const handler = createIntakeHandler(intakeDeps);
