import { delegationProblem } from '../delegations/http';
import { actionDetailView, actionView } from '../actions/view';
import type { ActionRecord } from '../actions/action';
import type { AcceptedAction } from '../api/schemas';
import type { StoredResponse } from '../ports/ledger';
import { badRequest, problem, ProblemError, ProblemType, serviceUnavailable } from '../shared/problem';
import {
  EnvelopeInvalidError,
  IdempotencyInProgressError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyMissingError,
  IdempotencyKeyReusedError,
  IntakeBusyError,
} from './errors';
import { acceptAction, type AcceptOutcome, type IntakeDeps, type IntakeRequest } from './intake';
import { guardrailProblem } from '../guardrails/http';

/**
 * Intake over HTTP: how an outcome is answered (the answer a replay gets back) and which
 * problem document each of intake's errors is. The use case itself (intake.ts) knows neither.
 */

/** An HTTP answer: status, headers, JSON body. */
export interface IntakeResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

const PROBLEM_JSON = 'application/problem+json';

/** The public view of an action's acceptance (202 body). */
export function acceptedBody(action: ActionRecord): AcceptedAction {
  return {
    id: action.id,
    status: action.status,
    decision: action.decision
      ? {
          outcome: action.decision.outcome,
          policyIds: action.decision.policyIds,
          reasons: action.decision.reasons,
          quorum: action.decision.quorum,
        }
      : null,
    planHash: action.planHash,
    links: { self: `/v1/actions/${action.id}` },
  };
}

/** 403 for a denial (recorded, with a receipt), 200 with the finished action, or 202 with where to look. */
export function renderAcceptOutcome(outcome: AcceptOutcome): StoredResponse {
  const { action } = outcome;
  if (outcome.kind === 'denied' && action.decision?.spendCap) {
    const reasons = action.decision.reasons;
    return {
      status: 403,
      headers: { 'content-type': PROBLEM_JSON },
      body: {
        type: ProblemType.spendCapExceeded,
        title: 'Spend cap exceeded',
        status: 403,
        detail: `${reasons.join(' ')} Nothing was run. Ask for less, or wait for the cap's next ${action.decision.spendCap.period}.`,
        actionId: action.id,
        policyIds: [],
        reasons,
        policySetVersion: action.decision.policySetVersion,
        spendCap: action.decision.spendCap,
      },
    };
  }
  if (outcome.kind === 'denied') {
    const reasons = action.decision?.reasons ?? [];
    return {
      status: 403,
      headers: { 'content-type': PROBLEM_JSON },
      body: {
        type: 'urn:airlock:problem:policy-denied',
        title: 'Denied by policy',
        status: 403,
        detail: reasons.length > 0 ? reasons.join(' ') : 'No policy permits this request.',
        actionId: action.id,
        policyIds: action.decision?.policyIds ?? [],
        reasons,
        policySetVersion: action.decision?.policySetVersion ?? null,
      },
    };
  }
  const location = `/v1/actions/${action.id}`;
  if (outcome.kind === 'completed') {
    return {
      status: 200,
      headers: { 'content-type': 'application/json', location, 'preference-applied': `wait=${Math.ceil(outcome.waitedMs / 1000)}` },
      body: outcome.steps ? actionDetailView(action, outcome.steps) : actionView(action),
    };
  }
  return { status: 202, headers: { 'content-type': 'application/json', location }, body: acceptedBody(action) };
}

/** The problem document of an intake error; undefined for anything else. */
export function intakeProblem(error: unknown): ProblemError | undefined {
  if (error instanceof IdempotencyKeyMissingError) {
    return problem(
      'idempotencyKeyMissing',
      400,
      'Idempotency-Key required',
      'POST /v1/actions needs an Idempotency-Key header (1–255 printable characters, e.g. a UUID). Reuse the same key when you retry the same request.',
    );
  }
  if (error instanceof IdempotencyKeyInvalidError) {
    return badRequest(`The Idempotency-Key header is invalid: it ${error.violation}.`, [{ path: 'header:Idempotency-Key', message: error.violation }]);
  }
  if (error instanceof EnvelopeInvalidError) return badRequest(error.detail, error.violations);
  if (error instanceof IdempotencyKeyReusedError) {
    return problem(
      'idempotencyKeyReused',
      422,
      'Idempotency-Key reused',
      'This Idempotency-Key was already used with a different request body. Use a new key for a new request.',
    );
  }
  if (error instanceof IdempotencyInProgressError) {
    // The first request usually finishes within a second; a crashed one is taken over once
    // its lock lapses, so a short, honest hint beats the full lock time.
    return problem(
      'idempotencyInProgress',
      409,
      'Request in progress',
      'A request with this Idempotency-Key is still being accepted. Retry after the indicated delay with the same key.',
      { retryAfter: error.retryAfterSeconds },
      { headers: { 'retry-after': String(error.retryAfterSeconds) } },
    );
  }
  if (error instanceof IntakeBusyError) {
    return serviceUnavailable('The ledger is busy; retry with the same Idempotency-Key.', error.retryAfterSeconds, error);
  }
  return guardrailProblem(error) ?? delegationProblem(error);
}

/** Runs `op`, turning intake's errors into their problem documents. */
export async function asProblems<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    throw intakeProblem(error) ?? error;
  }
}

/**
 * POST /v1/actions as HTTP: the answer (a replay says so in `Idempotent-Replayed`), or a
 * thrown ProblemError.
 */
export async function postAction(req: IntakeRequest, deps: IntakeDeps): Promise<IntakeResponse> {
  const { response, replayed } = await asProblems(() => acceptAction(req, deps, renderAcceptOutcome));
  return { status: response.status, headers: { ...response.headers, ...(replayed ? { 'idempotent-replayed': 'true' } : {}) }, body: response.body };
}
