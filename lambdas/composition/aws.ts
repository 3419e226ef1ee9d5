import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { DynamoLedger } from '../adapters/aws/dynamo-ledger';
import { DynamoApprovalStore } from '../adapters/aws/dynamo-approvals';
import { DynamoSagaStore } from '../adapters/aws/dynamo-saga-store';
import { SecretsManagerSecrets } from '../adapters/aws/secrets-manager';
import { StepFunctionsWorkflow } from '../adapters/aws/sfn-workflow';
import { CursorCodec } from '../shared/cursor';
import { deciderFor } from '../policy/decider';
import { DEFAULT_GRANT_TTL_SECONDS, GrantKeyring, MAX_GRANT_TTL_SECONDS } from '../steps/grants';
import { defaultIntakeConfig, type Decider, type IntakeConfig } from '../intake/intake';
import { logger } from '../shared/logger';
import type { PolicyEngine } from '../policy/index';

/**
 * The Cedar engine, loaded on first use. Never imported statically here: the connector and
 * receipts functions share this module but ship without the Cedar wasm, which loads at import.
 */
async function policyEngine(): Promise<PolicyEngine> {
  const { loadPolicyEngine } = await import('../policy/index');
  return loadPolicyEngine();
}
import type { RunStepDeps } from '../steps/run-step';
import type { SagaDeps } from '../saga/tasks';
import { utcDay, type SpendStore, type StepStore } from '../ports/steps';
import type { ActionStore, IdempotencyStore } from '../ports/ledger';
import type { SecretsPort } from '../ports/secrets';
import type { WorkflowStarter } from '../ports/workflow';

/**
 * The composition root: which adapters each function uses. In AWS they are built from the
 * environment on first use (validated once; a missing variable fails loudly). The local
 * runtime installs its own (dynalite, files, the local ASL runner) before serving requests.
 *
 * Each function family has a slot; `provide` installs one, `slot` reads it or builds the
 * AWS one. New families add a slot in their own module without touching this one.
 */
const installed = new Map<string, unknown>();
const built = new Map<string, Promise<unknown>>();

/** Installs the adapters of one slot (local runtime, tests). */
export function provide<T>(name: string, value: T): void {
  installed.set(name, value);
  built.delete(name);
}

/** The installed adapters of a slot, or the AWS ones built once from the environment. */
export function slot<T>(name: string, fromEnvironment: () => Promise<T>): Promise<T> {
  if (installed.has(name)) return Promise.resolve(installed.get(name) as T);
  let value = built.get(name) as Promise<T> | undefined;
  if (!value) {
    value = fromEnvironment();
    built.set(name, value);
    value.catch(() => built.delete(name));
  }
  return value;
}

/** Forgets every installed and built slot (tests, local runtime shutdown). */
export function resetRuntime(): void {
  installed.clear();
  built.clear();
}

// ── shared AWS clients: one per cold start ─────────────────────────────────
let dynamo: DynamoDBClient | undefined;
let secrets: SecretsPort | undefined;
const dynamoClient = () => (dynamo ??= new DynamoDBClient({}));
const secretsPort = () => (secrets ??= new SecretsManagerSecrets({ client: new SecretsManagerClient({}) }));

const TableEnv = z.object({ LEDGER_TABLE: z.string().min(1) });

// ── page cursors (intake and approvals) ────────────────────────────────────
const CursorEnv = z.object({ CURSOR_KEY_SECRET: z.string().min(1) });

/** Installs the cursor codec (local runtime, tests). */
export function installCursorCodec(codec: CursorCodec): void {
  provide('cursors', codec);
}

/**
 * The codec of page cursors. In AWS its key is the `CURSOR_KEY_SECRET` secret, read on the
 * first listing (not at cold start: most requests never page).
 */
export function cursorCodec(): Promise<CursorCodec> {
  return slot('cursors', async () => new CursorCodec(await secretsPort().getSecret(CursorEnv.parse(process.env).CURSOR_KEY_SECRET)));
}

/** A Decider whose daily spend comes from the ledger. */
export function ledgerDecider(engine: PolicyEngine, spend: SpendStore): Decider {
  return deciderFor(engine, (sub, now) => spend.dailySpend(sub, utcDay(now)));
}

// ── intake ────────────────────────────────────────────────────────────────
export interface Runtime {
  actions: ActionStore;
  steps?: StepStore;
  idempotency: IdempotencyStore;
  workflow: WorkflowStarter;
  decider: Decider;
  intake: IntakeConfig;
}

const IntakeEnv = TableEnv.extend({
  STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  IDEMPOTENCY_RETENTION_HOURS: z.coerce.number().int().min(24).default(24),
});

