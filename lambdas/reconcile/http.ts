import { badRequest, problem, type ProblemError } from '../shared/problem';
import { ReconcileForbiddenError, ReconcileRequestInvalidError } from './operator';

/** Which problem document each of reconciliation's errors is; undefined for anything else. */
export function reconcileProblem(error: unknown): ProblemError | undefined {
  if (error instanceof ReconcileForbiddenError) return problem('forbidden', 403, 'Forbidden', error.message, { requiredRole: error.role });
  if (error instanceof ReconcileRequestInvalidError) return badRequest(`The request has ${error.violations.length} problem(s); fix every listed violation and retry.`, error.violations);
  return undefined;
}
