import type { StoredDecision } from '../actions/action';
import type { NormalizedAction } from '../intake/envelope';
import type { Decider } from '../intake/intake';
import type { Principal } from '../shared/principal';
import { findTool } from '../tools/registry';
import type { PolicyEngine, ToolFacts } from './index';

/**
 * Facts about a step that policy decides on, read from the tool's declaration and the
 * step's arguments. Values still behind a `$ref` are unknown here; the saga re-decides at
 * run time with resolved arguments.
 */
export function toolFacts(toolName: string, args: Record<string, unknown>): ToolFacts {
  const registered = findTool(toolName);
  if (!registered) throw new Error(`Unknown tool ${toolName}`);
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

/** Adapts the Cedar engine to intake's Decider. */
export function deciderFor(engine: PolicyEngine, dailySpend: (sub: string, now: Date) => Promise<number> = async () => 0): Decider {
  return {
    async decide(principal: Principal, action: NormalizedAction, now: Date): Promise<StoredDecision> {
      const decision = engine.decide({
        principal,
        steps: action.steps.map((s) => ({ id: s.id, facts: toolFacts(s.tool, s.arguments) })),
        dryRun: action.mode === 'dry_run',
        dailySpend: await dailySpend(principal.sub, now),
        now,
      });
      return { ...decision, decidedAt: now.toISOString() };
    },
  };
}
