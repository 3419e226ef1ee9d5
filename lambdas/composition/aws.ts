import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { readPathThrough } from '../saga/read-path';
import { DynamoApprovalStore } from '../adapters/aws/dynamo-approvals';
import { DynamoLedger } from '../adapters/aws/dynamo-ledger';
import { DynamoRateCounters } from '../adapters/aws/dynamo-rate-counters';
import { DynamoSagaStore } from '../adapters/aws/dynamo-saga-store';
import { DynamoGuardrailStore } from '../adapters/aws/dynamo-guardrails';
import { DynamoSpendCapStore } from '../adapters/aws/dynamo-spend-caps';
import { DynamoDelegationStore } from '../adapters/aws/dynamo-delegations';
import { JwksTokenVerifier } from '../adapters/aws/jwks-token-verifier';
import type { SecretRotationDeps } from '../adapters/aws/secret-rotation';
import { defaultIntakeConfig } from '../intake/intake';
import { logger, metrics as emfMetrics, tracer } from '../middleware/powertools';
import { AnomalyGuard } from '../guardrails/anomaly';
import { boundedMetrics, vocabularyOf } from '../observability/catalog';
import type { AuditStore } from '../ports/audit-store';
import type { EventPublisher } from '../ports/events';
import type { FunctionInvoker } from '../ports/functions';
import type { SecretsPort } from '../ports/secrets';
import type { TaskCallbacks } from '../ports/task-callbacks';
import type { WorkflowStarter } from '../ports/workflow';
import type { Metrics } from '../ports/metrics';
import type { PolicyEngine } from '../policy/index';
import { killSwitchBudget, readLimitsFile, type LoadedLimits } from '../limits/config';
import { RateLimiter } from '../limits/rate-limiter';
import { spendAwareDecider } from '../policy/decider';
import { SpendCaps } from '../spend/caps';
import { CursorCodec } from '../shared/cursor';
import { GrantKeyring } from '../steps/grants';
import type { RunStepDeps } from '../steps/run-step';
import { toolRegistry } from '../tools/registry';
import {
  functionGuardrails,
  once,
  type ApprovalGaugeFunctionDeps,
  type ApprovalsFunctionDeps,
  type DelegationExpiryFunctionDeps,
  type IntakeFunctionDeps,
  type Lazy,
  type ReceiptsFunctionDeps,
  type SagaFunctionDeps,
  type StepsFunctionDeps,
  type ReconcileFunctionDeps,
} from './deps';
import { ApprovalGaugeEnv, ApprovalsEnv, DelegationExpiryEnv, EnvNames as N, IntakeEnv, readEnv, ReceiptsEnv, ReconcileEnv, SagaEnv, StepsEnv } from './env';

/**
 * The composition root in Lambda: every function's dependencies, built from its environment
 * (validated by its schema in env.ts) once per cold start, on the first invocation. SDK
 * clients are one per process, each traced by Powertools Tracer. The local runtime composes
 * the same handlers with local adapters in local.ts; nothing here branches on where it runs.
 */

/*
 * Every function's bundle holds this module; the calls below are marked pure so the bundler
 * drops the builders (and with them the adapters and SDK clients) a function does not use:
 * a connector function ships no S3, EventBridge or Step Functions client.
 */

/**
 * One traced SDK client per process, made when a function first needs it. DynamoDB's is in
 * the bundle's entry (nearly every request reads the ledger); every other client is imported
 * on its first call with the adapter that uses it (the ports below), in a chunk of its own:
 * an import of the bundle does not compile or evaluate them, and a request that does not
 * start a workflow, invoke a function, publish an event or read a secret never loads them
 * (test/infra/bundle-cold-start.test.ts).
 */
const client = <T extends object>(make: () => T | Promise<T>) => once(async () => tracer.captureAWSv3Client(await make()));
const dynamo = /* @__PURE__ */ client(() => new DynamoDBClient({}));
// Each made by its adapter's module: `import()` of an SDK package itself would keep every
// command of it in the chunk, where the adapter's static imports keep only those it sends.
const secretsManager = /* @__PURE__ */ client(async () => (await import('../adapters/aws/secrets-manager')).secretsManagerClient());
const stepFunctions = /* @__PURE__ */ client(async () => (await import('../adapters/aws/sfn-workflow')).sfnClient());
const eventBridge = /* @__PURE__ */ client(async () => (await import('../adapters/aws/eventbridge-publisher')).eventBridgeClient());
// One attempt: a retried synchronous invoke would run the callee twice; the read path's
// fallback (the Standard saga) is what answers a failed one (lambda-invoker.ts).
const lambda = /* @__PURE__ */ client(async () => (await import('../adapters/aws/lambda-invoker')).lambdaClient());

