import { testRateLimiter } from '../helpers/rate-limits';
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Context } from 'aws-lambda';
import { DynamoApprovalStore } from '../../lambdas/adapters/aws/dynamo-approvals';
import { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
import type { ActionRecord } from '../../lambdas/actions/action';
import { AUDITOR_ROLE } from '../../lambdas/actions/view';
import {
  ANSWER_GRACE_MS,
  ApprovalEventTypes,
  decideApproval,
  expireApproval,
  getApprovalPreview,
  listApprovals,
  MAX_REFUSED_VOTES,
  requestApproval,
  VoteRefusalRules,
  type ApprovalsDeps,
} from '../../lambdas/approvals/approvals';
import { Redactor } from '../../lambdas/receipts/redact';
import { renderTimeline } from '../../lambdas/receipts/timeline';
import { approvalsFromEvents, buildReceipt, receiptKey, serializeReceipt } from '../../lambdas/receipts/build';
import { FileAuditStore } from '../../lambdas/adapters/local/file-audit-store';
import { run as auditCli } from '../../bin/commands/audit';
import { PII_MASK } from '../../lambdas/approvals/preview';
import { deciderFor } from '../../lambdas/policy/decider';
import { validateEnvelope } from '../../lambdas/intake/envelope';
import { newActionId } from '../../lambdas/shared/ids';
import { planHash } from '../../lambdas/intake/intake';
import { createLogger } from '../../lambdas/middleware/powertools';
import { createPolicyEngine, loadPolicyEngine, readPolicyDir, type PolicyEngine } from '../../lambdas/policy/index';
import type { Principal } from '../../lambdas/shared/principal';
import { ProblemError, ProblemType } from '../../lambdas/shared/problem';
import { approvalIdFor } from '../../lambdas/shared/ids';
import type { EventPublisher, PublishedEvent } from '../../lambdas/ports/events';
import { TaskTokenInvalidError, type TaskCallbacks } from '../../lambdas/ports/task-callbacks';
import { noMetrics } from '../../lambdas/ports/metrics';
import { createApprovalsHandler } from '../../lambdas/approvals/handler';
import { approvalsProblem } from '../../lambdas/approvals/http';
import { toolRegistry } from '../../lambdas/tools/registry';
import { CursorCodec } from '../../lambdas/shared/cursor';
import { startLedger } from '../helpers/ledger';
import { verifiedIdentity } from '../helpers/events';
import { readLimitsFile } from '../../lambdas/limits/config';

// ── people ─────────────────────────────────────────────────────────────────
const alice: Principal = { sub: 'alice', roles: ['Employee'], manager: 'maria', department: 'sales' };
const maria: Principal = { sub: 'maria', roles: ['Employee', 'Manager'], manager: 'olivia', department: 'sales' };
const bob: Principal = { sub: 'bob', roles: ['Employee'], manager: 'maria', department: 'sales' };
const fiona: Principal = { sub: 'fiona', roles: ['Employee', 'FinanceAdmin'], manager: 'olivia', department: 'finance' };
const frank: Principal = { sub: 'frank', roles: ['Employee', 'FinanceAdmin'], manager: 'olivia', department: 'finance' };
const fern: Principal = { sub: 'fern', roles: ['Employee', 'FinanceAdmin'], manager: 'olivia', department: 'finance' };
const sam: Principal = { sub: 'sam', roles: ['Employee', 'SecurityAdmin'], manager: 'olivia', department: 'security' };
const sasha: Principal = { sub: 'sasha', roles: ['Employee', 'SecurityAdmin'], manager: 'olivia', department: 'security' };
const sid: Principal = { sub: 'sid', roles: ['Employee', 'SecurityAdmin'], manager: 'olivia', department: 'security' };
const audrey: Principal = { sub: 'audrey', roles: [AUDITOR_ROLE] };

const agent = { name: 'trip-planner', model: 'test-model' };

const bookFlight = {
  tool: 'travel.book_flight',
  arguments: {
    holdId: 'hold_123',
    travelers: [{ firstName: 'Alice', lastName: 'Liddell', passportNumber: 'X1234567' }],
    contact: { email: 'alice@example.com', phone: '+1 555 0100' },
    price: { amount: 2500, currency: 'USD' },
  },
  agent,
  reason: 'Customer visit in Berlin next week',
};
const bigPayment = {
  tool: 'payments.authorize',
  arguments: { amount: 20000, currency: 'USD', payee: 'merchant-1', paymentMethod: 'pm_card_visa', customerEmail: 'alice@example.com' },
  agent,
  reason: 'Annual license renewal',
};
const grantToSam = {
  tool: 'iam.grant_role',
  arguments: { principalId: 'sam', role: 'admin', reason: 'on-call rotation' },
  agent,
  reason: 'Sam needs admin for the on-call week',
};

// ── fakes ──────────────────────────────────────────────────────────────────
interface Call {
  kind: 'success' | 'failure';
  token: string;
  output?: unknown;
  error?: string;
  cause?: string;
}

/** Records callbacks; `failNext` makes the next call throw (a lost answer, a dead token). */
class RecordingCallbacks implements TaskCallbacks {
  calls: Call[] = [];
  failNext: Error | undefined;
  private take(): void {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
  }
  async sendTaskSuccess(token: string, output: unknown): Promise<void> {
    // A real round trip, so racing voters interleave.
    await new Promise((r) => setTimeout(r, 1));
    this.take();
    this.calls.push({ kind: 'success', token, output });
  }
  async sendTaskFailure(token: string, error: string, cause: string): Promise<void> {
    await new Promise((r) => setTimeout(r, 1));
    this.take();
    this.calls.push({ kind: 'failure', token, error, cause });
  }
}

class RecordingPublisher implements EventPublisher {
  events: PublishedEvent[] = [];
  async publish(event: PublishedEvent): Promise<void> {
    this.events.push(event);
  }
}

// ── fixture ────────────────────────────────────────────────────────────────
let ledgerEnv: Awaited<ReturnType<typeof startLedger>>;
let store: DynamoSagaStore;
let approvals: DynamoApprovalStore;
let engine: PolicyEngine;
let callbacks: RecordingCallbacks;
let publisher: RecordingPublisher;
let logLines: string[];
let clock: Date;
let deps: ApprovalsDeps;
let tokenSeq = 0;
const issuedTokens: string[] = [];

function newToken(): string {
  const token = `AQCEAAAAKgAAAAMAAAAAAAAAA${(++tokenSeq).toString().padStart(6, '0')}SECRET-TASK-TOKEN-${Math.random().toString(36).slice(2)}`;
  issuedTokens.push(token);
  return token;
}

beforeAll(async () => {
  ledgerEnv = await startLedger();
  store = new DynamoSagaStore({ client: ledgerEnv.dynamo.client, tableName: ledgerEnv.tableName });
  approvals = new DynamoApprovalStore({ client: ledgerEnv.dynamo.client, tableName: ledgerEnv.tableName });
  engine = loadPolicyEngine();
});

afterAll(async () => {
  await ledgerEnv?.close();
});

beforeEach(() => {
  callbacks = new RecordingCallbacks();
  publisher = new RecordingPublisher();
  logLines = [];
  clock = new Date('2026-03-02T09:00:00.000Z');
  deps = {
    actions: ledgerEnv.ledger,
    approvals,
    events: store,
    callbacks,
    publisher,
    engine,
    tools: toolRegistry,
    timeoutSeconds: 3600,
    now: () => new Date(clock),
    logger: createLogger({ level: 'debug', sink: (line) => logLines.push(line) }),
  };
});

/** Stores an action the way intake does, already awaiting approval, and runs RequestApproval. */
async function awaitingApproval(requester: Principal, body: unknown, useEngine: PolicyEngine = engine) {
  const validated = validateEnvelope(body, toolRegistry);
  if (!validated.ok) throw new Error(`bad fixture: ${JSON.stringify(validated.violations)}`);
  const action = validated.action;
  const decision = await deciderFor(useEngine, toolRegistry).decide(requester, action, clock);
  expect(decision.outcome).toBe('require_approval');
  const id = newActionId(clock.getTime());
  const record: ActionRecord = {
    id,
    principal: requester,
    actor: action.agent,
    envelope: body,
    kind: action.kind,
    mode: action.mode,
    ...(action.reason ? { reason: action.reason } : {}),
    planHash: planHash(action),
    status: 'awaiting_approval',
    decision,
    createdAt: clock.toISOString(),
    updatedAt: clock.toISOString(),
    version: 1,
  };
  await ledgerEnv.ledger.createAction(record);
  const token = newToken();
  const requested = await requestApproval(deps, { actionId: id, taskToken: token });
  return { action: record, approvalId: requested.approvalId, token, planHash: record.planHash };
}

async function problemOf(work: Promise<unknown>): Promise<ProblemError['problem']> {
  try {
    await work;
  } catch (error) {
    const problem = approvalsProblem(error);
    if (problem) return problem.problem;
    throw error;
  }
  throw new Error('expected a problem');
}

describe('RequestApproval', () => {
  it('stores the approval bound to the plan, audits and notifies without the token, and is idempotent', async () => {
    const { action, approvalId, token } = await awaitingApproval(alice, bookFlight);
    expect(approvalId).toBe(approvalIdFor(action.id));

    const stored = await approvals.getApproval(approvalId);
    expect(stored).toMatchObject({
      status: 'pending',
      actionId: action.id,
      planHash: action.planHash,
      quorum: 1,
      approverRule: 'manager',
      requester: 'alice',
      expiresAt: new Date(clock.getTime() + 3600_000).toISOString(),
    });
    expect(JSON.stringify(stored)).not.toContain(token);
    expect(await approvals.getTaskToken(approvalId)).toBe(token);

    const events = (await store.list(action.id)).filter((e) => e.type.startsWith('approval.'));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'approval.requested',
      actor: 'airlock',
      data: { approvalId, planHash: action.planHash, quorum: 1, approverRule: 'manager', expiresAt: stored!.expiresAt },
    });
    expect(publisher.events).toHaveLength(1);
    expect(publisher.events[0]!.type).toBe('airlock.approval.requested');
    expect(publisher.events[0]!.detail).toMatchObject({ approvalId, actionId: action.id, requester: 'alice', quorum: 1 });

    // A resumed saga asks again with a new token: same approval, new token, no second event.
    const second = newToken();
    await requestApproval(deps, { actionId: action.id, taskToken: second });
    expect(await approvals.getTaskToken(approvalId)).toBe(second);
    expect((await store.list(action.id)).filter((e) => e.type === 'approval.requested')).toHaveLength(1);
    expect(publisher.events).toHaveLength(1);
    expect(callbacks.calls).toHaveLength(0);
  });

  it('answers a new token at once when the quorum was reached but the success call was lost', async () => {
    const { approvalId, planHash: hash, action } = await awaitingApproval(alice, bookFlight);
    callbacks.failNext = new Error('socket hang up');
    await expect(decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash })).rejects.toThrow('socket hang up');
    expect((await approvals.getApproval(approvalId))?.status).toBe('approved');
    expect(callbacks.calls).toHaveLength(0);

    // A retried click right away does not re-send (the winner may still be answering)...
    await decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash });
    expect(callbacks.calls).toHaveLength(0);

    const resumed = newToken();
    await requestApproval(deps, { actionId: action.id, taskToken: resumed });
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'success', token: resumed })]);
    expect((await approvals.getApproval(approvalId))?.answeredAt).toBeDefined();
  });
});

