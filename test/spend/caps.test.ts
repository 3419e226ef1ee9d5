import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { parseLimits, readLimitsFile } from '../../lambdas/limits/config';
import type { MoneyConfig } from '../../lambdas/shared/money';
import {
  capSubject,
  describeExceeded,
  periodEnd,
  periodKey,
  resolveCaps,
  SpendCapCurrencyError,
  SpendCaps,
  stepIncrement,
} from '../../lambdas/spend/caps';
import { loadPolicyEngine } from '../../lambdas/policy/index';

/**
 * The one cap rule and what feeds it: period keys from an injected clock (UTC), caps converted
 * to base minor units through the money module, which caps apply to whom, and what a plan or a
 * step counts toward them.
 */

const money: MoneyConfig = { baseCurrency: 'USD', rates: { USD: 1, EUR: 1.1, JPY: 0.0067 } };
const alice = { sub: 'alice', department: 'sales' };

describe('period keys', () => {
  it('are the UTC day or month of the injected clock, whatever the local time zone says', () => {
    const late = new Date('2031-01-31T23:59:59.999Z');
    expect(periodKey('day', late)).toBe('2031-01-31');
    expect(periodKey('month', late)).toBe('2031-01');
    const next = new Date(late.getTime() + 1);
    expect(periodKey('day', next)).toBe('2031-02-01');
    expect(periodKey('month', next)).toBe('2031-02');
  });

  it('end where the next period starts (month ends across years and leap days)', () => {
    expect(periodEnd('day', new Date('2032-02-28T12:00:00Z')).toISOString()).toBe('2032-02-29T00:00:00.000Z');
    expect(periodEnd('month', new Date('2032-12-15T00:00:00Z')).toISOString()).toBe('2033-01-01T00:00:00.000Z');
  });

  it('every instant lies in the period its key names, and before that period ends (property)', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }), fc.constantFrom('day', 'month' as const), (now, period) => {
        const end = periodEnd(period, now);
        expect(end.getTime()).toBeGreaterThan(now.getTime());
        expect(periodKey(period, new Date(end.getTime() - 1))).toBe(periodKey(period, now));
        expect(periodKey(period, end)).not.toBe(periodKey(period, now));
      }),
    );
  });
});

describe('conversion through the money module', () => {
  it('keeps caps in minor units of the base currency and says when a cap was set in another currency', () => {
    const [usd, eur, yen] = resolveCaps(
      [
        { id: 'a', scope: 'principal', period: 'day', amount: 1000 },
        { id: 'b', scope: 'tenant', period: 'month', amount: 1000, currency: 'EUR' },
        { id: 'c', scope: 'tenant', period: 'month', amount: 100_000, currency: 'JPY' },
      ],
      money,
    );
    expect(usd).toMatchObject({ limit: 100_000, converted: false });
    expect(eur).toMatchObject({ limit: 110_000, converted: true, declared: { amount: 1000, currency: 'EUR' } });
    expect(yen).toMatchObject({ limit: 67_000, converted: true });
    const caps = new SpendCaps([eur!], money);
    const message = describeExceeded(caps.exceeded(eur!, 100_000, 20_000));
    expect(message).toContain('spend-cap-exceeded: cap "b" (tenant, per month) is 1100.00 USD (set as 1000 EUR, converted at the configured rate)');
    expect(message).toContain('1000.00 USD is already reserved or spent this month, and this needs 200.00 USD');
  });

  it('refuses a cap in a currency with no rate, naming the cap', () => {
    expect(() => resolveCaps([{ id: 'gbp-cap', scope: 'tenant', period: 'day', amount: 5, currency: 'GBP' }], money)).toThrow(SpendCapCurrencyError);
    expect(() => resolveCaps([{ id: 'gbp-cap', scope: 'tenant', period: 'day', amount: 5, currency: 'GBP' }], money)).toThrow(/gbp-cap.*GBP/);
  });

  it('SpendCaps.from refuses a cap with no rate at once, and converts the others when first read (no currency data at cold start)', async () => {
    // Prepare: a fresh money module, whose cache of minor units is empty.
    vi.resetModules();
    const fresh = await import('../../lambdas/spend/caps');
    const formats = vi.spyOn(Intl, 'NumberFormat');
    try {
      // Act
      const caps = fresh.SpendCaps.from([{ id: 'a', scope: 'principal', period: 'day', amount: 1000 }, { id: 'b', scope: 'tenant', period: 'month', amount: 1000, currency: 'eur' }], money);
      const readAtBuild = formats.mock.calls.length;
      const limits = caps.caps.map((c) => c.limit);
      // Assess: the ICU lookup waits for the first read; the amounts are what resolveCaps gives.
      expect(readAtBuild).toBe(0);
      expect(formats.mock.calls.length).toBeGreaterThan(0);
      expect(limits).toEqual([100_000, 110_000]);
      expect(caps.caps).toBe(caps.caps);
      expect(() => fresh.SpendCaps.from([{ id: 'gbp-cap', scope: 'tenant', period: 'day', amount: 5, currency: 'GBP' }], money)).toThrow(/gbp-cap.*GBP/);
      expect(() => fresh.SpendCaps.from([{ id: 'bad', scope: 'tenant', period: 'day', amount: 5, currency: 'E1R' }], { ...money, rates: { ...money.rates, E1R: 1 } })).toThrow(/bad.*E1R/);
    } finally {
      formats.mockRestore();
    }
  });

  it('the shipped limits file converts with the shipped rates (every cap currency has a rate)', () => {
    const engine = loadPolicyEngine();
    const caps = SpendCaps.from(readLimitsFile().limits.spendCaps, engine.money);
    expect(caps.caps.map((c) => c.id)).toEqual(expect.arrayContaining(['procurement-buyer-daily', 'payments-tenant-monthly']));
    expect(caps.find('procurement-buyer-daily')).toMatchObject({ scope: 'principal', period: 'day', connectors: ['procurement'] });
    expect(caps.find('payments-tenant-monthly')).toMatchObject({ scope: 'tenant', period: 'month', connectors: ['payments'] });
  });
});