/** Starts workflows on Step Functions; the SFN client and adapter load on the first start. */
function workflowOn(options: { stateMachineArn: string; runStateMachineArn?: string }): WorkflowStarter {
  const port = once(async () => new (await import('../adapters/aws/sfn-workflow')).StepFunctionsWorkflow({ ...options, client: await stepFunctions() }));
  return { start: async (actionId, input, kind) => (await port()).start(actionId, input, kind) };
}

/** Task-token callbacks to Step Functions; loaded on the first callback. */
function taskCallbacks(): TaskCallbacks {
  const port = once(async () => new (await import('../adapters/aws/sfn-callbacks')).StepFunctionsCallbacks({ client: await stepFunctions() }));
  return {
    sendTaskSuccess: async (taskToken, output) => (await port()).sendTaskSuccess(taskToken, output),
    sendTaskFailure: async (taskToken, error, cause) => (await port()).sendTaskFailure(taskToken, error, cause),
  };
}

/** Events on the approvals bus; loaded on the first publish. */
function eventPublisher(eventBusName: string): EventPublisher {
  const port = once(async () => new (await import('../adapters/aws/eventbridge-publisher')).EventBridgePublisher({ eventBusName, client: await eventBridge() }));
  return { publish: async (event) => (await port()).publish(event) };
}

/** A synchronous invoke's safety net when the caller names no bound (Lambda's own timeout ends the callee first). */
const INVOKE_TIMEOUT_MS = 10_000;

/** Synchronous Lambda invokes (the read path); loaded on the first invoke. */
function functionInvoker(): FunctionInvoker {
  const port = once(async () => new (await import('../adapters/aws/lambda-invoker')).LambdaInvoker({ client: await lambda(), defaultTimeoutMs: INVOKE_TIMEOUT_MS }));
  return { invoke: async (functionName, payload, options) => (await port()).invoke(functionName, payload, options) };
}

/** The S3 client, one per process, loaded with the vault (below). */
const s3 = /* @__PURE__ */ once(async () => tracer.captureAWSv3Client(new (await import('@aws-sdk/client-s3')).S3Client({})));

/**
 * The audit vault (S3, Object Lock) with its client and adapter loaded on the first call, not
 * at cold start: the S3 SDK is the largest client, and intake writes to the vault only when a
 * delegation is granted or revoked (the receipts and reconcile functions on their first write).
 */
function auditVault(bucket: string, retentionDays: number): AuditStore {
  const store = once(async () => {
    const [{ S3AuditStore }, client] = await Promise.all([import('../adapters/aws/s3-audit-store'), s3()]);
    return new S3AuditStore({ bucket, retentionDays, client });
  });
  return {
    putIfAbsent: async (key, body, sha256) => (await store()).putIfAbsent(key, body, sha256),
    get: async (key) => (await store()).get(key),
    list: async (prefix) => (await store()).list(prefix),
  };
}

/** Secrets Manager, one cache per process; the client and adapter load on the first read. */
const secrets = /* @__PURE__ */ once((): SecretsPort => {
  const port = once(async () => new (await import('../adapters/aws/secrets-manager')).SecretsManagerSecrets({ client: await secretsManager() }));
  return { getSecret: async (name) => (await port()).getSecret(name) };
});

/**
 * The Cedar engine, loaded on first use. Never imported statically: the connector and receipts
 * bundles include this module but ship without Cedar's wasm, which loads at import.
 */
async function policyEngine(dir: string | undefined): Promise<PolicyEngine> {
  const { loadPolicyEngine } = await import('../policy/index');
  return loadPolicyEngine(dir);
}

/** The limits file the stack ships beside the bundle, read and validated once per cold start. */
const limitsIn = (file: string | undefined) => (file ? readLimitsFile(file) : readLimitsFile());

/** A function's guardrails over the ledger table (its breaker and halt caches live as long as the instance). */
function guardrailsOn(db: DynamoDBClient, tableName: string, limits: LoadedLimits, actor: string, metrics: Metrics) {
  return functionGuardrails({ store: new DynamoGuardrailStore({ client: db, tableName }), tools: toolRegistry, limits, now: () => new Date(), logger, actor, metrics });
}