describe('a lost answer', () => {
  it('is re-sent by a retried click once the winner is surely gone, and only once', async () => {
    const { approvalId, planHash: hash, token } = await awaitingApproval(alice, bookFlight);
    callbacks.failNext = new Error('socket hang up');
    await expect(decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash })).rejects.toThrow('socket hang up');
    clock = new Date(clock.getTime() + 61_000);
    expect(await decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash })).toMatchObject({ recorded: false, status: 'approved' });
    expect(await decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash })).toMatchObject({ recorded: false });
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'success', token })]);
  });
});

describe('deciding', () => {
  it('approves with the manager: one SendTaskSuccess with the votes, audited with the voter identity', async () => {
    const { approvalId, planHash: hash, token, action } = await awaitingApproval(alice, bookFlight);
    const res = await decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash, comment: 'ok for the Berlin trip' });
    expect(res).toMatchObject({ status: 'approved', recorded: true, approvalsSoFar: 1, quorum: 1 });
    expect(callbacks.calls).toHaveLength(1);
    expect(callbacks.calls[0]).toMatchObject({ kind: 'success', token, output: { approvalId, planHash: hash, votes: [{ voter: 'maria', decision: 'approve' }] } });

    const events = (await store.list(action.id)).filter((e) => e.type.startsWith('approval.'));
    expect(events.map((e) => e.type)).toEqual(['approval.requested', 'approval.vote', 'approval.granted']);
    expect(events[1]).toMatchObject({ actor: 'maria', data: { approvalId, voter: 'maria', decision: 'approve', comment: 'ok for the Berlin trip' } });
    expect(events[2]).toMatchObject({ actor: 'maria', data: { approvalId, votes: [{ voter: 'maria' }] } });
  });

  it('refuses self-approval with the shipped policies', async () => {
    const { approvalId, planHash: hash } = await awaitingApproval(fiona, bigPayment);
    const p = await problemOf(decideApproval(deps, { approvalId, voter: fiona, decision: 'approve', planHash: hash }));
    expect(p).toMatchObject({ status: 403, type: ProblemType.approvalForbidden });
    expect(callbacks.calls).toHaveLength(0);
  });

  it('refuses self-approval even when a policy would allow it', async () => {
    const files = readPolicyDir();
    // A policy set where anyone may approve anything and the not-requester forbid is gone.
    const permissive = createPolicyEngine({
      ...files,
      policies: {
        ...files.policies,
        'base.cedar': files.policies['base.cedar']!.replace(/@id\("approve\.not-requester"\)[\s\S]*?when \{ principal == context\.requester \};/, ''),
        'zz-open.cedar': '@id("open.approve")\n@reason("test: anyone approves")\npermit (principal, action == Airlock::Action::"approve", resource);\n',
      },
    });
    const selfCheck = permissive.canApprove({
      approver: fiona,
      requester: fiona,
      steps: [{ id: 'call', facts: { tool: 'payments.authorize', connector: 'payments', tier: 'commit', vendor: 'Sandbox Payments', amount: { amount: 20000, currency: 'USD' } } }],
    });
    expect(selfCheck.allowed).toBe(true); // the policy alone would let her

    deps.engine = permissive;
    const { approvalId, planHash: hash } = await awaitingApproval(fiona, bigPayment, permissive);
    const p = await problemOf(decideApproval(deps, { approvalId, voter: fiona, decision: 'approve', planHash: hash }));
    expect(p).toMatchObject({ status: 403, type: ProblemType.approvalForbidden });
    expect(p.detail).toMatch(/own action/);
    expect(await approvals.listVotes(approvalId)).toHaveLength(0);
    expect(callbacks.calls).toHaveLength(0);
  });

  it('refuses a voter outside the approver rule (403)', async () => {
    const { approvalId, planHash: hash } = await awaitingApproval(alice, bookFlight);
    const p = await problemOf(decideApproval(deps, { approvalId, voter: bob, decision: 'approve', planHash: hash }));
    expect(p).toMatchObject({ status: 403, type: ProblemType.approvalForbidden });
    const q = await problemOf(decideApproval(deps, { approvalId, voter: fiona, decision: 'reject', planHash: hash }));
    expect(q.status).toBe(403);
    expect(await approvals.listVotes(approvalId)).toHaveLength(0);
  });

  it('counts the same person voting twice once, and refuses a different second vote (409)', async () => {
    const { approvalId, planHash: hash, action } = await awaitingApproval(alice, bigPayment);
    const first = await decideApproval(deps, { approvalId, voter: fiona, decision: 'approve', planHash: hash });
    expect(first).toMatchObject({ status: 'pending', recorded: true, approvalsSoFar: 1, quorum: 2 });
    const again = await decideApproval(deps, { approvalId, voter: fiona, decision: 'approve', planHash: hash });
    expect(again).toMatchObject({ status: 'pending', recorded: false, approvalsSoFar: 1 });
    const p = await problemOf(decideApproval(deps, { approvalId, voter: fiona, decision: 'reject', planHash: hash }));
    expect(p).toMatchObject({ status: 409, type: ProblemType.voteConflict });
    expect(callbacks.calls).toHaveLength(0);
    expect((await store.list(action.id)).filter((e) => e.type === 'approval.vote')).toHaveLength(1);
  });

  it('refuses a stale planHash (409) and records nothing', async () => {
    const { approvalId } = await awaitingApproval(alice, bookFlight);
    const p = await problemOf(decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: 'a'.repeat(64) }));
    expect(p).toMatchObject({ status: 409, type: ProblemType.planMismatch });
    expect(await approvals.listVotes(approvalId)).toHaveLength(0);
    expect(callbacks.calls).toHaveLength(0);
  });

  it('refuses approving after expiry (409), expires the approval once and tells the saga', async () => {
    const { approvalId, planHash: hash, token, action } = await awaitingApproval(alice, bookFlight);
    clock = new Date(clock.getTime() + 3600_000 + 1);
    const p = await problemOf(decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash }));
    expect(p).toMatchObject({ status: 409, type: ProblemType.approvalExpired });
    expect((await approvals.getApproval(approvalId))?.status).toBe('expired');
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'failure', token, error: 'ApprovalExpired' })]);
    expect(await expireApproval(deps, approvalId)).toBe(false);
    const q = await problemOf(decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash }));
    expect(q).toMatchObject({ status: 409, type: ProblemType.approvalClosed });
    const expired = (await store.list(action.id)).filter((e) => e.type === ApprovalEventTypes.expired);
    expect(expired).toEqual([expect.objectContaining({ actor: 'airlock', data: { approvalId } })]);
  });

  it('sends exactly one SendTaskSuccess when two approvers race to complete a quorum of 2', async () => {
    for (let round = 0; round < 4; round++) {
      callbacks.calls = [];
      const { approvalId, planHash: hash, token } = await awaitingApproval(alice, bigPayment);
      const results = await Promise.allSettled(
        [fiona, frank, fern].map((voter) => decideApproval(deps, { approvalId, voter, decision: 'approve', planHash: hash })),
      );
      // A vote that arrives once two others settled the quorum is refused as closed (409);
      // whether the third one is that late is up to the engine's scheduling.
      const recorded = results.filter((r) => r.status === 'fulfilled' && r.value.recorded);
      expect(recorded.length).toBeGreaterThanOrEqual(2);
      for (const r of results) {
        if (r.status === 'rejected') expect(approvalsProblem(r.reason)?.problem).toMatchObject({ status: 409, type: ProblemType.approvalClosed });
      }
      expect(callbacks.calls).toHaveLength(1);
      expect(callbacks.calls[0]).toMatchObject({ kind: 'success', token });
      const output = callbacks.calls[0]!.output as { votes: { voter: string }[] };
      expect(new Set(output.votes.map((v) => v.voter)).size).toBeGreaterThanOrEqual(2);
      expect((await approvals.getApproval(approvalId))?.status).toBe('approved');
    }
  });

  it('rejects: one SendTaskFailure with ApprovalRejected and the reason; later decisions get 409', async () => {
    const { approvalId, planHash: hash, token, action } = await awaitingApproval(alice, bigPayment);
    await decideApproval(deps, { approvalId, voter: fiona, decision: 'approve', planHash: hash });
    const res = await decideApproval(deps, { approvalId, voter: frank, decision: 'reject', planHash: hash, comment: 'vendor not under contract' });
    expect(res.status).toBe('rejected');
    expect(callbacks.calls).toEqual([{ kind: 'failure', token, error: 'ApprovalRejected', cause: 'vendor not under contract' }]);
    const p = await problemOf(decideApproval(deps, { approvalId, voter: fern, decision: 'approve', planHash: hash }));
    expect(p).toMatchObject({ status: 409, type: ProblemType.approvalClosed });
    // A retried click of the rejecting vote is harmless.
    expect(await decideApproval(deps, { approvalId, voter: frank, decision: 'reject', planHash: hash })).toMatchObject({ recorded: false, status: 'rejected' });
    expect(callbacks.calls).toHaveLength(1);
    const rejected = (await store.list(action.id)).filter((e) => e.type === 'approval.rejected');
    expect(rejected).toEqual([expect.objectContaining({ actor: 'frank', data: { approvalId, voter: 'frank', reason: 'vendor not under contract' } })]);
  });

  it('IAM grant: the grantee is refused even as a SecurityAdmin; two others complete the quorum', async () => {
    const { approvalId, planHash: hash, token } = await awaitingApproval(alice, grantToSam);
    expect((await approvals.getApproval(approvalId))?.grantees).toEqual(['sam']);
    const p = await problemOf(decideApproval(deps, { approvalId, voter: sam, decision: 'approve', planHash: hash }));
    expect(p).toMatchObject({ status: 403, type: ProblemType.approvalForbidden });
    await decideApproval(deps, { approvalId, voter: sasha, decision: 'approve', planHash: hash });
    expect(callbacks.calls).toHaveLength(0);
    await decideApproval(deps, { approvalId, voter: sid, decision: 'approve', planHash: hash });
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'success', token })]);
  });

  it('maps a dead task token to a 409 problem', async () => {
    const { approvalId, planHash: hash } = await awaitingApproval(alice, bookFlight);
    callbacks.failNext = new TaskTokenInvalidError('timed_out');
    const p = await problemOf(decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash }));
    expect(p).toMatchObject({ status: 409, type: ProblemType.approvalClosed, reason: 'timed_out' });
  });
});

