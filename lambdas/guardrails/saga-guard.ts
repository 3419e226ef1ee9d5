import type { ActionRecord } from '../actions/action';
import type { HaltStore } from '../ports/guardrails';
import type { EventLog } from '../ports/steps';
import type { ToolRegistry } from '../ports/tools';
import type { Breakers } from './breakers';
import { assertNotCancelled } from '../actions/cancel';
import { ActionHaltedError, ActionPausedError, CircuitOpenError } from './errors';
import { noticeOf, subjectOf, type HaltGuard } from './halts';
import type { DelegationStore } from '../ports/delegations';
import { DelegationEndedError } from '../delegations/errors';

/**
 * The guardrails a running saga meets before each forward step (IssueGrant calls this once,
 * before minting the step's grant): a halt stops it (ActionHaltedError: compensation follows)
 * or holds it (ActionPausedError: the ASL retries the step with back-off), and an open breaker
 * fails the step at once without calling the vendor (CircuitOpenError: compensation follows).
 * A cancelled action (its item carries the cancel mark) stops the same way as a stop halt
 * (ActionCancelledError: compensation follows, and SettleAction ends it `cancelled`).
 * Compensations never come here: they are how money comes back, so they always run.
 * What the action met is appended to its own audit chain, so its receipt shows it.
 * An action that runs under a delegation stops the same way once the delegation is revoked or
 * has expired (DelegationEndedError: compensation follows): one consistent read of the
 * delegation per forward step, only for delegated actions. A revocation also marks the
 * agent's running actions cancelled; this check is what catches one accepted while the
 * revocation was being written, and an expiry, which nobody writes.
 */

export interface SagaGuardrails {
  halts: HaltGuard;
  haltStore: HaltStore;
  breakers: Breakers;
  /** Where a delegated action's delegation is read before each forward step. */
  delegations?: Pick<DelegationStore, 'getDelegation'>;
}

export async function guardForwardStep(
  deps: { guardrails?: SagaGuardrails; events: EventLog; tools: ToolRegistry; now: () => Date },
  action: ActionRecord,
  plannedTools: readonly string[],
  step: { stepId: string; connector: string },
): Promise<void> {
  // The cancel mark rides on the action item IssueGrant already read: no extra read per step.
  if (action.cancel) {
    await deps.events.append(action.id, { type: 'action.stopped', actor: action.cancel.by, data: { cause: 'cancel', reason: action.cancel.reason, stepId: step.stepId } }, deps.now());
    assertNotCancelled(action);
  }
  const g = deps.guardrails;
  if (!g) return;
  if (action.delegation && g.delegations) {
    const d = await g.delegations.getDelegation(action.delegation.principal, action.delegation.id);
    const why = d?.status === 'expired' ? 'expired' : !d || d.status !== 'active' ? 'revoked' : Date.parse(d.expiresAt) <= deps.now().getTime() ? 'expired' : undefined;
    if (why) {
      await deps.events.append(
        action.id,
        { type: 'action.stopped', actor: why === 'revoked' ? (d?.revokedBy ?? action.delegation.principal) : 'airlock', data: { cause: `delegation.${why}`, delegationId: action.delegation.id, stepId: step.stepId } },
        deps.now(),
      );
      throw new DelegationEndedError(action.id, action.delegation.id, why);
    }
  }
  const halt = await g.halts.checkRunning(subjectOf(deps.tools, action.principal, action.actor.name, plannedTools));
  if (halt) {
    const effect = halt.mode === 'stop' ? 'stopped' : 'paused';
    // Once per halt and action: a paused step is retried many times.
    if (await g.haltStore.markAffected(halt.id, action.id, effect, deps.now())) {
      await deps.events.append(
        action.id,
        { type: `action.${effect}`, actor: halt.createdBy.sub, data: { ...noticeOf(halt), stepId: step.stepId } },
        deps.now(),
      );
    }
    throw halt.mode === 'stop' ? new ActionHaltedError(noticeOf(halt)) : new ActionPausedError(noticeOf(halt));
  }
  try {
    await g.breakers.check(step.connector);
  } catch (error) {
    if (error instanceof CircuitOpenError) {
      await deps.events.append(
        action.id,
        { type: 'breaker.rejected', actor: 'airlock', data: { connector: step.connector, stepId: step.stepId, retryAfterSeconds: error.retryAfterSeconds } },
        deps.now(),
      );
    }
    throw error;
  }
}