/** This instance's rate limiter over the ledger's window counters. */
function rateLimiter(limits: LoadedLimits, db: DynamoDBClient, tableName: string, metrics: Metrics): RateLimiter {
  return new RateLimiter({
    policies: limits.limits.rateLimits,
    killSwitch: { role: limits.limits.killSwitch.role, budget: killSwitchBudget(limits.limits) },
    counters: new DynamoRateCounters({ client: db, tableName }),
    now: () => new Date(),
    metrics,
    logger,
  });
}

/**
 * The function's metrics: Powertools EMF behind the catalog's bounds (names, units, and
 * dimension values from this deployment's tools, policies and limits only). A refused sample
 * is a bug in the emitting code: logged, never thrown.
 */
function metricsFor(limits: LoadedLimits, engine?: PolicyEngine): Metrics {
  return boundedMetrics(emfMetrics, vocabularyOf({ tools: toolRegistry, limits: limits.limits, ...(engine ? { policies: engine.policies } : {}) }), (refusal) =>
    logger.warn('metric refused by the catalog', { ...refusal }),
  );
}

/** Page cursors, keyed by the secret the stack names; read on the first listing, not at cold start. */
function cursorCodec(secretName: string): Lazy<CursorCodec> {
  return once(async () => new CursorCodec(await (await secrets()).getSecret(secretName)));
}

/** The intake function's dependencies. */
export const intakeDeps: Lazy<IntakeFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(IntakeEnv);
  const readFunction = env[N.readFunction];
  const db = await dynamo();
  const ledger = new DynamoLedger({ client: db, tableName: env[N.ledgerTable] });
  const store = new DynamoSagaStore({ client: db, tableName: env[N.ledgerTable] });
  const limits = limitsIn(env[N.limitsFile]);
  const engine = await policyEngine(env[N.policyDir]);
  const capStore = new DynamoSpendCapStore({ client: db, tableName: env[N.ledgerTable], transactions: true });
  const metrics = metricsFor(limits, engine);
  const guardrails = guardrailsOn(db, env[N.ledgerTable], limits, 'intake', metrics);
  const delegationStore = new DynamoDelegationStore({ client: db, tableName: env[N.ledgerTable] });
  const cancel = {
    actions: ledger,
    approvals: new DynamoApprovalStore({ client: db, tableName: env[N.ledgerTable] }),
    events: store,
    callbacks: taskCallbacks(),
    now: () => new Date(),
    logger,
    adminRole: limits.limits.killSwitch.role,
  };
  return {
    limits,
    metrics,
    guardrails: { halts: guardrails.halts, breakers: guardrails.breakers },
    halts: guardrails.haltDeps,
    actions: ledger,
    accessLog: ledger,
    steps: store,
    idempotency: ledger,
    workflow: workflowOn({
      stateMachineArn: env[N.stateMachineArn],
      ...(env[N.runStateMachineArn] ? { runStateMachineArn: env[N.runStateMachineArn] } : {}),
    }),
    ...(readFunction ? { readPath: readPathThrough(functionInvoker(), readFunction, INVOKE_TIMEOUT_MS) } : {}),
    decider: spendAwareDecider(engine, SpendCaps.from(limits.limits.spendCaps, engine.money), capStore, toolRegistry, limits.version),
    tools: toolRegistry,
    intake: { ...defaultIntakeConfig, idempotencyRetentionMs: env[N.idempotencyRetentionHours] * 3_600_000 },
    cursors: cursorCodec(env[N.cursorKeySecret]),
    rateLimiter: rateLimiter(limits, db, env[N.ledgerTable], metrics),
    tokens: new JwksTokenVerifier({ issuer: env[N.jwtIssuer], audience: env[N.jwtAudience] }),
    ...(env[N.consoleUrl] ? { consoleUrl: env[N.consoleUrl] } : {}),
    // Per instance, in memory (guardrails/anomaly.ts says what that means across instances).
    ...(limits.limits.anomaly
      ? { anomaly: new AnomalyGuard({ settings: limits.limits.anomaly, now: () => new Date(), halts: guardrails.haltDeps, tools: toolRegistry, money: engine.money, metrics, logger }) }
      : {}),
    cancel,
    delegations: { store: delegationStore, required: env[N.requireDelegation], tools: toolRegistry, money: engine.money, spend: capStore },
    delegationRoutes: {
      store: delegationStore,
      tools: toolRegistry,
      money: engine.money,
      vault: auditVault(env[N.auditBucket], env[N.auditRetentionDays]),
      now: () => new Date(),
      policySetVersion: engine.version,
      limitsVersion: limits.version,
      logger,
      actions: ledger,
      cancel,
    },
  };
});

