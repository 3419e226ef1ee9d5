import { isTerminal, type ActionRecord, type CancelRequest } from './action';
import { canView } from './view';
import type { ActionStore } from '../ports/ledger';
import { StatusTransitionError } from '../ports/ledger';
import type { ApprovalStore } from '../ports/approvals';
import type { EventLog } from '../ports/steps';
import { TaskTokenInvalidError, type TaskCallbacks } from '../ports/task-callbacks';
import type { Principal } from '../shared/principal';
import type { Logger } from '../shared/logger';
import { approvalIdFor } from '../shared/ids';

/**
 * Withdrawing an action (`POST /v1/actions/{id}/cancel`). An action that has not started
 * work (received, awaiting approval) ends `cancelled` at once: its approval is closed (it
 * leaves the approvers' inbox) and the saga's WaitForApproval is answered. A running one is
 * marked on its own item: the saga reads that mark with the action it loads before each
 * forward step (no extra read), stops there (ActionCancelledError), compensates what it did
 * and ends `cancelled`. A finished action cannot be cancelled. Repeating a cancel changes
 * nothing and answers the same.
 */

/** Error name the ASL's WaitForApproval Catch sees when a cancel answers it. */
export const ACTION_CANCELLED_TASK_ERROR = 'ActionCancelled';

/** Audit event types of a cancel. */
export const CancelEventTypes = { cancelled: 'action.cancelled', approvalCancelled: 'approval.cancelled' } as const;

/** The longest reason kept (it lands in the audit chain and the receipt). */
export const CANCEL_REASON_MAX = 500;

export interface CancelDeps {
  actions: ActionStore;
  approvals: Pick<ApprovalStore, 'getApproval' | 'settle' | 'getTaskToken' | 'markAnswered'>;
  events: EventLog;
  callbacks: TaskCallbacks;
  now: () => Date;
  logger: Logger;
  /** Holders of this role may cancel anyone's action (the kill switch's operators). */
  adminRole: string;
}

/** No action with this id that the caller may see (told apart from nothing, so ids cannot be probed). */
export class ActionNotFoundError extends Error {
  constructor(readonly actionId: string) {
    super(`No action ${actionId.slice(0, 40)}.`);
    this.name = 'ActionNotFoundError';
  }
}

/** The caller may see the action but is neither its requester nor an admin. */
export class CancelForbiddenError extends Error {
  constructor(
    readonly actionId: string,
    readonly requiredRole: string,
  ) {
    super(`Only the principal who asked for action ${actionId}, or someone with the ${requiredRole} role, may cancel it.`);
    this.name = 'CancelForbiddenError';
  }
}

/** The action already ended otherwise than cancelled: there is nothing left to withdraw. */
export class ActionFinishedError extends Error {
  constructor(
    readonly actionId: string,
    readonly actionStatus: string,
  ) {
    super(`Action ${actionId} already ended ${actionStatus}; there is nothing left to cancel. Its receipt says what was done.`);
    this.name = 'ActionFinishedError';
  }
}

/**
 * The action still awaits its approval, but the approval was decided first (a rejecting vote,
 * or its expiry, won the race with the cancel): the action ends as the approval says.
 */
export class ApprovalDecidedError extends ActionFinishedError {
  constructor(actionId: string, outcome: 'rejected' | 'expired') {
    super(actionId, outcome);
    this.message = `Action ${actionId}'s approval was ${outcome} before the cancel arrived; the action ends ${outcome}, with nothing done.`;
    this.name = 'ApprovalDecidedError';
  }
}

/**
 * Thrown by the saga before a forward step of an action whose cancel was requested. Not
 * retried by the ASL: compensation follows, and the action ends `cancelled`.
 */
export class ActionCancelledError extends Error {
  constructor(
    readonly actionId: string,
    readonly cancel: CancelRequest,
  ) {
    super(`Action ${actionId} was cancelled by ${cancel.by}: ${cancel.reason}`);
    this.name = 'ActionCancelledError';
  }
}

/** `cancelled`: the action has ended cancelled; `stopping`: it stops before its next step and compensates. */
export interface CancelOutcome {
  state: 'cancelled' | 'stopping';
  action: ActionRecord;
}

/** The saga's check: throws ActionCancelledError when the action it loaded carries a cancel. */
export function assertNotCancelled(action: ActionRecord): void {
  if (action.cancel) throw new ActionCancelledError(action.id, action.cancel);
}

/** Cancels `actionId` for `caller` (see the module comment); `by` is recorded as the actor. */
export async function cancelAction(
  deps: CancelDeps,
  caller: Principal,
  actionId: string,
  input: { reason?: string } = {},
): Promise<CancelOutcome> {
  const action = await deps.actions.getAction(actionId);
  const admin = caller.roles.includes(deps.adminRole);
  if (!action || !(admin || canView(caller, action))) throw new ActionNotFoundError(actionId);
  if (action.principal.sub !== caller.sub && !admin) {
    deps.logger.warn('cancel refused', { actionId, caller: caller.sub, requiredRole: deps.adminRole });
    throw new CancelForbiddenError(actionId, deps.adminRole);
  }
  return requestCancel(deps, action, {
    by: caller.sub,
    at: deps.now().toISOString(),
    reason: (input.reason ?? 'no reason given').slice(0, CANCEL_REASON_MAX),
  });
}

