import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * Found by the chaos storm: a plan that holds a seat, books it, then fails at a later step
 * compensated in reverse order — the booking was cancelled, then releasing the hold was
 * refused (`hold_consumed`: it had become the booking), so the saga raised an ALARM and ended
 * `failed` with the seat's hold step "not undone", although cancelling the booking had already
 * returned the seat. Cancelling a booking now releases the hold it consumed, so the hold's
 * compensation finds its goal state reached.
 */

let cp: TestControlPlane;
beforeAll(async () => {
  cp = await startTestControlPlane();
});
afterAll(async () => {
  await cp?.close();
});

describe('a plan that fails after its booking step', () => {
  it('ends compensated: booking cancelled, payment voided, hold released, every compensation completed', async () => {
    const alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
    const plan = travelPlan({ date: isoDay(40) });
    const failing = {
      id: 'deposit',
      tool: 'payments.authorize',
      arguments: { amount: 10, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_declined' },
    };
    const res = await cp.post(alice, { ...plan, plan: [...plan.plan, failing] }, { prefer: 'wait=20' });
    expect(res.status).toBe(200);
    const id = res.body.id as string;
    await expect.poll(async () => (await cp.get(alice, `/v1/actions/${id}`)).body.status, { timeout: 30_000 }).toMatch(/^(compensated|failed)$/);
    expect((await cp.get(alice, `/v1/actions/${id}`)).body.status).toBe('compensated');
    const view = (await cp.get(alice, `/v1/actions/${id}`)).body as { steps: { id: string; compensation?: { status: string } }[] };
    for (const step of ['hold', 'pay', 'book']) expect(view.steps.find((s) => s.id === step)?.compensation?.status).toBe('completed');
    expect(cp.cp.vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 1, book_flight: 1, cancel_booking: 1 });
  }, 60_000);
});
