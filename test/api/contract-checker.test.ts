import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ActionRecord } from '../../lambdas/actions/action';
import { actionView } from '../../lambdas/actions/view';
import { openApiDocument } from '../../lambdas/api/openapi';
import { ProblemType } from '../../lambdas/shared/problem';
import { ContractChecker, ContractViolationError, contractChecker, type ObservedResponse } from '../helpers/contract';

/**
 * The checker every e2e response goes through: it must pass what the document describes and
 * refuse everything else, or drift would go unnoticed. Run against a fresh generation of the
 * document (the checked-in copy is the same; test/unit/openapi.test.ts checks that).
 */
const checker = new ContractChecker(openApiDocument());

const at = '2026-01-02T03:04:05.000Z';
const action: ActionRecord = {
  id: 'act_01JABCDEFGHJKMNPQRSTVWXYZ0',
  principal: { sub: 'alice', roles: ['Employee'], manager: 'bob' },
  actor: { name: 'agent', model: 'm' },
  envelope: { tool: 'echo.say', arguments: { message: 'hi' }, agent: { name: 'agent' } },
  kind: 'single',
  mode: 'execute',
  planHash: 'a'.repeat(64),
  status: 'awaiting_approval',
  decision: {
    outcome: 'require_approval',
    policyIds: ['manager-approval'],
    reasons: ['over the limit'],
    quorum: 1,
    approverRule: 'manager',
    policySetVersion: 'v1',
    evaluationMicros: 150,
    steps: [{ id: 'call', outcome: 'require_approval', policyIds: ['manager-approval'], reasons: ['over the limit'], quorum: 1, approverRule: 'manager' }],
    shadow: [],
    decidedAt: at,
  },
  createdAt: at,
  updatedAt: at,
  version: 1,
};

const json = { 'content-type': 'application/json' };
const problemJson = { 'content-type': 'application/problem+json' };
const getAction = (body: unknown, extra: Partial<ObservedResponse> = {}): ObservedResponse => ({
  method: 'GET',
  path: `/v1/actions/${action.id}`,
  status: 200,
  headers: json,
  body: JSON.stringify(body),
  ...extra,
});
const problem = (status: number, type: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type, title: 't', status, detail: 'd', ...extra });

function violations(observed: ObservedResponse): string[] {
  try {
    checker.check(observed);
    return [];
  } catch (error) {
    if (!(error instanceof ContractViolationError)) throw error;
    return error.problems;
  }
}

