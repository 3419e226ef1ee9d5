import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { reconcile, type ReconciliationReport } from '../../lambdas/reconcile/reconcile';
import { SecretNames } from '../../lambdas/ports/secrets';
import { startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * Reconciliation against sandbox vendors made to diverge from the ledger (over dynalite):
 * commit-then-drop at a vendor without idempotency (an orphan, then a duplicate), a booking
 * made outside Airlock, and a refund the vendor lost.
 */

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

const deps = () => cp.cp.composition.reconcile;

async function runToEnd(body: unknown) {
  const res = await cp.post(alice, body, { prefer: 'respond-async' });
  expect([200, 202]).toContain(res.status);
  const id = res.body.id as string;
  await cp.cp.runner.idle();
  return { id, action: (await cp.cp.ledger.getAction(id))!, steps: await cp.cp.store.listSteps(id) };
}

const findingsOf = (report: ReconciliationReport, actionId?: string) => report.findings.filter((f) => actionId === undefined || f.actionId === actionId);

async function storedReport(report: ReconciliationReport) {
  const bytes = await deps().vault.get(report.receiptKey);
  expect(bytes).toBeDefined();
  return JSON.parse(Buffer.from(bytes!).toString('utf8')) as ReconciliationReport & { actor: string };
}

async function vendorCall(connector: string, method: string, path: string, body?: unknown) {
  const key = await deps().secrets.getSecret(SecretNames.vendorCredential(connector));
  const res = await fetch(`${cp.cp.vendors.baseUrls[connector]}${path}`, {
    method,
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  expect(res.status).toBeLessThan(300);
  return (await res.json()) as Record<string, any>;
}

describe('reconcile against vendors', () => {
  it('finds nothing when the ledger and the vendors agree, and still writes its receipt', async () => {
    const { action } = await runToEnd(travelPlan());
    expect(action.status).toBe('completed');
    const report = await reconcile(deps());
    expect(findingsOf(report, action.id)).toEqual([]);
    expect(report.checked.travel!.steps).toBeGreaterThanOrEqual(2);
    expect(report.checked.payments!.steps).toBeGreaterThanOrEqual(1);
    expect((await storedReport(report)).runId).toBe(report.runId);
    expect(report.receiptKey).toMatch(/^reconciliations\/dt=\d{4}-\d{2}-\d{2}\/rec_[0-9A-Z]{26}\.json$/);
  });

  it('commit-then-drop at a vendor without idempotency: the booking the ledger failed is an orphan; --fix cancels it', async () => {
    // Prepare: the booking commits and its answer is lost, the lookup fails, and the vendor
    // ignores the key on the retry (which the booked hold then refuses): the step fails, the
    // saga undoes the rest, and the booking lives on at the vendor.
    cp.cp.vendors.admin.setFaults('travel', {
      commitThenDrop: [{ operation: 'book_flight', count: 1, mode: 'destroy' }],
      failNext: [{ operation: 'list_bookings', count: 1, status: 503 }],
      ignoreIdempotency: [{ operation: 'book_flight', count: 2 }],
    });
    const { id, action, steps } = await runToEnd(travelPlan());
    expect(['compensated', 'failed']).toContain(action.status);
    expect(steps.find((s) => s.stepId === 'book' && s.kind === 'forward')!.status).toBe('failed');
    const live = cp.cp.vendors.admin.live('travel').filter((l) => l.object.startsWith('booking'));
    expect(live).toHaveLength(1);

    // Act
    const report = await reconcile(deps());
    // Assess
    const found = findingsOf(report, id);
    const bookingId = live[0]!.object.slice('booking '.length);
    const booking = expect.objectContaining({ kind: 'orphan', connector: 'travel', tool: 'travel.book_flight', stepId: 'book', vendorId: bookingId });
    // The hold lives on inside that booking (the saga's release of a booked hold could not undo it).
    const hold = expect.objectContaining({ kind: 'orphan', tool: 'travel.hold_seat', stepId: 'hold' });
    expect(found).toEqual(action.status === 'failed' ? [booking, hold] : [booking]);
    expect(found.every((f) => f.fix === undefined)).toBe(true);
    const events = await cp.cp.store.list(id);
    expect(events.filter((e) => e.type === 'reconcile.finding').map((e) => e.data.vendorId)).toContain(bookingId);

    const fixed = await reconcile(deps(), { fix: true, actor: 'ops' });
    expect(findingsOf(fixed, id).find((f) => f.vendorId === bookingId)!.fix).toEqual({ tool: 'travel.cancel_booking', outcome: 'compensated' });
    expect(cp.cp.vendors.admin.live('travel').filter((l) => l.object.startsWith('booking'))).toEqual([]);
    expect((await storedReport(fixed)).actor).toBe('ops');
    // Fixed is fixed: the next run finds nothing for this action.
    expect(findingsOf(await reconcile(deps()), id)).toEqual([]);
  });

  it('a duplicate at the vendor (a retry it did not deduplicate): found, and --fix releases the extra hold only', async () => {
    cp.cp.vendors.admin.setFaults('travel', {
      commitThenDrop: [{ operation: 'hold_seat', count: 1, mode: 'destroy' }],
      failNext: [{ operation: 'list_holds', count: 1, status: 503 }],
      ignoreIdempotency: [{ operation: 'hold_seat', count: 2 }],
    });
    const date = isoDay(15);
    const { id, action, steps } = await runToEnd({
      agent: { name: 'trip-bot' },
      tool: 'travel.hold_seat',
      arguments: { flightId: `SB102-${date}`, seats: 1 },
    });
    expect(action.status).toBe('completed');
    const recorded = (steps.find((s) => s.kind === 'forward')!.output as { holdId: string }).holdId;
    expect(cp.cp.vendors.admin.stats('travel').sideEffects.hold_seat).toBe(2);

    const report = await reconcile(deps(), { fix: true });
    const found = findingsOf(report, id);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ kind: 'duplicate', tool: 'travel.hold_seat', fix: { tool: 'travel.release_hold', outcome: 'compensated' } });
    expect(found[0]!.vendorId).not.toBe(recorded);
    const holds = cp.cp.vendors.admin.live('travel').filter((l) => l.object.startsWith('hold'));
    expect(holds.map((h) => h.object)).toEqual([`hold ${recorded}`]);
  });

  it('a booking made outside Airlock is reported as unknown and never touched by --fix', async () => {
    const date = isoDay(16);
    const hold = await vendorCall('travel', 'POST', '/v1/holds', { flightId: `SB102-${date}`, seats: 1 });
    const booking = await vendorCall('travel', 'POST', '/v1/bookings', {
      holdId: hold.holdId,
      travelers: [{ firstName: 'Grace', lastName: 'Hopper' }],
      contact: { email: 'grace@example.com' },
      price: hold.fare ? { amountMinor: hold.fare.amountMinor, currency: hold.fare.currency } : undefined,
    });
    const report = await reconcile(deps(), { fix: true });
    const found = report.findings.filter((f) => f.vendorId === booking.bookingId);
    expect(found).toEqual([expect.objectContaining({ kind: 'unknown', connector: 'travel', tool: 'travel.book_flight', fix: { skipped: expect.stringMatching(/no ledger step/) } })]);
    expect(found[0]!.actionId).toBeUndefined();
    expect(cp.cp.vendors.admin.live('travel').map((l) => l.object)).toContain(`booking ${booking.bookingId}`);
    // The stored receipt names ids only: nobody's name or email.
    const stored = JSON.stringify(await storedReport(report));
    expect(stored).not.toMatch(/Grace|Hopper|grace@example/);
  });

  it('a refund the vendor lost: compensated in Airlock but live at the vendor; --fix refunds it again', async () => {
    const date = isoDay(17);
    // Prepare: authorize, capture, then a hold the vendor refuses: the capture is refunded.
    cp.cp.vendors.admin.setFaults('travel', { failNext: [{ operation: 'hold_seat', count: 1, status: 400, code: 'refused_for_test' }] });
    const { id, steps } = await runToEnd({
      agent: { name: 'trip-bot' },
      plan: [
        { id: 'pay', tool: 'payments.authorize', arguments: { amount: 20, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa' } },
        { id: 'charge', tool: 'payments.capture', arguments: { authorizationId: { $ref: 'steps.pay.output.authorizationId' }, amount: 20, currency: 'USD' } },
        { id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: `SB102-${date}`, seats: 1 } },
      ],
    });
    const refund = steps.find((s) => s.stepId === 'charge' && s.kind === 'compensate');
    expect(refund?.status).toBe('complete');
    expect(findingsOf(await reconcile(deps()), id)).toEqual([]);
    // The vendor loses the refund.
    expect(cp.cp.vendors.admin.lose('payments', (refund!.output as { refundId: string }).refundId)).toBe(true);

    const report = await reconcile(deps(), { fix: true });
    const found = findingsOf(report, id);
    expect(found).toEqual([expect.objectContaining({ kind: 'compensated_live', tool: 'payments.capture', stepId: 'charge', fix: { tool: 'payments.refund', outcome: 'compensated' } })]);
    expect(findingsOf(await reconcile(deps()), id)).toEqual([]);
  });

  it('a vendor that cannot be asked is named in the report; the others are still reconciled', async () => {
    cp.cp.vendors.admin.setFaults('payments', { failNext: [{ operation: '*', count: 50, status: 503 }] });
    await runToEnd({ agent: { name: 'trip-bot' }, tool: 'travel.hold_seat', arguments: { flightId: `SB102-${isoDay(18)}`, seats: 1 } });
    const report = await reconcile(deps());
    expect(report.unreachable).toEqual([{ connector: 'payments', error: expect.any(String) }]);
    expect(report.checked.travel!.steps).toBeGreaterThanOrEqual(1);
  });
});
