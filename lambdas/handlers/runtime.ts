import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { DynamoLedger } from '../adapters/aws/dynamo-ledger';
import { StepFunctionsWorkflow } from '../adapters/aws/sfn-workflow';
import { defaultIntakeConfig, type Decider, type IntakeConfig } from '../core/intake';
import type { ActionStore, IdempotencyStore } from '../ports/ledger';
import type { WorkflowStarter } from '../ports/workflow';
import { policyDecider } from '../core/decide';

/**
 * The composition root: which adapters the handlers use. In AWS they are built from the
 * environment (validated once; a missing variable fails the first invocation loudly). The
 * local runtime installs its own (dynalite, the local ASL runner) before serving requests.
 */
export interface Runtime {
  actions: ActionStore;
  idempotency: IdempotencyStore;
  workflow: WorkflowStarter;
  decider: Decider;
  intake: IntakeConfig;
}

const EnvSchema = z.object({
  LEDGER_TABLE: z.string().min(1),
  STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  IDEMPOTENCY_RETENTION_HOURS: z.coerce.number().int().min(24).default(24),
  AWS_REGION: z.string().min(1).optional(),
});

let installed: Runtime | undefined;
let built: Promise<Runtime> | undefined;

/** Replaces the AWS adapters (used by the local runtime and by tests). */
export function installRuntime(runtime: Runtime): void {
  installed = runtime;
}

/** Forgets an installed runtime (tests). */
export function resetRuntime(): void {
  installed = undefined;
  built = undefined;
}

async function fromEnvironment(): Promise<Runtime> {
  const env = EnvSchema.parse(process.env);
  // SDK clients are built once per cold start and reused by every invocation.
  const ledger = new DynamoLedger({ client: new DynamoDBClient({}), tableName: env.LEDGER_TABLE });
  return {
    actions: ledger,
    idempotency: ledger,
    workflow: new StepFunctionsWorkflow({ stateMachineArn: env.STATE_MACHINE_ARN, client: new SFNClient({}) }),
    decider: await policyDecider(),
    intake: { ...defaultIntakeConfig, idempotencyRetentionMs: env.IDEMPOTENCY_RETENTION_HOURS * 3_600_000 },
  };
}

export function runtime(): Promise<Runtime> {
  if (installed) return Promise.resolve(installed);
  built ??= fromEnvironment();
  return built;
}
