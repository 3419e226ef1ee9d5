import type { Violation } from '../shared/problem';

/**
 * What can go wrong accepting an action, as domain errors: intake/http.ts maps each to its
 * problem document. None of them carries anything the caller did not send.
 */

/** The request carries no Idempotency-Key. */
export class IdempotencyKeyMissingError extends Error {
  constructor() {
    super('Idempotency-Key required');
    this.name = 'IdempotencyKeyMissingError';
  }
}

/** The Idempotency-Key is not one valid key (`violation` says why, in words an agent can act on). */
export class IdempotencyKeyInvalidError extends Error {
  constructor(readonly violation: string) {
    super(`Idempotency-Key invalid: it ${violation}`);
    this.name = 'IdempotencyKeyInvalidError';
  }
}

/** The body is not an acceptable envelope: every violation, located by a JSON pointer. */
export class EnvelopeInvalidError extends Error {
  constructor(
    readonly detail: string,
    readonly violations: Violation[],
  ) {
    super(detail);
    this.name = 'EnvelopeInvalidError';
  }
}

/** The key was used before, by this principal, with a different body. */
export class IdempotencyKeyReusedError extends Error {
  constructor() {
    super('Idempotency-Key reused with a different request');
    this.name = 'IdempotencyKeyReusedError';
  }
}

/** The first request with this key is still being accepted. */
export class IdempotencyInProgressError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('A request with this Idempotency-Key is in progress');
    this.name = 'IdempotencyInProgressError';
  }
}

/** The ledger is throttling; the same request may be retried with the same key after the delay. */
export class IntakeBusyError extends Error {
  constructor(
    readonly retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super('The ledger is busy', options);
    this.name = 'IntakeBusyError';
  }
}
