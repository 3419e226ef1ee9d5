import type { NormalizedAction } from '../intake/envelope';
import type { ToolRegistry } from '../ports/tools';
import type { Principal } from '../shared/principal';
import type { Breakers } from './breakers';
import { subjectOf, type HaltGuard } from './halts';

/** The guardrails intake consults for new work. */
export interface IntakeGuardrails {
  halts: HaltGuard;
  breakers: Breakers;
}

/**
 * New work meets the guardrails before it is recorded: a halt covering its principal, agent
 * (the token's verified agent or the name the body declares), * tools or connectors refuses it (ActionHaltedError), then an open breaker on any connector it
 * needs does (CircuitOpenError). Both read through their caches: no write on the hot path.
 */
export async function refuseGuardedNew(
  guardrails: IntakeGuardrails | undefined,
  tools: ToolRegistry,
  principal: Principal,
  action: NormalizedAction,
): Promise<void> {
  if (!guardrails) return;
  const subject = subjectOf(tools, principal, action.agent.name, action.steps.map((s) => s.tool));
  await guardrails.halts.refuseNew(subject);
  for (const connector of subject.connectors) await guardrails.breakers.check(connector);
}
