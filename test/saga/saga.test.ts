import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { StepRecord } from '../../lambdas/ports/steps';
import { startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';

let cp: TestControlPlane;
let alice: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['employee'], manager: 'bob', department: 'sales' });
});
afterAll(async () => {
  await cp?.close();
});
beforeEach(() => cp.cp.vendors.admin.reset());

const sideEffects = (connector: string) => cp.cp.vendors.admin.stats(connector).sideEffects;

async function runToEnd(body: unknown) {
  const res = await cp.post(alice, body, { prefer: 'respond-async' });
  expect([200, 202]).toContain(res.status);
  const id = res.body.id as string;
  await cp.cp.runner.idle();
  const action = await cp.cp.ledger.getAction(id);
  const steps = await cp.cp.store.listSteps(id);
  const events = await cp.cp.store.list(id);
  return { id, action: action!, steps, events };
}

const byKind = (steps: StepRecord[], kind: 'forward' | 'compensate') =>
  Object.fromEntries(steps.filter((s) => s.kind === kind).map((s) => [s.stepId, s]));

describe('the action saga, locally', () => {
  it('runs the travel plan search → hold → authorize → book, each side effect once', async () => {
    // Act
    const res = await cp.post(alice, travelPlan());
    // Assess: an allowed plan that finishes quickly answers with its result.
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('completed');
    expect(res.body.result.book.status).toBe('confirmed');
    expect(res.body.result.book.holdId).toBe(res.body.result.hold.holdId);
    expect(res.body.steps.map((s: { id: string; status: string }) => [s.id, s.status])).toEqual([
      ['search', 'completed'], ['hold', 'completed'], ['pay', 'completed'], ['book', 'completed'],
    ]);
    expect(res.body.receipt).toMatch(/^receipts\/dt=/);
    expect(sideEffects('travel')).toEqual({ hold_seat: 1, book_flight: 1 });
    expect(sideEffects('payments')).toEqual({ authorize: 1 });
    const events = await cp.cp.store.list(res.body.id);
    expect(events.filter((e) => e.type === 'grant.issued')).toHaveLength(4);
    // The event chain links each event to the one before.
    events.forEach((e, i) => expect(e.prevHash).toBe(i === 0 ? '0'.repeat(64) : events[i - 1]!.hash));
  });

  it.each([
    { at: 'hold', connector: 'travel', operation: 'hold_seat', undone: [] as string[] },
    { at: 'pay', connector: 'payments', operation: 'authorize', undone: ['hold'] },
    { at: 'book', connector: 'travel', operation: 'book_flight', undone: ['pay', 'hold'] },
  ])('a refusal at $at compensates every completed commit step once, in reverse', async ({ connector, operation, undone }) => {
    // Prepare: the vendor refuses the operation (400: not retryable).
    cp.cp.vendors.admin.setFaults(connector, { failNext: [{ operation, count: 1, status: 400, code: 'refused_for_test' }] });
    // Act
    const { action, steps, events } = await runToEnd(travelPlan());
    // Assess
    expect(action.status).toBe('compensated');
    expect(action.statusReason).toMatch(/VendorRejectedError/);
    const compensations = steps.filter((s) => s.kind === 'compensate');
    expect(compensations.map((s) => s.stepId).sort()).toEqual([...undone].sort());
    expect(compensations.every((s) => s.status === 'complete' && s.attempts === 1)).toBe(true);
    // Reverse order: the grants were issued last-step first.
    const order = events.filter((e) => e.type === 'grant.issued' && e.data.kind === 'compensate').map((e) => e.data.stepId);
    expect(order).toEqual(undone);
    const view = await cp.get(alice, `/v1/actions/${action.id}`);
    for (const id of undone) expect(view.body.steps.find((s: { id: string }) => s.id === id).compensation.status).toBe('completed');
    // No orphan at the vendors: what was held is released, what was authorized is voided.
    const undo = byKind(steps, 'compensate');
    if (undone.includes('hold')) expect((undo.hold!.output as { status: string }).status).toBe('released');
    if (undone.includes('pay')) expect((undo.pay!.output as { status: string }).status).toBe('voided');
    expect(sideEffects('travel').release_hold ?? 0).toBe(undone.includes('hold') ? 1 : 0);
    expect(sideEffects('payments').void_authorization ?? 0).toBe(undone.includes('pay') ? 1 : 0);
    expect(sideEffects('travel').book_flight ?? 0).toBe(0);
  });

  it('retries a vendor outage with backoff and calls the vendor for the step only until it succeeds', async () => {
    cp.cp.vendors.admin.setFaults('payments', { failNext: [{ operation: 'authorize', count: 2, status: 503 }] });
    const { action, steps } = await runToEnd(travelPlan());
    expect(action.status).toBe('completed');
    expect(byKind(steps, 'forward').pay!.attempts).toBe(3);
    expect(sideEffects('payments')).toEqual({ authorize: 1 });
  });

  it('commit then drop at the booking: reconciled, booked exactly once', async () => {
    cp.cp.vendors.admin.setFaults('travel', { commitThenDrop: [{ operation: 'book_flight', count: 1, mode: 'destroy' }] });
    const { action } = await runToEnd(travelPlan());
    expect(action.status).toBe('completed');
    expect(sideEffects('travel')).toEqual({ hold_seat: 1, book_flight: 1 });
    // The drop happened and was reconciled by looking the booking up by its client reference.
    expect(cp.cp.vendors.admin.stats('travel').requests.list_bookings).toBeGreaterThanOrEqual(1);
  });

  it('a compensation that keeps failing ends the action failed, names the step and raises an alarm event', async () => {
    cp.cp.vendors.admin.setFaults('travel', { failNext: [{ operation: 'book_flight', count: 1, status: 400 }] });
    cp.cp.vendors.admin.setFaults('payments', { failNext: [{ operation: 'void_authorization', count: 100, status: 503 }] });
    const { action, events, steps } = await runToEnd(travelPlan());
    expect(action.status).toBe('failed');
    expect(action.statusReason).toMatch(/compensation failed for pay \(payments\.void_authorization\)/);
    const alarm = events.find((e) => e.type === 'compensation.failed');
    expect(alarm?.data).toMatchObject({ stepId: 'pay', alarm: true });
    // The other compensation still ran.
    expect(byKind(steps, 'compensate').hold?.status).toBe('complete');
    expect(sideEffects('travel').release_hold).toBe(1);
  });

  it('a dry run walks the same path with no side effect', async () => {
    const { action, steps } = await runToEnd(travelPlan({ mode: 'dry_run' }));
    expect(action.status).toBe('completed');
    expect(steps.every((s) => s.dryRun)).toBe(true);
    expect(sideEffects('travel')).toEqual({});
    expect(sideEffects('payments')).toEqual({});
    expect((byKind(steps, 'forward').hold!.output as { dryRun: boolean }).dryRun).toBe(true);
    expect((byKind(steps, 'forward').book!.output as { check: string }).check).toBe('skipped');
    // The receipt says the whole thing was simulated.
    const view = await cp.get(alice, `/v1/actions/${action.id}`);
    const receipt = JSON.parse(readFileSync(join(cp.stateDir, 'audit', view.body.receipt as string), 'utf8')) as { outcome: { simulated: boolean }; request: { mode: string } };
    expect(receipt.outcome.simulated).toBe(true);
    // The request's trace id (the API request id locally, the X-Ray root in AWS) ties them together.
    expect((receipt as unknown as { traceId: string | null }).traceId).toMatch(/\S/);
    expect(receipt.request.mode).toBe('dry_run');
  });

  it('GET /v1/actions/{id} shows the outcome to its principal only', async () => {
    const { id } = await runToEnd(travelPlan());
    const mine = await cp.get(alice, `/v1/actions/${id}`);
    expect(mine.status).toBe(200);
    expect(mine.body.status).toBe('completed');
    const mallory = await cp.token('mallory', { roles: ['employee'] });
    expect((await cp.get(mallory, `/v1/actions/${id}`)).status).toBe(404);
  });
});
