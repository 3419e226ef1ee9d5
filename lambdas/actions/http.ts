import { badRequest, notFound, problem, type ProblemError } from '../shared/problem';
import { ActionListForbiddenError, ActionListRangeError } from './list-all';
import { ActionFinishedError, ActionNotFoundError, CancelForbiddenError } from './cancel';

/** Which problem document each of the actions' errors (cancel, the auditors' listing) is; undefined for anything else. */
export function actionsProblem(error: unknown): ProblemError | undefined {
  if (error instanceof ActionNotFoundError) return notFound(error.message);
  if (error instanceof CancelForbiddenError) {
    return problem('forbidden', 403, 'Not allowed to cancel', error.message, { requiredRole: error.requiredRole });
  }
  if (error instanceof ActionListForbiddenError) {
    return problem('forbidden', 403, 'Not allowed to list every action', error.message, { requiredRole: error.requiredRole });
  }
  if (error instanceof ActionListRangeError) return badRequest('The query string is invalid.', [{ path: `query:${error.parameter}`, message: error.message }]);
  if (error instanceof ActionFinishedError) {
    // Not `status`: that member is the HTTP status (RFC 9457).
    return problem('conflict', 409, 'Action already finished', error.message, { actionStatus: error.actionStatus });
  }
  return undefined;
}
