import type { HaltMode, HaltScope } from '../ports/guardrails';
import type { Violation } from '../shared/problem';

/**
 * Why a guardrail refuses, as domain errors. The names of the ones the saga throws are the
 * ASL's `ErrorEquals` contract (statemachines/action-run.asl.json): never rename them.
 * The capability's http.ts maps the others to problem documents.
 */

/**
 * The connector's circuit breaker is open: the call is refused without reaching the vendor.
 * In the saga the step fails at once (not retried) and what was done is compensated.
 */
export class CircuitOpenError extends Error {
  constructor(
    readonly connector: string,
    readonly retryAfterSeconds: number,
  ) {
    super(`The ${connector} connector's circuit breaker is open (its vendor kept failing); retry in ${retryAfterSeconds} s.`);
    this.name = 'CircuitOpenError';
  }
}

/** What a halt that refused something says about itself (no identities: they stay in the audit trail). */
export interface HaltNotice {
  haltId: string;
  scope: HaltScope;
  target: string | null;
  mode: HaltMode;
  reason: string;
}

/**
 * A halt (mode stop, or any halt for new work) covers this action: refused, and a running
 * saga stops before its next step and compensates. Not retried by the ASL.
 */
export class ActionHaltedError extends Error {
  constructor(readonly halt: HaltNotice) {
    super(`Halted by ${halt.haltId} (${halt.scope}${halt.target ? ` ${halt.target}` : ''}): ${halt.reason}`);
    this.name = 'ActionHaltedError';
  }
}

/**
 * A halt in mode pause covers this running action: its next step waits. The ASL retries the
 * step with back-off while the halt lasts; once its retries run out the saga compensates.
 */
export class ActionPausedError extends Error {
  constructor(readonly halt: HaltNotice) {
    super(`Paused by ${halt.haltId} (${halt.scope}${halt.target ? ` ${halt.target}` : ''}): ${halt.reason}`);
    this.name = 'ActionPausedError';
  }
}

/** The caller lacks the kill-switch role (limits.json `killSwitch.role`). Audited. */
export class HaltForbiddenError extends Error {
  constructor(readonly role: string) {
    super(`Only principals with the role "${role}" may halt, resume or list halts.`);
    this.name = 'HaltForbiddenError';
  }
}

/** The halt request is invalid (shape, or a target the registry does not know). */
export class HaltRequestInvalidError extends Error {
  constructor(readonly violations: Violation[]) {
    super(`The halt request has ${violations.length} problem(s): ${violations.map((v) => `${v.path}: ${v.message}`).join('; ')}`);
    this.name = 'HaltRequestInvalidError';
  }
}

/** No halt with this id. */
export class HaltNotFoundError extends Error {
  constructor(readonly haltId: string) {
    super(`No halt ${haltId}.`);
    this.name = 'HaltNotFoundError';
  }
}

/** The halt was resumed before. */
export class HaltAlreadyResumedError extends Error {
  constructor(readonly haltId: string) {
    super(`Halt ${haltId} was already resumed.`);
    this.name = 'HaltAlreadyResumedError';
  }
}
