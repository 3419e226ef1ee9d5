import { InvalidToken, SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient, TaskDoesNotExist, TaskTimedOut } from '@aws-sdk/client-sfn';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBridgePublisher } from '../../lambdas/adapters/aws/eventbridge-publisher';
import { StepFunctionsCallbacks } from '../../lambdas/adapters/aws/sfn-callbacks';
import { toolRegistry } from '../../lambdas/tools/registry';
import type { ActionRecord } from '../../lambdas/actions/action';
import { decideApproval, type ApprovalsDeps } from '../../lambdas/approvals/approvals';
import { createLogger } from '../../lambdas/middleware/powertools';
import type { PolicyEngine } from '../../lambdas/policy/index';
import { ProblemError, ProblemType } from '../../lambdas/shared/problem';
import { approvalsProblem } from '../../lambdas/approvals/http';
import { ApprovalNoLongerWaitingError } from '../../lambdas/approvals/errors';
import type { AcceptVotes, ApprovalRecord, ApprovalStatus, ApprovalStore, VoteRecord } from '../../lambdas/ports/approvals';
import { EventPublishError } from '../../lambdas/ports/events';
import type { ActionStore } from '../../lambdas/ports/ledger';
import type { AuditEvent, EventLog } from '../../lambdas/ports/steps';
import { TaskTokenInvalidError } from '../../lambdas/ports/task-callbacks';

const sfn = mockClient(SFNClient);
const events = mockClient(EventBridgeClient);
afterEach(() => {
  sfn.reset();
  events.reset();
});

const TOKEN = 'AQB8AAAAKgAAAAMAAAAAAAAAAf+token';
const callbacks = () => new StepFunctionsCallbacks({ client: new SFNClient({ region: 'us-east-1' }) });
const meta = { $metadata: {} };

describe('StepFunctionsCallbacks', () => {
  it('sends SendTaskSuccess with the token and the JSON output', async () => {
    // Prepare
    sfn.on(SendTaskSuccessCommand).resolves({});
    // Act
    await callbacks().sendTaskSuccess(TOKEN, { approvalId: 'apr_1', votes: [{ voter: 'maria' }] });
    // Assess
    const calls = sfn.commandCalls(SendTaskSuccessCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input).toEqual({ taskToken: TOKEN, output: '{"approvalId":"apr_1","votes":[{"voter":"maria"}]}' });
  });

  it('sends SendTaskFailure with the ASL error name and the cause, within the API limits', async () => {
    sfn.on(SendTaskFailureCommand).resolves({});
    await callbacks().sendTaskFailure(TOKEN, 'ApprovalRejected', 'vendor not under contract');
    await callbacks().sendTaskFailure(TOKEN, 'ApprovalRejected', 'x'.repeat(40_000));
    const calls = sfn.commandCalls(SendTaskFailureCommand);
    expect(calls[0]!.args[0].input).toEqual({ taskToken: TOKEN, error: 'ApprovalRejected', cause: 'vendor not under contract' });
    expect(calls[1]!.args[0].input.cause).toHaveLength(32_768);
  });

  it.each([
    ['TaskTimedOut', new TaskTimedOut({ message: 'Task Timed Out', ...meta }), 'timed_out'],
    ['InvalidToken', new InvalidToken({ message: 'Invalid token', ...meta }), 'invalid'],
    ['TaskDoesNotExist', new TaskDoesNotExist({ message: 'no such task', ...meta }), 'gone'],
  ] as const)('maps %s to TaskTokenInvalidError', async (_name, sdkError, reason) => {
    sfn.on(SendTaskSuccessCommand).rejects(sdkError);
    sfn.on(SendTaskFailureCommand).rejects(sdkError);
    const success = callbacks().sendTaskSuccess(TOKEN, {});
    await expect(success).rejects.toBeInstanceOf(TaskTokenInvalidError);
    await expect(success).rejects.toMatchObject({ reason, cause: sdkError });
    await expect(callbacks().sendTaskFailure(TOKEN, 'ApprovalRejected', 'no')).rejects.toMatchObject({ name: 'TaskTokenInvalidError', reason });
  });

  it('passes other errors through unchanged (they are retried, not turned into 409)', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    sfn.on(SendTaskSuccessCommand).rejects(throttled);
    await expect(callbacks().sendTaskSuccess(TOKEN, {})).rejects.toBe(throttled);
  });
});

// ── the 409 through the decision path, with in-memory stores ─────────────────
class MemoryApprovals implements ApprovalStore {
  records = new Map<string, ApprovalRecord>();
  tokens = new Map<string, string>();
  votes = new Map<string, VoteRecord>();
  async createApproval(r: ApprovalRecord, t: string) {
    if (this.records.has(r.id)) return 'exists' as const;
    this.records.set(r.id, { ...r });
    this.tokens.set(r.id, t);
    return 'created' as const;
  }
  async getApproval(id: string) {
    const r = this.records.get(id);
    return r ? { ...r } : undefined;
  }
  async getTaskToken(id: string) {
    return this.tokens.get(id);
  }
  async replaceTaskToken(id: string, t: string) {
    this.tokens.set(id, t);
  }
  async putVote(v: VoteRecord) {
    const key = `${v.approvalId}|${v.voter}`;
    const existing = this.votes.get(key);
    if (existing) return { outcome: 'exists' as const, vote: existing };
    this.votes.set(key, v);
    return { outcome: 'recorded' as const };
  }
  async getVote(id: string, voter: string) {
    return this.votes.get(`${id}|${voter}`);
  }
  async listVotes(id: string) {
    return [...this.votes.values()].filter((v) => v.approvalId === id);
  }
  async settle(id: string, to: Exclude<ApprovalStatus, 'pending'>, outcome: { by: string; reason: string }, now: Date) {
    const r = this.records.get(id);
    if (!r || r.status !== 'pending') return false;
    this.records.set(id, { ...r, status: to, outcome: { ...outcome, at: now.toISOString() } });
    return true;
  }
  async acceptVotes(id: string, change: AcceptVotes, now: Date) {
    const r = this.records.get(id);
    if (!r || r.status !== 'pending' || (r.revision ?? 0) !== change.revision || Date.parse(r.expiresAt) <= now.getTime()) return false;
    const settled = change.settle ? { status: change.settle.to, outcome: { ...change.settle.outcome, at: now.toISOString() } } : {};
    this.records.set(id, { ...r, accepted: change.accepted, revision: change.revision + 1, ...settled });
    return true;
  }
  async claimRefusal() {
    return { outcome: 'recorded' as const, count: 1 };
  }
  async markAnswered(id: string, now: Date) {
    const r = this.records.get(id)!;
    this.records.set(id, { ...r, answeredAt: now.toISOString() });
  }
  async listApprovals() {
    return { items: [...this.records.values()] };
  }
}

