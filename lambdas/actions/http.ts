import { notFound, problem, type ProblemError } from '../shared/problem';
import { ActionFinishedError, ActionNotFoundError, CancelForbiddenError } from './cancel';

/** Which problem document each of the actions' errors (cancel) is; undefined for anything else. */
export function actionsProblem(error: unknown): ProblemError | undefined {
  if (error instanceof ActionNotFoundError) return notFound(error.message);
  if (error instanceof CancelForbiddenError) {
    return problem('forbidden', 403, 'Not allowed to cancel', error.message, { requiredRole: error.requiredRole });
  }
  if (error instanceof ActionFinishedError) {
    // Not `status`: that member is the HTTP status (RFC 9457).
    return problem('conflict', 409, 'Action already finished', error.message, { actionStatus: error.actionStatus });
  }
  return undefined;
}
