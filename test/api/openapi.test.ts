import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ActionRecord, StoredDecision } from '../../lambdas/actions/action';
import { actionView } from '../../lambdas/actions/view';
import {
  AcceptedActionSchema,
  ActionPageSchema,
  ActionViewSchema,
  ApprovalPreviewSchema,
  PolicyDeniedProblemSchema,
  PreviewStepSchema,
  VoteSchema,
} from '../../lambdas/api/schemas';
import { approvalPreview, voteView } from '../../lambdas/approvals/preview';
import { acceptedBody } from '../../lambdas/intake/http';
import { toolRegistry } from '../../lambdas/tools/registry';
import { buildOpenApiDocument, LOCAL_PORT, openApiDocument, renderOpenApi, type JsonObject } from '../../lambdas/api/openapi';
import { ProblemType } from '../../lambdas/shared/problem';
import { routes, routeKey } from '../../lambdas/api/routes';
import type { ApprovalRecord, VoteRecord } from '../../lambdas/ports/approvals';

const DOC_PATH = join(import.meta.dirname, '..', '..', 'docs', 'openapi.json');
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

const doc = openApiDocument();
const paths = doc.paths as Record<string, Record<string, JsonObject>>;

/** Every operation in the document with its route key. */
function operations(): { key: string; path: string; op: JsonObject }[] {
  return Object.entries(paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => (METHODS as readonly string[]).includes(m))
      .map(([m, op]) => ({ key: `${m.toUpperCase()} ${path}`, path, op })),
  );
}

/** Resolves a local JSON pointer (`#/components/schemas/Action`) in the document. */
function resolve(pointer: string): unknown {
  if (!pointer.startsWith('#/')) return undefined;
  let node: unknown = doc;
  for (const raw of pointer.slice(2).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !Object.prototype.hasOwnProperty.call(node, seg)) return undefined;
    node = (node as JsonObject)[seg];
  }
  return node;
}

function deref<T = JsonObject>(node: unknown): T {
  let n = node as JsonObject;
  while (typeof n.$ref === 'string') n = resolve(n.$ref) as JsonObject;
  return n as T;
}

function collectRefs(node: unknown, at: string, out: { at: string; ref: string }[] = []) {
  if (Array.isArray(node)) node.forEach((v, i) => collectRefs(v, `${at}/${i}`, out));
  else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      // Tool schemas inside examples are data, but only `$ref` strings in schema position matter here.
      if (k === '$ref' && typeof v === 'string') out.push({ at, ref: v });
      else collectRefs(v, `${at}/${k}`, out);
    }
  }
  return out;
}

describe('docs/openapi.json', () => {
  it('equals a fresh generation', () => {
    const checkedIn = readFileSync(DOC_PATH, 'utf8');
    expect(checkedIn === renderOpenApi(), 'docs/openapi.json is stale: run `npm run openapi` and commit the result').toBe(true);
  });

  it('is generated deterministically', () => {
    expect(renderOpenApi(buildOpenApiDocument())).toBe(renderOpenApi(buildOpenApiDocument()));
  });
});

