import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Principal } from '../shared/principal';
import { committedSpend, MAX_MINOR, type BaseMoney, type MoneyConfig } from '../shared/money';
import type { CapContext, DelegationContext, PlanStep } from './types';

/** Cedar entity type names, as declared in policies/schema.cedarschema. */
export const USER = 'Airlock::User';
export const TOOL = 'Airlock::Tool';
export const ACTION = 'Airlock::Action';

/** A plan with its money read once: what every Cedar question about it shares. */
export interface PreparedPlan {
  steps: { step: PlanStep; money: BaseMoney; connectorTotal: number }[];
  planTotal: number;
  /** The plan's commit-tier total per connector. */
  byConnector: ReadonlyMap<string, number>;
}

/** The Cedar uid of a user. */
export function userUid(sub: string): cedar.EntityUidJson {
  return { type: USER, id: sub };
}

/** A user as an entity-reference value (for context attributes and `manager`). */
export function userRef(sub: string): cedar.CedarValueJson {
  return { __entity: { type: USER, id: sub } };
}

/** A principal as a Cedar entity (schema type Airlock::User); no parents: roles are an attribute. */
export function userEntity(p: Principal): cedar.EntityJson {
  const attrs: Record<string, cedar.CedarValueJson> = { roles: [...p.roles] };
  if (p.manager !== undefined) attrs.manager = userRef(p.manager);
  if (p.department !== undefined) attrs.department = p.department;
  return { uid: userUid(p.sub), attrs, parents: [] };
}

/** A step's tool as a Cedar entity (schema type Airlock::Tool), id = full tool name. */
export function toolEntity(step: PlanStep): cedar.EntityJson {
  const f = step.facts;
  return { uid: { type: TOOL, id: f.tool }, attrs: { tier: f.tier, connector: f.connector, vendor: f.vendor }, parents: [] };
}

/**
 * Reads every step's money once, in minor units of the base currency, and totals the plan's
 * commit-tier money, as a whole and per connector, with the one spend rule (shared/money).
 */
export function preparePlan(steps: PlanStep[], config: MoneyConfig): PreparedPlan {
  const spend = committedSpend(steps.map((s) => s.facts), config);
  return {
    steps: steps.map((step, i) => ({ step, money: spend.items[i]!, connectorTotal: spend.byConnector.get(step.facts.connector) ?? 0 })),
    planTotal: spend.total,
    byConnector: spend.byConnector,
  };
}

/**
 * Caps as the engine trusts them: whole, non-negative minor units. A figure that is not (NaN,
 * negative, infinite) reads as "full", so a broken input fails closed.
 */
export function sanitizeCaps(caps: readonly CapContext[] | undefined): CapContext[] {
  const whole = (n: number, fallback: number) => (Number.isFinite(n) && n >= 0 ? Math.min(Math.round(n), MAX_MINOR) : fallback);
  return (caps ?? []).map((c) => ({ ...c, limit: whole(c.limit, 0), used: whole(c.used, MAX_MINOR) }));
}

/** What `capLimit` reads when no cap covers a step: larger than any real cap, so no rule fires. */
export const NO_CAP = MAX_MINOR;

/**
 * The cap a step's context shows: of the caps that cover its connector, the one this plan
 * leaves the least room under (`limit - used - plan`).
 */
export function tightestCap(
  caps: readonly CapContext[],
  connector: string,
  plan: Pick<PreparedPlan, 'planTotal' | 'byConnector'>,
): { capId: string; capSpent: number; capLimit: number; capPlan: number } {
  let best = { capId: '', capSpent: 0, capLimit: NO_CAP, capPlan: 0 };
  let bestRoom = Infinity;
  for (const cap of caps) {
    if (cap.connectors !== undefined && !cap.connectors.includes(connector)) continue;
    const toward = cap.connectors === undefined ? plan.planTotal : cap.connectors.reduce((sum, c) => sum + (plan.byConnector.get(c) ?? 0), 0);
    const room = cap.limit - cap.used - toward;
    if (room < bestRoom) {
      bestRoom = room;
      best = { capId: cap.id, capSpent: cap.used, capLimit: cap.limit, capPlan: toward };
    }
  }
  return best;
}

/** What every step of one decision shares in its context. */
export interface SharedContext {
  dryRun: boolean;
  /** The spend caps that count this principal's spend, as they stand. */
  caps: readonly CapContext[];
  planTotal: number;
  byConnector: ReadonlyMap<string, number>;
  planSteps: number;
  hour: number;
  weekday: number;
  allowedVendors: string[];
  deniedVendors: string[];
  delegation?: DelegationContext | undefined;
}

/** A delegation's figures as the engine trusts them: whole, non-negative; a broken figure reads as "spent". */
export function sanitizeDelegation(d: DelegationContext | undefined): DelegationContext | undefined {
  if (!d) return undefined;
  const whole = (n: number, fallback: number) => (Number.isFinite(n) && n >= 0 ? Math.min(Math.round(n), MAX_MINOR) : fallback);
  return { ...d, budgetLimit: whole(d.budgetLimit, 0), budgetSpent: whole(d.budgetSpent, MAX_MINOR) };
}

/** The context of `request` / `run_unattended` for one step (schema type StepContext). */
export function stepContext(
  shared: SharedContext,
  s: PreparedPlan['steps'][number],
): cedar.Context {
  const f = s.step.facts;
  const ctx: cedar.Context = {
    tier: f.tier,
    dryRun: shared.dryRun,
    amount: s.money.minor,
    currency: s.money.currency,
    moneyValid: s.money.valid,
    vendor: f.vendor,
    ...tightestCap(shared.caps, f.connector, shared),
    planTotal: shared.planTotal,
    connectorTotal: s.connectorTotal,
    planSteps: shared.planSteps,
    hour: shared.hour,
    weekday: shared.weekday,
    allowedVendors: shared.allowedVendors,
    deniedVendors: shared.deniedVendors,
  };
  if (f.counterparty !== undefined) ctx.counterparty = f.counterparty;
  if (f.grantee !== undefined) ctx.grantee = userRef(f.grantee);
  if (f.role !== undefined) ctx.role = f.role;
  if (shared.delegation) ctx.delegation = { ...shared.delegation };
  return ctx;
}

/** The context of `approve` for one step (schema type ApprovalContext). */
export function approvalContext(requester: Principal, plan: PreparedPlan, s: PreparedPlan['steps'][number]): cedar.Context {
  const f = s.step.facts;
  const ctx: cedar.Context = {
    requester: userRef(requester.sub),
    tier: f.tier,
    amount: s.money.minor,
    currency: s.money.currency,
    planTotal: plan.planTotal,
  };
  if (f.counterparty !== undefined) ctx.counterparty = f.counterparty;
  if (f.grantee !== undefined) ctx.grantee = userRef(f.grantee);
  if (f.role !== undefined) ctx.role = f.role;
  return ctx;
}
