import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DynamoGuardrailStore } from '../../lambdas/adapters/aws/dynamo-guardrails';
import { parseLimits, readLimitsFile } from '../../lambdas/limits/config';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { isoDay } from '../helpers/dates';
import { bigTrip, startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';

/**
 * Breakers and the kill switch through the whole local control plane: the same handlers, the
 * same ASL under the local saga runner, and sandbox vendors whose fault injection makes a
 * vendor fail for real (HTTP 503), so a breaker opens the way it would in AWS.
 */

const base = readLimitsFile().limits;
// A low threshold and a reset without jitter keep the test exact; the test ends the reset
// itself (by moving the breaker's retryAt) instead of waiting a minute.
const limits = parseLimits(
  JSON.stringify({
    ...base,
    // Only payments trips easily: a slow machine's timeouts on travel (the halt tests slow it
    // down on purpose) must not open travel's breaker under the other tests.
    breakers: {
      default: { ...base.breakers.default, failures: 10_000 },
      connectors: { payments: { failures: 3, windowSeconds: 60, resetSeconds: 60, jitter: 0, halfOpenSuccesses: 2 } },
    },
  }),
);

let cp: TestControlPlane;
let alice: string;
let bob: string;
let operator: string;
let store: DynamoGuardrailStore;

beforeAll(async () => {
  // Retries 300 ms apart: a paused step is retried 6 times (~2 s) before it gives up.
  // A 3 s vendor budget: a hung call outlasts every function's 2 s breaker cache (see the in-doubt test).
  cp = await startTestControlPlane({ controlPlane: { limits, retryIntervalMs: 300, vendorTimeoutMs: 3_000 } });
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
  bob = await cp.token('bob', { roles: ['Employee', 'Manager'] });
  operator = await cp.token('olivia', { roles: ['KillSwitch'] });
  store = cp.cp.composition.guardrails;
});
afterAll(async () => {
  await cp?.close();
});
afterEach(() => {
  // A failed test must not leave a vendor failing for the next one.
  for (const vendor of ['travel', 'payments', 'procurement', 'iam']) cp.cp.vendors.admin.setFaults(vendor, {});
});

const payment = (amount: number, agent = 'bill-bot') => ({
  tool: 'payments.authorize',
  arguments: { amount, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa' },
  agent: { name: agent },
});

async function send(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${cp.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

async function settled(id: string) {
  await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.receiptKey, { timeout: 20_000 }).toBeTruthy();
  return (await cp.cp.ledger.getAction(id))!;
}

const eventTypes = async (id: string) => (await cp.cp.store.list(id)).map((e) => e.type);

describe('a circuit breaker on a failing vendor', () => {
  it('opens after 3 failures, fails the running step fast and compensates, refuses new work with 503, then half-opens and closes', async () => {
    cp.cp.vendors.admin.setFaults('payments', { failNext: [{ operation: 'authorize', count: 100, status: 503 }] });
    const started = await cp.post(alice, travelPlan(), { prefer: 'respond-async' });
    expect(started.status).toBe(202);
    const action = await settled(started.body.id);

    // The fourth attempt never reached the vendor: the breaker refused it in IssueGrant.
    expect(cp.cp.vendors.admin.stats('payments').requests.authorize).toBe(3);
    expect(action.status).toBe('compensated');
    expect(action.statusReason).toMatch(/^CircuitOpenError/);
    const events = await cp.cp.store.list(action.id);
    expect(events.find((e) => e.type === 'step.failed')?.data).toMatchObject({ error: { name: 'CircuitOpenError' } });
    // The hold was released: compensations still call the vendor.
    expect(cp.cp.vendors.admin.stats('travel').sideEffects.release_hold).toBe(1);
    expect((await store.getBreaker('payments')).phase).toBe('open');

    // New work needing payments is refused with 503 + Retry-After; other connectors are unaffected.
    // Intake reads the breaker through a 2 s cache: within that, new work is admitted and then
    // stopped in IssueGrant (without reaching the vendor); after it, refused at once.
    let refused = await cp.post(alice, payment(10));
    await expect.poll(async () => (refused = await cp.post(alice, payment(10))).status, { timeout: 10_000, interval: 500 }).toBe(503);
    expect(cp.cp.vendors.admin.stats('payments').requests.authorize).toBe(3);
    expect(refused.body).toMatchObject({ type: 'urn:airlock:problem:circuit-open', connector: 'payments', retryAfter: expect.any(Number) });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect((await cp.post(alice, { tool: 'echo.say', arguments: { message: 'still up' }, agent: { name: 'bill-bot' } })).status).toBe(200);

    // The vendor recovers and the reset ends (moved forward rather than waited for; each
    // function notices within its 2 s cache); trial calls go through and two successes close it.
    cp.cp.vendors.admin.setFaults('payments', {});
    const open = await store.getBreaker('payments');
    expect(await store.replaceBreaker({ ...open, retryAt: Date.now() }, open.version)).toBe(true);
    await expect.poll(async () => (await cp.post(alice, payment(11))).status, { timeout: 10_000, interval: 250 }).toBe(200);
    await expect.poll(async () => {
      if ((await store.getBreaker('payments')).phase !== 'closed') await cp.post(alice, payment(12));
      return (await store.getBreaker('payments')).phase;
    }, { timeout: 10_000, interval: 100 }).toBe('closed');
    const moves = await store.listBreakerTransitions('payments');
    expect(moves.map((m) => `${m.from}>${m.to}`)).toEqual(['closed>open', 'open>half_open', 'half_open>closed']);
    expect(moves[0]).toMatchObject({ actor: 'connector', figures: { failures: 3, failureLimit: 3, windowSeconds: 60, resetMs: 60_000 } });
  });

  it('retries to the end a step whose vendor may have acted, though the breaker opened meanwhile: nothing is left undone', async () => {
    // The vendor authorizes, then never answers: the attempt times out (outcome unknown).
    cp.cp.vendors.admin.setFaults('payments', { commitThenDrop: [{ operation: 'authorize', count: 1, mode: 'hang' }] });
    const authorized = () => cp.cp.vendors.admin.stats('payments').sideEffects.authorize ?? 0;
    const before = authorized();
    const started = await cp.post(alice, { ...travelPlan(), agent: { name: 'doubt-bot' } }, { prefer: 'respond-async' });
    const id = started.body.id as string;
    await expect.poll(async () => (await cp.cp.store.listSteps(id)).some((s) => s.stepId === 'pay'), { timeout: 10_000, interval: 10 }).toBe(true);
    // Meanwhile other traffic opens payments' breaker (as the sandbox's failures would).
    const closed = await store.getBreaker('payments');
    expect(await store.replaceBreaker({ ...closed, phase: 'open', retryAt: Date.now() + 60_000, changedAt: Date.now() }, closed.version)).toBe(true);
    try {
      // New work is refused once intake's cache has seen it open: by then the saga's has too,
      // and the hung attempt (3 s budget) has not yet timed out.
      await expect.poll(async () => (await cp.post(alice, payment(7))).status, { timeout: 10_000, interval: 200 }).toBe(503);
      const action = await settled(id);
      // The retry reached the vendor, which answered from its idempotency record: the authorization is kept and booked.
      expect(action.status).toBe('completed');
      expect(authorized()).toBeGreaterThan(before);
      expect((await cp.cp.store.listSteps(id)).find((s) => s.stepId === 'pay' && s.kind === 'forward')).toMatchObject({ status: 'complete' });
    } finally {
      const open = await store.getBreaker('payments');
      await store.replaceBreaker({ ...open, phase: 'closed', retryAt: 0, failures: 0, changedAt: Date.now() }, open.version);
      // Every function's 2 s cache sees it closed before the next test.
      await expect.poll(async () => (await cp.post(alice, payment(1))).body.status, { timeout: 10_000, interval: 500 }).toBe('completed');
    }
  });

  it('does not count refusals on the merits (4xx) as failures', async () => {
    cp.cp.vendors.admin.setFaults('travel', { failNext: [{ operation: 'search_flights', count: 5, status: 400 }] });
    const search = { tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date: isoDay(9) }, agent: { name: 'look-bot' } };
    for (let i = 0; i < 4; i++) expect(['failed', 'compensated']).toContain((await cp.post(alice, search)).body.status);
    expect((await store.getBreaker('travel')).phase).toBe('closed');
    cp.cp.vendors.admin.setFaults('travel', {});
  });
});

describe('the kill switch on running work', () => {
  it('stop: a running plan stops before its next step and compensates what it did; its receipt shows the halt', async () => {
    // Travel answers in 0.8 s (under the 1 s vendor budget): time to halt the plan while it runs.
    cp.cp.vendors.admin.setFaults('travel', { latencyMs: 800 });
    const started = await cp.post(alice, { ...travelPlan(), agent: { name: 'runaway-bot' } }, { prefer: 'respond-async' });
    expect(started.status).toBe(202);
    const id = started.body.id as string;
    await expect.poll(async () => (await cp.cp.store.listSteps(id)).some((s) => s.stepId === 'hold'), { timeout: 10_000, interval: 20 }).toBe(true);
    const halt = await send('POST', '/v1/halts', operator, { scope: 'agent', target: 'runaway-bot', reason: 'agent looping on bookings', mode: 'stop' });
    expect(halt.status).toBe(201);
    cp.cp.vendors.admin.setFaults('travel', {});

    const action = await settled(id);
    expect(action.status).toBe('compensated');
    expect(action.statusReason).toMatch(/^ActionHaltedError/);
    const steps = await cp.cp.store.listSteps(id);
    expect(steps.filter((s) => s.kind === 'forward').map((s) => s.stepId).sort()).toEqual(['hold', 'search']);
    expect(steps.find((s) => s.kind === 'compensate')).toMatchObject({ stepId: 'hold', status: 'complete' });
    const events = await cp.cp.store.list(id);
    const stopped = events.find((e) => e.type === 'action.stopped');
    expect(stopped).toMatchObject({ actor: 'olivia', data: { haltId: halt.body.id, reason: 'agent looping on bookings', mode: 'stop', stepId: 'pay' } });
    const receipt = JSON.parse(Buffer.from((await cp.cp.receipts.store.get(action.receiptKey!))!).toString('utf8'));
    expect(receipt.events.chain.map((e: { type: string }) => e.type)).toContain('action.stopped');

    // New work for that agent is refused while the halt lasts; nothing is recorded.
    const refused = await cp.post(alice, { ...payment(5), agent: { name: 'runaway-bot' } });
    expect(refused.body).toMatchObject({ status: 403, type: 'urn:airlock:problem:halted', haltId: halt.body.id, reason: 'agent looping on bookings' });
    expect((await send('DELETE', `/v1/halts/${halt.body.id}`, operator, { reason: 'loop fixed' })).status).toBe(200);
    expect((await cp.post(alice, { ...payment(5), agent: { name: 'runaway-bot' } })).status).toBe(200);
  });

  it('pause: a running plan waits before its next step and carries on when resumed', async () => {
    cp.cp.vendors.admin.setFaults('travel', { latencyMs: 800 });
    const started = await cp.post(alice, { ...travelPlan(), agent: { name: 'paused-bot' } }, { prefer: 'respond-async' });
    const id = started.body.id as string;
    await expect.poll(async () => (await cp.cp.store.listSteps(id)).some((s) => s.stepId === 'hold'), { timeout: 10_000, interval: 20 }).toBe(true);
    const halt = await send('POST', '/v1/halts', operator, { scope: 'principal', target: 'alice', reason: 'reviewing spend', mode: 'pause' });
    cp.cp.vendors.admin.setFaults('travel', {});
    await expect.poll(() => eventTypes(id), { timeout: 10_000, interval: 20 }).toContain('action.paused');
    expect((await cp.cp.ledger.getAction(id))?.status).toBe('running');
    await send('DELETE', `/v1/halts/${halt.body.id}`, operator, { reason: 'spend ok' });
    const action = await settled(id);
    expect(action.status).toBe('completed');
    // Paused once, recorded once, however many times the step was retried.
    expect((await eventTypes(id)).filter((t) => t === 'action.paused')).toHaveLength(1);
    // The Express run cannot wait: it handed the action to the Standard saga, which waited and ran it again.
    const report = cp.cp.runner.reportOf(id)!;
    expect(report.standardExecutions).toBe(1);
    expect(report.express.executions).toBeGreaterThanOrEqual(2);
  });

  it('pause: a plan held past its retries compensates instead of waiting forever', async () => {
    cp.cp.vendors.admin.setFaults('travel', { latencyMs: 800 });
    const started = await cp.post(alice, { ...travelPlan(), agent: { name: 'held-bot' } }, { prefer: 'respond-async' });
    const id = started.body.id as string;
    await expect.poll(async () => (await cp.cp.store.listSteps(id)).some((s) => s.stepId === 'hold'), { timeout: 10_000, interval: 20 }).toBe(true);
    const halt = await send('POST', '/v1/halts', operator, { scope: 'tool', target: 'payments.authorize', reason: 'payments frozen', mode: 'pause' });
    cp.cp.vendors.admin.setFaults('travel', {});
    const action = await settled(id);
    expect(action.status).toBe('compensated');
    expect(action.statusReason).toMatch(/^ActionPausedError/);
    await send('DELETE', `/v1/halts/${halt.body.id}`, operator, { reason: 'done' });
  });

  it('refuses votes on halted work (403 halted, recorded on the action) and accepts them after the resume', async () => {
    const asked = await cp.post(alice, bigTrip(), { prefer: 'respond-async' });
    const approvalId = approvalIdFor(asked.body.id);
    await expect.poll(async () => (await send('GET', `/v1/approvals/${approvalId}`, bob)).status, { timeout: 10_000 }).toBe(200);
    const preview = (await send('GET', `/v1/approvals/${approvalId}`, bob)).body;
    const halt = await send('POST', '/v1/halts', operator, { scope: 'connector', target: 'travel', reason: 'airline incident' });
    const vote = { decision: 'approve', planHash: preview.planHash };
    const refused = await send('POST', `/v1/approvals/${approvalId}/decision`, bob, vote);
    expect(refused.body).toMatchObject({ status: 403, type: 'urn:airlock:problem:halted', haltId: halt.body.id, reason: 'airline incident' });
    const events = await cp.cp.store.list(asked.body.id);
    expect(events.find((e) => e.type === 'approval.vote_refused')).toMatchObject({ actor: 'bob', data: { reason: 'halted', policyIds: ['airlock.halted'] } });
    await send('DELETE', `/v1/halts/${halt.body.id}`, operator, { reason: 'incident over' });
    expect((await send('POST', `/v1/approvals/${approvalId}/decision`, bob, vote)).status).toBe(200);
    expect((await settled(asked.body.id)).status).toBe('completed');
  });
});
