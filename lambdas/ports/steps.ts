import type { ActionRecord } from '../actions/action';

/**
 * Step records (each with the grants it consumed) and audit events: the rest of the ledger.
 * Every write is a single-item conditional write, so retries and replays converge.
 */

export type StepKind = 'forward' | 'compensate';

export interface StepKey {
  actionId: string;
  stepId: string;
  kind: StepKind;
}

export interface StepError {
  name: string;
  message: string;
}

export interface GrantSummary {
  jti: string;
  scope: string;
  /** Seconds since the epoch. */
  exp: number;
}

export interface StepRecord extends StepKey {
  tool: string;
  status: 'in_progress' | 'complete' | 'failed';
  attempts: number;
  idempotencyKey: string;
  input?: unknown;
  output?: unknown;
  error?: StepError;
  grants: GrantSummary[];
  dryRun: boolean;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  /**
   * Some attempt of this forward step began and the vendor never told how it ended (set when
   * an attempt begins; cleared when the step ends, or when a vendor's answer tells that the
   * only attempt in doubt did nothing). A later attempt's own 5xx tells nothing of an earlier
   * attempt whose answer was lost.
   */
  inDoubt?: boolean;
}

/**
 * Whether a forward step's earlier attempt may have acted at the vendor without Airlock
 * knowing: it began and did not finish, and either never recorded how it ended (a crash, a
 * function timeout, an attempt still running) or ended with an outcome the vendor never told
 * (a timeout or a dropped connection: `VendorTimeoutError`). Such a step must be retried to
 * the end, whatever a breaker, a halt or a cancel says meanwhile: only that retry, which
 * reconciles by the step's idempotency key, learns what the vendor did, and the saga can only
 * undo what it knows of. A vendor that answered (a 5xx, a refusal) told the outcome: not in doubt.
 */
export function attemptInDoubt(record: StepRecord | undefined): boolean {
  if (!record || record.kind !== 'forward' || record.status !== 'in_progress' || record.dryRun) return false;
  // `inDoubt` is kept by the store across attempts; records written before it existed are
  // judged by their last attempt alone.
  return record.inDoubt === true || record.error === undefined || record.error.name === 'VendorTimeoutError';
}

export type BeginStepResult =
  | { state: 'started'; record: StepRecord }
  | { state: 'complete'; record: StepRecord }
  /** The attempt's grant was used before on this step: a replay, refused; nothing was written. */
  | { state: 'replayed'; record: StepRecord };

export interface StepStore {
  getStep(key: StepKey): Promise<StepRecord | undefined>;
  /**
   * Marks a step attempt as started (attempts + 1) and consumes the attempt's grant in the
   * same conditional write: a grant names exactly one step, so its id recorded on that step's
   * record is its single use (a second attempt with it answers `replayed`). If the step
   * already completed, returns the recorded output instead: the caller must not call the
   * vendor again.
   */
  beginStep(
    key: StepKey,
    attempt: { tool: string; input: unknown; idempotencyKey: string; grant: GrantSummary; dryRun: boolean },
    now: Date,
    /** The record the caller just read, or `null` to assume none (the usual first attempt); saves a read, a wrong guess only costs a retry. */
    known?: StepRecord | null,
  ): Promise<BeginStepResult>;
  /** Records the output; a step completes once (a second completion keeps the first output). */
  completeStep(key: StepKey, output: unknown, now: Date): Promise<StepRecord>;
  /**
   * Records a failed attempt; `final` marks the step failed for good. Never touches a completed
   * step. `told`: the vendor's answer shows that attempt number `told` did nothing (a 5xx
   * before acting); the step stops being in doubt only if no earlier attempt was.
   */
  failStep(key: StepKey, error: StepError, final: boolean, now: Date, told?: number): Promise<void>;
  listSteps(actionId: string): Promise<StepRecord[]>;
  /**
   * The action and its step records of `kinds` for `stepIds` (its plan's step ids, as the
   * caller remembers them), read consistently in one request; the caller checks them against
   * the action it gets. Undefined when the store cannot answer in one request (the caller then
   * reads them apart).
   */
  getActionWithSteps?(
    actionId: string,
    stepIds: readonly string[],
    kinds: readonly StepKind[],
  ): Promise<{ action: ActionRecord | undefined; records: StepRecord[] } | undefined>;
}

export interface AuditEvent {
  actionId: string;
  seq: number;
  type: string;
  at: string;
  /** Verified identity of whoever caused the event (principal, approver, or `airlock`). */
  actor: string;
  data: Record<string, unknown>;
  /** SHA-256 of the previous event's hash and this event's canonical form: a per-action chain. */
  hash: string;
  prevHash: string;
}

export interface EventLog {
  append(actionId: string, event: { type: string; actor: string; data?: Record<string, unknown> }, now?: Date): Promise<AuditEvent>;
  /**
   * Appends the event unless the chain already holds one that `same` matches: exactly one
   * event however many writers race (for records whose event a crash may have left unwritten,
   * and that a later request then writes).
   */
  appendOnce(
    actionId: string,
    event: { type: string; actor: string; data?: Record<string, unknown> },
    same: (existing: AuditEvent) => boolean,
    now?: Date,
  ): Promise<{ event: AuditEvent; appended: boolean }>;
  list(actionId: string): Promise<AuditEvent[]>;
  /**
   * The action record and its whole chain, read together and consistently where the store
   * keeps them side by side (one request instead of two); absent: read them apart.
   */
  listWithAction?(actionId: string): Promise<{ action: ActionRecord | undefined; events: AuditEvent[] }>;
  /**
   * A hint that the action's chain is empty (nothing appended yet): the next append may skip
   * reading the head. Only a hint: a wrong one costs a refused conditional put, never a fork.
   */
  hintEmpty?(actionId: string): void;
}

/**
 * An action's ledger records as a writer holds them after settling it: the action, its whole
 * audit event chain (from the first event) and every step record. The read fast path hands it
 * to WriteReceipt, which then need not read them back (it checks them, and reads the ledger
 * when they do not hold together).
 */
export interface LedgerSnapshot {
  action: ActionRecord;
  events: AuditEvent[];
  steps: StepRecord[];
}

/**
 * Forward steps by the UTC day they first started (a GSI on the step records): how
 * reconciliation finds recent commit steps without scanning the table.
 */
export interface StepIndex {
  /** Keys of the non-dry-run forward steps first started on `day` (`YYYY-MM-DD`), oldest first. */
  listForwardSteps(day: string): Promise<StepKey[]>;
}
