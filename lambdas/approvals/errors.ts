import type { ApprovalStatus } from '../ports/approvals';
import type { VoteView } from '../api/schemas';
import type { HaltNotice } from '../guardrails/errors';

/**
 * Why approvals refuse something, as domain errors: approvals/http.ts maps each to its problem
 * document. Their `message` is the detail a person (or a model) can act on, and is what the
 * audit trail records for a refused vote.
 */

/** No approval with this id, or one the caller may not see (told apart from nothing, so ids cannot be probed). */
export class ApprovalNotFoundError extends Error {
  constructor(readonly approvalId: string) {
    super(`No approval ${approvalId}.`);
    this.name = 'ApprovalNotFoundError';
  }
}

/** Why a vote was refused, with what the caller needs to act on it. */
export type VoteRefusal =
  | { kind: 'forbidden'; policyIds: string[] }
  | { kind: 'decided'; approvalStatus: ApprovalStatus }
  | { kind: 'action-ended'; actionStatus: string }
  | { kind: 'expired'; expiresAt: string }
  | { kind: 'plan-changed'; planHash: string }
  | { kind: 'vote-changed'; vote: VoteView }
  | { kind: 'halted'; halt: HaltNotice };

/** A vote the rules refuse (who may vote, what is still open, which plan, one vote each). */
export class VoteRefusedError extends Error {
  constructor(
    readonly refusal: VoteRefusal,
    detail: string,
  ) {
    super(detail);
    this.name = 'VoteRefusedError';
  }
}

/** The workflow behind an approval no longer waits (it timed out or ended): nothing was approved. */
export class ApprovalNoLongerWaitingError extends Error {
  constructor(
    readonly approvalId: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`The workflow behind approval ${approvalId} is no longer waiting (it timed out or ended); nothing was approved.`, options);
    this.name = 'ApprovalNoLongerWaitingError';
  }
}
