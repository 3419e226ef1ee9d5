import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ANOMALY_GUARD_ACTOR } from '../../lambdas/guardrails/anomaly';
import { ActionHaltedError } from '../../lambdas/guardrails/errors';
import { haltCovers, HaltGuard, subjectOf } from '../../lambdas/guardrails/halts';
import { parseLimits, RateLimitSchema, type AnomalySettings } from '../../lambdas/limits/config';
import { admitRequest } from '../../lambdas/limits/http';
import { RateLimiter } from '../../lambdas/limits/rate-limiter';
import { applicablePolicies, rateRequestOf } from '../../lambdas/limits/rate-limits';
import type { Halt, HaltStore } from '../../lambdas/ports/guardrails';
import { ProblemError } from '../../lambdas/shared/problem';
import type { Logger } from '../../lambdas/shared/logger';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { toolRegistry } from '../../lambdas/tools/registry';
import { isoDay } from '../helpers/dates';
import { MemoryCounters } from '../helpers/rate-limits';
import { bigTrip, quietBreakers, startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';

/**
 * The guardrails key on the agent the verified token names (Principal.agent: act.sub, azp or
 * client_id), not only on the name the body declares: an agent that renames itself in the body
 * keeps its rate-limit counter, stays under a halt (at intake, in its running saga and for
 * votes on its work) and keeps its anomaly baseline.
 */

const declaredNames = fc.string({ minLength: 1, maxLength: 128 });

function haltOn(target: string): Halt {
  return {
    id: 'hlt_01J00000000000000000000000',
    scope: 'agent',
    target,
    mode: 'stop',
    reason: 'test',
    createdBy: { sub: 'olivia', roles: ['KillSwitch'] },
    createdAt: '2030-01-01T00:00:00.000Z',
    status: 'active',
  };
}

function guardWith(halts: Halt[]): HaltGuard {
  const store = { listHalts: async () => halts } as unknown as HaltStore;
  return new HaltGuard({ halts: store, tools: toolRegistry, limits: quietBreakers(), now: () => new Date(Date.UTC(2030, 0, 1)) });
}

describe('an agent halt and the verified agent', () => {
  it('property: any declared name with a halted verified agent is refused', async () => {
    const guard = guardWith([haltOn('trip-bot')]);
    await fc.assert(
      fc.asyncProperty(declaredNames, async (declared) => {
        const subject = subjectOf(toolRegistry, { sub: 'alice', agent: 'trip-bot' }, declared, ['travel.hold_seat']);
        await expect(guard.refuseNew(subject)).rejects.toBeInstanceOf(ActionHaltedError);
      }),
      { numRuns: 200 },
    );
  });

  it('covers the declared name too (both are matched), and nothing else', () => {
    const halt = haltOn('trip-bot');
    // A halt by name still holds an agent with a token of its own that declares that name.
    expect(haltCovers(halt, subjectOf(toolRegistry, { sub: 'alice', agent: 'other-bot' }, 'trip-bot', []))).toBe(true);
    expect(haltCovers(halt, subjectOf(toolRegistry, { sub: 'alice' }, 'trip-bot', []))).toBe(true);
    expect(haltCovers(halt, subjectOf(toolRegistry, { sub: 'alice', agent: 'other-bot' }, 'renamed', []))).toBe(false);
    expect(haltCovers(halt, subjectOf(toolRegistry, { sub: 'alice' }, 'renamed', []))).toBe(false);
  });

  it('audits the verified agent on the refusal line', async () => {
    const lines: unknown[] = [];
    const store = { listHalts: async () => [haltOn('trip-bot')] } as unknown as HaltStore;
    const logger = { info: (_m: string, data: unknown) => lines.push(data) } as unknown as Logger;
    const guard = new HaltGuard({ halts: store, tools: toolRegistry, limits: quietBreakers(), now: () => new Date(), logger });
    await expect(guard.refuseNew(subjectOf(toolRegistry, { sub: 'alice', agent: 'trip-bot' }, 'innocent', []))).rejects.toBeInstanceOf(ActionHaltedError);
    expect(lines).toEqual([expect.objectContaining({ principal: 'alice', agent: 'innocent', verifiedAgent: 'trip-bot' })]);
  });
});

describe('the agent rate-limit tier and the verified agent', () => {
  const agentBurst = RateLimitSchema.parse({ id: 'agent-burst', scope: 'agent', limit: 3, windowSeconds: 86_400, lease: 1 });

  it('property: every declared name (or none) counts on the verified agent, apart from a declared name alone', () => {
    fc.assert(
      fc.property(fc.option(declaredNames, { nil: undefined }), (declared) => {
        const body = declared === undefined ? {} : { agent: { name: declared } };
        const [verified] = applicablePolicies([agentBurst], rateRequestOf('alice', body, { countsTools: false, isTool: () => false, verifiedAgent: 'trip-bot' }));
        const [reference] = applicablePolicies([agentBurst], rateRequestOf('alice', {}, { countsTools: false, isTool: () => false, verifiedAgent: 'trip-bot' }));
        expect(verified).toEqual(reference);
        expect(verified!.label).toBe('trip-bot');
        // Traffic merely declaring the name, without the token, never uses up the verified agent's quota.
        const [claimed] = applicablePolicies([agentBurst], rateRequestOf('alice', { agent: { name: 'trip-bot' } }, { countsTools: false, isTool: () => false }));
        expect(claimed!.subject).not.toBe(verified!.subject);
      }),
    );
  });

  it('at the edge: an agent at its quota is refused 429 whatever name it sends next', async () => {
    const limiter = new RateLimiter({ policies: [agentBurst], counters: new MemoryCounters(), now: () => new Date(Date.UTC(2030, 0, 1, 12)) });
    const gate = { limiter, tools: toolRegistry };
    const lines: unknown[] = [];
    const logger = { info: (_m: string, data: unknown) => lines.push(data) } as unknown as Logger;
    const principal = { sub: 'alice', roles: [], agent: 'trip-bot' };
    const send = (name: string) =>
      admitRequest(gate, { routeKey: 'POST /v1/actions', principal, body: { agent: { name }, tool: 'travel.search_flights' }, logger });
    for (const name of ['a', 'b', 'c']) await send(name);
    const refused = await send('d').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ProblemError);
    expect((refused as ProblemError).problem.status).toBe(429);
    expect(lines).toEqual([expect.objectContaining({ audit: 'ratelimit.refused', principal: 'alice', agent: 'trip-bot', agentVerified: true, policies: ['agent-burst'] })]);
    // Another verified agent of the same principal has its own quota.
    await expect(admitRequest(gate, { routeKey: 'POST /v1/actions', principal: { ...principal, agent: 'other-bot' }, body: { agent: { name: 'd' } }, logger })).resolves.toBeDefined();
  });
});