// ── a request that dies mid-vote ─────────────────────────────────────────────
// Found by the chaos storm's SIGKILLs: a vote is one request that writes the vote, then its
// audit event, then the outcome. A process killed between those writes must neither leave a
// vote that counts toward the quorum out of the receipt, nor leave a decided approval pending.

/** What a SIGKILL right after `method` completes looks like to the code that called it. */
class ProcessKilledError extends Error {
  constructor() {
    super('the process was killed');
    this.name = 'ProcessKilledError';
  }
}

/** `target` whose `method` does its work and then "dies" (once), as a process killed right after that write. */
function dyingAfter<T extends object>(target: T, method: keyof T & string): T {
  let died = false;
  return new Proxy(target, {
    get(t, p) {
      const value = Reflect.get(t, p, t) as unknown;
      if (typeof value !== 'function') return value;
      if (p !== method || died) return (value as (...a: unknown[]) => unknown).bind(t);
      return async (...args: unknown[]) => {
        await (value as (...a: unknown[]) => Promise<unknown>).apply(t, args);
        died = true;
        throw new ProcessKilledError();
      };
    },
  });
}

/** The receipt's approvals section, as the receipts function would build it now. */
async function receiptVotes(actionId: string) {
  const [approval] = approvalsFromEvents(await store.list(actionId));
  return { outcome: approval?.outcome, voters: (approval?.votes ?? []).map((v) => `${v.voter}:${v.decision}`).sort() };
}

