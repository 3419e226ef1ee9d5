import { testRateLimiter } from './rate-limits';
import { noMetrics } from '../../lambdas/ports/metrics';
import type { StoredDecision } from '../../lambdas/actions/action';
import { defaultIntakeConfig, type Decider, type IntakeDeps } from '../../lambdas/intake/intake';
import type { Principal } from '../../lambdas/shared/principal';
import type { ActionStore, IdempotencyStore } from '../../lambdas/ports/ledger';
import type { SagaInput, WorkflowStarter } from '../../lambdas/ports/workflow';
import { functionGuardrails, type IntakeFunctionDeps } from '../../lambdas/composition/deps';
import { DynamoGuardrailStore } from '../../lambdas/adapters/aws/dynamo-guardrails';
import { silentLogger } from '../../local/server';
import { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
import { DynamoLedger } from '../../lambdas/adapters/aws/dynamo-ledger';
import { DynamoApprovalStore } from '../../lambdas/adapters/aws/dynamo-approvals';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CursorCodec } from '../../lambdas/shared/cursor';
import { randomBytes } from 'node:crypto';
import { toolRegistry } from '../../lambdas/tools/registry';
import { readLimitsFile } from '../../lambdas/limits/config';
import { refuseAllTokens } from '../../lambdas/composition/local';
import { DynamoDelegationStore } from '../../lambdas/adapters/aws/dynamo-delegations';
import { MemoryAuditStore } from './memory-audit-store';

export const alice: Principal = { sub: 'alice', roles: ['employee'], manager: 'bob', department: 'sales' };
export const mallory: Principal = { sub: 'mallory', roles: ['employee'] };

export function decision(outcome: StoredDecision['outcome'], extra: Partial<StoredDecision> = {}): StoredDecision {
  return {
    outcome,
    policyIds: outcome === 'deny' ? ['test-forbid'] : ['test-permit'],
    reasons: outcome === 'deny' ? ['Tests say no.'] : [],
    quorum: outcome === 'require_approval' ? 1 : 0,
    approverRule: null,
    policySetVersion: 'test',
    evaluationMicros: 1,
    decidedAt: new Date(0).toISOString(),
    ...extra,
  };
}

/** A decider with a fixed outcome: intake's semantics are tested apart from Cedar here. */
export function fixedDecider(outcome: StoredDecision['outcome']): Decider & { calls: number } {
  const d = {
    calls: 0,
    async decide() {
      d.calls++;
      return decision(outcome);
    },
  };
  return d;
}

/** Records every start; `gate` can hold starts open to exercise in-progress races. */
export class RecordingWorkflow implements WorkflowStarter {
  readonly started: SagaInput[] = [];
  gate: Promise<void> | undefined;
  async start(_actionId: string, input: SagaInput): Promise<void> {
    if (this.gate) await this.gate;
    this.started.push(input);
  }
}

export function intakeDeps(
  store: ActionStore & IdempotencyStore,
  overrides: Partial<IntakeDeps> = {},
): IntakeDeps & { workflow: RecordingWorkflow } {
  return {
    actions: store,
    idempotency: store,
    workflow: new RecordingWorkflow(),
    decider: fixedDecider('allow'),
    tools: toolRegistry,
    config: { ...defaultIntakeConfig, syncWaitMs: 0 },
    ...overrides,
  } as IntakeDeps & { workflow: RecordingWorkflow };
}

export const echoCall = (message = 'hello') => ({
  tool: 'echo.say',
  arguments: { message },
  agent: { name: 'test-agent', model: 'gpt-test' },
});

/**
 * What the intake function gets from the composition root, over a ledger table, with a
 * recording workflow and a fixed decider: for tests of the intake handler.
 */
export function intakeFunctionDeps(
  table: { client: DynamoDBClient; tableName: string },
  overrides: Partial<IntakeFunctionDeps> = {},
): IntakeFunctionDeps {
  const ledger = new DynamoLedger(table);
  const cursors = new CursorCodec(randomBytes(32));
  const limits = readLimitsFile();
  const guardrails = functionGuardrails({
    store: new DynamoGuardrailStore(table),
    tools: toolRegistry,
    limits,
    now: () => new Date(),
    logger: silentLogger,
    actor: 'intake',
  });
  const cancel = {
    actions: ledger,
    approvals: new DynamoApprovalStore(table),
    events: new DynamoSagaStore(table),
    callbacks: { sendTaskSuccess: async () => {}, sendTaskFailure: async () => {} },
    now: () => new Date(),
    logger: silentLogger,
    adminRole: limits.limits.killSwitch.role,
  };
  const delegations = new DynamoDelegationStore(table);
  const money = { baseCurrency: 'USD', rates: { USD: 1 } };
  return {
    guardrails: { halts: guardrails.halts, breakers: guardrails.breakers },
    halts: guardrails.haltDeps,
    actions: ledger,
    accessLog: ledger,
    idempotency: ledger,
    steps: new DynamoSagaStore(table),
    workflow: new RecordingWorkflow(),
    decider: fixedDecider('allow'),
    tools: toolRegistry,
    intake: defaultIntakeConfig,
    cursors: async () => cursors,
    limits: readLimitsFile(),
    rateLimiter: testRateLimiter(table),
    metrics: noMetrics,
    tokens: refuseAllTokens,
    cancel,
    delegations: { store: delegations, required: false, tools: toolRegistry, money },
    delegationRoutes: {
      store: delegations,
      tools: toolRegistry,
      money,
      vault: new MemoryAuditStore(() => new Date()),
      now: () => new Date(),
      policySetVersion: '0'.repeat(64),
      limitsVersion: limits.version,
      actions: ledger,
      cancel,
    },
    ...overrides,
  };
}
