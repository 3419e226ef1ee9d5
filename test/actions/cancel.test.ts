import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { bigTrip, startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';

/**
 * POST /v1/actions/{id}/cancel through the whole local control plane: the same handlers, the
 * same ASL under the local saga runner, sandbox vendors whose latency keeps a plan running
 * long enough to cancel it mid-way.
 */

let cp: TestControlPlane;
let alice: string;
let bob: string;
let carol: string;
let operator: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
  bob = await cp.token('bob', { roles: ['Employee', 'Manager'] });
  carol = await cp.token('carol', { roles: ['Employee'] });
  operator = await cp.token('olivia', { roles: ['KillSwitch'] });
});
afterAll(async () => {
  await cp?.close();
});
afterEach(() => {
  for (const vendor of ['travel', 'payments']) cp.cp.vendors.admin.setFaults(vendor, {});
});

async function send(method: string, path: string, token: string, body?: unknown, raw?: string) {
  const res = await fetch(`${cp.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(raw !== undefined ? { body: raw } : body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

async function settled(id: string) {
  await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.receiptKey, { timeout: 20_000 }).toBeTruthy();
  return (await cp.cp.ledger.getAction(id))!;
}

async function receiptOf(key: string) {
  return JSON.parse(Buffer.from((await cp.cp.receipts.store.get(key))!).toString('utf8'));
}

/** Submits the big trip (needs bob's approval) and waits until the approval is open. */
async function awaitingApproval(): Promise<string> {
  const asked = await cp.post(alice, bigTrip(), { prefer: 'respond-async' });
  expect(asked.status).toBe(202);
  const id = asked.body.id as string;
  await expect.poll(async () => (await send('GET', `/v1/approvals/${approvalIdFor(id)}`, bob)).status, { timeout: 10_000 }).toBe(200);
  // The approval item is written before its audit event: wait for both, so the chain is still.
  await expect.poll(async () => (await cp.cp.store.list(id)).map((e) => e.type), { timeout: 10_000 }).toContain('approval.requested');
  return id;
}

describe('cancelling an action waiting for approval', () => {
  it('ends it cancelled at once, closes its approval (out of the inbox, no votes), answers the saga, and is idempotent', async () => {
    const id = await awaitingApproval();
    const preview = (await send('GET', `/v1/approvals/${approvalIdFor(id)}`, bob)).body;

    const first = await send('POST', `/v1/actions/${id}/cancel`, alice, { reason: 'plans changed' });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id, status: 'cancelled' });
    const again = await send('POST', `/v1/actions/${id}/cancel`, alice);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id, status: 'cancelled' });

    expect((await send('GET', `/v1/approvals/${approvalIdFor(id)}`, bob)).body).toMatchObject({ status: 'cancelled' });
    const inbox = await send('GET', '/v1/approvals', bob);
    expect(inbox.body.items.map((a: { id: string }) => a.id)).not.toContain(approvalIdFor(id));
    const vote = await send('POST', `/v1/approvals/${approvalIdFor(id)}/decision`, bob, { decision: 'approve', planHash: preview.planHash });
    expect(vote.status).toBe(409);

    const action = await settled(id);
    expect(action.status).toBe('cancelled');
    expect(action.statusReason).toBe('cancelled by alice: plans changed');
    const events = await cp.cp.store.list(id);
    // Audited once however often it was asked, with who asked.
    expect(events.filter((e) => e.type === 'action.cancelled')).toEqual([
      expect.objectContaining({ actor: 'alice', data: { reason: 'plans changed', from: 'awaiting_approval' } }),
    ]);
    expect(events.find((e) => e.type === 'approval.cancelled')).toMatchObject({ actor: 'alice' });
    const receipt = await receiptOf(action.receiptKey!);
    expect(receipt.outcome).toMatchObject({ status: 'cancelled', reason: 'cancelled by alice: plans changed' });
    expect(receipt.approvals[0]).toMatchObject({ outcome: 'cancelled', decidedBy: 'alice', reason: 'plans changed' });
    expect(receipt.events.chain).toContainEqual(expect.objectContaining({ type: 'action.cancelled', actor: 'alice' }));
    // Nothing reached a vendor.
    expect(cp.cp.vendors.admin.stats('travel').sideEffects.hold_seat ?? 0).toBe(0);
  });

  it('lets the kill-switch role cancel anyone\'s action; an approver who may see it gets 403, a stranger 404', async () => {
    const id = await awaitingApproval();
    const approver = await send('POST', `/v1/actions/${id}/cancel`, bob);
    expect(approver.status).toBe(403);
    expect(approver.body).toMatchObject({ type: 'urn:airlock:problem:forbidden', requiredRole: 'KillSwitch' });
    expect((await send('POST', `/v1/actions/${id}/cancel`, carol)).status).toBe(404);
    expect((await cp.cp.ledger.getAction(id))?.cancel).toBeUndefined();

    const byOperator = await send('POST', `/v1/actions/${id}/cancel`, operator, { reason: 'incident' });
    expect(byOperator.status).toBe(200);
    expect((await cp.cp.store.list(id)).find((e) => e.type === 'action.cancelled')).toMatchObject({ actor: 'olivia' });
    expect((await settled(id)).status).toBe('cancelled');
  });
});

describe('cancelling a running action', () => {
  it('stops it before its next step, compensates what it did and ends cancelled (202 at once)', async () => {
    // Travel answers in 0.4 s (well under the 1 s vendor budget, even on a loaded machine): time to cancel the plan while it runs.
    cp.cp.vendors.admin.setFaults('travel', { latencyMs: 400 });
    const started = await cp.post(alice, travelPlan(), { prefer: 'respond-async' });
    const id = started.body.id as string;
    await expect.poll(async () => (await cp.cp.store.listSteps(id)).some((s) => s.stepId === 'hold'), { timeout: 10_000, interval: 20 }).toBe(true);
    const cancel = await send('POST', `/v1/actions/${id}/cancel`, alice, { reason: 'found a cheaper fare' });
    expect(cancel.status).toBe(202);
    expect(cancel.body).toMatchObject({ id, status: 'running' });
    cp.cp.vendors.admin.setFaults('travel', {});

    const action = await settled(id);
    expect(action.status).toBe('cancelled');
    expect(action.statusReason).toMatch(/^ActionCancelledError/);
    const steps = await cp.cp.store.listSteps(id);
    expect(steps.filter((s) => s.kind === 'forward').map((s) => s.stepId).sort()).toEqual(['hold', 'search']);
    expect(steps.find((s) => s.kind === 'compensate')).toMatchObject({ stepId: 'hold', status: 'complete' });
    expect(cp.cp.vendors.admin.stats('payments').requests.authorize ?? 0).toBe(0);
    const events = await cp.cp.store.list(id);
    expect(events.find((e) => e.type === 'action.cancelled')).toMatchObject({ actor: 'alice', data: { from: 'running' } });
    expect(events.find((e) => e.type === 'action.stopped')).toMatchObject({ actor: 'alice', data: { cause: 'cancel', stepId: 'pay' } });
    const receipt = await receiptOf(action.receiptKey!);
    expect(receipt.outcome.status).toBe('cancelled');
    expect(receipt.events.chain.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['action.cancelled', 'action.stopped']));

    // Finished now: the same call is still answered (idempotent), not a 409.
    expect((await send('POST', `/v1/actions/${id}/cancel`, alice)).status).toBe(200);
  });
});

describe('what cannot be cancelled', () => {
  it('a finished action is 409 and stays as it was', async () => {
    const done = await cp.post(alice, { tool: 'echo.say', arguments: { message: 'hi' }, agent: { name: 'echo-bot' } });
    expect(done.body.status).toBe('completed');
    const before = await cp.cp.store.list(done.body.id);
    const res = await send('POST', `/v1/actions/${done.body.id}/cancel`, alice);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ type: 'urn:airlock:problem:conflict', actionStatus: 'completed' });
    expect(await cp.cp.store.list(done.body.id)).toEqual(before);
    expect((await cp.cp.ledger.getAction(done.body.id))?.cancel).toBeUndefined();
  });

  it('bad ids are 404 and bad bodies 400, with nothing recorded (property)', async () => {
    const id = await awaitingApproval();
    const before = await cp.cp.store.list(id);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ reason: fc.oneof(fc.integer(), fc.constant(''), fc.string({ minLength: 501, maxLength: 600 }).filter((s) => s.trim().length > 500)) }),
          fc.dictionary(fc.string().filter((k) => k !== 'reason'), fc.jsonValue(), { minKeys: 1 }),
          fc.jsonValue().filter((v) => v === null || typeof v !== 'object' || Array.isArray(v)),
        ),
        async (body) => {
          const res = await send('POST', `/v1/actions/${id}/cancel`, alice, undefined, JSON.stringify(body));
          expect(res.status).toBe(400);
          expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
        },
      ),
      { numRuns: 40 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 60 }).filter((s) => !/^act_[0-9A-HJKMNP-TV-Z]{26}$/.test(s)), async (bad) => {
        const res = await send('POST', `/v1/actions/${encodeURIComponent(bad)}/cancel`, alice, {});
        expect([404, 405]).toContain(res.status);
      }),
      { numRuns: 40 },
    );
    expect(await cp.cp.store.list(id)).toEqual(before);
    expect((await cp.cp.ledger.getAction(id))).toMatchObject({ status: 'awaiting_approval' });
    expect((await cp.cp.ledger.getAction(id))?.cancel).toBeUndefined();
    expect((await send('POST', `/v1/actions/${id}/cancel`, alice)).status).toBe(200);
  });
});
