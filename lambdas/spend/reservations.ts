import type { Metrics } from '../ports/metrics';
import type { SpendCapStore } from '../ports/spend-caps';
import type { StepRecord } from '../ports/steps';
import type { SpendItem } from '../shared/money';
import type { Principal } from '../shared/principal';
import { SpendCapExceededError, stepIncrement, type SpendCaps } from './caps';
import type { CapCharge } from '../ports/spend-caps';
import { delegationCapId, delegationCounterKey, type DelegationSnapshot } from '../delegations/model';
import { DelegationBudgetExceededError } from '../delegations/errors';

/**
 * The saga's side of spend caps: a commit step reserves its amount against every applicable
 * cap before its vendor call (IssueGrant), and when the action settles each reservation is
 * made final (the step's spend stayed done) or released (it was undone, or never happened).
 * Reservations are keyed by action and step, so a retried IssueGrant or SettleAction never
 * counts anything twice.
 */

/** What the saga needs to hold caps: the caps, their counters, and where metrics go. */
export interface SpendGuard {
  caps: SpendCaps;
  store: SpendCapStore;
  metrics: Metrics;
}

/** One commit step about to run. */
export interface StepToReserve {
  actionId: string;
  stepId: string;
  principal: Pick<Principal, 'sub' | 'department'>;
  connector: string;
  /** The plan's steps up to and including this one, as spend items (earlier ones with the inputs they ran with). */
  items: readonly SpendItem[];
  /** This step's position in `items`. */
  index: number;
  /** The delegation the action runs under: its budget is one more counter the step is charged to. */
  delegation?: DelegationSnapshot | undefined;
}

/** Counters are kept this long after their period ends (as the caps' are). */
const DELEGATION_COUNTER_GRACE_SECONDS = 35 * 86_400;

/**
 * The counter a delegation's budget is held on for the period `now` falls in, as one more
 * charge of the same all-or-none reservation as the spend caps: so the budget holds under
 * concurrency exactly as a cap does (a conditional write, never a read-modify-write).
 */
export function delegationCharge(delegation: DelegationSnapshot | undefined, now: Date): CapCharge | undefined {
  if (!delegation?.budget) return undefined;
  const end =
    delegation.budget.period === 'day'
      ? Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)
      : delegation.budget.period === 'month'
        ? Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)
        : Date.parse(delegation.expiresAt);
  return {
    key: delegationCounterKey(delegation, now),
    capId: delegationCapId(delegation.id),
    limit: delegation.budget.limit,
    expiresAt: Math.floor(end / 1000) + DELEGATION_COUNTER_GRACE_SECONDS,
  };
}

/** What a reservation came to: the amount held (0 when the step moves no new money). */
export interface Reserved {
  amount: number;
  replayed: boolean;
}

/**
 * Reserves a commit step's amount against every cap that covers it, all or none. Throws
 * SpendCapExceededError naming the first cap that could not admit it: nothing is charged, and
 * the saga compensates the steps before it.
 */
export async function reserveStepSpend(guard: SpendGuard, step: StepToReserve, now: Date): Promise<Reserved> {
  const item = step.items[step.index];
  if (!item || item.tier !== 'commit') return { amount: 0, replayed: false };
  const amount = stepIncrement(step.items, step.index, guard.caps.money);
  if (amount <= 0) return { amount: 0, replayed: false };
  const budget = delegationCharge(step.delegation, now);
  const charges = [...guard.caps.charges(step.principal, step.connector, now), ...(budget ? [budget] : [])];
  if (charges.length === 0) return { amount: 0, replayed: false };
  const result = await guard.store.reserve({ actionId: step.actionId, stepId: step.stepId, connector: step.connector, amount, caps: charges }, now);
  if (result.outcome === 'refused' && budget && result.capId === budget.capId) {
    const used = (await guard.store.usage([budget.key])).get(budget.key)?.used ?? 0;
    throw new DelegationBudgetExceededError(step.delegation!.id, budget.limit, used, amount, guard.caps.money.baseCurrency.toUpperCase());
  }
  if (result.outcome === 'refused') {
    guard.metrics.count('SpendCapRefused', { cap: result.capId });
    const cap = guard.caps.find(result.capId);
    const charge = charges.find((c) => c.capId === result.capId);
    // The store only refuses with a cap it was given, and those come from guard.caps.
    if (!cap || !charge) throw new Error(`The spend-cap store refused with an unknown cap ${result.capId.slice(0, 64)}`);
    // Read after the refusal, for the message only: the refusal itself was the conditional write.
    const used = (await guard.store.usage([charge.key])).get(charge.key)?.used ?? 0;
    throw new SpendCapExceededError(guard.caps.exceeded(cap, used, amount));
  }
  if (result.outcome === 'reserved') guard.metrics.count('SpendReserved', { connector: step.connector }, amount);
  return { amount, replayed: result.outcome === 'replayed' };
}

/** How each held reservation of an action ended. */
export interface SettledSpend {
  final: string[];
  released: string[];
}

/**
 * Settles an action's held reservations once it has ended: a step whose forward call
 * completed and was not undone is final (completed spend); anything else — compensated,
 * failed, never run — is released. Safe to repeat: a settled reservation stays as it is.
 */
export async function settleActionSpend(guard: SpendGuard, actionId: string, records: readonly StepRecord[], now: Date): Promise<SettledSpend> {
  const out: SettledSpend = { final: [], released: [] };
  const held = (await guard.store.listReservations(actionId)).filter((r) => r.state === 'held');
  if (held.length === 0) return out;
  const completed = new Set(records.filter((r) => r.kind === 'forward' && r.status === 'complete').map((r) => r.stepId));
  const undone = new Set(records.filter((r) => r.kind === 'compensate' && r.status === 'complete').map((r) => r.stepId));
  // Each reservation is its own items (its state flip guards its own counters): settled side
  // by side, reported in the order they were listed.
  const settled = await Promise.all(
    held.map(async (r) => {
      const to: 'final' | 'released' = completed.has(r.stepId) && !undone.has(r.stepId) ? 'final' : 'released';
      return { stepId: r.stepId, to, done: await guard.store.settle(actionId, r.stepId, to, now, r) };
    }),
  );
  for (const { stepId, to, done } of settled) if (done) out[to].push(stepId);
  return out;
}
