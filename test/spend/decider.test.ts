import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../lambdas/intake/intake';
import { readLimitsFile } from '../../lambdas/limits/config';
import { deciderFor } from '../../lambdas/policy/decider';
import { createPolicyEngine, loadPolicyEngine } from '../../lambdas/policy/index';
import { shippedWith } from '../policy/helpers';
import type { CapUsage } from '../../lambdas/ports/spend-caps';
import { committedSpend, type SpendItem } from '../../lambdas/shared/money';
import { amountTowardCap, SpendCaps } from '../../lambdas/spend/caps';
import { toolRegistry } from '../../lambdas/tools/registry';

/**
 * The decider with spend caps: Cedar sees the tightest cap, and a plan whose known amounts
 * would cross a cap is denied naming it — the cases the old Cedar `exposure.daily-cap` fixtures
 * covered ($49,000 + $1,000.01; a dry run over the cap; a plan over the cap whose steps are each
 * under it) now decided by the one cap rule.
 */

const engine = loadPolicyEngine();
const caps = SpendCaps.from(readLimitsFile().limits.spendCaps, engine.money);
const NOW = new Date('2031-06-02T10:00:00Z');
const alice = { sub: 'alice', roles: ['Employee'], manager: 'maria', department: 'sales' };
const mark = { sub: 'mark', roles: ['Employee', 'Manager'], manager: 'nina', department: 'sales' };

/** Counters as they stand: `spent` major units on this principal's daily cap. */
function decider(spentToday: number) {
  const usage = async (keys: readonly string[]) =>
    new Map<string, CapUsage>(keys.map((k) => [k, { used: k.startsWith('principal-daily#') ? spentToday * 100 : 0, reserved: 0, committed: 0 }]));
  return deciderFor(engine, toolRegistry, { caps, usage }, 'limits-v');
}

const pay = (amount: number) => ({ id: `pay${Math.round(amount * 100)}`, tool: 'payments.authorize', arguments: { amount, currency: 'USD', payee: 'merchant-1', paymentMethod: 'pm_card_visa' } });
const book = (id: string, amount: number) => ({
  id,
  tool: 'travel.book_flight',
  arguments: { holdId: 'hold_1', travelers: [{ firstName: 'A', lastName: 'B' }], contact: { email: 'a@example.com' }, price: { amount, currency: 'USD' } },
});
const envelope = (steps: unknown[], mode?: 'dry_run') => parseEnvelope({ agent: { name: 't' }, plan: steps, ...(mode ? { mode } : {}) }, toolRegistry);

