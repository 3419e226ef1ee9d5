import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Principal } from '../shared/principal';
import type { PolicyConfig } from './files';
import type { PlanStep } from './types';

/** Cedar entity type names, as declared in policies/schema.cedarschema. */
export const USER = 'Airlock::User';
export const TOOL = 'Airlock::Tool';
export const ACTION = 'Airlock::Action';

/**
 * Largest amount taken at face value: $1 trillion in cents. Anything above is treated as
 * invalid, which also keeps plan totals (sums of up to ~90 such amounts) below 2^53, where
 * JSON numbers stop being exact integers for Cedar's Long.
 */
const MAX_CENTS = 1e14;

/** One step's money, normalized to cents of the base currency. */
export interface StepMoney {
  cents: number;
  currency: string;
  valid: boolean;
}

/** A plan with its money read once: what every Cedar question about it shares. */
export interface PreparedPlan {
  steps: { step: PlanStep; money: StepMoney; connectorTotal: number }[];
  planTotal: number;
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

/** Converts major units to cents of the base currency; unknown currencies and odd numbers are invalid, not guessed. */
export function stepMoney(step: PlanStep, config: PolicyConfig): StepMoney {
  const m = step.facts.amount;
  if (m === undefined) return { cents: 0, currency: '', valid: true };
  const currency = typeof m.currency === 'string' ? m.currency.toUpperCase() : '';
  const rate = config.rates[currency];
  if (rate === undefined || typeof m.amount !== 'number' || !Number.isFinite(m.amount) || m.amount < 0) {
    return { cents: 0, currency, valid: false };
  }
  const cents = Math.round(m.amount * rate * 100);
  return cents <= MAX_CENTS ? { cents, currency, valid: true } : { cents: 0, currency, valid: false };
}

/** Major units to cents, clamped. A non-number counts as "over any cap" so it fails closed. */
export function spendCents(major: number): number {
  if (typeof major !== 'number' || Number.isNaN(major)) return MAX_CENTS;
  return Math.min(MAX_CENTS, Math.max(0, Math.round(major * 100)));
}

/**
 * Reads every step's money once and totals commit-tier money for the plan and per connector.
 * The same amount moving through one connector to one counterparty twice (hold then book,
 * authorize then capture) is one payment, so it counts once; otherwise a $600 flight that is
 * held and then booked would count as $1,200.
 */
export function preparePlan(steps: PlanStep[], config: PolicyConfig): PreparedPlan {
  const prepared = steps.map((step) => ({ step, money: stepMoney(step, config) }));
  const seen = new Set<string>();
  const byConnector = new Map<string, number>();
  let planTotal = 0;
  for (const { step, money } of prepared) {
    if (step.facts.tier !== 'commit' || !money.valid || money.cents === 0) continue;
    const key = JSON.stringify([step.facts.connector, step.facts.counterparty ?? '', money.cents]);
    if (seen.has(key)) continue;
    seen.add(key);
    planTotal += money.cents;
    byConnector.set(step.facts.connector, (byConnector.get(step.facts.connector) ?? 0) + money.cents);
  }
  return {
    steps: prepared.map((p) => ({ ...p, connectorTotal: Math.min(byConnector.get(p.step.facts.connector) ?? 0, Number.MAX_SAFE_INTEGER) })),
    planTotal: Math.min(planTotal, Number.MAX_SAFE_INTEGER),
  };
}

/** What every step of one decision shares in its context. */
export interface SharedContext {
  dryRun: boolean;
  dailySpend: number;
  dailyCap: number;
  planTotal: number;
  planSteps: number;
  hour: number;
  weekday: number;
  allowedVendors: string[];
  deniedVendors: string[];
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
    amount: s.money.cents,
    currency: s.money.currency,
    moneyValid: s.money.valid,
    vendor: f.vendor,
    dailySpend: shared.dailySpend,
    dailyCap: shared.dailyCap,
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
  return ctx;
}

/** The context of `approve` for one step (schema type ApprovalContext). */
export function approvalContext(requester: Principal, plan: PreparedPlan, s: PreparedPlan['steps'][number]): cedar.Context {
  const f = s.step.facts;
  const ctx: cedar.Context = {
    requester: userRef(requester.sub),
    tier: f.tier,
    amount: s.money.cents,
    currency: s.money.currency,
    planTotal: plan.planTotal,
  };
  if (f.counterparty !== undefined) ctx.counterparty = f.counterparty;
  if (f.grantee !== undefined) ctx.grantee = userRef(f.grantee);
  if (f.role !== undefined) ctx.role = f.role;
  return ctx;
}
