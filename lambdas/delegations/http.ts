import { badRequest, notFound, problem, type ProblemError } from '../shared/problem';
import {
  DelegationBudgetExceededError,
  DelegationForbiddenError,
  DelegationNotFoundError,
  DelegationRequestInvalidError,
  DelegationRequiredError,
} from './errors';

/** Which problem document each delegation error is; undefined for anything else. */
export function delegationProblem(error: unknown): ProblemError | undefined {
  if (error instanceof DelegationRequiredError) {
    return problem('delegationRequired', 403, 'Delegation required', `${error.message} Nothing was recorded.`, {
      missing: error.missing,
      agent: error.agent,
      tools: error.tools,
    });
  }
  if (error instanceof DelegationBudgetExceededError) {
    return problem('delegationBudgetExceeded', 403, 'Delegation budget exceeded', `${error.message} Nothing was recorded.`, {
      delegationId: error.delegationId,
      limit: error.limit,
      used: error.used,
      requested: error.requested,
      currency: error.currency,
    });
  }
  if (error instanceof DelegationRequestInvalidError) {
    return badRequest(`The request has ${error.violations.length} problem(s); fix every listed violation and retry. Nothing was recorded.`, error.violations);
  }
  if (error instanceof DelegationNotFoundError) return notFound(error.message);
  if (error instanceof DelegationForbiddenError) return problem('forbidden', 403, 'Forbidden', error.message);
  return undefined;
}
