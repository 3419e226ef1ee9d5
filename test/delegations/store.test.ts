import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDelegationStore } from '../../lambdas/adapters/aws/dynamo-delegations';
import { DynamoSpendCapStore } from '../../lambdas/adapters/aws/dynamo-spend-caps';
import type { Delegation } from '../../lambdas/ports/delegations';
import { noMetrics } from '../../lambdas/ports/metrics';
import { delegationCounterKey, type DelegationSnapshot } from '../../lambdas/delegations/model';
import { DelegationBudgetExceededError } from '../../lambdas/delegations/errors';
import { reserveStepSpend } from '../../lambdas/spend/reservations';
import { SpendCaps } from '../../lambdas/spend/caps';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

/**
 * Delegations on a real DynamoDB engine (dynalite here; DynamoDB Local in
 * `npm run test:dynamodb-local`): created once, revoked once under a race, one partition per
 * principal (another principal's id is not there), and a delegation's budget held by the same
 * conditional reservations as the spend caps, so a burst of concurrent steps never takes it
 * past its amount.
 */

let db: TestDynamo;
let store: DynamoDelegationStore;
const NOW = new Date('2031-05-06T07:08:09Z');
let n = 0;

beforeAll(async () => {
  db = await startTestDynamo();
  store = new DynamoDelegationStore({ client: db.client, tableName: db.tableName });
}, 60_000);
afterAll(async () => {
  await db?.close();
});

function delegation(overrides: Partial<Delegation> = {}): Delegation {
  const id = `dlg_01JF${String(n++).padStart(22, '0')}`;
  return {
    id,
    principal: 'alice',
    agent: 'trip-bot',
    tools: ['travel.book_flight'],
    connectors: [],
    budget: { amount: 500, currency: 'USD', period: 'day' },
    rules: { askForCommit: false },
    purpose: null,
    createdAt: NOW.toISOString(),
    expiresAt: new Date(NOW.getTime() + 3_600_000).toISOString(),
    status: 'active',
    policySetVersion: 'a'.repeat(64),
    limitsVersion: 'b'.repeat(64),
    consentReceiptKey: `receipts/dt=2031-05-06/${id}.consent.json`,
    ...overrides,
  };
}

describe('DynamoDelegationStore', () => {
  it('stores a delegation once: the same id again is refused', async () => {
    const d = delegation();
    await store.createDelegation(d);
    await expect(store.createDelegation({ ...d, agent: 'other-bot' })).rejects.toThrow();
    expect(await store.getDelegation('alice', d.id)).toEqual(d);
  });

  it('keeps each principal to their own partition: another principal reads nothing by that id', async () => {
    const d = delegation({ principal: 'carol' });
    await store.createDelegation(d);
    expect(await store.getDelegation('alice', d.id)).toBeUndefined();
    expect((await store.listDelegations('alice')).map((x) => x.id)).not.toContain(d.id);
    expect((await store.listDelegations('carol')).map((x) => x.id)).toEqual([d.id]);
  });

  it('revokes once out of 20 concurrent revocations, and the loser sees the winner', async () => {
    const d = delegation({ principal: 'dave' });
    await store.createDelegation(d);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.revokeDelegation('dave', d.id, { revokedAt: NOW.toISOString(), revokedBy: `r${i}`, revokeReason: 'done', revocationReceiptKey: `receipts/dt=2031-05-06/${d.id}.revocation.json` }),
      ),
    );
    const winners = results.filter((r) => r !== undefined);
    expect(winners).toHaveLength(1);
    const stored = await store.getDelegation('dave', d.id);
    expect(stored).toMatchObject({ status: 'revoked', revokedBy: winners[0]!.revokedBy });
    // Revoking a revoked (or absent) delegation changes nothing.
    expect(await store.revokeDelegation('dave', d.id, { revokedAt: NOW.toISOString(), revokedBy: 'late', revokeReason: 'x', revocationReceiptKey: 'k' })).toBeUndefined();
    expect(await store.revokeDelegation('dave', 'dlg_01JF0000000000000000009999', { revokedAt: NOW.toISOString(), revokedBy: 'x', revokeReason: 'x', revocationReceiptKey: 'k' })).toBeUndefined();
  });

  it('keeps an audit trail per principal, oldest first', async () => {
    await store.recordDelegationEvent('erin', { type: 'delegation.refused', at: '2031-05-06T07:00:00.000Z', actor: 'spam-bot', data: { missing: 'no-delegation' } });
    await store.recordDelegationEvent('erin', { type: 'delegation.created', at: '2031-05-06T07:00:01.000Z', actor: 'erin', data: {} });
    expect((await store.listDelegationEvents('erin')).map((e) => e.type)).toEqual(['delegation.refused', 'delegation.created']);
    expect(await store.listDelegationEvents('frank')).toEqual([]);
  });
});

describe('a delegation budget under concurrency', () => {
  it('admits exactly the commit steps that fit out of 60 concurrent ones, and the counter never passes the budget', async () => {
    // Prepare: a $10.00 budget per day, no spend caps; each step books $1.37, so 7 fit (959 ≤ 1,000).
    const caps = SpendCaps.from([], { baseCurrency: 'USD', rates: { USD: 1 } });
    const spend = new DynamoSpendCapStore({ client: db.client, tableName: db.tableName });
    const snapshot: DelegationSnapshot = {
      id: 'dlg_01JF0000000000000000000777',
      agent: 'trip-bot',
      principal: 'alice',
      expiresAt: new Date(NOW.getTime() + 3_600_000).toISOString(),
      rules: { askForCommit: false },
      budget: { limit: 1_000, period: 'day', declared: { amount: 10, currency: 'USD' } },
    };
    const item = { tier: 'commit' as const, connector: 'travel', counterparty: 'x', amount: { amount: 1.37, currency: 'USD' } };
    // Act
    const results = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) =>
        reserveStepSpend(
          { caps, store: spend, metrics: noMetrics },
          { actionId: `act_budget_${i}`, stepId: 'book', principal: { sub: 'alice' }, connector: 'travel', items: [item], index: 0, delegation: snapshot },
          NOW,
        ),
      ),
    );
    // Assess
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(7);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused).toHaveLength(53);
    for (const r of refused) expect(r.reason).toBeInstanceOf(DelegationBudgetExceededError);
    const key = delegationCounterKey(snapshot, NOW);
    expect((await spend.usage([key])).get(key)).toMatchObject({ used: 959, reserved: 959 });
    // A retried step counts once.
    await reserveStepSpend(
      { caps, store: spend, metrics: noMetrics },
      { actionId: `act_budget_0`, stepId: 'book', principal: { sub: 'alice' }, connector: 'travel', items: [item], index: 0, delegation: snapshot },
      NOW,
    ).catch(() => undefined);
    expect((await spend.usage([key])).get(key)?.used).toBe(959);
  });
});
