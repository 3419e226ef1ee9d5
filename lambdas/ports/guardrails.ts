/**
 * Fleet guardrails kept in the ledger: one circuit breaker per connector and the kill
 * switch's halts. Every write is a single-item conditional write (dynalite has no
 * transactions), so concurrent functions converge and a lost race is only a re-read.
 */

// ── circuit breakers ─────────────────────────────────────────────────────────

export type BreakerPhase = 'closed' | 'open' | 'half_open';

/** One connector's breaker as stored. A connector never written is closed at version 0. */
export interface BreakerState {
  connector: string;
  phase: BreakerPhase;
  /** Bumped by every replace; counters are added only while it stays the same. */
  version: number;
  /** Start of the failure window (ms since the epoch). */
  windowStart: number;
  /** Failures counted in the window (closed). */
  failures: number;
  /** Successes counted while half-open. */
  successes: number;
  /** When an open breaker lets a trial call through (ms since the epoch; 0 unless open). */
  retryAt: number;
  /** When the phase last changed (ms since the epoch). */
  changedAt: number;
}

/** A phase change, as recorded in the breaker's audit trail. */
export interface BreakerTransition {
  connector: string;
  from: BreakerPhase;
  to: BreakerPhase;
  at: string;
  /** What caused it: the function and the call outcome that tipped it. */
  actor: string;
  reason: string;
  /** The figures behind it: failures in the window, the window, successes, the reset chosen. */
  figures: Record<string, number>;
}

export interface BreakerStore {
  /** The breaker's state (consistent read); closed at version 0 when never written. */
  getBreaker(connector: string): Promise<BreakerState>;
  /**
   * Adds 1 to `failures` (only while `version` and `windowStart` are as expected) or to
   * `successes` (only while `version` is as expected). Returns the new count, or undefined
   * when the condition did not hold (another writer moved the breaker first).
   */
  countBreaker(connector: string, field: 'failures' | 'successes', expect: { version: number; windowStart?: number }): Promise<number | undefined>;
  /**
   * Replaces the breaker with `next` (its version must be `expectVersion + 1`) if it is still
   * at `expectVersion`; on success records `transition` (if any) in the breaker's audit trail.
   */
  replaceBreaker(next: BreakerState, expectVersion: number, transition?: BreakerTransition): Promise<boolean>;
  /** The breaker's audit trail, oldest first. */
  listBreakerTransitions(connector: string): Promise<BreakerTransition[]>;
}

// ── the kill switch ──────────────────────────────────────────────────────────

export const HaltScopes = ['all', 'connector', 'tool', 'agent', 'principal'] as const;
export type HaltScope = (typeof HaltScopes)[number];
export const HaltModes = ['stop', 'pause'] as const;
export type HaltMode = (typeof HaltModes)[number];

/** Who flipped the switch: the verified identity. */
export interface HaltActor {
  sub: string;
  roles: string[];
}

/** A recorded stop. Active until resumed; never deleted (the audit trail needs it). */
export interface Halt {
  id: string;
  scope: HaltScope;
  /** The connector, tool, agent name or principal `sub`; null for `all`. */
  target: string | null;
  mode: HaltMode;
  reason: string;
  createdBy: HaltActor;
  createdAt: string;
  status: 'active' | 'resumed';
  resumedBy?: HaltActor;
  resumedAt?: string;
  resumeReason?: string;
}

/** An entry of the kill switch's audit trail (halts, resumes and refused attempts). */
export interface HaltAuditEvent {
  type: 'halt.created' | 'halt.resumed' | 'halt.refused' | 'anomaly.detected';
  at: string;
  /** The verified `sub` of whoever acted (or tried to). */
  actor: string;
  data: Record<string, unknown>;
}

export interface HaltStore {
  /** Stores a new halt (conditional on its id being new). */
  createHalt(halt: Halt): Promise<void>;
  getHalt(id: string): Promise<Halt | undefined>;
  /** Every halt, newest first (active and resumed). */
  listHalts(): Promise<Halt[]>;
  /** Marks an active halt resumed; undefined when it is not active (resumed before, or absent). */
  resumeHalt(id: string, by: HaltActor, reason: string, at: Date): Promise<Halt | undefined>;
  /** Appends to the kill switch's audit trail. */
  recordHaltEvent(event: HaltAuditEvent): Promise<void>;
  listHaltEvents(): Promise<HaltAuditEvent[]>;
  /**
   * Notes that `actionId` met halt `haltId` in the way `effect` names; true the first time
   * (so the action's own audit chain gets the event once, not once per retry).
   */
  markAffected(haltId: string, actionId: string, effect: string, at: Date): Promise<boolean>;
}
