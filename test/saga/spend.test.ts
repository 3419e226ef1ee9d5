import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/**
 * Spend is counted one way (shared/money): what the saga makes final when an action completes
 * is what the next decision reads back from the spend caps, in minor units of the base
 * currency. A ¥100,000 payment is $670.00 (rates in policies/config.json), never 100,000 of anything.
 */

let cp: TestControlPlane;
let alice: string;

const payment = (amount: number, currency: string, payee: string) => ({
  tool: 'payments.authorize',
  arguments: { amount, currency, payee, paymentMethod: 'pm_card_visa' },
  agent: { name: 'bill-bot' },
});

async function decide(body: unknown): Promise<{ outcome: string; policyIds: string[]; spendCap?: { capId: string; used: number; limit: number } }> {
  const res = await fetch(`${cp.url}/v1/decisions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { decision: { outcome: string; policyIds: string[]; spendCap?: { capId: string; used: number; limit: number } } }).decision;
}

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
});
afterAll(async () => {
  await cp?.close();
});

describe('spend across currencies', () => {
  it('makes a ¥100,000 payment $670.00 of final spend, and the next decision sees exactly that against the $50,000 cap', async () => {
    // Act: a yen payment completes.
    const res = await cp.post(alice, payment(100_000, 'JPY', 'tokyo-hotel'), { prefer: 'wait=10' });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('completed');

    // Assess: the day's principal cap counter, in cents of the base currency (USD), all committed.
    const key = `principal-daily#${(res.body.createdAt as string).slice(0, 10)}#alice`;
    const usage = (await cp.cp.composition.saga.spendCaps!.store.usage([key])).get(key);
    expect(usage).toEqual({ used: 67_000, reserved: 0, committed: 67_000 });
    // $49,330 more fits under the cap exactly ($670 + $49,330 = $50,000) ...
    const fits = await decide(payment(49_330, 'USD', 'big-supplier'));
    expect(fits.outcome).not.toBe('deny');
    expect(fits.spendCap).toBeUndefined();
    // ... one cent more does not, and the deny names the cap.
    const over = await decide(payment(49_330.01, 'USD', 'big-supplier'));
    expect(over.outcome).toBe('deny');
    expect(over.spendCap).toMatchObject({ capId: 'principal-daily', used: 67_000, limit: 5_000_000 });
  });
});
