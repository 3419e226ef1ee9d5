import type { StoredDecision } from '../actions/action';
import type { NormalizedAction } from '../intake/envelope';
import type { Decider } from '../intake/intake';
import type { SpendStore } from '../ports/steps';
import type { ToolRegistry } from '../ports/tools';
import { baseMinorToMajor } from '../shared/money';
import type { Principal } from '../shared/principal';
import { utcDay } from '../shared/ids';
import type { PolicyEngine, ToolFacts } from './index';

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

/**
 * Adapts the Cedar engine to intake's Decider. `dailySpend` answers in minor units of the
 * base currency (what the spend store keeps); the engine is told major units.
 */
export function deciderFor(
  engine: PolicyEngine,
  tools: ToolRegistry,
  dailySpend: (sub: string, now: Date) => Promise<number> = async () => 0,
  limitsVersion?: string,
): Decider {
  return {
    async decide(principal: Principal, action: NormalizedAction, now: Date): Promise<StoredDecision> {
      const decision = engine.decide({
        principal,
        steps: action.steps.map((s) => ({ id: s.id, facts: toolFacts(tools, s.tool, s.arguments) })),
        dryRun: action.mode === 'dry_run',
        dailySpend: baseMinorToMajor(await dailySpend(principal.sub, now), engine.money),
        now,
      });
      return { ...decision, ...(limitsVersion ? { limitsVersion } : {}), decidedAt: now.toISOString() };
    },
  };
}

/**
 * A Decider whose daily spend comes from the ledger's spend counters; its decisions name the
 * limits file in force (`limitsVersion`), as they name the policy set.
 */
export function spendAwareDecider(engine: PolicyEngine, spend: SpendStore, tools: ToolRegistry, limitsVersion?: string): Decider {
  return deciderFor(engine, tools, (sub, now) => spend.dailySpend(sub, utcDay(now)), limitsVersion);
}