describe('the OpenAPI document', () => {
  it('documents exactly the routes in routes.ts', () => {
    expect(operations().map((o) => o.key).sort()).toEqual(routes.map(routeKey).sort());
  });

  it('refuses to build when a route has no operation', () => {
    expect(() => buildOpenApiDocument([...routes, { method: 'GET', path: '/v1/secret', fn: 'intake', auth: true }])).toThrow(/undocumented GET \/v1\/secret/);
  });

  it('is structurally valid OpenAPI 3.1', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.jsonSchemaDialect).toBe('https://json-schema.org/draft/2020-12/schema');
    const info = doc.info as JsonObject;
    expect(typeof info.title).toBe('string');
    expect(typeof info.version).toBe('string');
    const components = doc.components as Record<string, Record<string, JsonObject>>;
    expect(Object.keys(components.schemas ?? {}).length).toBeGreaterThan(0);
    for (const key of Object.keys(components)) {
      expect(['schemas', 'responses', 'parameters', 'examples', 'requestBodies', 'headers', 'securitySchemes', 'links', 'callbacks', 'pathItems']).toContain(key);
      for (const name of Object.keys(components[key]!)) expect(name).toMatch(/^[a-zA-Z0-9.\-_]+$/);
    }
    const ids = new Set<string>();
    for (const { key, path, op } of operations()) {
      expect(path, key).toMatch(/^\//);
      expect(typeof op.operationId, key).toBe('string');
      expect(ids.has(op.operationId as string), `duplicate operationId ${op.operationId as string}`).toBe(false);
      ids.add(op.operationId as string);
      const responses = op.responses as Record<string, JsonObject>;
      expect(Object.keys(responses).some((s) => /^2\d\d$/.test(s)), `${key} has a success response`).toBe(true);
      for (const [status, res] of Object.entries(responses)) {
        expect(status, key).toMatch(/^[1-5]\d\d$/);
        expect(typeof deref(res).description, `${key} ${status}`).toBe('string');
      }
      // Every {param} in the path is a required path parameter, and no other path parameter exists.
      const params = ((op.parameters ?? []) as JsonObject[]).map((p) => deref(p));
      const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      expect(params.filter((p) => p.in === 'path').map((p) => p.name).sort(), key).toEqual(inPath.sort());
      for (const p of params) {
        expect(['query', 'header', 'path', 'cookie'], key).toContain(p.in);
        if (p.in === 'path') expect(p.required, key).toBe(true);
        expect(p.schema, `${key} ${String(p.name)}`).toBeTypeOf('object');
      }
    }
  });

  it('has no $ref that does not resolve', () => {
    const refs = collectRefs(doc, '#');
    expect(refs.length).toBeGreaterThan(20);
    const broken = refs.filter((r) => resolve(r.ref) === undefined);
    expect(broken).toEqual([]);
  });

  it('requires a bearer JWT everywhere except /healthz and /openapi.json', () => {
    const schemes = (doc.components as Record<string, Record<string, JsonObject>>).securitySchemes!;
    expect(schemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    for (const route of routes) {
      const op = paths[route.path]![route.method.toLowerCase()]!;
      expect(op.security, routeKey(route)).toEqual(route.auth || route.verifiesOwnToken ? [{ bearerAuth: [] }] : []);
      if (route.auth || route.verifiesOwnToken) expect(Object.keys(op.responses as object), routeKey(route)).toContain('401');
    }
    expect(routes.filter((r) => !r.auth && !r.verifiesOwnToken).map((r) => r.path).sort()).toEqual([
      '/.well-known/oauth-protected-resource',
      '/.well-known/oauth-protected-resource/mcp',
      '/healthz',
      '/openapi.json',
    ]);
    // Only MCP checks its own token (its 401 names the RFC 9728 metadata).
    expect(routes.filter((r) => r.verifiesOwnToken).map(routeKey)).toEqual(['POST /mcp']);
  });

  it('documents the Idempotency-Key and Prefer headers and the idempotency semantics on POST /v1/actions', () => {
    const op = paths['/v1/actions']!.post!;
    const headers = ((op.parameters ?? []) as JsonObject[]).map((p) => deref(p)).filter((p) => p.in === 'header');
    expect(headers.find((h) => h.name === 'Idempotency-Key')).toMatchObject({ required: true });
    expect(headers.find((h) => h.name === 'Prefer')).toMatchObject({ required: false });
    const text = op.description as string;
    expect(text).toMatch(/at least 24 hours/);
    expect(text).toMatch(/Idempotent-Replayed: true/);
    for (const t of ['idempotency-key-missing', 'idempotency-key-reused', 'idempotency-in-progress']) expect(text).toContain(`urn:airlock:problem:${t}`);
    expect(text).toMatch(/`travel\.book_flight` \| commit/);
    const responses = op.responses as Record<string, JsonObject>;
    expect(Object.keys(responses).sort()).toEqual(['200', '202', '400', '401', '403', '409', '413', '415', '422', '429', '500', '503']);
    expect(responses['200']!.headers).toMatchObject({ Location: expect.anything(), 'Preference-Applied': expect.anything(), 'Idempotent-Replayed': expect.anything() });
    expect(Object.keys(responses['202']!.headers as object)).toContain('Location');
    expect(Object.keys(responses['409']!.headers as object)).toContain('Retry-After');
    expect(Object.keys(responses['503']!.headers as object)).toContain('Retry-After');
    expect(deref(op.requestBody).content).toMatchObject({ 'application/json': { schema: { $ref: '#/components/schemas/ActionEnvelope' } } });
  });

  it('gives every error response the problem schema and the problem types it can carry', () => {
    const known = new Set<string>(Object.values(ProblemType));
    for (const { key, op } of operations()) {
      for (const [status, res] of Object.entries(op.responses as Record<string, JsonObject>)) {
        if (Number(status) < 400) continue;
        if (MCP_JSON_RPC_4XX[key]?.includes(Number(status)) && !(res.content as JsonObject)['application/problem+json']) continue;
        const schema = (res.content as Record<string, { schema: JsonObject }>)['application/problem+json']?.schema;
        expect(schema, `${key} ${status}`).toBeDefined();
        // One alternative per problem schema the status carries (a policy denial has its own members).
        const alternatives = (schema!.oneOf as JsonObject[] | undefined) ?? [schema!];
        const seen = new Set<string>();
        for (const alternative of alternatives) {
          const [base, narrowed] = alternative.allOf as JsonObject[];
          expect(base!.$ref, `${key} ${status}`).toMatch(/^#\/components\/schemas\/(Policy[A-Za-z]+)?Problem$/);
          const types = ((narrowed!.properties as JsonObject).type as { enum: string[] }).enum;
          expect(types.length, `${key} ${status}`).toBeGreaterThan(0);
          for (const t of types) {
            expect(known.has(t), `${key} ${status} ${t}`).toBe(true);
            expect(seen.has(t), `${key} ${status} ${t} in one alternative only`).toBe(false);
            seen.add(t);
          }
        }
      }
      expect(Object.keys(op.responses as object), key).toContain('500');
    }
    const schemaOf = (path: string, method: string, status: string) =>
      ((paths[path]![method]!.responses as Record<string, JsonObject>)[status]!.content as Record<string, { schema: JsonObject }>)['application/problem+json']!.schema;
    const statusOf = (path: string, method: string, status: string) => (schemaOf(path, method, status).allOf as JsonObject[])[1]!;
    // A denial is checked against its own schema; a halt or a missing delegation (nothing recorded) against the plain one.
    expect(schemaOf('/v1/actions', 'post', '403').oneOf).toEqual([
      { allOf: [{ $ref: '#/components/schemas/PolicyDeniedProblem' }, { type: 'object', properties: { type: { enum: [ProblemType.policyDenied, ProblemType.spendCapExceeded] }, status: { const: 403 } } }] },
      { allOf: [{ $ref: '#/components/schemas/Problem' }, { type: 'object', properties: { type: { enum: [ProblemType.halted, ProblemType.delegationRequired, ProblemType.delegationBudgetExceeded] }, status: { const: 403 } } }] },
    ]);
    expect(statusOf('/v1/approvals/{id}/decision', 'post', '409').properties).toEqual({
      type: { enum: [ProblemType.approvalClosed, ProblemType.approvalExpired, ProblemType.planMismatch, ProblemType.voteConflict] },
      status: { const: 409 },
    });
    const problem = (doc.components as Record<string, Record<string, JsonObject>>).schemas!.Problem!;
    expect(Object.keys(problem.properties as object)).toEqual(expect.arrayContaining(['type', 'title', 'status', 'detail', 'violations', 'retryAfter']));
  });

  it('takes query parameters and bodies from the zod schemas the handlers parse with', () => {
    const list = (paths['/v1/actions']!.get!.parameters as JsonObject[]).map((p) => p.name);
    expect(list).toEqual(['scope', 'status', 'tool', 'principal', 'since', 'until', 'limit', 'cursor']);
    const approvals = paths['/v1/approvals']!.get!.parameters as JsonObject[];
    expect(approvals.find((p) => p.name === 'status')).toMatchObject({ required: false, schema: { default: 'pending' } });
    const decision = (doc.components as Record<string, Record<string, JsonObject>>).schemas!.ApprovalDecision!;
    expect(decision).toMatchObject({ required: ['decision', 'planHash'], additionalProperties: false });
  });
});

/**
 * The 4xx each operation can answer, read from the code paths (server.ts, http.ts, the
 * handlers and the core functions they call), kept here by hand so that the generator
 * cannot silently drop or invent one. test/e2e/contract.test.ts provokes each over HTTP.
 */
const EXPECTED_4XX: Record<string, number[]> = {
  // The local server caps every request body (413); a GET's body is otherwise ignored.
  // Every authenticated /v1 route is counted by the rate limits (429).
  'GET /healthz': [413],
  'GET /openapi.json': [413],
  'GET /v1/tools': [400, 401, 413, 429],
  'POST /v1/actions': [400, 401, 403, 409, 413, 415, 422, 429],
  'GET /v1/actions': [400, 401, 403, 413, 429],
  'GET /v1/actions/{id}': [401, 404, 413, 429],
  'POST /v1/actions/{id}/cancel': [400, 401, 403, 404, 409, 413, 415, 429],
  'GET /v1/actions/{id}/receipt': [401, 404, 413, 429],
  'POST /v1/decisions': [400, 401, 403, 413, 415, 429],
  'GET /v1/limits': [400, 401, 413, 429],
  'GET /v1/approvals': [400, 401, 413, 429],
  'GET /v1/approvals/{id}': [401, 404, 413, 429],
  'POST /v1/approvals/{id}/decision': [400, 401, 403, 404, 409, 413, 415, 429],
  'GET /v1/halts': [401, 403, 413, 429],
  'POST /v1/halts': [400, 401, 403, 413, 415, 429],
  'POST /v1/reconciliations': [400, 401, 403, 413, 415, 429],
  'DELETE /v1/halts/{id}': [400, 401, 403, 404, 409, 413, 415, 429],
  'GET /v1/delegations': [401, 413, 429],
  'POST /v1/delegations': [400, 401, 403, 413, 415, 429],
  'DELETE /v1/delegations/{id}': [400, 401, 403, 404, 413, 415, 429],
  'GET /v1/metrics': [400, 401, 403, 413, 429],
  'POST /mcp': [400, 401, 403, 406, 413, 415],
  'GET /.well-known/oauth-protected-resource': [413],
  'GET /.well-known/oauth-protected-resource/mcp': [413],
};

/** The 4xx MCP answers as JSON-RPC errors (its protocol's error format) rather than problem documents. */
const MCP_JSON_RPC_4XX: Record<string, number[]> = { 'POST /mcp': [400, 403, 406, 413, 415] };

describe('every operation documents its errors and its security', () => {
  it.each(routes.map((r) => [routeKey(r), r] as const))('%s', (key, route) => {
    const op = paths[route.path]![route.method.toLowerCase()]!;
    const statuses = Object.keys(op.responses as object).map(Number);
    expect(statuses.filter((s) => s >= 400 && s < 500), key).toEqual(EXPECTED_4XX[key]);
    // Every route can fail on the server or be turned away while it is busy or shutting down.
    expect(statuses.filter((s) => s >= 500), key).toEqual([500, 503]);
    expect(op.security, key).toEqual(route.auth || route.verifiesOwnToken ? [{ bearerAuth: [] }] : []);
    for (const status of statuses.filter((s) => s >= 400)) {
      const res = (op.responses as Record<string, JsonObject>)[String(status)]!;
      if (MCP_JSON_RPC_4XX[key]?.includes(status)) {
        expect((res.content as Record<string, { schema: JsonObject }>)['application/json']!.schema.$ref, `${key} ${status}`).toBe('#/components/schemas/JsonRpcMessage');
        // 413 also comes from the shared edge before the function, as a problem document.
        expect(Object.keys(res.content as object).sort(), `${key} ${status}`).toEqual(status === 413 ? ['application/json', 'application/problem+json'] : ['application/json']);
        continue;
      }
      expect(Object.keys(res.content as object), `${key} ${status}`).toEqual(['application/problem+json']);
      // Airlock's own URNs, or a type IANA registers (quota-exceeded).
      expect(res.description, `${key} ${status}`).toMatch(/`(urn:airlock:problem:[a-z-]+|https:\/\/iana\.org\/assignments\/http-problem-types#[a-z-]+)`: ./);
    }
    const headersOf = (status: number) => Object.keys(((op.responses as Record<string, JsonObject>)[String(status)]!.headers ?? {}) as object);
    if (route.auth || route.verifiesOwnToken) expect(headersOf(401), key).toContain('WWW-Authenticate');
    expect(headersOf(503), key).toContain('Retry-After');
  });

  it('lists the tables above for exactly the routes there are', () => {
    expect(Object.keys(EXPECTED_4XX).sort()).toEqual(routes.map(routeKey).sort());
  });
});

describe('servers and what answers outside the paths', () => {
  it('names the local runtime and a templated API Gateway URL', async () => {
    const { DEFAULT_PORT } = await import('../../local/server');
    expect(LOCAL_PORT).toBe(DEFAULT_PORT);
    const servers = doc.servers as JsonObject[];
    expect(servers.map((s) => s.url)).toEqual([`http://127.0.0.1:${DEFAULT_PORT}`, 'https://{apiId}.execute-api.{region}.amazonaws.com']);
    const variables = servers[1]!.variables as Record<string, JsonObject>;
    // Every {variable} in the URL has a definition with a default (OpenAPI 3.1 §4.8.6).
    for (const name of [...String(servers[1]!.url).matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!)) expect(variables[name]!.default, name).toEqual(expect.any(String));
  });

  it('declares the 404 and 405 refusals for requests outside the document', () => {
    const unrouted = doc['x-airlock-unrouted'] as Record<string, JsonObject>;
    expect(Object.keys(unrouted)).toEqual(['404', '405']);
    const notAllowed = deref(unrouted['405']);
    expect(Object.keys(notAllowed.headers as object)).toEqual(['Allow']);
    expect(deref((notAllowed.headers as Record<string, unknown>).Allow)).toMatchObject({ required: true });
  });
});

describe('the view functions answer exactly the documented shapes', () => {
  // `.strict()` on the parse: a field the code adds without adding it to the schema fails here
  // (the return types already catch missing or mistyped ones at compile time).
  const at = '2026-01-02T03:04:05.000Z';
  const decision: StoredDecision = {
    outcome: 'require_approval',
    policyIds: ['manager-approval'],
    reasons: ['over the limit'],
    quorum: 1,
    approverRule: 'manager',
    policySetVersion: 'v1',
    evaluationMicros: 150,
    steps: [{ id: 'call', outcome: 'require_approval', policyIds: ['manager-approval'], reasons: ['over the limit'], quorum: 1, approverRule: 'manager' }],
    shadow: [{ file: 'next.cedar', outcome: 'allow', policyIds: [], reasons: [], quorum: 0 }],
    decidedAt: at,
  };
  const action: ActionRecord = {
    id: 'act_01JABCDEFGHJKMNPQRSTVWXYZ0',
    principal: { sub: 'alice', roles: ['Employee'], manager: 'bob' },
    actor: { name: 'agent', model: 'm' },
    envelope: { tool: 'echo.say', arguments: { message: 'hi' }, agent: { name: 'agent', model: 'm' }, reason: 'why' },
    kind: 'single',
    mode: 'execute',
    reason: 'why',
    planHash: 'a'.repeat(64),
    status: 'awaiting_approval',
    statusReason: 'waiting',
    decision,
    approvalIds: ['apr_01JABCDEFGHJKMNPQRSTVWXYZ0'],
    receiptKey: 'receipts/dt=2026-01-02/act_01JABCDEFGHJKMNPQRSTVWXYZ0.json',
    result: { message: 'hi', length: 2 },
    createdAt: at,
    updatedAt: at,
    version: 3,
  };
  const approval: ApprovalRecord = {
    id: 'apr_01JABCDEFGHJKMNPQRSTVWXYZ0',
    actionId: action.id,
    status: 'approved',
    planHash: action.planHash,
    quorum: 1,
    approverRule: 'manager',
    requester: 'alice',
    grantees: [],
    createdAt: at,
    updatedAt: at,
    expiresAt: at,
    outcome: { by: 'bob', reason: 'quorum reached', at },
  };
  const vote: VoteRecord = { approvalId: approval.id, voter: 'bob', decision: 'approve', planHash: action.planHash, comment: 'ok', at };

  it('actionView and the list page', () => {
    ActionViewSchema.strict().parse(actionView(action));
    ActionViewSchema.strict().parse(actionView({ ...action, decision: undefined, reason: undefined, statusReason: undefined }));
    const page = ActionPageSchema.strict().parse({ items: [actionView(action)], nextCursor: null });
    expect(page.items[0]!.steps).toEqual([{ id: 'call', tool: 'echo.say', status: 'pending' }]);
  });

  it('acceptedBody (202)', () => {
    AcceptedActionSchema.strict().parse(acceptedBody(action));
  });

  it('approval preview, summary and vote', () => {
    const preview = approvalPreview(toolRegistry, action, approval, [vote], { canDecide: false, refusal: 'no', vote: { decision: 'approve', at } }, new Date(at));
    ApprovalPreviewSchema.strict().parse(preview);
    for (const step of preview.steps) PreviewStepSchema.strict().parse(step);
    VoteSchema.strict().parse(voteView(vote));
  });

  it('the policy-denied problem', () => {
    const denied = { type: ProblemType.policyDenied, title: 'Denied by policy', status: 403, detail: 'x', actionId: action.id, policyIds: [], reasons: [], policySetVersion: null };
    PolicyDeniedProblemSchema.parse(denied);
  });
});
