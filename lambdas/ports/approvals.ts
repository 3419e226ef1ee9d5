/**
 * Approvals in the ledger: one approval item per action that policy sent to a human, and one
 * vote item per approver. Every write is a single-item conditional write, so two approvers
 * racing, a retried click or a resumed saga all converge on one outcome.
 */

export const ApprovalStatuses = ['pending', 'approved', 'rejected', 'expired', 'cancelled'] as const;
export type ApprovalStatus = (typeof ApprovalStatuses)[number];

/** What the ledger keeps about an approval, minus the task token (read apart, on purpose). */
export interface ApprovalRecord {
  /** `apr_` + the ULID of the action id: one approval per action, so a retried request is idempotent. */
  id: string;
  actionId: string;
  status: ApprovalStatus;
  /** The plan hash approvers bind to (the action's `planHash`). */
  planHash: string;
  /** Distinct approvers needed. */
  quorum: number;
  /** Human-readable label of who may approve (`manager`, `role:FinanceAdmin`); the check is Cedar's. */
  approverRule: string | null;
  /** `sub` of the principal the agent acted for: never an approver. */
  requester: string;
  /** Subs who receive something from the action (IAM grantees): never approvers either. */
  grantees: string[];
  createdAt: string;
  updatedAt: string;
  /** ISO time after which no vote counts; the saga's WaitForApproval times out then too. */
  expiresAt: string;
  /** Who ended it and why (reject reason, `quorum reached`, `expired`). */
  outcome?: { by: string; reason: string; at: string };
  /** When the saga was told the outcome (SendTaskSuccess / SendTaskFailure succeeded). */
  answeredAt?: string;
  /**
   * The votes this approval accepted, in the order it took them. A cast vote (a vote item)
   * counts for nothing until a conditional write on the approval took it, while the approval
   * was pending and before `expiresAt`. Absent only on approvals stored before votes were
   * accepted this way, whose cast votes all counted.
   */
  accepted?: AcceptedVote[];
  /** Bumped by every accepting write: the optimistic check that keeps two acceptances from overwriting each other. */
  revision?: number;
}

/** A vote the approval took: who, what, when it was cast and when the approval accepted it (before `expiresAt`). */
export interface AcceptedVote {
  voter: string;
  decision: VoteDecision;
  at: string;
  acceptedAt: string;
}

/**
 * One accepting write: the whole accepted list after it, the revision it was computed from,
 * and, when these votes decide the approval (a rejection, or the quorum), its outcome in the
 * same write, so no expiry can come between the deciding vote and its outcome.
 */
export interface AcceptVotes {
  accepted: AcceptedVote[];
  revision: number;
  settle?: { to: 'approved' | 'rejected'; outcome: { by: string; reason: string } };
}

export type VoteDecision = 'approve' | 'reject';

/** One person's vote. The voter is the verified `sub`, never anything from a body. */
export interface VoteRecord {
  approvalId: string;
  voter: string;
  decision: VoteDecision;
  /** The plan hash the voter saw and sent. */
  planHash: string;
  comment?: string;
  at: string;
}

/**
 * Why a vote was refused, as recorded on the action's audit chain: the requester voting on
 * their own action, an IAM grantee voting on their grant, an approver no policy permits, a
 * plan hash other than the one waiting, a changed vote, a vote after the outcome (or after
 * the action ended), a vote after the expiry.
 */
export const VoteRefusalReasons = ['self_approval', 'grantee', 'ineligible', 'stale_plan', 'vote_changed', 'closed', 'expired', 'halted'] as const;
export type VoteRefusalReason = (typeof VoteRefusalReasons)[number];

/**
 * Whether a refused vote may be written to the audit chain: `recorded` (the `count`-th of
 * this approval), `duplicate` (this voter was refused for this reason before) or `capped`
 * (the approval already holds its limit of refusals).
 */
export type ClaimRefusalResult = { outcome: 'recorded'; count: number } | { outcome: 'duplicate' } | { outcome: 'capped' };

export type CreateApprovalResult = 'created' | 'exists';
export type PutVoteResult = { outcome: 'recorded' } | { outcome: 'exists'; vote: VoteRecord };

export interface ApprovalPage {
  items: ApprovalRecord[];
  /** The id of the last approval read, when more may follow. */
  lastEvaluated?: string;
}

export interface ApprovalStore {
  /** Creates the approval with its task token; `exists` when it was created before. */
  createApproval(record: ApprovalRecord, taskToken: string): Promise<CreateApprovalResult>;
  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  /**
   * The task token that answers the saga. Kept out of ApprovalRecord so that no view built
   * from a record can ever carry it.
   */
  getTaskToken(id: string): Promise<string | undefined>;
  /** Replaces the task token (a resumed saga waits on a new one). */
  replaceTaskToken(id: string, taskToken: string, now: Date): Promise<void>;
  /**
   * Records a cast vote once per voter (conditional put); `exists` returns the earlier vote. A
   * cast vote counts only once {@link ApprovalStore.acceptVotes} took it.
   */
  putVote(vote: VoteRecord): Promise<PutVoteResult>;
  getVote(approvalId: string, voter: string): Promise<VoteRecord | undefined>;
  listVotes(approvalId: string): Promise<VoteRecord[]>;
  /**
   * Moves a pending approval to its outcome. Conditional on `status = pending`, so of two
   * racing callers exactly one gets `true` and answers the saga.
   */
  settle(id: string, to: Exclude<ApprovalStatus, 'pending'>, outcome: { by: string; reason: string }, now: Date): Promise<boolean>;
  /**
   * Accepts cast votes: one conditional write on the approval, taken only while it is
   * `pending`, its revision is still `change.revision`, and `now` is before its `expiresAt`
   * (the deadline judges both the votes and the expiry, which is a `pending → expired` write on
   * the same item). `false` when any condition failed: read the approval again.
   */
  acceptVotes(id: string, change: AcceptVotes, now: Date): Promise<boolean>;
  /**
   * Claims the right to record one refused vote: once per (voter, reason) and at most
   * `limit` per approval, each a conditional write, so a voter hammering the API cannot grow
   * the action's audit chain (and its receipt) without bound.
   */
  claimRefusal(approvalId: string, voter: string, reason: VoteRefusalReason, limit: number, now: Date): Promise<ClaimRefusalResult>;
  /** Records that the saga was answered. */
  markAnswered(id: string, now: Date): Promise<void>;
  /**
   * Approvals in one status, newest first, continuing after the approval id `startAfter`
   * (any approval id: the store builds its own start key from it).
   */
  listApprovals(query: { status: ApprovalStatus; limit: number; startAfter?: string }): Promise<ApprovalPage>;
}

/** The approvals waiting for a decision, as the gauge reads them. */
export interface PendingApprovalsSummary {
  /** How many approvals are pending. */
  count: number;
  /** `createdAt` of the oldest pending approval (none when nothing waits). */
  oldestCreatedAt?: string;
}

/**
 * Reads the pending approvals for the gauge (`ApprovalsPending`, `ApprovalOldestPendingAge`):
 * only the status index's `pending` partition, so the scheduled job needs nothing else.
 */
export interface PendingApprovalsReader {
  summarizePending(): Promise<PendingApprovalsSummary>;
}
