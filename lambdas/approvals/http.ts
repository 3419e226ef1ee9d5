import { notFound, problem, type ProblemError } from '../shared/problem';
import { ApprovalNoLongerWaitingError, ApprovalNotFoundError, VoteRefusedError } from './errors';

/** Which problem document each of the approvals' errors is; undefined for anything else. */
export function approvalsProblem(error: unknown): ProblemError | undefined {
  if (error instanceof ApprovalNotFoundError) return notFound(error.message);
  if (error instanceof ApprovalNoLongerWaitingError) {
    return problem('approvalClosed', 409, 'The action no longer waits for approval', error.message, { reason: error.reason }, { cause: error });
  }
  if (!(error instanceof VoteRefusedError)) return undefined;
  const r = error.refusal;
  switch (r.kind) {
    case 'forbidden':
      return problem('approvalForbidden', 403, 'Not allowed to decide', error.message, { policyIds: r.policyIds });
    case 'decided':
      // Not `status`: that member is the HTTP status (RFC 9457) and would be overwritten by it.
      return problem('approvalClosed', 409, 'Approval already decided', error.message, { approvalStatus: r.approvalStatus });
    case 'action-ended':
      return problem('approvalClosed', 409, 'Action already ended', error.message, { actionStatus: r.actionStatus });
    case 'expired':
      return problem('approvalExpired', 409, 'Approval expired', error.message, { expiresAt: r.expiresAt });
    case 'plan-changed':
      return problem('planMismatch', 409, 'Plan changed', error.message, { planHash: r.planHash });
    case 'vote-changed':
      return problem('voteConflict', 409, 'Already voted', error.message, { vote: r.vote });
    case 'halted':
      return problem('halted', 403, 'Halted', error.message, {
        haltId: r.halt.haltId,
        haltScope: r.halt.scope,
        haltTarget: r.halt.target,
        haltMode: r.halt.mode,
        reason: r.halt.reason,
      });
  }
}
