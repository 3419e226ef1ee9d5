import type { SpendCap } from '../limits/config';
import type { CapCharge, CapUsage } from '../ports/spend-caps';
import { baseMinorToMajor, committedSpend, hasRate, toBaseMinor, type MoneyConfig, type SpendItem } from '../shared/money';
import type { Principal } from '../shared/principal';

/**
 * Spend caps (policies/limits.json `spendCaps`): how much money the commit steps of one
 * principal, one department or the whole deployment (tenant) may move per UTC day or month.
 * This module is the one rule: a step (or a plan, at intake) fits a cap when
 * `used + amount <= cap`, where `used` is everything reserved or committed in the cap's
 * current period, all in minor units of the base currency (shared/money). The counters live
 * behind the SpendCapStore port; the saga reserves before a commit step's vendor call.
 */

/** A cap with its amount converted to minor units of the base currency. */
export interface ResolvedCap {
  id: string;
  scope: SpendCap['scope'];
  period: SpendCap['period'];
  /** The cap, minor units of the base currency. */
  limit: number;
  /** Only commit steps through these connectors count (undefined: every commit step). */
  connectors?: readonly string[] | undefined;
  /** What the limits file says, before conversion. */
  declared: { amount: number; currency: string };
  /** The file states the cap in another currency than the base one: it was converted with the rate table. */
  converted: boolean;
}

/** A cap whose currency has no rate in the policy set's config (policies/config.json `rates`). */
export class SpendCapCurrencyError extends Error {
  constructor(
    readonly capId: string,
    readonly currency: string,
  ) {
    super(`spendCaps "${capId}": no rate for ${currency} in the policy config (rates), so the cap cannot be counted in the base currency`);
    this.name = 'SpendCapCurrencyError';
  }
}

/** Converts every cap of the limits file to base minor units, or throws naming the cap that cannot be. */
export function resolveCaps(caps: readonly SpendCap[], money: MoneyConfig): ResolvedCap[] {
  return caps.map((cap) => {
    const currency = cap.currency ?? money.baseCurrency;
    const base = toBaseMinor({ amount: cap.amount, currency }, money);
    if (!base.valid) throw new SpendCapCurrencyError(cap.id, currency);
    return {
      id: cap.id,
      scope: cap.scope,
      period: cap.period,
      limit: base.minor,
      ...(cap.connectors ? { connectors: cap.connectors } : {}),
      declared: { amount: cap.amount, currency },
      converted: currency !== money.baseCurrency.toUpperCase(),
    };
  });
}

/** The period a moment falls in, UTC: `2026-12-02` for a day, `2026-12` for a month. */
export function periodKey(period: SpendCap['period'], now: Date): string {
  const iso = now.toISOString();
  return period === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
}

/** The first instant after the period `now` falls in (UTC midnight, or the 1st of next month). */
export function periodEnd(period: SpendCap['period'], now: Date): Date {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  return period === 'day' ? new Date(Date.UTC(y, m, now.getUTCDate() + 1)) : new Date(Date.UTC(y, m + 1, 1));
}

/** Counters are kept this long after their period ends, so a late settle still finds them. */
const COUNTER_GRACE_SECONDS = 35 * 86_400;

/**
 * Whose spend a cap counts for this principal: the principal itself, its department, or the
 * tenant. Undefined when the cap cannot apply (a department cap for a principal without one).
 */
export function capSubject(cap: Pick<ResolvedCap, 'scope'>, principal: Pick<Principal, 'sub' | 'department'>): string | undefined {
  if (cap.scope === 'principal') return principal.sub;
  if (cap.scope === 'department') return principal.department;
  return '*';
}

/** Whether commit steps through `connector` count toward the cap. */
export function capCovers(cap: Pick<ResolvedCap, 'connectors'>, connector: string): boolean {
  return cap.connectors === undefined || cap.connectors.includes(connector);
}

/** One cap as it stands for a principal now. */
export interface CapStanding {
  cap: ResolvedCap;
  /** The counter's key (cap, period, subject). */
  key: string;
  /** Reserved + committed in the current period, minor units of the base currency. */
  used: number;
}

/** A plan (or a step) would take a cap past its amount. */
export interface CapExceeded {
  capId: string;
  scope: ResolvedCap['scope'];
  period: ResolvedCap['period'];
  /** Minor units of the base currency: the cap, what is used, what was asked for. */
  limit: number;
  used: number;
  requested: number;
  /** ISO 4217 code of those units. */
  currency: string;
  /** The cap as the limits file states it, when that is another currency. */
  declared?: { amount: number; currency: string };
}

/** A commit step cannot reserve its amount: the named cap is full. The ASL lets it fail and compensate. */
export class SpendCapExceededError extends Error {
  constructor(readonly exceeded: CapExceeded) {
    super(describeExceeded(exceeded));
    this.name = 'SpendCapExceededError';
  }
}

/** The stable problem code a refusal by a cap carries (intake's problem type, the saga's status reason). */
export const SPEND_CAP_EXCEEDED = 'spend-cap-exceeded';

/** One line, for people and agents: which cap, how full, what was asked. */
export function describeExceeded(e: CapExceeded): string {
  const money = (minor: number) => `${baseMinorToMajor(minor, { baseCurrency: e.currency, rates: {} }).toFixed(fractionDigits(e.currency))} ${e.currency}`;
  const declared = e.declared ? ` (set as ${e.declared.amount} ${e.declared.currency}, converted at the configured rate)` : '';
  return (
    `${SPEND_CAP_EXCEEDED}: cap "${e.capId}" (${e.scope}, per ${e.period}) is ${money(e.limit)}${declared}; ` +
    `${money(e.used)} is already reserved or spent this ${e.period}, and this needs ${money(e.requested)}.`
  );
}

function fractionDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** The amount of a plan (its commit-tier total, by the one spend rule) that counts toward a cap. */
export function amountTowardCap(cap: Pick<ResolvedCap, 'connectors'>, byConnector: ReadonlyMap<string, number>, total: number): number {
  if (cap.connectors === undefined) return total;
  return cap.connectors.reduce((sum, c) => sum + (byConnector.get(c) ?? 0), 0);
}

/** Whether `requested` more fits under the cap: the one rule, `used + requested <= limit`. */
export function fits(standing: Pick<CapStanding, 'used' | 'cap'>, requested: number): boolean {
  return standing.used + requested <= standing.cap.limit;
}

/** The caps of a deployment, in base minor units: what applies to whom, and what fits. */
export class SpendCaps {
  #caps: readonly ResolvedCap[] | (() => readonly ResolvedCap[]);

  constructor(
    caps: readonly ResolvedCap[] | (() => readonly ResolvedCap[]),
    readonly money: MoneyConfig,
  ) {
    this.#caps = caps;
  }

  /** The caps, converted to base minor units (on first use when built by {@link SpendCaps.from}). */
  get caps(): readonly ResolvedCap[] {
    if (typeof this.#caps === 'function') this.#caps = this.#caps();
    return this.#caps;
  }

  /**
   * From the limits file's `spendCaps` and the policy set's money config. A cap whose currency
   * has no rate is refused here (SpendCapCurrencyError: the composition, so the cold start,
   * fails); the amounts are converted when the caps are first read. Converting reads the base
   * currency's minor unit from the runtime's ICU data, whose first use costs ~35 ms of CPU: a
   * cold start whose requests never count spend (a listing, a status read) does not pay it.
   */
  static from(caps: readonly SpendCap[], money: MoneyConfig): SpendCaps {
    for (const cap of caps) {
      const currency = cap.currency ?? money.baseCurrency;
      if (!hasRate(currency, money)) throw new SpendCapCurrencyError(cap.id, currency);
    }
    return new SpendCaps(() => resolveCaps(caps, money), money);
  }

  /** Every cap that counts this principal's spend now, with its counter's key. */
  forPrincipal(principal: Pick<Principal, 'sub' | 'department'>, now: Date): { cap: ResolvedCap; key: string }[] {
    const out: { cap: ResolvedCap; key: string }[] = [];
    for (const cap of this.caps) {
      const subject = capSubject(cap, principal);
      if (subject === undefined) continue;
      out.push({ cap, key: `${cap.id}#${periodKey(cap.period, now)}#${subject}` });
    }
    return out;
  }

  /** The counters a commit step through `connector` is charged to now. */
  charges(principal: Pick<Principal, 'sub' | 'department'>, connector: string, now: Date): CapCharge[] {
    return this.forPrincipal(principal, now)
      .filter(({ cap }) => capCovers(cap, connector))
      .map(({ cap, key }) => ({
        key,
        capId: cap.id,
        limit: cap.limit,
        expiresAt: Math.floor(periodEnd(cap.period, now).getTime() / 1000) + COUNTER_GRACE_SECONDS,
      }));
  }

  /** Each applicable cap with what is used of it, from the counters read by `usage`. */
  async standings(
    principal: Pick<Principal, 'sub' | 'department'>,
    now: Date,
    usage: (keys: readonly string[]) => Promise<Map<string, CapUsage>>,
  ): Promise<CapStanding[]> {
    const applicable = this.forPrincipal(principal, now);
    if (applicable.length === 0) return [];
    const read = await usage(applicable.map((a) => a.key));
    return applicable.map(({ cap, key }) => ({ cap, key, used: read.get(key)?.used ?? 0 }));
  }

  /**
   * The first cap a plan's known commit-tier money would take past its amount, or undefined
   * when it fits every one. Amounts still behind a `$ref` are unknown here and count as 0:
   * the saga's reservation is what holds the cap for them.
   */
  planExceeds(standings: readonly CapStanding[], items: readonly SpendItem[]): CapExceeded | undefined {
    const spend = committedSpend(items, this.money);
    for (const s of standings) {
      const requested = amountTowardCap(s.cap, spend.byConnector, spend.total);
      if (requested > 0 && !fits(s, requested)) return this.exceeded(s.cap, s.used, requested);
    }
    return undefined;
  }

  /** The refusal's facts for a cap. */
  exceeded(cap: ResolvedCap, used: number, requested: number): CapExceeded {
    return {
      capId: cap.id,
      scope: cap.scope,
      period: cap.period,
      limit: cap.limit,
      used,
      requested,
      currency: this.money.baseCurrency.toUpperCase(),
      ...(cap.converted ? { declared: cap.declared } : {}),
    };
  }

  /** A cap by id. */
  find(id: string): ResolvedCap | undefined {
    return this.caps.find((c) => c.id === id);
  }
}

/**
 * What one step of a plan adds to its commit-tier spend, by the one spend rule: the plan's
 * total up to and including the step, less the total before it. A capture of an amount
 * already authorized to the same payee through the same connector adds 0.
 */
export function stepIncrement(items: readonly SpendItem[], index: number, money: MoneyConfig): number {
  const upTo = committedSpend(items.slice(0, index + 1), money).total;
  const before = committedSpend(items.slice(0, index), money).total;
  return Math.max(0, upTo - before);
}