describe('a request that dies mid-vote', () => {
  it('after writing the vote (quorum 2): the next approver puts it on the chain before counting it, so the receipt proves the quorum', async () => {
    const { approvalId, planHash: hash, token, action } = await awaitingApproval(alice, bigPayment);
    const dying = { ...deps, approvals: dyingAfter(approvals, 'putVote') };
    await expect(decideApproval(dying, { approvalId, voter: fiona, decision: 'approve', planHash: hash })).rejects.toThrow(ProcessKilledError);
    expect(await receiptVotes(action.id)).toEqual({ outcome: 'pending', voters: [] });

    const res = await decideApproval(deps, { approvalId, voter: frank, decision: 'approve', planHash: hash });
    expect(res).toMatchObject({ status: 'approved', recorded: true, approvalsSoFar: 2 });
    expect(await receiptVotes(action.id)).toEqual({ outcome: 'granted', voters: ['fiona:approve', 'frank:approve'] });
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'success', token })]);
    const types = (await store.list(action.id)).map((e) => e.type).filter((t) => t.startsWith('approval.'));
    expect(types.indexOf('approval.granted')).toBeGreaterThan(types.lastIndexOf('approval.vote'));
  });

  it('after writing the vote (quorum 1): the click retried after the restart records its event once and approves', async () => {
    const { approvalId, planHash: hash, token, action } = await awaitingApproval(alice, bookFlight);
    const dying = { ...deps, approvals: dyingAfter(approvals, 'putVote') };
    await expect(decideApproval(dying, { approvalId, voter: maria, decision: 'approve', planHash: hash })).rejects.toThrow(ProcessKilledError);

    expect(await decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash })).toMatchObject({ status: 'approved', recorded: false });
    expect(await decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash })).toMatchObject({ status: 'approved', recorded: false });
    expect(await receiptVotes(action.id)).toEqual({ outcome: 'granted', voters: ['maria:approve'] });
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'success', token })]);
  });

  it('after writing the vote, nobody clicks again: the resumed saga decides from the stored votes', async () => {
    const { approvalId, planHash: hash, action } = await awaitingApproval(alice, bookFlight);
    const dying = { ...deps, approvals: dyingAfter(approvals, 'putVote') };
    await expect(decideApproval(dying, { approvalId, voter: maria, decision: 'approve', planHash: hash })).rejects.toThrow(ProcessKilledError);

    const resumed = newToken();
    expect(await requestApproval(deps, { actionId: action.id, taskToken: resumed })).toMatchObject({ status: 'approved' });
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'success', token: resumed })]);
    expect(await receiptVotes(action.id)).toEqual({ outcome: 'granted', voters: ['maria:approve'] });
  });

  it('after claiming a refused vote: the retried click puts the refusal on the chain, once', async () => {
    // Seed 21 at 200 actions (2 crashes): the requester's own approval was refused, its claim
    // written, then SIGKILL; the retry after the restart found the claim ("vote refused again")
    // and recorded nothing, so the receipt lacked the refused self-approval.
    const { approvalId, planHash: hash, action } = await awaitingApproval(alice, bigPayment);
    const dying = { ...deps, approvals: dyingAfter(approvals, 'claimRefusal') };
    await expect(decideApproval(dying, { approvalId, voter: alice, decision: 'approve', planHash: hash })).rejects.toThrow(ProcessKilledError);
    expect((await store.list(action.id)).filter((e) => e.type === ApprovalEventTypes.voteRefused)).toEqual([]);

    for (let i = 0; i < 2; i++) expect(await problemOf(decideApproval(deps, { approvalId, voter: alice, decision: 'approve', planHash: hash }))).toMatchObject({ status: 403 });
    const refused = (await store.list(action.id)).filter((e) => e.type === ApprovalEventTypes.voteRefused);
    expect(refused.map((e) => [e.actor, e.data?.reason])).toEqual([['alice', 'self_approval']]);
  });

  it('after writing a rejection: the retried click rejects, once', async () => {
    const { approvalId, planHash: hash, token, action } = await awaitingApproval(alice, bigPayment);
    await decideApproval(deps, { approvalId, voter: fiona, decision: 'approve', planHash: hash });
    const dying = { ...deps, approvals: dyingAfter(approvals, 'putVote') };
    await expect(decideApproval(dying, { approvalId, voter: frank, decision: 'reject', planHash: hash, comment: 'no contract' })).rejects.toThrow(ProcessKilledError);

    expect(await decideApproval(deps, { approvalId, voter: frank, decision: 'reject', planHash: hash })).toMatchObject({ status: 'rejected', recorded: false });
    // A quorum-completing approval arriving now is refused: the rejection was decided first.
    const p = await problemOf(decideApproval(deps, { approvalId, voter: fern, decision: 'approve', planHash: hash }));
    expect(p).toMatchObject({ status: 409, type: ProblemType.approvalClosed });
    expect(callbacks.calls).toEqual([{ kind: 'failure', token, error: 'ApprovalRejected', cause: 'no contract' }]);
    expect(await receiptVotes(action.id)).toEqual({ outcome: 'rejected', voters: ['fiona:approve', 'frank:reject'] });
  });

  it('after the vote event, before the answer: the vote decided the approval in its own write; the retried click completes the chain, and answers once the winner must be dead', async () => {
    const { approvalId, planHash: hash, token, action } = await awaitingApproval(alice, bookFlight);
    const dying = { ...deps, events: dyingAfter(store, 'appendOnce') };
    await expect(decideApproval(dying, { approvalId, voter: maria, decision: 'approve', planHash: hash })).rejects.toThrow(ProcessKilledError);
    // The accepting write carried the outcome: no expiry can come between the quorum and it.
    expect((await approvals.getApproval(approvalId))?.status).toBe('approved');

    expect(await decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash })).toMatchObject({ status: 'approved' });
    expect(await receiptVotes(action.id)).toEqual({ outcome: 'granted', voters: ['maria:approve'] });
    // Within the grace the winner may still be answering: a second answer on its token is never sent.
    expect(callbacks.calls).toEqual([]);
    clock = new Date(clock.getTime() + ANSWER_GRACE_MS + 1);
    expect(await decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash })).toMatchObject({ status: 'approved', recorded: false });
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'success', token })]);
    expect(await receiptVotes(action.id)).toEqual({ outcome: 'granted', voters: ['maria:approve'] });
  });

  it('(races) double clicks and racing approvers: every vote on the chain exactly once, one answer, and the receipt holds the quorum', async () => {
    for (let round = 0; round < 3; round++) {
      callbacks.calls = [];
      const { approvalId, planHash: hash, action } = await awaitingApproval(alice, bigPayment);
      await Promise.allSettled(
        [fiona, fiona, frank, frank, fern].map((voter) => decideApproval(deps, { approvalId, voter, decision: 'approve', planHash: hash })),
      );
      const votes = (await store.list(action.id)).filter((e) => e.type === ApprovalEventTypes.vote).map((e) => e.data.voter);
      expect(votes.length).toBe(new Set(votes).size);
      const receipt = await receiptVotes(action.id);
      expect(receipt.outcome).toBe('granted');
      expect(receipt.voters.length).toBeGreaterThanOrEqual(2);
      expect(callbacks.calls).toHaveLength(1);
    }
  });
});

describe('preview and listing', () => {
  it('shows everything an approver needs; PII only to eligible approvers; 404 for strangers', async () => {
    const { approvalId, planHash: hash, action } = await awaitingApproval(alice, bookFlight);
    const forManager = await getApprovalPreview(deps, maria, approvalId);
    expect(forManager).toMatchObject({
      id: approvalId,
      actionId: action.id,
      status: 'pending',
      planHash: hash,
      quorum: 1,
      requestedBy: { principal: 'alice', agent },
      reason: 'Customer visit in Berlin next week',
      amountAtStake: [{ currency: 'USD', amount: 2500 }],
      policies: { policyIds: ['travel.employee-over-limit'] },
      viewer: { canDecide: true },
    });
    const step = forManager.steps[0]!;
    expect(step.plain).toMatch(/travel\.book_flight on Sandbox Travel/);
    expect(step.plain).toMatch(/2,500\.00 USD/);
    expect(step.compensation).toMatchObject({ tool: 'travel.cancel_booking' });
    expect(step.arguments).toEqual(bookFlight.arguments);
    expect(forManager.policies.reasons.join(' ')).toMatch(/manager/);

    for (const viewer of [alice, audrey]) {
      const masked = await getApprovalPreview(deps, viewer, approvalId);
      expect(masked.viewer.canDecide).toBe(false);
      expect(masked.steps[0]!.piiMasked).toBe(true);
      const text = JSON.stringify(masked);
      for (const secret of ['Alice', 'Liddell', 'X1234567', 'alice@example.com', '555 0100']) expect(text).not.toContain(secret);
      expect(masked.steps[0]!.arguments).toMatchObject({ holdId: 'hold_123', contact: { email: PII_MASK }, price: { amount: 2500 } });
    }
    expect((await problemOf(getApprovalPreview(deps, bob, approvalId))).status).toBe(404);
  });

  it('lists pending approvals the caller may decide, newest first', async () => {
    const older = await awaitingApproval(alice, bookFlight);
    clock = new Date(clock.getTime() + 1000);
    const newer = await awaitingApproval(bob, bookFlight);
    clock = new Date(clock.getTime() + 1000);
    await awaitingApproval(alice, bigPayment);
    const forMaria = await listApprovals(deps, maria, { status: 'pending', limit: 100 });
    const ids = forMaria.items.map((i) => i.id);
    expect(ids.indexOf(newer.approvalId)).toBeGreaterThanOrEqual(0);
    expect(ids.indexOf(newer.approvalId)).toBeLessThan(ids.indexOf(older.approvalId));
    expect(forMaria.items.every((i) => i.canDecide && i.tools.includes('travel.book_flight'))).toBe(true);
    const forBob = await listApprovals(deps, bob, { status: 'pending', limit: 100 });
    expect(forBob.items.map((i) => i.id)).not.toContain(older.approvalId);
    expect(forBob.items.map((i) => i.id)).not.toContain(newer.approvalId); // his own
  });
});

