import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLimits, readLimitsFile } from '../../lambdas/limits/config';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * Spend caps through the local runtime (same handlers, ASL and adapters as AWS): a plan whose
 * known amounts cross a cap is refused at intake (403 spend-cap-exceeded, recorded, receipted);
 * a commit step whose amount is only known at run time is refused by its reservation before
 * the vendor is called, and the steps before it are compensated, their reservations released.
 */

let cp: TestControlPlane;
let alice: string;

// The shipped file, with caps small enough to reach: $200 a day of travel, $1,000 of payments.
const shipped = readLimitsFile().limits;
const limits = parseLimits(
  JSON.stringify({
    ...shipped,
    spendCaps: [
      { id: 'travel-daily', scope: 'principal', period: 'day', amount: 200, connectors: ['travel'] },
      { id: 'payments-daily', scope: 'principal', period: 'day', amount: 1000, connectors: ['payments'] },
    ],
  }),
);

beforeAll(async () => {
  cp = await startTestControlPlane({ controlPlane: { limits } });
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
}, 60_000);
afterAll(async () => {
  await cp?.close();
});

/** Hold a seat on SB102 ($274.50), authorize $100, then book at the hold's price (known only once the hold exists). */
function tripPricedAtRunTime(date: string) {
  return {
    agent: { name: 'trip-bot' },
    plan: [
      { id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: `SB102-${date}`, seats: 1 } },
      { id: 'pay', tool: 'payments.authorize', arguments: { amount: 100, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa' } },
      {
        id: 'book',
        tool: 'travel.book_flight',
        arguments: {
          holdId: { $ref: 'steps.hold.output.holdId' },
          travelers: [{ firstName: 'Ada', lastName: 'Lovelace' }],
          contact: { email: 'ada@example.com' },
          price: { $ref: 'steps.hold.output.total' },
        },
      },
    ],
  };
}

const usage = async (key: string) => (await cp.cp.composition.saga.spendCaps!.store.usage([key])).get(key) ?? { used: 0, reserved: 0, committed: 0 };

describe('spend caps in the local runtime', () => {
  it('refuses a commit step by its cap before the vendor call, compensates the steps before it and releases their reservations', async () => {
    // Act
    const res = await cp.post(alice, tripPricedAtRunTime(isoDay(21)), { prefer: 'wait=15' });
    // Assess: the action ended compensated, and says which cap refused.
    const id = (res.body.id ?? res.body.actionId) as string;
    await cp.cp.runner.idle();
    const got = await cp.get(alice, `/v1/actions/${id}`);
    expect(got.body.status).toBe('compensated');
    expect(got.body.statusReason).toMatch(/SpendCapExceededError: spend-cap-exceeded: cap "travel-daily"/);
    // The book step never reached the vendor: no forward record; hold and pay were undone.
    const steps = await cp.cp.store.listSteps(id);
    expect(steps.filter((s) => s.stepId === 'book')).toEqual([]);
    expect(steps.filter((s) => s.kind === 'compensate' && s.status === 'complete').map((s) => s.stepId).sort()).toEqual(['hold', 'pay']);
    // The refusal is audited with the cap, and the payment's reservation was given back.
    const events = await cp.cp.store.list(id);
    expect(events.find((e) => e.type === 'spend.cap_refused')?.data).toMatchObject({ stepId: 'book', capId: 'travel-daily', requested: 27_450, limit: 20_000 });
    expect(events.find((e) => e.type === 'spend.settled')?.data).toEqual({ final: [], released: ['pay'] });
    const day = (got.body.createdAt as string).slice(0, 10);
    expect(await usage(`payments-daily#${day}#alice`)).toEqual({ used: 0, reserved: 0, committed: 0 });
    expect(await usage(`travel-daily#${day}#alice`)).toEqual({ used: 0, reserved: 0, committed: 0 });
    // The receipt says which cap.
    expect(got.body.receipt).toBeTruthy();
    const receipt = JSON.parse(Buffer.from((await cp.cp.receipts.store.get(got.body.receipt as string))!).toString('utf8'));
    expect(receipt.outcome).toMatchObject({ status: 'compensated', reason: expect.stringContaining('cap "travel-daily"') });
  }, 60_000);

  it('refuses up front, with 403 spend-cap-exceeded naming the cap, a plan whose known amounts cross it', async () => {
    const res = await cp.post(alice, {
      agent: { name: 'trip-bot' },
      tool: 'payments.authorize',
      arguments: { amount: 1000.01, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa' },
    });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({
      type: 'urn:airlock:problem:spend-cap-exceeded',
      status: 403,
      spendCap: { capId: 'payments-daily', scope: 'principal', period: 'day', limit: 100_000, used: 0, requested: 100_001, currency: 'USD' },
    });
    expect(res.body.detail).toMatch(/cap "payments-daily"/);
    // Recorded as denied and receipted, like any refusal.
    await cp.cp.runner.idle();
    const got = await cp.get(alice, `/v1/actions/${res.body.actionId}`);
    expect(got.body.status).toBe('denied');
    expect(got.body.decision.spendCap.capId).toBe('payments-daily');
    expect(got.body.receipt).toBeTruthy();
  }, 60_000);

  it('makes completed spend final: what fits runs, and the cap then holds the rest back', async () => {
    const pay = (amount: number) => ({
      agent: { name: 'bill-bot' },
      tool: 'payments.authorize',
      arguments: { amount, currency: 'USD', payee: 'sandbox-hotel', paymentMethod: 'pm_card_visa' },
    });
    const first = await cp.post(alice, pay(600), { prefer: 'wait=15' });
    expect(first.status).toBe(200);
    expect(first.body.status).toBe('completed');
    const day = (first.body.createdAt as string).slice(0, 10);
    expect(await usage(`payments-daily#${day}#alice`)).toEqual({ used: 60_000, reserved: 0, committed: 60_000 });
    const second = await cp.post(alice, pay(400.01));
    expect(second.status).toBe(403);
    expect(second.body.spendCap).toMatchObject({ capId: 'payments-daily', used: 60_000 });
  }, 60_000);
});
