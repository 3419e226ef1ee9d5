import { badRequest, notFound, problem, type ProblemError } from '../shared/problem';
import { MetricsForbiddenError, MetricsUnavailableError } from './metrics-view';
import { WindowInvalidError } from './stats';

/** The problem document of each observability error (GET /v1/metrics). */
export function observabilityProblem(error: unknown): ProblemError | undefined {
  if (error instanceof MetricsForbiddenError) return problem('forbidden', 403, 'Forbidden', error.message);
  if (error instanceof WindowInvalidError) return badRequest('The query string is invalid.', [{ path: 'query:since', message: error.message }]);
  if (error instanceof MetricsUnavailableError) return notFound(error.message);
  return undefined;
}