describe('the approvals handler', () => {
  const context = { awsRequestId: 'req-1', getRemainingTimeInMillis: () => 10_000 } as unknown as Context;
  const httpEvent = (routeKey: string, principal: Principal, extra: { id?: string; body?: unknown; query?: Record<string, string> } = {}) => {
    const [method, path] = routeKey.split(' ') as [string, string];
    const identity = verifiedIdentity({ sub: principal.sub, roles: principal.roles, ...(principal.manager ? { manager: principal.manager } : {}) });
    return {
      version: '2.0',
      routeKey,
      rawPath: path.replace('{id}', extra.id ?? ''),
      rawQueryString: '',
      headers: { 'content-type': 'application/json', authorization: identity.authorization },
      queryStringParameters: extra.query,
      pathParameters: extra.id ? { id: extra.id } : undefined,
      body: extra.body === undefined ? undefined : JSON.stringify(extra.body),
      isBase64Encoded: false,
      requestContext: {
        requestId: 'req-1',
        http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
        authorizer: { jwt: { claims: identity.claims, scopes: [] } },
      },
    };
  };

  it('serves the saga task and the HTTP routes, and no response or log line carries a task token', async () => {
    const cursors = new CursorCodec(randomBytes(32));
    const handler = createApprovalsHandler(async () => ({ ...deps, cursors: async () => cursors, limits: readLimitsFile(), metrics: noMetrics, rateLimiter: testRateLimiter({ client: ledgerEnv.dynamo.client, tableName: ledgerEnv.tableName }) }));
    const responses: unknown[] = [];
    const validated = validateEnvelope(bigPayment, toolRegistry);
    if (!validated.ok) throw new Error('fixture');
    const decision = await deciderFor(engine, toolRegistry).decide(alice, validated.action, clock);
    const id = newActionId(clock.getTime());
    await ledgerEnv.ledger.createAction({
      id,
      principal: alice,
      actor: agent,
      envelope: bigPayment,
      kind: 'single',
      mode: 'execute',
      reason: bigPayment.reason,
      planHash: planHash(validated.action),
      status: 'awaiting_approval',
      decision,
      createdAt: clock.toISOString(),
      updatedAt: clock.toISOString(),
      version: 1,
    });
    const token = newToken();
    const task = await handler({ task: 'RequestApproval', actionId: id, taskToken: token }, context);
    responses.push(task);
    expect(task).toEqual({ approvalId: approvalIdFor(id), status: 'pending', expiresAt: new Date(clock.getTime() + 3600_000).toISOString() });
    await expect(handler({ task: 'RequestApproval', actionId: id }, context)).rejects.toMatchObject({ name: 'ApprovalTaskInvalidError' });

    const apr = approvalIdFor(id);
    const list = (await handler(httpEvent('GET /v1/approvals', fiona, { query: { status: 'pending' } }), context)) as { statusCode: number; body: string };
    responses.push(list);
    expect(list.statusCode).toBe(200);
    expect((JSON.parse(list.body) as { items: { id: string }[] }).items.map((i) => i.id)).toContain(apr);

    const preview = (await handler(httpEvent('GET /v1/approvals/{id}', fiona, { id: apr }), context)) as { statusCode: number; body: string };
    responses.push(preview);
    const hash = (JSON.parse(preview.body) as { planHash: string }).planHash;

    const bad = (await handler(httpEvent('POST /v1/approvals/{id}/decision', fiona, { id: apr, body: { decision: 'maybe', planHash: hash } }), context)) as { statusCode: number; body: string };
    expect(bad.statusCode).toBe(400);
    const smuggled = (await handler(httpEvent('POST /v1/approvals/{id}/decision', fiona, { id: apr, body: { decision: 'approve', planHash: hash, taskToken: 'forged' } }), context)) as { statusCode: number };
    expect(smuggled.statusCode).toBe(400);

    for (const voter of [fiona, frank]) {
      const res = (await handler(httpEvent('POST /v1/approvals/{id}/decision', voter, { id: apr, body: { decision: 'approve', planHash: hash } }), context)) as { statusCode: number; body: string };
      responses.push(res);
      expect(res.statusCode).toBe(200);
    }
    const self = (await handler(httpEvent('POST /v1/approvals/{id}/decision', alice, { id: apr, body: { decision: 'approve', planHash: hash } }), context)) as { statusCode: number; headers: Record<string, string>; body: string };
    expect(self.statusCode).toBe(403);
    expect(self.headers['content-type']).toBe('application/problem+json');
    responses.push(self);
    const after = (await handler(httpEvent('POST /v1/approvals/{id}/decision', fern, { id: apr, body: { decision: 'approve', planHash: hash } }), context)) as { statusCode: number; body: string };
    expect(after.statusCode).toBe(409);
    responses.push(after);
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'success', token })]);

    const everything = JSON.stringify(responses) + logLines.join('\n') + JSON.stringify(publisher.events) + JSON.stringify(await store.list(id));
    expect(logLines.length).toBeGreaterThan(0);
    for (const t of issuedTokens) expect(everything).not.toContain(t);
    expect(everything).not.toContain('SECRET-TASK-TOKEN');
  });
});