/**
 * Cancels an action already authorized (the API's caller, or a revoked delegation): marks it
 * once, audits the first mark, and ends it at once when no work has started.
 */
export async function requestCancel(deps: CancelDeps, action: ActionRecord, cancel: CancelRequest): Promise<CancelOutcome> {
  if (isTerminal(action.status)) return ended(action);
  const marked = await deps.actions.requestCancel(action.id, cancel, deps.now());
  if (!marked) throw new ActionNotFoundError(action.id);
  if (!marked.cancel) return ended(marked); // it ended between the read and the mark
  if (marked.cancel.at === cancel.at && marked.cancel.by === cancel.by) {
    await deps.events.append(
      action.id,
      { type: CancelEventTypes.cancelled, actor: cancel.by, data: { reason: cancel.reason, from: marked.status } },
      deps.now(),
    );
  }
  if (marked.status !== 'received' && marked.status !== 'awaiting_approval') return { state: 'stopping', action: marked };
  // An approval decides before the action ends: the cancel must first close it. Closed
  // otherwise already (a vote or its expiry won the race), the approvers' decision stands.
  const claim = marked.status === 'awaiting_approval' ? await claimApproval(deps, marked, marked.cancel) : 'absent';
  if (claim === 'rejected' || claim === 'expired') throw new ApprovalDecidedError(action.id, claim);
  // Approved: the saga reads the cancel mark before the first step, and ends `cancelled`.
  if (claim === 'approved') return { state: 'stopping', action: marked };
  let done: ActionRecord;
  try {
    done = await deps.actions.transition(action.id, 'cancelled', { statusReason: `cancelled by ${marked.cancel.by}: ${marked.cancel.reason}`.slice(0, 600) }, deps.now(), marked);
  } catch (error) {
    if (!(error instanceof StatusTransitionError)) throw error;
    // The saga moved first (the approval was granted, or policy ran): it stops before its next step.
    const latest = (await deps.actions.getAction(action.id)) ?? marked;
    // Its approval is closed all the same: the saga, if it still waits, must hear so.
    if (claim === 'closed') await answerClosed(deps, latest, marked.cancel);
    return isTerminal(latest.status) ? ended(latest) : { state: 'stopping', action: latest };
  }
  await deps.events.append(action.id, { type: 'action.status', actor: cancel.by, data: { from: marked.status, to: 'cancelled', reason: done.statusReason } }, deps.now());
  if (claim === 'closed') await answerClosed(deps, done, marked.cancel);
  return { state: 'cancelled', action: done };
}

function ended(action: ActionRecord): CancelOutcome {
  if (action.status === 'cancelled') return { state: 'cancelled', action };
  if (isTerminal(action.status)) throw new ActionFinishedError(action.id, action.status);
  return { state: 'stopping', action };
}

/**
 * Closes the action's pending approval for the cancel (so no one votes on it and it leaves the
 * inbox), by the same conditional settle a deciding vote or an expiry makes, so exactly one of
 * them decides. `closed`: this cancel closed it; `absent`: no approval yet (RequestApproval
 * finds the action ended and the saga settles it) or another cancel closed it; otherwise the
 * outcome that won the race.
 */
async function claimApproval(deps: CancelDeps, action: ActionRecord, cancel: CancelRequest): Promise<'closed' | 'absent' | 'approved' | 'rejected' | 'expired'> {
  const approvalId = approvalIdFor(action.id);
  let approval = await deps.approvals.getApproval(approvalId);
  if (approval?.status === 'pending') {
    if (await deps.approvals.settle(approvalId, 'cancelled', { by: cancel.by, reason: cancel.reason }, deps.now())) return 'closed';
    approval = await deps.approvals.getApproval(approvalId);
  }
  if (!approval || approval.status === 'cancelled' || approval.status === 'pending') return 'absent';
  return approval.status;
}

/** Audits the approval this cancel closed and answers the saga waiting on it. */
async function answerClosed(deps: CancelDeps, action: ActionRecord, cancel: CancelRequest): Promise<void> {
  const approvalId = approvalIdFor(action.id);
  await deps.events.append(action.id, { type: CancelEventTypes.approvalCancelled, actor: cancel.by, data: { approvalId, reason: cancel.reason } }, deps.now());
  const token = await deps.approvals.getTaskToken(approvalId);
  if (!token) return;
  try {
    await deps.callbacks.sendTaskFailure(token, ACTION_CANCELLED_TASK_ERROR, cancel.reason);
    await deps.approvals.markAnswered(approvalId, deps.now());
  } catch (error) {
    if (!(error instanceof TaskTokenInvalidError)) throw error;
    deps.logger.warn('the saga no longer waits on this approval', { approvalId, actionId: action.id, reason: error.reason });
  }
}
