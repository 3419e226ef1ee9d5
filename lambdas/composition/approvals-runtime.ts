import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { DynamoApprovalStore } from '../adapters/aws/dynamo-approvals';
import { DynamoLedger } from '../adapters/aws/dynamo-ledger';
import { DynamoSagaStore } from '../adapters/aws/dynamo-saga-store';
import { EventBridgePublisher } from '../adapters/aws/eventbridge-publisher';
import { StepFunctionsCallbacks } from '../adapters/aws/sfn-callbacks';
import { FileEventPublisher } from '../adapters/local/file-event-publisher';
import { DEFAULT_APPROVAL_TIMEOUT_SECONDS, type ApprovalsDeps } from '../approvals/approvals';
import { logger, type Logger } from '../shared/logger';
import { loadPolicyEngine } from '../policy/index';
import type { TaskCallbacks } from '../ports/task-callbacks';
import { provide, slot } from './aws';

/**
 * The approvals function's adapters: the `approvals` slot of the composition root. In AWS
 * they are built once from the environment; the local runtime installs its own with
 * {@link installApprovalsRuntime} (its saga runner's callback registry as TaskCallbacks).
 */

const SLOT = 'approvals';

/** Thrown locally when no saga runner installed TaskCallbacks into the approvals slot. */
export class TaskCallbacksUnavailableError extends Error {
  constructor() {
    super('No local saga runner is wired to answer approvals (install the approvals slot with its callbacks)');
    this.name = 'TaskCallbacksUnavailableError';
  }
}

const unwiredCallbacks: TaskCallbacks = {
  sendTaskSuccess: async () => {
    throw new TaskCallbacksUnavailableError();
  },
  sendTaskFailure: async () => {
    throw new TaskCallbacksUnavailableError();
  },
};

/** Env of the approvals function, parsed once at cold start. */
export const ApprovalsEnv = z.object({
  LEDGER_TABLE: z.string().min(1),
  /**
   * The stack sets it from `approvalTimeoutSeconds`; WaitForApproval waits that long plus this
   * function's own Task time (lambdas/core/saga-timeouts.ts), so the stored expiry comes first.
   */
  APPROVAL_TIMEOUT_SECONDS: z.coerce.number().int().min(60).max(31_536_000).default(DEFAULT_APPROVAL_TIMEOUT_SECONDS),
  /** EventBridge bus for `airlock.approval.requested`; the account's default bus when unset. */
  APPROVAL_EVENT_BUS: z.string().min(1).max(1600).default('default'),
});

/** Installs the approvals adapters (local runtime, tests). */
export function installApprovalsRuntime(deps: ApprovalsDeps): void {
  provide(SLOT, deps);
}

/**
 * Approvals adapters over a ledger table and a state directory, for the local runtime:
 * dynalite through the real DynamoDB adapters, `<stateDir>/events.log` for notifications,
 * and the given TaskCallbacks (the local saga runner's registry).
 */
export function localApprovalsDeps(input: {
  client: DynamoDBClient;
  tableName: string;
  stateDir: string;
  callbacks: TaskCallbacks;
  timeoutSeconds?: number;
  logger?: Logger;
}): ApprovalsDeps {
  const store = new DynamoSagaStore({ client: input.client, tableName: input.tableName });
  return {
    actions: new DynamoLedger({ client: input.client, tableName: input.tableName }),
    approvals: new DynamoApprovalStore({ client: input.client, tableName: input.tableName }),
    events: store,
    callbacks: input.callbacks,
    publisher: new FileEventPublisher(input.stateDir),
    engine: loadPolicyEngine(),
    timeoutSeconds: input.timeoutSeconds ?? ApprovalsEnv.shape.APPROVAL_TIMEOUT_SECONDS.parse(process.env.APPROVAL_TIMEOUT_SECONDS),
    now: () => new Date(),
    logger: input.logger ?? logger,
  };
}

/** The approvals function's adapters: installed ones, or the AWS ones built once from the environment. */
export function approvalsRuntime(): Promise<ApprovalsDeps> {
  return slot<ApprovalsDeps>(SLOT, async () => {
    const env = ApprovalsEnv.parse(process.env);
    const dynamo = new DynamoDBClient({});
    if (process.env.AIRLOCK_RUNTIME === 'local' && process.env.AIRLOCK_HOME) {
      // The local runtime normally installs this slot with its saga runner's callbacks; until
      // it does, everything but answering the saga works against dynalite and events.log.
      return localApprovalsDeps({
        client: dynamo,
        tableName: env.LEDGER_TABLE,
        stateDir: process.env.AIRLOCK_HOME,
        callbacks: unwiredCallbacks,
        timeoutSeconds: env.APPROVAL_TIMEOUT_SECONDS,
      });
    }
    const store = new DynamoSagaStore({ client: dynamo, tableName: env.LEDGER_TABLE });
    return {
      actions: new DynamoLedger({ client: dynamo, tableName: env.LEDGER_TABLE }),
      approvals: new DynamoApprovalStore({ client: dynamo, tableName: env.LEDGER_TABLE }),
      events: store,
      callbacks: new StepFunctionsCallbacks({ client: new SFNClient({}) }),
      publisher: new EventBridgePublisher({ eventBusName: env.APPROVAL_EVENT_BUS, client: new EventBridgeClient({}) }),
      engine: loadPolicyEngine(),
      timeoutSeconds: env.APPROVAL_TIMEOUT_SECONDS,
      now: () => new Date(),
      logger,
    };
  });
}