// ── refused votes ──────────────────────────────────────────────────────────
describe('refused votes are audited', () => {
  const context = { awsRequestId: 'req-2', getRemainingTimeInMillis: () => 10_000 } as unknown as Context;
  /** POST /v1/approvals/{id}/decision through the approvals handler, as API Gateway calls it. */
  async function vote(voter: Principal, approvalId: string, body: { decision: 'approve' | 'reject'; planHash: string; comment?: string }) {
    const handler = createApprovalsHandler(async () => ({ ...deps, cursors: async () => new CursorCodec(randomBytes(32)), limits: readLimitsFile(), metrics: noMetrics, rateLimiter: testRateLimiter({ client: ledgerEnv.dynamo.client, tableName: ledgerEnv.tableName }) }));
    const identity = verifiedIdentity({ sub: voter.sub, roles: voter.roles, ...(voter.manager ? { manager: voter.manager } : {}) });
    const res = (await handler(
      {
        version: '2.0',
        routeKey: 'POST /v1/approvals/{id}/decision',
        rawPath: `/v1/approvals/${approvalId}/decision`,
        rawQueryString: '',
        headers: { 'content-type': 'application/json', authorization: identity.authorization },
        pathParameters: { id: approvalId },
        body: JSON.stringify(body),
        isBase64Encoded: false,
        requestContext: {
          requestId: 'req-2',
          http: { method: 'POST', path: `/v1/approvals/${approvalId}/decision`, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
          authorizer: { jwt: { claims: identity.claims, scopes: [] } },
        },
      },
      context,
    )) as { statusCode: number; body: string };
    return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown> };
  }
  const refusals = async (actionId: string) => (await store.list(actionId)).filter((e) => e.type === ApprovalEventTypes.voteRefused);
  /** Settles the action the way the saga would and builds its receipt from the ledger. */
  async function receiptOf(actionId: string, to: 'rejected' | 'expired' | 'cancelled' = 'cancelled') {
    const settled = await ledgerEnv.ledger.transition(actionId, to, { statusReason: 'test' }, new Date(clock.getTime() + 1));
    return buildReceipt({ action: settled, steps: [], events: await store.list(actionId), redactor: new Redactor('test-redaction-key-0123456789'), tools: toolRegistry });
  }

  it('self-approval: 403, recorded with the voter, roles, reason and the airlock rule, in the receipt and its timeline', async () => {
    const { action, approvalId, planHash: hash } = await awaitingApproval(fiona, bigPayment);
    const res = await vote(fiona, approvalId, { decision: 'approve', planHash: hash, comment: 'my own, fine' });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ type: ProblemType.approvalForbidden, policyIds: [VoteRefusalRules.self_approval] });
    const events = await refusals(action.id);
    expect(events).toEqual([
      expect.objectContaining({
        actor: 'fiona',
        at: clock.toISOString(),
        data: {
          approvalId,
          voter: 'fiona',
          roles: ['Employee', 'FinanceAdmin'],
          decision: 'approve',
          reason: 'self_approval',
          policyIds: ['airlock.self_approval'],
          detail: 'The requester can never approve their own action.',
          planHash: hash,
          at: clock.toISOString(),
        },
      }),
    ]);
    expect(JSON.stringify(events)).not.toContain('my own, fine'); // free text from the refused caller is not kept
    const receipt = await receiptOf(action.id);
    expect(receipt.approvals[0]!.refusedVotes).toEqual([
      {
        voter: 'fiona',
        roles: ['Employee', 'FinanceAdmin'],
        decision: 'approve',
        reason: 'self_approval',
        policyIds: ['airlock.self_approval'],
        detail: 'The requester can never approve their own action.',
        planHash: hash,
        at: clock.toISOString(),
      },
    ]);
    expect(receipt.events.chain.map((e) => e.type)).toContain('approval.vote_refused');
    expect(renderTimeline(receipt)).toContain('REFUSED approve by fiona [Employee, FinanceAdmin]: self_approval (airlock.self_approval)');

    // `airlock audit show` on a vault holding this receipt prints the refusal in the timeline.
    const dir = await mkdtemp(join(tmpdir(), 'airlock-refused-'));
    try {
      const bytes = serializeReceipt(receipt);
      await new FileAuditStore(dir).putIfAbsent(receiptKey(action), bytes, createHash('sha256').update(bytes).digest('hex'));
      const out: string[] = [];
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
      try {
        expect(await auditCli(['show', action.id, '--dir', dir])).toBe(0);
      } finally {
        vi.restoreAllMocks();
      }
      expect(out.join('')).toMatch(new RegExp(`${clock.toISOString()}\\s+REFUSED approve by fiona \\[Employee, FinanceAdmin\\]: self_approval \\(airlock\\.self_approval\\) — The requester can never approve their own action\\.`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an approver no policy permits: 403, recorded as ineligible (airlock.no_permit when Cedar names no policy)', async () => {
    const { action, approvalId, planHash: hash } = await awaitingApproval(alice, bookFlight);
    expect((await vote(bob, approvalId, { decision: 'approve', planHash: hash })).status).toBe(403);
    expect((await vote(fiona, approvalId, { decision: 'reject', planHash: hash })).status).toBe(403);
    const receipt = await receiptOf(action.id);
    expect(receipt.approvals[0]!.refusedVotes).toEqual([
      expect.objectContaining({ voter: 'bob', roles: ['Employee'], decision: 'approve', reason: 'ineligible', policyIds: ['airlock.no_permit'], detail: expect.stringMatching(/No policy lets bob approve/) }),
      expect.objectContaining({ voter: 'fiona', decision: 'reject', reason: 'ineligible', policyIds: ['airlock.no_permit'] }),
    ]);
  });

  it('an approver a Cedar forbid refuses: recorded with that policy id', async () => {
    const files = readPolicyDir();
    const strict = createPolicyEngine({
      ...files,
      policies: {
        ...files.policies,
        'zz-freeze.cedar':
          '// Test rule: maria is on leave and approves nothing.\n@id("test.maria-on-leave")\n@reason("maria is on leave.")\nforbid (principal == Airlock::User::"maria", action == Airlock::Action::"approve", resource);\n',
      },
    });
    deps.engine = strict;
    const { action, approvalId, planHash: hash } = await awaitingApproval(alice, bookFlight, strict);
    const res = await vote(maria, approvalId, { decision: 'approve', planHash: hash });
    expect(res).toMatchObject({ status: 403, body: { policyIds: ['test.maria-on-leave'] } });
    const receipt = await receiptOf(action.id);
    expect(receipt.approvals[0]!.refusedVotes).toEqual([expect.objectContaining({ voter: 'maria', reason: 'ineligible', policyIds: ['test.maria-on-leave'], detail: 'maria is on leave.' })]);
  });

  it('the grantee of an IAM grant: 403, recorded as grantee', async () => {
    const { action, approvalId, planHash: hash } = await awaitingApproval(alice, grantToSam);
    expect((await vote(sam, approvalId, { decision: 'approve', planHash: hash })).status).toBe(403);
    const receipt = await receiptOf(action.id);
    expect(receipt.approvals[0]!.refusedVotes).toEqual([
      expect.objectContaining({ voter: 'sam', roles: ['Employee', 'SecurityAdmin'], reason: 'grantee', policyIds: ['airlock.grantee_approval'] }),
    ]);
  });

  it('a stale plan hash: 409, recorded with the hash the voter sent', async () => {
    const { action, approvalId } = await awaitingApproval(alice, bookFlight);
    const stale = 'a'.repeat(64);
    expect((await vote(maria, approvalId, { decision: 'approve', planHash: stale })).body).toMatchObject({ status: 409, type: ProblemType.planMismatch });
    expect(await approvals.listVotes(approvalId)).toHaveLength(0);
    const receipt = await receiptOf(action.id);
    expect(receipt.approvals[0]!.votes).toEqual([]);
    expect(receipt.approvals[0]!.refusedVotes).toEqual([expect.objectContaining({ voter: 'maria', reason: 'stale_plan', policyIds: ['airlock.plan_hash'], planHash: stale })]);
  });

  it('a changed vote: 409, recorded as vote_changed; the first vote stands', async () => {
    const { action, approvalId, planHash: hash } = await awaitingApproval(alice, bigPayment);
    expect((await vote(fiona, approvalId, { decision: 'approve', planHash: hash })).status).toBe(200);
    expect((await vote(fiona, approvalId, { decision: 'reject', planHash: hash })).body).toMatchObject({ status: 409, type: ProblemType.voteConflict });
    const receipt = await receiptOf(action.id);
    expect(receipt.approvals[0]!.votes).toEqual([expect.objectContaining({ voter: 'fiona', decision: 'approve' })]);
    expect(receipt.approvals[0]!.refusedVotes).toEqual([expect.objectContaining({ voter: 'fiona', decision: 'reject', reason: 'vote_changed', policyIds: ['airlock.one_vote'] })]);
  });

  it('a vote after the outcome: 409, recorded as closed', async () => {
    const { action, approvalId, planHash: hash } = await awaitingApproval(alice, bigPayment);
    await vote(fiona, approvalId, { decision: 'approve', planHash: hash });
    await vote(frank, approvalId, { decision: 'approve', planHash: hash });
    expect((await approvals.getApproval(approvalId))?.status).toBe('approved');
    clock = new Date(clock.getTime() + 5_000);
    expect((await vote(fern, approvalId, { decision: 'reject', planHash: hash })).body).toMatchObject({ status: 409, type: ProblemType.approvalClosed });
    const receipt = await receiptOf(action.id);
    expect(receipt.approvals[0]).toMatchObject({ outcome: 'granted', refusedVotes: [expect.objectContaining({ voter: 'fern', decision: 'reject', reason: 'closed', policyIds: ['airlock.approval_closed'], at: clock.toISOString() })] });
  });

  it('a vote after expiry: 409, recorded before the expiry so the receipt holds both, in order', async () => {
    const { action, approvalId, planHash: hash } = await awaitingApproval(alice, bookFlight);
    clock = new Date(clock.getTime() + 3600_000 + 1);
    expect((await vote(maria, approvalId, { decision: 'approve', planHash: hash })).body).toMatchObject({ status: 409, type: ProblemType.approvalExpired });
    // Once expired, a second late voter is refused too (the approval is closed by expiry).
    expect((await vote(maria, approvalId, { decision: 'reject', planHash: hash })).status).toBe(409);
    const types = (await store.list(action.id)).map((e) => e.type).filter((t) => t.startsWith('approval.'));
    expect(types).toEqual(['approval.requested', 'approval.vote_refused', 'approval.expired']);
    const receipt = await receiptOf(action.id, 'expired');
    expect(receipt.approvals[0]).toMatchObject({
      outcome: 'expired',
      refusedVotes: [expect.objectContaining({ voter: 'maria', decision: 'approve', reason: 'expired', policyIds: ['airlock.approval_expired'] })],
    });
  });

  it('a repeated refusal is recorded once and logged again', async () => {
    const { action, approvalId, planHash: hash } = await awaitingApproval(alice, bookFlight);
    for (let i = 0; i < 5; i++) expect((await vote(bob, approvalId, { decision: 'approve', planHash: hash })).status).toBe(403);
    expect(await refusals(action.id)).toHaveLength(1);
    expect(logLines.filter((l) => l.includes('vote refused again'))).toHaveLength(4);
    // Another reason from the same voter is a new record.
    await vote(maria, approvalId, { decision: 'approve', planHash: 'b'.repeat(64) });
    expect((await refusals(action.id)).map((e) => [e.actor, e.data.reason])).toEqual([['bob', 'ineligible'], ['maria', 'stale_plan']]);
  });

  it(`records at most ${MAX_REFUSED_VOTES} refusals per approval, marks the cap, and logs the rest`, async () => {
    const { action, approvalId, planHash: hash } = await awaitingApproval(alice, bookFlight);
    const crowd = Array.from({ length: MAX_REFUSED_VOTES + 5 }, (_, i): Principal => ({ sub: `mallory-${i}`, roles: ['Employee'] }));
    for (const voter of crowd) expect((await vote(voter, approvalId, { decision: 'approve', planHash: hash })).status).toBe(403);
    const events = await refusals(action.id);
    expect(events).toHaveLength(MAX_REFUSED_VOTES);
    expect(events.at(-1)!.data.capReached).toBe(true);
    expect(logLines.filter((l) => l.includes('vote refused past the cap'))).toHaveLength(5);
    // The cap never locks out the real approver.
    expect((await vote(maria, approvalId, { decision: 'approve', planHash: hash })).status).toBe(200);
    const receipt = await receiptOf(action.id);
    expect(receipt.approvals[0]!.refusedVotes).toHaveLength(MAX_REFUSED_VOTES);
    expect(receipt.approvals[0]!.refusedVotesCapped).toBe(true);
    expect(renderTimeline(receipt)).toContain('were only logged (cap reached)');
  });

  it('after the action settled nothing is added to its chain (the receipt is final); the refusal is logged', async () => {
    const { action, approvalId, planHash: hash } = await awaitingApproval(alice, bookFlight);
    await ledgerEnv.ledger.transition(action.id, 'cancelled', { statusReason: 'test' }, clock);
    const before = (await store.list(action.id)).length;
    expect((await vote(maria, approvalId, { decision: 'approve', planHash: hash })).body).toMatchObject({ status: 409, type: ProblemType.approvalClosed });
    expect((await vote(bob, approvalId, { decision: 'approve', planHash: hash })).status).toBe(403);
    expect(await store.list(action.id)).toHaveLength(before);
    const logged = logLines.filter((l) => l.includes('vote refused after the action settled'));
    expect(logged).toHaveLength(2);
    expect(logged[1]).toContain('"voter":"bob"');
  });

  it('an action that settles while a refusal is being recorded: the refusal is on the chain and logged too (its receipt may be built without it)', async () => {
    const { action, approvalId, planHash: hash } = await awaitingApproval(alice, bookFlight);
    // The saga settles the action (and may build its receipt) just before the refusal's event is appended.
    const settling = {
      ...deps,
      events: Object.assign(Object.create(store) as typeof store, {
        appendOnce: async (...args: Parameters<typeof store.appendOnce>) => {
          await ledgerEnv.ledger.transition(action.id, 'expired', { statusReason: 'test' }, clock);
          return store.appendOnce(...args);
        },
      }),
    };
    expect(await problemOf(decideApproval(settling, { approvalId, voter: alice, decision: 'approve', planHash: hash }))).toMatchObject({ status: 403 });
    expect((await refusals(action.id)).map((e) => e.actor)).toEqual(['alice']);
    const logged = logLines.filter((l) => l.includes('vote refused as the action settled'));
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0]!)).toMatchObject({ audit: ApprovalEventTypes.voteRefused, voter: 'alice', reason: 'self_approval' });
  });

  it('a vote on an approval that does not exist is a 404, logged with the voter', async () => {
    const ghost = approvalIdFor(newActionId(clock.getTime()));
    expect((await vote(bob, ghost, { decision: 'approve', planHash: 'c'.repeat(64) })).status).toBe(404);
    expect(logLines.some((l) => l.includes('vote refused: no such approval') && l.includes(ghost) && l.includes('"voter":"bob"'))).toBe(true);
  });

  it('(property) any voters and plan hashes: never a 5xx, at most one record per voter and reason, all in the receipt', async () => {
    const people = [alice, maria, bob, fiona, sam, audrey];
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            who: fc.oneof(fc.constantFrom(...people), fc.record({ sub: fc.string({ minLength: 1, maxLength: 40 }), roles: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 4 }) })),
            decision: fc.constantFrom('approve' as const, 'reject' as const),
            stale: fc.boolean(),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        async (votes) => {
          const { action, approvalId, planHash: hash } = await awaitingApproval(alice, bookFlight);
          for (const v of votes) {
            const res = await vote(v.who, approvalId, { decision: v.decision, planHash: v.stale ? 'd'.repeat(64) : hash });
            expect(res.status).toBeLessThan(500);
          }
          const events = await refusals(action.id);
          const keys = events.map((e) => `${e.actor}|${String(e.data.reason)}`);
          expect(new Set(keys).size).toBe(keys.length);
          for (const e of events) expect(e.actor).toBe(e.data.voter);
          const receipt = await receiptOf(action.id);
          expect(receipt.approvals[0]!.refusedVotes ?? []).toHaveLength(events.length);
        },
      ),
      { numRuns: 12 },
    );
  }, 60_000);
});

