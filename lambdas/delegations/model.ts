/**
 * The shapes of a delegation that other capabilities read (the action it covers, the saga's
 * budget reservation, Cedar's context). Imports nothing, so the action record, spend and
 * policy may depend on it without depending on the delegations use cases.
 */

/** How often a delegation's budget starts over: each UTC day, each UTC month, or never (`total`, the delegation's whole life). */
export const BudgetPeriods = ['day', 'month', 'total'] as const;
export type BudgetPeriod = (typeof BudgetPeriods)[number];

/** A delegation's budget as granted: major units of an ISO 4217 currency. */
export interface DelegationBudget {
  amount: number;
  currency: string;
  period: BudgetPeriod;
}

/** Stricter rules a principal may add to a delegation. */
export interface DelegationRules {
  /** "Always ask me for commit steps": every commit-tier step needs approval (policies/delegation.cedar). */
  askForCommit: boolean;
}

/**
 * What an action carries of the delegation it runs under (copied at intake): enough for the
 * saga to hold the budget and stop when the delegation is gone, for Cedar's context, and for
 * the receipt, without reading the delegation again.
 */
export interface DelegationSnapshot {
  id: string;
  agent: string;
  /** The principal who granted it (the action's principal). */
  principal: string;
  expiresAt: string;
  rules: DelegationRules;
  /** The budget in minor units of the base currency (converted at intake), or null when none was set. */
  budget: { limit: number; period: BudgetPeriod; declared: { amount: number; currency: string } } | null;
}

/** The id of the spend counter a delegation's budget is held on, for the period `now` falls in. */
export function delegationCounterKey(snapshot: Pick<DelegationSnapshot, 'id' | 'budget'>, now: Date): string {
  const iso = now.toISOString();
  const period = snapshot.budget?.period ?? 'total';
  const slot = period === 'day' ? iso.slice(0, 10) : period === 'month' ? iso.slice(0, 7) : 'all';
  return `delegation#${snapshot.id}#${slot}`;
}

/** The cap id a delegation's budget is refused under (spend counters name their cap). */
export function delegationCapId(id: string): string {
  return `delegation:${id}`;
}