/** The saga function's dependencies. */
export const sagaDeps: Lazy<SagaFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(SagaEnv);
  const receiptsFunction = env[N.receiptsFunction];
  const db = await dynamo();
  const ledger = new DynamoLedger({ client: db, tableName: env[N.ledgerTable] });
  const store = new DynamoSagaStore({ client: db, tableName: env[N.ledgerTable] });
  const functions = env[N.connectorFunctions];
  const engine = await policyEngine(env[N.policyDir]);
  const limits = limitsIn(env[N.limitsFile]);
  const caps = SpendCaps.from(limits.limits.spendCaps, engine.money);
  const capStore = new DynamoSpendCapStore({ client: db, tableName: env[N.ledgerTable], transactions: true });
  const metrics = metricsFor(limits, engine);
  const { halts, haltStore, breakers } = guardrailsOn(db, env[N.ledgerTable], limits, 'saga', metrics);
  return {
    limits,
    metrics,
    guardrails: { halts, haltStore, breakers, delegations: new DynamoDelegationStore({ client: db, tableName: env[N.ledgerTable] }) },
    actions: ledger,
    steps: store,
    events: store,
    spendCaps: { caps, store: capStore, metrics },
    approvals: new DynamoApprovalStore({ client: db, tableName: env[N.ledgerTable] }),
    decider: spendAwareDecider(engine, caps, capStore, toolRegistry, limits.version),
    keyring: new GrantKeyring(await secrets()),
    tools: toolRegistry,
    money: engine.money,
    connectorFunction: (connector: string) => {
      const arn = functions[connector];
      if (!arn) throw new Error(`No function for connector ${connector}`);
      return arn;
    },
    grantTtlSeconds: env[N.grantTtlSeconds],
    now: () => new Date(),
    logger,
    ...(receiptsFunction
      ? {
          readPath: {
            invoker: functionInvoker(),
            receiptsFunction,
            connectorTimeoutMs: env[N.readConnectorTimeoutMs],
            receiptTimeoutMs: INVOKE_TIMEOUT_MS,
          },
        }
      : {}),
  };
});

/** The approvals function's dependencies. */
export const approvalsDeps: Lazy<ApprovalsFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(ApprovalsEnv);
  const db = await dynamo();
  const store = new DynamoSagaStore({ client: db, tableName: env[N.ledgerTable] });
  const limits = limitsIn(env[N.limitsFile]);
  const engine = await policyEngine(env[N.policyDir]);
  const metrics = metricsFor(limits, engine);
  return {
    limits,
    metrics,
    rateLimiter: rateLimiter(limits, db, env[N.ledgerTable], metrics),
    halts: guardrailsOn(db, env[N.ledgerTable], limits, 'approvals', metrics).halts,
    actions: new DynamoLedger({ client: db, tableName: env[N.ledgerTable] }),
    approvals: new DynamoApprovalStore({ client: db, tableName: env[N.ledgerTable] }),
    events: store,
    callbacks: taskCallbacks(),
    publisher: eventPublisher(env[N.approvalEventBus]),
    engine,
    tools: toolRegistry,
    timeoutSeconds: env[N.approvalTimeoutSeconds],
    now: () => new Date(),
    logger,
    cursors: cursorCodec(env[N.cursorKeySecret]),
  };
});

/** A connector function's dependencies: it serves CONNECTOR_NAME and nothing else. */
export const stepsDeps: Lazy<StepsFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(StepsEnv);
  const served = env[N.connectorName];
  const vendorBaseUrl = env[N.vendorBaseUrl];
  const vault = await secrets();
  const db = await dynamo();
  const limits = limitsIn(env[N.limitsFile]);
  const metrics = metricsFor(limits);
  const deps: RunStepDeps & { metrics: Metrics } = {
    metrics,
    connector: served,
    steps: new DynamoSagaStore({ client: db, tableName: env[N.ledgerTable] }),
    breakers: guardrailsOn(db, env[N.ledgerTable], limits, `connector-${served}`, metrics).breakers,
    keyring: new GrantKeyring(vault),
    secrets: vault,
    tools: toolRegistry,
    baseUrls: vendorBaseUrl ? { [served]: vendorBaseUrl } : {},
    logger,
    now: () => new Date(),
    timeoutMs: env[N.vendorTimeoutMs],
  };
  return (connector?: string) => {
    if (connector !== undefined && connector !== served) throw new Error(`This function serves ${served}, not ${connector}`);
    return deps;
  };
});