describe('the contract checker', () => {
  it('compiles every response of the checked-in document in strict mode', () => {
    expect(contractChecker().compileAll()).toBeGreaterThan(60);
  });

  it('refuses to compile a schema with a keyword a lax validator would ignore (a typo)', () => {
    const doc = structuredClone(openApiDocument()) as { paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: unknown }> }> }>> };
    doc.paths['/healthz']!.get!.responses['200']!.content['application/json']!.schema = { type: 'object', requried: ['status'] };
    const loose = new ContractChecker(doc);
    expect(() => loose.compileAll()).toThrow(/GET \/healthz 200 application\/json: schema does not compile in strict mode/);
  });

  it('passes a response the document describes, and names what it was checked as', () => {
    expect(checker.check(getAction(actionView(action)))).toEqual({ operation: 'GET /v1/actions/{id}', status: '200' });
    expect(checker.check({ method: 'get', path: '/healthz?x=1', status: 200, headers: json, body: '{"status":"ok"}' })).toEqual({ operation: 'GET /healthz', status: '200' });
  });

  it('refuses a member the schema does not list (additionalProperties: false)', () => {
    expect(violations(getAction({ ...actionView(action), internal: 1 }))).toEqual([expect.stringMatching(/^body: must NOT have additional properties \(internal\)/)]);
    const view = actionView(action);
    const step = { ...view.decision!.steps![0]!, grantToken: 'x' };
    // `decision` is nullable, so ajv also reports the null branch it tried.
    expect(violations(getAction({ ...view, decision: { ...view.decision, steps: [step] } }))).toContainEqual(expect.stringMatching(/^body\/decision\/steps\/0: .*\(grantToken\)/));
  });

  it('refuses a missing required member and a wrong type', () => {
    const view = actionView(action);
    const { quorum: _q, ...step } = view.decision!.steps![0]!;
    expect(violations(getAction({ ...view, decision: { ...view.decision, steps: [step] } }))).toContainEqual(expect.stringMatching(/^body\/decision\/steps\/0: must have required property 'quorum'/));
    expect(violations(getAction({ ...view, kind: 'batch' }))).toEqual([expect.stringMatching(/^body\/kind: must be equal to one of the allowed values/)]);
  });

  it('checks formats and patterns', () => {
    expect(violations(getAction({ ...actionView(action), createdAt: 'yesterday' }))).toContainEqual(expect.stringMatching(/^body\/createdAt: must match format "date-time"/));
    expect(violations(getAction({ ...actionView(action), id: 'act_1' }))).toContainEqual(expect.stringMatching(/^body\/id: must match pattern/));
  });

  it('refuses a status the operation does not document', () => {
    expect(violations({ method: 'GET', path: '/healthz', status: 404, headers: problemJson, body: problem(404, ProblemType.notFound) })).toEqual([
      expect.stringMatching(/^status 404 is not documented for GET \/healthz/),
    ]);
    expect(violations({ method: 'GET', path: '/v1/tools', status: 403, headers: problemJson, body: problem(403, ProblemType.forbidden) })).toHaveLength(1);
  });

  it('refuses a content type the response does not list, and a body that is not JSON', () => {
    expect(violations({ method: 'GET', path: '/healthz', status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' })).toEqual([expect.stringMatching(/^content-type "text\/plain" is not documented/)]);
    expect(violations({ method: 'GET', path: '/healthz', status: 200, headers: {}, body: '{"status":"ok"}' })).toEqual([expect.stringMatching(/^content-type undefined/)]);
    const asJson = { method: 'GET', path: '/v1/actions/act_01JABCDEFGHJKMNPQRSTVWXYZ0', status: 404, headers: { ...json, 'content-type': 'application/json' } };
    expect(violations({ ...asJson, body: problem(404, ProblemType.notFound) })).toHaveLength(1);
    expect(violations({ method: 'GET', path: '/healthz', status: 200, headers: json, body: '{"status":' })).toEqual([expect.stringMatching(/^the body is not JSON/)]);
  });

  it('holds a problem to its documented types, its HTTP status and its extension members', () => {
    const base = { method: 'GET', path: '/v1/actions/act_01JABCDEFGHJKMNPQRSTVWXYZ0', status: 404, headers: problemJson };
    expect(violations({ ...base, body: problem(404, ProblemType.notFound) })).toEqual([]);
    expect(violations({ ...base, body: problem(404, ProblemType.validation) })).toEqual([expect.stringMatching(/^body\/type: must be equal to one of the allowed values/)]);
    expect(violations({ ...base, body: problem(400, ProblemType.notFound) })).toEqual([expect.stringMatching(/^body\/status: must be equal to constant/)]);
    expect(violations({ ...base, body: problem(404, ProblemType.notFound, { stack: 'Error: at x.ts:1:1' }) })).toEqual([expect.stringMatching(/\(stack\)/)]);
  });

  it('checks documented headers: required ones present, values matching their schema', () => {
    const unauthorized = { method: 'GET', path: '/v1/tools', status: 401, body: problem(401, ProblemType.unauthorized) };
    expect(violations({ ...unauthorized, headers: { ...problemJson, 'www-authenticate': 'Bearer' } })).toEqual([]);
    expect(violations({ ...unauthorized, headers: problemJson })).toEqual(['header www-authenticate is required but missing']);
    const busy = { method: 'GET', path: '/v1/actions', status: 503, body: problem(503, ProblemType.unavailable, { retryAfter: 1 }) };
    expect(violations({ ...busy, headers: { ...problemJson, 'retry-after': '1' } })).toEqual([]);
    expect(violations({ ...busy, headers: { ...problemJson, 'retry-after': 'soon' } })).toEqual([expect.stringMatching(/^header retry-after: must be integer/)]);
    const headers = new Headers({ ...json, location: '/v1/actions/elsewhere' });
    const accepted = { id: action.id, status: 'received', decision: null, planHash: action.planHash, links: { self: `/v1/actions/${action.id}` } };
    expect(violations({ method: 'POST', path: '/v1/actions', status: 202, headers, body: JSON.stringify(accepted) })).toEqual([expect.stringMatching(/^header location: must match pattern/)]);
  });

  it('accepts a request outside the document only as the declared refusal', () => {
    const noRoute = { method: 'GET', path: '/v1/nothing', headers: problemJson };
    expect(checker.check({ ...noRoute, status: 404, body: problem(404, ProblemType.notFound) })).toEqual({ operation: 'unrouted', status: '404' });
    expect(violations({ ...noRoute, status: 200, headers: json, body: '{}' })).toEqual([expect.stringMatching(/no documented path matches/)]);
    const wrongMethod = { method: 'DELETE', path: '/v1/tools', status: 405, body: problem(405, ProblemType.methodNotAllowed, { allow: ['GET'] }) };
    expect(violations({ ...wrongMethod, headers: { ...problemJson, allow: 'GET' } })).toEqual([]);
    expect(violations({ ...wrongMethod, headers: { ...problemJson, allow: 'GET, POST' } })).toEqual([expect.stringMatching(/documented methods of \/v1\/tools are GET/)]);
    expect(violations({ ...wrongMethod, headers: problemJson })).toContainEqual('header allow is required but missing');
    expect(violations({ ...wrongMethod, status: 200, headers: json, body: '{}' })).toEqual([expect.stringMatching(/DELETE is not documented for \/v1\/tools/)]);
  });

  it('matches concrete paths to templates, literal paths first', () => {
    expect(checker.matchPath('/v1/actions')?.template).toBe('/v1/actions');
    expect(checker.matchPath('/v1/actions/act_x?y=1')?.template).toBe('/v1/actions/{id}');
    expect(checker.matchPath('/v1/approvals/apr_x/decision')?.template).toBe('/v1/approvals/{id}/decision');
    expect(checker.matchPath('/v1/actions/a/b')).toBeUndefined();
    expect(checker.matchPath('/v1/actions/{id}')?.template).toBe('/v1/actions/{id}');
  });

  it('refuses any member added anywhere in an action view (property)', () => {
    const view = actionView(action);
    const objects = (v: typeof view) => [v, v.principal, v.actor, v.decision!, v.decision!.steps![0]!, v.steps[0]!, v.links];
    const known = new Set(objects(view).flatMap((o) => Object.keys(o)));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: objects(view).length - 1 }),
        fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !known.has(k) && k !== '__proto__'),
        fc.jsonValue(),
        (where, key, value) => {
          const copy = structuredClone(view);
          Object.defineProperty(objects(copy)[where]!, key, { value, enumerable: true, writable: true, configurable: true });
          expect(violations(getAction(copy))).toContainEqual(expect.stringContaining(`(${key})`));
        },
      ),
      { numRuns: 200 },
    );
  });
});