/** Installs the intake adapters. */
export function installRuntime(runtime: Runtime): void {
  provide('intake', runtime);
}

/** The intake function's adapters. */
export function runtime(): Promise<Runtime> {
  return slot('intake', async () => {
    const env = IntakeEnv.parse(process.env);
    const ledger = new DynamoLedger({ client: dynamoClient(), tableName: env.LEDGER_TABLE });
    const store = new DynamoSagaStore({ client: dynamoClient(), tableName: env.LEDGER_TABLE });
    return {
      actions: ledger,
      steps: store,
      idempotency: ledger,
      workflow: new StepFunctionsWorkflow({ stateMachineArn: env.STATE_MACHINE_ARN, client: new SFNClient({}) }),
      decider: ledgerDecider(await policyEngine(), store),
      intake: { ...defaultIntakeConfig, idempotencyRetentionMs: env.IDEMPOTENCY_RETENTION_HOURS * 3_600_000 },
    };
  });
}

// ── the saga's policy function ─────────────────────────────────────────────
const SagaEnv = TableEnv.extend({
  /** `{ "<connector>": "<function arn>" }`, set by the stack. */
  CONNECTOR_FUNCTIONS: z.string().transform((s, ctx) => {
    try {
      return z.record(z.string(), z.string().min(1)).parse(JSON.parse(s));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'CONNECTOR_FUNCTIONS must be a JSON object of connector → function ARN' });
      return z.NEVER;
    }
  }),
  GRANT_TTL_SECONDS: z.coerce.number().int().min(30).max(MAX_GRANT_TTL_SECONDS).default(DEFAULT_GRANT_TTL_SECONDS),
});

/** Installs the saga (policy function) adapters. */
export function installSagaRuntime(deps: SagaDeps): void {
  provide('saga', deps);
}

/** The policy function's adapters. */
export function sagaRuntime(): Promise<SagaDeps> {
  return slot('saga', async () => {
    const env = SagaEnv.parse(process.env);
    const ledger = new DynamoLedger({ client: dynamoClient(), tableName: env.LEDGER_TABLE });
    const store = new DynamoSagaStore({ client: dynamoClient(), tableName: env.LEDGER_TABLE });
    return {
      actions: ledger,
      steps: store,
      events: store,
      spend: store,
      approvals: new DynamoApprovalStore({ client: dynamoClient(), tableName: env.LEDGER_TABLE }),
      decider: ledgerDecider(await policyEngine(), store),
      keyring: new GrantKeyring(secretsPort()),
      connectorFunction: (connector: string) => {
        const arn = env.CONNECTOR_FUNCTIONS[connector];
        if (!arn) throw new Error(`No function for connector ${connector}`);
        return arn;
      },
      grantTtlSeconds: env.GRANT_TTL_SECONDS,
      now: () => new Date(),
      logger,
    };
  });
}

// ── connector functions ────────────────────────────────────────────────────
const ConnectorEnv = TableEnv.extend({
  CONNECTOR_NAME: z.string().regex(/^[a-z][a-z0-9_]*$/),
  /** The vendor's base URL; the connector's default when absent. */
  VENDOR_BASE_URL: z.string().url().optional(),
  VENDOR_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(8_000),
});

/** Installs the connector functions' adapters (locally one process serves every connector). */
export function installConnectorRuntime(deps: (connector: string) => RunStepDeps): void {
  provide('connector', deps);
}

/** The adapters of the connector function serving `connector` (CONNECTOR_NAME in AWS). */
export async function connectorRuntime(connector?: string): Promise<RunStepDeps> {
  const factory = await slot<(connector: string) => RunStepDeps>('connector', async () => {
    const env = ConnectorEnv.parse(process.env);
    const store = new DynamoSagaStore({ client: dynamoClient(), tableName: env.LEDGER_TABLE });
    const deps: RunStepDeps = {
      connector: env.CONNECTOR_NAME,
      steps: store,
      keyring: new GrantKeyring(secretsPort()),
      secrets: secretsPort(),
      baseUrls: env.VENDOR_BASE_URL ? { [env.CONNECTOR_NAME]: env.VENDOR_BASE_URL } : {},
      logger,
      now: () => new Date(),
      timeoutMs: env.VENDOR_TIMEOUT_MS,
    };
    return (name: string) => {
      if (name !== env.CONNECTOR_NAME) throw new Error(`This function serves ${env.CONNECTOR_NAME}, not ${name}`);
      return deps;
    };
  });
  return factory(connector ?? process.env.CONNECTOR_NAME ?? '');
}

