import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utcDay } from '../../lambdas/shared/ids';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/**
 * Spend is counted one way (shared/money): what the saga records when an action completes is
 * what policy reads back as the day's spend, in minor units of the base currency. A ¥100,000
 * payment is $670.00 (rates in policies/config.json), never 100,000 of anything.
 */

let cp: TestControlPlane;
let alice: string;

const payment = (amount: number, currency: string, payee: string) => ({
  tool: 'payments.authorize',
  arguments: { amount, currency, payee, paymentMethod: 'pm_card_visa' },
  agent: { name: 'bill-bot' },
});

async function decide(body: unknown): Promise<{ outcome: string; policyIds: string[] }> {
  const res = await fetch(`${cp.url}/v1/decisions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { decision: { outcome: string; policyIds: string[] } }).decision;
}

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
});
afterAll(async () => {
  await cp?.close();
});

describe('daily spend across currencies', () => {
  it('records a ¥100,000 payment as $670.00, and policy sees exactly that against the $50,000 cap', async () => {
    // Act: a yen payment completes.
    const res = await cp.post(alice, payment(100_000, 'JPY', 'tokyo-hotel'), { prefer: 'wait=10' });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('completed');

    // Assess: the day's spend, in cents of the base currency (USD).
    expect(await cp.cp.store.dailySpend('alice', utcDay(new Date(res.body.createdAt as string)))).toBe(67_000);
    // $49,330 more fits under the cap exactly ($670 + $49,330 = $50,000) ...
    expect((await decide(payment(49_330, 'USD', 'big-supplier'))).policyIds).not.toContain('exposure.daily-cap');
    // ... one cent more does not.
    const over = await decide(payment(49_330.01, 'USD', 'big-supplier'));
    expect(over.outcome).toBe('deny');
    expect(over.policyIds).toContain('exposure.daily-cap');
  });
});