// ── a quorum vote at the expiry instant ─────────────────────────────────────
// Found by the chaos storm with a 10 s approval timeout under load: the last approver's vote
// passed the expiry check a moment before expiresAt, put its vote on the chain, and the
// expiry won the `pending → expired` write before the vote's outcome write: the action ended
// expired with a quorum of approvals in its receipt. The deadline now judges both sides in one
// conditional write on the approval: a vote is accepted (and decides) only while pending and
// before expiresAt; the expiry only wins a pending approval; the loser loses whole.

/** `target` whose first call matching `when` waits, before running, until released. */
function pausing<T extends object>(target: T, when: (method: string, args: unknown[]) => boolean) {
  let reach!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((r) => (reach = r));
  const released = new Promise<void>((r) => (release = r));
  let paused = false;
  const store = new Proxy(target, {
    get(t, p) {
      const value = Reflect.get(t, p, t) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (!paused && when(String(p), args)) {
          paused = true;
          reach();
          await released;
        }
        return (value as (...a: unknown[]) => Promise<unknown>).apply(t, args);
      };
    },
  });
  return { store, reached, release };
}

/** The vote's deciding write on the approval (today one accepting write; before the fix, the outcome write after the vote). */
const decidingWrite = (method: string, args: unknown[]) => method === 'acceptVotes' || (method === 'settle' && args[1] === 'approved');

async function outcomeOf<T>(work: Promise<T>): Promise<{ ok: T } | { problem: ProblemError['problem'] }> {
  try {
    return { ok: await work };
  } catch (error) {
    const problem = approvalsProblem(error);
    if (problem) return { problem: problem.problem };
    throw error;
  }
}

const refusalsOf = async (actionId: string) =>
  (await store.list(actionId)).filter((e) => e.type === ApprovalEventTypes.voteRefused).map((e) => `${String(e.data.voter)}:${String(e.data.reason)}`);

