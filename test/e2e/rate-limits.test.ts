import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { limitsWithRates } from '../helpers/rate-limits';

/**
 * Rate limits over HTTP against the local runtime: the RateLimit fields on every /v1 answer
 * (with the shipped limits), the 429 of a request over a limit and what it leaves behind
 * (nothing), and GET /v1/limits. Every response is also checked against docs/openapi.json.
 */

const POLICY = /^"[a-z][a-z0-9-]*";q=[1-9][0-9]*;w=[1-9][0-9]*$/;
const FIELD = /^"[a-z][a-z0-9-]*";r=[0-9]+;t=[1-9][0-9]*$/;
const echo = (message: string, agent = 'looper') => ({ tool: 'echo.say', arguments: { message }, agent: { name: agent } });

async function call(base: string, method: string, path: string, token: string | undefined, init: { body?: unknown; headers?: Record<string, string> } = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as any) : undefined };
}

describe('with the shipped limits', () => {
  let cp: TestControlPlane;
  let alice: string;
  beforeAll(async () => {
    cp = await startTestControlPlane();
    alice = await cp.token('rl-alice', { roles: ['Employee'], manager: 'rl-bob' });
  });
  afterAll(async () => {
    await cp?.close();
  });

  it('every answer to an authenticated /v1 request carries RateLimit-Policy and RateLimit, refusals too', async () => {
    const answers = [
      await call(cp.url, 'GET', '/v1/tools', alice),
      await call(cp.url, 'POST', '/v1/actions', alice, { body: echo('hi'), headers: { 'idempotency-key': 'rl-1' } }),
      await call(cp.url, 'POST', '/v1/actions', alice, { body: echo('hi') }),
      await call(cp.url, 'POST', '/v1/actions', alice, { body: { tool: 'nope.never' }, headers: { 'idempotency-key': 'rl-2' } }),
      await call(cp.url, 'POST', '/v1/actions', alice, { headers: { 'content-type': 'application/json', 'idempotency-key': 'rl-3' }, body: undefined }),
      await call(cp.url, 'GET', '/v1/actions', alice),
      await call(cp.url, 'GET', '/v1/actions/act_01JABCDEFGHJKMNPQRSTVWXYZ0', alice),
      await call(cp.url, 'POST', '/v1/decisions', alice, { body: echo('preview') }),
      await call(cp.url, 'GET', '/v1/limits', alice),
      await call(cp.url, 'GET', '/v1/approvals', alice),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 400, 400, 400, 200, 404, 200, 200, 200]);
    for (const a of answers) {
      expect(a.headers.get('ratelimit-policy')).toMatch(POLICY);
      expect(a.headers.get('ratelimit')).toMatch(FIELD);
    }
    // The tightest limit for an action is the agent's (120 a minute in policies/limits.json).
    expect(answers[1]!.headers.get('ratelimit-policy')).toBe('"agent-burst";q=120;w=60');
    // Before the token is checked nothing is counted; outside /v1 nothing is either.
    expect((await call(cp.url, 'GET', '/v1/tools', undefined)).headers.get('ratelimit')).toBeNull();
    expect((await call(cp.url, 'GET', '/healthz', undefined)).headers.get('ratelimit')).toBeNull();
  });

  it('GET /v1/limits lists the caller\'s quotas, and the agent\'s and tool\'s when named', async () => {
    const mine = await call(cp.url, 'GET', '/v1/limits', alice);
    expect(mine.body.policies.map((p: { id: string }) => p.id)).toEqual(['global-burst', 'principal-burst', 'principal-daily']);
    const named = await call(cp.url, 'GET', '/v1/limits?agent=looper&tool=travel.hold_seat', alice);
    expect(named.body.policies.map((p: { id: string; subject: string | null }) => `${p.id}:${p.subject}`)).toEqual([
      'global-burst:null',
      'principal-burst:null',
      'principal-daily:null',
      'agent-burst:looper',
      'tool-burst:travel.hold_seat',
      'connector-burst:travel',
    ]);
    const burst = mine.body.policies[1];
    expect(burst).toMatchObject({ scope: 'principal', limit: 600, windowSeconds: 60 });
    expect(burst.remaining).toBeLessThan(600);
    expect(Date.parse(burst.resetAt)).toBeGreaterThan(Date.now() - 1_000);
  });
});

