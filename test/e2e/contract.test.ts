import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../../lambdas/shared/canonical-json';
import { newActionId } from '../../lambdas/shared/ids';
import { routes } from '../../lambdas/api/routes';
import { MAX_BODY_BYTES } from '../../lambdas/middleware/http';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { contractChecker, validatedCounts, validateResponse } from '../helpers/contract';
import { bigTrip, startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { limitsWithRates } from '../helpers/rate-limits';

/**
 * A tour of the published contract over HTTP: every status the document lists for an
 * operation (500 and 503 aside: a healthy local runtime cannot be made to answer them on
 * demand) is provoked here, and every response is validated against docs/openapi.json by
 * the fetch wrapper (test/setup.ts). The last test checks that nothing documented was left
 * unprovoked, so a documented error that the code cannot produce fails too.
 */
let cp: TestControlPlane;
let alice: string;
let bob: string;

beforeAll(async () => {
  // A short in-progress wait makes the 409 for a key still being accepted quick to provoke.
  cp = await startTestControlPlane({ controlPlane: { intake: { inProgressWaitMs: 50 } } });
  alice = await cp.token('contract-alice', { roles: ['Employee'], manager: 'contract-bob' });
  bob = await cp.token('contract-bob', { roles: ['Employee', 'Manager'] });
});
afterAll(async () => {
  await cp?.close();
});

const echo = (message = 'hi') => ({ tool: 'echo.say', arguments: { message }, agent: { name: 'contract' } });
const ANY_ACTION = 'act_01JABCDEFGHJKMNPQRSTVWXYZ0';
const ANY_APPROVAL = 'apr_01JABCDEFGHJKMNPQRSTVWXYZ0';
const concrete = (path: string) => path.replace('/v1/actions/{id}', `/v1/actions/${ANY_ACTION}`).replace('{id}', ANY_APPROVAL);

async function call(method: string, path: string, init: { token?: string; headers?: Record<string, string>; body?: string } = {}) {
  const res = await fetch(`${cp.url}${path}`, {
    method,
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
}

const postJson = (path: string, token: string, body: unknown, headers: Record<string, string> = {}) =>
  call('POST', path, { token, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

/**
 * A request fetch cannot make (a GET with a body), over node:http; its response is validated
 * here since it does not pass through the fetch wrapper.
 */
function rawRequest(method: string, path: string, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${cp.url}${path}`, { method, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const flat: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') flat[k] = v;
        try {
          validateResponse({ method, path, status: res.statusCode ?? 0, headers: flat, body: text });
          resolve(res.statusCode ?? 0);
        } catch (error) {
          reject(error);
        }
      });
    });
    // The server answers before reading an oversized body and then cuts the socket.
    req.on('error', (error: NodeJS.ErrnoException) => (['EPIPE', 'ECONNRESET'].includes(error.code ?? '') ? undefined : reject(error)));
    req.end(body);
  });
}

describe('the contract, operation by operation', () => {
  it('answers the public routes and the catalog', async () => {
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/openapi.json')).status).toBe(200);
    expect((await call('GET', '/v1/tools', { token: alice })).status).toBe(200);
    for (const format of ['openai', 'anthropic', 'gemini']) expect((await call('GET', `/v1/tools?format=${format}`, { token: alice })).status).toBe(200);
    expect((await call('GET', '/v1/tools?format=mistral', { token: alice })).status).toBe(400);
  });

  it('answers 401 on every authenticated route without a token', async () => {
    for (const route of routes.filter((r) => r.auth)) {
      const res = await call(route.method, concrete(route.path), route.method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {});
      expect(res.status, `${route.method} ${route.path}`).toBe(401);
    }
  });

  it('answers 413 on every route for a body over the limit, GETs included', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(MAX_BODY_BYTES) });
    for (const route of routes) {
      const status = await rawRequest(route.method, concrete(route.path), { authorization: `Bearer ${alice}`, 'content-type': 'application/json', 'idempotency-key': 'big' }, big);
      expect(status, `${route.method} ${route.path}`).toBe(413);
    }
  });

  it('ignores a small body on a GET instead of parsing it', async () => {
    expect(await rawRequest('GET', '/v1/tools', { authorization: `Bearer ${alice}`, 'content-type': 'text/plain' }, 'not json')).toBe(200);
    expect(await rawRequest('GET', '/healthz', { 'content-type': 'application/json' }, '{"broken":')).toBe(200);
  });

  it('POST /v1/actions: 200, 202 and every documented refusal', async () => {
    expect((await postJson('/v1/actions', alice, echo('sync'), { 'idempotency-key': 'c-sync' })).status).toBe(200);
    const replay = await postJson('/v1/actions', alice, echo('sync'), { 'idempotency-key': 'c-sync' });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect((await postJson('/v1/actions', alice, echo('async'), { 'idempotency-key': 'c-async', prefer: 'respond-async' })).status).toBe(202);
    expect((await postJson('/v1/actions', alice, echo())).body).toMatchObject({ status: 400, type: 'urn:airlock:problem:idempotency-key-missing' });
    expect((await postJson('/v1/actions', alice, { ...echo(), tool: 'nope.nothing' }, { 'idempotency-key': 'c-bad' })).body).toMatchObject({ status: 400, type: 'urn:airlock:problem:validation' });
    const malformed = await call('POST', '/v1/actions', { token: alice, headers: { 'content-type': 'application/json', 'idempotency-key': 'c-json' }, body: '{"tool":' });
    expect(malformed.body).toMatchObject({ status: 400, type: 'urn:airlock:problem:malformed-json' });
    const text = await call('POST', '/v1/actions', { token: alice, headers: { 'content-type': 'text/plain', 'idempotency-key': 'c-text' }, body: 'hello' });
    expect(text.status).toBe(415);
    await postJson('/v1/actions', alice, echo('one'), { 'idempotency-key': 'c-reuse' });
    expect((await postJson('/v1/actions', alice, echo('two'), { 'idempotency-key': 'c-reuse' })).status).toBe(422);

    const denied = {
      tool: 'procurement.place_order',
      arguments: {
        supplierId: 'shady-supplies',
        lines: [{ sku: 'SHD-001', quantity: 1 }],
        shipTo: { name: 'Ada Lovelace', street: '1 Analytical Way', city: 'London', postalCode: 'N1 9GU', country: 'GB' },
        maxTotal: { amount: 50, currency: 'USD' },
      },
      agent: { name: 'contract' },
    };
    expect((await postJson('/v1/actions', alice, denied, { 'idempotency-key': 'c-deny' })).status).toBe(403);
    expect((await postJson('/v1/actions', alice, denied, { 'idempotency-key': 'c-deny' })).headers.get('idempotent-replayed')).toBe('true');

    // A key held by a request still being accepted (as a crashed or slow first attempt leaves it).
    const held = echo('held');
    await cp.cp.ledger.claim({
      scope: 'contract-alice',
      key: 'c-held',
      fingerprint: fingerprint({ method: 'POST', path: '/v1/actions', body: held }),
      proposedActionId: newActionId(),
      now: Date.now(),
      lockMs: 60_000,
      retentionMs: 86_400_000,
    });
    const busy = await postJson('/v1/actions', alice, held, { 'idempotency-key': 'c-held' });
    expect(busy.status).toBe(409);
    expect(busy.headers.get('retry-after')).toBe('1');
  });

  it('GET /v1/actions and /v1/actions/{id}', async () => {
    const list = await call('GET', '/v1/actions?limit=2', { token: alice });
    expect(list.status).toBe(200);
    expect((await call('GET', '/v1/actions?limit=0', { token: alice })).status).toBe(400);
    expect((await call('GET', '/v1/actions?cursor=forged', { token: alice })).status).toBe(400);
    // Every principal's actions are for auditors: anyone else is refused (and it is recorded).
    expect((await call('GET', '/v1/actions?scope=all', { token: alice })).status).toBe(403);
    const auditor = await cp.token('contract-audrey', { roles: ['Auditor'] });
    const all = await call('GET', '/v1/actions?scope=all&limit=5', { token: auditor });
    expect(all.status).toBe(200);
    expect(all.body!.items.length).toBeGreaterThan(0);
    const id = list.body!.items[0].id as string;
    expect((await call('GET', `/v1/actions/${id}`, { token: alice })).status).toBe(200);
    expect((await call('GET', `/v1/actions/${id}`, { token: bob })).status).toBe(404);
    expect((await call('GET', '/v1/actions/not-an-id', { token: alice })).status).toBe(404);
  });

  it('GET /v1/actions/{id}/receipt', async () => {
    const done = await postJson('/v1/actions', alice, echo('receipt'), { 'idempotency-key': 'contract-receipt' });
    const id = done.body!.id as string;
    // WriteReceipt runs as the saga's last task: the receipt may trail the answer by a moment.
    await expect.poll(async () => (await call('GET', `/v1/actions/${id}`, { token: alice })).body!.receipt, { timeout: 10_000 }).not.toBeNull();
    const receipt = await call('GET', `/v1/actions/${id}/receipt`, { token: alice });
    expect(receipt.status).toBe(200);
    expect(receipt.body).toMatchObject({ actionId: id, verification: { status: expect.stringMatching(/^(verified|pending)$/) } });
    expect((await call('GET', `/v1/actions/${id}/receipt`, { token: bob })).status).toBe(404);
  });

  it('POST /v1/decisions', async () => {
    expect((await postJson('/v1/decisions', alice, bigTrip())).body!.decision).toMatchObject({ outcome: 'require_approval', steps: expect.any(Array) });
    expect((await postJson('/v1/decisions', alice, { ...echo(), tool: 'nope.nothing' })).status).toBe(400);
    expect((await call('POST', '/v1/decisions', { token: alice, headers: { 'content-type': 'application/json' }, body: '[' })).status).toBe(400);
    expect((await call('POST', '/v1/decisions', { token: alice, headers: { 'content-type': 'text/plain' }, body: 'x' })).status).toBe(415);
  });

  it('POST /v1/actions/{id}/cancel: waiting, running, finished, and every refusal', async () => {
    const cancel = (id: string, token: string, body: unknown = {}, type = 'application/json') =>
      call('POST', `/v1/actions/${id}/cancel`, { token, headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    // Waiting for approval: cancelled at once (200). The approver may see it but not cancel it (403).
    const waiting = await postJson('/v1/actions', alice, bigTrip(), { 'idempotency-key': 'c-cancel-waiting' });
    const waitingId = waiting.body!.id as string;
    await expect.poll(async () => (await call('GET', `/v1/actions/${waitingId}`, { token: alice })).body!.status, { timeout: 10_000 }).toBe('awaiting_approval');
    expect((await cancel(waitingId, bob)).status).toBe(403);
    expect((await cancel(waitingId, alice, { reason: 'x'.repeat(501) })).status).toBe(400);
    expect((await cancel(waitingId, alice, 'stop', 'text/plain')).status).toBe(415);
    expect((await cancel(waitingId, alice, { reason: 'plans changed' })).body).toMatchObject({ id: waitingId, status: 'cancelled' });
    expect((await cancel(ANY_ACTION, alice)).status).toBe(404);

    // Running: stops before its next step (202); travel answers slowly meanwhile.
    cp.cp.vendors.admin.setFaults('travel', { latencyMs: 400 });
    try {
      const day = bigTrip().plan[0]!.arguments.flightId;
      const running = await postJson(
        '/v1/actions',
        alice,
        { agent: { name: 'contract' }, plan: [{ id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: day, seats: 1 } }, { id: 'again', tool: 'travel.hold_seat', arguments: { flightId: day, seats: 1 } }] },
        { 'idempotency-key': 'c-cancel-running', prefer: 'respond-async' },
      );
      const runningId = running.body!.id as string;
      await expect.poll(async () => (await cp.cp.store.listSteps(runningId)).length, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
      expect((await cancel(runningId, alice)).status).toBe(202);
    } finally {
      cp.cp.vendors.admin.setFaults('travel', {});
    }
    // Finished otherwise: 409.
    const done = await postJson('/v1/actions', alice, echo('done'), { 'idempotency-key': 'c-cancel-done' });
    expect((await cancel(done.body!.id as string, alice)).status).toBe(409);
  });

  it('the approvals routes, from the inbox to a vote', async () => {
    const asked = await postJson('/v1/actions', alice, bigTrip(), { 'idempotency-key': 'c-trip' });
    expect(asked.status).toBe(202);
    const approvalId = approvalIdFor(asked.body!.id as string);
    await expect.poll(async () => (await call('GET', `/v1/approvals/${approvalId}`, { token: bob })).status, { timeout: 10_000 }).toBe(200);
    const preview = (await call('GET', `/v1/approvals/${approvalId}`, { token: bob })).body!;
    expect(preview.policies.steps[0]).toMatchObject({ outcome: 'require_approval', quorum: 1, approverRule: 'manager' });

    expect((await call('GET', '/v1/approvals', { token: bob })).body!.items.map((a: { id: string }) => a.id)).toContain(approvalId);
    expect((await call('GET', '/v1/approvals?status=nope', { token: bob })).status).toBe(400);
    expect((await call('GET', `/v1/approvals/${ANY_APPROVAL}`, { token: bob })).status).toBe(404);

    const decision = `/v1/approvals/${approvalId}/decision`;
    const vote = { decision: 'approve', planHash: preview.planHash };
    expect((await postJson(decision, bob, { decision: 'maybe' })).status).toBe(400);
    expect((await call('POST', decision, { token: bob, headers: { 'content-type': 'application/json' }, body: '{' })).status).toBe(400);
    expect((await call('POST', decision, { token: bob, headers: { 'content-type': 'text/plain' }, body: 'approve' })).status).toBe(415);
    expect((await postJson(`/v1/approvals/${ANY_APPROVAL}/decision`, bob, vote)).status).toBe(404);
    expect((await postJson(decision, alice, vote)).status).toBe(403);
    expect((await postJson(decision, bob, { ...vote, planHash: 'f'.repeat(64) })).status).toBe(409);
    expect((await postJson(decision, bob, vote)).status).toBe(200);
    const changed = await postJson(decision, bob, { ...vote, decision: 'reject', comment: 'changed my mind' });
    expect(changed.body).toMatchObject({ status: 409, type: 'urn:airlock:problem:vote-conflict', vote: { decision: 'approve' } });
  });

  it('the kill switch: halt, refuse, list, resume', async () => {
    const operator = await cp.token('contract-operator', { roles: ['KillSwitch'] });
    const halt = { scope: 'agent', target: 'contract-halted', reason: 'contract tour', mode: 'stop' };
    expect((await postJson('/v1/halts', alice, halt)).body).toMatchObject({ status: 403, type: 'urn:airlock:problem:forbidden', requiredRole: 'KillSwitch' });
    expect((await postJson('/v1/halts', operator, { ...halt, scope: 'tool', target: 'travel.teleport' })).body).toMatchObject({ status: 400, violations: [{ path: '/target' }] });
    expect((await call('POST', '/v1/halts', { token: operator, headers: { 'content-type': 'text/plain' }, body: 'stop' })).status).toBe(415);
    const created = await postJson('/v1/halts', operator, halt);
    expect(created.status).toBe(201);
    const id = created.body!.id as string;
    expect(created.headers.get('location')).toBe(`/v1/halts/${id}`);

    const refused = await postJson('/v1/actions', alice, { ...echo('halted'), agent: { name: 'contract-halted' } }, { 'idempotency-key': 'c-halted' });
    expect(refused.body).toMatchObject({ status: 403, type: 'urn:airlock:problem:halted', haltId: id, reason: 'contract tour' });

    expect((await call('GET', '/v1/halts', { token: alice })).status).toBe(403);
    expect((await call('GET', '/v1/halts', { token: operator })).body!.items.map((h: { id: string }) => h.id)).toContain(id);

    const del = (path: string, token: string, body: unknown, type = 'application/json') =>
      call('DELETE', path, { token, headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    expect((await del(`/v1/halts/${id}`, alice, { reason: 'x' })).status).toBe(403);
    expect((await del(`/v1/halts/${id}`, operator, {})).status).toBe(400);
    expect((await del(`/v1/halts/${id}`, operator, 'done', 'text/plain')).status).toBe(415);
    expect((await del('/v1/halts/hlt_01JABCDEFGHJKMNPQRSTVWXYZ0', operator, { reason: 'x' })).status).toBe(404);
    expect((await del(`/v1/halts/${id}`, operator, { reason: 'tour over' })).body).toMatchObject({ id, status: 'resumed', resumedBy: 'contract-operator', resumeReason: 'tour over' });
    expect((await del(`/v1/halts/${id}`, operator, { reason: 'again' })).status).toBe(409);
  });

  it('delegations: grant, list, refuse bad input and agents, revoke, 404 for ids not the caller\'s', async () => {
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    const agent = await cp.token('alice', { roles: ['Employee'], manager: 'bob', claims: { act: { sub: 'contract-bot' } } });
    const created = await postJson('/v1/delegations', alice, { agent: 'contract-bot', tools: ['echo.say'], expiresAt });
    expect(created.status).toBe(201);
    const id = created.body!.id as string;
    expect(created.headers.get('location')).toBe(`/v1/delegations/${id}`);
    expect((await postJson('/v1/delegations', alice, { agent: 'contract-bot', tools: ['travel.teleport'], expiresAt })).body).toMatchObject({ status: 400, violations: [{ path: '/tools/0' }] });
    expect((await postJson('/v1/delegations', agent, { agent: 'contract-bot', tools: ['echo.say'], expiresAt })).body).toMatchObject({ status: 403, type: 'urn:airlock:problem:forbidden' });
    expect((await call('POST', '/v1/delegations', { token: alice, headers: { 'content-type': 'text/plain' }, body: 'x' })).status).toBe(415);
    expect((await call('GET', '/v1/delegations', { token: alice })).body!.items.map((d: { id: string }) => d.id)).toContain(id);
    // A preview refuses what intake would refuse for the delegation: here its budget (10 USD a day).
    expect((await postJson('/v1/delegations', alice, { agent: 'contract-bot', connectors: ['travel'], budget: { amount: 10, currency: 'USD', period: 'day' }, expiresAt })).status).toBe(201);
    const book = {
      agent: { name: 'contract-bot' },
      tool: 'travel.book_flight',
      arguments: { holdId: 'hold_1', travelers: [{ firstName: 'A', lastName: 'B' }], contact: { email: 'a@example.com' }, price: { amount: 50, currency: 'USD' } },
    };
    const aliceBot = await cp.token('contract-alice', { roles: ['Employee'], manager: 'contract-bob', claims: { act: { sub: 'contract-bot' } } });
    expect((await postJson('/v1/decisions', aliceBot, book)).body).toMatchObject({ status: 403, type: 'urn:airlock:problem:delegation-budget-exceeded', limit: 1000, requested: 5000 });

    const del = (path: string, token: string, body: unknown, type = 'application/json') =>
      call('DELETE', path, { token, headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    expect((await del(`/v1/delegations/${id}`, bob, {})).status).toBe(404);
    expect((await del(`/v1/delegations/${id}`, agent, {})).status).toBe(403);
    expect((await del(`/v1/delegations/${id}`, alice, { reason: '' })).status).toBe(400);
    expect((await del(`/v1/delegations/${id}`, alice, 'x', 'text/plain')).status).toBe(415);
    expect((await del(`/v1/delegations/${id}`, alice, { reason: 'tour over' })).body).toMatchObject({ id, state: 'revoked', stopped: { cancelled: [], stopping: [] } });
  });

  it('POST /v1/reconciliations: the report, 400 for a bad body, 403 without the kill-switch role, 415', async () => {
    const operator = await cp.token('contract-reconciler', { roles: ['KillSwitch'] });
    const report = await postJson('/v1/reconciliations', operator, { days: 1 });
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ type: 'airlock.reconciliation', fix: false, days: [expect.any(String)], receiptKey: expect.stringMatching(/^reconciliations\//) });
    expect((await postJson('/v1/reconciliations', operator, { days: 0, extra: true })).body).toMatchObject({ status: 400, violations: expect.any(Array) });
    expect((await postJson('/v1/reconciliations', alice, {})).body).toMatchObject({ status: 403, type: 'urn:airlock:problem:forbidden', requiredRole: 'KillSwitch' });
    expect((await call('POST', '/v1/reconciliations', { token: operator, headers: { 'content-type': 'text/plain' }, body: 'go' })).status).toBe(415);
  });

  it('GET /v1/limits: the caller\'s quotas, and 400 for a bad query', async () => {
    const limits = await call('GET', '/v1/limits?agent=contract&tool=echo.say', { token: alice });
    expect(limits.status).toBe(200);
    expect(limits.body!.policies.map((p: { scope: string }) => p.scope)).toEqual(expect.arrayContaining(['global', 'principal', 'agent', 'tool', 'connector']));
    expect((await call('GET', '/v1/limits?tool=nope.nothing', { token: alice })).status).toBe(400);
    expect((await call('GET', '/v1/limits?planet=mars', { token: alice })).status).toBe(400);
  });

  it('answers 429 on every counted route once the caller is over a limit', async () => {
    // A second runtime with one request per principal per hour, its windows on a pinned clock.
    const limited = await startTestControlPlane({
      controlPlane: {
        limits: limitsWithRates([{ id: 'principal-hourly', scope: 'principal', limit: 1, windowSeconds: 3_600 }]),
        rateLimitClock: () => new Date(Date.UTC(2030, 0, 1, 0, 30)),
      },
    });
    try {
      const carl = await limited.token('contract-carl', { roles: ['Employee'] });
      const first = await fetch(`${limited.url}/v1/tools`, { headers: { authorization: `Bearer ${carl}` } });
      expect(first.status).toBe(200);
      expect(first.headers.get('ratelimit')).toBe('"principal-hourly";r=0;t=1800');
      for (const route of routes.filter((r) => r.auth)) {
        const res = await fetch(`${limited.url}${concrete(route.path)}`, {
          method: route.method,
          headers: { authorization: `Bearer ${carl}`, 'content-type': 'application/json', 'idempotency-key': 'c-limited' },
          ...(route.method === 'POST' ? { body: JSON.stringify(echo('over')) } : {}),
        });
        expect(res.status, `${route.method} ${route.path}`).toBe(429);
        expect(res.headers.get('retry-after')).toBe('1800');
        expect(await res.json()).toMatchObject({ type: 'https://iana.org/assignments/http-problem-types#quota-exceeded', 'violated-policies': ['principal-hourly'] });
      }
    } finally {
      await limited.close();
    }
  });

  it('GET /v1/metrics: the KPIs for an auditor, 403 for anyone else, 400 for a bad window', async () => {
    const auditor = await cp.token('contract-audrey', { roles: ['Auditor'] });
    expect((await call('GET', '/v1/metrics?since=2h', { token: auditor })).status).toBe(200);
    expect((await call('GET', '/v1/metrics', { token: alice })).status).toBe(403);
    expect((await call('GET', '/v1/metrics?since=forever', { token: auditor })).status).toBe(400);
  });

  it('POST /mcp and its protected resource metadata: every documented status', async () => {
    const mcp = (headers: Record<string, string>, body: string) =>
      call('POST', '/mcp', { headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body });
    const auth = { authorization: `Bearer ${alice}`, 'mcp-protocol-version': '2025-11-25' };
    const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    expect((await mcp(auth, list)).status).toBe(200);
    expect((await mcp(auth, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))).status).toBe(202);
    expect((await mcp(auth, '{')).body).toMatchObject({ error: { code: -32700 } });
    expect((await mcp(auth, `[${list}]`)).body).toMatchObject({ error: { code: -32600 } });
    expect((await mcp({}, list)).status).toBe(401);
    // fetch cannot forge Host; node:http can (a DNS-rebinding page's request looks like this).
    expect(await rawRequest('POST', '/mcp', { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream', host: 'evil.example.com' }, list)).toBe(403);
    expect((await mcp({ ...auth, accept: 'text/html' }, list)).status).toBe(406);
    expect((await mcp({ ...auth, 'content-type': 'text/plain' }, list)).status).toBe(415);
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) expect((await call('GET', path)).status).toBe(200);
  });

  it('refuses requests outside the document as it declares', async () => {
    expect((await call('GET', '/v1/nothing-here', { token: alice })).status).toBe(404);
    const wrong = await call('DELETE', '/v1/actions', { token: alice });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, POST');
  });

  it('provoked every documented status except 500 and 503, and nothing it does not document', () => {
    const doc = contractChecker().doc as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).flatMap(([method, op]) => Object.keys(op.responses).map((status) => `${method.toUpperCase()} ${path} ${status}`)),
    );
    const seen = [...validatedCounts().keys()];
    const unprovoked = documented.filter((key) => !/ 50[03]$/.test(key) && !seen.includes(key));
    expect(unprovoked).toEqual([]);
    expect(seen.filter((key) => !key.startsWith('unrouted ') && !documented.includes(key))).toEqual([]);
    expect(seen.filter((key) => key.startsWith('unrouted ')).sort()).toEqual(['unrouted 404', 'unrouted 405']);
  });
});