describe('a quorum vote at the expiry instant', () => {
  it('the expiry lands between the vote\'s checks and its deciding write: the vote is refused as expired and is not in the receipt', async () => {
    const { approvalId, planHash: hash, token, action } = await awaitingApproval(alice, bookFlight);
    const expiresAt = (await approvals.getApproval(approvalId))!.expiresAt;
    clock = new Date(Date.parse(expiresAt) - 1);
    const gate = pausing(approvals, decidingWrite);
    const voting = outcomeOf(decideApproval({ ...deps, approvals: gate.store }, { approvalId, voter: maria, decision: 'approve', planHash: hash }));
    await gate.reached;
    // The vote passed every check 1 ms before the deadline; now the deadline passes and the
    // expiry (the saga's wait ending, or any late request) writes first.
    clock = new Date(Date.parse(expiresAt));
    expect(await expireApproval(deps, approvalId)).toBe(true);
    gate.release();

    const answer = await voting;
    expect(answer).toEqual({ problem: expect.objectContaining({ status: 409, type: ProblemType.approvalExpired }) });
    expect((await approvals.getApproval(approvalId))?.status).toBe('expired');
    expect(await receiptVotes(action.id)).toEqual({ outcome: 'expired', voters: [] });
    expect(await refusalsOf(action.id)).toEqual(['maria:expired']);
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'failure', token, error: 'ApprovalExpired' })]);
  });

  it('the vote\'s deciding write lands first, just before the deadline: the expiry finds nothing to expire and the approval is granted', async () => {
    const { approvalId, planHash: hash, token, action } = await awaitingApproval(alice, bookFlight);
    const expiresAt = (await approvals.getApproval(approvalId))!.expiresAt;
    clock = new Date(Date.parse(expiresAt) - 1);
    expect(await decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash })).toMatchObject({ status: 'approved', recorded: true });
    clock = new Date(Date.parse(expiresAt));
    expect(await expireApproval(deps, approvalId)).toBe(false);
    expect(await receiptVotes(action.id)).toEqual({ outcome: 'granted', voters: ['maria:approve'] });
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'success', token })]);
  });

  it('the deadline passes between casting the vote and the accepting write: the write judges it late, even with nobody else expiring the approval', async () => {
    const { approvalId, planHash: hash, token, action } = await awaitingApproval(alice, bookFlight);
    const expiresAt = (await approvals.getApproval(approvalId))!.expiresAt;
    clock = new Date(Date.parse(expiresAt) - 1);
    // Paused as the vote's request reads the approval back after casting its vote.
    let cast = false;
    const gate = pausing(approvals, (method) => {
      if (method === 'putVote') cast = true;
      return cast && method !== 'putVote';
    });
    const voting = outcomeOf(decideApproval({ ...deps, approvals: gate.store }, { approvalId, voter: maria, decision: 'approve', planHash: hash }));
    await gate.reached;
    clock = new Date(Date.parse(expiresAt));
    gate.release();

    expect(await voting).toEqual({ problem: expect.objectContaining({ status: 409, type: ProblemType.approvalExpired }) });
    expect((await approvals.getApproval(approvalId))?.status).toBe('expired');
    expect(await receiptVotes(action.id)).toEqual({ outcome: 'expired', voters: [] });
    expect(await refusalsOf(action.id)).toEqual(['maria:expired']);
    expect(callbacks.calls).toEqual([expect.objectContaining({ kind: 'failure', token, error: 'ApprovalExpired' })]);
    // The cast vote counts for nothing: a retried click is refused the same way, and nothing shows it as a vote.
    expect(await outcomeOf(decideApproval(deps, { approvalId, voter: maria, decision: 'approve', planHash: hash }))).toEqual({
      problem: expect.objectContaining({ status: 409 }),
    });
    expect((await getApprovalPreview(deps, maria, approvalId)).votes).toEqual([]);
  });

  it('(property) any interleaving of racing votes, the deadline passing and the expiry: outcome and receipt agree, no quorum ends expired, no vote after the deadline counts', async () => {
    const voters = [fiona, frank, fern];
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.subarray(voters, { minLength: 1 }),
        fc.array(fc.constantFrom<'approve' | 'reject'>('approve', 'approve', 'reject'), { minLength: 3, maxLength: 3 }),
        fc.boolean(),
        fc.nat({ max: 48 }),
        async (s, who, decisions, doubleClick, deadlineAfter) => {
          callbacks.calls = [];
          const { approvalId, planHash: hash, action } = await awaitingApproval(alice, bigPayment);
          const expiresAt = Date.parse((await approvals.getApproval(approvalId))!.expiresAt);
          clock = new Date(expiresAt - 1000);
          // Every ledger call waits for the scheduler, then runs alone: the scheduler picks the
          // order of the reads and conditional writes of every request. The deadline passes
          // before the `deadlineAfter`-th of them, and the expiry starts racing the votes then.
          let queue: Promise<unknown> = Promise.resolve();
          let calls = 0;
          let expiry: Promise<boolean> | undefined;
          const passDeadline = () => {
            clock = new Date(expiresAt);
            expiry = expireApproval(raced, approvalId);
          };
          const scheduled = <T extends object>(target: T): T =>
            new Proxy(target, {
              get(t, p) {
                const value = Reflect.get(t, p, t) as unknown;
                if (typeof value !== 'function') return value;
                return async (...args: unknown[]) => {
                  await s.schedule(Promise.resolve(), String(p));
                  if (++calls === deadlineAfter) passDeadline();
                  const run = queue.then(() => (value as (...a: unknown[]) => Promise<unknown>).apply(t, args));
                  queue = run.catch(() => undefined);
                  return run;
                };
              },
            });
          const raced: ApprovalsDeps = { ...deps, approvals: scheduled(approvals), events: scheduled(store) };
          const requests = [...who, ...(doubleClick ? [who[0]!] : [])].map((voter, i) =>
            outcomeOf(decideApproval(raced, { approvalId, voter, decision: decisions[voters.indexOf(voter)] ?? 'approve', planHash: hash })).then((r) => ({ voter: voter.sub, i, r })),
          );
          const answers = await s.waitFor(Promise.all(requests));
          if (expiry) await s.waitFor(expiry);
          // Whatever is still pending after its deadline is expired by the saga's wait.
          clock = new Date(expiresAt);
          await expireApproval(deps, approvalId);

          const approval = (await approvals.getApproval(approvalId))!;
          const receipt = await receiptVotes(action.id);
          const expected = { approved: 'granted', rejected: 'rejected', expired: 'expired' } as Record<string, string>;
          expect(receipt.outcome).toBe(expected[approval.status]);
          // No quorum (and no rejection) in a receipt that says expired; a granted one proves its quorum.
          const approvers = new Set(receipt.voters.filter((v) => v.endsWith(':approve')).map((v) => v.split(':')[0]));
          const rejecters = new Set(receipt.voters.filter((v) => v.endsWith(':reject')).map((v) => v.split(':')[0]));
          if (receipt.outcome === 'expired') expect(approvers.size < approval.quorum && rejecters.size === 0).toBe(true);
          if (receipt.outcome === 'granted') expect(approvers.size).toBeGreaterThanOrEqual(approval.quorum);
          if (receipt.outcome === 'rejected') expect(rejecters.size).toBeGreaterThan(0);
          // The receipt holds exactly the votes the approval accepted, none at or after the deadline.
          expect(receipt.voters).toEqual((approval.accepted ?? []).map((v) => `${v.voter}:${v.decision}`).sort());
          for (const v of approval.accepted ?? []) expect(Date.parse(v.acceptedAt)).toBeLessThan(expiresAt);
          // Exactly one answer, the one the ledger holds.
          expect(callbacks.calls).toHaveLength(1);
          expect(callbacks.calls[0]).toMatchObject(approval.status === 'approved' ? { kind: 'success' } : { kind: 'failure' });
          // Every voter was told the truth: a vote answered as recorded was accepted; one the expiry beat is refused and audited.
          const refused = await refusalsOf(action.id);
          for (const { voter, r } of answers) {
            if ('ok' in r) expect(approvers.has(voter) || rejecters.has(voter)).toBe(true);
            else if (r.problem.type === ProblemType.approvalExpired) expect(refused).toContain(`${voter}:expired`);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
