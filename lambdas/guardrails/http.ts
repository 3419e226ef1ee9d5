import { badRequest, notFound, problem, type ProblemError } from '../shared/problem';
import {
  ActionHaltedError,
  CircuitOpenError,
  HaltAlreadyResumedError,
  HaltForbiddenError,
  HaltNotFoundError,
  HaltRequestInvalidError,
} from './errors';

/** Which problem document each guardrail error is; undefined for anything else. */
export function guardrailProblem(error: unknown): ProblemError | undefined {
  if (error instanceof ActionHaltedError) {
    const h = error.halt;
    return problem(
      'halted',
      403,
      'Halted',
      `Airlock is halted for this work (${h.scope}${h.target ? ` ${h.target}` : ''}): ${h.reason} Nothing was recorded; retry after the halt is resumed, with a new Idempotency-Key.`,
      { haltId: h.haltId, haltScope: h.scope, haltTarget: h.target, haltMode: h.mode, reason: h.reason },
    );
  }
  if (error instanceof CircuitOpenError) {
    return problem(
      'circuitOpen',
      503,
      'Connector unavailable',
      `${error.message} Nothing was recorded; retry after the delay.`,
      { connector: error.connector, retryAfter: error.retryAfterSeconds },
      { headers: { 'retry-after': String(error.retryAfterSeconds) } },
    );
  }
  if (error instanceof HaltForbiddenError) return problem('forbidden', 403, 'Forbidden', error.message, { requiredRole: error.role });
  if (error instanceof HaltRequestInvalidError) return badRequest(`The request has ${error.violations.length} problem(s); fix every listed violation and retry.`, error.violations);
  if (error instanceof HaltNotFoundError) return notFound(error.message);
  if (error instanceof HaltAlreadyResumedError) return problem('conflict', 409, 'Already resumed', error.message);
  return undefined;
}