// ── through the whole local control plane ──────────────────────────────────

const anomaly: AnomalySettings = {
  bucketSeconds: 60,
  baselineBuckets: 10,
  minBaselineBuckets: 3,
  factor: 5,
  floors: { denials: 5 },
  action: 'halt',
  haltMode: 'stop',
  cooldownSeconds: 600,
};
const clock = { t: Date.parse('2030-03-05T00:00:00Z') };

let cp: TestControlPlane;
let operator: string;
let bob: string;

/** alice's token as presented by `agent` (RFC 8693 act claim): the verified agent. */
const agentToken = (agent: string) => cp.token('alice', { roles: ['Employee'], manager: 'bob', claims: { act: { sub: agent } } });

beforeAll(async () => {
  cp = await startTestControlPlane({
    controlPlane: {
      limits: parseLimits(JSON.stringify({ ...quietBreakers().limits, anomaly }), 'test-limits.json'),
      anomalyClock: () => new Date(clock.t),
      reconcileIntervalMs: 0,
      retryIntervalMs: 300,
      vendorTimeoutMs: 3_000,
    },
  });
  operator = await cp.token('olivia', { roles: ['KillSwitch'] });
  bob = await cp.token('bob', { roles: ['Employee', 'Manager'] });
});
afterAll(async () => {
  await cp?.close();
});
afterEach(() => {
  for (const vendor of ['travel', 'payments']) cp.cp.vendors.admin.setFaults(vendor, {});
});

