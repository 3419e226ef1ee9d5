import { createHash } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import type { z } from 'zod';
import { isTerminal, type ActionRecord } from '../actions/action';
import { ActionFinishedError, requestCancel, type CancelDeps, type CancelOutcome } from '../actions/cancel';
import type { AuditStore } from '../ports/audit-store';
import type { Delegation, DelegationStore } from '../ports/delegations';
import type { ActionStore } from '../ports/ledger';
import type { ToolRegistry } from '../ports/tools';
import {
  consentReceiptKey,
  DelegationIdPattern,
  revocationReceiptKey,
  type ConsentReceipt,
  type RevocationReceipt,
} from '../receipts/consent';
import { RECEIPT_SCHEMA_VERSION } from '../receipts/schema';
import { canonicalJson } from '../shared/canonical-json';
import type { Logger } from '../shared/logger';
import { toBaseMinor, type MoneyConfig } from '../shared/money';
import type { Principal } from '../shared/principal';
import type { Violation } from '../shared/problem';
import { DelegationForbiddenError, DelegationNotFoundError, DelegationRequestInvalidError } from './errors';
import { CreateDelegationSchema, MAX_DELEGATION_DAYS, RevokeDelegationSchema, type CreateDelegationRequest } from './schemas';

const DAY_MS = 86_400_000;
const nextUlid = monotonicFactory();

export { CreateDelegationSchema, RevokeDelegationSchema, MAX_DELEGATION_DAYS, MAX_SCOPE_ENTRIES } from './schemas';
export type { CreateDelegationRequest } from './schemas';

/**
 * Delegations: a principal's consent that one agent may act for them within a scope (tools
 * and connectors), a spend budget per period, an expiry and optional stricter rules — the
 * agent's execution envelope, in one place. Granting one writes a consent receipt to the
 * audit vault; revoking one writes a revocation receipt, refuses the agent's new actions at
 * once and stops the agent's work in flight for that principal (pending approvals cancelled,
 * running sagas stopped before their next step and compensated, through the cancel use case).
 *
 * Only the principal themself grants or revokes: a token that names an agent (act, azp,
 * client_id) is refused, so an agent can never widen its own envelope.
 */

export { DelegationIdPattern };

export interface DelegationDeps {
  store: DelegationStore;
  tools: ToolRegistry;
  money: MoneyConfig;
  vault: AuditStore;
  now: () => Date;
  /** The policy set and limits file in force: every consent receipt names both. */
  policySetVersion: string;
  limitsVersion: string;
  logger?: Logger;
}

/** What revocation needs to stop work in flight: the actions, and the cancel use case's dependencies. */
export interface RevocationDeps extends DelegationDeps {
  actions: Pick<ActionStore, 'listActions'>;
  cancel: CancelDeps;
}

