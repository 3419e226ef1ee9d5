import type { Violation } from '../shared/problem';

/** The delegation request is invalid (shape, unknown tools, past expiry, …): nothing was recorded. */
export class DelegationRequestInvalidError extends Error {
  constructor(readonly violations: Violation[]) {
    super(`The delegation request has ${violations.length} problem(s).`);
    this.name = 'DelegationRequestInvalidError';
  }
}

/**
 * No delegation by this id among the caller's own. Another principal's delegation is answered
 * the same way, so delegation ids cannot be probed (404, not 403).
 */
export class DelegationNotFoundError extends Error {
  constructor(readonly delegationId: string) {
    super(`No delegation ${delegationId.slice(0, 40)}.`);
    this.name = 'DelegationNotFoundError';
  }
}

/** An agent tried to grant or revoke a delegation: only the principal themself (a token naming no agent) may. */
export class DelegationForbiddenError extends Error {
  constructor(readonly agent: string) {
    super(`Delegations are granted and revoked by the principal themself; this token acts for agent "${agent.slice(0, 128)}". Use a token that names no agent (no act, azp or client_id claim).`);
    this.name = 'DelegationForbiddenError';
  }
}

/** Why an action found no delegation to run under. */
export type MissingDelegation =
  /** The token names no agent, and delegations are required. */
  | 'no-agent'
  /** The agent holds no live delegation from this principal. */
  | 'no-delegation'
  /** The agent's live delegations do not cover every tool of the action. */
  | 'tools-not-covered';

/** `requireDelegation` is on and the action has no matching, live delegation (403, audited). */
export class DelegationRequiredError extends Error {
  constructor(
    readonly missing: MissingDelegation,
    readonly agent: string | null,
    /** The tools no live delegation of the agent covers (every tool of the action for `no-delegation`). */
    readonly tools: string[],
  ) {
    super(
      missing === 'no-agent'
        ? 'This deployment requires a delegation: the token names no agent (act.sub, azp or client_id), so no delegation can match. Call with the agent\'s token.'
        : missing === 'no-delegation'
          ? `Agent "${agent}" holds no live delegation from this principal for ${tools.join(', ')}. The principal grants one with POST /v1/delegations (or \`airlock delegations create\`).`
          : `Agent "${agent}" has no live delegation from this principal covering ${tools.join(', ')}. The principal can grant one that covers these tools with POST /v1/delegations.`,
    );
    this.name = 'DelegationRequiredError';
  }
}

/** The action's known commit-tier money would take its delegation past its budget for the period (403, audited). */
export class DelegationBudgetExceededError extends Error {
  constructor(
    readonly delegationId: string,
    /** Minor units of the base currency. */
    readonly limit: number,
    readonly used: number,
    readonly requested: number,
    readonly currency: string,
  ) {
    super(
      `Delegation ${delegationId}'s budget is ${limit} (minor units of ${currency}); ${used} is already reserved or spent this period and this action needs ${requested}. The principal can grant a larger budget.`,
    );
    this.name = 'DelegationBudgetExceededError';
  }
}

/**
 * Thrown by the saga before a forward step of an action whose delegation was revoked or has
 * expired: not retried, compensation follows.
 */
export class DelegationEndedError extends Error {
  constructor(
    readonly actionId: string,
    readonly delegationId: string,
    readonly why: 'revoked' | 'expired',
  ) {
    super(`Action ${actionId} stopped: its delegation ${delegationId} ${why === 'revoked' ? 'was revoked' : 'expired'}.`);
    this.name = 'DelegationEndedError';
  }
}