/** The receipts function's dependencies. */
export const receiptsDeps: Lazy<ReceiptsFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(ReceiptsEnv);
  const db = await dynamo();
  const store = new DynamoSagaStore({ client: db, tableName: env[N.ledgerTable] });
  const limits = limitsIn(env[N.limitsFile]);
  const metrics = metricsFor(limits);
  return {
    rateLimiter: rateLimiter(limits, db, env[N.ledgerTable], metrics),
    deps: {
      metrics,
      actions: new DynamoLedger({ client: db, tableName: env[N.ledgerTable] }),
      steps: store,
      events: store,
      store: auditVault(env[N.auditBucket], env[N.auditRetentionDays]),
      secrets: await secrets(),
      tools: toolRegistry,
      logger,
      now: () => new Date(),
      // A minute's margin covers PUTs in flight while the hourly digest lists the bucket.
      digests: { lookbackDays: env[N.auditLookbackDays], settleMs: 60_000, wholeSeconds: true, intervalSeconds: env[N.auditDigestIntervalSeconds] },
    },
  };
});

/** The reconcile function's dependencies. */
export const reconcileDeps: Lazy<ReconcileFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(ReconcileEnv);
  const db = await dynamo();
  const sagaArn = env[N.stateMachineArn];
  const store = new DynamoSagaStore({ client: db, tableName: env[N.ledgerTable] });
  const limits = limitsIn(env[N.limitsFile]);
  const metrics = metricsFor(limits);
  return {
    limits,
    // Only the kill switch's audit trail (a refused operator run is recorded there).
    halts: new DynamoGuardrailStore({ client: db, tableName: env[N.ledgerTable] }),
    rateLimiter: rateLimiter(limits, db, env[N.ledgerTable], metrics),
    reconcile: {
      tools: toolRegistry,
      actions: new DynamoLedger({ client: db, tableName: env[N.ledgerTable] }),
      steps: store,
      index: store,
      events: store,
      vault: auditVault(env[N.auditBucket], env[N.auditRetentionDays]),
      secrets: await secrets(),
      baseUrls: env[N.vendorBaseUrls],
      logger,
      metrics,
      now: () => new Date(),
      timeoutMs: env[N.vendorTimeoutMs],
    },
    ...(sagaArn
      ? {
          resume: {
            actions: new DynamoLedger({ client: db, tableName: env[N.ledgerTable] }),
            workflow: workflowOn({ stateMachineArn: sagaArn }),
            now: () => new Date(),
            logger,
          },
        }
      : {}),
  };
});

/** The delegation expiry function's dependencies: delegations, the cancel path, and the vault for expiry receipts. */
export const delegationExpiryDeps: Lazy<DelegationExpiryFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(DelegationExpiryEnv);
  const db = await dynamo();
  const ledger = new DynamoLedger({ client: db, tableName: env[N.ledgerTable] });
  const limits = limitsIn(env[N.limitsFile]);
  return {
    store: new DynamoDelegationStore({ client: db, tableName: env[N.ledgerTable] }),
    actions: ledger,
    cancel: {
      actions: ledger,
      approvals: new DynamoApprovalStore({ client: db, tableName: env[N.ledgerTable] }),
      events: new DynamoSagaStore({ client: db, tableName: env[N.ledgerTable] }),
      callbacks: taskCallbacks(),
      now: () => new Date(),
      logger,
      adminRole: limits.limits.killSwitch.role,
    },
    vault: auditVault(env[N.auditBucket], env[N.auditRetentionDays]),
    now: () => new Date(),
    logger,
  };
});

/** The approvals gauge function's dependencies: the status index's pending partition, and EMF. */
export const approvalGaugeDeps: Lazy<ApprovalGaugeFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(ApprovalGaugeEnv);
  return {
    approvals: new DynamoApprovalStore({ client: await dynamo(), tableName: env[N.ledgerTable] }),
    metrics: metricsFor(limitsIn(env[N.limitsFile])),
    now: () => new Date(),
  };
});

/** The grant-key rotation function's dependencies. */
export const keysDeps: Lazy<SecretRotationDeps> = /* @__PURE__ */ once(async () => ({ client: await secretsManager(), now: () => new Date(), logger }));
