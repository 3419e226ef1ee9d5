import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoApprovalStore } from '../adapters/aws/dynamo-approvals';
import { DynamoLedger } from '../adapters/aws/dynamo-ledger';
import { DynamoSagaStore } from '../adapters/aws/dynamo-saga-store';
import { EventBridgePublisher } from '../adapters/aws/eventbridge-publisher';
import { JwksTokenVerifier } from '../adapters/aws/jwks-token-verifier';
import { S3AuditStore } from '../adapters/aws/s3-audit-store';
import type { SecretRotationDeps } from '../adapters/aws/secret-rotation';
import { SecretsManagerSecrets } from '../adapters/aws/secrets-manager';
import { StepFunctionsCallbacks } from '../adapters/aws/sfn-callbacks';
import { StepFunctionsWorkflow } from '../adapters/aws/sfn-workflow';
import { defaultIntakeConfig } from '../intake/intake';
import { logger, tracer } from '../middleware/powertools';
import type { PolicyEngine } from '../policy/index';
import { spendAwareDecider } from '../policy/decider';
import { CursorCodec } from '../shared/cursor';
import { GrantKeyring } from '../steps/grants';
import type { RunStepDeps } from '../steps/run-step';
import { toolRegistry } from '../tools/registry';
import {
  once,
  type ApprovalsFunctionDeps,
  type IntakeFunctionDeps,
  type Lazy,
  type ReceiptsFunctionDeps,
  type SagaFunctionDeps,
  type StepsFunctionDeps,
} from './deps';
import { ApprovalsEnv, EnvNames as N, IntakeEnv, readEnv, ReceiptsEnv, SagaEnv, StepsEnv } from './env';

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

/** One traced SDK client per process, made when a function first needs it. */
const client = <T extends object>(make: () => T) => once(() => tracer.captureAWSv3Client(make()));
const dynamo = /* @__PURE__ */ client(() => new DynamoDBClient({}));
const secretsManager = /* @__PURE__ */ client(() => new SecretsManagerClient({}));
const stepFunctions = /* @__PURE__ */ client(() => new SFNClient({}));
const eventBridge = /* @__PURE__ */ client(() => new EventBridgeClient({}));
const s3 = /* @__PURE__ */ client(() => new S3Client({}));
const secrets = /* @__PURE__ */ once(async () => new SecretsManagerSecrets({ client: await secretsManager() }));

/**
 * The Cedar engine, loaded on first use. Never imported statically: the connector and receipts
 * bundles include this module but ship without Cedar's wasm, which loads at import.
 */
async function policyEngine(dir: string | undefined): Promise<PolicyEngine> {
  const { loadPolicyEngine } = await import('../policy/index');
  return loadPolicyEngine(dir);
}

/** Page cursors, keyed by the secret the stack names; read on the first listing, not at cold start. */
function cursorCodec(secretName: string): Lazy<CursorCodec> {
  return once(async () => new CursorCodec(await (await secrets()).getSecret(secretName)));
}

/** The intake function's dependencies. */
export const intakeDeps: Lazy<IntakeFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(IntakeEnv);
  const db = await dynamo();
  const ledger = new DynamoLedger({ client: db, tableName: env[N.ledgerTable] });
  const store = new DynamoSagaStore({ client: db, tableName: env[N.ledgerTable] });
  return {
    actions: ledger,
    steps: store,
    idempotency: ledger,
    workflow: new StepFunctionsWorkflow({ stateMachineArn: env[N.stateMachineArn], client: await stepFunctions() }),
    decider: spendAwareDecider(await policyEngine(env[N.policyDir]), store, toolRegistry),
    tools: toolRegistry,
    intake: { ...defaultIntakeConfig, idempotencyRetentionMs: env[N.idempotencyRetentionHours] * 3_600_000 },
    cursors: cursorCodec(env[N.cursorKeySecret]),
    tokens: new JwksTokenVerifier({ issuer: env[N.jwtIssuer], audience: env[N.jwtAudience] }),
  };
});

/** The saga function's dependencies. */
export const sagaDeps: Lazy<SagaFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(SagaEnv);
  const db = await dynamo();
  const ledger = new DynamoLedger({ client: db, tableName: env[N.ledgerTable] });
  const store = new DynamoSagaStore({ client: db, tableName: env[N.ledgerTable] });
  const functions = env[N.connectorFunctions];
  const engine = await policyEngine(env[N.policyDir]);
  return {
    actions: ledger,
    steps: store,
    events: store,
    spend: store,
    approvals: new DynamoApprovalStore({ client: db, tableName: env[N.ledgerTable] }),
    decider: spendAwareDecider(engine, store, toolRegistry),
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
  };
});

/** The approvals function's dependencies. */
export const approvalsDeps: Lazy<ApprovalsFunctionDeps> = /* @__PURE__ */ once(async () => {
  const env = readEnv(ApprovalsEnv);
  const db = await dynamo();
  const store = new DynamoSagaStore({ client: db, tableName: env[N.ledgerTable] });
  return {
    actions: new DynamoLedger({ client: db, tableName: env[N.ledgerTable] }),
    approvals: new DynamoApprovalStore({ client: db, tableName: env[N.ledgerTable] }),
    events: store,
    callbacks: new StepFunctionsCallbacks({ client: await stepFunctions() }),
    publisher: new EventBridgePublisher({ eventBusName: env[N.approvalEventBus], client: await eventBridge() }),
    engine: await policyEngine(env[N.policyDir]),
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
  const deps: RunStepDeps = {
    connector: served,
    steps: new DynamoSagaStore({ client: await dynamo(), tableName: env[N.ledgerTable] }),
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
  return {
    deps: {
      actions: new DynamoLedger({ client: db, tableName: env[N.ledgerTable] }),
      steps: store,
      events: store,
      store: new S3AuditStore({ bucket: env[N.auditBucket], retentionDays: env[N.auditRetentionDays], client: await s3() }),
      secrets: await secrets(),
      tools: toolRegistry,
      logger,
      now: () => new Date(),
      // A minute's margin covers PUTs in flight while the hourly digest lists the bucket.
      digests: { lookbackDays: env[N.auditLookbackDays], settleMs: 60_000, wholeSeconds: true, intervalSeconds: env[N.auditDigestIntervalSeconds] },
    },
  };
});

/** The grant-key rotation function's dependencies. */
export const keysDeps: Lazy<SecretRotationDeps> = /* @__PURE__ */ once(async () => ({ client: await secretsManager(), now: () => new Date(), logger }));
