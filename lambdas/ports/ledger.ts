import type { ActionRecord, ActionStatus, CancelRequest, StoredDecision } from '../actions/action';

/**
 * The ledger: every durable record Airlock keeps about actions. One DynamoDB table in AWS
 * (and locally, through dynalite). All writes are single-item conditional writes.
 */

/** A stored HTTP answer, replayed verbatim for a repeated Idempotency-Key. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export type IdempotencyRecord =
  | {
      state: 'in_progress';
      fingerprint: string;
      actionId: string;
      /** Epoch ms after which another request may take the key over (the owner crashed). */
      lockExpiresAt: number;
      owner: string;
    }
  | { state: 'complete'; fingerprint: string; actionId: string; response: StoredResponse };

export type ClaimResult =
  | { outcome: 'claimed'; actionId: string; owner: string; takenOver: boolean }
  | { outcome: 'exists'; record: IdempotencyRecord };

export interface IdempotencyStore {
  /**
   * Claims `key` for `scope` (the principal) with a payload fingerprint. Succeeds when the key
   * is new, expired, or held by an abandoned in-progress record with the same fingerprint
   * (whose action id is then reused, so a crash between writes never doubles an action).
   */
  claim(input: {
    scope: string;
    key: string;
    fingerprint: string;
    proposedActionId: string;
    now: number;
    lockMs: number;
    retentionMs: number;
  }): Promise<ClaimResult>;
  /**
   * Stores the final response; only the owner of the claim may complete it. Resolves with the
   * response stored under the key when another request completed it first (see `pin`): the
   * answer every request with this key must give; undefined when ours was stored, or when the
   * claim was taken over and is still in progress (its new owner stores the answer).
   */
  complete(input: { scope: string; key: string; owner: string; response: StoredResponse; now: number; retentionMs: number }): Promise<StoredResponse | undefined>;
  /**
   * Stores `response` under an in-progress claim of `actionId`, whoever owns it: the answer a
   * replay rebuilt from the action's recorded read answer (ActionStore.getReadAnswer). Resolves
   * with the response the key holds in the end: this one, or one stored before it.
   */
  pin(input: { scope: string; key: string; actionId: string; response: StoredResponse; now: number; retentionMs: number }): Promise<StoredResponse>;
  /** Releases an in-progress claim that failed before anything was written (best effort). */
  release(input: { scope: string; key: string; owner: string }): Promise<void>;
  read(scope: string, key: string): Promise<IdempotencyRecord | undefined>;
}

export interface ListActionsQuery {
  principalSub: string;
  status?: ActionStatus;
  limit: number;
  /**
   * Continue after this action id (an earlier page's `lastEvaluated`). Only an id: the store
   * builds its own start key from it, so nothing from a client reaches the database as a key.
   */
  startAfter?: string;
}

/**
 * Every principal's actions created in [since, until], newest first (auditors). The tool and
 * principal filters are applied by the store before it reads the actions; the status filter
 * after, so a page may hold fewer than `limit` items while more follow.
 */
export interface ListAllActionsQuery {
  since: Date;
  until: Date;
  limit: number;
  status?: ActionStatus;
  /** A tool the action calls (any step of a plan). */
  tool?: string;
  /** The `sub` of the principal the action was for. */
  principalSub?: string;
  /** Continue after this action id (an earlier page's `lastEvaluated`); only an id, as above. */
  startAfter?: string;
}

/** A refusal recorded on the access trail (who tried what, which role it needed). */
export interface AccessRefusal {
  at: string;
  /** The verified `sub` of the caller. */
  actor: string;
  /** What was refused (`list_all_actions`). */
  attempted: string;
  requiredRole: string;
  /** The caller's roles, bounded. */
  roles: string[];
}

/** The access trail: refusals of reads reserved to a role, kept for auditors. */
export interface AccessLog {
  recordAccessRefusal(refusal: AccessRefusal): Promise<void>;
  /** The refusals recorded on one UTC day (`YYYY-MM-DD`), oldest first. */
  listAccessRefusals(day: string): Promise<AccessRefusal[]>;
}

