import { validateEnvelope, type NormalizedAction } from '../intake/envelope';
import type { ToolRegistry } from '../ports/tools';
import type { ActionRecord } from './action';

/** The action is gone or in a state a task cannot act on. Not retryable. */
export class ActionStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ActionStateError';
  }
}

/** Envelopes validated by this process, by registry and envelope text (most recent last). */
const validated = new WeakMap<ToolRegistry, Map<string, NormalizedAction>>();
/** How many validated envelopes a registry keeps: one instance's actions in flight, with room. */
const VALIDATED_MAX = 256;

/**
 * The plan of a stored action (validated again: the envelope is the source of truth). Every
 * saga task reads it, several per step: the same envelope text is validated once per process
 * (validation is a pure function of the text and the registry) and each caller gets its own
 * copy, so what a task does to its plan never reaches another's.
 */
export function planOf(action: ActionRecord, tools: ToolRegistry): NormalizedAction {
  const text = JSON.stringify(action.envelope ?? null);
  let byText = validated.get(tools);
  if (!byText) validated.set(tools, (byText = new Map()));
  let plan = byText.get(text);
  if (!plan) {
    const result = validateEnvelope(action.envelope, tools);
    if (!result.ok) throw new ActionStateError(`Action ${action.id} holds an envelope that no longer validates`);
    plan = result.action;
    byText.set(text, plan);
    if (byText.size > VALIDATED_MAX) byText.delete(byText.keys().next().value!);
  }
  const own = structuredClone(plan);
  // The delegation rides along, so a run-time decision sees the context intake's did.
  return action.delegation ? { ...own, delegation: action.delegation } : own;
}