describe('deciding with spend caps', () => {
  it('denies $1,000.01 on top of $49,000 spent today, naming the $50,000 daily cap; $1,000 fits', async () => {
    const over = await decider(49_000).decide(alice, envelope([pay(1000.01)]), NOW);
    expect(over).toMatchObject({
      outcome: 'deny',
      policyIds: [],
      spendCap: { capId: 'principal-daily', limit: 5_000_000, used: 4_900_000, requested: 100_001, currency: 'USD' },
      limitsVersion: 'limits-v',
    });
    expect(over.reasons[0]).toMatch(/^spend-cap-exceeded: cap "principal-daily"/);
    const at = await decider(49_000).decide(alice, envelope([pay(1000)]), NOW);
    expect(at.spendCap).toBeUndefined();
    // At the cap exactly it fits, but policy asks a person (past 80%).
    expect(at).toMatchObject({ outcome: 'require_approval', policyIds: ['exposure.cap-near'] });
  });

  it('denies a dry run when the real action would cross the cap', async () => {
    const d = await decider(49_600).decide(alice, envelope([book('b', 500)], 'dry_run'), NOW);
    expect(d).toMatchObject({ outcome: 'deny', spendCap: { capId: 'principal-daily' } });
  });

  it('denies a plan totalling $52,000 whose steps are each under the cap', async () => {
    const d = await decider(0).decide(mark, envelope([book('b1', 4000), book('b2', 3000), pay(45_000)]), NOW);
    expect(d).toMatchObject({ outcome: 'deny', spendCap: { capId: 'principal-daily', used: 0, requested: 5_200_000 } });
  });

  it('leaves a policy deny as it is (its policies and reasons), without blaming a cap', async () => {
    const order = {
      id: 'o',
      tool: 'procurement.place_order',
      arguments: {
        supplierId: 'shady-supplies',
        lines: [{ sku: 'SHD-001', quantity: 1 }],
        shipTo: { name: 'A', street: '1 B', city: 'C', postalCode: 'N1', country: 'GB' },
        maxTotal: { amount: 999_999, currency: 'USD' },
      },
    };
    const d = await decider(49_000).decide(alice, envelope([order]), NOW);
    expect(d.outcome).toBe('deny');
    expect(d.policyIds).toContain('procurement.denied-vendor');
    expect(d.spendCap).toBeUndefined();
  });

  it('refuses a plan exactly when some applicable cap has less room than the plan needs (property)', async () => {
    const item = fc.record({
      tier: fc.constantFrom('read', 'draft', 'commit' as const),
      connector: fc.constantFrom('procurement', 'payments', 'travel'),
      counterparty: fc.constantFrom('a', 'b'),
      amount: fc.record({ amount: fc.integer({ min: 0, max: 3_000 }), currency: fc.constantFrom('USD', 'EUR', 'JPY') }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(item, { maxLength: 5 }), fc.array(fc.integer({ min: 0, max: 300_000_000 }), { minLength: 4, maxLength: 4 }), async (items, used) => {
        const standings = await caps.standings(alice, NOW, async (keys) => new Map(keys.map((k, i) => [k, { used: used[i % 4]!, reserved: 0, committed: 0 }])));
        const spend = committedSpend(items as SpendItem[], engine.money);
        const crossed = standings.filter((s) => {
          const need = amountTowardCap(s.cap, spend.byConnector, spend.total);
          return need > 0 && s.used + need > s.cap.limit;
        });
        const got = caps.planExceeds(standings, items as SpendItem[]);
        expect(got?.capId).toBe(crossed[0]?.cap.id);
      }),
      { numRuns: 300 },
    );
  });

  describe('reading the cap counters only when a decision can depend on them', () => {
    /** The decider over `policyEngine`, counting the counter reads; every counter reads as 45,000 of 50,000 used. */
    function counting(policyEngine = engine) {
      const reads: string[][] = [];
      const usage = async (keys: readonly string[]) => {
        reads.push([...keys]);
        return new Map<string, CapUsage>(keys.map((k) => [k, { used: 4_500_000, reserved: 0, committed: 0 }]));
      };
      return { reads, decider: deciderFor(policyEngine, toolRegistry, { caps, usage }, 'limits-v') };
    }
    const say = { id: 'say', tool: 'echo.say', arguments: { message: 'hi' } };
    const grant = { id: 'g', tool: 'iam.grant_role', arguments: { principalId: 'bob', role: 'viewer', reason: 'on call rota this week' } };

    it('skips them for a plan of reads under the shipped policies (their cap rule starts with resource.tier == "commit")', async () => {
      const { reads, decider: d } = counting();
      const decided = await d.decide(alice, envelope([say]), NOW);
      expect(decided.outcome).toBe('allow');
      expect(reads).toEqual([]);
      // The same decision the counters would have given: nothing a read does is counted against a cap.
      const { capsObservable: _unused, ...always } = engine;
      const withCounters = counting(always);
      const full = await withCounters.decider.decide(alice, envelope([say]), NOW);
      expect(withCounters.reads).toHaveLength(1);
      expect({ ...decided, evaluationMicros: 0, decidedAt: '' }).toEqual({ ...full, evaluationMicros: 0, decidedAt: '' });
    });

    it('reads them for any commit step, with or without money (exposure.cap-near sees the standing)', async () => {
      const money = counting();
      expect((await money.decider.decide(alice, envelope([pay(10)]), NOW)).outcome).toBe('require_approval');
      expect(money.reads).toHaveLength(1);
      const moneyless = counting();
      const d = await moneyless.decider.decide(alice, envelope([grant]), NOW);
      expect(moneyless.reads).toHaveLength(1);
      expect(d.policyIds).toContain('exposure.cap-near');
    });

    it("treats a delegation's budget counter the same: skipped for reads, read for a commit step", async () => {
      const delegation = {
        id: 'dlg_1',
        agent: 'trip-bot',
        principal: 'alice',
        expiresAt: '2031-06-03T00:00:00Z',
        rules: { askForCommit: true },
        budget: { limit: 50_000, period: 'day', declared: { amount: 500, currency: 'USD' } },
      } as unknown as NonNullable<ReturnType<typeof envelope>['delegation']>;
      const delegated = (steps: unknown[]) => ({ ...envelope(steps), delegation });
      const read = counting();
      expect((await read.decider.decide(alice, delegated([say]), NOW)).outcome).toBe('allow');
      expect(read.reads).toEqual([]);
      const commit = counting();
      const d = await commit.decider.decide(alice, delegated([pay(10)]), NOW);
      expect(commit.reads.flat()).toContain('delegation#dlg_1#2031-06-02');
      expect(d.policyIds).toContain('delegation.ask-for-commit');
    });

    it('reads them for reads when a policy reads the caps without starting with a test for another tier', async () => {
      const rule = (when: string) =>
        createPolicyEngine(
          shippedWith({
            'reads-cap.cedar': `@id("reads.cap-full")\n@reason("No reads once the cap is nearly spent.")\nforbid (principal, action == Airlock::Action::"request", resource)\nwhen { ${when} };\n`,
          }),
        );
      for (const when of [
        'context.capSpent * 10 > context.capLimit * 8',
        // The tier test comes second: the cap expression is evaluated first, and could fail (overflow) for a read.
        'context.capSpent * 10 > context.capLimit * 8 && resource.tier == "commit"',
      ]) {
        const c = counting(rule(when));
        const d = await c.decider.decide(alice, envelope([say]), NOW);
        expect(c.reads).toHaveLength(1);
        if (!when.includes('tier')) expect(d).toMatchObject({ outcome: 'deny', policyIds: ['reads.cap-full'] });
      }
      const guarded = counting(rule('resource.tier == "draft" && context.capSpent * 10 > context.capLimit * 8'));
      await guarded.decider.decide(alice, envelope([say]), NOW);
      expect(guarded.reads).toEqual([]);
    });
  });
});
