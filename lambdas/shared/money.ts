/**
 * Money, one way everywhere: amounts arrive in major units of an ISO 4217 currency (what a
 * tool's `money` reads from its arguments) and are counted in integer minor units of the
 * deployment's base currency, converted through the configured rate table. Policy context
 * (amounts, plan totals, daily spend), the saga's spend accounting and the spend store all go
 * through this module, so a ¥100,000 order is the same number of base minor units wherever it
 * is counted.
 */

/** The base currency and the rates that convert other currencies into it. */
export interface MoneyConfig {
  /** ISO 4217 code every total is kept in (`USD`). */
  baseCurrency: string;
  /** Base-currency units per one unit of each accepted currency (`{ "JPY": 0.0067 }`). */
  rates: Readonly<Record<string, number>>;
}

/** An amount in major units (dollars, yen) of an ISO 4217 currency. */
export interface Money {
  amount: number;
  currency: string;
}

/** An amount converted to the base currency; `valid: false` when it could not be (unknown currency, not a finite amount). */
export interface BaseMoney {
  /** Integer minor units of the base currency. */
  minor: number;
  /** The currency the amount arrived in, upper-cased. */
  currency: string;
  valid: boolean;
}

/**
 * Largest amount taken at face value: 10^14 minor units ($1 trillion in cents). Anything above
 * is invalid, which keeps plan totals (sums of up to ~90 such amounts) below 2^53, where JSON
 * numbers stop being exact integers for Cedar's Long.
 */
export const MAX_MINOR = 1e14;

const CURRENCY_CODE = /^[A-Z]{3}$/;
const exponents = new Map<string, number>();

/**
 * The number of decimals of a currency's minor unit, from the runtime's ICU data (`Intl`), not
 * a hand-written table: USD 2, JPY 0, BHD 3.
 */
export function currencyExponent(currency: string): number {
  const code = currency.toUpperCase();
  let exponent = exponents.get(code);
  if (exponent === undefined) {
    if (!CURRENCY_CODE.test(code)) throw new RangeError(`Not an ISO 4217 currency code: ${currency.slice(0, 10)}`);
    exponent = new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions().maximumFractionDigits ?? 2;
    exponents.set(code, exponent);
  }
  return exponent;
}

/** Major units (12.34 USD) to integer minor units (1234) of the same currency, as vendors transmit money. */
export function toMinorUnits(money: Money): number {
  return Math.round(money.amount * 10 ** currencyExponent(money.currency));
}

/** Integer minor units back to major units. */
export function fromMinorUnits(minor: number, currency: string): Money {
  return { amount: minor / 10 ** currencyExponent(currency), currency: currency.toUpperCase() };
}

/** Whether an amount has no more decimals than its currency allows (12.345 USD does not; 12.345 BHD does). */
export function currencyFits(amount: number, currency: string): boolean {
  if (!CURRENCY_CODE.test(currency.toUpperCase())) return false;
  if (!Number.isFinite(amount)) return false;
  const scaled = amount * 10 ** currencyExponent(currency);
  // Binary float noise (0.1 * 100 = 10.000000000000002) must not fail an honest amount; the
  // tolerance grows with the magnitude, where a double's spacing does.
  return Math.abs(scaled - Math.round(scaled)) <= Math.max(1e-6, Math.abs(scaled) * Number.EPSILON * 8);
}

/** Whether `currency` (any case) is an ISO 4217 code the rate table converts; reads no currency data. */
export function hasRate(currency: string, config: MoneyConfig): boolean {
  const code = currency.toUpperCase();
  return CURRENCY_CODE.test(code) && config.rates[code] !== undefined;
}

/** Major units of the base currency to its minor units (rounded). */
function baseMinor(major: number, config: MoneyConfig): number {
  return Math.round(major * 10 ** currencyExponent(config.baseCurrency));
}

/**
 * Converts an amount to integer minor units of the base currency. Unknown currencies,
 * negative or non-finite amounts and amounts beyond {@link MAX_MINOR} are invalid, never
 * guessed.
 */
export function toBaseMinor(money: Money | undefined, config: MoneyConfig): BaseMoney {
  if (money === undefined) return { minor: 0, currency: '', valid: true };
  const currency = typeof money.currency === 'string' ? money.currency.toUpperCase() : '';
  if (!hasRate(currency, config) || typeof money.amount !== 'number' || !Number.isFinite(money.amount) || money.amount < 0) {
    return { minor: 0, currency, valid: false };
  }
  const minor = baseMinor(money.amount * config.rates[currency]!, config);
  return minor <= MAX_MINOR ? { minor, currency, valid: true } : { minor: 0, currency, valid: false };
}

/**
 * Major units of the base currency to its minor units, clamped to [0, MAX_MINOR]. Not a
 * number counts as "over any cap", so a broken input fails closed.
 */
export function majorToBaseMinor(major: number, config: MoneyConfig): number {
  if (typeof major !== 'number' || Number.isNaN(major)) return MAX_MINOR;
  return Math.min(MAX_MINOR, Math.max(0, baseMinor(major, config)));
}

/** Minor units of the base currency back to major units (for people and for policy fixtures). */
export function baseMinorToMajor(minor: number, config: MoneyConfig): number {
  return minor / 10 ** currencyExponent(config.baseCurrency);
}

/** What spend accounting needs to know of one step. */
export interface SpendItem {
  tier: 'read' | 'draft' | 'commit';
  connector: string;
  counterparty?: string | undefined;
  amount?: Money | undefined;
}

/** The commit-tier spend of a plan, in minor units of the base currency. */
export interface CommittedSpend {
  /** Each item converted (in order), whether or not it counts toward the total. */
  items: BaseMoney[];
  total: number;
  /** The total per connector. */
  byConnector: ReadonlyMap<string, number>;
}

/**
 * Totals the commit-tier money of a plan. The same amount moving through one connector to one
 * counterparty twice (hold then book, authorize then capture) is one payment and counts once;
 * otherwise a $600 flight that is held and then booked would count as $1,200. The policy
 * engine totals a plan before it runs and the saga totals what completed with this one rule.
 */
export function committedSpend(items: readonly SpendItem[], config: MoneyConfig): CommittedSpend {
  const converted = items.map((item) => toBaseMinor(item.amount, config));
  const seen = new Set<string>();
  const byConnector = new Map<string, number>();
  let total = 0;
  items.forEach((item, i) => {
    const money = converted[i]!;
    if (item.tier !== 'commit' || !money.valid || money.minor === 0) return;
    const key = JSON.stringify([item.connector, item.counterparty ?? '', money.minor]);
    if (seen.has(key)) return;
    seen.add(key);
    total += money.minor;
    byConnector.set(item.connector, (byConnector.get(item.connector) ?? 0) + money.minor);
  });
  return { items: converted, total: Math.min(total, Number.MAX_SAFE_INTEGER), byConnector };
}