function violationsOf(error: z.ZodError): Violation[] {
  return error.issues.map((i) => ({ path: `/${i.path.join('/')}`, message: i.message }));
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function writeDocument(vault: AuditStore, key: string, doc: unknown): Promise<void> {
  const bytes = Buffer.from(`${canonicalJson(doc)}\n`, 'utf8');
  await vault.putIfAbsent(key, bytes, sha256Hex(bytes));
}

/** Refuses (and audits) a token that acts for an agent: delegations are the principal's own act. */
async function requirePrincipalItself(deps: DelegationDeps, caller: Principal, attempted: 'create' | 'revoke'): Promise<void> {
  if (caller.agent === undefined) return;
  await deps.store.recordDelegationEvent(caller.sub, {
    type: 'delegation.refused',
    at: deps.now().toISOString(),
    actor: caller.agent,
    data: { attempted, agent: caller.agent.slice(0, 256), reason: 'agent-token' },
  });
  deps.logger?.warn('delegation refused: an agent token', { caller: caller.sub, attempted });
  throw new DelegationForbiddenError(caller.agent);
}

/**
 * Checks a delegation request against the catalog and the clock: every tool and connector
 * must exist, at least one must be named, the budget's currency must have a rate, and the
 * expiry must be in the future (within MAX_DELEGATION_DAYS). Every problem is listed.
 */
export function validateDelegationRequest(body: unknown, deps: Pick<DelegationDeps, 'tools' | 'money'>, now: Date): CreateDelegationRequest {
  const parsed = CreateDelegationSchema.safeParse(body);
  if (!parsed.success) throw new DelegationRequestInvalidError(violationsOf(parsed.error));
  const req = parsed.data;
  const problems: Violation[] = [];
  const tools = req.tools ?? [];
  const connectors = req.connectors ?? [];
  if (tools.length + connectors.length === 0) problems.push({ path: '/tools', message: 'name at least one tool or connector the agent may use' });
  tools.forEach((t, i) => {
    if (!deps.tools.find(t)) problems.push({ path: `/tools/${i}`, message: `unknown tool "${t.slice(0, 128)}"; GET /v1/tools lists the tools` });
  });
  const known = new Set(deps.tools.all().map((t) => t.connector.name));
  connectors.forEach((c, i) => {
    if (!known.has(c)) problems.push({ path: `/connectors/${i}`, message: `unknown connector "${c.slice(0, 64)}"; GET /v1/tools lists the connectors` });
  });
  if (req.budget && !toBaseMinor({ amount: req.budget.amount, currency: req.budget.currency }, deps.money).valid) {
    problems.push({ path: '/budget', message: `the budget cannot be counted: ${req.budget.currency.toUpperCase()} has no rate in the policy config, or the amount is too large` });
  }
  const expires = Date.parse(req.expiresAt);
  if (!(expires > now.getTime())) problems.push({ path: '/expiresAt', message: 'must be in the future' });
  else if (expires - now.getTime() > MAX_DELEGATION_DAYS * DAY_MS) problems.push({ path: '/expiresAt', message: `must be at most ${MAX_DELEGATION_DAYS} days ahead` });
  if (problems.length > 0) throw new DelegationRequestInvalidError(problems);
  return req;
}

/** `POST /v1/delegations`: grants a delegation, writing its consent receipt first. */
export async function createDelegation(deps: DelegationDeps, caller: Principal, body: unknown): Promise<Delegation> {
  await requirePrincipalItself(deps, caller, 'create');
  const at = deps.now();
  const req = validateDelegationRequest(body, deps, at);
  const createdAt = at.toISOString();
  const id = `dlg_${nextUlid(at.getTime())}`;
  const delegation: Delegation = {
    id,
    principal: caller.sub,
    agent: req.agent,
    tools: [...new Set(req.tools ?? [])].sort(),
    connectors: [...new Set(req.connectors ?? [])].sort(),
    budget: req.budget ? { amount: req.budget.amount, currency: req.budget.currency.toUpperCase(), period: req.budget.period } : null,
    rules: { askForCommit: req.rules?.askForCommit ?? false },
    purpose: req.purpose ?? null,
    createdAt,
    expiresAt: new Date(Date.parse(req.expiresAt)).toISOString(),
    status: 'active',
    policySetVersion: deps.policySetVersion,
    limitsVersion: deps.limitsVersion,
    consentReceiptKey: consentReceiptKey(id, createdAt),
  };
  const receipt: ConsentReceipt = {
    schemaVersion: RECEIPT_SCHEMA_VERSION,
    kind: 'airlock.consent',
    delegationId: id,
    principal: { sub: caller.sub, roles: [...caller.roles] },
    agent: delegation.agent,
    scope: { tools: delegation.tools, connectors: delegation.connectors },
    budget: delegation.budget,
    rules: delegation.rules,
    purpose: delegation.purpose,
    grantedAt: createdAt,
    expiresAt: delegation.expiresAt,
    policySetVersion: deps.policySetVersion,
    limitsVersion: deps.limitsVersion,
  };
  // Consent is in the vault before the delegation can be used: no delegation without its receipt.
  await writeDocument(deps.vault, delegation.consentReceiptKey, receipt);
  await deps.store.createDelegation(delegation);
  await deps.store.recordDelegationEvent(caller.sub, {
    type: 'delegation.created',
    at: createdAt,
    actor: caller.sub,
    data: { delegationId: id, agent: delegation.agent, receiptKey: delegation.consentReceiptKey },
  });
  deps.logger?.info('delegation granted', { delegationId: id, principal: caller.sub, agent: delegation.agent });
  return delegation;
}

/** `GET /v1/delegations`: the caller's own delegations, newest first. */
export async function listDelegations(deps: Pick<DelegationDeps, 'store'>, caller: Principal): Promise<Delegation[]> {
  return deps.store.listDelegations(caller.sub);
}

/** Whether a delegation may be used at `now`: active and not yet expired. */
export function isLive(delegation: Pick<Delegation, 'status' | 'expiresAt'>, now: Date): boolean {
  return delegation.status === 'active' && Date.parse(delegation.expiresAt) > now.getTime();
}

/** What a revocation did to the agent's work in flight. */
export interface StoppedWork {
  /** Ended `cancelled` at once (received, or awaiting approval: the approval is closed). */
  cancelled: string[];
  /** Running: each stops before its next step and compensates. */
  stopping: string[];
}

/**
 * `DELETE /v1/delegations/{id}`: revokes the caller's delegation. The revocation is stored
 * first (the next action of the agent is refused), then the agent's work in flight for this
 * principal is stopped, then the revocation receipt is written. Repeating it answers the same
 * and sweeps again (a sweep cut short by a crash is finished by the retry); another
 * principal's id is a 404.
 */
export async function revokeDelegation(
  deps: RevocationDeps,
  caller: Principal,
  id: string,
  body: unknown,
): Promise<{ delegation: Delegation; stopped: StoppedWork }> {
  await requirePrincipalItself(deps, caller, 'revoke');
  if (!DelegationIdPattern.test(id)) throw new DelegationNotFoundError(id);
  const parsed = RevokeDelegationSchema.safeParse(body ?? {});
  if (!parsed.success) throw new DelegationRequestInvalidError(violationsOf(parsed.error));
  const current = await deps.store.getDelegation(caller.sub, id);
  if (!current) throw new DelegationNotFoundError(id);
  let delegation = current;
  if (current.status === 'active') {
    const revokedAt = deps.now().toISOString();
    const revoked = await deps.store.revokeDelegation(caller.sub, id, {
      revokedAt,
      revokedBy: caller.sub,
      revokeReason: parsed.data.reason ?? 'revoked by the principal',
      revocationReceiptKey: revocationReceiptKey(id, revokedAt),
    });
    // Lost a race with another revocation: take the winner's record.
    delegation = revoked ?? (await deps.store.getDelegation(caller.sub, id)) ?? current;
    if (revoked) {
      await deps.store.recordDelegationEvent(caller.sub, {
        type: 'delegation.revoked',
        at: revokedAt,
        actor: caller.sub,
        data: { delegationId: id, agent: delegation.agent, reason: revoked.revokeReason, receiptKey: revoked.revocationReceiptKey },
      });
      deps.logger?.info('delegation revoked', { delegationId: id, principal: caller.sub, agent: delegation.agent });
    }
  }
  const stopped = delegation.status === 'revoked' ? await stopWorkInFlight(deps, delegation, revocationEnd(delegation, deps.now())) : { cancelled: [], stopping: [] };
  await writeRevocationReceipt(deps, delegation);
  return { delegation, stopped };
}

/** Who ended a revoked delegation's work in flight, when and why (as the cancel records it). */
function revocationEnd(delegation: Delegation, now: Date): WorkEnd {
  return {
    by: delegation.revokedBy ?? delegation.principal,
    at: delegation.revokedAt ?? now.toISOString(),
    reason: `delegation ${delegation.id} revoked: ${delegation.revokeReason ?? 'revoked by the principal'}`.slice(0, 500),
  };
}

/** Who ended a delegation's work in flight, when and why: each stopped action's cancel names it. */
export interface WorkEnd {
  by: string;
  at: string;
  reason: string;
}

async function writeRevocationReceipt(deps: Pick<DelegationDeps, 'vault'>, delegation: Delegation): Promise<void> {
  if (delegation.status !== 'revoked' || !delegation.revokedAt || !delegation.revocationReceiptKey) return;
  const receipt: RevocationReceipt = {
    schemaVersion: RECEIPT_SCHEMA_VERSION,
    kind: 'airlock.revocation',
    delegationId: delegation.id,
    principal: delegation.principal,
    agent: delegation.agent,
    revokedBy: delegation.revokedBy ?? delegation.principal,
    revokedAt: delegation.revokedAt,
    reason: delegation.revokeReason ?? 'revoked by the principal',
    consentReceiptKey: delegation.consentReceiptKey,
  };
  await writeDocument(deps.vault, delegation.revocationReceiptKey, receipt);
}

/** Pages of a principal's actions read while looking for work under a revoked delegation. */
const SWEEP_PAGE = 100;
const SWEEP_MAX_PAGES = 200;

/**
 * Cancels every unfinished action of the delegation's agent for its principal that runs under
 * it (through requestCancel: pending approvals closed, running sagas stopped before their
 * next step and compensated). Actions are listed newest first and the sweep stops at the
 * first one older than the delegation: nothing before it can run under it.
 */
export async function stopWorkInFlight(deps: Pick<RevocationDeps, 'actions' | 'cancel'>, delegation: Delegation, end: WorkEnd): Promise<StoppedWork> {
  const out: StoppedWork = { cancelled: [], stopping: [] };
  const since = Date.parse(delegation.createdAt);
  let startAfter: string | undefined;
  for (let page = 0; page < SWEEP_MAX_PAGES; page++) {
    const listed = await deps.actions.listActions({ principalSub: delegation.principal, limit: SWEEP_PAGE, ...(startAfter !== undefined ? { startAfter } : {}) });
    let older = false;
    for (const action of listed.items) {
      if (Date.parse(action.createdAt) < since) {
        older = true;
        break;
      }
      if (action.delegation?.id !== delegation.id || isTerminal(action.status)) continue;
      const outcome = await cancelQuietly(deps.cancel, action, end);
      if (outcome) out[outcome.state === 'cancelled' ? 'cancelled' : 'stopping'].push(action.id);
    }
    if (older || !listed.lastEvaluated) break;
    startAfter = listed.lastEvaluated;
  }
  return out;
}

async function cancelQuietly(deps: CancelDeps, action: ActionRecord, cancel: { by: string; at: string; reason: string }): Promise<CancelOutcome | undefined> {
  try {
    return await requestCancel(deps, action, cancel);
  } catch (error) {
    // It finished between the listing and the cancel: nothing left to stop.
    if (error instanceof ActionFinishedError) return undefined;
    throw error;
  }
}

/** The delegation as the API shows it; `state` folds expiry in. */
export function delegationView(d: Delegation, now: Date) {
  return {
    id: d.id,
    agent: d.agent,
    tools: d.tools,
    connectors: d.connectors,
    budget: d.budget,
    rules: d.rules,
    purpose: d.purpose,
    createdAt: d.createdAt,
    expiresAt: d.expiresAt,
    state: d.status === 'revoked' ? ('revoked' as const) : isLive(d, now) ? ('active' as const) : ('expired' as const),
    revokedAt: d.revokedAt ?? null,
    revokeReason: d.revokeReason ?? null,
    policySetVersion: d.policySetVersion,
    limitsVersion: d.limitsVersion,
    consentReceiptKey: d.consentReceiptKey,
    revocationReceiptKey: d.revocationReceiptKey ?? null,
    expiryReceiptKey: d.expiryReceiptKey ?? null,
  };
}
export type DelegationView = ReturnType<typeof delegationView>;
