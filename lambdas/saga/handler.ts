import * as z from 'zod';
import { ActionIdSchema } from '../shared/ids';
import {
  beginExecution,
  evaluatePolicy,
  finishCompensation,
  issueGrant,
  prepareCompensation,
  recordCompensationFailure,
  recordReceipt,
  settleAction,
} from './tasks';
import { invokedReadPath, ReadPathHandOffError, RUN_READ_TASK, runReadAction } from './read-path';
import { sagaDeps } from '../composition/aws';
import type { Lazy, SagaFunctionDeps } from '../composition/deps';
import { annotate } from '../middleware/powertools';
import { taskHandler } from '../middleware/task';

/**
 * The saga function: the saga's decision and bookkeeping tasks (EvaluatePolicy,
 * BeginExecution, IssueGrant, PrepareCompensation, RecordCompensationFailure,
 * FinishCompensation, SettleAction, RecordReceipt). Each Task state names its task; errors
 * are thrown by name and caught by the ASL. Intake alone invokes RunRead (the read fast path,
 * saga/read-path.ts): no state of the ASL names it.
 */

const ActionId = ActionIdSchema;
const Index = z.number().int().min(0).max(100);

export const SagaTaskSchema = z.discriminatedUnion('task', [
  z.object({ task: z.literal('EvaluatePolicy'), actionId: ActionId }),
  z.object({ task: z.literal('BeginExecution'), actionId: ActionId }),
  z.object({ task: z.literal('IssueGrant'), actionId: ActionId, index: Index, kind: z.enum(['forward', 'compensate']), resolve: z.literal(true).optional() }),
  z.object({ task: z.literal('PrepareCompensation'), actionId: ActionId, state: z.object({ error: z.unknown().optional() }).passthrough() }),
  z.object({ task: z.literal('RecordCompensationFailure'), actionId: ActionId, index: Index, error: z.unknown().optional() }),
  z.object({ task: z.literal('FinishCompensation'), actionId: ActionId }),
  // `action`: the record intake just wrote (read-path.ts handedAction checks it is that action, received).
  // `answer`: the read answer intake will give, recorded with the receipt key (ports/ledger.ts ReadAnswer).
  z.object({
    task: z.literal(RUN_READ_TASK),
    actionId: ActionId,
    action: z.unknown().optional(),
    answer: z.object({ waitMs: z.number().int().min(0).max(3_600_000) }).optional(),
  }),
  z.object({ task: z.literal('RecordReceipt'), actionId: ActionId, key: z.string().min(1).max(1024) }),
  z.object({
    task: z.literal('SettleAction'),
    actionId: ActionId,
    state: z.object({ final: z.object({ status: z.unknown(), reason: z.unknown() }).partial().optional() }).passthrough(),
  }),
]);
export type SagaTask = z.infer<typeof SagaTaskSchema>;

/** A task payload that does not match the contract: a bug in the ASL, never retried. */
export class TaskInputInvalidError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TaskInputInvalidError';
  }
}

/** Runs one saga task. */
async function run(deps: SagaFunctionDeps, event: unknown): Promise<unknown> {
  const parsed = SagaTaskSchema.safeParse(event);
  if (!parsed.success) throw new TaskInputInvalidError(`Invalid saga task: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`);
  const task = parsed.data;
  annotate({ actionId: task.actionId });
  switch (task.task) {
    case 'EvaluatePolicy':
      return evaluatePolicy(deps, task.actionId);
    case 'BeginExecution':
      return beginExecution(deps, task.actionId);
    case 'IssueGrant':
      return issueGrant(deps, task);
    case 'PrepareCompensation':
      // A state that already has `undo` is the recount after the in-doubt steps were retried.
      return prepareCompensation(deps, { actionId: task.actionId, error: task.state.error, recount: task.state.undo !== undefined });
    case 'RecordCompensationFailure':
      await recordCompensationFailure(deps, task);
      return {};
    case 'FinishCompensation':
      return finishCompensation(deps, task.actionId);
    case 'RecordReceipt':
      await recordReceipt(deps, task);
      return {};
    case 'RunRead': {
      if (!deps.readPath) throw new ReadPathHandOffError('this deployment has no read fast path');
      // Intake's answer to the client: the ended action and its steps (Lambda's 6 MB response
      // holds them: an action item and its step records fit DynamoDB's 400 KB items).
      return runReadAction(invokedReadPath(deps, deps.readPath.invoker, deps.readPath), task.actionId, task.action, task.answer);
    }
    case 'SettleAction':
      return settleAction(deps, {
        actionId: task.actionId,
        ...(task.state.final ? { final: task.state.final } : {}),
        compensationRan: task.state.undo !== undefined,
      });
  }
}

/** The saga function's handler over `deps`. */
export function createSagaHandler(deps: Lazy<SagaFunctionDeps>) {
  return taskHandler(async (event: unknown) => run(await deps(), event));
}

/** Lambda entry point. */
export const handler = createSagaHandler(sagaDeps);
