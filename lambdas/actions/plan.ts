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

/** The plan of a stored action (validated again: the envelope is the source of truth). */
export function planOf(action: ActionRecord, tools: ToolRegistry): NormalizedAction {
  const result = validateEnvelope(action.envelope, tools);
  if (!result.ok) throw new ActionStateError(`Action ${action.id} holds an envelope that no longer validates`);
  // The delegation rides along, so a run-time decision sees the context intake's did.
  return action.delegation ? { ...result.action, delegation: action.delegation } : result.action;
}
