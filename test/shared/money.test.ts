import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  baseMinorToMajor,
  committedSpend,
  currencyExponent,
  currencyFits,
  fromMinorUnits,
  majorToBaseMinor,
  MAX_MINOR,
  toBaseMinor,
  toMinorUnits,
  type MoneyConfig,
} from '../../lambdas/shared/money';

const usd: MoneyConfig = { baseCurrency: 'USD', rates: { USD: 1, EUR: 1.1, JPY: 0.0067, BHD: 2.65 } };
const bhd: MoneyConfig = { baseCurrency: 'BHD', rates: { BHD: 1, USD: 0.377 } };

describe('currency exponents come from Intl', () => {
  it.each([
    ['USD', 2],
    ['EUR', 2],
    ['JPY', 0],
    ['BHD', 3],
    ['KWD', 3],
    ['jpy', 0],
  ])('%s has %i decimals', (code, exponent) => {
    expect(currencyExponent(code)).toBe(exponent);
  });

  it('refuses what is not a currency code', () => {
    expect(() => currencyExponent('US')).toThrow(RangeError);
    expect(() => currencyExponent('DROP TABLE')).toThrow(RangeError);
  });

  it('minor units round-trip for every currency exponent', () => {
    fc.assert(
      fc.property(fc.constantFrom('USD', 'JPY', 'BHD'), fc.integer({ min: 0, max: 1e12 }), (currency, minor) => {
        const money = fromMinorUnits(minor, currency);
        expect(toMinorUnits(money)).toBe(minor);
        expect(currencyFits(money.amount, currency)).toBe(true);
      }),
    );
  });

  it('knows which amounts fit their currency', () => {
    expect(currencyFits(12.34, 'USD')).toBe(true);
    expect(currencyFits(12.345, 'USD')).toBe(false);
    expect(currencyFits(12.345, 'BHD')).toBe(true);
    expect(currencyFits(100.5, 'JPY')).toBe(false);
    expect(currencyFits(0.1 + 0.2, 'USD')).toBe(true);
    expect(currencyFits(1, 'nope')).toBe(false);
  });
});

describe('amounts in the base currency', () => {
  it('converts through the rate table into integer minor units of the base', () => {
    expect(toBaseMinor({ amount: 100_000, currency: 'JPY' }, usd)).toEqual({ minor: 67_000, currency: 'JPY', valid: true });
    expect(toBaseMinor({ amount: 274.5, currency: 'USD' }, usd)).toEqual({ minor: 27_450, currency: 'USD', valid: true });
    expect(toBaseMinor({ amount: 10, currency: 'BHD' }, usd)).toEqual({ minor: 2_650, currency: 'BHD', valid: true });
    // A three-decimal base counts in fils: $100 at 0.377 BHD per dollar is 37.700 BHD.
    expect(toBaseMinor({ amount: 100, currency: 'USD' }, bhd)).toEqual({ minor: 37_700, currency: 'USD', valid: true });
    expect(majorToBaseMinor(1.5, bhd)).toBe(1_500);
    expect(baseMinorToMajor(1_500, bhd)).toBe(1.5);
  });

  it('never guesses: unknown currencies, negative, non-finite and absurd amounts are invalid', () => {
    for (const money of [
      { amount: 5, currency: 'XTS' },
      { amount: -1, currency: 'USD' },
      { amount: Number.NaN, currency: 'USD' },
      { amount: Number.POSITIVE_INFINITY, currency: 'USD' },
      { amount: 1e15, currency: 'USD' },
      { amount: 5, currency: 'usd\u0000' },
    ]) {
      expect(toBaseMinor(money, usd).valid, JSON.stringify(money)).toBe(false);
    }
    expect(majorToBaseMinor(Number.NaN, usd)).toBe(MAX_MINOR);
  });
});

describe('committed spend: one rule for policy and for the saga', () => {
  const commit = (connector: string, amount: number, currency: string, counterparty = 'acme') => ({ tier: 'commit' as const, connector, counterparty, amount: { amount, currency } });

  it('counts one payment moving through one connector twice once, and reads and drafts never', () => {
    const spend = committedSpend(
      [commit('travel', 600, 'USD', 'air'), commit('travel', 600, 'USD', 'air'), { tier: 'read', connector: 'travel', amount: { amount: 999, currency: 'USD' } }],
      usd,
    );
    expect(spend.total).toBe(60_000);
    expect(spend.byConnector.get('travel')).toBe(60_000);
  });

  it('adds mixed currencies in base minor units, not in whatever unit each arrived in', () => {
    const spend = committedSpend([commit('procurement', 100_000, 'JPY'), commit('payments', 420, 'USD', 'hotel')], usd);
    expect(spend.total).toBe(67_000 + 42_000);
    expect(spend.items.map((i) => i.minor)).toEqual([67_000, 42_000]);
  });

  it('the total is the sum of the distinct valid commit amounts, whatever the mix (property)', () => {
    const item = fc.record({
      tier: fc.constantFrom('read', 'draft', 'commit') as fc.Arbitrary<'read' | 'draft' | 'commit'>,
      connector: fc.constantFrom('a', 'b'),
      counterparty: fc.constantFrom('x', 'y'),
      amount: fc.record({ amount: fc.integer({ min: 0, max: 1_000_000 }), currency: fc.constantFrom('USD', 'JPY', 'EUR', 'XTS') }),
    });
    fc.assert(
      fc.property(fc.array(item, { maxLength: 12 }), (items) => {
        const spend = committedSpend(items, usd);
        const distinct = new Map<string, number>();
        items.forEach((it, i) => {
          const m = spend.items[i]!;
          if (it.tier === 'commit' && m.valid && m.minor > 0) distinct.set(JSON.stringify([it.connector, it.counterparty, m.minor]), m.minor);
        });
        expect(spend.total).toBe([...distinct.values()].reduce((a, b) => a + b, 0));
        expect(Number.isInteger(spend.total)).toBe(true);
      }),
    );
  });
});
