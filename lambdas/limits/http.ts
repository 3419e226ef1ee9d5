import type { ToolRegistry } from '../ports/tools';
import type { Principal } from '../shared/principal';
import { problem, ProblemError } from '../shared/problem';
import type { Logger } from '../shared/logger';
import type { RateLimiter } from './rate-limiter';
import { rateLimitFields, rateRequestOf, RateLimitExceededError, tightest } from './rate-limits';

/**
 * Rate limits over HTTP: which requests count for what, the RateLimit fields every /v1
 * response carries, and the 429 problem of a refusal. The HTTP edge (middleware/http.ts)
 * calls {@link admitRequest} for every authenticated /v1 request before its route runs, so a
 * refused request never reaches intake: no action, no idempotency record.
 */

/** The only route that creates actions: it alone counts against tool and connector policies. */
const ACTION_CREATING = 'POST /v1/actions';
/**
 * Routes whose body names an agent: the agent policies count them. A decision preview
 * (POST /v1/decisions) records nothing and calls no vendor, so it counts for its principal and
 * agent (an agent looping on previews is still looping) but not for tools and connectors.
 */
const NAMING_AN_AGENT = new Set([ACTION_CREATING, 'POST /v1/decisions']);
/**
 * The kill switch's routes. Called by a holder of its role, they count against the kill
 * switch's own budget only: the moment an operator must stop the fleet is the moment the
 * fleet has used up the global quota.
 */
const KILL_SWITCH_ROUTES = new Set(['GET /v1/halts', 'POST /v1/halts', 'DELETE /v1/halts/{id}']);

/** Whether `principal` calling `routeKey` is a kill-switch call (its own budget). */
export function isKillSwitchCall(routeKey: string, principal: Principal, role: string | undefined): boolean {
  return role !== undefined && KILL_SWITCH_ROUTES.has(routeKey) && principal.roles.includes(role);
}

/** A request as the edge sees it when it counts it. */
export interface CountedRequest {
  routeKey: string;
  principal: Principal;
  /** The parsed JSON body (untrusted), or undefined. */
  body: unknown;
  logger: Logger;
}

/** What the edge needs to count requests: the instance's limiter and the registry (to recognise tool names). */
export interface RateGate {
  limiter: RateLimiter;
  tools: ToolRegistry;
}

/**
 * Counts a request: the RateLimit fields of its tightest policy (none when no policy applies),
 * or a thrown 429 ProblemError with Retry-After and the violated policy's fields.
 */
export async function admitRequest(gate: RateGate, req: CountedRequest): Promise<Record<string, string>> {
  if (!gate.limiter.enabled) return {};
  const request = rateRequestOf(req.principal.sub, NAMING_AN_AGENT.has(req.routeKey) ? req.body : undefined, {
    countsTools: req.routeKey === ACTION_CREATING,
    isTool: (name) => gate.tools.find(name) !== undefined,
    verifiedAgent: req.principal.agent,
  });
  if (isKillSwitchCall(req.routeKey, req.principal, gate.limiter.killSwitchRole)) request.killSwitch = true;
  try {
    const admission = await gate.limiter.admit(request, req.logger);
    return admission.tightest ? rateLimitFields(admission.tightest) : {};
  } catch (error) {
    throw rateLimitProblem(error) ?? error;
  }
}

/** The 429 of a request over a rate limit; undefined for any other error. */
export function rateLimitProblem(error: unknown): ProblemError | undefined {
  if (!(error instanceof RateLimitExceededError)) return undefined;
  const ids = error.violated.map((v) => v.policy.id);
  const shown = tightest(error.violated)!;
  return problem(
    'quotaExceeded',
    429,
    'Request cannot be satisfied as assigned quota has been exceeded',
    `Over the rate limit ${ids.map((id) => `"${id}"`).join(', ')}: nothing was recorded or run. Retry after ${error.retryAfterSeconds} s (Retry-After); GET /v1/limits shows your quotas.`,
    { 'violated-policies': ids, retryAfter: error.retryAfterSeconds },
    { cause: error, headers: { 'retry-after': String(error.retryAfterSeconds), ...rateLimitFields(shown) } },
  );
}
