import type { Actor, Principal } from '../shared/principal';
import type { Mode } from '../intake/envelope';
import type { ShadowOutcome, StepDecision } from '../policy/types';
import type { CapExceeded } from '../spend/caps';
import type { DelegationSnapshot } from '../delegations/model';

/**
 * Action status and its forward-only state machine (DESIGN.md):
 * received → awaiting_approval → running → completed, or one of the other terminal states.
 */
export const ActionStatuses = [
  'received',
  'awaiting_approval',
  'running',
  'compensating',
  'completed',
  'denied',
  'rejected',
  'expired',
  'failed',
  'compensated',
  'cancelled',
] as const;
export type ActionStatus = (typeof ActionStatuses)[number];

/** The statuses an action ends in; nothing moves on from them. */
export const TERMINAL_STATUSES = ['completed', 'denied', 'rejected', 'expired', 'failed', 'compensated', 'cancelled'] as const satisfies readonly ActionStatus[];
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

export const TerminalStatuses: ReadonlySet<ActionStatus> = new Set(TERMINAL_STATUSES);

/** Whether `status` is one an action ends in. */
export function isTerminal(status: string): status is TerminalStatus {
  return (TerminalStatuses as ReadonlySet<string>).has(status);
}

/** For each status, the statuses it may move to. Nothing ever moves back. */
export const Transitions: Readonly<Record<ActionStatus, readonly ActionStatus[]>> = {
  received: ['awaiting_approval', 'running', 'denied', 'cancelled', 'failed'],
  awaiting_approval: ['running', 'rejected', 'expired', 'denied', 'cancelled', 'failed'],
  running: ['compensating', 'completed', 'failed', 'denied'],
  // A cancel that stopped a running saga ends `cancelled` once its compensation succeeded.
  compensating: ['compensated', 'failed', 'cancelled'],
  completed: [],
  denied: [],
  rejected: [],
  expired: [],
  failed: [],
  compensated: [],
  cancelled: [],
};

/** The statuses from which `to` may be reached in one move. */
export function predecessorsOf(to: ActionStatus): ActionStatus[] {
  return ActionStatuses.filter((from) => Transitions[from].includes(to));
}

/** What the policy engine decided, as stored on the action. */
export interface StoredDecision {
  outcome: 'allow' | 'deny' | 'require_approval';
  policyIds: string[];
  reasons: string[];
  quorum: number;
  approverRule: string | null;
  policySetVersion: string;
  /** SHA-256 of the limits file in force (policies/limits.json); absent on actions decided before it existed. */
  limitsVersion?: string;
  evaluationMicros: number;
  /** Set when the plan's known amounts would cross a spend cap: which one, and by how much (the deny's cause). */
  spendCap?: CapExceeded;
  /** The engine's per-step decisions, as it made them (quorum and approver rule included). */
  steps?: StepDecision[];
  shadow?: ShadowOutcome[];
  decidedAt: string;
}

/** Who asked for an action to be cancelled, when, and why. */
export interface CancelRequest {
  by: string;
  at: string;
  reason: string;
}

/** The action item: one per agent request. */
export interface ActionRecord {
  id: string;
  principal: Principal;
  actor: Actor;
  /** The body exactly as submitted (arguments included). */
  envelope: unknown;
  kind: 'single' | 'plan';
  mode: Mode;
  reason?: string;
  /** SHA-256 of the canonical plan (steps with tools and arguments): what approvers bind to. */
  planHash: string;
  status: ActionStatus;
  statusReason?: string;
  decision?: StoredDecision;
  approvalIds?: string[];
  receiptKey?: string;
  result?: unknown;
  /** Correlates the action across services: the X-Ray trace root in AWS, the request id locally. */
  traceId?: string;
  createdAt: string;
  /** The last write to the record (a receipt key recorded after the end moves it too). */
  updatedAt: string;
  /**
   * When it reached its terminal status: written by that move alone, so the receipt built
   * from it is the same bytes whenever a run builds it (absent on actions settled before it existed).
   */
  settledAt?: string;
  /**
   * Set once by `POST /v1/actions/{id}/cancel` (or a revoked delegation): who asked and when.
   * The saga reads it with the action it already loads before each forward step, so a running
   * action stops before its next step without an extra read.
   */
  cancel?: CancelRequest;
  /**
   * The delegation the action runs under, as it was when intake accepted it: the saga holds
   * its budget and stops when it is revoked or expires; the receipt names it.
   */
  delegation?: DelegationSnapshot;
  /** Optimistic-concurrency counter, incremented on every update. */
  version: number;
}