describe('a dead task token through the decision path', () => {
  it.each([
    ['TaskTimedOut', new TaskTimedOut({ message: 'Task Timed Out', ...meta })],
    ['InvalidToken', new InvalidToken({ message: 'Invalid token', ...meta })],
  ])('%s → 409 approval-closed problem without the token', async (_name, sdkError) => {
    // Prepare: a pending approval of one manager, and Step Functions that no longer knows the token.
    sfn.on(SendTaskSuccessCommand).rejects(sdkError);
    const now = new Date('2026-03-02T09:00:00Z');
    const action = {
      id: 'act_01JNZ0000000000000000000AB',
      principal: { sub: 'alice', roles: ['Employee'], manager: 'maria' },
      actor: { name: 'agent' },
      envelope: { tool: 'echo.say', arguments: { message: 'hi' }, agent: { name: 'agent' } },
      kind: 'single',
      mode: 'execute',
      planHash: 'f'.repeat(64),
      status: 'awaiting_approval',
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      version: 1,
    } as ActionRecord;
    const approvals = new MemoryApprovals();
    const approvalId = 'apr_01JNZ0000000000000000000AB';
    await approvals.createApproval(
      { id: approvalId, actionId: action.id, status: 'pending', planHash: action.planHash, quorum: 1, approverRule: 'manager', requester: 'alice', grantees: [], createdAt: now.toISOString(), updatedAt: now.toISOString(), expiresAt: new Date(now.getTime() + 3600_000).toISOString() },
      TOKEN,
    );
    const log: AuditEvent[] = [];
    const lines: string[] = [];
    const deps: ApprovalsDeps = {
      actions: { getAction: async () => action } as unknown as ActionStore,
      approvals,
      tools: toolRegistry,
      events: {
        append: async (actionId, e) => {
          const ev = { actionId, seq: log.length + 1, type: e.type, at: now.toISOString(), actor: e.actor, data: e.data ?? {}, hash: '', prevHash: '' };
          log.push(ev);
          return ev;
        },
        appendOnce: async (actionId, e, same) => {
          const found = log.find(same);
          if (found) return { event: found, appended: false };
          const ev = { actionId, seq: log.length + 1, type: e.type, at: now.toISOString(), actor: e.actor, data: e.data ?? {}, hash: '', prevHash: '' };
          log.push(ev);
          return { event: ev, appended: true };
        },
        list: async () => log,
      } satisfies EventLog,
      callbacks: callbacks(),
      publisher: { publish: async () => undefined },
      engine: { canApprove: () => ({ allowed: true, policyIds: ['test'], reasons: [] }) } as unknown as PolicyEngine,
      timeoutSeconds: 3600,
      now: () => now,
      logger: createLogger({ sink: (l) => lines.push(l) }),
    };
    // Act
    let caught: unknown;
    try {
      await decideApproval(deps, { approvalId, voter: { sub: 'maria', roles: ['Manager'] }, decision: 'approve', planHash: action.planHash });
    } catch (error) {
      caught = error;
    }
    // Assess
    // As the approvals function answers it (approvals/http.ts maps the domain error).
    const mapped = approvalsProblem(caught);
    expect(mapped).toBeInstanceOf(ProblemError);
    const problem = mapped!.problem;
    expect(problem).toMatchObject({ status: 409, type: ProblemType.approvalClosed });
    expect(mapped!.cause).toBeInstanceOf(ApprovalNoLongerWaitingError);
    expect((caught as Error).cause).toBeInstanceOf(TaskTokenInvalidError);
    expect(JSON.stringify(problem) + lines.join('')).not.toContain(TOKEN);
    expect(sfn.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input.taskToken).toBe(TOKEN);
  });
});

describe('EventBridgePublisher', () => {
  const publisher = () => new EventBridgePublisher({ eventBusName: 'airlock-bus', client: new EventBridgeClient({ region: 'us-east-1' }) });

  it('puts one entry on the named bus with source airlock and the detail as JSON', async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    await publisher().publish({ type: 'airlock.approval.requested', detail: { approvalId: 'apr_1' } });
    const input = events.commandCalls(PutEventsCommand)[0]!.args[0].input;
    expect(input.Entries).toEqual([{ EventBusName: 'airlock-bus', Source: 'airlock', DetailType: 'airlock.approval.requested', Detail: '{"approvalId":"apr_1"}' }]);
  });

  it('treats a rejected entry in a 200 response as a failure', async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }] });
    await expect(publisher().publish({ type: 'airlock.approval.requested', detail: {} })).rejects.toBeInstanceOf(EventPublishError);
  });
});