describe('over a limit', () => {
  let cp: TestControlPlane;
  let ms = Date.UTC(2030, 0, 1, 0, 30);
  let alice: string;
  beforeAll(async () => {
    cp = await startTestControlPlane({
      controlPlane: {
        limits: limitsWithRates([
          { id: 'principal-hourly', scope: 'principal', limit: 1000, windowSeconds: 3_600 },
          { id: 'agent-hourly', scope: 'agent', limit: 3, windowSeconds: 3_600, lease: 1 },
          { id: 'echo-hourly', scope: 'tool', limit: 5, windowSeconds: 3_600, only: ['echo.say'] },
        ]),
        rateLimitClock: () => new Date(ms),
      },
    });
    alice = await cp.token('rl-alice', { roles: ['Employee'], manager: 'rl-bob' });
  });
  afterAll(async () => {
    await cp?.close();
  });

  const actions = async () => (await call(cp.url, 'GET', '/v1/actions?limit=100', alice)).body.items.length as number;

  it('answers 429 quota-exceeded with Retry-After and violated-policies, and records nothing', async () => {
    for (let i = 0; i < 3; i++) {
      const ok = await call(cp.url, 'POST', '/v1/actions', alice, { body: echo(`n${i}`), headers: { 'idempotency-key': `loop-${i}` } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('ratelimit')).toBe(`"agent-hourly";r=${2 - i};t=1800`);
    }
    const before = await actions();
    const refused = await call(cp.url, 'POST', '/v1/actions', alice, { body: echo('n3'), headers: { 'idempotency-key': 'loop-3' } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.headers.get('retry-after')).toBe('1800');
    expect(refused.headers.get('ratelimit-policy')).toBe('"agent-hourly";q=3;w=3600');
    expect(refused.headers.get('ratelimit')).toBe('"agent-hourly";r=0;t=1800');
    expect(refused.body).toEqual({
      type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
      title: 'Request cannot be satisfied as assigned quota has been exceeded',
      status: 429,
      detail: expect.stringContaining('"agent-hourly"'),
      'violated-policies': ['agent-hourly'],
      retryAfter: 1800,
    });
    expect(await actions()).toBe(before);
    // A preview by the same agent is refused too; another agent of the same person is not.
    expect((await call(cp.url, 'POST', '/v1/decisions', alice, { body: echo('preview') })).status).toBe(429);
    expect((await call(cp.url, 'POST', '/v1/actions', alice, { body: echo('other', 'careful'), headers: { 'idempotency-key': 'other-0' } })).status).toBe(200);

    const limits = await call(cp.url, 'GET', '/v1/limits?agent=looper', alice);
    expect(limits.body.policies.find((p: { id: string }) => p.id === 'agent-hourly')).toEqual({
      id: 'agent-hourly',
      scope: 'agent',
      subject: 'looper',
      limit: 3,
      windowSeconds: 3_600,
      remaining: 0,
      resetSeconds: 1800,
      resetAt: '2030-01-01T01:00:00.000Z',
    });

    // In the next window the refused request's key is new: no idempotency record was kept.
    ms += 1_800_000;
    const retried = await call(cp.url, 'POST', '/v1/actions', alice, { body: echo('n3'), headers: { 'idempotency-key': 'loop-3' } });
    expect(retried.status).toBe(200);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    expect(await actions()).toBe(before + 2);
  });

  it('counts tool limits on actions only, never on previews', async () => {
    ms += 3_600_000;
    for (let i = 0; i < 6; i++) expect((await call(cp.url, 'POST', '/v1/decisions', alice, { body: echo('look', `viewer-${i}`) })).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await call(cp.url, 'POST', '/v1/actions', alice, { body: echo('go', `worker-${i}`), headers: { 'idempotency-key': `tool-${i}` } });
      statuses.push(res.status);
      if (res.status === 429) expect(res.body['violated-policies']).toEqual(['echo-hourly']);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  });
});

describe("the kill switch's own budget", () => {
  let cp: TestControlPlane;
  let ms = Date.UTC(2030, 0, 1, 0, 30);
  let alice: string;
  let operator: string;
  beforeAll(async () => {
    const limits = limitsWithRates([{ id: 'global-tiny', scope: 'global', limit: 3, windowSeconds: 3_600, shards: 1, lease: 1 }]);
    limits.limits.killSwitch.budget = { limit: 2, windowSeconds: 3_600 };
    cp = await startTestControlPlane({ controlPlane: { limits, rateLimitClock: () => new Date(ms) } });
    alice = await cp.token('ks-alice', { roles: ['Employee'], manager: 'ks-bob' });
    operator = await cp.token('ks-ops', { roles: ['KillSwitch'] });
  });
  afterAll(async () => {
    await cp?.close();
  });

  it('a holder of the role sees it among their quotas; nobody else does', async () => {
    const ops = await call(cp.url, 'GET', '/v1/limits', operator);
    expect(ops.body.policies.map((p: { id: string }) => p.id)).toEqual(['global-tiny', 'kill-switch']);
    expect(ops.body.policies[1]).toMatchObject({ scope: 'principal', subject: null, limit: 2, windowSeconds: 3_600, remaining: 2 });
    const mine = await call(cp.url, 'GET', '/v1/limits', alice);
    expect(mine.body.policies.map((p: { id: string }) => p.id)).toEqual(['global-tiny']);
  });

  it('halts and resumes when the agents have used up the global quota, within its own limit', async () => {
    ms += 3_600_000; // a fresh window for every counter
    for (let i = 0; i < 3; i++) expect((await call(cp.url, 'GET', '/v1/tools', alice)).status).toBe(200);
    const refused = await call(cp.url, 'POST', '/v1/actions', alice, { body: echo('one more'), headers: { 'idempotency-key': 'ks-1' } });
    expect(refused.status).toBe(429);
    expect(refused.body['violated-policies']).toEqual(['global-tiny']);
    // Someone without the role calling the halt routes is counted as any request: refused here.
    const intruder = await call(cp.url, 'POST', '/v1/halts', alice, { body: { scope: 'agent', target: 'looper', reason: 'not mine to stop' } });
    expect(intruder.status).toBe(429);

    const halt = await call(cp.url, 'POST', '/v1/halts', operator, { body: { scope: 'agent', target: 'looper', reason: 'runaway agent', mode: 'stop' } });
    expect(halt.status).toBe(201);
    expect(halt.headers.get('ratelimit-policy')).toBe('"kill-switch";q=2;w=3600');
    expect(halt.headers.get('ratelimit')).toBe('"kill-switch";r=1;t=1800');
    const resumed = await call(cp.url, 'DELETE', `/v1/halts/${halt.body.id}`, operator, { body: { reason: 'fixed' } });
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get('ratelimit')).toBe('"kill-switch";r=0;t=1800');

    // The budget is a limit too: past it the operator waits like anyone else, and it is audited.
    const over = await call(cp.url, 'GET', '/v1/halts', operator);
    expect(over.status).toBe(429);
    expect(over.body['violated-policies']).toEqual(['kill-switch']);
    expect(over.headers.get('retry-after')).toBe('1800');
    // The operator's other calls still count against the global quota, spent by the agents.
    expect((await call(cp.url, 'GET', '/v1/tools', operator)).body['violated-policies']).toEqual(['global-tiny']);
  });
});
