import type { StoredDecision } from '../actions/action';
import type { NormalizedAction } from '../intake/envelope';
import type { Decider } from '../intake/intake';
import type { SpendCapStore } from '../ports/spend-caps';
import type { ToolRegistry } from '../ports/tools';
import { describeExceeded, type SpendCaps } from '../spend/caps';
import type { Principal } from '../shared/principal';
import type { PolicyEngine, ToolFacts } from './index';
import { delegationCounterKey, type DelegationSnapshot } from '../delegations/model';
import type { DelegationContext } from './types';
import { NO_CAP } from './request';

/** A plan names a tool the registry does not have (validation should have caught it). */
export class UnknownToolError extends Error {
  constructor(tool: string) {
    super(`Unknown tool ${tool.slice(0, 128)}`);
    this.name = 'UnknownToolError';
  }
}

/**
 * Facts about a step that policy decides on, read from the tool's declaration and the
 * step's arguments. Values still behind a `$ref` are unknown here; the saga re-decides at
 * run time with resolved arguments.
 */
export function toolFacts(tools: ToolRegistry, toolName: string, args: Record<string, unknown>): ToolFacts {
  const registered = tools.find(toolName);
  if (!registered) throw new UnknownToolError(toolName);
  const { tool, connector } = registered;
  const safe = <T>(read: (() => T) | undefined): T | undefined => {
    if (!read) return undefined;
    try {
      return read();
    } catch {
      return undefined;
    }
  };
  const parsed = tool.input.safeParse(args);
  const input = parsed.success ? parsed.data : args;
  const money = safe(() => tool.money?.(input));
  const counterparty = safe(() => tool.counterparty?.(input));
  const grantee = safe(() => tool.grantee?.(input));
  return {
    tool: registered.fullName,
    connector: connector.name,
    tier: tool.tier,
    vendor: connector.vendor.name,
    ...(money && Number.isFinite(money.amount) ? { amount: { amount: money.amount, currency: money.currency } } : {}),
    ...(counterparty ? { counterparty } : {}),
    ...(grantee ? { grantee } : {}),
  };
}

/** Where a decider reads spend caps: the caps in force and their counters. */
export interface CapSource {
  caps: SpendCaps;
  usage: SpendCapStore['usage'];
}

/**
 * Adapts the Cedar engine to intake's Decider. With a CapSource, Cedar's context carries the
 * tightest applicable cap per step (so policy can ask for a person as a cap nears), and a plan
 * whose known amounts would cross a cap is denied with the cap named (`spendCap`), whatever
 * policy says: the cap rule lives in spend/caps.ts, not in Cedar.
 */
export function deciderFor(engine: PolicyEngine, tools: ToolRegistry, spend?: CapSource, limitsVersion?: string): Decider {
  return {
    async decide(principal: Principal, action: NormalizedAction, now: Date): Promise<StoredDecision> {
      const steps = action.steps.map((s) => ({ id: s.id, facts: toolFacts(tools, s.tool, s.arguments) }));
      // The cap counters are read only when a decision can depend on them: a plan with a commit
      // step (its money is held to the caps below, and a moneyless commit meets exposure.cap-near),
      // or one whose tiers some policy reads the caps (or the delegation) for. A plan of reads and
      // drafts, under a policy set whose rules on them all start with `resource.tier == "commit"`,
      // is decided the same with or without them: nothing it can do is counted against a cap.
      const tiers = new Set(steps.map((s) => s.facts.tier));
      const capsMatter = tiers.has('commit') || (engine.capsObservable?.(tiers) ?? true);
      const standings = spend && capsMatter ? await spend.caps.standings(principal, now, spend.usage) : [];
      // The delegation's budget counter likewise (a budget holds only commit-tier money).
      const delegation = action.delegation ? await delegationContext(action.delegation, now, capsMatter ? spend?.usage : undefined) : undefined;
      const decision = engine.decide({
        principal,
        steps,
        dryRun: action.mode === 'dry_run',
        caps: standings.map((s) => ({ id: s.cap.id, limit: s.cap.limit, used: s.used, connectors: s.cap.connectors })),
        ...(delegation ? { delegation } : {}),
        now,
      });
      const stored: StoredDecision = { ...decision, ...(limitsVersion ? { limitsVersion } : {}), decidedAt: now.toISOString() };
      const exceeded = spend && decision.outcome !== 'deny' ? spend.caps.planExceeds(standings, steps.map((s) => s.facts)) : undefined;
      if (!exceeded) return stored;
      return { ...stored, outcome: 'deny', policyIds: [], reasons: [describeExceeded(exceeded)], quorum: 0, approverRule: null, spendCap: exceeded };
    },
  };
}

/** What Cedar's context says of a delegation: its rules and its budget as it stands now. */
async function delegationContext(snapshot: DelegationSnapshot, now: Date, usage: CapSource['usage'] | undefined): Promise<DelegationContext> {
  let spent = 0;
  if (snapshot.budget && usage) {
    const key = delegationCounterKey(snapshot, now);
    spent = (await usage([key])).get(key)?.used ?? 0;
  }
  return { id: snapshot.id, agent: snapshot.agent, askForCommit: snapshot.rules.askForCommit, budgetLimit: snapshot.budget?.limit ?? NO_CAP, budgetSpent: spent };
}

/**
 * A Decider that reads the spend caps of the limits file from their counters; its decisions
 * name the limits file in force (`limitsVersion`), as they name the policy set.
 */
export function spendAwareDecider(
  engine: PolicyEngine,
  caps: SpendCaps,
  store: Pick<SpendCapStore, 'usage'>,
  tools: ToolRegistry,
  limitsVersion?: string,
): Decider {
  return deciderFor(engine, tools, { caps, usage: (keys) => store.usage(keys) }, limitsVersion);
}
