import type { NormalizedAction } from '../intake/envelope';
import type { Delegation, DelegationStore } from '../ports/delegations';
import type { SpendCapStore } from '../ports/spend-caps';
import type { ToolRegistry } from '../ports/tools';
import { committedSpend, toBaseMinor, type MoneyConfig, type SpendItem } from '../shared/money';
import type { Principal } from '../shared/principal';
import { isLive } from './delegations';
import { DelegationBudgetExceededError, DelegationRequiredError, type MissingDelegation } from './errors';
import { delegationCounterKey, type DelegationSnapshot } from './model';

/**
 * The delegation an action runs under, found at intake before anything is recorded. The agent
 * is the verified one (Principal.agent: act.sub, azp or client_id), never the body's
 * self-declared `agent.name`. With `required` (the deployment's `requireDelegation`), an
 * action without a matching, live delegation is refused (403, audited); without it, a
 * delegation applies when one covers the action (its budget, rules and revocation hold) and
 * the action goes on as before otherwise.
 */

export interface DelegationGate {
  store: Pick<DelegationStore, 'listDelegations' | 'recordDelegationEvent'>;
  /** `requireDelegation`: on in the deployed stack, off for `npm start` unless asked for. */
  required: boolean;
  tools: ToolRegistry;
  money: MoneyConfig;
  /** The spend counters a delegation's budget is held on (the saga reserves; intake reads). */
  spend?: Pick<SpendCapStore, 'usage'>;
}

/**
 * What spend accounting reads of each step, from the tool's declaration and its arguments (as
 * the decider reads it; amounts behind a `$ref` are unknown here and count as 0: the saga's
 * reservation holds them).
 */
function spendItems(tools: ToolRegistry, steps: NormalizedAction['steps']): SpendItem[] {
  return steps.flatMap((s) => {
    const found = tools.find(s.tool);
    if (!found) return [];
    const parsed = found.tool.input.safeParse(s.arguments);
    const input = parsed.success ? parsed.data : s.arguments;
    const read = <T>(f: ((i: never) => T) | undefined): T | undefined => {
      try {
        return f?.(input as never);
      } catch {
        return undefined;
      }
    };
    const money = read(found.tool.money as ((i: never) => { amount: number; currency: string } | undefined) | undefined);
    return [{ tier: found.tool.tier, connector: found.connector.name, counterparty: read(found.tool.counterparty as ((i: never) => string | undefined) | undefined), amount: money && Number.isFinite(money.amount) ? money : undefined }];
  });
}

/** Whether a delegation covers a tool: named, or its connector is. */
export function covers(delegation: Pick<Delegation, 'tools' | 'connectors'>, tool: string, connector: string): boolean {
  return delegation.tools.includes(tool) || delegation.connectors.includes(connector);
}

/** The snapshot an action carries of its delegation (budget converted to base minor units). */
export function snapshotOf(delegation: Delegation, money: MoneyConfig): DelegationSnapshot {
  const budget = delegation.budget ? toBaseMinor({ amount: delegation.budget.amount, currency: delegation.budget.currency }, money) : undefined;
  return {
    id: delegation.id,
    agent: delegation.agent,
    principal: delegation.principal,
    expiresAt: delegation.expiresAt,
    rules: delegation.rules,
    // A currency whose rate was removed since the grant counts as a budget of 0: fail closed.
    budget: delegation.budget ? { limit: budget?.valid ? budget.minor : 0, period: delegation.budget.period, declared: { amount: delegation.budget.amount, currency: delegation.budget.currency } } : null,
  };
}

/**
 * Finds the live delegation of the principal's agent that covers every tool of `action`, or
 * throws DelegationRequiredError (when required) / DelegationBudgetExceededError, each
 * recorded on the principal's delegation audit trail first.
 */
export async function delegationForAction(
  gate: DelegationGate | undefined,
  principal: Principal,
  action: NormalizedAction,
  now: Date,
  options: {
    /** false for a preview (`POST /v1/decisions`), which records nothing: the same refusal, unaudited. */
    record?: boolean;
  } = {},
): Promise<DelegationSnapshot | undefined> {
  if (!gate) return undefined;
  const record = options.record ?? true;
  const agent = principal.agent;
  const steps = action.steps.map((s) => {
    const found = gate.tools.find(s.tool);
    return { tool: s.tool, connector: found ? found.connector.name : s.tool.split('.')[0]! };
  });
  const toolNames = [...new Set(steps.map((s) => s.tool))];
  const refuse = async (missing: MissingDelegation, tools: string[]): Promise<never> => {
    if (record) await gate.store.recordDelegationEvent(principal.sub, {
      type: 'delegation.refused',
      at: now.toISOString(),
      actor: agent ?? principal.sub,
      data: { attempted: 'action', missing, agent: agent ?? null, tools },
    });
    throw new DelegationRequiredError(missing, agent ?? null, tools);
  };
  if (agent === undefined) {
    if (gate.required) await refuse('no-agent', toolNames);
    return undefined;
  }
  const live = (await gate.store.listDelegations(principal.sub)).filter((d) => d.agent === agent && isLive(d, now));
  // The newest consent that covers the whole action (the store lists newest first).
  const covering = live.find((d) => steps.every((s) => covers(d, s.tool, s.connector)));
  if (!covering) {
    if (!gate.required) return undefined;
    if (live.length === 0) return refuse('no-delegation', toolNames);
    const uncovered = [...new Set(steps.filter((s) => !live.some((d) => covers(d, s.tool, s.connector))).map((s) => s.tool))];
    // Each tool is covered by some delegation but none covers them all: name every tool.
    return refuse('tools-not-covered', uncovered.length > 0 ? uncovered : toolNames);
  }
  const snapshot = snapshotOf(covering, gate.money);
  if (snapshot.budget && gate.spend && action.mode === 'execute') {
    // The plan's known commit-tier money against what the budget has left; the saga's
    // reservation (a conditional write per step) is what holds it under concurrency.
    const requested = committedSpend(spendItems(gate.tools, action.steps), gate.money).total;
    if (requested > 0) {
      const key = delegationCounterKey(snapshot, now);
      const used = (await gate.spend.usage([key])).get(key)?.used ?? 0;
      if (used + requested > snapshot.budget.limit) {
        if (record) await gate.store.recordDelegationEvent(principal.sub, {
          type: 'delegation.refused',
          at: now.toISOString(),
          actor: agent,
          data: { attempted: 'action', missing: 'budget', delegationId: snapshot.id, agent, tools: toolNames, limit: snapshot.budget.limit, used, requested },
        });
        throw new DelegationBudgetExceededError(snapshot.id, snapshot.budget.limit, used, requested, gate.money.baseCurrency.toUpperCase());
      }
    }
  }
  return snapshot;
}