describe('which caps apply', () => {
  const limits = parseLimits(
    JSON.stringify({
      version: 1,
      spendCaps: [
        { id: 'mine', scope: 'principal', period: 'day', amount: 100 },
        { id: 'dept', scope: 'department', period: 'month', amount: 1000 },
        { id: 'pay', scope: 'tenant', period: 'month', amount: 500, connectors: ['payments'] },
      ],
      breakers: { default: { failures: 5, windowSeconds: 30, resetSeconds: 30, jitter: 0.2, halfOpenSuccesses: 2 } },
      killSwitch: { role: 'KillSwitch', propagationSeconds: 5 },
    }),
  );
  const caps = SpendCaps.from(limits.limits.spendCaps, money);
  const now = new Date('2031-03-04T05:06:07Z');

  it('keys each counter by cap, period and subject', () => {
    expect(caps.forPrincipal(alice, now).map((c) => c.key)).toEqual(['mine#2031-03-04#alice', 'dept#2031-03#sales', 'pay#2031-03#*']);
    // No department: a department cap does not apply (it is not charged to "undefined").
    expect(caps.forPrincipal({ sub: 'bob' }, now).map((c) => c.key)).toEqual(['mine#2031-03-04#bob', 'pay#2031-03#*']);
    expect(capSubject({ scope: 'tenant' }, { sub: 'x' })).toBe('*');
  });

  it('charges a commit step only to caps covering its connector, each until its period ends (plus a grace month)', () => {
    expect(caps.charges(alice, 'travel', now).map((c) => c.capId)).toEqual(['mine', 'dept']);
    const pay = caps.charges(alice, 'payments', now);
    expect(pay.map((c) => c.capId)).toEqual(['mine', 'dept', 'pay']);
    expect(pay[0]!.expiresAt).toBe(Date.parse('2031-03-05T00:00:00Z') / 1000 + 35 * 86_400);
    expect(pay[2]!.limit).toBe(50_000);
  });

  it('refuses a plan whose known amounts would cross a cap, naming the first such cap; at the cap exactly is fine', async () => {
    const usage = async (keys: readonly string[]) => new Map(keys.map((k) => [k, { used: k.startsWith('mine') ? 6_000 : 0, reserved: 0, committed: 0 }]));
    const standings = await caps.standings(alice, now, usage);
    const order = (amount: number, connector = 'travel') => ({ tier: 'commit' as const, connector, amount: { amount, currency: 'USD' } });
    expect(caps.planExceeds(standings, [order(40)])).toBeUndefined();
    expect(caps.planExceeds(standings, [order(40.01)])).toMatchObject({ capId: 'mine', used: 6_000, requested: 4_001, limit: 10_000 });
    // Reads and drafts move no money; the same money moved twice through one connector to one payee counts once.
    expect(caps.planExceeds(standings, [{ tier: 'read', connector: 'travel', amount: { amount: 1e6, currency: 'USD' } }])).toBeUndefined();
    expect(caps.planExceeds(standings, [order(30), order(30)])).toBeUndefined();
    // A tenant payments cap counts only payments.
    const payOnly = await caps.standings({ sub: 'carol' }, now, async () => new Map([['pay#2031-03#*', { used: 49_000, reserved: 0, committed: 49_000 }]]));
    expect(caps.planExceeds(payOnly, [order(20, 'payments')])).toMatchObject({ capId: 'pay' });
    expect(caps.planExceeds(payOnly, [order(20, 'travel')])).toBeUndefined();
  });
});

describe('what one step adds', () => {
  it('counts a capture of an authorized amount once, a second payee again', () => {
    const authorize = { tier: 'commit' as const, connector: 'payments', counterparty: 'air', amount: { amount: 100, currency: 'USD' } };
    expect(stepIncrement([authorize], 0, money)).toBe(10_000);
    expect(stepIncrement([authorize, { ...authorize }], 1, money)).toBe(0);
    expect(stepIncrement([authorize, { ...authorize, counterparty: 'hotel' }], 1, money)).toBe(10_000);
    expect(stepIncrement([authorize, { ...authorize, amount: { amount: 10_000, currency: 'JPY' } }], 1, money)).toBe(6_700);
  });
});