export interface ActionPage {
  items: ActionRecord[];
  /** The id of the last action examined, when more may follow (also when it was filtered out). */
  lastEvaluated?: string;
}

export class StatusTransitionError extends Error {
  readonly current: ActionStatus | undefined;
  constructor(id: string, to: ActionStatus, current: ActionStatus | undefined) {
    super(`Action ${id} cannot move to ${to} from ${current ?? 'nothing'}`);
    this.name = 'StatusTransitionError';
    this.current = current;
  }
}

/** A page cursor or start position that this listing did not issue; the edge answers 400. */
export class InvalidCursorError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('The cursor is not valid for this listing', options);
    this.name = 'InvalidCursorError';
  }
}

/**
 * The store refused a request as malformed (DynamoDB's ValidationException). Every key and
 * value Airlock sends is validated first, so this means input got past that validation: the
 * edge answers 400 and logs the cause, never a 500.
 */
export class LedgerRequestRejectedError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('The ledger refused the request as malformed', options);
    this.name = 'LedgerRequestRejectedError';
  }
}

/** Thrown when the store asks us to slow down; intake answers 503 with Retry-After. */
export class LedgerThrottledError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('The ledger is throttling requests', options);
    this.name = 'LedgerThrottledError';
  }
}

export interface ActionStore {
  /** Creates the action item; `exists` when an item with this id is already there. */
  createAction(action: ActionRecord): Promise<'created' | 'exists'>;
  getAction(id: string): Promise<ActionRecord | undefined>;
  listActions(query: ListActionsQuery): Promise<ActionPage>;
  /** Every principal's actions in a time range (the day index, ledger.md). */
  listAllActions(query: ListAllActionsQuery): Promise<ActionPage>;
  /**
   * Moves an action forward. The write is conditional on the current status being one of
   * `to`'s predecessors, so a stale writer loses and no status ever goes backwards.
   */
  transition(
    id: string,
    to: ActionStatus,
    patch?: { statusReason?: string; decision?: StoredDecision; result?: unknown; receiptKey?: string; approvalId?: string },
    now?: Date,
    /** The caller's current copy: saves a read; a stale copy only costs a retry. */
    known?: ActionRecord,
  ): Promise<ActionRecord>;
  /** Records the decision without changing status (e.g. run-time re-evaluation). */
  setDecision(id: string, decision: StoredDecision, now?: Date): Promise<void>;
  /**
   * Marks the action as cancel-requested, once: a later request keeps the first. Nothing is
   * written to an action that has ended. Returns the action as it now stands (undefined: none).
   */
  requestCancel(id: string, cancel: CancelRequest, now?: Date): Promise<ActionRecord | undefined>;
  /**
   * Records where the action's receipt was written (once the audit vault holds it). `current`:
   * the action as the caller last wrote it, which spares reading it when it is still current.
   * Resolves with the action as written (undefined: it held that key already).
   */
  setReceiptKey(id: string, receiptKey: string, now?: Date, current?: ActionRecord, answer?: ReadAnswer): Promise<ActionRecord | undefined>;
  /**
   * The action with the read answer its receipt-key write recorded (`answer` above); undefined
   * when it has none (the usual case: every answer but the read fast path's is stored under its
   * Idempotency-Key).
   */
  getReadAnswer(id: string): Promise<{ action: ActionRecord; answer: ReadAnswer } | undefined>;
}

/**
 * What the read fast path answered its client with, recorded beside the action (not in its
 * record) by the write that records its receipt key, instead of a second write of the answer
 * under the Idempotency-Key: the answer is the completed action's view with its step records
 * and `Preference-Applied: wait=<waitMs in s>`, all of which a replay reads back unchanged
 * (a completed action with its receipt key is never written again).
 */
export interface ReadAnswer {
  waitMs: number;
}