async function send(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${cp.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function settled(id: string) {
  await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.receiptKey, { timeout: 20_000 }).toBeTruthy();
  return (await cp.cp.ledger.getAction(id))!;
}

const search = (name: string, args: Record<string, unknown> = { origin: 'SFO', destination: 'JFK', date: isoDay(10) }) => ({
  agent: { name },
  tool: 'travel.search_flights',
  arguments: args,
});

describe('halts on a verified agent, end to end', () => {
  it('intake: the halted agent is refused under a new name; another agent of the same principal is not', async () => {
    const bot = await agentToken('halted-bot');
    const halt = await send('POST', '/v1/halts', operator, { scope: 'agent', target: 'halted-bot', reason: 'looping' });
    expect(halt.status).toBe(201);
    try {
      for (const name of ['halted-bot', 'renamed-bot', 'trip-bot']) {
        const refused = await cp.post(bot, search(name));
        expect(refused.body).toMatchObject({ status: 403, type: 'urn:airlock:problem:halted', haltId: halt.body.id });
      }
      expect((await cp.post(await agentToken('calm-bot'), search('calm-bot'))).status).toBe(200);
    } finally {
      await send('DELETE', `/v1/halts/${halt.body.id}`, operator, { reason: 'fixed' });
    }
    expect((await cp.post(bot, search('renamed-bot'))).status).toBe(200);
  });

  it('GET /v1/limits shows a verified agent its own quota, whatever agent name it asks about', async () => {
    const seen = await cp.get(await agentToken('quota-bot'), '/v1/limits?agent=anything-else');
    expect(seen.status).toBe(200);
    expect(seen.body.policies.filter((p: { scope: string }) => p.scope === 'agent').map((p: { subject: string }) => p.subject)).toEqual(['quota-bot']);
  });

  it('saga: a running plan of the halted agent stops before its next step though it declared another name', async () => {
    cp.cp.vendors.admin.setFaults('travel', { latencyMs: 800 });
    const started = await cp.post(await agentToken('runaway-bot'), { ...travelPlan(), agent: { name: 'innocent-bot' } }, { prefer: 'respond-async' });
    expect(started.status).toBe(202);
    const id = started.body.id as string;
    // The stored record keeps the verified agent: what the saga matches halts against.
    expect((await cp.cp.ledger.getAction(id))?.principal.agent).toBe('runaway-bot');
    await expect.poll(async () => (await cp.cp.store.listSteps(id)).some((s) => s.stepId === 'hold'), { timeout: 10_000, interval: 20 }).toBe(true);
    const halt = await send('POST', '/v1/halts', operator, { scope: 'agent', target: 'runaway-bot', reason: 'runaway', mode: 'stop' });
    expect(halt.status).toBe(201);
    cp.cp.vendors.admin.setFaults('travel', {});
    try {
      const action = await settled(id);
      expect(action.status).toBe('compensated');
      expect(action.statusReason).toMatch(/^ActionHaltedError/);
      const stopped = (await cp.cp.store.list(id)).find((e) => e.type === 'action.stopped');
      expect(stopped).toMatchObject({ data: { haltId: halt.body.id, stepId: 'pay' } });
    } finally {
      await send('DELETE', `/v1/halts/${halt.body.id}`, operator, { reason: 'done' });
    }
  });

  it('approvals: a vote on the halted agent\'s work is refused though the work declared another name', async () => {
    const asked = await cp.post(await agentToken('vote-bot'), { ...bigTrip(), agent: { name: 'someone-else' } }, { prefer: 'respond-async' });
    const approvalId = approvalIdFor(asked.body.id);
    await expect.poll(async () => (await send('GET', `/v1/approvals/${approvalId}`, bob)).status, { timeout: 10_000 }).toBe(200);
    const preview = (await send('GET', `/v1/approvals/${approvalId}`, bob)).body;
    const halt = await send('POST', '/v1/halts', operator, { scope: 'agent', target: 'vote-bot', reason: 'under review' });
    const vote = { decision: 'approve', planHash: preview.planHash };
    try {
      const refused = await send('POST', `/v1/approvals/${approvalId}/decision`, bob, vote);
      expect(refused.body).toMatchObject({ status: 403, type: 'urn:airlock:problem:halted', haltId: halt.body.id });
    } finally {
      await send('DELETE', `/v1/halts/${halt.body.id}`, operator, { reason: 'reviewed' });
    }
    expect((await send('POST', `/v1/approvals/${approvalId}/decision`, bob, vote)).status).toBe(200);
    expect((await settled(asked.body.id)).status).toBe('completed');
  });
});

describe('the anomaly guard and the verified agent, end to end', () => {
  it('tracks one baseline per verified agent whatever names it declares, and halts it by its verified id', async () => {
    const bot = await agentToken('shifty-bot');
    let n = 0;
    const name = () => `alias-${n++}`;
    for (let minute = 0; minute < 4; minute++) {
      expect((await cp.post(bot, search(name()), { key: `sh-ok-${minute}` })).status).toBe(200);
      clock.t += 60_000;
    }
    // It loops on a call it gets wrong, a new name on every request: still one agent.
    for (let i = 0; i < 8; i++) {
      const status = (await cp.post(bot, search(name(), { origin: 'nowhere' }), { key: `sh-bad-${i}` })).status;
      expect([400, 403]).toContain(status);
    }
    const next = await cp.post(bot, search(name(), { origin: 'SFO', destination: 'JFK', date: isoDay(11) }), { key: 'sh-after' });
    expect(next.body).toMatchObject({ status: 403, type: 'urn:airlock:problem:halted' });
    const trail = (await cp.cp.composition.guardrails.listHaltEvents()).filter((e) => e.type === 'anomaly.detected');
    expect(trail).toEqual([
      expect.objectContaining({ actor: ANOMALY_GUARD_ACTOR, data: expect.objectContaining({ agent: 'shifty-bot', verified: true, signal: 'denials', observed: 5 }) }),
    ]);
    const haltId = (trail[0]!.data as { haltId: string }).haltId;
    expect(next.body.haltId).toBe(haltId);
    expect((await send('DELETE', `/v1/halts/${haltId}`, operator, { reason: 'loop fixed' })).status).toBe(200);
  });
});
